//! Objects in an archive storage class (S3 Glacier, OSS Archive): such an
//! object cannot be read until it is restored, and S3 answers a read with
//! 403 `InvalidObjectState`. The store then asks for a restore (RestoreObject,
//! the expedited tier: about a minute on OSS Archive) and reports
//! [`crate::BlobError::Archived`], which the archive turns into "retrieving,
//! try again shortly" instead of a failure; the next read after the restore
//! succeeds.

use bytes::Bytes;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::HttpRequest;

/// Sends RestoreObject requests, signed like the store's other requests.
#[derive(Debug)]
pub(crate) struct Restorer {
    pub(crate) client: reqwest::Client,
    pub(crate) credential: AwsCredential,
    pub(crate) region: String,
    /// `https://endpoint/bucket` (path style) or `https://bucket.endpoint`.
    pub(crate) bucket_url: String,
}

/// What a restore request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreState {
    /// A restore was started now.
    Started,
    /// A restore is already under way.
    InProgress,
    /// The object is readable (restored meanwhile).
    Ready,
}

const REQUEST: &str = "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>2</Days>\
<GlacierJobParameters><Tier>Expedited</Tier></GlacierJobParameters></RestoreRequest>";

/// Whether an object_store error is S3's "the object is in an archive
/// storage class" answer.
pub(crate) fn is_archived(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::PermissionDenied { .. }) && format!("{e:?}").contains("InvalidObjectState")
}

impl Restorer {
    /// Asks the store to restore the object at `location` (its full key).
    pub(crate) async fn request(&self, location: &str) -> Result<RestoreState, String> {
        let url = format!("{}/{location}?restore", self.bucket_url);
        let mut req: HttpRequest = http::Request::builder()
            .method(http::Method::POST)
            .uri(&url)
            .header(http::header::CONTENT_TYPE, "application/xml")
            .body(Bytes::from_static(REQUEST.as_bytes()).into())
            .map_err(|e| e.to_string())?;
        AwsAuthorizer::new(&self.credential, "s3", &self.region)
            .try_authorize(&mut req, None)
            .map_err(|e| format!("cannot sign the restore request: {e}"))?;
        let (parts, body) = req.into_parts();
        let mut r = reqwest::Request::new(parts.method, reqwest::Url::parse(&url).map_err(|e| e.to_string())?);
        *r.headers_mut() = parts.headers;
        *r.body_mut() = Some(reqwest::Body::from(body.as_bytes().cloned().unwrap_or_default()));
        let res = self.client.execute(r).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        match status.as_u16() {
            202 => Ok(RestoreState::Started),
            200 => Ok(RestoreState::Ready),
            409 if text.contains("RestoreAlreadyInProgress") => Ok(RestoreState::InProgress),
            _ => Err(format!("restore request answered {status}: {}", text.chars().take(300).collect::<String>())),
        }
    }
}
