//! `multipart/related` response bodies (RFC 2387), streamed part by part so
//! that a whole series leaves the server without being held in memory.

use axum::body::Body;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

/// One part: its headers and its body stream.
pub struct Part {
    pub content_type: String,
    pub content_length: Option<u64>,
    pub content_location: Option<String>,
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
}

/// A fresh boundary that cannot occur in the parts' headers.
pub fn new_boundary() -> String {
    format!("yunying-{}", uuid::Uuid::new_v4().simple())
}

fn part_head(boundary: &str, first: bool, p: &Part) -> Bytes {
    let mut h = String::with_capacity(160);
    if !first {
        h.push_str("\r\n");
    }
    h.push_str("--");
    h.push_str(boundary);
    h.push_str("\r\nContent-Type: ");
    h.push_str(&p.content_type);
    if let Some(l) = p.content_length {
        h.push_str(&format!("\r\nContent-Length: {l}"));
    }
    if let Some(loc) = &p.content_location {
        h.push_str("\r\nContent-Location: ");
        h.push_str(loc);
    }
    h.push_str("\r\n\r\n");
    Bytes::from(h)
}

/// The body of a multipart response from a stream of parts. The parts'
/// streams are polled lazily, one after the other.
pub fn body(boundary: String, parts: BoxStream<'static, std::io::Result<Part>>) -> Body {
    let b2 = boundary.clone();
    let stream = parts
        .enumerate()
        .flat_map(move |(i, part)| -> BoxStream<'static, std::io::Result<Bytes>> {
            match part {
                Ok(p) => {
                    let head = part_head(&boundary, i == 0, &p);
                    stream::once(async move { Ok(head) }).chain(p.body).boxed()
                }
                Err(e) => stream::once(async move { Err(e) }).boxed(),
            }
        })
        .chain(stream::once(async move { Ok(Bytes::from(format!("\r\n--{b2}--\r\n"))) }));
    Body::from_stream(stream)
}

/// A whole one-part body in memory (for byte ranges of a multipart
/// response: the boundary must then be the same from request to request).
pub fn one_part(boundary: &str, content_type: &str, content_location: Option<&str>, body: &[u8]) -> Bytes {
    let p = Part {
        content_type: content_type.to_string(),
        content_length: Some(body.len() as u64),
        content_location: content_location.map(str::to_string),
        body: stream::empty().boxed(),
    };
    let head = part_head(boundary, true, &p);
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut out = Vec::with_capacity(head.len() + body.len() + tail.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
    out.extend_from_slice(tail.as_bytes());
    Bytes::from(out)
}

/// The `Content-Type` of a multipart/related response.
pub fn content_type(boundary: &str, part_type: &str, transfer_syntax: Option<&str>) -> String {
    match transfer_syntax {
        Some(ts) => format!("multipart/related; type=\"{part_type}\"; transfer-syntax={ts}; boundary={boundary}"),
        None => format!("multipart/related; type=\"{part_type}\"; boundary={boundary}"),
    }
}
