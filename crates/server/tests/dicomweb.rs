//! The real `yunying` binary, driven over HTTP: STOW-RS, QIDO-RS and WADO-RS
//! on both catalog backends, hostile input, a crash in the middle of an
//! ingest, and the configuration round trip.

use std::time::Duration;

use yunying_dicom::write::{DataSetBuilder, ObjectBuilder};
use yunying_dicom::{Tag, VR};
use yunying_test_support::{PgDatabase, TestServer, multipart_body, multipart_parts};

const BIN: &str = env!("CARGO_BIN_EXE_yunying");
const STUDY: &str = "1.2.826.0.1.3680043.8.1055.1";

fn ct(series: &str, sop: &str, n: u16, pixel: u16) -> Vec<u8> {
    let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", sop, "1.2.840.10008.1.2.1");
    b.charset("GB18030");
    b.str(Tag(0x0010, 0x0010), VR::PN, "Wang^XiaoDong=王^小东");
    b.str(Tag(0x0010, 0x0020), VR::LO, "SZ0001");
    b.str(Tag(0x0010, 0x0040), VR::CS, "M");
    b.str(Tag(0x0020, 0x000D), VR::UI, STUDY);
    b.str(Tag(0x0020, 0x000E), VR::UI, series);
    b.str(Tag(0x0020, 0x0013), VR::IS, &n.to_string());
    b.str(Tag(0x0020, 0x0011), VR::IS, if series.ends_with(".2") { "2" } else { "1" });
    b.str(Tag(0x0008, 0x0060), VR::CS, if series.ends_with(".2") { "SR" } else { "CT" });
    b.str(Tag(0x0008, 0x0020), VR::DA, "20240115");
    b.str(Tag(0x0008, 0x0050), VR::SH, "ACC001");
    b.str(Tag(0x0008, 0x1030), VR::LO, "胸部CT平扫");
    b.u16(Tag(0x0028, 0x0002), 1).u16(Tag(0x0028, 0x0010), 8).u16(Tag(0x0028, 0x0011), 8);
    b.u16(Tag(0x0028, 0x0100), 16).u16(Tag(0x0028, 0x0101), 12).u16(Tag(0x0028, 0x0102), 11);
    b.str(Tag(0x0028, 0x0004), VR::CS, "MONOCHROME2");
    // A private binary value big enough to become bulk data.
    b.bytes(Tag(0x0009, 0x0010), VR::LO, b"YUNYING TEST".to_vec());
    b.bytes(Tag(0x0009, 0x1001), VR::OB, vec![7u8; 6000]);
    let mut item = DataSetBuilder::new();
    item.str(Tag(0x0008, 0x0100), VR::SH, "T-D3000");
    b.dataset.sequence(Tag(0x0008, 0x2218), vec![item]);
    let px: Vec<u8> = (0..64u16).flat_map(|i| (pixel + i).to_le_bytes()).collect();
    b.pixel_data_native(px, VR::OW);
    b.to_bytes()
}

async fn stow(client: &reqwest::Client, base: &str, parts: &[Vec<u8>]) -> (u16, serde_json::Value, Vec<String>) {
    let (ct, body) = multipart_body(parts);
    let r = client.post(format!("{base}/studies")).header("Content-Type", ct).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let warnings = r.headers().get_all("warning").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let json = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or_default();
    (status, json, warnings)
}

async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

/// The whole STOW → QIDO → WADO flow, as a client sees it.
async fn roundtrip(server: &TestServer) {
    let c = server.client();
    let dw = server.dicomweb();
    let objects = vec![
        ct(&format!("{STUDY}.1"), &format!("{STUDY}.1.1"), 1, 100),
        ct(&format!("{STUDY}.1"), &format!("{STUDY}.1.2"), 2, 200),
        ct(&format!("{STUDY}.2"), &format!("{STUDY}.2.1"), 1, 300),
    ];
    let (status, body, _) = stow(&c, &dw, &objects).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["00081199"]["Value"].as_array().unwrap().len(), 3);
    assert_eq!(body["00081190"]["Value"][0], format!("{dw}/studies/{STUDY}"));
    // An identical re-send changes nothing and succeeds.
    let (status, _, _) = stow(&c, &dw, &objects[..1]).await;
    assert_eq!(status, 200);

    // QIDO
    let studies = get_json(&c, &format!("{dw}/studies?PatientID=SZ0001")).await;
    assert_eq!(studies.as_array().unwrap().len(), 1);
    let s = &studies[0];
    assert_eq!(s["00100010"]["Value"][0]["Alphabetic"], "Wang^XiaoDong");
    assert_eq!(s["00100010"]["Value"][0]["Ideographic"], "王^小东");
    assert_eq!(s["00081030"]["Value"][0], "胸部CT平扫");
    assert_eq!(s["00201206"]["Value"][0], 2);
    assert_eq!(s["00201208"]["Value"][0], 3);
    assert_eq!(s["00080061"]["Value"], serde_json::json!(["CT", "SR"]));
    let by_name = get_json(&c, &format!("{dw}/studies?PatientName=%E7%8E%8B*")).await; // 王*
    assert_eq!(by_name.as_array().unwrap().len(), 1);
    let none = get_json(&c, &format!("{dw}/studies?PatientName=Li*")).await;
    assert_eq!(none.as_array().unwrap().len(), 0);
    let ranged = get_json(&c, &format!("{dw}/studies?StudyDate=20240101-20240131&ModalitiesInStudy=SR")).await;
    assert_eq!(ranged.as_array().unwrap().len(), 1);
    let series = get_json(&c, &format!("{dw}/studies/{STUDY}/series")).await;
    assert_eq!(series.as_array().unwrap().len(), 2);
    assert_eq!(series[0]["00200011"]["Value"][0], 1);
    assert_eq!(series[0]["00201209"]["Value"][0], 2);
    let inst = get_json(&c, &format!("{dw}/studies/{STUDY}/series/{STUDY}.1/instances")).await;
    assert_eq!(inst.as_array().unwrap().len(), 2);
    assert_eq!(inst[0]["00200013"]["Value"][0], 1);
    let all = get_json(&c, &format!("{dw}/instances?SOPInstanceUID={STUDY}.2.1&includefield=all")).await;
    assert_eq!(all[0]["0020000E"]["Value"][0], format!("{STUDY}.2"));
    let bad = c.get(format!("{dw}/studies?NoSuchKeyword=1")).send().await.unwrap();
    assert_eq!(bad.status(), 400);

    // WADO-RS: the object comes back byte for byte.
    let url = format!("{dw}/studies/{STUDY}/series/{STUDY}.1/instances/{STUDY}.1.2");
    let r = c.get(&url).header("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=*").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let parts = multipart_parts(&ctype, &r.bytes().await.unwrap());
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0], objects[1]);
    let r = c.get(format!("{dw}/studies/{STUDY}")).send().await.unwrap();
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(multipart_parts(&ctype, &r.bytes().await.unwrap()).len(), 3);
    // Single part with a byte range.
    let r = c.get(&url).header("Accept", "application/dicom").header("Range", "bytes=128-131").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 128-131/{}", objects[1].len()));
    assert_eq!(&r.bytes().await.unwrap()[..], b"DICM");
    // A transfer syntax this server does not encode (JPEG XL): 406 with a reason.
    let r = c
        .get(&url)
        .header("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.110")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    assert!(r.text().await.unwrap().contains("Explicit VR Little Endian"));
    assert_eq!(c.get(format!("{dw}/studies/9.9.9")).send().await.unwrap().status(), 404);

    // Frames, as a viewer asks for them.
    let r = c
        .get(format!("{url}/frames/1"))
        .header("Accept", "multipart/related; type=application/octet-stream; transfer-syntax=*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let frame = multipart_parts(&ctype, &r.bytes().await.unwrap()).remove(0);
    let expected: Vec<u8> = (0..64u16).flat_map(|i| (200 + i).to_le_bytes()).collect();
    assert_eq!(frame, expected);
    assert_eq!(c.get(format!("{url}/frames/2")).send().await.unwrap().status(), 404);

    // Metadata with absolute bulk data URIs that resolve.
    let meta = get_json(&c, &format!("{dw}/studies/{STUDY}/series/{STUDY}.1/metadata")).await;
    assert_eq!(meta.as_array().unwrap().len(), 2);
    assert_eq!(meta[0]["00100010"]["Value"][0]["Ideographic"], "王^小东");
    assert_eq!(meta[0]["00082218"]["Value"][0]["00080100"]["Value"][0], "T-D3000");
    let pixel_uri = meta[1]["7FE00010"]["BulkDataURI"].as_str().unwrap().to_string();
    assert!(pixel_uri.starts_with(&dw), "{pixel_uri}");
    let private_uri = meta[1]["00091001"]["BulkDataURI"].as_str().unwrap().to_string();
    let r = c.get(&private_uri).header("Accept", "application/octet-stream").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), vec![7u8; 6000]);
    let r = c.get(&pixel_uri).send().await.unwrap();
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(multipart_parts(&ctype, &r.bytes().await.unwrap())[0], expected);
    let study_meta = get_json(&c, &format!("{dw}/studies/{STUDY}/metadata")).await;
    assert_eq!(study_meta.as_array().unwrap().len(), 3);

    // Media types STOW-RS does not take.
    let r = c.post(format!("{dw}/studies")).header("Content-Type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_qido_wado_on_sqlite() {
    let server = TestServer::start(std::path::Path::new(BIN), &[], &[]).await;
    let health = get_json(&reqwest::Client::new(), &format!("{}/healthz", server.base)).await;
    assert_eq!(health["catalog"], "sqlite");
    roundtrip(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_qido_wado_on_postgres() {
    let db = PgDatabase::create("yy_server").await;
    let server = TestServer::start(std::path::Path::new(BIN), &["--catalog-url", &db.url], &[]).await;
    let health = get_json(&reqwest::Client::new(), &format!("{}/healthz", server.base)).await;
    assert_eq!(health["catalog"], "postgres");
    roundtrip(&server).await;
}

/// A 482-byte file that declares a 4 GB element (dicom-rs 0.10.1 allocates
/// 4.2 GB for it), and other broken input: refused with the right reason,
/// nothing stored, the server keeps serving with little memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_changes_nothing() {
    let server = TestServer::start(std::path::Path::new(BIN), &[], &[]).await;
    let c = server.client();
    let dw = server.dicomweb();
    let mut bomb = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.5", "1.2.840.10008.1.2.1");
    bomb.str(Tag(0x0020, 0x000D), VR::UI, "1.2.3");
    bomb.raw(vec![0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]);
    let mut bomb = bomb.to_bytes();
    bomb.resize(482, 0);
    let good = ct(&format!("{STUDY}.1"), &format!("{STUDY}.1.1"), 1, 100);
    let truncated = good[..good.len() - 10].to_vec();
    let mut no_series = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.6", "1.2.840.10008.1.2.1");
    no_series.str(Tag(0x0020, 0x000D), VR::UI, "1.2.3");
    let parts = vec![bomb, truncated, b"this is not DICOM at all".to_vec(), no_series.to_bytes()];
    let (status, body, warnings) = stow(&c, &dw, &parts).await;
    assert_eq!(status, 409, "{body}");
    let failed = body["00081198"]["Value"].as_array().unwrap();
    let reasons: Vec<u64> = failed.iter().map(|f| f["00081197"]["Value"][0].as_u64().unwrap()).collect();
    assert_eq!(reasons, vec![0xC000, 0xC000, 0xC000, 0xA900]);
    assert_eq!(failed[3]["00081155"]["Value"][0], "1.2.3.4.6");
    assert!(warnings.iter().any(|w| w.contains("declares 4294967280 bytes")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("SeriesInstanceUID")), "{warnings:?}");
    // Nothing stored, still serving, memory small.
    let studies = get_json(&c, &format!("{dw}/studies")).await;
    assert_eq!(studies.as_array().unwrap().len(), 0);
    let blobs = server.data.join("blobs");
    assert_eq!(walk_files(&blobs), 0);
    assert_eq!(walk_files(&server.data.join("staging")), 0);
    let (status, _, _) = stow(&c, &dw, &[good]).await;
    assert_eq!(status, 200);
    let rss_mb = server.peak_rss_kib() / 1024;
    assert!(rss_mb < 150, "peak RSS {rss_mb} MB after hostile input");
    // A body cut in the middle of a part: 400, nothing stored.
    let (ct_header, body) = multipart_body(&[ct(&format!("{STUDY}.1"), &format!("{STUDY}.1.9"), 9, 1)]);
    let cut = body[..body.len() / 2].to_vec();
    let r = c.post(format!("{dw}/studies")).header("Content-Type", ct_header).body(cut).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let inst = get_json(&c, &format!("{dw}/instances")).await;
    assert_eq!(inst.as_array().unwrap().len(), 1);
}

fn walk_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| if e.file_type().map(|t| t.is_dir()).unwrap_or(false) { walk_files(&e.path()) } else { 1 })
        .sum()
}

/// A SIGKILL while a STOW-RS request streams in: after restart, every
/// instance the catalog shows is complete and retrievable, the staging area
/// is empty, and no blob is left without a catalog row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_ingest_leaves_nothing_half_visible() {
    let mut server = TestServer::start(std::path::Path::new(BIN), &[], &[]).await;
    let dw = server.dicomweb();
    let objects: Vec<Vec<u8>> =
        (1..=60u16).map(|i| ct(&format!("{STUDY}.1"), &format!("{STUDY}.1.{i}"), i, i * 10)).collect();
    let sent = objects.clone();
    // Stream the parts slowly so that the crash lands mid-request.
    let (ct_header, _) = multipart_body(&[]);
    let boundary = ct_header.rsplit("boundary=").next().unwrap().to_string();
    let stream = futures_stream(objects, boundary);
    let url = format!("{dw}/studies");
    let client = server.client();
    let sender = tokio::spawn(async move {
        let _ = client
            .post(url)
            .header("Content-Type", ct_header)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await;
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.crash();
    let _ = sender.await;
    server.restart().await;
    assert_eq!(walk_files(&server.data.join("staging")), 0, "staging emptied by recovery");
    let c = server.client();
    let dw = server.dicomweb();
    let inst = get_json(&c, &format!("{dw}/instances?limit=1000")).await;
    let listed = inst.as_array().unwrap();
    assert!(!listed.is_empty() && listed.len() < 60, "crash should land mid-request, saw {}", listed.len());
    for i in listed {
        let sop = i["00080018"]["Value"][0].as_str().unwrap();
        let n: usize = sop.rsplit('.').next().unwrap().parse().unwrap();
        let r = c
            .get(format!("{dw}/studies/{STUDY}/series/{STUDY}.1/instances/{sop}"))
            .header("Accept", "application/dicom; transfer-syntax=*")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().to_vec(), sent[n - 1], "instance {sop} intact");
    }
    // Originals only: derived frames (the streaming copy) are a cache beside them.
    assert_eq!(walk_files(&server.data.join("blobs/dicom")), listed.len(), "no blob without a catalog row");
}

fn futures_stream(
    objects: Vec<Vec<u8>>,
    boundary: String,
) -> impl futures_core_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures_core_stream::unfold((objects.into_iter(), boundary, false), |(mut it, b, done)| async move {
        if done {
            return None;
        }
        match it.next() {
            Some(o) => {
                tokio::time::sleep(Duration::from_millis(25)).await;
                let mut part = format!("--{b}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
                part.extend_from_slice(&o);
                part.extend_from_slice(b"\r\n");
                Some((Ok(part), (it, b, false)))
            }
            None => Some((Ok(format!("--{b}--\r\n").into_bytes()), (it, b, true))),
        }
    })
}

mod futures_core_stream {
    pub use futures::stream::{Stream, unfold};
}

/// `yunying default-config` prints a configuration the server accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_round_trip() {
    let out = std::process::Command::new(BIN).arg("default-config").output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yunying.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let server = TestServer::start(std::path::Path::new(BIN), &["--config", path.to_str().unwrap()], &[]).await;
    let health = get_json(&reqwest::Client::new(), &format!("{}/healthz", server.base)).await;
    assert_eq!(health["status"], "ok");
    // A typo in the file is refused with the key named.
    std::fs::write(&path, "[server]\nhtpp = \"127.0.0.1:1\"\n").unwrap();
    let out = std::process::Command::new(BIN).args(["serve", "--config", path.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("htpp"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Patient names in every character set Chinese equipment sends — GB18030,
/// GBK, GB2312 through ISO 2022 IR 58 escapes, UTF-8, and GBK bytes with no
/// Specific Character Set at all — come out of QIDO-RS and WADO-RS metadata
/// as the same Unicode name, and are found by their ideographic prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_character_sets_come_out_right() {
    let server = TestServer::start(std::path::Path::new(BIN), &[], &[]).await;
    let c = server.client();
    let dw = server.dicomweb();
    let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
    let ir58 = {
        let mut b = b"Wang^XiaoDong=".to_vec();
        b.extend_from_slice(b"\x1b$)A");
        b.extend_from_slice(&gbk("王"));
        b.push(b'^');
        b.extend_from_slice(b"\x1b$)A");
        b.extend_from_slice(&gbk("小东"));
        b.push(b'=');
        b
    };
    type Case<'a> = (&'a str, Option<&'a [u8]>, Vec<u8>);
    let cases: Vec<Case> = vec![
        ("gb18030", Some(b"GB18030 "), encoding_rs::GB18030.encode("Wang^XiaoDong=王^小东").0.into_owned()),
        ("gbk", Some(b"GBK "), gbk("Wang^XiaoDong=王^小东")),
        ("ir58", Some(b"\\ISO 2022 IR 58"), ir58),
        ("utf8", Some(b"ISO_IR 192"), "Wang^XiaoDong=王^小东".as_bytes().to_vec()),
        ("undeclared", None, gbk("Wang^XiaoDong=王^小东")),
    ];
    for (i, (label, charset, name)) in cases.iter().enumerate() {
        let study = format!("1.2.826.0.1.3680043.8.1055.77.{i}");
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", &format!("{study}.1.1"), "1.2.840.10008.1.2.1");
        if let Some(cs) = charset {
            let mut v = cs.to_vec();
            if v.len() % 2 == 1 {
                v.push(b' ');
            }
            b.bytes(Tag(0x0008, 0x0005), VR::CS, v);
        }
        let mut n = name.clone();
        if n.len() % 2 == 1 {
            n.push(b' ');
        }
        b.bytes(Tag(0x0010, 0x0010), VR::PN, n);
        b.str(Tag(0x0010, 0x0020), VR::LO, &format!("CS{i}"));
        b.str(Tag(0x0020, 0x000D), VR::UI, &study);
        b.str(Tag(0x0020, 0x000E), VR::UI, &format!("{study}.1"));
        let (status, body, _) = stow(&c, &dw, &[b.to_bytes()]).await;
        assert_eq!(status, 200, "{label}: {body}");
        let found = get_json(&c, &format!("{dw}/studies?PatientName=%E7%8E%8B*&PatientID=CS{i}")).await; // 王*
        assert_eq!(found.as_array().unwrap().len(), 1, "{label}: not found by ideographic prefix");
        let pn = &found[0]["00100010"]["Value"][0];
        assert_eq!(pn["Alphabetic"], "Wang^XiaoDong", "{label}");
        assert_eq!(pn["Ideographic"], "王^小东", "{label}");
        let meta = get_json(&c, &format!("{dw}/studies/{study}/metadata")).await;
        assert_eq!(meta[0]["00100010"]["Value"][0]["Ideographic"], "王^小东", "{label}");
        assert_eq!(meta[0]["00080005"]["Value"][0], "ISO_IR 192", "{label}: JSON is UTF-8 whatever was received");
    }
}

/// The same round trip with the scaled-out storage: PostgreSQL catalog and
/// an S3-compatible object store (moto) as the only tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_qido_wado_on_s3_and_postgres() {
    let s3 = yunying_test_support::S3TestServer::start().await;
    s3.create_bucket("archive").await;
    let db = PgDatabase::create("yy_server_s3").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("yunying.toml");
    std::fs::write(&cfg, format!("[storage]\nkind = \"s3\"\n{}", s3.toml("storage", "archive"))).unwrap();
    let env = yunying_test_support::S3TestServer::env("YUNYING_S3");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server =
        TestServer::start(std::path::Path::new(BIN), &["--config", cfg.to_str().unwrap(), "--catalog-url", &db.url], &env)
            .await;
    roundtrip(&server).await;
    assert!(s3.keys("archive").await.iter().any(|k| k.starts_with("dicom/v1/")), "the objects are in the bucket");
    assert!(!server.data.join("blobs").join("dicom").exists(), "nothing in the data directory");
}
