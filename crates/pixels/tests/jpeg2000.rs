//! JPEG 2000 (1.2.840.10008.1.2.4.90 and .91) and HTJ2K (.201, .202, .203)
//! through OpenJPEG: lossless files decode bit-exact against their native
//! twins, lossy ones decode and render. The test data has no HTJ2K file:
//! those codestreams are made from native frames with OpenJPH's
//! `ojph_compress` (Debian package openjph-tools).
//!
//! Frames are found the way the server finds them: `parse_part10`, then the
//! frame index of `yunying_dicom::frames::locate`, then the byte ranges read.
//! DCMTK has no JPEG 2000 codec, so the twins are the test data's own.

mod common;
use common::*;


use std::process::Command;

use yunying_pixels::decode::is_supported;
use yunying_pixels::{
    DecodedFrame, ImageInfo, PixelError, RenderOptions, Samples, decode_frame, render_frame,
};







/// Decodes `a` (JPEG 2000) and `b` (its native twin) and requires identical
/// samples in every frame.
fn assert_same_samples(a: &str, b: &str) {
    let (a, b) = (file(a), file(b));
    let (oa, ob) = (load(&a), load(&b));
    assert!(oa.ts.starts_with("1.2.840.10008.1.2.4.9"), "{}", oa.ts);
    let (da, db) = (decode_all(&oa), decode_all(&ob));
    assert_eq!(
        da.len(),
        db.len(),
        "frame counts of {} and {}",
        name(&a),
        name(&b)
    );
    assert!(!da.is_empty());
    for (i, (x, y)) in da.iter().zip(&db).enumerate() {
        assert!(
            x == y,
            "frame {} of {} ({}) differs from {} ({})",
            i + 1,
            name(&a),
            oa.ts,
            name(&b),
            ob.ts
        );
    }
    eprintln!(
        "bit-exact: {} ({}) == {} ({}), {} frame(s)",
        name(&a),
        oa.ts,
        name(&b),
        ob.ts,
        da.len()
    );
}

/// Largest absolute sample difference between two decodings of one image.
fn max_diff(a: &DecodedFrame, b: &DecodedFrame) -> i64 {
    match (&a.data, &b.data) {
        (Samples::Gray(x), Samples::Gray(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter()
                .zip(y)
                .map(|(p, q)| (*p as i64 - *q as i64).abs())
                .max()
                .unwrap()
        }
        (Samples::Color(x), Samples::Color(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter()
                .zip(y)
                .map(|(p, q)| (*p as i64 - *q as i64).abs())
                .max()
                .unwrap()
        }
        _ => panic!("grayscale against colour"),
    }
}

#[test]
fn syntaxes_are_supported() {
    assert!(is_supported("1.2.840.10008.1.2.4.90"));
    assert!(is_supported("1.2.840.10008.1.2.4.91"));
    for ts in [
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
    ] {
        assert!(is_supported(ts));
    }
}

#[test]
fn lossless_is_bit_exact() {
    // 12-bit MR, 10 frames (the brief's reference pair).
    assert_same_samples(
        "pydicom-data/emri_small_jpeg_2k_lossless.dcm",
        "pydicom-data/emri_small.dcm",
    );
    // MR, CR (MONOCHROME1, 10 bits), 16-bit signed CT.
    for (a, b) in [
        ("pydicom-data/MR2_J2KR.dcm", "pydicom-data/MR2_UNCR.dcm"),
        ("pydicom-data/RG1_J2KR.dcm", "pydicom-data/RG1_UNCR.dcm"),
        ("pydicom-data/RG3_J2KR.dcm", "pydicom-data/RG3_UNCR.dcm"),
        ("pydicom-data/693_J2KR.dcm", "pydicom-data/693_UNCR.dcm"),
    ] {
        assert_same_samples(a, b);
    }
    // Colour, YBR_RCT: the codestream's reversible transform gives RGB back.
    let us = load(&file("pydicom-data/US1_J2KR.dcm"));
    assert_eq!(
        us.info.photometric,
        yunying_pixels::Photometric::Other("YBR_RCT".into())
    );
    assert_same_samples("pydicom-data/US1_J2KR.dcm", "pydicom-data/US1_UNCR.dcm");
}

#[test]
fn jpeg2000_dcm_decodes_and_renders() {
    // .91, 16-bit signed, 1024x256; a reversible codestream with a native twin.
    let o = load(&file("pydicom/test_files/JPEG2000.dcm"));
    assert_eq!(o.ts, "1.2.840.10008.1.2.4.91");
    assert_eq!(o.frames.len(), 1);
    let f = decode_frame(&o.info, &o.ts, &o.frames[0]).unwrap();
    assert_eq!((f.rows, f.columns, f.samples), (1024, 256, 1));
    let Samples::Gray(v) = &f.data else {
        panic!("grayscale expected")
    };
    assert_eq!(v.len(), 1024 * 256);
    let r = render_frame(&o.info, &o.ts, &o.frames[0], &RenderOptions::default()).unwrap();
    assert_eq!((r.width, r.height, r.channels), (256, 1024, 1));
    assert!(
        r.pixels.iter().any(|&p| p != r.pixels[0]),
        "a flat rendering"
    );
    assert_same_samples(
        "pydicom/test_files/JPEG2000.dcm",
        "pydicom-data/JPEG2000_UNC.dcm",
    );
}

#[test]
fn lossy_matches_the_reference_decompression() {
    // Irreversible codestreams against the test data's decompressions of
    // them (the *_UNCI files): OpenJPEG's output is identical. US1 is
    // YBR_ICT (the irreversible colour transform), its decompression RGB.
    for (a, b, max) in [
        ("pydicom-data/MR2_J2KI.dcm", "pydicom-data/MR2_UNCI.dcm", 0),
        ("pydicom-data/RG1_J2KI.dcm", "pydicom-data/RG1_UNCI.dcm", 0),
        ("pydicom-data/RG3_J2KI.dcm", "pydicom-data/RG3_UNCI.dcm", 0),
        ("pydicom-data/US1_J2KI.dcm", "pydicom-data/US1_UNCI.dcm", 0),
        (
            "pydicom/test_files/693_J2KI.dcm",
            "pydicom-data/693_UNCI.dcm",
            0,
        ),
    ] {
        let (oa, ob) = (load(&file(a)), load(&file(b)));
        assert_eq!(oa.ts, "1.2.840.10008.1.2.4.91", "{a}");
        let (da, db) = (decode_all(&oa), decode_all(&ob));
        assert_eq!(da.len(), db.len());
        for (x, y) in da.iter().zip(&db) {
            let d = max_diff(x, y);
            eprintln!("{a} vs {b}: max difference {d}");
            assert!(d <= max, "{a} vs {b}: max difference {d}");
        }
        render_frame(&oa.info, &oa.ts, &oa.frames[0], &RenderOptions::default()).unwrap();
    }
}

#[test]
fn truncated_codestream_is_an_error() {
    let o = load(&file("pydicom-data/emri_small_jpeg_2k_lossless.dcm"));
    let f = &o.frames[0];
    let err = decode_frame(&o.info, &o.ts, &f[..f.len() / 2]).unwrap_err();
    assert!(matches!(err, PixelError::Malformed(_)), "{err:?}");
    let err = decode_frame(&o.info, &o.ts, b"not a codestream").unwrap_err();
    assert!(matches!(err, PixelError::Malformed(_)), "{err:?}");
    // Attributes that disagree with the codestream's size.
    let mut info = o.info.clone();
    info.rows += 1;
    let err = decode_frame(&info, &o.ts, f).unwrap_err();
    assert!(matches!(err, PixelError::Malformed(_)), "{err:?}");
}

#[test]
fn other_files() {
    // Unsigned 13-bit codestream, Pixel Representation 1: the attributes
    // rule, as for native data (pydicom gives -2000 at [0, 0] and these
    // values in column 279, rows 47 to 56).
    let o = load(&file("pydicom/test_files/J2K_pixelrep_mismatch.dcm"));
    assert!(o.info.signed && o.info.bits_stored == 13);
    let f = decode_frame(&o.info, &o.ts, &o.frames[0]).unwrap();
    let Samples::Gray(v) = &f.data else {
        panic!("grayscale expected")
    };
    let column: Vec<i32> = (47..57).map(|r| v[r * 512 + 279]).collect();
    eprintln!("J2K_pixelrep_mismatch: [0,0] {} column {column:?}", v[0]);
    assert_eq!(v[0], -2000);
    assert_eq!(
        column,
        [621, 412, 138, -193, -520, -767, -907, -966, -988, -995]
    );
    // 8-bit YBR_RCT written by GDCM.
    let o = load(&file("pydicom/test_files/GDCMJ2K_TextGBR.dcm"));
    let f = decode_frame(&o.info, &o.ts, &o.frames[0]).unwrap();
    assert_eq!((f.rows, f.columns, f.samples), (400, 400, 3));
    render_frame(&o.info, &o.ts, &o.frames[0], &RenderOptions::default()).unwrap();
    // pydicom's parser test: a sequence delimiter's bytes inside the
    // fragment, which damages the image size in the codestream.
    let o = load(&file(
        "pydicom/test_files/JPEG2000-embedded-sequence-delimiter.dcm",
    ));
    let err = decode_frame(&o.info, &o.ts, &o.frames[0]).unwrap_err();
    assert!(matches!(err, PixelError::Malformed(_)), "{err:?}");
}

// ---- HTJ2K, encoded with OpenJPH ----------------------------------------

/// Encodes one decoded frame with `ojph_compress` and returns the codestream.
fn ojph(frame: &DecodedFrame, info: &ImageInfo, name: &str, opts: &[&str]) -> Vec<u8> {
    let dir = scratch();
    let out = dir.join(format!("{name}.j2c"));
    let dims = format!("{{{},{}}}", frame.columns, frame.rows);
    let mut args: Vec<String> = Vec::new();
    let input = match &frame.data {
        Samples::Gray(v) => {
            // Raw samples, little endian, 1 or 2 bytes each.
            let bytes: Vec<u8> = if info.bits_stored <= 8 {
                v.iter().map(|&x| x as u8).collect()
            } else {
                v.iter().flat_map(|&x| (x as u16).to_le_bytes()).collect()
            };
            let input = dir.join(format!("{name}.yuv"));
            std::fs::write(&input, bytes).unwrap();
            args.extend(
                [
                    "-dims",
                    &dims,
                    "-num_comps",
                    "1",
                    "-signed",
                    if info.signed { "true" } else { "false" },
                    "-bit_depth",
                    &info.bits_stored.to_string(),
                    "-downsamp",
                    "{1,1}",
                ]
                .map(String::from),
            );
            input
        }
        Samples::Color(rgb) => {
            let mut ppm = format!("P6\n{} {}\n255\n", frame.columns, frame.rows).into_bytes();
            ppm.extend_from_slice(rgb);
            let input = dir.join(format!("{name}.ppm"));
            std::fs::write(&input, ppm).unwrap();
            input
        }
    };
    let mut cmd = Command::new("ojph_compress");
    cmd.arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args(&args)
        .args(opts);
    let res = cmd
        .output()
        .unwrap_or_else(|e| panic!("ojph_compress: {e} (is openjph-tools installed?)"));
    assert!(
        res.status.success(),
        "ojph_compress {opts:?} failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let cs = std::fs::read(&out).unwrap();
    // An HTJ2K codestream: SOC, SIZ, and a CAP marker (0xFF50) in the header.
    assert_eq!(&cs[..4], &[0xff, 0x4f, 0xff, 0x51]);
    assert!(cs.windows(2).any(|w| w == [0xff, 0x50]), "no CAP marker");
    cs
}

#[test]
fn htj2k_lossless_is_bit_exact() {
    for (rel, prog) in [
        // 12-bit unsigned MR, 10 frames; 16-bit signed CT; 8-bit MONOCHROME1 CR.
        ("pydicom-data/emri_small.dcm", "RPCL"),
        ("pydicom-data/emri_small.dcm", "LRCP"),
        ("pydicom/test_files/CT_small.dcm", "RPCL"),
        ("pydicom-data/RG3_UNCR.dcm", "RPCL"),
        // 8-bit RGB through the reversible colour transform (YBR_RCT).
        ("pydicom-data/US1_UNCR.dcm", "RPCL"),
    ] {
        let o = load(&file(rel));
        let mut info = o.info.clone();
        if info.samples_per_pixel == 3 {
            info.photometric = yunying_pixels::Photometric::Other("YBR_RCT".into());
        }
        let ts = if prog == "RPCL" {
            "1.2.840.10008.1.2.4.202"
        } else {
            "1.2.840.10008.1.2.4.201"
        };
        for (i, native) in decode_all(&o).iter().enumerate() {
            let cs = ojph(
                native,
                &o.info,
                &format!("{}-{i}-{prog}", name(&file(rel))),
                &["-reversible", "true", "-prog_order", prog],
            );
            let decoded = decode_frame(&info, ts, &cs).unwrap();
            assert!(
                &decoded == native,
                "HTJ2K {prog} frame {} of {rel} differs",
                i + 1
            );
        }
        eprintln!(
            "bit-exact: HTJ2K {prog} ({ts}) of {rel}, {} frame(s)",
            o.frames.len()
        );
    }
}

#[test]
fn htj2k_lossy_decodes_and_renders() {
    let o = load(&file("pydicom/test_files/CT_small.dcm"));
    let native = decode_frame(&o.info, &o.ts, &o.frames[0]).unwrap();
    let cs = ojph(&native, &o.info, "ct-lossy", &["-qstep", "0.001"]);
    let ts = "1.2.840.10008.1.2.4.203";
    let decoded = decode_frame(&o.info, ts, &cs).unwrap();
    let d = max_diff(&decoded, &native);
    eprintln!("HTJ2K lossy CT_small: max difference {d}");
    // Quantisation step 0.001 of the 16-bit range is about 65.
    assert!(d > 0 && d < 256, "max difference {d}");
    render_frame(&o.info, ts, &cs, &RenderOptions::default()).unwrap();
}

/// GDCM's JP2-wrapped, multi-tile, six-layer colour frame whose tile-parts
/// need OpenJPEG's repair: decoded exactly as `opj_decompress` decodes it.
#[test]
fn jp2_wrapped_multi_tile_colour_matches_opj_decompress() {
    let obj = load(&file("pydicom/test_files/GDCMJ2K_TextGBR.dcm"));
    let frame = decode_frame(&obj.info, &obj.ts, &obj.frames[0]).unwrap();
    let Samples::Color(ours) = &frame.data else { panic!("colour expected") };
    let dir = scratch();
    let j2k = dir.join("gdcm-textgbr.jp2");
    std::fs::write(&j2k, &obj.frames[0]).unwrap();
    let ppm = dir.join("gdcm-textgbr.ppm");
    let out = Command::new("opj_decompress").arg("-i").arg(&j2k).arg("-o").arg(&ppm).output()
        .unwrap_or_else(|e| panic!("opj_decompress: {e} (is libopenjp2-tools installed?)"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ppm = std::fs::read(&ppm).unwrap();
    let theirs = &ppm[ppm.len() - ours.len()..];
    let differing = ours.iter().zip(theirs).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} samples differ from opj_decompress");
}
