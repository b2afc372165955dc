//! Rendered resources on the real binary, with real files: WADO-RS
//! `/rendered` and `/thumbnail` and WADO-URI, compared with DCMTK's
//! `dcmj2pnm` rendering of the same file.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use yunying_test_support::{TestServer, file_uids as uids, multipart_body, testdata};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// DCMTK's rendering with the file's first window (or min-max without one).
fn dcmj2pnm(path: &Path, window: &[&str]) -> (u32, u32, Vec<u8>) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut args: Vec<&str> = vec!["--write-png"];
    args.extend(window);
    let r = Command::new("dcmj2pnm").args(&args).arg(path).arg(out.path()).output().unwrap();
    assert!(r.status.success(), "dcmj2pnm: {}", String::from_utf8_lossy(&r.stderr));
    decode_png(&std::fs::read(out.path()).unwrap())
}

fn compare(label: &str, ours: &(u32, u32, Vec<u8>), theirs: &(u32, u32, Vec<u8>)) {
    assert_eq!((ours.0, ours.1), (theirs.0, theirs.1), "{label}: size");
    assert_eq!(ours.2.len(), theirs.2.len(), "{label}: channels");
    let diffs: Vec<u32> = ours.2.iter().zip(&theirs.2).map(|(a, b)| (*a as i32 - *b as i32).unsigned_abs()).collect();
    let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
    let max = *diffs.iter().max().unwrap();
    eprintln!("{label}: mean |difference| {mean:.3}, max {max} (against dcmj2pnm)");
    assert!(mean <= 1.0 && max <= 3, "{label}: mean {mean}, max {max}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_images_match_dcmtk_and_wado_uri_serves_them() {
    let data = testdata();
    let server = TestServer::start(Path::new(BIN), &[], &[]).await;
    let c = server.client();
    let dw = server.dicomweb();
    // Distinct SOP instances (MR_small and its RLE twin share their UIDs:
    // the multi-frame RLE MR here is another object).
    let files: Vec<PathBuf> = [
        "pydicom/test_files/CT_small.dcm",
        "pydicom/test_files/MR_small_bigendian.dcm",
        "pydicom-data/emri_small_RLE.dcm",
        "pydicom/test_files/JPEG2000.dcm",
    ]
    .iter()
    .map(|f| data.join(f))
    .collect();
    // A JPEG-LS object, made by DCMTK from the CT with its own SOP Instance UID.
    let made = tempfile::tempdir().unwrap();
    let jls = made.path().join("ct_jls.dcm");
    assert!(Command::new("dcmcjpls").arg("+ua").arg(&files[0]).arg(&jls).status().unwrap().success());
    let mut files = files;
    files.push(jls);
    for f in &files {
        let (ct, body) = multipart_body(&[std::fs::read(f).unwrap()]);
        let r = c.post(format!("{dw}/studies")).header("Content-Type", ct).body(body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", f.display());
    }
    let url = |f: &Path, what: &str| {
        let (st, se, sop) = uids(f);
        format!("{dw}/studies/{st}/series/{se}/instances/{sop}/{what}")
    };

    // PNG with the file's window (or its range when it has none), as
    // dcmj2pnm renders it: a 16-bit signed CT, a big-endian MR, an RLE MR.
    let cases: [(&Path, &str, &str, &[&str]); 3] = [
        (&files[0], "CT 16-bit signed, no window", "rendered", &["+Wm"]),
        (&files[1], "MR big endian", "rendered", &["+Wi", "1"]),
        (&files[2], "MR RLE, frame 5 of 10, no window", "frames/5/rendered", &["+Wm", "+F", "5"]),
    ];
    for (f, label, what, window) in cases {
        let r = c.get(url(f, what)).header("Accept", "image/png").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{label}");
        assert_eq!(r.headers()["content-type"], "image/png");
        let ours = decode_png(&r.bytes().await.unwrap());
        let theirs = dcmj2pnm(f, window);
        compare(label, &ours, &theirs);
    }
    // An explicit window, and the JPEG default.
    let ct = &files[0];
    let r = c.get(format!("{}?window=40,400", url(ct, "rendered"))).header("Accept", "image/png").send().await.unwrap();
    compare("CT window 40/400", &decode_png(&r.bytes().await.unwrap()), &dcmj2pnm(ct, &["+Ww", "40", "400"]));
    let r = c.get(url(ct, "frames/1/rendered")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let jpeg = r.bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    // The client's copy is still good: 304.
    let r = c.get(url(ct, "frames/1/rendered")).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // Compressed frames asked for as native little endian are decompressed:
    // byte for byte DCMTK's dcmdrle output.
    let rle = &files[2];
    let raw_dir = tempfile::tempdir().unwrap();
    let native = raw_dir.path().join("native.dcm");
    assert!(Command::new("dcmdrle").arg("+te").arg(rle).arg(&native).status().unwrap().success());
    assert!(Command::new("dcmdump").arg("+W").arg(raw_dir.path()).arg(&native).output().unwrap().status.success());
    let raw = std::fs::read(raw_dir.path().join("native.dcm.0.raw")).unwrap();
    let frame_len = raw.len() / 10;
    let r = c
        .get(url(rle, "frames/5"))
        .header("Accept", "multipart/related; type=\"application/octet-stream\"; transfer-syntax=1.2.840.10008.1.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct_header = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct_header.contains("transfer-syntax=1.2.840.10008.1.2.1"), "{ct_header}");
    let parts = yunying_test_support::multipart_parts(&ct_header, &r.bytes().await.unwrap());
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0], raw[4 * frame_len..5 * frame_len].to_vec(), "frame 5 decompressed bit-exact");
    // As stored, they stay RLE; JPEG 2000 cannot be decompressed here yet.
    let r = c.get(url(rle, "frames/5")).header("Accept", "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*").send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().contains("1.2.840.10008.1.2.5"));
    // JPEG 2000 is decoded too (OpenJPEG), and JPEG-LS (CharLS).
    let native_le = "multipart/related; type=\"application/octet-stream\"; transfer-syntax=1.2.840.10008.1.2.1";
    let r = c.get(url(&files[3], "frames/1")).header("Accept", native_le).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "JPEG 2000 decompressed");
    let ct_header = r.headers()["content-type"].to_str().unwrap().to_string();
    let parts = yunying_test_support::multipart_parts(&ct_header, &r.bytes().await.unwrap());
    assert_eq!(parts[0].len(), 1024 * 256 * 2, "1024x256, 16-bit");
    let r = c.get(url(&files[4], "frames/1")).header("Accept", native_le).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "JPEG-LS decompressed");
    let ct_header = r.headers()["content-type"].to_str().unwrap().to_string();
    let parts = yunying_test_support::multipart_parts(&ct_header, &r.bytes().await.unwrap());
    assert_eq!(parts[0].len(), 128 * 128 * 2, "128x128, 16-bit");

    // Thumbnails fit 128x128 at every level.
    let (st, se, _) = uids(ct);
    for u in [format!("{dw}/studies/{st}/thumbnail"), format!("{dw}/studies/{st}/series/{se}/thumbnail"), url(ct, "thumbnail")] {
        let r = c.get(&u).header("Accept", "image/png").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{u}");
        let (w, h, _) = decode_png(&r.bytes().await.unwrap());
        assert!(w <= 128 && h <= 128 && (w == 128 || h == 128), "{u}: {w}x{h}");
    }
    let r = c.get(format!("{}?viewport=64,64", url(ct, "rendered"))).header("Accept", "image/png").send().await.unwrap();
    let (w, h, _) = decode_png(&r.bytes().await.unwrap());
    assert!(w <= 64 && h <= 64, "viewport: {w}x{h}");

    // Bad parameters and unknown media types.
    assert_eq!(c.get(format!("{}?window=40", url(ct, "rendered"))).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(c.get(url(ct, "rendered")).header("Accept", "image/gif").send().await.unwrap().status(), StatusCode::NOT_ACCEPTABLE);
    let r = c.get(url(&files[3], "rendered")).header("Accept", "image/png").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "JPEG 2000 rendered");
    let (w, h, _) = decode_png(&r.bytes().await.unwrap());
    assert_eq!((w, h), (256, 1024));
    let r = c.get(url(&files[4], "rendered")).header("Accept", "image/png").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "JPEG-LS rendered");
    // dcmj2pnm reads no JPEG-LS: the lossless copy renders as the original does.
    compare("CT JPEG-LS", &decode_png(&r.bytes().await.unwrap()), &dcmj2pnm(&files[0], &["+Wm"]));
    // WebP, where the client asks for it.
    let r = c.get(url(ct, "rendered")).header("Accept", "image/webp").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(&r.bytes().await.unwrap()[..4], b"RIFF");
    // Credentials as everywhere.
    assert_eq!(reqwest::get(url(ct, "rendered")).await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // WADO-URI, as older HIS links ask for it.
    let (st, se, sop) = uids(ct);
    let wado = format!("{}/wado?requestType=WADO&studyUID={st}&seriesUID={se}&objectUID={sop}", server.base);
    let r = c.get(format!("{wado}&contentType=image/png&windowCenter=40&windowWidth=400")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    compare("WADO-URI CT 40/400", &decode_png(&r.bytes().await.unwrap()), &dcmj2pnm(ct, &["+Ww", "40", "400"]));
    let r = c.get(format!("{wado}&contentType=application/dicom")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), std::fs::read(ct).unwrap(), "the object as stored");
    let r = c.get(&wado).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(c.get(format!("{}/wado?requestType=WADO", server.base)).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
}
