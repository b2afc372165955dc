//! Electronic film on the real binary: a layout of a synthetic CT series is
//! made into pages and a PDF, stored with the study; DCMTK reads the pages,
//! poppler reads the PDF.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use yunying_test_support::{TestServer, multipart_body, multipart_parts};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

fn synth(dir: &Path, slices: usize) -> Vec<PathBuf> {
    let out = Command::new(BIN).args(["synth", "--single-series", &slices.to_string(), "--seed", "3", "--out"]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut files = Vec::new();
    for st in std::fs::read_dir(dir).unwrap() {
        for se in std::fs::read_dir(st.unwrap().path()).unwrap() {
            for f in std::fs::read_dir(se.unwrap().path()).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    files.sort();
    files
}

fn dump(path: &Path, tag: &str) -> String {
    let out = Command::new("dcmdump").args(["-Un", "+P", tag]).arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split('[').nth(1).and_then(|v| v.split(']').next()).unwrap_or("").trim_end_matches('\0').to_string()
}

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_film_is_made_stored_with_the_study_and_read_by_others() {
    let tmp = tempfile::tempdir().unwrap();
    let files = synth(&tmp.path().join("synth"), 6);
    let server = TestServer::start(Path::new(BIN), &[], &[("YUNYING_LOG", "warn")]).await;
    let c = server.client();
    let dw = server.dicomweb();
    let parts: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let (ct, body) = multipart_body(&parts);
    assert_eq!(c.post(format!("{dw}/studies")).header("Content-Type", ct).body(body).send().await.unwrap().status(), StatusCode::OK);
    let (study, series) = (dump(&files[0], "0020,000d"), dump(&files[0], "0020,000e"));
    let images: Vec<serde_json::Value> = files
        .iter()
        .map(|f| serde_json::json!({ "series": series, "instance": dump(f, "0008,0018"), "window": [40, 400],
                                     "labels": [{ "text": "病灶", "x": 0.5, "y": 0.5 }] }))
        .collect();
    let layout = serde_json::json!({ "columns": 2, "rows": 2, "paper": "A4", "dpi": 100, "title": "胸部CT平扫", "images": images });
    let r = c.post(format!("{}/api/studies/{study}/films", server.base)).json(&layout).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let made: serde_json::Value = r.json().await.unwrap();
    let pages = made["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2, "6 images on a 2x2 grid: two pages");

    // With the study: a new series of three instances.
    let r = c.get(format!("{dw}/studies/{study}/series")).send().await.unwrap();
    let all: Vec<serde_json::Value> = r.json().await.unwrap();
    let film = all.iter().find(|s| s["0020000E"]["Value"][0] == made["series"]).expect("the film series");
    assert_eq!(film["0008103E"]["Value"][0], "电子胶片 Film");
    assert_eq!(film["00201209"]["Value"][0], 3);

    // Page 1: A4 at 100 dpi, the header written, four images; page 2 two.
    for (n, page) in pages.iter().enumerate() {
        let url = format!("{}{}", server.base, page["rendered"].as_str().unwrap());
        let r = c.get(&url).header("Accept", "image/png").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let (w, h, px) = decode_png(&r.bytes().await.unwrap());
        assert_eq!((w, h), (826, 1169));
        let channels = px.len() / (w * h) as usize;
        let lit = |x0: u32, y0: u32, x1: u32, y1: u32| {
            let mut n = 0usize;
            for y in y0..y1 {
                for x in x0..x1 {
                    if px[((y * w + x) as usize) * channels] > 40 {
                        n += 1;
                    }
                }
            }
            n as f64 / ((x1 - x0) * (y1 - y0)) as f64
        };
        assert!(lit(0, 0, w, 50) > 0.01, "page {n}: header text");
        let quarters = [(0, 80, w / 2, h / 2), (w / 2, 80, w, h / 2), (0, h / 2, w / 2, h - 40), (w / 2, h / 2, w, h - 40)];
        let filled: Vec<bool> = quarters.iter().map(|&(a, b, c, d)| lit(a, b, c, d) > 0.05).collect();
        let want = if n == 0 { vec![true; 4] } else { vec![true, true, false, false] };
        assert_eq!(filled, want, "page {n}: cells with an image");
    }

    // DCMTK reads a page (Secondary Capture, JPEG) and decompresses it.
    let sop = pages[0]["sop_instance_uid"].as_str().unwrap();
    let r = c
        .get(format!("{dw}/studies/{study}/series/{}/instances/{sop}", made["series"].as_str().unwrap()))
        .header("Accept", "application/dicom; transfer-syntax=*")
        .send()
        .await
        .unwrap();
    let sc = tmp.path().join("page.dcm");
    std::fs::write(&sc, r.bytes().await.unwrap()).unwrap();
    let out = Command::new("dcmdump").arg(&sc).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(dump(&sc, "0008,0016"), "1.2.840.10008.5.1.4.1.1.7");
    assert_eq!(dump(&sc, "0010,0020"), dump(&files[0], "0010,0020"), "the patient of the study");
    let out = Command::new("dcmdjpeg").arg(&sc).arg(tmp.path().join("page-native.dcm")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The PDF: two pages, which poppler renders.
    let doc = format!("{}{}", server.base, made["pdf"]["document"].as_str().unwrap());
    let r = c.get(&doc).header("Accept", "application/octet-stream").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    let pdf_bytes = if bytes.starts_with(b"%PDF") {
        bytes.to_vec()
    } else {
        let ct = "multipart/related; boundary=x".to_string();
        multipart_parts(&ct, &bytes).remove(0)
    };
    let pdf = tmp.path().join("film.pdf");
    std::fs::write(&pdf, pdf_bytes.strip_suffix(b"\0").unwrap_or(&pdf_bytes)).unwrap();
    let out = Command::new("pdfinfo").arg(&pdf).output().unwrap();
    let info = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(info.lines().any(|l| l.starts_with("Pages:") && l.trim_end().ends_with('2')), "{info}");
    assert!(info.contains("胸部CT平扫"), "the title: {info}");
    let out = Command::new("pdftoppm").args(["-r", "20", "-png", "-f", "1", "-l", "1"]).arg(&pdf).arg(tmp.path().join("p")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Bad layouts change nothing.
    let bad = serde_json::json!({ "columns": 0, "rows": 2, "images": [] });
    let r = c.post(format!("{}/api/studies/{study}/films", server.base)).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let missing = serde_json::json!({ "columns": 1, "rows": 1, "images": [{ "series": series, "instance": "1.2.3" }] });
    let r = c.post(format!("{}/api/studies/{study}/films", server.base)).json(&missing).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c.get(format!("{dw}/studies/{study}/series")).send().await.unwrap();
    assert_eq!(r.json::<Vec<serde_json::Value>>().await.unwrap().len(), all.len(), "no new series");
}
