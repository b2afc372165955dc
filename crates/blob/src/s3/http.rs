//! object_store's HTTP transport over the workspace's reqwest 0.12 with
//! rustls on the ring provider and the system's trust store.
//!
//! object_store's own transport (its `aws` feature) is reqwest 0.13 with
//! rustls on aws-lc-rs; the product uses ring only, so the store is built
//! with `aws-base` + `ring` and this connector.

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::BodyExt;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
};

/// Timeouts of the transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Establishing a connection (TCP and TLS).
    pub connect: Duration,
    /// Longest wait for the next bytes of a response (not a bound on the
    /// whole transfer: a multi-gigabyte download may take minutes).
    pub read: Duration,
}

#[derive(Debug)]
pub(crate) struct ReqwestConnector {
    client: reqwest::Client,
}

impl ReqwestConnector {
    pub(crate) fn new(t: Timeouts) -> Result<ReqwestConnector, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(t.connect)
            .read_timeout(t.read)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .tcp_nodelay(true)
            // Never follow redirects: a signed request must not go elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls()
            .build()?;
        Ok(ReqwestConnector { client })
    }
}

impl ReqwestConnector {
    /// The client, for requests object_store does not make (restores).
    pub(crate) fn client(&self) -> reqwest::Client {
        self.client.clone()
    }
}

impl HttpConnector for ReqwestConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Service(self.client.clone())))
    }
}

#[derive(Debug)]
struct Service(reqwest::Client);

#[async_trait]
impl HttpService for Service {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        let mut r = reqwest::Request::new(parts.method, url);
        *r.headers_mut() = parts.headers;
        // Bytes go as they are; a multi-chunk payload is streamed with its
        // exact length (S3 wants Content-Length, not chunked encoding).
        *r.body_mut() = Some(match body.as_bytes() {
            Some(b) => reqwest::Body::from(b.clone()),
            None => reqwest::Body::wrap(body),
        });
        let res = self.0.execute(r).await.map_err(classify)?;
        let res: http::Response<reqwest::Body> = res.into();
        let (parts, body) = res.into_parts();
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body.map_err(classify))))
    }
}

/// Sorts a transport error into what object_store retries: connection
/// problems and interrupted transfers are retried, others are not.
fn classify(e: reqwest::Error) -> HttpError {
    let mut kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Unknown
    };
    let mut source = e.source();
    while kind == HttpErrorKind::Unknown {
        let Some(s) = source else { break };
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::TimedOut => kind = HttpErrorKind::Timeout,
                std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => kind = HttpErrorKind::Interrupted,
                _ => {}
            }
        }
        source = s.source();
    }
    if kind == HttpErrorKind::Unknown && (e.is_request() || e.is_body()) {
        // A pooled connection closed by the server before our request
        // completed ("connection closed before message completed").
        kind = HttpErrorKind::Request;
    }
    HttpError::new(kind, e.without_url())
}
