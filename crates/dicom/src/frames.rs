//! Where each frame's bytes lie in a stored object, computed once at ingest
//! so that WADO-RS `/frames/N` is a ranged read, not a parse.

use dicom_core::Tag;
use serde::{Deserialize, Serialize};

use crate::parse::{DataSet, ParsedObject, Value};

/// The frame layout of an object, as recorded in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum FrameIndex {
    /// Native pixel data: frame `n` (1-based) is `frame_len` bytes at
    /// `offset + (n-1) * frame_len`. `swap` is the sample width in bytes to
    /// byte-swap for little-endian output (big-endian objects), 0 for none.
    Native {
        offset: u64,
        frame_len: u64,
        count: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        swap: u8,
        #[serde(default, skip_serializing_if = "is_false")]
        inflated: bool,
    },
    /// Encapsulated pixel data: for each frame, its fragments (offset, length).
    Encapsulated {
        frames: Vec<Vec<(u64, u64)>>,
        #[serde(default, skip_serializing_if = "is_false")]
        inflated: bool,
    },
    /// The object has no pixel data.
    None,
    /// Pixel data exists but frames cannot be addressed by byte range.
    Unavailable { reason: String },
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

impl FrameIndex {
    /// Number of addressable frames.
    pub fn count(&self) -> u32 {
        match self {
            FrameIndex::Native { count, .. } => *count,
            FrameIndex::Encapsulated { frames, .. } => frames.len() as u32,
            _ => 0,
        }
    }

    /// The byte ranges of frame `n` (1-based), in order.
    pub fn frame(&self, n: u32) -> Option<Vec<(u64, u64)>> {
        if n == 0 {
            return None;
        }
        match self {
            FrameIndex::Native { offset, frame_len, count, .. } if n <= *count => {
                Some(vec![(offset + (n as u64 - 1) * frame_len, *frame_len)])
            }
            FrameIndex::Encapsulated { frames, .. } => frames.get(n as usize - 1).cloned(),
            _ => None,
        }
    }

    /// True when the offsets refer to the inflated data set of a deflated object.
    pub fn inflated(&self) -> bool {
        matches!(self, FrameIndex::Native { inflated: true, .. } | FrameIndex::Encapsulated { inflated: true, .. })
    }

    /// Bytes per sample to swap for little-endian output (0 for none).
    pub fn swap(&self) -> u8 {
        match self {
            FrameIndex::Native { swap, .. } => *swap,
            _ => 0,
        }
    }
}

/// Computes the frame layout of a parsed object. `fragment_head` returns the
/// first two bytes of a fragment at an offset (used only when the offset
/// tables cannot tell fragments of different frames apart).
pub fn locate(obj: &ParsedObject, mut fragment_head: impl FnMut(u64) -> Option<[u8; 2]>) -> FrameIndex {
    let ds = &obj.dataset;
    let be = obj.encoding.big_endian;
    let inflated = obj.offsets_in_inflated;
    let (pixel, sample_bytes_override) = if let Some(e) = ds.get(Tag(0x7FE0, 0x0010)) {
        (e, None)
    } else if let Some(e) = ds.get(Tag(0x7FE0, 0x0008)) {
        (e, Some(4u64))
    } else if let Some(e) = ds.get(Tag(0x7FE0, 0x0009)) {
        (e, Some(8u64))
    } else {
        return FrameIndex::None;
    };
    let frames_declared = number_of_frames(ds);
    match &pixel.value {
        Value::Bulk { offset, length } => {
            let rows = ds.uint(Tag(0x0028, 0x0010), be).unwrap_or(0);
            let cols = ds.uint(Tag(0x0028, 0x0011), be).unwrap_or(0);
            let spp = ds.uint(Tag(0x0028, 0x0002), be).unwrap_or(1).max(1);
            let bits = match sample_bytes_override {
                Some(b) => b * 8,
                None => ds.uint(Tag(0x0028, 0x0100), be).unwrap_or(0),
            };
            if rows == 0 || cols == 0 || bits == 0 {
                return FrameIndex::Unavailable { reason: "Rows, Columns or Bits Allocated missing".into() };
            }
            // YBR_FULL_422 keeps two luminance samples per chroma pair:
            // 2 samples per pixel on average instead of 3.
            let ybr422 = ds.ascii(Tag(0x0028, 0x0004)).is_some_and(|p| p == "YBR_FULL_422") && spp == 3;
            let frame_bits = if ybr422 { rows * cols * 2 * bits } else { rows * cols * spp * bits };
            if frame_bits % 8 != 0 {
                return FrameIndex::Unavailable { reason: "frames are not byte-aligned (1-bit pixel data)".into() };
            }
            let mut frame_len = frame_bits / 8;
            let fit = (*length / frame_len) as u32;
            let count = frames_declared.min(fit);
            if count == 0 {
                return FrameIndex::Unavailable { reason: "pixel data is shorter than one frame".into() };
            }
            let mut swap = if be && bits >= 16 { (bits / 8) as u8 } else { 0 };
            // 8-bit samples in big-endian OW: the value is 16-bit words, so
            // sample pairs are swapped. A single frame of odd length takes
            // its padding byte along (the last sample is in the last word).
            if be && bits == 8 && pixel.vr == dicom_core::VR::OW {
                if frame_len % 2 == 1 {
                    if count > 1 || *length < frame_len + 1 {
                        return FrameIndex::Unavailable {
                            reason: "8-bit frames of odd length in big-endian OW straddle 16-bit words".into(),
                        };
                    }
                    frame_len += 1;
                }
                swap = 2;
            }
            FrameIndex::Native { offset: *offset, frame_len, count, swap, inflated }
        }
        Value::Inline(_) => FrameIndex::Unavailable { reason: "pixel data not located".into() },
        Value::Sequence(_) => FrameIndex::Unavailable { reason: "pixel data is a sequence".into() },
        Value::Fragments { offset_table, fragments } => {
            let frames = group_fragments(ds, be, frames_declared, offset_table, fragments, &mut fragment_head);
            match frames {
                Some(frames) => FrameIndex::Encapsulated { frames, inflated },
                None => FrameIndex::Unavailable {
                    reason: format!(
                        "{} fragments for {} frames and no usable offset table",
                        fragments.len(),
                        frames_declared
                    ),
                },
            }
        }
    }
}

fn number_of_frames(ds: &DataSet) -> u32 {
    ds.ascii(Tag(0x0028, 0x0008)).and_then(|s| s.trim().parse::<u32>().ok()).filter(|n| *n > 0).unwrap_or(1)
}

fn group_fragments(
    ds: &DataSet,
    be: bool,
    n_frames: u32,
    offset_table: &[u32],
    fragments: &[(u64, u64)],
    fragment_head: &mut impl FnMut(u64) -> Option<[u8; 2]>,
) -> Option<Vec<Vec<(u64, u64)>>> {
    if fragments.is_empty() {
        return None;
    }
    let n = n_frames as usize;
    // Item offsets relative to the first fragment's item tag.
    let base = fragments[0].0 - 8;
    let rel: Vec<u64> = fragments.iter().map(|(o, _)| o - 8 - base).collect();

    // 1. Extended Offset Table (7FE0,0001): one fragment per frame by definition.
    if let Some(eot) = ds.bytes(Tag(0x7FE0, 0x0001)) {
        let offs: Vec<u64> = eot
            .chunks_exact(8)
            .map(|c| {
                let a: [u8; 8] = c.try_into().unwrap();
                if be { u64::from_be_bytes(a) } else { u64::from_le_bytes(a) }
            })
            .collect();
        if offs.len() == n {
            let mut out = Vec::with_capacity(n);
            for o in offs {
                let i = rel.iter().position(|r| *r == o)?;
                out.push(vec![fragments[i]]);
            }
            return Some(out);
        }
    }
    // 2. A single frame is all the fragments.
    if n == 1 {
        return Some(vec![fragments.to_vec()]);
    }
    // 3. A basic offset table with one entry per frame.
    if offset_table.len() == n && offset_table.first() == Some(&0) {
        let mut out: Vec<Vec<(u64, u64)>> = vec![Vec::new(); n];
        for (i, r) in rel.iter().enumerate() {
            let f = offset_table.iter().rposition(|o| (*o as u64) <= *r)?;
            out[f].push(fragments[i]);
        }
        if out.iter().all(|f| !f.is_empty()) {
            return Some(out);
        }
    }
    // 4. As many fragments as frames.
    if fragments.len() == n {
        return Some(fragments.iter().map(|f| vec![*f]).collect());
    }
    // 5. Find frame starts by their codestream markers (JPEG SOI, J2K SOC).
    let mut out: Vec<Vec<(u64, u64)>> = Vec::new();
    for f in fragments {
        let starts_frame = matches!(fragment_head(f.0), Some([0xFF, 0xD8]) | Some([0xFF, 0x4F]));
        if starts_frame || out.is_empty() {
            out.push(vec![*f]);
        } else {
            out.last_mut()?.push(*f);
        }
    }
    if out.len() == n { Some(out) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_part10};
    use crate::write::ObjectBuilder;
    use dicom_core::VR;

    fn parse(bytes: &[u8]) -> ParsedObject {
        parse_part10(&mut std::io::Cursor::new(bytes), bytes.len() as u64, &ParseOptions::default()).unwrap()
    }

    #[test]
    fn native_multiframe() {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3", crate::ts::EXPLICIT_VR_LE);
        b.u16(Tag(0x0028, 0x0010), 2).u16(Tag(0x0028, 0x0011), 2).u16(Tag(0x0028, 0x0100), 8);
        b.str(Tag(0x0028, 0x0008), VR::IS, "3");
        b.pixel_data_native((0u8..12).collect(), VR::OB);
        let bytes = b.to_bytes();
        let idx = locate(&parse(&bytes), |_| None);
        assert_eq!(idx.count(), 3);
        let (o, l) = idx.frame(2).unwrap()[0];
        assert_eq!(&bytes[o as usize..(o + l) as usize], &[4, 5, 6, 7]);
        assert!(idx.frame(4).is_none());
        let json = serde_json::to_string(&idx).unwrap();
        assert_eq!(serde_json::from_str::<FrameIndex>(&json).unwrap(), idx);
    }

    #[test]
    fn encapsulated_with_offset_table() {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3", "1.2.840.10008.1.2.4.50");
        b.str(Tag(0x0028, 0x0008), VR::IS, "2");
        b.pixel_data_fragments(&[vec![0xFF, 0xD8, 9, 9], vec![0xFF, 0xD8, 7, 7, 7, 7]]);
        let bytes = b.to_bytes();
        let idx = locate(&parse(&bytes), |_| None);
        let f2 = idx.frame(2).unwrap();
        assert_eq!(f2.len(), 1);
        assert_eq!(&bytes[f2[0].0 as usize..(f2[0].0 + f2[0].1) as usize], &[0xFF, 0xD8, 7, 7, 7, 7]);
    }
}
