//! The pixels phase: what a viewer waits for before it draws, on the CT
//! series of the series phase.
//!
//! 1. `/frames/1/rendered` of the middle slice, stored alone, on Yunying
//!    (SQLite) and Orthanc: for JPEG, then PNG, each on a fresh server, the
//!    first request (nothing cached) and the median of the next ones on the
//!    same keep-alive connection;
//! 2. HTJ2K lossless encoding of that frame in-process
//!    (`yunying_pixels::encode_htj2k`, one thread);
//! 3. Yunying (SQLite) only, on a fresh server: STOW-RS of the whole series
//!    in one request, then the time until `yunying derive --json` reports
//!    every streaming copy (HTJ2K RPCL) made;
//! 4. the first view: the bytes of the middle frame's HTJ2K RPCL codestream
//!    up to its 64×64 resolution, and a `Range` request for exactly them
//!    (206, `Content-Range`, the bytes decode to that resolution);
//! 5. every frame as HTJ2K RPCL over 6 connections, and as stored on the
//!    same server (informative).
//!
//! Orthanc 1.10 makes no HTJ2K: 2 to 5 are Yunying's alone.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use yunying_pixels::openjpeg_decode::{DecodeOptions, decode};
use yunying_pixels::{
    DecodedFrame, HtOptions, ImageInfo, NativeFrame, Samples, decode_frame, encode_htj2k, native_bytes, resolution_ends,
};

use crate::data::{CtSeries, FileEntry};
use crate::measure::{self, FrameAsk};
use crate::report::{Metric, Results, median, percentile};
use crate::server::{Launch, Product, Server};
use crate::{FRAME_CONNECTIONS, FRAMES_REPS, ms};

/// Requests timed after the first one of each rendered format.
pub const RENDERED_REQUESTS: usize = 50;
/// Timed HTJ2K encodings of the frame (after one untimed).
pub const ENCODE_REPS: usize = 30;
/// How often `yunying derive --json` is asked while the copies are made.
pub const DERIVE_POLL: Duration = Duration::from_millis(250);
/// The streaming copy of the series must be ready within this (an error otherwise).
const DERIVE_TIMEOUT: Duration = Duration::from_secs(600);
/// The copy of the one rendered frame, waited for (untimed) so that it does
/// not share the cores with the first request.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// HTJ2K lossless with RPCL progression, one frame, single part.
const HTJ2K_ACCEPT: &str = "image/jphc; transfer-syntax=1.2.840.10008.1.2.4.202";
/// SOC then SIZ: the start of every codestream.
const SOC_SIZ: &[u8] = &[0xFF, 0x4F, 0xFF, 0x51];
/// The first view: the first resolution at least this large on its short side.
pub const FIRST_VIEW_SIDE: u32 = 64;

/// A rendered format and its metrics.
#[derive(Debug, Clone, Copy)]
struct Format {
    name: &'static str,
    accept: &'static str,
    magic: &'static [u8],
    first: Metric,
    next: Metric,
}

const FORMATS: [Format; 2] = [
    Format {
        name: "JPEG",
        accept: "image/jpeg",
        magic: &[0xFF, 0xD8, 0xFF],
        first: Metric::RenderedJpegFirst,
        next: Metric::RenderedJpeg,
    },
    Format {
        name: "PNG",
        accept: "image/png",
        magic: b"\x89PNG\r\n\x1a\n",
        first: Metric::RenderedPngFirst,
        next: Metric::RenderedPng,
    },
];

/// The middle frame, decoded from its cached file: the reference samples.
struct Reference {
    info: ImageInfo,
    decoded: DecodedFrame,
    native: Vec<u8>,
}

impl Reference {
    fn load(path: &Path) -> Result<Reference, String> {
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
        let obj = yunying_dicom::parse_part10(
            &mut std::io::Cursor::new(&bytes),
            bytes.len() as u64,
            &yunying_dicom::ParseOptions::default(),
        )
        .map_err(|e| fail(&e))?;
        let index =
            yunying_dicom::frames::locate(&obj, |o| bytes.get(o as usize..o as usize + 2).map(|b| [b[0], b[1]]));
        let ranges = index.frame(1).ok_or_else(|| fail(&"no frame 1"))?;
        let mut stored = Vec::new();
        for (o, l) in ranges {
            stored.extend_from_slice(bytes.get(o as usize..(o + l) as usize).ok_or_else(|| fail(&"a short frame"))?);
        }
        let info = ImageInfo::from_dataset(&obj.dataset, obj.encoding.big_endian).map_err(|e| fail(&e))?;
        let decoded = decode_frame(&info, obj.transfer_syntax(), &stored).map_err(|e| fail(&e))?;
        let native = native_bytes(&info, &decoded).map_err(|e| fail(&e))?;
        Ok(Reference { info, decoded, native })
    }

    fn frame(&self) -> Result<NativeFrame<'_>, String> {
        NativeFrame::new(&self.info, &self.decoded, &self.native).map_err(|e| e.to_string())
    }

    fn gray(&self) -> Result<&[i32], String> {
        match &self.decoded.data {
            Samples::Gray(v) => Ok(v),
            Samples::Color(_) => Err("the CT frame decodes as colour".into()),
        }
    }
}

/// The HTJ2K encoding of the reference frame.
struct Encoded {
    times_ms: Vec<f64>,
    bytes: usize,
    bits_stored: u16,
}

fn encode(reference: &Reference) -> Result<Encoded, String> {
    let frame = reference.frame()?;
    let opts = HtOptions::default();
    let cs = encode_htj2k(&frame, &opts).map_err(|e| format!("HTJ2K encoding: {e}"))?;
    lossless(&cs, reference)?;
    let mut times_ms = Vec::with_capacity(ENCODE_REPS);
    for _ in 0..ENCODE_REPS {
        let started = Instant::now();
        let out = encode_htj2k(&frame, &opts).map_err(|e| format!("HTJ2K encoding: {e}"))?;
        times_ms.push(ms(started.elapsed()));
        std::hint::black_box(out);
    }
    Ok(Encoded { times_ms, bytes: cs.len(), bits_stored: frame.bits_stored })
}

/// The codestream decodes (OpenJPEG, strict) to the reference samples.
fn lossless(cs: &[u8], reference: &Reference) -> Result<(), String> {
    let comps = decode(cs, DecodeOptions { strict: true, reduce: 0 }).map_err(|e| e.to_string())?;
    let want = reference.gray()?;
    match comps.as_slice() {
        [c] if c.data == want => Ok(()),
        [c] => Err(format!(
            "the HTJ2K frame is not lossless ({}x{}, {} of {} samples differ)",
            c.width,
            c.height,
            c.data.iter().zip(want).filter(|(a, b)| a != b).count() + c.data.len().abs_diff(want.len()),
            want.len()
        )),
        c => Err(format!("the HTJ2K frame has {} components", c.len())),
    }
}

/// The whole phase. Products other than Yunying (SQLite) and Orthanc are
/// not measured here.
pub async fn run(launch: &Launch, ct: &CtSeries, products: &[Product], runs: usize, r: &mut Results) {
    let Some(middle) = ct.files.get(ct.files.len() / 2) else { return };
    if products.contains(&Product::Orthanc) {
        for m in [Metric::Htj2kEncode, Metric::DeriveReady, Metric::FirstView, Metric::FramesHtj2k] {
            r.not_run.insert((m, Product::Orthanc), "(no HTJ2K)".into());
        }
    }
    let path = middle.path.clone();
    let reference = match tokio::task::spawn_blocking(move || Reference::load(&path)).await {
        Ok(Ok(x)) => Arc::new(x),
        Ok(Err(e)) => return r.error(Metric::Htj2kEncode, Product::YunyingSqlite, format!("the middle frame: {e}")),
        Err(e) => return r.error(Metric::Htj2kEncode, Product::YunyingSqlite, format!("decoder: {e}")),
    };

    // HTJ2K encoding, in-process, on one (blocking) thread.
    eprintln!("[pixels] HTJ2K lossless encode of the middle frame, {ENCODE_REPS} repetitions, one thread");
    let encoded = tokio::task::spawn_blocking({
        let reference = reference.clone();
        move || encode(&reference)
    })
    .await
    .unwrap_or_else(|e| Err(format!("encoder: {e}")));
    match encoded {
        Ok(enc) => {
            let med = median(&enc.times_ms).unwrap_or(f64::NAN);
            let native = reference.native.len();
            let ratio = native as f64 / enc.bytes as f64;
            eprintln!(
                "   median {med:.2} ms (min {:.2}, max {:.2}); {} bytes, {ratio:.2}:1, {} bits stored, lossless",
                percentile(&enc.times_ms, 0.0).unwrap_or(f64::NAN),
                percentile(&enc.times_ms, 100.0).unwrap_or(f64::NAN),
                enc.bytes,
                enc.bits_stored
            );
            let e = r.entry(Metric::Htj2kEncode, Product::YunyingSqlite);
            e.runs.push(med);
            e.note = Some(format!("{}-bit, {:.0} kB, {ratio:.2}:1", enc.bits_stored, enc.bytes as f64 / 1e3));
            e.extra.insert("times_ms".into(), json!(enc.times_ms.iter().map(|&t| r3(t)).collect::<Vec<_>>()));
            e.extra.insert("bytes".into(), json!(enc.bytes));
            e.extra.insert("native_bytes".into(), json!(native));
            e.extra.insert("bits_stored".into(), json!(enc.bits_stored));
        }
        Err(e) => r.error(Metric::Htj2kEncode, Product::YunyingSqlite, e),
    }

    let rendered: Vec<Product> =
        [Product::YunyingSqlite, Product::Orthanc].into_iter().filter(|p| products.contains(p)).collect();
    for run in 1..=runs {
        for &p in &rendered {
            for f in FORMATS {
                if r.unavailable.contains_key(&p) {
                    break;
                }
                eprintln!("[pixels run {run}/{runs}] {}, /rendered as {}", p.title(), f.name);
                match Server::start(p, launch).await {
                    Ok(mut s) => {
                        rendered_run(&mut s, launch, ct, middle, f, r).await;
                        s.stop().await;
                    }
                    Err(e) => {
                        eprintln!("\n!!! cannot start {}: {e}\n!!! its column is skipped.\n", p.title());
                        r.unavailable.insert(p, e);
                    }
                }
            }
        }
        let p = Product::YunyingSqlite;
        if !products.contains(&p) || r.unavailable.contains_key(&p) {
            continue;
        }
        eprintln!("[pixels run {run}/{runs}] {}, streaming copy of the {}-image series", p.title(), ct.files.len());
        match Server::start(p, launch).await {
            Ok(mut s) => {
                copy_run(&mut s, launch, ct, &reference, r).await;
                s.stop().await;
            }
            Err(e) => {
                eprintln!("\n!!! cannot start {}: {e}\n!!! its column is skipped.\n", p.title());
                r.unavailable.insert(p, e);
            }
        }
    }

    // HTJ2K frames against the stored ones: the note of the table.
    let Some(e) = r.entries.get_mut(&(Metric::FramesHtj2k, Product::YunyingSqlite)) else { return };
    let stored: Vec<f64> = e
        .extra
        .get("stored_syntax_runs_s")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_f64())
        .collect();
    let mb = |k: &str| e.extra.get(k).and_then(|v| v.as_u64()).map(|b| b as f64 / 1e6);
    if let (Some(ht), Some(st), Some(s)) = (mb("bytes"), mb("stored_syntax_bytes"), median(&stored)) {
        e.note = Some(format!("{ht:.0} MB; as stored {s:.3} s, {st:.0} MB"));
    }
}

/// `x` rounded to 3 decimals, for the JSON.
fn r3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Appends `v` to the array `key` of an entry's extra figures.
fn push_extra(r: &mut Results, m: Metric, p: Product, key: &str, v: serde_json::Value) {
    let extra = &mut r.entry(m, p).extra;
    match extra.get_mut(key).and_then(|a| a.as_array_mut()) {
        Some(a) => a.push(v),
        None => {
            extra.insert(key.into(), json!([v]));
        }
    }
}

/// One format of `/rendered` on a fresh server holding only `file`.
async fn rendered_run(s: &mut Server, launch: &Launch, ct: &CtSeries, file: &FileEntry, f: Format, r: &mut Results) {
    let p = s.product;
    let fail = |r: &mut Results, e: String| {
        r.error(f.first, p, e.clone());
        r.error(f.next, p, e);
    };
    // The STOW also opens the keep-alive connection the requests use.
    let client = s.client();
    if let Err(e) = measure::stow(&client, &s.dicomweb, std::slice::from_ref(file)).await {
        return fail(r, e);
    }
    if p.is_yunying()
        && let Err(e) = wait_copies(s, launch, 1, Instant::now(), SETTLE_TIMEOUT).await
    {
        return fail(r, format!("the frame's streaming copy: {e}"));
    }
    let url = format!(
        "{}/studies/{}/series/{}/instances/{}/frames/1/rendered",
        s.dicomweb, ct.study_uid, ct.series_uid, file.sop_uid
    );
    let res = async {
        let mut times = Vec::with_capacity(RENDERED_REQUESTS + 1);
        let mut size = 0;
        for _ in 0..=RENDERED_REQUESTS {
            let got = measure::get(&client, &url, f.accept, true, false).await?;
            let body = got.body.unwrap_or_default();
            if !got.content_type.starts_with(f.accept) || !body.starts_with(f.magic) {
                return Err(format!("{url}: not {} ({:?}, {} bytes)", f.name, got.content_type, body.len()));
            }
            match image_size(&body) {
                Some((w, h)) if (w, h) == (ct.columns, ct.rows) => {}
                other => return Err(format!("{url}: a {other:?} image, not {}x{}", ct.columns, ct.rows)),
            }
            size = body.len();
            times.push(ms(got.elapsed));
        }
        Ok::<_, String>((times, size))
    };
    match res.await {
        Ok((times, size)) => {
            let (first, next) = (times[0], &times[1..]);
            let med = median(next).unwrap_or(f64::NAN);
            let p95 = percentile(next, 95.0).unwrap_or(f64::NAN);
            eprintln!(
                "   {}: first {first:.2} ms; next {RENDERED_REQUESTS}: median {med:.2} ms, p95 {p95:.2} ms; {size} bytes",
                f.name
            );
            r.push(f.first, p, first);
            r.push(f.next, p, med);
            let e = r.entry(f.next, p);
            e.note = Some(format!("{:.0} kB", size as f64 / 1e3));
            e.extra.insert("bytes".into(), json!(size));
            push_extra(r, f.next, p, "p95_ms", json!(r3(p95)));
        }
        Err(e) => fail(r, e),
    }
}

/// Width and height of a PNG (IHDR) or JPEG (first SOFn) image.
fn image_size(b: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| b.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]) as u32);
    if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.get(12..16) == Some(b"IHDR") {
        let be32 = |i: usize| b.get(i..i + 4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
        return Some((be32(16)?, be32(20)?));
    }
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return Some((be16(i + 7)?, be16(i + 5)?));
        }
        i += 2 + be16(i + 2)? as usize;
    }
    None
}

/// Polls `yunying derive --json` every [`DERIVE_POLL`] until no copy is
/// waiting; `expected` copies must then be made and none failed. Returns
/// the time from `since` to the end of the poll that saw it, and the copies
/// made at the first poll.
async fn wait_copies(
    s: &Server,
    launch: &Launch,
    expected: u64,
    since: Instant,
    timeout: Duration,
) -> Result<(Duration, u64), String> {
    let mut tick = tokio::time::interval(DERIVE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut at_first = None;
    loop {
        tick.tick().await;
        let b = s.derive_backlog(launch).await?;
        let elapsed = since.elapsed();
        at_first.get_or_insert(b.made);
        if b.failed > 0 {
            return Err(format!("{} copies failed: {}", b.failed, b.last_error.unwrap_or_default()));
        }
        if b.wanted == 0 {
            if b.made != expected {
                return Err(format!("{} copies made, {expected} expected", b.made));
            }
            return Ok((elapsed, at_first.unwrap_or(0)));
        }
        if elapsed > timeout {
            return Err(format!("{} copies made, {} waiting after {:.0} s", b.made, b.wanted, timeout.as_secs_f64()));
        }
    }
}

/// The series on a fresh Yunying: the streaming copy, the first view, and
/// every frame as HTJ2K and as stored.
async fn copy_run(s: &mut Server, launch: &Launch, ct: &CtSeries, reference: &Arc<Reference>, r: &mut Results) {
    let p = s.product;
    let n = ct.files.len();
    let client = s.client();
    let fail_all = |r: &mut Results, e: String| {
        for m in [Metric::DeriveReady, Metric::FirstView, Metric::FramesHtj2k] {
            r.error(m, p, e.clone());
        }
    };
    let stow = match measure::stow(&client, &s.dicomweb, &ct.files).await {
        Ok(d) => d,
        Err(e) => return fail_all(r, e),
    };
    let since = Instant::now();
    eprintln!("   STOW-RS: {n} instances in {:.2} s", stow.as_secs_f64());
    match wait_copies(s, launch, n as u64, since, DERIVE_TIMEOUT).await {
        Ok((ready, made_at_stow)) => {
            eprintln!(
                "   streaming copy: {n} made {:.2} s after the STOW response ({made_at_stow} made by then)",
                ready.as_secs_f64()
            );
            r.push(Metric::DeriveReady, p, ready.as_secs_f64());
            push_extra(r, Metric::DeriveReady, p, "made_at_stow_response", json!(made_at_stow));
            push_extra(r, Metric::DeriveReady, p, "stow_s", json!(r3(stow.as_secs_f64())));
        }
        Err(e) => return fail_all(r, format!("streaming copy: {e}")),
    }

    let series_url = format!("{}/studies/{}/series/{}", s.dicomweb, ct.study_uid, ct.series_uid);
    let middle = &ct.files[n / 2];
    let url = format!("{series_url}/instances/{}/frames/1", middle.sop_uid);
    match first_view(&client, &url, reference).await {
        Ok(v) => {
            let native = reference.native.len();
            let of_lossless = 100.0 * v.bytes as f64 / v.total as f64;
            let of_native = 100.0 * v.bytes as f64 / native as f64;
            eprintln!(
                "   first view: {} bytes to {}x{} = {of_lossless:.2} % of the {}-byte HTJ2K frame, \
                 {of_native:.2} % of native; Range request 206 in {:.2} ms, decodes to {}x{}",
                v.bytes, v.columns, v.rows, v.total, v.range_ms, v.columns, v.rows
            );
            r.push(Metric::FirstView, p, of_lossless);
            let e = r.entry(Metric::FirstView, p);
            e.note = Some(format!("{} B of {}, {of_native:.2} % of native", v.bytes, v.total));
            for (k, x) in [
                ("bytes", json!(v.bytes)),
                ("columns", json!(v.columns)),
                ("rows", json!(v.rows)),
                ("lossless_bytes", json!(v.total)),
                ("native_bytes", json!(native)),
                ("percent_of_native", json!(r3(of_native))),
            ] {
                e.extra.insert(k.into(), x);
            }
            push_extra(r, Metric::FirstView, p, "range_request_ms", json!(r3(v.range_ms)));
        }
        Err(e) => r.error(Metric::FirstView, p, e),
    }

    // Every frame, as HTJ2K RPCL then as stored, 6 connections.
    let urls: Arc<Vec<String>> =
        Arc::new(ct.files.iter().map(|f| format!("{series_url}/instances/{}/frames/1", f.sop_uid)).collect());
    let clients: Vec<reqwest::Client> = (0..FRAME_CONNECTIONS).map(|_| s.client()).collect();
    let frame_bytes = ct.rows as u64 * ct.columns as u64 * 2;
    let ht = FrameAsk { accept: HTJ2K_ACCEPT, min_bytes: SOC_SIZ.len() as u64, starts_with: SOC_SIZ };
    let stored = FrameAsk { accept: measure::FRAMES_AS_STORED, min_bytes: frame_bytes, starts_with: b"" };
    match timed_frames(&clients, &urls, ht).await {
        Ok((v, bytes)) => {
            let med = median(&v).unwrap_or(f64::NAN);
            eprintln!("   {n} frames as HTJ2K RPCL: median {med:.3} s {v:.3?}, {:.1} MB", bytes as f64 / 1e6);
            r.push(Metric::FramesHtj2k, p, med);
            r.entry(Metric::FramesHtj2k, p).extra.insert("bytes".into(), json!(bytes));
        }
        Err(e) => return r.error(Metric::FramesHtj2k, p, e),
    }
    match timed_frames(&clients, &urls, stored).await {
        Ok((v, bytes)) => {
            let med = median(&v).unwrap_or(f64::NAN);
            eprintln!("   {n} frames as stored: median {med:.3} s {v:.3?}, {:.1} MB", bytes as f64 / 1e6);
            if bytes < frame_bytes * n as u64 {
                return r.error(Metric::FramesHtj2k, p, format!("frames as stored: {bytes} bytes for {n} frames"));
            }
            push_extra(r, Metric::FramesHtj2k, p, "stored_syntax_runs_s", json!(r3(med)));
            r.entry(Metric::FramesHtj2k, p).extra.insert("stored_syntax_bytes".into(), json!(bytes));
        }
        Err(e) => r.error(Metric::FramesHtj2k, p, format!("frames as stored: {e}")),
    }
}

/// Every frame once untimed, then [`FRAMES_REPS`] timed passes: the times
/// (s) and the bytes of a pass.
async fn timed_frames(
    clients: &[reqwest::Client],
    urls: &Arc<Vec<String>>,
    ask: FrameAsk,
) -> Result<(Vec<f64>, u64), String> {
    measure::frames(clients, urls.clone(), ask).await?;
    let mut v = Vec::with_capacity(FRAMES_REPS);
    let mut bytes = 0;
    for _ in 0..FRAMES_REPS {
        let (d, b) = measure::frames(clients, urls.clone(), ask).await?;
        v.push(d.as_secs_f64());
        bytes = b;
    }
    Ok((v, bytes))
}

/// What the first view of a frame takes.
struct FirstView {
    /// Bytes from the start of the codestream to the end of the resolution.
    bytes: usize,
    columns: u32,
    rows: u32,
    /// The whole lossless codestream.
    total: usize,
    range_ms: f64,
}

/// The frame's HTJ2K RPCL codestream (checked lossless against the cached
/// file), where its first view ends, and a `Range` request for those bytes,
/// which must be a 206 with the right `Content-Range` and decode (with an
/// EOC appended) to that resolution.
async fn first_view(client: &reqwest::Client, url: &str, reference: &Arc<Reference>) -> Result<FirstView, String> {
    let got = measure::get(client, url, HTJ2K_ACCEPT, true, false).await?;
    let cs = got.body.unwrap_or_default();
    if !got.content_type.starts_with("image/jphc") || !cs.starts_with(SOC_SIZ) {
        return Err(format!("{url}: not an HTJ2K codestream ({:?}, {} bytes)", got.content_type, cs.len()));
    }
    let ends = resolution_ends(&cs).map_err(|e| format!("{url}: {e}"))?;
    let end = ends
        .iter()
        .find(|e| e.columns.min(e.rows) >= FIRST_VIEW_SIDE)
        .or(ends.last())
        .ok_or_else(|| format!("{url}: no resolution in the codestream"))?;
    let (reduce, bytes, columns, rows) = (end.reduce, end.bytes, end.columns, end.rows);
    let total = cs.len();

    let started = Instant::now();
    let resp = client
        .get(url)
        .header("Accept", HTJ2K_ACCEPT)
        .header("Range", format!("bytes=0-{}", bytes - 1))
        .send()
        .await
        .map_err(|e| format!("GET {url} (Range) failed: {e}"))?;
    let status = resp.status();
    let content_range =
        resp.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let part = resp.bytes().await.map_err(|e| format!("GET {url} (Range): body: {e}"))?;
    let range_ms = ms(started.elapsed());
    let want = format!("bytes 0-{}/{total}", bytes - 1);
    if status != 206 {
        return Err(format!("Range bytes=0-{}: answered {status}, not 206 Partial Content", bytes - 1));
    }
    if content_range != want {
        return Err(format!("Range bytes=0-{}: Content-Range {content_range:?}, expected {want:?}", bytes - 1));
    }
    if part[..] != cs[..bytes] {
        return Err(format!("Range bytes=0-{}: {} bytes, not the codestream's first {bytes}", bytes - 1, part.len()));
    }

    let (reference, url) = (reference.clone(), url.to_string());
    tokio::task::spawn_blocking(move || {
        lossless(&cs, &reference).map_err(|e| format!("{url}: {e}"))?;
        let mut cut = part.to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        let img = decode(&cut, DecodeOptions { strict: true, reduce: reduce as u32 })
            .map_err(|e| format!("{url}: the first {bytes} bytes and an EOC do not decode: {e}"))?;
        match img.first() {
            Some(c) if (c.width, c.height) == (columns, rows) => Ok(()),
            c => Err(format!(
                "{url}: the first {bytes} bytes decode to {:?}, not {columns}x{rows}",
                c.map(|c| (c.width, c.height))
            )),
        }
    })
    .await
    .map_err(|e| format!("decoder: {e}"))??;
    Ok(FirstView { bytes, columns, rows, total, range_ms })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&[0, 0, 2, 0, 0, 0, 1, 0]);
        assert_eq!(super::image_size(&png), Some((512, 256)));
        // SOI, APP0 (length 4), SOF0: length, precision, height 256, width 512.
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 1, 0, 2, 0, 1, 1, 0x11, 0];
        assert_eq!(super::image_size(&jpeg), Some((512, 256)));
        assert_eq!(super::image_size(b"GIF89a"), None);
    }
}
