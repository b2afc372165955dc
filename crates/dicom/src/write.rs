//! A small Part-10 writer: enough to make realistic synthetic studies and
//! test fixtures (including deliberately broken ones) without a second DICOM
//! library. Data sets are written in explicit VR little endian, implicit VR
//! little endian or explicit VR big endian; pixel data native or encapsulated.
//!
//! It also writes the file meta information that turns a data set received
//! over the network into a Part-10 file ([`file_meta`]), and finds where the
//! data set of a Part-10 file starts ([`dataset_offset`]).

use std::collections::BTreeMap;

use dicom_core::{Tag, VR};

use crate::charset::{CharacterSet, vr_uses_charset};
use crate::ts::{self, Encoding};

/// Yunying's Implementation Class UID (0002,0012).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.300952665116830774577385768040359174790";
/// Yunying's Implementation Version Name (0002,0013).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("YUNYING_", env!("CARGO_PKG_VERSION_MAJOR"), "_", env!("CARGO_PKG_VERSION_MINOR"));

#[derive(Debug, Clone)]
enum Content {
    Bytes(Vec<u8>),
    Items(Vec<DataSetBuilder>),
    Fragments { offset_table: Vec<u32>, frames: Vec<Vec<u8>> },
}

/// A data set under construction. Elements are kept in tag order.
#[derive(Debug, Clone, Default)]
pub struct DataSetBuilder {
    elements: BTreeMap<(u16, u16), (VR, Content)>,
    charset: Option<CharacterSet>,
}

impl DataSetBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the Specific Character Set and encodes later text with it.
    pub fn charset(&mut self, term: &str) -> &mut Self {
        self.charset = CharacterSet::named(term);
        self.bytes(Tag(0x0008, 0x0005), VR::CS, pad(term.as_bytes().to_vec(), b' '))
    }

    /// A text value (several values joined by `\`).
    pub fn str(&mut self, tag: Tag, vr: VR, text: &str) -> &mut Self {
        let raw = if vr_uses_charset(vr) {
            self.charset.clone().unwrap_or_default().encode(text)
        } else {
            text.as_bytes().to_vec()
        };
        let padding = if vr == VR::UI { 0 } else { b' ' };
        self.bytes(tag, vr, pad(raw, padding))
    }

    pub fn u16(&mut self, tag: Tag, v: u16) -> &mut Self {
        self.bytes(tag, VR::US, v.to_le_bytes().to_vec())
    }

    pub fn u32(&mut self, tag: Tag, v: u32) -> &mut Self {
        self.bytes(tag, VR::UL, v.to_le_bytes().to_vec())
    }

    pub fn f64s(&mut self, tag: Tag, v: &[f64]) -> &mut Self {
        self.bytes(tag, VR::FD, v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    /// Raw value bytes, little endian for numeric VRs (swapped when the
    /// object is written big endian).
    pub fn bytes(&mut self, tag: Tag, vr: VR, value: Vec<u8>) -> &mut Self {
        self.elements.insert((tag.0, tag.1), (vr, Content::Bytes(value)));
        self
    }

    pub fn sequence(&mut self, tag: Tag, items: Vec<DataSetBuilder>) -> &mut Self {
        self.elements.insert((tag.0, tag.1), (VR::SQ, Content::Items(items)));
        self
    }

    /// Native pixel data (OW for 16-bit, OB for 8-bit).
    pub fn pixel_data_native(&mut self, data: Vec<u8>, vr: VR) -> &mut Self {
        self.bytes(Tag(0x7FE0, 0x0010), vr, data)
    }

    /// Encapsulated pixel data, one fragment per frame, with a basic offset table.
    pub fn pixel_data_fragments(&mut self, frames: &[Vec<u8>]) -> &mut Self {
        let mut offsets = Vec::with_capacity(frames.len());
        let mut at = 0u32;
        for f in frames {
            offsets.push(at);
            at += 8 + f.len().next_multiple_of(2) as u32;
        }
        self.elements.insert(
            (0x7FE0, 0x0010),
            (VR::OB, Content::Fragments { offset_table: offsets, frames: frames.to_vec() }),
        );
        self
    }

    pub fn remove(&mut self, tag: Tag) -> &mut Self {
        self.elements.remove(&(tag.0, tag.1));
        self
    }

    fn encode(&self, enc: Encoding, out: &mut Vec<u8>) {
        for (&(g, e), (vr, content)) in &self.elements {
            let tag = Tag(g, e);
            match content {
                Content::Bytes(v) => {
                    let v = if enc.big_endian { swap_for(*vr, v) } else { v.clone() };
                    header(out, tag, *vr, v.len() as u32, enc);
                    out.extend_from_slice(&v);
                }
                Content::Items(items) => {
                    header(out, tag, VR::SQ, 0xFFFF_FFFF, enc);
                    for item in items {
                        put_tag(out, Tag(0xFFFE, 0xE000), enc.big_endian);
                        put_u32(out, 0xFFFF_FFFF, enc.big_endian);
                        item.encode(enc, out);
                        put_tag(out, Tag(0xFFFE, 0xE00D), enc.big_endian);
                        put_u32(out, 0, enc.big_endian);
                    }
                    put_tag(out, Tag(0xFFFE, 0xE0DD), enc.big_endian);
                    put_u32(out, 0, enc.big_endian);
                }
                Content::Fragments { offset_table, frames } => {
                    header(out, tag, VR::OB, 0xFFFF_FFFF, enc);
                    put_tag(out, Tag(0xFFFE, 0xE000), enc.big_endian);
                    put_u32(out, (offset_table.len() * 4) as u32, enc.big_endian);
                    for o in offset_table {
                        put_u32(out, *o, enc.big_endian);
                    }
                    for f in frames {
                        put_tag(out, Tag(0xFFFE, 0xE000), enc.big_endian);
                        let padded = pad(f.clone(), 0);
                        put_u32(out, padded.len() as u32, enc.big_endian);
                        out.extend_from_slice(&padded);
                    }
                    put_tag(out, Tag(0xFFFE, 0xE0DD), enc.big_endian);
                    put_u32(out, 0, enc.big_endian);
                }
            }
        }
    }
}

/// A Part-10 object under construction: meta information plus a data set.
#[derive(Debug, Clone)]
pub struct ObjectBuilder {
    pub dataset: DataSetBuilder,
    sop_class: String,
    sop_instance: String,
    transfer_syntax: String,
    trailing: Vec<u8>,
}

impl ObjectBuilder {
    /// Starts an object; SOP Class and Instance UIDs go in both the meta and the data set.
    pub fn new(sop_class: &str, sop_instance: &str, transfer_syntax: &str) -> Self {
        let mut dataset = DataSetBuilder::new();
        dataset.str(Tag(0x0008, 0x0016), VR::UI, sop_class);
        dataset.str(Tag(0x0008, 0x0018), VR::UI, sop_instance);
        ObjectBuilder {
            dataset,
            sop_class: sop_class.into(),
            sop_instance: sop_instance.into(),
            transfer_syntax: transfer_syntax.into(),
            trailing: Vec::new(),
        }
    }

    pub fn charset(&mut self, term: &str) -> &mut Self {
        self.dataset.charset(term);
        self
    }
    pub fn str(&mut self, tag: Tag, vr: VR, text: &str) -> &mut Self {
        self.dataset.str(tag, vr, text);
        self
    }
    pub fn u16(&mut self, tag: Tag, v: u16) -> &mut Self {
        self.dataset.u16(tag, v);
        self
    }
    pub fn bytes(&mut self, tag: Tag, vr: VR, v: Vec<u8>) -> &mut Self {
        self.dataset.bytes(tag, vr, v);
        self
    }
    pub fn pixel_data_native(&mut self, data: Vec<u8>, vr: VR) -> &mut Self {
        self.dataset.pixel_data_native(data, vr);
        self
    }
    pub fn pixel_data_fragments(&mut self, frames: &[Vec<u8>]) -> &mut Self {
        self.dataset.pixel_data_fragments(frames);
        self
    }
    /// Bytes appended verbatim after the data set (for malformed fixtures).
    pub fn raw(&mut self, bytes: Vec<u8>) -> &mut Self {
        self.trailing = bytes;
        self
    }

    /// The whole Part-10 file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.write_into(&mut out);
        out
    }

    /// Appends the Part-10 file to `out`.
    pub fn write_into(&self, out: &mut Vec<u8>) {
        write_file_meta(out, &self.sop_class, &self.sop_instance, &self.transfer_syntax, None);
        self.dataset.encode_for(&self.transfer_syntax, &self.trailing, out);
    }
}

impl DataSetBuilder {
    /// The data set alone (no preamble, no meta), encoded in `transfer_syntax`
    /// (deflated when it is Deflated Explicit VR Little Endian): what a
    /// C-STORE or C-FIND carries.
    pub fn to_bytes(&self, transfer_syntax: &str) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_for(transfer_syntax, &[], &mut out);
        out
    }

    /// Appends the data set in `transfer_syntax`, then `trailing` verbatim
    /// (inside the deflated stream when the syntax is deflated).
    fn encode_for(&self, transfer_syntax: &str, trailing: &[u8], out: &mut Vec<u8>) {
        let enc = ts::encoding_of(transfer_syntax);
        if enc.deflated {
            let mut plain = Vec::new();
            self.encode(Encoding::EXPLICIT_LE, &mut plain);
            plain.extend_from_slice(trailing);
            out.extend_from_slice(&deflate(&plain));
        } else {
            self.encode(enc, out);
            out.extend_from_slice(trailing);
        }
    }
}

/// Raw deflate (no zlib header), as Deflated Explicit VR Little Endian uses.
pub(crate) fn deflate(plain: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(plain).expect("deflate to memory");
    z.finish().expect("deflate to memory")
}

/// The head of a Part-10 file: the 128-byte zero preamble, `DICM`, and a
/// complete file meta information group (0002) in explicit VR little endian:
/// group length, version `00\01`, Media Storage SOP Class and Instance UIDs,
/// Transfer Syntax UID, [`IMPLEMENTATION_CLASS_UID`],
/// [`IMPLEMENTATION_VERSION_NAME`] and, when given, Source Application Entity
/// Title. A data set encoded in `transfer_syntax` (as received by C-STORE)
/// appended to it makes a valid Part-10 file.
pub fn file_meta(sop_class: &str, sop_instance: &str, transfer_syntax: &str, source_ae: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(320);
    write_file_meta(&mut out, sop_class, sop_instance, transfer_syntax, source_ae);
    out
}

/// A whole Part-10 object: [`file_meta`] (preamble, `DICM`, meta group with
/// `meta_sop_class`, `sop_instance`, `transfer_syntax` and `source_ae`)
/// followed by `dataset`, a data set already encoded in `transfer_syntax`
/// (as [`crate::rewrite::rewrite_dataset`] returns it).
pub fn part10(
    meta_sop_class: &str,
    sop_instance: &str,
    transfer_syntax: &str,
    dataset: &[u8],
    source_ae: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(dataset.len() + 400);
    write_file_meta(&mut out, meta_sop_class, sop_instance, transfer_syntax, source_ae);
    out.extend_from_slice(dataset);
    out
}

/// Appends preamble, `DICM` and the meta group; shared by [`file_meta`] and
/// [`ObjectBuilder`].
fn write_file_meta(
    out: &mut Vec<u8>,
    sop_class: &str,
    sop_instance: &str,
    transfer_syntax: &str,
    source_ae: Option<&str>,
) {
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    let mut meta = DataSetBuilder::new();
    meta.bytes(Tag(0x0002, 0x0001), VR::OB, vec![0, 1]);
    meta.str(Tag(0x0002, 0x0002), VR::UI, sop_class);
    meta.str(Tag(0x0002, 0x0003), VR::UI, sop_instance);
    meta.str(Tag(0x0002, 0x0010), VR::UI, transfer_syntax);
    meta.str(Tag(0x0002, 0x0012), VR::UI, IMPLEMENTATION_CLASS_UID);
    meta.str(Tag(0x0002, 0x0013), VR::SH, IMPLEMENTATION_VERSION_NAME);
    if let Some(ae) = source_ae {
        meta.str(Tag(0x0002, 0x0016), VR::AE, ae.trim());
    }
    let mut body = Vec::new();
    meta.encode(Encoding::EXPLICIT_LE, &mut body);
    header(out, Tag(0x0002, 0x0000), VR::UL, 4, Encoding::EXPLICIT_LE);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
}

/// Where the data set of a Part-10 file starts: 132 (preamble and `DICM`)
/// plus the file meta information group, walked element by element in
/// explicit VR little endian as [`crate::parse_part10`] reads it (a wrong
/// group length does not mislead it). `file_start` may be just the first
/// bytes of the file.
///
/// `None` when the bytes are not Part-10 (no `DICM`, or a malformed meta
/// element) or not enough to tell: the walk must see the first tag of
/// another group, or stop (with less than a tag left) exactly where a
/// (0002,0000) group length says the group ends.
pub fn dataset_offset(file_start: &[u8]) -> Option<usize> {
    if file_start.len() < 132 || &file_start[128..132] != b"DICM" {
        return None;
    }
    let b = file_start;
    let mut pos = 132usize;
    let mut group_end: Option<usize> = None;
    loop {
        if b.len() - pos < 2 {
            // Too short to see the next group: trust a group length that
            // ends exactly here.
            return (group_end == Some(pos)).then_some(pos);
        }
        if u16::from_le_bytes([b[pos], b[pos + 1]]) != 0x0002 {
            return Some(pos);
        }
        if b.len() - pos < 8 {
            return None;
        }
        let element = u16::from_le_bytes([b[pos + 2], b[pos + 3]]);
        let vr = VR::from_binary([b[pos + 4], b[pos + 5]])?;
        let (header_len, len) = if long_length(vr) {
            if b.len() - pos < 12 {
                return None;
            }
            (12, u32::from_le_bytes([b[pos + 8], b[pos + 9], b[pos + 10], b[pos + 11]]))
        } else {
            (8, u16::from_le_bytes([b[pos + 6], b[pos + 7]]) as u32)
        };
        if len == 0xFFFF_FFFF {
            return None; // no undefined lengths in the meta group
        }
        let value = pos + header_len;
        let next = value.checked_add(len as usize)?;
        if element == 0x0000 && vr == VR::UL && len == 4 && b.len() >= value + 4 {
            let gl = u32::from_le_bytes([b[value], b[value + 1], b[value + 2], b[value + 3]]) as usize;
            group_end = next.checked_add(gl);
        }
        if next > b.len() {
            return None;
        }
        pos = next;
    }
}

pub(crate) fn pad(mut v: Vec<u8>, with: u8) -> Vec<u8> {
    if v.len() % 2 == 1 {
        v.push(with);
    }
    v
}

pub(crate) fn swap_for(vr: VR, v: &[u8]) -> Vec<u8> {
    let width = match vr {
        VR::US | VR::SS | VR::OW | VR::AT => 2,
        VR::UL | VR::SL | VR::FL | VR::OF | VR::OL => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    };
    let mut out = v.to_vec();
    if width > 1 {
        for c in out.chunks_exact_mut(width) {
            c.reverse();
        }
    }
    if vr == VR::AT {
        // AT is a pair of 16-bit values; already swapped per 2 bytes.
    }
    out
}

pub(crate) fn put_tag(out: &mut Vec<u8>, tag: Tag, be: bool) {
    if be {
        out.extend_from_slice(&tag.0.to_be_bytes());
        out.extend_from_slice(&tag.1.to_be_bytes());
    } else {
        out.extend_from_slice(&tag.0.to_le_bytes());
        out.extend_from_slice(&tag.1.to_le_bytes());
    }
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// VRs whose explicit-VR header has two reserved bytes and a 32-bit length
/// (PS3.5 Table 7.1-1); the others have a 16-bit length.
pub(crate) fn long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::SQ | VR::UC | VR::UR | VR::UT | VR::UN | VR::SV | VR::UV
    )
}

/// Writes an element header. With explicit VR and a 2-byte-length VR the
/// length is truncated to 16 bits: callers check it first.
pub(crate) fn header(out: &mut Vec<u8>, tag: Tag, vr: VR, len: u32, enc: Encoding) {
    let be = enc.big_endian;
    put_tag(out, tag, be);
    if !enc.explicit_vr {
        put_u32(out, len, be);
        return;
    }
    out.extend_from_slice(vr.to_string().as_bytes());
    if long_length(vr) {
        out.extend_from_slice(&[0, 0]);
        put_u32(out, len, be);
    } else {
        let l = len as u16;
        out.extend_from_slice(&if be { l.to_be_bytes() } else { l.to_le_bytes() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, Value, parse_part10};

    #[test]
    fn every_encoding_round_trips() {
        for ts_uid in [ts::EXPLICIT_VR_LE, ts::IMPLICIT_VR_LE, ts::EXPLICIT_VR_BE, ts::DEFLATED_EXPLICIT_VR_LE] {
            let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", ts_uid);
            b.str(Tag(0x0010, 0x0020), VR::LO, "P001");
            b.u16(Tag(0x0028, 0x0010), 512);
            let mut item = DataSetBuilder::new();
            item.str(Tag(0x0008, 0x0100), VR::SH, "T-D1100");
            b.dataset.sequence(Tag(0x0008, 0x2218), vec![item]);
            b.pixel_data_native(vec![1, 2, 3, 4], VR::OW);
            let bytes = b.to_bytes();
            let obj =
                parse_part10(&mut std::io::Cursor::new(&bytes), bytes.len() as u64, &ParseOptions::default())
                    .unwrap_or_else(|e| panic!("{ts_uid}: {e}"));
            assert_eq!(obj.dataset.ascii(Tag(0x0010, 0x0020)).as_deref(), Some("P001"), "{ts_uid}");
            assert_eq!(obj.dataset.uint(Tag(0x0028, 0x0010), obj.encoding.big_endian), Some(512), "{ts_uid}");
            let items = obj.dataset.items(Tag(0x0008, 0x2218)).unwrap();
            assert_eq!(items[0].ascii(Tag(0x0008, 0x0100)).as_deref(), Some("T-D1100"));
            assert!(matches!(obj.dataset.get(Tag(0x7FE0, 0x0010)).unwrap().value, Value::Bulk { length: 4, .. }));
        }
    }

    #[test]
    fn file_meta_in_front_of_a_network_data_set_is_part10() {
        for ts_uid in [ts::EXPLICIT_VR_LE, ts::IMPLICIT_VR_LE, ts::EXPLICIT_VR_BE, ts::DEFLATED_EXPLICIT_VR_LE] {
            let mut d = DataSetBuilder::new();
            d.str(Tag(0x0008, 0x0016), VR::UI, "1.2.840.10008.5.1.4.1.1.7");
            d.str(Tag(0x0008, 0x0018), VR::UI, "1.2.3.4.5");
            d.str(Tag(0x0010, 0x0020), VR::LO, "P001");
            let data_set = d.to_bytes(ts_uid);
            let head = file_meta("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.5", ts_uid, Some("MODALITY1"));
            let mut file = head.clone();
            file.extend_from_slice(&data_set);
            let obj = parse_part10(&mut std::io::Cursor::new(&file), file.len() as u64, &ParseOptions::default())
                .unwrap_or_else(|e| panic!("{ts_uid}: {e}"));
            assert_eq!(obj.transfer_syntax(), ts_uid);
            assert_eq!(obj.meta.media_storage_sop_class_uid.as_deref(), Some("1.2.840.10008.5.1.4.1.1.7"));
            assert_eq!(obj.meta.media_storage_sop_instance_uid.as_deref(), Some("1.2.3.4.5"));
            assert_eq!(obj.meta.implementation_class_uid.as_deref(), Some(IMPLEMENTATION_CLASS_UID));
            assert_eq!(obj.meta.implementation_version_name.as_deref(), Some(IMPLEMENTATION_VERSION_NAME));
            assert_eq!(obj.meta.source_ae_title.as_deref(), Some("MODALITY1"));
            assert_eq!(obj.meta.elements.bytes(Tag(0x0002, 0x0001)), Some(&[0u8, 1][..]));
            assert_eq!(obj.dataset.ascii(Tag(0x0010, 0x0020)).as_deref(), Some("P001"));
            assert_eq!(obj.dataset_offset as usize, head.len());
            assert_eq!(dataset_offset(&file), Some(head.len()));
            // The group length covers exactly the rest of the meta group.
            let gl = u32::from_le_bytes(head[140..144].try_into().unwrap()) as usize;
            assert_eq!(144 + gl, head.len());
        }
        // Without a source AE title, (0002,0016) is absent.
        let head = file_meta("1.2.3", "1.2.3.4", ts::EXPLICIT_VR_LE, None);
        let obj = parse_part10(&mut std::io::Cursor::new(&head), head.len() as u64, &ParseOptions::default()).unwrap();
        assert!(obj.meta.source_ae_title.is_none());
        assert!(obj.dataset.elements.is_empty());
        // ObjectBuilder writes the same meta.
        let built = ObjectBuilder::new("1.2.3", "1.2.3.4", ts::EXPLICIT_VR_LE).to_bytes();
        assert_eq!(&built[..head.len()], &head[..]);
    }

    #[test]
    fn dataset_offset_needs_enough_bytes() {
        let file = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4.5", ts::EXPLICIT_VR_LE).to_bytes();
        let obj = parse_part10(&mut std::io::Cursor::new(&file), file.len() as u64, &ParseOptions::default()).unwrap();
        let at = obj.dataset_offset as usize;
        assert_eq!(dataset_offset(&file), Some(at));
        // Just the meta: the group length says where it ends.
        assert_eq!(dataset_offset(&file[..at]), Some(at));
        assert_eq!(dataset_offset(&file[..at + 1]), Some(at));
        for cut in 0..at {
            assert_eq!(dataset_offset(&file[..cut]), None, "cut at {cut}");
        }
        // Not Part-10.
        let mut bad = file.clone();
        bad[128] = b'X';
        assert_eq!(dataset_offset(&bad), None);
        // A wrong group length does not matter once the next group is seen.
        let mut wrong = file.clone();
        wrong[140] = wrong[140].wrapping_add(2);
        assert_eq!(dataset_offset(&wrong), Some(at));
        assert_eq!(dataset_offset(&wrong[..at]), None);
        // A meta element declaring more than there is.
        let mut huge = file[..at].to_vec();
        huge.extend_from_slice(&[0x02, 0x00, 0x16, 0x00, b'A', b'E', 0xFF, 0x7F]);
        assert_eq!(dataset_offset(&huge), None);
    }
}
