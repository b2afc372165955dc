//! What the pixel tests share: the test data, and objects loaded the way
//! the server loads them (`parse_part10`, the frame index, byte ranges).
#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use yunying_dicom::frames::{FrameIndex, locate};
use yunying_dicom::parse::inflated_dataset;
use yunying_dicom::{ParseOptions, parse_part10};
use yunying_pixels::{DecodedFrame, ImageInfo, Rendered, decode_frame};

pub fn testdata() -> PathBuf {
    let dir = std::env::var("YUNYING_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/yunying/testdata"));
    assert!(dir.join("MANIFEST.txt").exists(), "test data missing in {}: run scripts/fetch-testdata.sh", dir.display());
    dir
}

pub fn file(rel: &str) -> PathBuf {
    testdata().join(rel)
}

/// An object as the server sees it: attributes, transfer syntax and the
/// bytes of each frame.
pub struct Object {
    pub info: ImageInfo,
    pub ts: String,
    pub frames: Vec<Vec<u8>>,
}

pub fn load(path: &Path) -> Object {
    let bytes = std::fs::read(path).unwrap();
    let len = bytes.len() as u64;
    let mut cur = std::io::Cursor::new(&bytes);
    let obj = parse_part10(&mut cur, len, &ParseOptions::default()).unwrap();
    let data: Vec<u8> = if obj.offsets_in_inflated {
        inflated_dataset(&mut std::io::Cursor::new(&bytes), len, &ParseOptions::default()).unwrap()
    } else {
        bytes.clone()
    };
    let index = locate(&obj, |o| {
        let mut b = [0u8; 2];
        cur.seek(SeekFrom::Start(o)).ok()?;
        cur.read_exact(&mut b).ok()?;
        Some(b)
    });
    assert!(
        matches!(index, FrameIndex::Native { .. } | FrameIndex::Encapsulated { .. }),
        "{}: {index:?}",
        path.display()
    );
    let range = |o: u64, l: u64| data.get(o as usize..(o + l) as usize).map(|s| s.to_vec());
    let info = ImageInfo::from_dataset_with(&obj.dataset, obj.encoding.big_endian, range).unwrap();
    let frames = (1..=index.count())
        .map(|n| index.frame(n).unwrap().iter().flat_map(|&(o, l)| range(o, l).unwrap()).collect())
        .collect();
    Object { info, ts: obj.transfer_syntax().to_string(), frames }
}

pub fn decode_all(o: &Object) -> Vec<DecodedFrame> {
    o.frames.iter().map(|f| decode_frame(&o.info, &o.ts, f).unwrap()).collect()
}

pub fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// A scratch directory for the files DCMTK and the tests write.
pub fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yunying-pixels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a tool, which must succeed.
pub fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e} (is DCMTK installed?)"));
    assert!(out.status.success(), "{cmd} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A DCMTK conversion of `src` into the scratch directory.
pub fn dcmtk(tool: &str, opts: &[&str], src: &Path, name: &str) -> PathBuf {
    let out = scratch().join(name);
    let mut args: Vec<&str> = opts.to_vec();
    args.push(src.to_str().unwrap());
    args.push(out.to_str().unwrap());
    run(tool, &args);
    out
}

/// An 8-bit PNG (grayscale or RGB) as a rendered image.
pub fn decode_png(bytes: &[u8]) -> Rendered {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    buf.truncate(info.buffer_size());
    Rendered { width: info.width, height: info.height, channels, pixels: buf }
}

/// `dcmj2pnm` rendering of frame `frame` (1-based) with the given window options.
pub fn dcmj2pnm(path: &Path, frame: u32, window: &[&str]) -> Rendered {
    let out = scratch().join(format!("{}-{frame}-{}.png", name(path), window.join("_")));
    let f = frame.to_string();
    let mut args: Vec<&str> = vec!["--write-png", "+F", &f];
    args.extend_from_slice(window);
    args.push(path.to_str().unwrap());
    args.push(out.to_str().unwrap());
    run("dcmj2pnm", &args);
    decode_png(&std::fs::read(out).unwrap())
}

/// Mean and maximum absolute difference.
pub fn compare(ours: &Rendered, theirs: &Rendered) -> (f64, u8) {
    assert_eq!((ours.width, ours.height, ours.channels), (theirs.width, theirs.height, theirs.channels));
    let mut sum = 0u64;
    let mut max = 0u8;
    for (a, b) in ours.pixels.iter().zip(&theirs.pixels) {
        let d = a.abs_diff(*b);
        sum += d as u64;
        max = max.max(d);
    }
    if std::env::var("PIXELS_DEBUG").is_ok() {
        let bad: Vec<(usize, usize, u8, u8)> = ours
            .pixels
            .iter()
            .zip(&theirs.pixels)
            .enumerate()
            .filter(|(_, (a, b))| a.abs_diff(**b) > 3)
            .map(|(i, (a, b))| {
                let p = i / ours.channels as usize;
                (p % ours.width as usize, p / ours.width as usize, *a, *b)
            })
            .collect();
        eprintln!("{} samples differ by more than 3, first: {:?}", bad.len(), &bad[..bad.len().min(12)]);
    }
    (sum as f64 / ours.pixels.len() as f64, max)
}
