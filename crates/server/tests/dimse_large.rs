//! A 100 MB ultrasound cine by C-STORE: streamed to disk as it arrives (the
//! server's memory stays far below the object's size), stored whole, its
//! last frame served back byte for byte.

use std::path::Path;
use std::process::Command;

use yunying_dicom::write::ObjectBuilder;
use yunying_dicom::{Tag, VR};
use yunying_test_support::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
const US_MULTIFRAME: &str = "1.2.840.10008.5.1.4.1.1.3.1";
const STUDY: &str = "1.2.826.0.1.3680043.8.1055.77";
const SERIES: &str = "1.2.826.0.1.3680043.8.1055.77.1";
const SOP: &str = "1.2.826.0.1.3680043.8.1055.77.1.1";
const ROWS: usize = 480;
const COLS: usize = 640;
const FRAMES: usize = 110;

fn frame(n: usize) -> Vec<u8> {
    (0..ROWS * COLS * 3).map(|i| ((i / 3 + n * 7) % 251) as u8).collect()
}

fn cine() -> Vec<u8> {
    let mut b = ObjectBuilder::new(US_MULTIFRAME, SOP, "1.2.840.10008.1.2.1");
    b.charset("ISO_IR 192");
    b.str(Tag(0x0010, 0x0010), VR::PN, "Chen^Jing=陈^静");
    b.str(Tag(0x0010, 0x0020), VR::LO, "US0001");
    b.str(Tag(0x0020, 0x000D), VR::UI, STUDY);
    b.str(Tag(0x0020, 0x000E), VR::UI, SERIES);
    b.str(Tag(0x0008, 0x0060), VR::CS, "US");
    b.str(Tag(0x0008, 0x0020), VR::DA, "20251120");
    b.str(Tag(0x0020, 0x0013), VR::IS, "1");
    b.str(Tag(0x0028, 0x0008), VR::IS, &FRAMES.to_string());
    b.u16(Tag(0x0028, 0x0002), 3).u16(Tag(0x0028, 0x0006), 0);
    b.u16(Tag(0x0028, 0x0010), ROWS as u16).u16(Tag(0x0028, 0x0011), COLS as u16);
    b.u16(Tag(0x0028, 0x0100), 8).u16(Tag(0x0028, 0x0101), 8).u16(Tag(0x0028, 0x0102), 7);
    b.str(Tag(0x0028, 0x0004), VR::CS, "RGB");
    let mut pixels = Vec::with_capacity(ROWS * COLS * 3 * FRAMES);
    for n in 0..FRAMES {
        pixels.extend_from_slice(&frame(n));
    }
    b.pixel_data_native(pixels, VR::OB);
    b.to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_cine_is_streamed_stored_and_served() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cine.dcm");
    let bytes = cine();
    assert!(bytes.len() > 100_000_000, "{} bytes", bytes.len());
    std::fs::write(&file, &bytes).unwrap();
    drop(bytes);

    let server = TestServer::start(Path::new(BIN), &[], &[]).await;
    server.cli(&["ae", "add", "ECHOGRAPH", "--institution", "DEFAULT", "--allow", "store"]);
    let before_kib = server.peak_rss_kib();
    let out = Command::new("storescu")
        .env("TCP_NODELAY", "1")
        .args(["-aet", "ECHOGRAPH", "-aec", "YUNYING", "127.0.0.1", &server.dicom_port().to_string()])
        .arg(&file)
        .output()
        .expect("storescu (DCMTK) must be installed");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // Streamed, not buffered: the server's peak memory grew by far less than the object.
    let peak_mib = server.peak_rss_kib() / 1024;
    eprintln!("server peak RSS after a {} MB C-STORE: {peak_mib} MiB", std::fs::metadata(&file).unwrap().len() / 1_000_000);
    assert!(peak_mib < 80, "peak RSS {peak_mib} MiB (was {} MiB before) for a 100 MB object", before_kib / 1024);

    // Stored whole, and its last frame comes back byte for byte.
    let c = server.client();
    let url = format!("{}/studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/{FRAMES}", server.dicomweb());
    let r = c
        .get(&url)
        .header("Accept", "multipart/related; type=\"application/octet-stream\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let body = r.bytes().await.unwrap();
    let parts = yunying_test_support::multipart_parts(&ct, &body);
    assert_eq!(parts.len(), 1);
    assert!(parts[0] == frame(FRAMES - 1), "the last frame differs");
    let stored = c
        .get(format!("{}/studies/{STUDY}/series/{SERIES}/instances/{SOP}", server.dicomweb()))
        .header("Accept", "application/dicom; transfer-syntax=*")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let original = std::fs::read(&file).unwrap();
    let offset = |b: &[u8]| yunying_dicom::dataset_offset(b).expect("Part-10");
    assert!(stored[offset(&stored)..] == original[offset(&original)..], "the data set is stored byte for byte");
}
