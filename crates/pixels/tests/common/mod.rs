//! What the pixel tests share: the test data, and objects loaded the way
//! the server loads them (`parse_part10`, the frame index, byte ranges).
#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use yunying_dicom::frames::{FrameIndex, locate};
use yunying_dicom::parse::inflated_dataset;
use yunying_dicom::{ParseOptions, parse_part10};
use yunying_pixels::{DecodedFrame, ImageInfo, decode_frame};

pub fn testdata() -> PathBuf {
    let dir = std::env::var("YUNYING_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/yunying/testdata")
        });
    assert!(
        dir.join("MANIFEST.txt").exists(),
        "test data missing in {}: run scripts/fetch-testdata.sh",
        dir.display()
    );
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
        inflated_dataset(
            &mut std::io::Cursor::new(&bytes),
            len,
            &ParseOptions::default(),
        )
        .unwrap()
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
        matches!(
            index,
            FrameIndex::Native { .. } | FrameIndex::Encapsulated { .. }
        ),
        "{}: {index:?}",
        path.display()
    );
    let range = |o: u64, l: u64| data.get(o as usize..(o + l) as usize).map(|s| s.to_vec());
    let info = ImageInfo::from_dataset_with(&obj.dataset, obj.encoding.big_endian, range).unwrap();
    let frames = (1..=index.count())
        .map(|n| {
            index
                .frame(n)
                .unwrap()
                .iter()
                .flat_map(|&(o, l)| range(o, l).unwrap())
                .collect()
        })
        .collect();
    Object {
        info,
        ts: obj.transfer_syntax().to_string(),
        frames,
    }
}

pub fn decode_all(o: &Object) -> Vec<DecodedFrame> {
    o.frames
        .iter()
        .map(|f| decode_frame(&o.info, &o.ts, f).unwrap())
        .collect()
}

pub fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}
