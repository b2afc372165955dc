//! The web app as the real binary serves it: files and pages of a built app
//! (from a directory, `YUNYING_WEB_DIR`), the page for every client-side
//! route, caching and compression, the app's security policy, and the APIs
//! that must never be answered with the page.

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use yunying_test_support::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

const INDEX: &str = "<!doctype html><html lang=\"zh-CN\"><head><script type=\"module\" src=\"/assets/index-abc123.js\"></script></head><body><div id=\"root\"></div></body></html>";

fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    let js: String = (0..2000).map(|i| format!("export const v{i} = {i} * 2;\n")).collect();
    std::fs::write(dir.path().join("assets/index-abc123.js"), js).unwrap();
    std::fs::write(dir.path().join("assets/codec-9f8e.wasm"), [0u8, 97, 115, 109, 1, 0, 0, 0]).unwrap();
    dir
}

/// A client that neither decompresses nor follows redirects: what is sent is what is seen.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn pages_files_caching_and_the_apis_boundary() {
    let app = app_dir();
    let dir = app.path().to_string_lossy().to_string();
    let mut server = TestServer::start(std::path::Path::new(BIN), &["--dicom", "off"], &[("YUNYING_WEB_DIR", &dir)]).await;
    let http = raw_client();
    let get = |path: &str| http.get(format!("{}{path}", server.base));

    // Every client-side route is the app's page, revalidated, under the app's policy.
    for path in ["/", "/login", "/viewer?StudyInstanceUIDs=1.2.3", "/studies/some/deep/route"] {
        let r = get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/html; charset=utf-8", "{path}");
        assert_eq!(r.headers()[CACHE_CONTROL], "no-cache", "{path}");
        let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval'") || csp.contains("wasm-unsafe-eval"), "no plain eval: {csp}");
        assert_eq!(r.text().await.unwrap(), INDEX, "{path}");
    }

    // Hashed assets: cached for a year, gzip when accepted, 304 on a known ETag.
    let js = std::fs::read(app.path().join("assets/index-abc123.js")).unwrap();
    let r = get("/assets/index-abc123.js").header(ACCEPT_ENCODING, "gzip, br").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
    let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("'wasm-unsafe-eval'"), "a worker script's own policy lets its codecs compile: {csp}");
    assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    let etag = r.headers()[ETAG].clone();
    let zipped = r.bytes().await.unwrap();
    assert!(zipped.len() < js.len() / 3, "compressed {} of {}", zipped.len(), js.len());
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, js);
    let r = get("/assets/index-abc123.js").send().await.unwrap();
    assert!(r.headers().get(CONTENT_ENCODING).is_none(), "no gzip unless accepted");
    assert_eq!(r.bytes().await.unwrap(), js);
    let r = get("/assets/index-abc123.js").header(IF_NONE_MATCH, etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = get("/assets/codec-9f8e.wasm").send().await.unwrap();
    assert_eq!(r.headers()[CONTENT_TYPE], "application/wasm");

    // Missing files, escapes and other methods are 404, never the page.
    for path in ["/assets/missing-123.js", "/favicon.ico", "/..%2f..%2fetc%2fpasswd", "/assets/%2e%2e/%2e%2e/secret.txt"] {
        let r = get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("application/json"), "{path}");
    }
    let r = http.post(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The APIs keep their own answers: JSON 404s and 401s, not the page.
    for (path, status) in [("/api/no-such-thing", StatusCode::NOT_FOUND), ("/dicom-web/studies", StatusCode::UNAUTHORIZED), ("/api/auth/me", StatusCode::UNAUTHORIZED)] {
        let r = get(path).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("application/json"), "{path}");
        assert!(r.headers().get(CONTENT_SECURITY_POLICY).is_some_and(|v| !v.to_str().unwrap().contains("wasm")), "{path}");
    }
    server.stop();
}

#[tokio::test]
async fn without_a_directory_the_embedded_app_or_a_build_hint_answers() {
    let mut server = TestServer::start(std::path::Path::new(BIN), &["--dicom", "off"], &[]).await;
    let r = raw_client().get(format!("{}/viewer", server.base)).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    if status == StatusCode::OK {
        assert!(body.contains("<div id=\"root\">") || body.contains("id=\"root\""), "the embedded app's page");
    } else {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("./scripts/build-web.sh"), "{body}");
    }
    server.stop();
}
