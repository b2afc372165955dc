//! The timed HTTP exchanges. Each is timed with `Instant` from sending the
//! request to having read the whole response body, and checked (status,
//! counts, byte totals) so that a broken server cannot win.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::data::FileEntry;
use bytes::Bytes;

pub type Res<T> = Result<T, String>;

/// A keep-alive HTTP/1.1 client (TCP_NODELAY, no proxy), sending
/// `Authorization: Bearer <token>` when given (Yunying needs a credential).
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token
        && let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
    {
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(16)
        .timeout(Duration::from_secs(1800))
        .build()
        .expect("http client")
}

const BOUNDARY: &str = "yunying-bench-4f9c2e7a1b6d3058";

/// A `multipart/related; type="application/dicom"` body streamed from the
/// files (one file in memory at a time) and its exact length, so that the
/// request has a `Content-Length` (Orthanc and Yunying alike).
fn stow_body(files: &[FileEntry]) -> (u64, reqwest::Body) {
    let head = Bytes::from(format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n"));
    let crlf = Bytes::from_static(b"\r\n");
    let tail = Bytes::from(format!("--{BOUNDARY}--\r\n"));
    let len = files.iter().map(|f| head.len() as u64 + f.size + 2).sum::<u64>() + tail.len() as u64;
    struct St {
        paths: VecDeque<std::path::PathBuf>,
        queue: VecDeque<Bytes>,
        done: bool,
    }
    let st = St { paths: files.iter().map(|f| f.path.clone()).collect(), queue: VecDeque::new(), done: false };
    let stream = futures::stream::unfold(st, move |mut st| {
        let (head, crlf, tail) = (head.clone(), crlf.clone(), tail.clone());
        async move {
            if let Some(b) = st.queue.pop_front() {
                return Some((Ok::<Bytes, std::io::Error>(b), st));
            }
            match st.paths.pop_front() {
                Some(p) => match tokio::fs::read(&p).await {
                    Ok(data) => {
                        st.queue.push_back(Bytes::from(data));
                        st.queue.push_back(crlf);
                        Some((Ok(head), st))
                    }
                    Err(e) => Some((Err(e), st)),
                },
                None if !st.done => {
                    st.done = true;
                    Some((Ok(tail), st))
                }
                None => None,
            }
        }
    });
    (len, reqwest::Body::wrap_stream(stream))
}

/// Number of items of a DICOM JSON sequence attribute in a STOW response.
fn seq_len(json: &serde_json::Value, tag: &str) -> usize {
    json[tag]["Value"].as_array().map(|a| a.len()).unwrap_or(0)
}

/// One STOW-RS request of `files` to `{dicomweb}/studies`; the time of the
/// exchange. Every object must be reported stored.
pub async fn stow(client: &reqwest::Client, dicomweb: &str, files: &[FileEntry]) -> Res<Duration> {
    let (len, body) = stow_body(files);
    let started = Instant::now();
    let resp = client
        .post(format!("{dicomweb}/studies"))
        .header("Content-Type", format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"))
        .header("Content-Length", len.to_string())
        .header("Accept", "application/dicom+json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("STOW-RS request failed: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| format!("STOW-RS response: {e}"))?;
    let elapsed = started.elapsed();
    if status != 200 {
        return Err(format!("STOW-RS answered {status}: {}", String::from_utf8_lossy(&body[..body.len().min(400)])));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("STOW-RS response is not JSON: {e}"))?;
    let (stored, failed) = (seq_len(&json, "00081199"), seq_len(&json, "00081198"));
    if stored != files.len() || failed != 0 {
        return Err(format!("STOW-RS stored {stored} of {} objects ({failed} failed)", files.len()));
    }
    Ok(elapsed)
}

/// What a GET brought back.
pub struct Got {
    pub elapsed: Duration,
    pub bytes: u64,
    pub content_type: String,
    /// The body, when kept.
    pub body: Option<Vec<u8>>,
    /// Occurrences of the multipart delimiter in the body, when counted.
    pub matches: usize,
}

/// A GET, timed to the last byte of the body. `keep` keeps the body (its
/// chunks are joined after the clock stops);
/// `count_boundary` counts the occurrences of `--boundary` (the multipart
/// delimiters) in the body as it streams.
pub async fn get(client: &reqwest::Client, url: &str, accept: &str, keep: bool, count_boundary: bool) -> Res<Got> {
    let started = Instant::now();
    let mut resp =
        client.get(url).header("Accept", accept).send().await.map_err(|e| format!("GET {url} failed: {e}"))?;
    let status = resp.status();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut bytes = 0u64;
    let mut chunks: Option<Vec<Bytes>> = keep.then(Vec::new);
    let needle = if count_boundary { boundary_of(&content_type).map(|b| format!("--{b}")) } else { None };
    if count_boundary && needle.is_none() && status == 200 {
        return Err(format!("GET {url}: no multipart boundary in {content_type:?}"));
    }
    let finder = needle.as_deref().map(|n| memchr::memmem::Finder::new(n.as_bytes()));
    let mut carry: Vec<u8> = Vec::new();
    let mut matches = 0;
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: body: {e}"))? {
        bytes += chunk.len() as u64;
        if let Some(c) = chunks.as_mut() {
            c.push(chunk.clone());
        }
        if let Some(f) = &finder {
            // Occurrences spanning two chunks are found in carry + head of chunk.
            let n = f.needle().len();
            if !carry.is_empty() {
                carry.extend_from_slice(&chunk[..chunk.len().min(n - 1)]);
                matches += f.find_iter(&carry).count();
            }
            matches += f.find_iter(&chunk).count();
            carry.clear();
            carry.extend_from_slice(&chunk[chunk.len().saturating_sub(n - 1)..]);
        }
    }
    let elapsed = started.elapsed();
    let body = chunks.map(|c| c.concat());
    if status != 200 {
        let text = body.as_deref().map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).to_string());
        return Err(format!("GET {url} answered {status} {}", text.unwrap_or_default()));
    }
    Ok(Got { elapsed, bytes, content_type, body, matches })
}

/// The boundary of a multipart content type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary=")).map(|b| b.trim_matches('"').to_string())
}

/// A GET of DICOM JSON, timed to the last byte; returns the time and the
/// number of items of the top-level array (parsed after the clock stops).
pub async fn get_json_array(client: &reqwest::Client, url: &str) -> Res<(Duration, Vec<serde_json::Value>)> {
    let got = get(client, url, "application/dicom+json", true, false).await?;
    let body = got.body.unwrap_or_default();
    if body.is_empty() {
        return Ok((got.elapsed, Vec::new())); // 204 No Content would have failed above.
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON ({e}), {} bytes", body.len()))?;
    match v {
        serde_json::Value::Array(a) => Ok((got.elapsed, a)),
        _ => Err(format!("GET {url}: not a JSON array")),
    }
}

/// Frames as stored, in a multipart response.
pub const FRAMES_AS_STORED: &str = "multipart/related; type=application/octet-stream; transfer-syntax=*";

/// What [`frames`] asks for and what each response must be.
#[derive(Debug, Clone, Copy)]
pub struct FrameAsk {
    pub accept: &'static str,
    /// At least this many body bytes.
    pub min_bytes: u64,
    /// The body starts with these bytes.
    pub starts_with: &'static [u8],
}

/// Every frame URL fetched once, one request per frame, over `clients.len()`
/// connections working in parallel from a shared queue (as a viewer does).
/// Returns the wall time and the body bytes received; each response must be
/// 200 and as `ask` says.
pub async fn frames(clients: &[reqwest::Client], urls: Arc<Vec<String>>, ask: FrameAsk) -> Res<(Duration, u64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = clients
        .iter()
        .cloned()
        .map(|c| {
            let (next, urls) = (next.clone(), urls.clone());
            tokio::spawn(async move {
                let mut total = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(url) = urls.get(i) else { break };
                    let mut resp = c
                        .get(url)
                        .header("Accept", ask.accept)
                        .send()
                        .await
                        .map_err(|e| format!("GET {url} failed: {e}"))?;
                    let status = resp.status();
                    let mut n = 0u64;
                    let mut head = Vec::new();
                    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
                        if head.len() < 300 {
                            head.extend_from_slice(&chunk[..chunk.len().min(300)]);
                        }
                        n += chunk.len() as u64;
                    }
                    if status != 200 {
                        return Err(format!("GET {url} answered {status}: {}", String::from_utf8_lossy(&head)));
                    }
                    if n < ask.min_bytes {
                        return Err(format!("GET {url}: {n} bytes, less than expected ({})", ask.min_bytes));
                    }
                    if !head.starts_with(ask.starts_with) {
                        return Err(format!("GET {url}: the body does not start with {:02X?}", ask.starts_with));
                    }
                    total += n;
                }
                Ok::<u64, String>(total)
            })
        })
        .collect();
    let mut total = 0;
    for w in futures::future::join_all(workers).await {
        total += w.map_err(|e| format!("frame worker: {e}"))??;
    }
    Ok((started.elapsed(), total))
}

/// Sends `files` in STOW-RS requests of `batch` objects, one after the other.
pub async fn load(client: &reqwest::Client, dicomweb: &str, files: &[FileEntry], batch: usize) -> Res<Duration> {
    let started = Instant::now();
    let mut done = 0;
    let mut last_report = Instant::now();
    for chunk in files.chunks(batch.max(1)) {
        stow(client, dicomweb, chunk).await?;
        done += chunk.len();
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("       ... {done} / {} stored", files.len());
            last_report = Instant::now();
        }
    }
    Ok(started.elapsed())
}
