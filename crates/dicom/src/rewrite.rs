//! Rebuilding a data set around new pixel data, for transcoding: WADO-RS and
//! C-MOVE / C-GET deliver an object in the transfer syntax the client asks
//! for. The pixel codecs (another crate) decode and encode the frames;
//! [`rewrite_dataset`] puts the result in the data set:
//!
//! - the input may be in any syntax the archive stores: native (implicit or
//!   explicit VR little endian, explicit VR big endian, deflated) or
//!   encapsulated (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE..., whose data sets
//!   are explicit VR little endian);
//! - the output is in a native little endian syntax (implicit, explicit,
//!   deflated) or in an encapsulated one (the data set then explicit VR
//!   little endian);
//! - [`Edits::pixel_data`] replaces the Pixel Data (7FE0,0010) whatever its
//!   form in the input (native, or encapsulated items), and drops the
//!   input's Extended Offset Table (7FE0,0001) and its Lengths (7FE0,0002);
//!   encapsulated output gets one fragment per frame and a Basic Offset
//!   Table, or, when an offset would not fit in 32 bits, an empty Basic
//!   Offset Table and an Extended Offset Table (PS3.5 A.4);
//! - [`Edits::set`] and [`Edits::remove`] change top-level attributes (the
//!   attributes a transcoding changes: Photometric Interpretation, Lossy
//!   Image Compression and its ratio and method...). An attribute set is
//!   written where the input has it, or, when absent, before the first input
//!   element with a greater tag (so an ascending input stays ascending, and
//!   an input out of order keeps its order);
//! - everything else is copied as [`crate::reencode`] copies it (same walker,
//!   same rules and bounds, errors and never panics on malformed input).
//!   Pixel data without a replacement is copied only where it fits: native
//!   pixel data to a native syntax (converted), encapsulated pixel data to
//!   the syntax it is in (unchanged, its icons' included); otherwise the
//!   rewrite is [`ReencodeError::Unsupported`]. Float and Double Float Pixel
//!   Data (7FE0,0008/0009) are copied to a native syntax only, and refused
//!   when the pixel data is replaced.
//!
//! [`part10`](crate::write::part10) puts preamble and file meta information
//! in front of the result.

use std::borrow::Cow;

use dicom_core::{Tag, VR};

use crate::parse::{ParseOptions, TagDisplay};
use crate::reencode::{self, ReencodeError};
use crate::ts::{self, Encoding};
use crate::write::{header, long_length, put_tag, put_u32};

type Result<T> = std::result::Result<T, ReencodeError>;

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const EXTENDED_OFFSET_TABLE: Tag = Tag(0x7FE0, 0x0001);
const EXTENDED_OFFSET_TABLE_LENGTHS: Tag = Tag(0x7FE0, 0x0002);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// What changes in a data set besides its encoding.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    /// Top-level attributes to set (inserted in tag order when absent,
    /// replaced when present), value bytes little endian. Odd lengths are
    /// padded here (a space for text VRs, a zero byte otherwise). Not for
    /// sequences, file meta (0002,xxxx), group lengths, items or the pixel
    /// data and its offset tables (use [`Edits::pixel_data`]).
    pub set: Vec<(Tag, VR, Vec<u8>)>,
    /// Top-level attributes to remove (absent ones are ignored).
    pub remove: Vec<Tag>,
    /// The new Pixel Data (7FE0,0010), replacing whatever the input holds
    /// (native or encapsulated), inserted if it holds none.
    pub pixel_data: Option<PixelDataOut>,
}

impl Edits {
    /// True when nothing is set, removed or replaced.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.pixel_data.is_none()
    }
}

/// New pixel data for [`Edits::pixel_data`].
#[derive(Clone)]
pub enum PixelDataOut {
    /// Native pixel data: OW (or OB for 8-bit) bytes, little endian, all
    /// frames one after the other (padded to even length here).
    Native { vr: VR, bytes: Vec<u8> },
    /// Encapsulated: one fragment per frame, with a Basic Offset Table
    /// filled in (and, if any offset would overflow u32, an empty Basic
    /// Offset Table and an Extended Offset Table (7FE0,0001) / (7FE0,0002),
    /// as PS3.5 A.4 allows). Odd-length frames are padded with a zero byte.
    Encapsulated { frames: Vec<Vec<u8>> },
}

impl std::fmt::Debug for PixelDataOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PixelDataOut::Native { vr, bytes } => write!(f, "Native {{ vr: {vr}, {} bytes }}", bytes.len()),
            PixelDataOut::Encapsulated { frames } => {
                write!(
                    f,
                    "Encapsulated {{ {} frames, {} bytes }}",
                    frames.len(),
                    frames.iter().map(Vec::len).sum::<usize>()
                )
            }
        }
    }
}

/// Rewrites a data set (no preamble, no file meta) from `from_ts` to `to_ts`
/// with `edits`; see the module documentation. The limits of `opts`
/// (`max_depth`, `max_elements`, `max_inflated`) bound the walk.
///
/// With no edits and `from_ts == to_ts` the bytes are returned as they are.
/// Errors: [`ReencodeError::Unsupported`] for an output syntax we do not
/// write (explicit VR big endian) or pixel data that cannot go where asked,
/// [`ReencodeError::InvalidEdit`] for edits that cannot be made,
/// [`ReencodeError::Malformed`] for a malformed input,
/// [`ReencodeError::TooLong`] for a value a 32-bit length cannot hold.
pub fn rewrite_dataset(
    bytes: &[u8],
    from_ts: &str,
    to_ts: &str,
    edits: &Edits,
    opts: &ParseOptions,
) -> Result<Vec<u8>> {
    rewrite_with(bytes, from_ts, to_ts, edits, opts, u32::MAX as u64)
}

/// [`rewrite_dataset`] with the largest offset a Basic Offset Table may hold
/// (tests lower it to reach the Extended Offset Table without 4 GB frames).
fn rewrite_with(
    bytes: &[u8],
    from_ts: &str,
    to_ts: &str,
    edits: &Edits,
    opts: &ParseOptions,
    bot_limit: u64,
) -> Result<Vec<u8>> {
    if edits.is_empty() && from_ts == to_ts {
        return Ok(bytes.to_vec());
    }
    if to_ts == ts::EXPLICIT_VR_BE || to_ts.is_empty() {
        return Err(ReencodeError::Unsupported(format!(
            "{from_ts} to {to_ts:?}: only little endian output is written"
        )));
    }
    let plan = Plan::new(from_ts, to_ts, edits, bot_limit)?;
    reencode::convert(bytes, from_ts, to_ts, &plan, opts)
}

/// What the walker does besides converting: the top-level entries to write
/// or drop, sorted by tag, and which pixel data it may copy.
pub(crate) struct Plan<'e> {
    pub(crate) entries: Vec<Planned<'e>>,
    /// Encapsulated pixel data is copied as it is (the output syntax is the
    /// input's); otherwise it is refused.
    pub(crate) keep_encapsulated: bool,
    /// Top-level native Pixel Data is copied (converted); otherwise refused.
    pub(crate) native_pixel_data_ok: bool,
    /// Top-level Float / Double Float Pixel Data is copied; otherwise refused.
    pub(crate) float_pixel_data_ok: bool,
}

/// One top-level entry of a [`Plan`].
pub(crate) struct Planned<'e> {
    pub(crate) tag: Tag,
    pub(crate) what: Entry<'e>,
}

pub(crate) enum Entry<'e> {
    /// Write this element (replacing the input's).
    Set { vr: VR, value: Cow<'e, [u8]> },
    /// Drop the input's element.
    Remove,
    /// Native pixel data (padded to even length when written).
    Native { vr: VR, bytes: &'e [u8] },
    /// Encapsulated pixel data: one fragment per frame, this Basic Offset
    /// Table (empty when an Extended Offset Table is written).
    Fragments { frames: &'e [Vec<u8>], offsets: Vec<u32> },
}

impl Plan<'static> {
    /// A plain conversion between native syntaxes: no edits, native pixel
    /// data converted, encapsulated pixel data refused.
    pub(crate) fn conversion() -> Self {
        Plan { entries: Vec::new(), keep_encapsulated: false, native_pixel_data_ok: true, float_pixel_data_ok: true }
    }
}

impl<'e> Plan<'e> {
    /// Checks the edits and sorts them into entries.
    fn new(from_ts: &str, to_ts: &str, edits: &'e Edits, bot_limit: u64) -> Result<Self> {
        let same = from_ts == to_ts;
        let native_out = ts::is_native(to_ts);
        let mut entries = Vec::with_capacity(edits.set.len() + edits.remove.len() + 3);
        let invalid = |tag: Tag, why: &str| Err(ReencodeError::InvalidEdit(format!("{}: {why}", TagDisplay(tag))));
        for (tag, vr, value) in &edits.set {
            let (tag, vr) = (*tag, *vr);
            if tag.0 == 0x0002 || tag.0 == 0xFFFE || tag.1 == 0x0000 {
                return invalid(tag, "file meta, item and group length tags are not data set attributes");
            }
            if tag.0 == 0x7FE0 && matches!(tag.1, 0x0001 | 0x0002 | 0x0010) {
                return invalid(tag, "pixel data and its offset tables are set through pixel_data");
            }
            if vr == VR::SQ {
                return invalid(tag, "sequences cannot be set");
            }
            let value: Cow<'e, [u8]> = if value.len() % 2 == 1 {
                let mut v = Vec::with_capacity(value.len() + 1);
                v.extend_from_slice(value);
                v.push(pad_byte(vr));
                Cow::Owned(v)
            } else {
                Cow::Borrowed(value)
            };
            if !long_length(vr) && value.len() > 0xFFFF {
                return invalid(tag, &format!("{} bytes do not fit the 16-bit length of {vr}", value.len()));
            }
            if value.len() >= UNDEFINED as usize {
                return Err(ReencodeError::TooLong { tag: TagDisplay(tag) });
            }
            entries.push(Planned { tag, what: Entry::Set { vr, value } });
        }
        for &tag in &edits.remove {
            if tag.0 == 0xFFFE {
                return invalid(tag, "items and delimiters are not attributes");
            }
            if edits.pixel_data.is_some() && tag.0 == 0x7FE0 && matches!(tag.1, 0x0001 | 0x0002 | 0x0010) {
                return invalid(tag, "removed and replaced by pixel_data");
            }
            entries.push(Planned { tag, what: Entry::Remove });
        }
        match &edits.pixel_data {
            None => {}
            Some(PixelDataOut::Native { vr, bytes }) => {
                if !native_out {
                    return Err(ReencodeError::Unsupported(format!(
                        "native pixel data cannot be written in {to_ts}, an encapsulated transfer syntax"
                    )));
                }
                if !matches!(vr, VR::OB | VR::OW) {
                    return invalid(PIXEL_DATA, &format!("native pixel data is OB or OW, not {vr}"));
                }
                if bytes.len().next_multiple_of(2) >= UNDEFINED as usize {
                    return Err(ReencodeError::TooLong { tag: TagDisplay(PIXEL_DATA) });
                }
                entries.push(Planned { tag: EXTENDED_OFFSET_TABLE, what: Entry::Remove });
                entries.push(Planned { tag: EXTENDED_OFFSET_TABLE_LENGTHS, what: Entry::Remove });
                entries.push(Planned { tag: PIXEL_DATA, what: Entry::Native { vr: *vr, bytes } });
            }
            Some(PixelDataOut::Encapsulated { frames }) => {
                if native_out {
                    return Err(ReencodeError::Unsupported(format!(
                        "encapsulated pixel data cannot be written in {to_ts}, a native transfer syntax"
                    )));
                }
                if frames.is_empty() {
                    return invalid(PIXEL_DATA, "encapsulated pixel data needs at least one frame");
                }
                let (offsets, extended) = match offset_tables(frames, bot_limit)? {
                    OffsetTables::Basic(offsets) => (offsets, None),
                    OffsetTables::Extended { offsets, lengths } => (Vec::new(), Some((offsets, lengths))),
                };
                let (eot, eotl) = match extended {
                    None => (Entry::Remove, Entry::Remove),
                    Some((offsets, lengths)) => {
                        let ov = |v: Vec<u64>| Entry::Set {
                            vr: VR::OV,
                            value: Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                        };
                        (ov(offsets), ov(lengths))
                    }
                };
                entries.push(Planned { tag: EXTENDED_OFFSET_TABLE, what: eot });
                entries.push(Planned { tag: EXTENDED_OFFSET_TABLE_LENGTHS, what: eotl });
                entries.push(Planned { tag: PIXEL_DATA, what: Entry::Fragments { frames, offsets } });
            }
        }
        entries.sort_by_key(|e| order(e.tag));
        // One entry per tag: a tag removed twice is removed; anything else twice is an error.
        let mut i = 1;
        while i < entries.len() {
            if entries[i].tag == entries[i - 1].tag {
                if matches!(entries[i].what, Entry::Remove) && matches!(entries[i - 1].what, Entry::Remove) {
                    entries.remove(i);
                    continue;
                }
                return invalid(entries[i].tag, "named more than once (set twice, or set and removed)");
            }
            i += 1;
        }
        Ok(Plan {
            entries,
            keep_encapsulated: same,
            native_pixel_data_ok: native_out || same,
            float_pixel_data_ok: (native_out || same) && edits.pixel_data.is_none(),
        })
    }

    /// Bytes the entries add to the output at most (for its capacity).
    pub(crate) fn added_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|e| match &e.what {
                Entry::Set { value, .. } => 12 + value.len(),
                Entry::Remove => 0,
                Entry::Native { bytes, .. } => 13 + bytes.len(),
                Entry::Fragments { frames, offsets } => {
                    28 + 4 * offsets.len() + frames.iter().map(|f| 9 + f.len()).sum::<usize>()
                }
            })
            .sum()
    }
}

/// Writes one entry (nothing for a removal). Lengths were checked when the
/// plan was made.
pub(crate) fn write_entry(e: &Planned<'_>, outp: Encoding, out: &mut Vec<u8>) {
    let be = outp.big_endian;
    match &e.what {
        Entry::Remove => {}
        Entry::Set { vr, value } => {
            header(out, e.tag, *vr, value.len() as u32, outp);
            out.extend_from_slice(value);
        }
        Entry::Native { vr, bytes } => {
            header(out, e.tag, *vr, bytes.len().next_multiple_of(2) as u32, outp);
            out.extend_from_slice(bytes);
            if bytes.len() % 2 == 1 {
                out.push(0);
            }
        }
        Entry::Fragments { frames, offsets } => {
            header(out, e.tag, VR::OB, UNDEFINED, outp);
            put_tag(out, ITEM, be);
            put_u32(out, (offsets.len() * 4) as u32, be);
            for o in offsets {
                put_u32(out, *o, be);
            }
            for f in frames.iter() {
                put_tag(out, ITEM, be);
                put_u32(out, f.len().next_multiple_of(2) as u32, be);
                out.extend_from_slice(f);
                if f.len() % 2 == 1 {
                    out.push(0);
                }
            }
            put_tag(out, SEQUENCE_DELIMITATION, be);
            put_u32(out, 0, be);
        }
    }
}

/// The offset tables of one fragment per frame.
#[derive(Debug, PartialEq)]
enum OffsetTables {
    /// Every offset fits: the Basic Offset Table.
    Basic(Vec<u32>),
    /// Some offset exceeds the limit: Extended Offset Table values (offsets
    /// of each frame's item from the first fragment's item, and the length of
    /// each frame's fragment, padding included).
    Extended { offsets: Vec<u64>, lengths: Vec<u64> },
}

/// Offsets of one fragment per frame, measured from the first fragment's
/// item tag as both tables are; a Basic Offset Table when the last offset is
/// at most `bot_limit` (`u32::MAX` outside tests).
fn offset_tables(frames: &[Vec<u8>], bot_limit: u64) -> Result<OffsetTables> {
    let mut offsets = Vec::with_capacity(frames.len());
    let mut lengths = Vec::with_capacity(frames.len());
    let mut at = 0u64;
    for f in frames {
        let len = f.len().next_multiple_of(2) as u64;
        if len >= UNDEFINED as u64 {
            return Err(ReencodeError::TooLong { tag: TagDisplay(PIXEL_DATA) });
        }
        offsets.push(at);
        lengths.push(len);
        at += 8 + len;
    }
    if offsets.last().is_none_or(|&o| o <= bot_limit.min(u32::MAX as u64)) {
        Ok(OffsetTables::Basic(offsets.into_iter().map(|o| o as u32).collect()))
    } else {
        Ok(OffsetTables::Extended { offsets, lengths })
    }
}

/// The byte that pads an odd-length value of `vr` (PS3.5 §6.2).
fn pad_byte(vr: VR) -> u8 {
    use VR::*;
    match vr {
        AE | AS | CS | DA | DS | DT | IS | LO | LT | PN | SH | ST | TM | UC | UR | UT => b' ',
        _ => 0,
    }
}

/// A tag as a number that sorts as tags do.
pub(crate) fn order(tag: Tag) -> u32 {
    ((tag.0 as u32) << 16) | tag.1 as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{FrameIndex, locate};
    use crate::parse::{DataSet, ParseError, Value, parse_dataset, parse_part10};
    use crate::tags;
    use crate::write::{DataSetBuilder, part10};
    use std::io::Cursor;

    const EX: &str = ts::EXPLICIT_VR_LE;
    const IM: &str = ts::IMPLICIT_VR_LE;
    const BE: &str = ts::EXPLICIT_VR_BE;
    const DF: &str = ts::DEFLATED_EXPLICIT_VR_LE;
    const RLE: &str = "1.2.840.10008.1.2.5";
    const JPEG: &str = "1.2.840.10008.1.2.4.50";
    const JLS: &str = "1.2.840.10008.1.2.4.80";
    const J2K: &str = "1.2.840.10008.1.2.4.90";
    const PRIVATE_CREATOR: Tag = Tag(0x0009, 0x0010);
    const PRIVATE_VALUE: Tag = Tag(0x0009, 0x1001);

    fn rw(bytes: &[u8], from: &str, to: &str, edits: &Edits) -> Result<Vec<u8>> {
        rewrite_dataset(bytes, from, to, edits, &ParseOptions::default())
    }

    fn parse(bytes: &[u8], ts_uid: &str) -> DataSet {
        parse_dataset(&mut Cursor::new(bytes), bytes.len() as u64, ts_uid, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("parse as {ts_uid}: {e}"))
    }

    fn le16(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Top-level tags of an explicit VR little endian data set and where
    /// their elements start, in the order of the bytes (the parser sorts
    /// them). Nested items are jumped.
    fn top_elements(b: &[u8]) -> Vec<(Tag, usize)> {
        fn element(b: &[u8], pos: usize) -> (Tag, usize) {
            let tag = Tag(le16(b, pos), le16(b, pos + 2));
            let vr = VR::from_binary([b[pos + 4], b[pos + 5]]).unwrap();
            let (len, mut p) =
                if long_length(vr) { (le32(b, pos + 8), pos + 12) } else { (le16(b, pos + 6) as u32, pos + 8) };
            if len != UNDEFINED {
                return (tag, p + len as usize);
            }
            loop {
                let (it, il) = (Tag(le16(b, p), le16(b, p + 2)), le32(b, p + 4));
                p += 8;
                if it == SEQUENCE_DELIMITATION {
                    return (tag, p);
                }
                if il != UNDEFINED {
                    p += il as usize;
                    continue;
                }
                while Tag(le16(b, p), le16(b, p + 2)) != Tag(0xFFFE, 0xE00D) {
                    p = element(b, p).1;
                }
                p += 8;
            }
        }
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < b.len() {
            let (t, next) = element(b, pos);
            out.push((t, pos));
            pos = next;
        }
        out
    }

    fn top_tags(b: &[u8]) -> Vec<Tag> {
        top_elements(b).into_iter().map(|e| e.0).collect()
    }

    /// A small image with the things a copy must keep: a character set,
    /// nested undefined-length sequences, a private block (UN, as implicit
    /// VR reads it back), and 2×2 16-bit pixels. VRs are the dictionary's,
    /// so every native syntax gives the same explicit VR data set back.
    fn sample() -> DataSetBuilder {
        let mut d = DataSetBuilder::new();
        d.charset("ISO_IR 192");
        d.str(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY");
        d.str(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.7");
        d.str(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5.6");
        d.str(tags::PATIENT_NAME, VR::PN, "Zhang^San=张^三");
        d.str(tags::PATIENT_BIRTH_DATE, VR::DA, "19700101");
        d.str(PRIVATE_CREATOR, VR::LO, "YUNYING");
        d.bytes(PRIVATE_VALUE, VR::UN, vec![1, 2, 3, 4]);
        let mut inner = DataSetBuilder::new();
        inner.str(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.2.3.9");
        let mut outer = DataSetBuilder::new();
        outer.str(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.8");
        outer.sequence(tags::REFERENCED_INSTANCE_SEQUENCE, vec![inner, DataSetBuilder::new()]);
        d.sequence(tags::REFERENCED_SERIES_SEQUENCE, vec![outer]);
        d.u16(tags::SAMPLES_PER_PIXEL, 1);
        d.str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        d.u16(tags::ROWS, 2);
        d.u16(tags::COLUMNS, 2);
        d.u16(tags::BITS_ALLOCATED, 16);
        d.u16(tags::BITS_STORED, 12);
        d.u16(tags::HIGH_BIT, 11);
        d.u16(tags::PIXEL_REPRESENTATION, 0);
        d.pixel_data_native(vec![1, 0, 2, 0, 3, 0, 4, 0], VR::OW);
        d
    }

    /// What a transcoder sets: a new photometric interpretation (replacing),
    /// Lossy Image Compression (inserted), and the birth date removed.
    fn transcode_edits(pixel_data: PixelDataOut) -> Edits {
        Edits {
            set: vec![
                (tags::LOSSY_IMAGE_COMPRESSION, VR::CS, b"00".to_vec()),
                (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, b"MONOCHROME1".to_vec()), // odd: padded
            ],
            remove: vec![tags::PATIENT_BIRTH_DATE, tags::ACCESSION_NUMBER],
            pixel_data: Some(pixel_data),
        }
    }

    fn transcoded(frames_or_native: &PixelDataOut) -> DataSetBuilder {
        let mut d = sample();
        d.str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME1");
        d.str(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
        d.remove(tags::PATIENT_BIRTH_DATE);
        match frames_or_native {
            PixelDataOut::Native { vr, bytes } => d.pixel_data_native(bytes.clone(), *vr),
            PixelDataOut::Encapsulated { frames } => d.pixel_data_fragments(frames),
        };
        d
    }

    #[test]
    fn native_to_encapsulated_from_every_native_syntax() {
        let pixels = PixelDataOut::Encapsulated { frames: vec![vec![0xFF, 0xD8, 7], vec![0xFF, 0xD8, 8, 9]] };
        let edits = transcode_edits(pixels.clone());
        let expected = transcoded(&pixels).to_bytes(EX);
        for from in [EX, IM, BE, DF] {
            for to in [RLE, JLS] {
                let out = rw(&sample().to_bytes(from), from, to, &edits).unwrap();
                assert_eq!(out, expected, "{from} -> {to}");
            }
        }
        // Independently of the builder: the items and the offset table.
        let ds = parse(&expected, RLE);
        let Value::Fragments { offset_table, fragments } = &ds.get(PIXEL_DATA).unwrap().value else { panic!() };
        assert_eq!(offset_table, &[0, 12]);
        assert_eq!(fragments.iter().map(|f| f.1).collect::<Vec<_>>(), [4, 4]);
        assert_eq!(&expected[fragments[0].0 as usize..][..4], &[0xFF, 0xD8, 7, 0]);
        assert_eq!(ds.ascii(tags::PHOTOMETRIC_INTERPRETATION).as_deref(), Some("MONOCHROME1"));
        assert_eq!(ds.bytes(tags::PHOTOMETRIC_INTERPRETATION), Some(&b"MONOCHROME1 "[..]));
        assert_eq!(ds.ascii(tags::LOSSY_IMAGE_COMPRESSION).as_deref(), Some("00"));
        assert!(ds.get(tags::PATIENT_BIRTH_DATE).is_none());
        let order = top_tags(&expected);
        assert!(order.windows(2).all(|w| order_of(w[0]) < order_of(w[1])), "{order:?}");
    }

    fn order_of(t: Tag) -> u32 {
        order(t)
    }

    #[test]
    fn encapsulated_to_native_and_to_another_encapsulated_syntax() {
        let frames = vec![vec![0xFF, 0xD8, 1, 2, 0xFF, 0xD9], vec![0xFF, 0xD8, 3, 0xFF, 0xD9]];
        let mut input = sample();
        input.pixel_data_fragments(&frames);
        let input = input.to_bytes(EX);
        // To every native little endian syntax.
        let native = PixelDataOut::Native { vr: VR::OW, bytes: vec![9, 0, 8, 0, 7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0] };
        let edits = transcode_edits(native.clone());
        for to in [EX, IM, DF] {
            assert_eq!(rw(&input, JPEG, to, &edits).unwrap(), transcoded(&native).to_bytes(to), "{to}");
        }
        // Odd native bytes (8-bit) are padded.
        let odd = PixelDataOut::Native { vr: VR::OB, bytes: vec![1, 2, 3] };
        let out = rw(&input, JPEG, EX, &transcode_edits(odd)).unwrap();
        let ds = parse(&out, EX);
        let Value::Bulk { offset, length } = ds.get(PIXEL_DATA).unwrap().value else { panic!() };
        assert_eq!(
            (ds.get(PIXEL_DATA).unwrap().vr, &out[offset as usize..][..length as usize]),
            (VR::OB, &[1, 2, 3, 0][..])
        );
        // To another encapsulated syntax.
        let j2k =
            PixelDataOut::Encapsulated { frames: vec![vec![0xFF, 0x4F, 0xFF, 0x51], vec![0xFF, 0x4F, 0xFF, 0x51, 0]] };
        let out = rw(&input, JPEG, J2K, &transcode_edits(j2k.clone())).unwrap();
        assert_eq!(out, transcoded(&j2k).to_bytes(EX));
    }

    /// Encapsulated pixel data as it comes from modalities: an empty basic
    /// offset table and one frame in three fragments (one of them empty).
    fn raw_fragments() -> Vec<u8> {
        let mut p = vec![0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        p.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        for frag in [&[0xFF, 0xD8, 1, 2][..], &[], &[3, 4, 0xFF, 0xD9]] {
            p.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            p.extend_from_slice(&(frag.len() as u32).to_le_bytes());
            p.extend_from_slice(frag);
        }
        p.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn same_encapsulated_syntax_copies_the_fragments() {
        let mut head = sample();
        head.remove(PIXEL_DATA);
        let mut input = head.to_bytes(EX);
        input.extend_from_slice(&raw_fragments());
        let edits = Edits {
            set: vec![(tags::DERIVATION_DESCRIPTION, VR::ST, b"anonymised".to_vec())],
            remove: vec![tags::PATIENT_NAME],
            pixel_data: None,
        };
        let out = rw(&input, JPEG, JPEG, &edits).unwrap();
        head.str(tags::DERIVATION_DESCRIPTION, VR::ST, "anonymised");
        head.remove(tags::PATIENT_NAME);
        let mut expected = head.to_bytes(EX);
        expected.extend_from_slice(&raw_fragments());
        assert_eq!(out, expected);
        // From implicit VR to explicit VR (a mislabelled object) the items are the same.
        let mut im = sample();
        im.remove(PIXEL_DATA);
        let mut im = im.to_bytes(IM);
        let mut raw = raw_fragments();
        raw.drain(4..8); // implicit: no VR, no reserved bytes, 4-byte length
        im.extend_from_slice(&raw);
        let out = rw(&im, EX, EX, &edits).unwrap();
        assert_eq!(out, expected);
        // Without edits the bytes are returned as they are.
        assert_eq!(rw(&input, JPEG, JPEG, &Edits::default()).unwrap(), input);
        // To another syntax without new pixel data: refused.
        assert!(matches!(rw(&input, JPEG, JLS, &edits), Err(ReencodeError::Unsupported(_))));
        assert!(matches!(rw(&input, JPEG, EX, &Edits::default()), Err(ReencodeError::Unsupported(_))));
        // With new frames: the three fragments go, one per frame comes.
        let frames = PixelDataOut::Encapsulated { frames: vec![vec![1, 2, 3, 4]] };
        let out = rw(&input, JPEG, JPEG, &Edits { pixel_data: Some(frames.clone()), ..edits.clone() }).unwrap();
        let mut expected = head.clone();
        let PixelDataOut::Encapsulated { frames } = &frames else { unreachable!() };
        expected.pixel_data_fragments(frames);
        assert_eq!(out, expected.to_bytes(EX));
    }

    #[test]
    fn input_extended_offset_table_goes_with_the_pixel_data() {
        let mut d = sample();
        d.remove(PIXEL_DATA);
        d.str(tags::NUMBER_OF_FRAMES, VR::IS, "1");
        d.bytes(EXTENDED_OFFSET_TABLE, VR::OV, 0u64.to_le_bytes().to_vec());
        d.bytes(EXTENDED_OFFSET_TABLE_LENGTHS, VR::OV, 10u64.to_le_bytes().to_vec());
        d.pixel_data_fragments(&[vec![0xFF, 0xD8, 1, 2, 3, 4, 5, 6, 0xFF, 0xD9]]);
        let input = d.to_bytes(EX);
        // Kept when the pixel data is copied.
        let keep = Edits { set: vec![(tags::DERIVATION_DESCRIPTION, VR::ST, b"x".to_vec())], ..Edits::default() };
        let ds = parse(&rw(&input, JPEG, JPEG, &keep).unwrap(), JPEG);
        assert!(ds.get(EXTENDED_OFFSET_TABLE).is_some() && ds.get(EXTENDED_OFFSET_TABLE_LENGTHS).is_some());
        // Dropped when it is replaced, natively or not.
        for (to, px) in [
            (EX, PixelDataOut::Native { vr: VR::OW, bytes: vec![0; 8] }),
            (JLS, PixelDataOut::Encapsulated { frames: vec![vec![1, 2]] }),
        ] {
            let out = rw(&input, JPEG, to, &Edits { pixel_data: Some(px), ..Edits::default() }).unwrap();
            let ds = parse(&out, to);
            assert!(ds.get(EXTENDED_OFFSET_TABLE).is_none() && ds.get(EXTENDED_OFFSET_TABLE_LENGTHS).is_none(), "{to}");
            assert!(ds.get(PIXEL_DATA).is_some());
        }
    }

    #[test]
    fn offsets_past_32_bits_make_an_extended_offset_table() {
        // The table itself, at the limit.
        let frames = vec![vec![0u8; 10], vec![0u8; 7], vec![0u8; 4]];
        assert_eq!(offset_tables(&frames, 34).unwrap(), OffsetTables::Basic(vec![0, 18, 34]));
        assert_eq!(
            offset_tables(&frames, 33).unwrap(),
            OffsetTables::Extended { offsets: vec![0, 18, 34], lengths: vec![10, 8, 4] }
        );
        assert_eq!(offset_tables(&frames, u32::MAX as u64).unwrap(), OffsetTables::Basic(vec![0, 18, 34]));
        // Written: an empty basic offset table, the two OV elements before
        // the pixel data, and frames found through them.
        let frames = vec![vec![1u8; 10], vec![2u8; 7], vec![3u8; 4]];
        let mut input = sample();
        input.str(tags::NUMBER_OF_FRAMES, VR::IS, "3");
        let edits =
            Edits { pixel_data: Some(PixelDataOut::Encapsulated { frames: frames.clone() }), ..Edits::default() };
        let out = rewrite_with(&input.to_bytes(EX), EX, RLE, &edits, &ParseOptions::default(), 25).unwrap();
        let ds = parse(&out, RLE);
        let u64s = |t: Tag| {
            ds.bytes(t).unwrap().chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>()
        };
        assert_eq!(u64s(EXTENDED_OFFSET_TABLE), [0, 18, 34]);
        assert_eq!(u64s(EXTENDED_OFFSET_TABLE_LENGTHS), [10, 8, 4]);
        assert_eq!(ds.get(EXTENDED_OFFSET_TABLE).unwrap().vr, VR::OV);
        let Value::Fragments { offset_table, .. } = &ds.get(PIXEL_DATA).unwrap().value else { panic!() };
        assert!(offset_table.is_empty());
        let tail = top_tags(&out);
        assert_eq!(&tail[tail.len() - 3..], &[EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS, PIXEL_DATA]);
        let file = part10("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.5.6", RLE, &out, None);
        let obj = parse_part10(&mut Cursor::new(&file), file.len() as u64, &ParseOptions::default()).unwrap();
        let FrameIndex::Encapsulated { frames: found, .. } = locate(&obj, |_| None) else { panic!() };
        let got: Vec<Vec<u8>> = found
            .iter()
            .map(|f| f.iter().flat_map(|&(o, l)| file[o as usize..][..l as usize].to_vec()).collect())
            .collect();
        assert_eq!(got, [vec![1u8; 10], [vec![2u8; 7], vec![0]].concat(), vec![3u8; 4]]);
        // DCMTK reads the extended offset table too (when installed).
        if let Some(dump) = dcmdump(&file, "eot") {
            assert!(dump.contains("(7fe0,0001) OV 0\\18\\34"), "{dump}");
            assert!(dump.contains("(7fe0,0002) OV 10\\8\\4"), "{dump}");
        }
    }

    /// `dcmdump` of a file, `None` when DCMTK is not installed.
    fn dcmdump(file: &[u8], name: &str) -> Option<String> {
        let path = std::env::temp_dir().join(format!("yunying-rewrite-{}-{name}.dcm", std::process::id()));
        std::fs::write(&path, file).unwrap();
        let out = std::process::Command::new("dcmdump").arg("-q").arg(&path).output();
        let _ = std::fs::remove_file(&path);
        let out = out.ok()?;
        assert!(out.status.success(), "dcmdump: {}", String::from_utf8_lossy(&out.stderr));
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An explicit VR little endian element, written by hand.
    fn el(out: &mut Vec<u8>, tag: Tag, vr: &[u8; 2], value: &[u8]) {
        out.extend_from_slice(&tag.0.to_le_bytes());
        out.extend_from_slice(&tag.1.to_le_bytes());
        out.extend_from_slice(vr);
        if long_length(VR::from_binary(*vr).unwrap()) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
    }

    #[test]
    fn edits_go_in_tag_order_and_input_order_is_kept() {
        let mut input = Vec::new();
        el(&mut input, tags::SOP_CLASS_UID, b"UI", b"1.2.3\0");
        el(&mut input, tags::STUDY_DATE, b"DA", b"20240101");
        el(&mut input, tags::PATIENT_NAME, b"PN", b"Li^Si ");
        el(&mut input, tags::ROWS, b"US", &[2, 0]);
        let set = |tags_vrs: &[(Tag, VR, &[u8])]| Edits {
            set: tags_vrs.iter().map(|(t, v, b)| (*t, *v, b.to_vec())).collect(),
            ..Edits::default()
        };
        let tags_after = |e: &Edits| top_tags(&rw(&input, EX, EX, e).unwrap());
        // Before the first, between, after the last.
        let e = set(&[
            (tags::SPECIFIC_CHARACTER_SET, VR::CS, b"ISO_IR 100"),
            (tags::PATIENT_ID, VR::LO, b"P1"),
            (tags::FRAME_OF_REFERENCE_UID, VR::UI, b"1.2"),
            (tags::COLUMNS, VR::US, &[2, 0]),
            (Tag(0x7FE1, 0x0010), VR::LO, b"LAST"),
        ]);
        assert_eq!(
            tags_after(&e),
            [
                tags::SPECIFIC_CHARACTER_SET,
                tags::SOP_CLASS_UID,
                tags::STUDY_DATE,
                tags::PATIENT_NAME,
                tags::PATIENT_ID,
                tags::FRAME_OF_REFERENCE_UID,
                tags::ROWS,
                tags::COLUMNS,
                Tag(0x7FE1, 0x0010)
            ]
        );
        // Replacing the first and the last, removing one in the middle and
        // one that is absent; values are padded (UI with a NUL).
        let e = Edits {
            remove: vec![tags::STUDY_DATE, tags::ACCESSION_NUMBER],
            ..set(&[(tags::SOP_CLASS_UID, VR::UI, b"1.2.34"), (tags::ROWS, VR::US, &[7, 0])])
        };
        let out = rw(&input, EX, EX, &e).unwrap();
        let mut expected = Vec::new();
        el(&mut expected, tags::SOP_CLASS_UID, b"UI", b"1.2.34");
        el(&mut expected, tags::PATIENT_NAME, b"PN", b"Li^Si ");
        el(&mut expected, tags::ROWS, b"US", &[7, 0]);
        assert_eq!(out, expected);
        let out = rw(&input, EX, EX, &set(&[(tags::SOP_CLASS_UID, VR::UI, b"1.2.3.4.5")])).unwrap();
        assert_eq!(&out[..18], b"\x08\x00\x16\x00UI\x0a\x001.2.3.4.5\0");

        // An input out of order keeps its order; an entry due before an
        // element is written there even when the input holds the same tag
        // later, which is then dropped: no tag is written twice.
        let mut odd = Vec::new();
        el(&mut odd, tags::PATIENT_NAME, b"PN", b"Li^Si ");
        el(&mut odd, tags::SOP_CLASS_UID, b"UI", b"1.2.3\0");
        el(&mut odd, tags::STUDY_INSTANCE_UID, b"UI", b"1.2.4\0");
        el(&mut odd, tags::STUDY_DATE, b"DA", b"20240101");
        assert_eq!(
            rw(&odd, EX, IM, &Edits::default()).map(|o| rw(&o, IM, EX, &Edits::default()).unwrap()).unwrap(),
            odd
        );
        let e = set(&[(tags::SOP_CLASS_UID, VR::UI, b"9.9\0"), (tags::STUDY_ID, VR::SH, b"S1")]);
        let out = rw(&odd, EX, EX, &e).unwrap();
        assert_eq!(
            top_tags(&out),
            [tags::SOP_CLASS_UID, tags::PATIENT_NAME, tags::STUDY_INSTANCE_UID, tags::STUDY_DATE, tags::STUDY_ID]
        );
        assert_eq!(&out[8..12], b"9.9\0");
        let e = set(&[(tags::PATIENT_ID, VR::LO, b"P1")]);
        assert_eq!(
            top_tags(&rw(&odd, EX, EX, &e).unwrap()),
            [tags::PATIENT_NAME, tags::SOP_CLASS_UID, tags::PATIENT_ID, tags::STUDY_INSTANCE_UID, tags::STUDY_DATE]
        );
        // In implicit VR out, the same values without VRs.
        let out = rw(&input, EX, IM, &set(&[(tags::PATIENT_ID, VR::LO, b"P1")])).unwrap();
        let ds = parse(&out, IM);
        assert_eq!(ds.ascii(tags::PATIENT_ID).as_deref(), Some("P1"));
        assert_eq!(ds.elements.len(), 5);
    }

    #[test]
    fn pixel_data_is_inserted_when_absent_and_removable() {
        let mut d = sample();
        d.remove(PIXEL_DATA);
        d.str(Tag(0x7FE1, 0x0010), VR::LO, "AFTER");
        let bytes = d.to_bytes(IM);
        let native = PixelDataOut::Native { vr: VR::OW, bytes: vec![1, 0, 2, 0, 3, 0, 4, 0] };
        let out = rw(&bytes, IM, EX, &Edits { pixel_data: Some(native), ..Edits::default() }).unwrap();
        let t = top_tags(&out);
        assert_eq!(&t[t.len() - 2..], &[PIXEL_DATA, Tag(0x7FE1, 0x0010)]);
        // Removing the pixel data takes it out of any syntax.
        let mut jpeg = sample();
        jpeg.pixel_data_fragments(&[vec![1, 2]]);
        let out = rw(&jpeg.to_bytes(EX), JPEG, EX, &Edits { remove: vec![PIXEL_DATA], ..Edits::default() }).unwrap();
        let mut expected = sample();
        expected.remove(PIXEL_DATA);
        assert_eq!(out, expected.to_bytes(EX));
    }

    /// An icon with encapsulated pixel data nested in a sequence: copied in
    /// its own syntax, refused in another unless the sequence is removed.
    #[test]
    fn encapsulated_icons() {
        let mut head = Vec::new();
        el(&mut head, tags::SOP_CLASS_UID, b"UI", b"1.2.3\0");
        let mut icon = vec![0x88, 0x00, 0x00, 0x02, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        icon.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        el(&mut icon, tags::ROWS, b"US", &[1, 0]);
        icon.extend_from_slice(&raw_fragments());
        icon.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        icon.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let mut input = head.clone();
        input.extend_from_slice(&icon);
        input.extend_from_slice(&raw_fragments());
        let frames =
            Edits { pixel_data: Some(PixelDataOut::Encapsulated { frames: vec![vec![5, 6]] }), ..Edits::default() };
        let out = rw(&input, JPEG, JPEG, &frames).unwrap();
        assert_eq!(&out[..head.len() + icon.len()], &input[..head.len() + icon.len()]);
        assert!(matches!(rw(&input, JPEG, JLS, &frames), Err(ReencodeError::Unsupported(_))));
        let without = Edits { remove: vec![tags::ICON_IMAGE_SEQUENCE], ..frames.clone() };
        let out = rw(&input, JPEG, JLS, &without).unwrap();
        assert_eq!(top_tags(&out), [tags::SOP_CLASS_UID, PIXEL_DATA]);
        let native = Edits {
            remove: vec![tags::ICON_IMAGE_SEQUENCE],
            pixel_data: Some(PixelDataOut::Native { vr: VR::OB, bytes: vec![1, 2] }),
            ..Edits::default()
        };
        assert_eq!(
            top_tags(&rw(&input, JPEG, IM, &native).and_then(|o| rw(&o, IM, EX, &Edits::default())).unwrap()),
            [tags::SOP_CLASS_UID, PIXEL_DATA]
        );
    }

    #[test]
    fn sequences_private_and_un_elements_are_copied() {
        // Defined-length sequences and items (as encode_json_dataset writes them).
        let j = serde_json::json!({
            "00080016": {"vr": "UI", "Value": ["1.2.3"]},
            "00081115": {"vr": "SQ", "Value": [
                {"0020000E": {"vr": "UI", "Value": ["1.2.3.8"]},
                 "0008114A": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3.9"]}}, {}]}},
            ]},
            "00090010": {"vr": "LO", "Value": ["YUNYING"]},
            "00091001": {"vr": "OB", "InlineBinary": "AQIDBA=="},
            "00280010": {"vr": "US", "Value": [2]},
            "7FE00010": {"vr": "OW", "InlineBinary": "AQACAAMABAA="},
        });
        let serde_json::Value::Object(j) = j else { unreachable!() };
        let ex = crate::json_dataset::encode_json_dataset(&j, true).unwrap();
        // An undefined-length UN: a private sequence in implicit VR.
        let mut un = Vec::new();
        un.extend_from_slice(&[0x09, 0x00, 0x02, 0x10, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        un.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        un.extend_from_slice(&[0x10, 0x00, 0x20, 0x00, 4, 0, 0, 0]);
        un.extend_from_slice(b"P01 ");
        un.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        un.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let split = top_elements(&ex).iter().find(|e| e.0 == tags::ROWS).unwrap().1;
        let input = [&ex[..split], &un[..], &ex[split..]].concat();
        let frames = Edits {
            pixel_data: Some(PixelDataOut::Encapsulated { frames: vec![vec![1, 2, 3, 4]] }),
            ..Edits::default()
        };
        let out = rw(&input, EX, RLE, &frames).unwrap();
        let pixel_at = |b: &[u8]| b.windows(4).rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00]).unwrap();
        assert_eq!(&out[..pixel_at(&out)], &input[..pixel_at(&input)]);
        // Through implicit VR and back: the same values.
        let im = rw(&input, EX, IM, &Edits::default()).unwrap();
        let back = rw(&im, IM, RLE, &frames).unwrap();
        let ds = parse(&back, RLE);
        let items = ds.items(tags::REFERENCED_SERIES_SEQUENCE).unwrap();
        assert_eq!(items[0].items(tags::REFERENCED_INSTANCE_SEQUENCE).unwrap().len(), 2);
        assert_eq!(ds.items(Tag(0x0009, 0x1002)).unwrap()[0].ascii(tags::PATIENT_ID).as_deref(), Some("P01"));
        assert_eq!(ds.get(PRIVATE_VALUE).unwrap().vr, VR::UN);
        assert_eq!(ds.bytes(PRIVATE_VALUE), Some(&[1u8, 2, 3, 4][..]));
    }

    #[test]
    fn pixel_representation_set_governs_implicit_vrs_after_it() {
        let mut d = DataSetBuilder::new();
        d.u16(tags::PIXEL_REPRESENTATION, 0);
        d.bytes(tags::SMALLEST_IMAGE_PIXEL_VALUE, VR::US, vec![0xFB, 0xFF]);
        let im = d.to_bytes(IM);
        let vr_of =
            |e: &Edits| parse(&rw(&im, IM, EX, e).unwrap(), EX).get(tags::SMALLEST_IMAGE_PIXEL_VALUE).unwrap().vr;
        assert_eq!(vr_of(&Edits { remove: vec![tags::PATIENT_ID], ..Edits::default() }), VR::US);
        let signed = Edits { set: vec![(tags::PIXEL_REPRESENTATION, VR::US, vec![1, 0])], ..Edits::default() };
        assert_eq!(vr_of(&signed), VR::SS);
    }

    #[test]
    fn refusals() {
        let ex = sample().to_bytes(EX);
        let native = || Some(PixelDataOut::Native { vr: VR::OW, bytes: vec![0; 8] });
        let frames = || Some(PixelDataOut::Encapsulated { frames: vec![vec![1, 2]] });
        let unsupported = |from: &str, to: &str, e: Edits| {
            assert!(matches!(rw(&ex, from, to, &e), Err(ReencodeError::Unsupported(_))), "{from} -> {to}: {e:?}")
        };
        unsupported(EX, RLE, Edits { pixel_data: native(), ..Edits::default() });
        unsupported(EX, IM, Edits { pixel_data: frames(), ..Edits::default() });
        unsupported(EX, BE, Edits { pixel_data: native(), ..Edits::default() });
        unsupported(EX, RLE, Edits::default()); // native pixel data, no frames
        unsupported(EX, RLE, Edits { set: vec![(tags::PATIENT_ID, VR::LO, b"P1".to_vec())], ..Edits::default() });
        // Float pixel data cannot stand next to new pixel data.
        let mut f = sample();
        f.remove(PIXEL_DATA);
        f.bytes(tags::FLOAT_PIXEL_DATA, VR::OF, vec![0; 16]);
        let fb = f.to_bytes(EX);
        assert!(matches!(
            rw(&fb, EX, IM, &Edits { pixel_data: native(), ..Edits::default() }),
            Err(ReencodeError::Unsupported(_))
        ));
        assert!(matches!(
            rw(&fb, EX, RLE, &Edits { pixel_data: frames(), ..Edits::default() }),
            Err(ReencodeError::Unsupported(_))
        ));
        assert!(rw(&fb, EX, IM, &Edits { remove: vec![tags::PATIENT_ID], ..Edits::default() }).is_ok());
        // Invalid edits.
        let invalid = |e: Edits| assert!(matches!(rw(&ex, EX, IM, &e), Err(ReencodeError::InvalidEdit(_))), "{e:?}");
        let set = |t: Tag, vr: VR, v: Vec<u8>| Edits { set: vec![(t, vr, v)], ..Edits::default() };
        invalid(set(tags::TRANSFER_SYNTAX_UID, VR::UI, b"1.2\0".to_vec()));
        invalid(set(Tag(0x0028, 0x0000), VR::UL, vec![0; 4]));
        invalid(set(Tag(0xFFFE, 0xE000), VR::OB, vec![]));
        invalid(set(PIXEL_DATA, VR::OW, vec![0; 8]));
        invalid(set(EXTENDED_OFFSET_TABLE, VR::OV, vec![0; 8]));
        invalid(set(tags::REFERENCED_IMAGE_SEQUENCE, VR::SQ, vec![]));
        invalid(set(tags::STUDY_DESCRIPTION, VR::LO, vec![b'x'; 0x1_0000]));
        invalid(Edits {
            set: vec![(tags::PATIENT_ID, VR::LO, b"A".to_vec()), (tags::PATIENT_ID, VR::LO, b"B".to_vec())],
            ..Edits::default()
        });
        invalid(Edits {
            set: vec![(tags::PATIENT_ID, VR::LO, b"A".to_vec())],
            remove: vec![tags::PATIENT_ID],
            ..Edits::default()
        });
        invalid(Edits { remove: vec![Tag(0xFFFE, 0xE0DD)], ..Edits::default() });
        invalid(Edits { remove: vec![PIXEL_DATA], pixel_data: native(), ..Edits::default() });
        invalid(Edits { pixel_data: Some(PixelDataOut::Native { vr: VR::OF, bytes: vec![0; 8] }), ..Edits::default() });
        assert!(matches!(
            rw(
                &ex,
                EX,
                RLE,
                &Edits { pixel_data: Some(PixelDataOut::Encapsulated { frames: vec![] }), ..Edits::default() }
            ),
            Err(ReencodeError::InvalidEdit(_))
        ));
        // A tag removed twice is fine; a long value under a 32-bit VR too.
        let ok = Edits {
            remove: vec![tags::PATIENT_NAME, tags::PATIENT_NAME],
            set: vec![(tags::DERIVATION_DESCRIPTION, VR::UT, vec![b'x'; 0x1_0001])],
            ..Edits::default()
        };
        let ds = parse(&rw(&ex, EX, EX, &ok).unwrap(), EX);
        assert!(ds.get(tags::PATIENT_NAME).is_none());
        assert_eq!(ds.get(tags::DERIVATION_DESCRIPTION).unwrap().value.byte_len(), 0x1_0002);
    }

    #[test]
    fn part10_is_meta_then_data_set() {
        let ds = rw(
            &sample().to_bytes(IM),
            IM,
            DF,
            &transcode_edits(PixelDataOut::Native { vr: VR::OW, bytes: vec![0; 8] }),
        )
        .unwrap();
        let file = part10("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.5.6", DF, &ds, Some("YUNYING"));
        assert_eq!(
            &file[..file.len() - ds.len()],
            &crate::write::file_meta("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.5.6", DF, Some("YUNYING"))[..]
        );
        let obj = parse_part10(&mut Cursor::new(&file), file.len() as u64, &ParseOptions::default()).unwrap();
        assert_eq!(obj.transfer_syntax(), DF);
        assert_eq!(obj.meta.source_ae_title.as_deref(), Some("YUNYING"));
        assert_eq!(obj.dataset.ascii(tags::PHOTOMETRIC_INTERPRETATION).as_deref(), Some("MONOCHROME1"));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let native = PixelDataOut::Native { vr: VR::OW, bytes: vec![0; 8] };
        let frames = PixelDataOut::Encapsulated { frames: vec![vec![1, 2, 3], vec![4]] };
        let mut enc = sample();
        enc.pixel_data_fragments(&[vec![0xFF, 0xD8, 0xFF, 0xD9], vec![0xFF, 0xD8, 1, 0xFF, 0xD9]]);
        let mut multi = sample();
        multi.remove(PIXEL_DATA);
        let mut multi = multi.to_bytes(EX);
        multi.extend_from_slice(&raw_fragments());
        let copy = Edits { set: vec![(tags::DERIVATION_DESCRIPTION, VR::ST, b"x".to_vec())], ..Edits::default() };
        let cases: Vec<(Vec<u8>, &str, &str, Edits)> = vec![
            (sample().to_bytes(EX), EX, RLE, transcode_edits(frames.clone())),
            (sample().to_bytes(IM), IM, JLS, transcode_edits(frames.clone())),
            (sample().to_bytes(BE), BE, EX, transcode_edits(native.clone())),
            (sample().to_bytes(DF), DF, J2K, transcode_edits(frames.clone())),
            (enc.to_bytes(EX), JPEG, IM, transcode_edits(native.clone())),
            (enc.to_bytes(EX), JPEG, J2K, transcode_edits(frames.clone())),
            (multi.clone(), JPEG, JPEG, copy.clone()),
            (
                multi.clone(),
                JPEG,
                EX,
                Edits { remove: vec![tags::REFERENCED_SERIES_SEQUENCE], ..transcode_edits(native.clone()) },
            ),
        ];
        for (bytes, from, to, edits) in &cases {
            assert!(rw(bytes, from, to, edits).is_ok(), "{from} -> {to}");
            for cut in 0..bytes.len() {
                let _ = rw(&bytes[..cut], from, to, edits);
            }
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            for _ in 0..2000 {
                let mut b = bytes.clone();
                for _ in 0..3 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed % b.len() as u64) as usize;
                    b[i] = (seed >> 32) as u8;
                }
                let _ = rw(&b, from, to, edits);
            }
        }
        // Cut inside the pixel data being replaced, native or encapsulated: an error.
        let ex = sample().to_bytes(EX);
        assert!(matches!(
            rw(&ex[..ex.len() - 3], EX, RLE, &transcode_edits(frames.clone())),
            Err(ReencodeError::Malformed(ParseError::LengthExceedsInput { .. }))
        ));
        assert!(matches!(
            rw(&multi[..multi.len() - 5], JPEG, EX, &transcode_edits(native.clone())),
            Err(ReencodeError::Malformed(ParseError::Truncated { .. }))
        ));
        assert!(rw(&multi[..multi.len() - 8], JPEG, JPEG, &copy).is_err()); // no sequence delimiter
        // A fragment of undefined length, a fragment longer than the input,
        // something other than an item among the fragments.
        let at = multi.len() - 8 - 8 - 4; // the last fragment's item header
        for (patch, what) in [
            (&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF][..], "undefined"),
            (&[0xFE, 0xFF, 0x00, 0xE0, 0x00, 0x01, 0x00, 0x00][..], "long"),
            (&[0x08, 0x00, 0x16, 0x00, 0x04, 0x00, 0x00, 0x00][..], "not an item"),
        ] {
            let mut b = multi.clone();
            b[at..at + 8].copy_from_slice(patch);
            for (to, e) in [(EX, transcode_edits(native.clone())), (JPEG, copy.clone())] {
                assert!(matches!(rw(&b, JPEG, to, &e), Err(ReencodeError::Malformed(_))), "{what} -> {to}");
            }
        }
        // The element limit and the depth limit hold in what is skipped.
        let opts = ParseOptions { max_elements: 10, ..ParseOptions::default() };
        let drop_seq = Edits { remove: vec![tags::REFERENCED_SERIES_SEQUENCE], ..Edits::default() };
        assert!(rewrite_dataset(&ex, EX, IM, &drop_seq, &ParseOptions::default()).is_ok());
        let opts_small = ParseOptions { max_elements: 14, ..ParseOptions::default() };
        assert!(matches!(
            rewrite_dataset(&ex, EX, IM, &drop_seq, &opts_small),
            Err(ReencodeError::Malformed(ParseError::TooManyElements(14)))
        ));
        assert!(matches!(
            rewrite_dataset(&multi, JPEG, EX, &transcode_edits(native.clone()), &opts),
            Err(ReencodeError::Malformed(ParseError::TooManyElements(10)))
        ));
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            deep.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let drop_deep = Edits { remove: vec![Tag(0x0008, 0x1115)], ..Edits::default() };
        assert!(matches!(rw(&deep, EX, IM, &drop_deep), Err(ReencodeError::Malformed(ParseError::TooDeep(32)))));
        assert!(matches!(
            rw(&deep, EX, RLE, &transcode_edits(frames)),
            Err(ReencodeError::Malformed(ParseError::TooDeep(32)))
        ));
    }
}
