//! The web app (study list, viewer) as the binary serves it at `/`: the copy
//! embedded at build time (`build.rs`, from `web/dist`) or, when configured,
//! a directory read from disk (`[web] dir`, `YUNYING_WEB_DIR`).
//!
//! Hashed files under `assets/` are cached for a year (`immutable`);
//! `index.html` is revalidated (`no-cache`) and is also the answer for every
//! page path (`/login`, `/viewer`, …: the app routes on the client). Paths of
//! the APIs never fall back to the page: an unknown `/api/...` stays a JSON
//! 404. Compressed copies are served to clients that accept gzip; pages get
//! the app's Content-Security-Policy (WebAssembly codecs and module workers
//! of the viewer, nothing from another origin).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// One file of the embedded app.
pub struct EmbeddedAsset {
    pub path: &'static str,
    pub bytes: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The policy of the app's pages: same origin only; `wasm-unsafe-eval` lets
/// the image codecs (WebAssembly) compile, `blob:` workers the decoders, and
/// inline styles the viewer's computed layout. Inline scripts of a page (our
/// build has none; OHIF's has two) are allowed by their SHA-256 alone.
fn app_csp(page: &[u8]) -> String {
    let mut script_src = String::from("'self' 'wasm-unsafe-eval'");
    for body in inline_scripts(page) {
        use base64::Engine;
        use sha2::Digest;
        let digest = sha2::Sha256::digest(body);
        script_src.push_str(&format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
    }
    format!(
        "default-src 'self'; script-src {script_src}; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; \
         object-src 'none'; base-uri 'self'; form-action 'self'"
    )
}

/// The contents of a page's `<script>` elements that have no `src`.
fn inline_scripts(page: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(open) = find(rest, b"<script") {
        let after = &rest[open + 7..];
        let Some(tag_end) = find(after, b">") else { break };
        let attrs = &after[..tag_end];
        let body_start = &after[tag_end + 1..];
        let Some(close) = find(body_start, b"</script") else { break };
        if !attrs.windows(4).any(|w| w.eq_ignore_ascii_case(b"src=")) && close > 0 {
            out.push(&body_start[..close]);
        }
        rest = &body_start[close..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

/// Paths that belong to the server's APIs, never to the app.
const API_PREFIXES: &[&str] = &["/api/", "/api", "/dicom-web", "/wado", "/oauth/", "/healthz"];

/// Where the app's files come from.
#[derive(Clone)]
pub struct WebApp {
    source: Arc<Source>,
}

/// Files read from a directory: path → (modification time, size, asset).
type DirectoryCache = Mutex<HashMap<PathBuf, (std::time::SystemTime, u64, Arc<Asset>)>>;

enum Source {
    Embedded(HashMap<&'static str, &'static EmbeddedAsset>),
    Directory { root: PathBuf, cache: DirectoryCache },
}

/// A file ready to send.
struct Asset {
    bytes: Bytes,
    gzip: Option<Bytes>,
    etag: String,
}

impl WebApp {
    /// The embedded copy, or `dir` when given.
    pub fn new(dir: Option<&Path>) -> WebApp {
        let source = match dir {
            Some(d) => Source::Directory { root: d.to_path_buf(), cache: Mutex::new(HashMap::new()) },
            None => Source::Embedded(EMBEDDED.iter().map(|a| (a.path, a)).collect()),
        };
        WebApp { source: Arc::new(source) }
    }

    /// Where the app comes from, for the start-up line.
    pub fn describe(&self) -> String {
        match &*self.source {
            Source::Embedded(m) if m.is_empty() => "not built into this binary (./scripts/build-web.sh)".into(),
            Source::Embedded(m) => format!("embedded ({} files)", m.len()),
            Source::Directory { root, .. } => format!("from {}", root.display()),
        }
    }

    fn get(&self, rel: &str) -> Option<Arc<Asset>> {
        match &*self.source {
            Source::Embedded(m) => m.get(rel).map(|a| {
                Arc::new(Asset {
                    bytes: Bytes::from_static(a.bytes),
                    gzip: a.gzip.map(Bytes::from_static),
                    etag: a.etag.to_string(),
                })
            }),
            Source::Directory { root, cache } => {
                let rel_path = Path::new(rel);
                if rel_path.components().any(|c| !matches!(c, Component::Normal(_))) {
                    return None;
                }
                let path = root.join(rel_path);
                let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
                let modified = meta.modified().ok()?;
                if let Some((m, len, a)) = cache.lock().ok()?.get(&path)
                    && *m == modified
                    && *len == meta.len()
                {
                    return Some(a.clone());
                }
                let bytes = std::fs::read(&path).ok()?;
                let gzip = compressible(rel).then(|| gzip(&bytes)).flatten();
                let etag = format!("\"{:x}-{:x}\"", meta.len(), modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis());
                let a = Arc::new(Asset { bytes: Bytes::from(bytes), gzip, etag });
                cache.lock().ok()?.insert(path, (modified, meta.len(), a.clone()));
                Some(a)
            }
        }
    }

    fn is_empty(&self) -> bool {
        matches!(&*self.source, Source::Embedded(m) if m.is_empty())
    }
}

fn compressible(rel: &str) -> bool {
    [".js", ".mjs", ".css", ".html", ".json", ".svg", ".wasm", ".map", ".txt", ".webmanifest"].iter().any(|e| rel.ends_with(e))
}

fn gzip(bytes: &[u8]) -> Option<Bytes> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(bytes).ok()?;
    let z = e.finish().ok()?;
    (z.len() * 10 < bytes.len() * 9).then(|| Bytes::from(z))
}

fn content_type(rel: &str) -> &'static str {
    let ext = rel.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|t| {
            let mut parts = t.trim().split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
    })
}

fn not_found(what: &str) -> Response {
    yunying_http_common::AppError::not_found(what).into_response()
}

/// The fallback handler: app files and pages.
pub async fn serve(State(app): State<WebApp>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if API_PREFIXES.iter().any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)) || path.starts_with(&format!("{p}/"))) {
        return not_found("no such resource");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return not_found("no such resource");
    }
    if app.is_empty() {
        return not_built();
    }
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let (rel, asset) = match app.get(rel) {
        Some(a) => (rel, a),
        None => {
            // A page path (no file extension) is the app's; a missing file is not.
            let last = rel.rsplit('/').next().unwrap_or("");
            if last.contains('.') {
                return not_found("no such file");
            }
            match app.get("index.html") {
                Some(a) => ("index.html", a),
                None => return not_found("the web app has no index.html"),
            }
        }
    };
    respond(rel, &asset, req.headers(), req.method() == Method::HEAD)
}

fn respond(rel: &str, asset: &Asset, headers: &HeaderMap, head: bool) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(rel)));
    let immutable = rel.starts_with("assets/");
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable { "public, max-age=31536000, immutable" } else { "no-cache" }),
    );
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Every file of the app carries the app's policy: a worker script takes
    // its policy from its own response, and the decoders' WebAssembly needs
    // `wasm-unsafe-eval` there too. Pages add the hashes of their inline scripts.
    let csp = if rel.ends_with(".html") { app_csp(&asset.bytes) } else { app_csp(b"") };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let body = match (&asset.gzip, accepts_gzip(headers)) {
        (Some(z), true) => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            z.clone()
        }
        _ => asset.bytes.clone(),
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if head {
        return (StatusCode::OK, h).into_response();
    }
    (StatusCode::OK, h, Body::from(body)).into_response()
}

/// What `/` answers when the binary was built without the web app.
fn not_built() -> Response {
    let page = "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>云影 Yunying</title>\
        <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>云影 Yunying</h1>\
        <p>本程序构建时未包含 Web 界面。请运行 <code>./scripts/build-web.sh</code> 后重新构建 yunying。</p>\
        <p>The web app is not part of this build. Run <code>./scripts/build-web.sh</code>, then build yunying again \
        (or set <code>YUNYING_WEB_DIR</code> to a built <code>web/dist</code>).</p>\
        <p>DICOMweb: <code>/dicom-web</code> · API: <code>/api</code></p></body></html>";
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, page).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_acceptance_follows_q_values() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0.8"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip;q=0, br"));
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        assert!(!accepts_gzip(&h));
    }

    #[test]
    fn inline_scripts_are_allowed_by_their_hash_only() {
        let page = b"<html><script>window.PUBLIC_URL=\"/\"</script><script defer src=\"/a.js\"></script><SCRIPT type=module>go()</SCRIPT></html>";
        let found = inline_scripts(page);
        assert_eq!(found, vec![&b"window.PUBLIC_URL=\"/\""[..], &b"go()"[..]]);
        let csp = app_csp(page);
        // echo -n 'go()' | openssl dgst -sha256 -binary | base64
        assert!(csp.contains("'sha256-"), "{csp}");
        assert_eq!(csp.matches("'sha256-").count(), 2);
        assert!(!csp.contains("'unsafe-inline' 'wasm") && !csp.contains("script-src 'self' 'unsafe-inline'"));
        assert_eq!(app_csp(b"<script src=\"/x.js\"></script>").matches("sha256").count(), 0);
    }

    #[test]
    fn directory_source_refuses_escapes_and_serves_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><p>app</p>".repeat(20)).unwrap();
        std::fs::write(dir.path().parent().unwrap().join("secret.txt"), "no").ok();
        let app = WebApp::new(Some(dir.path()));
        assert!(app.get("index.html").is_some());
        assert!(app.get("../secret.txt").is_none());
        assert!(app.get("/etc/passwd").is_none());
        let a = app.get("index.html").unwrap();
        assert!(a.gzip.as_ref().is_some_and(|z| z.len() < a.bytes.len()));
    }
}
