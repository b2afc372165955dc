//! A bounded parser for DICOM Part-10 files and bare data sets.
//!
//! Every declared length is checked against the bytes that remain before
//! anything is allocated, so memory use is bounded by the size of the input
//! (the stock dicom-rs 0.10 parser zero-fills whatever length a file declares).
//! Large binary values are not read: the parser records their byte offset in
//! the input, which is what WADO-RS needs to serve frames and bulk data
//! straight from the stored file. Encapsulated pixel data is walked item by
//! item, recording fragment offsets, never read.
//!
//! The parser never panics on malformed input by design; callers that accept
//! data from the network still wrap it in `catch_unwind` as a second fence.

use std::io::{self, Read, Seek, SeekFrom};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::ts::{self, Encoding};

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITATION: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Why an input is not a DICOM object we can read. The messages are written
/// for the operator or the sender: they say what is wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a DICOM Part-10 file: no \"DICM\" prefix at byte 128")]
    NotPart10,
    #[error("input ends early: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: u64, needed: u64 },
    #[error("element {tag} declares {declared} bytes at offset {offset} but only {available} remain")]
    LengthExceedsInput { tag: TagDisplay, declared: u64, available: u64, offset: u64 },
    #[error("element {tag} at offset {offset} has an undefined length, which its VR {vr} does not allow")]
    UndefinedLength { tag: TagDisplay, vr: &'static str, offset: u64 },
    #[error("element {tag} at offset {offset} has an invalid VR {bytes:?}")]
    BadVr { tag: TagDisplay, bytes: [u8; 2], offset: u64 },
    #[error("expected a sequence item at offset {offset}, found {tag}")]
    ExpectedItem { tag: TagDisplay, offset: u64 },
    #[error("sequences nest deeper than {0} levels")]
    TooDeep(u32),
    #[error("more than {0} data elements")]
    TooManyElements(usize),
    #[error("the file meta information has no Transfer Syntax UID (0002,0010)")]
    NoTransferSyntax,
    #[error("the deflated data set inflates beyond {0} bytes")]
    InflateTooLarge(u64),
    #[error("the deflated data set cannot be inflated: {0}")]
    Inflate(String),
    #[error("I/O error while reading: {0}")]
    Io(#[from] io::Error),
}

/// A tag printed the DICOM way, `(0010,0010)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagDisplay(pub Tag);

impl std::fmt::Display for TagDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({:04X},{:04X})", self.0.0, self.0.1)
    }
}

/// Limits of the parser. The defaults suit an archive: deep enough for every
/// real object, small enough that a hostile file cannot exhaust the server.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Maximum sequence nesting.
    pub max_depth: u32,
    /// Maximum number of data elements in the whole object.
    pub max_elements: usize,
    /// Binary values (OB, OW, OF, OD, OL, OV, UN) longer than this are not read,
    /// only located.
    pub inline_binary_limit: u64,
    /// Text and numeric values longer than this are located, not read.
    pub inline_text_limit: u64,
    /// Upper bound of a deflated data set once inflated.
    pub max_inflated: u64,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_depth: 32,
            max_elements: 2_000_000,
            inline_binary_limit: 4096,
            inline_text_limit: 1 << 20,
            max_inflated: 1 << 30,
        }
    }
}

/// A data set: its elements in tag order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataSet {
    pub elements: Vec<Element>,
}

/// One data element.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub tag: Tag,
    pub vr: VR,
    pub value: Value,
}

/// Where an element's value is.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// The raw value bytes, in the byte order of the data set.
    Inline(Vec<u8>),
    /// A value left in place: `length` bytes from `offset` of the input
    /// (of the inflated data set when the object is deflated).
    Bulk { offset: u64, length: u64 },
    /// Sequence items.
    Sequence(Vec<DataSet>),
    /// Encapsulated pixel data: the basic offset table and the fragments
    /// (offset of each fragment's first value byte, and its length).
    Fragments { offset_table: Vec<u32>, fragments: Vec<(u64, u64)> },
}

impl Value {
    /// Length of the value in bytes when it is a plain (non-sequence) value.
    pub fn byte_len(&self) -> u64 {
        match self {
            Value::Inline(b) => b.len() as u64,
            Value::Bulk { length, .. } => *length,
            Value::Fragments { fragments, .. } => fragments.iter().map(|f| f.1).sum(),
            Value::Sequence(_) => 0,
        }
    }
}

impl DataSet {
    /// The element with this tag, if present.
    pub fn get(&self, tag: Tag) -> Option<&Element> {
        self.elements
            .binary_search_by(|e| (e.tag.0, e.tag.1).cmp(&(tag.0, tag.1)))
            .ok()
            .map(|i| &self.elements[i])
    }

    /// The raw bytes of an inline value.
    pub fn bytes(&self, tag: Tag) -> Option<&[u8]> {
        match &self.get(tag)?.value {
            Value::Inline(b) => Some(b),
            _ => None,
        }
    }

    /// The items of a sequence.
    pub fn items(&self, tag: Tag) -> Option<&[DataSet]> {
        match &self.get(tag)?.value {
            Value::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// A value decoded as ASCII text (UIDs, codes, dates, numbers as text),
    /// first value only, padding trimmed. Use [`crate::charset`] for PN/LO/SH/...
    pub fn ascii(&self, tag: Tag) -> Option<String> {
        let b = self.bytes(tag)?;
        let s: String = b.iter().map(|&c| c as char).collect();
        let first = s.split('\\').next().unwrap_or("");
        let t = first.trim_matches(|c: char| c == ' ' || c == '\0');
        if t.is_empty() { None } else { Some(t.to_string()) }
    }

    /// An unsigned integer value (US, UL, or IS text), first value.
    pub fn uint(&self, tag: Tag, big_endian: bool) -> Option<u64> {
        let e = self.get(tag)?;
        let Value::Inline(b) = &e.value else { return None };
        match e.vr {
            VR::US if b.len() >= 2 => {
                let v = [b[0], b[1]];
                Some(if big_endian { u16::from_be_bytes(v) } else { u16::from_le_bytes(v) } as u64)
            }
            VR::UL if b.len() >= 4 => {
                let v = [b[0], b[1], b[2], b[3]];
                Some(if big_endian { u32::from_be_bytes(v) } else { u32::from_le_bytes(v) } as u64)
            }
            VR::SS if b.len() >= 2 => {
                let v = [b[0], b[1]];
                let x = if big_endian { i16::from_be_bytes(v) } else { i16::from_le_bytes(v) };
                u64::try_from(x).ok()
            }
            VR::IS | VR::DS | VR::UN | VR::LO | VR::SH | VR::CS => {
                self.ascii(tag)?.trim().parse::<f64>().ok().filter(|v| *v >= 0.0).map(|v| v as u64)
            }
            _ => None,
        }
    }

    /// Sorts elements by tag and merges nothing: the parser keeps file order,
    /// and a malformed file may be out of order.
    fn sort(&mut self) {
        if !self.elements.windows(2).all(|w| (w[0].tag.0, w[0].tag.1) <= (w[1].tag.0, w[1].tag.1)) {
            self.elements.sort_by_key(|e| (e.tag.0, e.tag.1));
        }
    }
}

/// The file meta information group (0002,xxxx).
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    pub transfer_syntax: String,
    pub media_storage_sop_class_uid: Option<String>,
    pub media_storage_sop_instance_uid: Option<String>,
    pub implementation_class_uid: Option<String>,
    pub implementation_version_name: Option<String>,
    pub source_ae_title: Option<String>,
    /// All meta elements as read.
    pub elements: DataSet,
}

/// A parsed object: meta, data set, and where things are.
#[derive(Debug, Clone)]
pub struct ParsedObject {
    pub meta: FileMeta,
    pub dataset: DataSet,
    pub encoding: Encoding,
    /// Offset of the first byte after the file meta information.
    pub dataset_offset: u64,
    /// Length of the whole input.
    pub input_len: u64,
    /// For deflated objects, bulk offsets refer to the inflated data set
    /// (which starts at offset 0), not to the input.
    pub offsets_in_inflated: bool,
}

impl ParsedObject {
    /// The transfer syntax UID of the data set.
    pub fn transfer_syntax(&self) -> &str {
        &self.meta.transfer_syntax
    }
}

/// Parses a Part-10 file (128-byte preamble, `DICM`, meta group, data set).
/// `input_len` is the total number of bytes the reader can deliver.
pub fn parse_part10<R: Read + Seek>(
    reader: &mut R,
    input_len: u64,
    opts: &ParseOptions,
) -> Result<ParsedObject, ParseError> {
    check_preamble(reader, input_len)?;
    let mut p = Parser::new(reader, 132, input_len, opts);
    let meta_ds = p.read_meta()?;
    let meta = file_meta(meta_ds)?;
    let dataset_offset = p.pos;
    let mut enc = ts::encoding_of(&meta.transfer_syntax);
    if enc.explicit_vr && !enc.deflated && !enc.big_endian && !p.next_has_explicit_vr()? {
        // Some writers declare an explicit-VR transfer syntax and write the
        // data set in implicit VR. Read what is there (as pydicom does; DCMTK
        // refuses); offsets stay exact.
        enc = Encoding::IMPLICIT_LE;
    }
    if enc.deflated {
        let inflated = p.inflate_rest()?;
        let len = inflated.len() as u64;
        let mut cursor = io::Cursor::new(inflated);
        let mut q = Parser::new(&mut cursor, 0, len, opts);
        let dataset = q.read_dataset(None, 0, Encoding::EXPLICIT_LE)?;
        return Ok(ParsedObject {
            meta,
            dataset,
            encoding: enc,
            dataset_offset,
            input_len,
            offsets_in_inflated: true,
        });
    }
    let dataset = p.read_dataset(None, 0, enc)?;
    Ok(ParsedObject { meta, dataset, encoding: enc, dataset_offset, input_len, offsets_in_inflated: false })
}

/// The inflated data set of a deflated Part-10 object (bounded by
/// `opts.max_inflated`): the bytes that frame and bulk offsets of a deflated
/// object refer to.
pub fn inflated_dataset<R: Read + Seek>(
    reader: &mut R,
    input_len: u64,
    opts: &ParseOptions,
) -> Result<Vec<u8>, ParseError> {
    check_preamble(reader, input_len)?;
    let mut p = Parser::new(reader, 132, input_len, opts);
    p.read_meta()?;
    p.inflate_rest()
}

/// The 128-byte preamble and `DICM` of a Part-10 file; leaves the reader after them.
fn check_preamble<R: Read + Seek>(reader: &mut R, input_len: u64) -> Result<(), ParseError> {
    if input_len < 132 {
        return Err(ParseError::NotPart10);
    }
    let mut head = [0u8; 132];
    reader.seek(SeekFrom::Start(0))?;
    reader.read_exact(&mut head)?;
    if &head[128..132] != b"DICM" {
        return Err(ParseError::NotPart10);
    }
    Ok(())
}

/// Parses a bare data set (no preamble or meta), as carried by a C-STORE, in
/// the given transfer syntax. Offsets are relative to the reader's start.
pub fn parse_dataset<R: Read + Seek>(
    reader: &mut R,
    input_len: u64,
    transfer_syntax: &str,
    opts: &ParseOptions,
) -> Result<DataSet, ParseError> {
    reader.seek(SeekFrom::Start(0))?;
    let enc = ts::encoding_of(transfer_syntax);
    if enc.deflated {
        let mut p = Parser::new(reader, 0, input_len, opts);
        let inflated = p.inflate_rest()?;
        let len = inflated.len() as u64;
        let mut cursor = io::Cursor::new(inflated);
        let mut q = Parser::new(&mut cursor, 0, len, opts);
        return q.read_dataset(None, 0, Encoding::EXPLICIT_LE);
    }
    let mut p = Parser::new(reader, 0, input_len, opts);
    p.read_dataset(None, 0, enc)
}

fn file_meta(ds: DataSet) -> Result<FileMeta, ParseError> {
    let ts = ds.ascii(Tag(0x0002, 0x0010)).ok_or(ParseError::NoTransferSyntax)?;
    Ok(FileMeta {
        transfer_syntax: ts,
        media_storage_sop_class_uid: ds.ascii(Tag(0x0002, 0x0002)),
        media_storage_sop_instance_uid: ds.ascii(Tag(0x0002, 0x0003)),
        implementation_class_uid: ds.ascii(Tag(0x0002, 0x0012)),
        implementation_version_name: ds.ascii(Tag(0x0002, 0x0013)),
        source_ae_title: ds.ascii(Tag(0x0002, 0x0016)),
        elements: ds,
    })
}

/// VRs whose explicit-VR header has two reserved bytes and a 32-bit length.
fn has_long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::SQ | VR::UC | VR::UR | VR::UT | VR::UN | VR::SV | VR::UV
    )
}

fn is_binary(vr: VR) -> bool {
    matches!(vr, VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN)
}

/// The VR of a tag in an implicit-VR data set.
pub fn implicit_vr(tag: Tag) -> VR {
    if tag.1 == 0x0000 {
        return VR::UL; // group length
    }
    if tag.0 % 2 == 1 {
        // Private: creator elements are LO, the rest unknown.
        return if (0x0010..=0x00FF).contains(&tag.1) { VR::LO } else { VR::UN };
    }
    match StandardDataDictionary.by_tag(tag) {
        Some(e) => match e.vr() {
            VirtualVr::Exact(vr) => vr,
            VirtualVr::Xs => VR::US,
            VirtualVr::Ox | VirtualVr::Px | VirtualVr::Lt => VR::OW,
            _ => VR::UN,
        },
        None => VR::UN,
    }
}

struct Parser<'a, R> {
    r: &'a mut R,
    pos: u64,
    len: u64,
    opts: &'a ParseOptions,
    elements: usize,
}

impl<'a, R: Read + Seek> Parser<'a, R> {
    fn new(r: &'a mut R, pos: u64, len: u64, opts: &'a ParseOptions) -> Self {
        Parser { r, pos, len, opts, elements: 0 }
    }

    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn need(&self, n: u64) -> Result<(), ParseError> {
        if self.remaining() < n {
            Err(ParseError::Truncated { offset: self.pos, needed: n - self.remaining() })
        } else {
            Ok(())
        }
    }

    fn read_buf<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        self.need(N as u64)?;
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        self.pos += N as u64;
        Ok(b)
    }

    fn read_vec(&mut self, n: u64) -> Result<Vec<u8>, ParseError> {
        self.need(n)?;
        // Bounded: n <= remaining bytes of the input.
        let mut v = vec![0u8; n as usize];
        self.r.read_exact(&mut v)?;
        self.pos += n;
        Ok(v)
    }

    fn skip(&mut self, n: u64) -> Result<(), ParseError> {
        self.need(n)?;
        if n > 0 {
            self.r.seek(SeekFrom::Current(n as i64))?;
            self.pos += n;
        }
        Ok(())
    }

    fn u16(b: [u8; 2], be: bool) -> u16 {
        if be { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    }
    fn u32(b: [u8; 4], be: bool) -> u32 {
        if be { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    fn read_tag(&mut self, be: bool) -> Result<Tag, ParseError> {
        let b: [u8; 4] = self.read_buf()?;
        Ok(Tag(Self::u16([b[0], b[1]], be), Self::u16([b[2], b[3]], be)))
    }

    fn count_element(&mut self) -> Result<(), ParseError> {
        self.elements += 1;
        if self.elements > self.opts.max_elements {
            return Err(ParseError::TooManyElements(self.opts.max_elements));
        }
        Ok(())
    }

    /// The file meta group: explicit VR little endian, elements of group 0002.
    fn read_meta(&mut self) -> Result<DataSet, ParseError> {
        let mut ds = DataSet::default();
        loop {
            if self.remaining() < 8 {
                break;
            }
            // Peek the group without consuming.
            let b: [u8; 2] = self.read_buf()?;
            self.r.seek(SeekFrom::Current(-2))?;
            self.pos -= 2;
            if u16::from_le_bytes(b) != 0x0002 {
                break;
            }
            let el = self.read_element(Encoding::EXPLICIT_LE, 0)?;
            ds.elements.push(el);
        }
        ds.sort();
        Ok(ds)
    }

    /// Reads elements until `end` (a defined-length item or the input end) or,
    /// inside an undefined-length item (`end` is `None`, `depth > 0`), until
    /// the item delimiter.
    fn read_dataset(&mut self, end: Option<u64>, depth: u32, enc: Encoding) -> Result<DataSet, ParseError> {
        let mut ds = DataSet::default();
        loop {
            match end {
                Some(e) if self.pos >= e => break,
                None if depth == 0 && self.remaining() == 0 => break,
                _ => {}
            }
            let start = self.pos;
            let tag = self.read_tag(enc.big_endian)?;
            if tag == ITEM_DELIMITATION {
                let _len: [u8; 4] = self.read_buf()?;
                if depth > 0 && end.is_none() {
                    break;
                }
                // A stray delimiter where an element belongs: tolerated, as
                // DCMTK does; it carries nothing.
                continue;
            }
            if tag == Tag(0, 0) && depth == 0 && end.is_none() && self.rest_is_zero()? {
                // Zero padding after the data set, as some writers leave
                // (a GE MR slice ends with 2.5 MB of it): not data.
                break;
            }
            if tag == SEQUENCE_DELIMITATION && depth == 0 {
                // Same tolerance for a stray sequence delimiter at top level.
                let _len: [u8; 4] = self.read_buf()?;
                continue;
            }
            if tag == ITEM || tag == SEQUENCE_DELIMITATION {
                return Err(ParseError::ExpectedItem { tag: TagDisplay(tag), offset: start });
            }
            self.r.seek(SeekFrom::Current(-4))?;
            self.pos = start;
            let el = self.read_element(enc, depth)?;
            ds.elements.push(el);
        }
        ds.sort();
        Ok(ds)
    }

    /// Reads one element header and its value.
    fn read_element(&mut self, enc: Encoding, depth: u32) -> Result<Element, ParseError> {
        self.count_element()?;
        let start = self.pos;
        let be = enc.big_endian;
        let tag = self.read_tag(be)?;
        let (vr, len) = if enc.explicit_vr {
            let vb: [u8; 2] = self.read_buf()?;
            let vr = match VR::from_binary(vb) {
                Some(vr) => vr,
                None => {
                    // Two spaces or NULs: some writers emit them for UN.
                    if vb == [b' ', b' '] || vb == [0, 0] {
                        VR::UN
                    } else {
                        return Err(ParseError::BadVr { tag: TagDisplay(tag), bytes: vb, offset: start });
                    }
                }
            };
            if has_long_length(vr) {
                let _reserved: [u8; 2] = self.read_buf()?;
                (vr, Self::u32(self.read_buf()?, be))
            } else {
                (vr, Self::u16(self.read_buf()?, be) as u32)
            }
        } else {
            let vr = implicit_vr(tag);
            (vr, Self::u32(self.read_buf()?, be))
        };
        let value_offset = self.pos;

        if len == UNDEFINED {
            if tag == PIXEL_DATA || (matches!(vr, VR::OB | VR::OW) && tag.0 == 0x7FE0) {
                return self.read_fragments(tag, vr, be);
            }
            if vr == VR::SQ {
                let items = self.read_items(None, depth, enc)?;
                return Ok(Element { tag, vr, value: Value::Sequence(items) });
            }
            if vr == VR::UN {
                // PS3.5 §6.2.2: an undefined-length UN is a sequence encoded
                // in implicit VR little endian.
                let items = self.read_items(None, depth, Encoding::IMPLICIT_LE)?;
                return Ok(Element { tag, vr: VR::SQ, value: Value::Sequence(items) });
            }
            if matches!(vr, VR::OB | VR::OW) && depth > 0 {
                // Encapsulated icon pixel data inside a sequence.
                return self.read_fragments(tag, vr, be);
            }
            return Err(ParseError::UndefinedLength { tag: TagDisplay(tag), vr: vr.to_string(), offset: start });
        }

        let len = len as u64;
        if len > self.remaining() {
            return Err(ParseError::LengthExceedsInput {
                tag: TagDisplay(tag),
                declared: len,
                available: self.remaining(),
                offset: start,
            });
        }
        // A standard attribute sent as UN (by a system that did not know it):
        // read it with its dictionary VR, as PS3.5 §6.2.2 lets receivers do.
        // A sequence sent as UN has its items in implicit VR little endian.
        let (vr, items_enc) = if vr == VR::UN && enc.explicit_vr && !enc.big_endian && tag.0 % 2 == 0 && tag.1 != 0 {
            match implicit_vr(tag) {
                VR::SQ => (VR::SQ, Encoding::IMPLICIT_LE),
                known => (known, enc),
            }
        } else {
            (vr, enc)
        };
        if vr == VR::SQ {
            let end = value_offset + len;
            let items = self.read_items(Some(end), depth, items_enc)?;
            if self.pos != end {
                self.skip(end - self.pos)?;
            }
            return Ok(Element { tag, vr, value: Value::Sequence(items) });
        }
        // Pixel data is always located, never read, however small: WADO-RS
        // serves frames from its offset. The extended offset table is always
        // read: frame location needs it.
        let limit = if tag.0 == 0x7FE0 && matches!(tag.1, 0x0001 | 0x0002) {
            u64::MAX
        } else if is_binary(vr) {
            self.opts.inline_binary_limit
        } else {
            self.opts.inline_text_limit
        };
        let always_located = depth == 0 && tag.0 == 0x7FE0 && matches!(tag.1, 0x0008 | 0x0009 | 0x0010);
        if len > limit || always_located {
            self.skip(len)?;
            return Ok(Element { tag, vr, value: Value::Bulk { offset: value_offset, length: len } });
        }
        let v = self.read_vec(len)?;
        Ok(Element { tag, vr, value: Value::Inline(v) })
    }

    /// Reads sequence items until `end` (defined length) or the sequence delimiter.
    fn read_items(&mut self, end: Option<u64>, depth: u32, enc: Encoding) -> Result<Vec<DataSet>, ParseError> {
        if depth + 1 > self.opts.max_depth {
            return Err(ParseError::TooDeep(self.opts.max_depth));
        }
        let mut items = Vec::new();
        loop {
            if let Some(e) = end
                && self.pos >= e
            {
                break;
            }
            let at = self.pos;
            let tag = self.read_tag(enc.big_endian)?;
            let len = Self::u32(self.read_buf()?, enc.big_endian);
            if tag == SEQUENCE_DELIMITATION {
                if end.is_none() {
                    break;
                }
                continue; // stray delimiter inside a defined-length sequence
            }
            if tag != ITEM {
                return Err(ParseError::ExpectedItem { tag: TagDisplay(tag), offset: at });
            }
            self.count_element()?;
            let item = if len == UNDEFINED {
                self.read_dataset(None, depth + 1, enc)?
            } else {
                let len = len as u64;
                if len > self.remaining() {
                    return Err(ParseError::LengthExceedsInput {
                        tag: TagDisplay(tag),
                        declared: len,
                        available: self.remaining(),
                        offset: at,
                    });
                }
                if let Some(e) = end
                    && self.pos + len > e
                {
                    return Err(ParseError::LengthExceedsInput {
                        tag: TagDisplay(tag),
                        declared: len,
                        available: e - self.pos,
                        offset: at,
                    });
                }
                let item_end = self.pos + len;
                let ds = self.read_dataset(Some(item_end), depth + 1, enc)?;
                if self.pos > item_end {
                    return Err(ParseError::LengthExceedsInput {
                        tag: TagDisplay(tag),
                        declared: len,
                        available: len,
                        offset: at,
                    });
                }
                ds
            };
            items.push(item);
        }
        Ok(items)
    }

    /// Walks encapsulated pixel data: the basic offset table item, then each
    /// fragment item, recording where the fragments are.
    fn read_fragments(&mut self, tag: Tag, vr: VR, be: bool) -> Result<Element, ParseError> {
        let mut offset_table = Vec::new();
        let mut fragments = Vec::new();
        let mut first = true;
        loop {
            let at = self.pos;
            let itag = self.read_tag(be)?;
            let len = Self::u32(self.read_buf()?, be) as u64;
            if itag == SEQUENCE_DELIMITATION {
                break;
            }
            if itag != ITEM {
                return Err(ParseError::ExpectedItem { tag: TagDisplay(itag), offset: at });
            }
            if len == UNDEFINED as u64 || len > self.remaining() {
                return Err(ParseError::LengthExceedsInput {
                    tag: TagDisplay(tag),
                    declared: len,
                    available: self.remaining(),
                    offset: at,
                });
            }
            self.count_element()?;
            if first {
                first = false;
                // The basic offset table: 32-bit offsets, bounded by the input.
                let b = self.read_vec(len)?;
                offset_table = b
                    .chunks_exact(4)
                    .map(|c| Self::u32([c[0], c[1], c[2], c[3]], be))
                    .collect();
                continue;
            }
            fragments.push((self.pos, len));
            self.skip(len)?;
        }
        Ok(Element { tag, vr, value: Value::Fragments { offset_table, fragments } })
    }

    /// Whether the next element header carries a valid explicit VR (peeked;
    /// the position does not move). True at the end of input.
    fn next_has_explicit_vr(&mut self) -> Result<bool, ParseError> {
        if self.remaining() < 6 {
            return Ok(true);
        }
        let b: [u8; 6] = self.read_buf()?;
        self.r.seek(SeekFrom::Current(-6))?;
        self.pos -= 6;
        Ok(VR::from_binary([b[4], b[5]]).is_some())
    }

    /// True when every byte from here to the end is zero; consumes them if so,
    /// else restores the position to just after the tag already read.
    fn rest_is_zero(&mut self) -> Result<bool, ParseError> {
        let back = self.pos;
        let mut buf = [0u8; 64 * 1024];
        while self.pos < self.len {
            let n = (self.len - self.pos).min(buf.len() as u64) as usize;
            self.r.read_exact(&mut buf[..n])?;
            self.pos += n as u64;
            if buf[..n].iter().any(|&b| b != 0) {
                self.r.seek(SeekFrom::Start(back))?;
                self.pos = back;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Inflates the rest of the input (a deflated data set), bounded.
    fn inflate_rest(&mut self) -> Result<Vec<u8>, ParseError> {
        let remaining = self.remaining();
        let limited = (&mut *self.r).take(remaining);
        let mut dec = flate2::read::DeflateDecoder::new(limited);
        let mut out = Vec::new();
        let cap = self.opts.max_inflated;
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = dec.read(&mut buf).map_err(|e| ParseError::Inflate(e.to_string()))?;
            if n == 0 {
                break;
            }
            if out.len() as u64 + n as u64 > cap {
                return Err(ParseError::InflateTooLarge(cap));
            }
            out.extend_from_slice(&buf[..n]);
        }
        self.pos = self.len;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::ObjectBuilder;
    use std::io::Cursor;

    fn parse_bytes(b: &[u8]) -> Result<ParsedObject, ParseError> {
        parse_part10(&mut Cursor::new(b), b.len() as u64, &ParseOptions::default())
    }

    fn sample() -> Vec<u8> {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", crate::ts::EXPLICIT_VR_LE);
        b.str(Tag(0x0010, 0x0010), VR::PN, "Zhang^San");
        b.str(Tag(0x0020, 0x000D), VR::UI, "1.2.3");
        b.u16(Tag(0x0028, 0x0010), 2);
        b.u16(Tag(0x0028, 0x0011), 2);
        b.pixel_data_native(vec![1, 0, 2, 0, 3, 0, 4, 0], VR::OW);
        b.to_bytes()
    }

    #[test]
    fn parses_what_the_writer_wrote() {
        let bytes = sample();
        let obj = parse_bytes(&bytes).unwrap();
        assert_eq!(obj.transfer_syntax(), crate::ts::EXPLICIT_VR_LE);
        assert_eq!(obj.dataset.ascii(Tag(0x0020, 0x000D)).as_deref(), Some("1.2.3"));
        assert_eq!(obj.dataset.uint(Tag(0x0028, 0x0010), false), Some(2));
        let pd = obj.dataset.get(PIXEL_DATA).unwrap();
        let Value::Bulk { offset, length } = pd.value else { panic!("pixel data not located") };
        assert_eq!(&bytes[offset as usize..(offset + length) as usize], &[1, 0, 2, 0, 3, 0, 4, 0]);
    }

    #[test]
    fn huge_declared_length_is_refused_without_allocating() {
        // A short file declaring a 4 GB private OB element: the dicom-rs 0.10.1 trap.
        let mut bytes = sample();
        bytes.truncate(bytes.len() - 20);
        bytes.extend_from_slice(&[0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF]);
        bytes.extend_from_slice(&[0u8; 16]);
        match parse_bytes(&bytes) {
            Err(ParseError::LengthExceedsInput { declared, .. }) => assert_eq!(declared, 0xFFFF_FFF0),
            other => panic!("expected LengthExceedsInput, got {other:?}"),
        }
    }

    #[test]
    fn truncated_and_not_dicom_are_refused() {
        let bytes = sample();
        for cut in [140, 200, bytes.len() - 3] {
            assert!(parse_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(parse_bytes(b"hello world"), Err(ParseError::NotPart10)));
        assert!(matches!(parse_bytes(&[0u8; 300]), Err(ParseError::NotPart10)));
    }

    #[test]
    fn implicit_data_set_under_an_explicit_transfer_syntax_is_read() {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4", crate::ts::IMPLICIT_VR_LE);
        b.str(Tag(0x0020, 0x000D), VR::UI, "1.2.3");
        b.u16(Tag(0x0028, 0x0010), 2);
        let implicit = b.to_bytes();
        // The meta of an explicit-VR object in front of the implicit data set.
        let explicit = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4", crate::ts::EXPLICIT_VR_LE).to_bytes();
        let meta_end = |b: &[u8]| 144 + u32::from_le_bytes([b[140], b[141], b[142], b[143]]) as usize;
        let mut bytes = explicit[..meta_end(&explicit)].to_vec();
        bytes.extend_from_slice(&implicit[meta_end(&implicit)..]);
        let obj = parse_bytes(&bytes).unwrap();
        assert_eq!(obj.encoding, Encoding::IMPLICIT_LE);
        assert_eq!(obj.dataset.ascii(Tag(0x0020, 0x000D)).as_deref(), Some("1.2.3"));
        assert_eq!(obj.dataset.uint(Tag(0x0028, 0x0010), false), Some(2));
    }

    #[test]
    fn trailing_zero_padding_is_not_data() {
        let mut bytes = sample();
        let n = bytes.len();
        bytes.extend_from_slice(&vec![0u8; 10_007]);
        let obj = parse_bytes(&bytes).unwrap();
        assert_eq!(obj.dataset.ascii(Tag(0x0020, 0x000D)).as_deref(), Some("1.2.3"));
        // Non-zero junk after zeros is still an error.
        bytes.push(1);
        assert!(parse_bytes(&bytes).is_err());
        assert!(parse_bytes(&bytes[..n]).is_ok());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // 100 nested undefined-length sequences.
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.5", crate::ts::EXPLICIT_VR_LE);
        let mut raw = Vec::new();
        for _ in 0..100 {
            raw.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            raw.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        b.raw(raw);
        let bytes = b.to_bytes();
        assert!(matches!(parse_bytes(&bytes), Err(ParseError::TooDeep(_)) | Err(ParseError::Truncated { .. })));
    }

    #[test]
    fn encapsulated_fragments_are_located() {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3.6", "1.2.840.10008.1.2.4.50");
        b.u16(Tag(0x0028, 0x0010), 2);
        b.pixel_data_fragments(&[vec![0xFF, 0xD8, 1, 2, 0xFF, 0xD9], vec![0xFF, 0xD8, 3, 4, 5, 6, 0xFF, 0xD9]]);
        let bytes = b.to_bytes();
        let obj = parse_bytes(&bytes).unwrap();
        let Value::Fragments { fragments, .. } = &obj.dataset.get(PIXEL_DATA).unwrap().value else {
            panic!("not fragments")
        };
        assert_eq!(fragments.len(), 2);
        let (off, len) = fragments[1];
        assert_eq!(&bytes[off as usize..(off + len) as usize], &[0xFF, 0xD8, 3, 4, 5, 6, 0xFF, 0xD9]);
    }
}
