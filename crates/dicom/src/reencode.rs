//! Transfer syntax conversion of native (uncompressed) data sets, for sending
//! a stored object to a peer that did not accept the syntax it is stored in
//! (C-MOVE / C-GET sub-operations).
//!
//! [`reencode_dataset`] takes the data set alone (no preamble, no meta) and
//! supports:
//! - Implicit VR Little Endian ⇄ Explicit VR Little Endian;
//! - Explicit VR Big Endian → either little endian syntax (values byte-swapped
//!   by VR: US SS OW AT by 16 bits, UL SL FL OF OL by 32, FD OD SV UV OV by
//!   64; OB, UN and text untouched; OW pixel data swapped by 16 bits);
//! - Deflated Explicit VR Little Endian → either (raw deflate, inflated up to
//!   [`ParseOptions::max_inflated`]), and any of the above → Deflated;
//! - any syntax to itself: the bytes are returned as they are, which is the
//!   only way encapsulated (compressed) pixel data is kept. Encapsulated
//!   pixel data met during a conversion is [`ReencodeError::Unsupported`].
//!
//! It is a streaming element walker over the input slice (not the parser,
//! which locates values rather than copying them and normalises VRs): every
//! declared length is checked against the bytes of the enclosing item (or of
//! the input) before use, nesting depth and element count are bounded by
//! [`ParseOptions`], and malformed input is an error, never a panic. Output
//! size is the input size plus at most four bytes per element.
//!
//! Conversion rules:
//! - implicit → explicit: VRs from the dictionary ([`crate::dict::vr_of`]):
//!   private creators LO, other private and unknown tags UN, OB/OW
//!   ambiguities (pixel data included) OW; `US or SS` is SS when the data set
//!   declared Pixel Representation 1 before it (except LUT descriptors,
//!   always US). A value longer than 0xFFFF under a VR with a 16-bit explicit
//!   length becomes UN. An undefined-length element is a sequence (SQ);
//! - explicit → implicit: the VR is dropped;
//! - sequences and items keep the kind of length they had: undefined lengths
//!   stay undefined (with their delimiters), defined lengths are recomputed
//!   for the new encoding;
//! - an undefined-length UN (a sequence in implicit VR little endian, PS3.5
//!   §6.2.2) and defined-length UN values are copied unchanged;
//! - group lengths (gggg,0000), which the new header sizes would make wrong
//!   and which are retired in data sets, are dropped, as are stray
//!   delimiters and trailing zero padding (both tolerated on input, as
//!   [`crate::parse`] tolerates them);
//! - elements are copied in input order; values are never reinterpreted
//!   (odd lengths stay odd, text keeps its character set).
//!
//! An input declared Explicit VR Little Endian whose first element has no
//! valid VR is read as implicit VR, as [`crate::parse_part10`] does.
//!
//! The same walker serves [`crate::rewrite::rewrite_dataset`] (transcoding),
//! which also edits top-level attributes and replaces the pixel data.

use std::borrow::Cow;
use std::io::Read;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

use crate::parse::{ParseError, ParseOptions, TagDisplay, implicit_vr};
use crate::rewrite::{Entry, Plan, Planned, order};
use crate::ts::{self, Encoding};
use crate::write::{deflate, header, long_length, put_tag, put_u32, swap_for};

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITATION: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const PIXEL_REPRESENTATION: Tag = Tag(0x0028, 0x0103);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Why a data set cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ReencodeError {
    #[error("unsupported conversion: {0}")]
    Unsupported(String),
    /// The input is not a well-formed data set (the parser's own reasons).
    #[error(transparent)]
    Malformed(#[from] ParseError),
    #[error("converted {tag} is longer than a 32-bit length holds")]
    TooLong { tag: TagDisplay },
    /// The edits asked of [`crate::rewrite::rewrite_dataset`] cannot be made
    /// (a tag named twice, a meta or item tag, a sequence value...).
    #[error("invalid edit: {0}")]
    InvalidEdit(String),
}

/// Offsets in errors are in the (inflated) input.
type Result<T> = std::result::Result<T, ReencodeError>;

fn is_source(ts_uid: &str) -> bool {
    matches!(ts_uid, ts::IMPLICIT_VR_LE | ts::EXPLICIT_VR_LE | ts::EXPLICIT_VR_BE | ts::DEFLATED_EXPLICIT_VR_LE)
}

fn is_target(ts_uid: &str) -> bool {
    matches!(ts_uid, ts::IMPLICIT_VR_LE | ts::EXPLICIT_VR_LE | ts::DEFLATED_EXPLICIT_VR_LE)
}

/// Whether [`reencode_dataset`] converts from `from_ts` to `to_ts`: the same
/// syntax (any, copied), or a native syntax (implicit LE, explicit LE,
/// explicit BE, deflated) to a little endian one (implicit, explicit,
/// deflated). A `true` does not promise success: a data set that carries
/// encapsulated pixel data under a native syntax is still refused.
pub fn can_reencode(from_ts: &str, to_ts: &str) -> bool {
    from_ts == to_ts || (is_source(from_ts) && is_target(to_ts))
}

/// Converts a data set (no preamble, no file meta) from `from_ts` to `to_ts`
/// with the default [`ParseOptions`] limits. See the module documentation.
pub fn reencode_dataset(bytes: &[u8], from_ts: &str, to_ts: &str) -> Result<Vec<u8>> {
    reencode_dataset_with(bytes, from_ts, to_ts, &ParseOptions::default())
}

/// [`reencode_dataset`] with explicit limits (`max_depth`, `max_elements`,
/// `max_inflated` are used).
pub fn reencode_dataset_with(bytes: &[u8], from_ts: &str, to_ts: &str, opts: &ParseOptions) -> Result<Vec<u8>> {
    if from_ts == to_ts {
        return Ok(bytes.to_vec());
    }
    if !can_reencode(from_ts, to_ts) {
        let why = if ts::is_native(from_ts) && ts::is_native(to_ts) {
            "only little endian output is written"
        } else {
            "compressed or unknown transfer syntaxes are only kept as they are"
        };
        return Err(ReencodeError::Unsupported(format!("{from_ts} to {to_ts}: {why}")));
    }
    convert(bytes, from_ts, to_ts, &Plan::conversion(), opts)
}

/// The engine of [`reencode_dataset`] and [`crate::rewrite::rewrite_dataset`]:
/// inflates, picks the input and output encodings, walks the data set with
/// the top-level edits of `plan` (none for a plain conversion), deflates.
/// The caller has checked that `to_ts` is one we write (little endian).
pub(crate) fn convert(
    bytes: &[u8],
    from_ts: &str,
    to_ts: &str,
    plan: &Plan<'_>,
    opts: &ParseOptions,
) -> Result<Vec<u8>> {
    let inflated;
    let (input, mut in_enc): (&[u8], Encoding) = if from_ts == ts::DEFLATED_EXPLICIT_VR_LE {
        inflated = inflate(bytes, opts.max_inflated)?;
        (&inflated, Encoding::EXPLICIT_LE)
    } else {
        (bytes, ts::encoding_of(from_ts))
    };
    if in_enc == Encoding::EXPLICIT_LE && !starts_with_explicit_vr(input) {
        in_enc = Encoding::IMPLICIT_LE;
    }
    let out_enc = if to_ts == ts::IMPLICIT_VR_LE { Encoding::IMPLICIT_LE } else { Encoding::EXPLICIT_LE };
    // Between native syntaxes of the same encoding with nothing to change
    // (explicit LE and deflated), the bytes are already right.
    let as_is = in_enc == out_enc && plan.entries.is_empty() && ts::is_native(from_ts) && ts::is_native(to_ts);
    let plain: Cow<'_, [u8]> = if as_is {
        Cow::Borrowed(input)
    } else {
        let mut out = Vec::with_capacity(input.len() + input.len() / 8 + plan.added_bytes());
        let zero_tail = input.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let mut w = Walker {
            buf: input,
            pos: 0,
            limit: input.len(),
            zero_tail,
            opts,
            elements: 0,
            pixel_rep: 0,
            plan,
            next: 0,
        };
        w.dataset(false, 0, in_enc, out_enc, &mut out)?;
        w.edits_before(None, out_enc, &mut out)?;
        Cow::Owned(out)
    };
    Ok(if to_ts == ts::DEFLATED_EXPLICIT_VR_LE { deflate(&plain) } else { plain.into_owned() })
}

/// Inflates a raw-deflate stream, refusing to grow past `cap` bytes.
fn inflate(bytes: &[u8], cap: u64) -> Result<Vec<u8>> {
    let mut dec = flate2::read::DeflateDecoder::new(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = dec.read(&mut buf).map_err(|e| ReencodeError::Malformed(ParseError::Inflate(e.to_string())))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() as u64 + n as u64 > cap {
            return Err(ReencodeError::Malformed(ParseError::InflateTooLarge(cap)));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Whether the first element header carries a valid explicit VR (true for an
/// input too short to tell).
fn starts_with_explicit_vr(b: &[u8]) -> bool {
    b.len() < 6 || VR::from_binary([b[4], b[5]]).is_some()
}

/// The element walker: reads `buf` from `pos`, never beyond `limit` (the end
/// of the enclosing defined-length item or sequence, or of the input).
struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    limit: usize,
    /// Where the trailing run of zero bytes of `buf` starts.
    zero_tail: usize,
    opts: &'a ParseOptions,
    elements: usize,
    /// Pixel Representation (0028,0103) of the top-level data set, once
    /// read (or written by an edit).
    pixel_rep: u16,
    /// Top-level edits, sorted by tag, and what may be copied.
    plan: &'a Plan<'a>,
    /// The first entry of `plan.entries` not yet reached.
    next: usize,
}

impl<'a> Walker<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let available = self.limit.saturating_sub(self.pos);
        if available < n {
            return Err(ReencodeError::Malformed(ParseError::Truncated {
                offset: self.pos as u64,
                needed: (n - available) as u64,
            }));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u16(&mut self, be: bool) -> Result<u16> {
        let b = self.take(2)?;
        let a = [b[0], b[1]];
        Ok(if be { u16::from_be_bytes(a) } else { u16::from_le_bytes(a) })
    }

    fn u32(&mut self, be: bool) -> Result<u32> {
        let b = self.take(4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Ok(if be { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) })
    }

    fn tag(&mut self, be: bool) -> Result<Tag> {
        Ok(Tag(self.u16(be)?, self.u16(be)?))
    }

    fn count(&mut self) -> Result<()> {
        self.elements += 1;
        if self.elements > self.opts.max_elements {
            return Err(ReencodeError::Malformed(ParseError::TooManyElements(self.opts.max_elements)));
        }
        Ok(())
    }

    /// A declared length checked against what remains before `limit`.
    fn check_len(&self, tag: Tag, len: u32, at: usize) -> Result<usize> {
        let available = self.limit.saturating_sub(self.pos);
        if len as usize > available {
            return Err(ReencodeError::Malformed(ParseError::LengthExceedsInput {
                tag: TagDisplay(tag),
                declared: len as u64,
                available: available as u64,
                offset: at as u64,
            }));
        }
        Ok(len as usize)
    }

    /// The VR an implicit-VR element gets in explicit VR.
    fn vr_for_implicit(&self, tag: Tag) -> VR {
        let vr = implicit_vr(tag);
        if vr == VR::US && self.pixel_rep == 1 && tag.0.is_multiple_of(2) {
            let signed = StandardDataDictionary
                .by_tag(tag)
                .is_some_and(|e| matches!(e.vr(), VirtualVr::Xs) && !e.alias().ends_with("Descriptor"));
            if signed {
                return VR::SS;
            }
        }
        vr
    }

    /// Converts the elements of a data set: the top level (`depth` 0, up to
    /// the end of the input), a defined-length item (`defined`, up to
    /// `limit`) or an undefined-length item (up to its delimiter, consumed
    /// here; the caller writes the output delimiter).
    fn dataset(&mut self, defined: bool, depth: u32, inp: Encoding, outp: Encoding, out: &mut Vec<u8>) -> Result<()> {
        loop {
            if self.pos >= self.limit && (defined || depth == 0) {
                return Ok(());
            }
            let start = self.pos;
            let tag = self.tag(inp.big_endian)?;
            if tag == ITEM_DELIMITATION {
                self.take(4)?;
                if depth > 0 && !defined {
                    return Ok(());
                }
                continue; // stray: carries nothing
            }
            if tag == Tag(0, 0) && depth == 0 && start >= self.zero_tail {
                self.pos = self.limit; // trailing zero padding
                return Ok(());
            }
            if tag == SEQUENCE_DELIMITATION && depth == 0 {
                self.take(4)?;
                continue;
            }
            if tag == ITEM || tag == SEQUENCE_DELIMITATION {
                return Err(ReencodeError::Malformed(ParseError::ExpectedItem {
                    tag: TagDisplay(tag),
                    offset: start as u64,
                }));
            }
            if depth == 0 && !self.edits_before(Some(tag), outp, out)? {
                self.skip_element(tag, start, depth, inp)?;
                continue;
            }
            self.element(tag, start, depth, inp, outp, out)?;
        }
    }

    /// Applies the top-level edits due before an input element `tag` (all
    /// that remain when `None`, at the end): writes the entries whose tags
    /// sort before it, and says whether the input element is kept (false when
    /// an entry replaces or removes it; an entry written earlier because the
    /// input is out of order still replaces it, so no tag is written twice).
    fn edits_before(&mut self, tag: Option<Tag>, outp: Encoding, out: &mut Vec<u8>) -> Result<bool> {
        let plan = self.plan;
        let entries = &plan.entries;
        let key = tag.map_or(u32::MAX as u64 + 1, |t| order(t) as u64);
        while let Some(e) = entries.get(self.next)
            && (order(e.tag) as u64) < key
        {
            self.write_entry(e, outp, out);
            self.next += 1;
        }
        let Some(tag) = tag else { return Ok(true) };
        match entries.binary_search_by_key(&order(tag), |e| order(e.tag)) {
            Ok(i) => {
                if i == self.next {
                    self.write_entry(&entries[i], outp, out);
                    self.next += 1;
                }
                Ok(false)
            }
            Err(_) => Ok(true),
        }
    }

    fn write_entry(&mut self, e: &Planned<'_>, outp: Encoding, out: &mut Vec<u8>) {
        if let Entry::Set { value, .. } = &e.what
            && e.tag == PIXEL_REPRESENTATION
            && value.len() >= 2
        {
            self.pixel_rep = u16::from_le_bytes([value[0], value[1]]);
        }
        crate::rewrite::write_entry(e, outp, out);
    }

    /// Reads an element header after its tag: the explicit VR (`None` in
    /// implicit VR) and the declared length.
    fn read_header(&mut self, tag: Tag, start: usize, inp: Encoding) -> Result<(Option<VR>, u32)> {
        let be = inp.big_endian;
        if !inp.explicit_vr {
            return Ok((None, self.u32(be)?));
        }
        let b = self.take(2)?;
        let vb = [b[0], b[1]];
        let vr = match VR::from_binary(vb) {
            Some(vr) => vr,
            // Two spaces or NULs: some writers emit them for UN.
            None if vb == [b' ', b' '] || vb == [0, 0] => VR::UN,
            None => {
                return Err(ReencodeError::Malformed(ParseError::BadVr {
                    tag: TagDisplay(tag),
                    bytes: vb,
                    offset: start as u64,
                }));
            }
        };
        let len = if long_length(vr) {
            self.take(2)?;
            self.u32(be)?
        } else {
            self.u16(be)? as u32
        };
        Ok((Some(vr), len))
    }

    /// Passes over one element whose tag has been read, writing nothing:
    /// defined lengths are checked and jumped, undefined-length sequences and
    /// encapsulated pixel data walked to their delimiters (bounded as the
    /// conversion is). Whatever they hold is not refused: it is not copied.
    fn skip_element(&mut self, tag: Tag, start: usize, depth: u32, inp: Encoding) -> Result<()> {
        self.count()?;
        let (explicit, len) = self.read_header(tag, start, inp)?;
        if len != UNDEFINED {
            let n = self.check_len(tag, len, start)?;
            self.take(n)?;
            return Ok(());
        }
        let vr = explicit.unwrap_or_else(|| implicit_vr(tag));
        if encapsulated(tag, vr, depth) {
            self.skip_fragments(tag)
        } else if explicit == Some(VR::UN) {
            self.skip_items(depth, Encoding::IMPLICIT_LE)
        } else if vr == VR::SQ || explicit.is_none() {
            self.skip_items(depth, inp)
        } else {
            Err(ReencodeError::Malformed(ParseError::UndefinedLength {
                tag: TagDisplay(tag),
                vr: vr.to_string(),
                offset: start as u64,
            }))
        }
    }

    /// Passes over the items of an undefined-length sequence, its delimiter included.
    fn skip_items(&mut self, depth: u32, enc: Encoding) -> Result<()> {
        if depth + 1 > self.opts.max_depth {
            return Err(ReencodeError::Malformed(ParseError::TooDeep(self.opts.max_depth)));
        }
        loop {
            let at = self.pos;
            let tag = self.tag(enc.big_endian)?;
            let len = self.u32(enc.big_endian)?;
            if tag == SEQUENCE_DELIMITATION {
                return Ok(());
            }
            if tag != ITEM {
                return Err(ReencodeError::Malformed(ParseError::ExpectedItem {
                    tag: TagDisplay(tag),
                    offset: at as u64,
                }));
            }
            self.count()?;
            if len == UNDEFINED {
                // The elements of the item, up to its delimiter.
                loop {
                    let start = self.pos;
                    let t = self.tag(enc.big_endian)?;
                    if t == ITEM_DELIMITATION {
                        self.take(4)?;
                        break;
                    }
                    if t == ITEM || t == SEQUENCE_DELIMITATION {
                        return Err(ReencodeError::Malformed(ParseError::ExpectedItem {
                            tag: TagDisplay(t),
                            offset: start as u64,
                        }));
                    }
                    self.skip_element(t, start, depth + 1, enc)?;
                }
            } else {
                let n = self.check_len(tag, len, at)?;
                self.take(n)?;
            }
        }
    }

    /// Passes over encapsulated pixel data after its header: the items (basic
    /// offset table, fragments: all of defined length) and the sequence
    /// delimiter.
    fn skip_fragments(&mut self, tag: Tag) -> Result<()> {
        loop {
            let at = self.pos;
            let itag = self.tag(false)?;
            let len = self.u32(false)?;
            if itag == SEQUENCE_DELIMITATION {
                return Ok(());
            }
            if itag != ITEM {
                return Err(ReencodeError::Malformed(ParseError::ExpectedItem {
                    tag: TagDisplay(itag),
                    offset: at as u64,
                }));
            }
            self.count()?;
            if len == UNDEFINED {
                return Err(ReencodeError::Malformed(ParseError::LengthExceedsInput {
                    tag: TagDisplay(tag),
                    declared: len as u64,
                    available: self.limit.saturating_sub(self.pos) as u64,
                    offset: at as u64,
                }));
            }
            let n = self.check_len(tag, len, at)?;
            self.take(n)?;
        }
    }

    /// Converts one element whose tag has been read.
    fn element(
        &mut self,
        tag: Tag,
        start: usize,
        depth: u32,
        inp: Encoding,
        outp: Encoding,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.count()?;
        let be = inp.big_endian;
        let (explicit, len) = self.read_header(tag, start, inp)?;
        let in_vr = match explicit {
            Some(vr) => vr,
            None => self.vr_for_implicit(tag),
        };
        let group_length = tag.1 == 0x0000;

        if len == UNDEFINED {
            if encapsulated(tag, in_vr, depth) {
                if !self.plan.keep_encapsulated || be {
                    return Err(ReencodeError::Unsupported(format!(
                        "{} holds encapsulated pixel data, which only its own transfer syntax carries",
                        TagDisplay(tag)
                    )));
                }
                // Same syntax: the items are copied as they are (little
                // endian, like the header around them).
                header(out, tag, explicit.unwrap_or(VR::OB), UNDEFINED, outp);
                let from = self.pos;
                self.skip_fragments(tag)?;
                out.extend_from_slice(&self.buf[from..self.pos]);
                return Ok(());
            }
            // An undefined-length UN holds implicit VR little endian items,
            // copied as they are; anything else undefined is a sequence.
            let (out_vr, items_in, items_out) = if explicit == Some(VR::UN) {
                (VR::UN, Encoding::IMPLICIT_LE, Encoding::IMPLICIT_LE)
            } else if in_vr == VR::SQ || explicit.is_none() {
                (VR::SQ, inp, outp)
            } else {
                return Err(ReencodeError::Malformed(ParseError::UndefinedLength {
                    tag: TagDisplay(tag),
                    vr: in_vr.to_string(),
                    offset: start as u64,
                }));
            };
            let mark = out.len();
            header(out, tag, out_vr, UNDEFINED, outp);
            self.items(tag, false, depth, items_in, items_out, out)?;
            put_tag(out, SEQUENCE_DELIMITATION, items_out.big_endian);
            put_u32(out, 0, items_out.big_endian);
            if group_length {
                out.truncate(mark);
            }
            return Ok(());
        }

        let n = self.check_len(tag, len, start)?;
        if in_vr == VR::SQ {
            let mark = out.len();
            header(out, tag, VR::SQ, 0, outp);
            let body = out.len();
            let saved = self.limit;
            self.limit = self.pos + n;
            self.items(tag, true, depth, inp, outp, out)?;
            self.limit = saved;
            patch_length(out, body, tag, outp)?;
            if group_length {
                out.truncate(mark);
            }
            return Ok(());
        }

        if depth == 0 && tag.0 == 0x7FE0 {
            let refused = match tag.1 {
                0x0010 if !self.plan.native_pixel_data_ok => {
                    "native pixel data, which an encapsulated transfer syntax does not carry (give the encoded frames)"
                }
                0x0008 | 0x0009 if !self.plan.float_pixel_data_ok => {
                    "float pixel data, which is neither encapsulated nor kept next to new pixel data"
                }
                _ => "",
            };
            if !refused.is_empty() {
                return Err(ReencodeError::Unsupported(format!("{} holds {refused}", TagDisplay(tag))));
            }
        }
        let value = self.take(n)?;
        if group_length {
            return Ok(());
        }
        if depth == 0 && tag == PIXEL_REPRESENTATION && n >= 2 {
            let a = [value[0], value[1]];
            self.pixel_rep = if be { u16::from_be_bytes(a) } else { u16::from_le_bytes(a) };
        }
        let out_vr = match explicit {
            Some(vr) => vr,
            None if !long_length(in_vr) && n > 0xFFFF => VR::UN,
            None => in_vr,
        };
        header(out, tag, out_vr, n as u32, outp);
        if inp.big_endian != outp.big_endian {
            out.extend_from_slice(&swap_for(in_vr, value));
        } else {
            out.extend_from_slice(value);
        }
        Ok(())
    }

    /// Converts the items of a sequence up to `limit` (`defined`) or up to
    /// the sequence delimiter (consumed; the caller writes the output one).
    fn items(
        &mut self,
        seq: Tag,
        defined: bool,
        depth: u32,
        inp: Encoding,
        outp: Encoding,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if depth + 1 > self.opts.max_depth {
            return Err(ReencodeError::Malformed(ParseError::TooDeep(self.opts.max_depth)));
        }
        loop {
            if defined && self.pos >= self.limit {
                return Ok(());
            }
            let at = self.pos;
            let tag = self.tag(inp.big_endian)?;
            let len = self.u32(inp.big_endian)?;
            if tag == SEQUENCE_DELIMITATION {
                if !defined {
                    return Ok(());
                }
                continue; // stray delimiter inside a defined-length sequence
            }
            if tag != ITEM {
                return Err(ReencodeError::Malformed(ParseError::ExpectedItem {
                    tag: TagDisplay(tag),
                    offset: at as u64,
                }));
            }
            self.count()?;
            put_tag(out, ITEM, outp.big_endian);
            if len == UNDEFINED {
                put_u32(out, UNDEFINED, outp.big_endian);
                self.dataset(false, depth + 1, inp, outp, out)?;
                put_tag(out, ITEM_DELIMITATION, outp.big_endian);
                put_u32(out, 0, outp.big_endian);
            } else {
                let n = self.check_len(tag, len, at)?;
                put_u32(out, 0, outp.big_endian);
                let body = out.len();
                let saved = self.limit;
                self.limit = self.pos + n;
                self.dataset(true, depth + 1, inp, outp, out)?;
                self.limit = saved;
                patch_length(out, body, seq, outp)?;
            }
        }
    }
}

/// Whether an undefined-length element is encapsulated pixel data (an icon's
/// too, inside a sequence) rather than a sequence.
fn encapsulated(tag: Tag, vr: VR, depth: u32) -> bool {
    tag == PIXEL_DATA || (matches!(vr, VR::OB | VR::OW) && (tag.0 == 0x7FE0 || depth > 0))
}

/// Writes the length of what follows `body` into the 4 bytes before it.
fn patch_length(out: &mut [u8], body: usize, tag: Tag, enc: Encoding) -> Result<()> {
    let len = out.len() - body;
    if len >= UNDEFINED as usize {
        return Err(ReencodeError::TooLong { tag: TagDisplay(tag) });
    }
    let b = if enc.big_endian { (len as u32).to_be_bytes() } else { (len as u32).to_le_bytes() };
    out[body - 4..body].copy_from_slice(&b);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{DataSet, Value, parse_dataset, parse_part10};
    use crate::tags;
    use crate::write::DataSetBuilder;
    use std::io::Cursor;

    const EX: &str = ts::EXPLICIT_VR_LE;
    const IM: &str = ts::IMPLICIT_VR_LE;
    const BE: &str = ts::EXPLICIT_VR_BE;
    const DF: &str = ts::DEFLATED_EXPLICIT_VR_LE;
    const JPEG: &str = "1.2.840.10008.1.2.4.50";

    /// (path, VR, value bytes) of every value, bulk values resolved.
    type Flat = Vec<(String, VR, Vec<u8>)>;

    fn flatten(ds: &DataSet, data: &[u8], prefix: &str, out: &mut Flat) {
        for e in &ds.elements {
            let path = format!("{prefix}{:04X}{:04X}", e.tag.0, e.tag.1);
            match &e.value {
                Value::Inline(b) => out.push((path, e.vr, b.clone())),
                Value::Bulk { offset, length } => {
                    out.push((path, e.vr, data[*offset as usize..(*offset + *length) as usize].to_vec()))
                }
                Value::Sequence(items) => {
                    out.push((path.clone(), VR::SQ, Vec::new()));
                    for (i, item) in items.iter().enumerate() {
                        flatten(item, data, &format!("{path}/{i}/"), out);
                    }
                }
                Value::Fragments { .. } => panic!("unexpected fragments"),
            }
        }
    }

    fn flat(bytes: &[u8], ts_uid: &str) -> Flat {
        let ds = parse_dataset(&mut Cursor::new(bytes), bytes.len() as u64, ts_uid, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("parse as {ts_uid}: {e}"));
        let mut out = Vec::new();
        flatten(&ds, bytes, "", &mut out);
        out
    }

    fn without_vr(f: &Flat) -> Vec<(String, Vec<u8>)> {
        f.iter().map(|(p, _, b)| (p.clone(), b.clone())).collect()
    }

    /// A data set with every numeric VR, text, nested sequences (undefined
    /// lengths, as the builder writes them), empty values and pixel data.
    /// VRs are the dictionary's, so implicit → explicit gives them back.
    fn sample() -> DataSetBuilder {
        let mut d = DataSetBuilder::new();
        d.charset("ISO_IR 192");
        d.str(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.2");
        d.str(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5.6");
        d.str(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY");
        d.str(tags::PATIENT_NAME, VR::PN, "Zhang^San=张^三");
        d.str(tags::ACCESSION_NUMBER, VR::SH, "");
        d.str(tags::PIXEL_SPACING, VR::DS, "0.5\\0.5");
        d.u16(tags::SAMPLES_PER_PIXEL, 1);
        d.u16(tags::ROWS, 2);
        d.u16(tags::COLUMNS, 2);
        d.u16(tags::BITS_ALLOCATED, 16);
        d.u16(tags::PIXEL_REPRESENTATION, 1);
        d.bytes(tags::SMALLEST_IMAGE_PIXEL_VALUE, VR::SS, (-5i16).to_le_bytes().to_vec());
        d.bytes(tags::TAG_ANGLE_SECOND_AXIS, VR::SS, (-300i16).to_le_bytes().to_vec());
        d.bytes(tags::REFERENCE_PIXEL_X0, VR::SL, (-70000i32).to_le_bytes().to_vec());
        d.u32(tags::NUMBER_OF_WAVEFORM_SAMPLES, 0x0102_0304);
        d.f64s(tags::TIME_RANGE, &[1.5, -2.25]);
        d.bytes(tags::EXAMINED_BODY_THICKNESS, VR::FL, 2.5f32.to_le_bytes().to_vec());
        d.bytes(tags::DIMENSION_INDEX_POINTER, VR::AT, vec![0x20, 0x00, 0x57, 0x90]);
        d.bytes(tags::FILE_OFFSET_IN_CONTAINER, VR::UV, 0x0102_0304_0506_0708u64.to_le_bytes().to_vec());
        d.bytes(tags::SELECTOR_SV_VALUE, VR::SV, (-2i64).to_le_bytes().to_vec());
        d.bytes(tags::VECTOR_GRID_DATA, VR::OF, [1.0f32, 2.0].iter().flat_map(|f| f.to_le_bytes()).collect());
        d.bytes(tags::LONG_PRIMITIVE_POINT_INDEX_LIST, VR::OL, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        let mut inner = DataSetBuilder::new();
        inner.str(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "1.2.3.9");
        let mut outer = DataSetBuilder::new();
        outer.str(tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.8");
        outer.sequence(tags::REFERENCED_INSTANCE_SEQUENCE, vec![inner, DataSetBuilder::new()]);
        d.sequence(tags::REFERENCED_SERIES_SEQUENCE, vec![outer]);
        d.sequence(tags::REFERENCED_IMAGE_SEQUENCE, vec![]);
        d.pixel_data_native(vec![1, 2, 3, 4, 5, 6, 7, 8], VR::OW);
        d
    }

    #[test]
    fn can_reencode_table() {
        for (from, to, ok) in [
            (EX, IM, true),
            (IM, EX, true),
            (BE, EX, true),
            (BE, IM, true),
            (DF, EX, true),
            (DF, IM, true),
            (EX, DF, true),
            (EX, BE, false),
            (JPEG, JPEG, true),
            (JPEG, EX, false),
            (EX, JPEG, false),
            (ts::ENCAPSULATED_UNCOMPRESSED, EX, false),
        ] {
            assert_eq!(can_reencode(from, to), ok, "{from} -> {to}");
            if !ok {
                assert!(matches!(reencode_dataset(&[], from, to), Err(ReencodeError::Unsupported(_))));
            }
        }
    }

    #[test]
    fn explicit_and_implicit_convert_both_ways() {
        let d = sample();
        let ex = d.to_bytes(EX);
        let im = d.to_bytes(IM);
        // What the builder writes directly, byte for byte.
        assert_eq!(reencode_dataset(&ex, EX, IM).unwrap(), im);
        assert_eq!(reencode_dataset(&im, IM, EX).unwrap(), ex);
        let back = reencode_dataset(&reencode_dataset(&ex, EX, IM).unwrap(), IM, EX).unwrap();
        assert_eq!(flat(&back, EX), flat(&ex, EX));
        let f = flat(&back, EX);
        let vr = |p: &str| f.iter().find(|x| x.0 == p).unwrap().1;
        assert_eq!(vr("00280106"), VR::SS); // US or SS, Pixel Representation 1
        assert_eq!(vr("7FE00010"), VR::OW);
        assert_eq!(vr("00081115/0/0008114A/0/00081155"), VR::UI);
    }

    #[test]
    fn big_endian_converts_to_little_endian() {
        let d = sample();
        let be = d.to_bytes(BE);
        assert_ne!(be, d.to_bytes(EX));
        assert_eq!(reencode_dataset(&be, BE, EX).unwrap(), d.to_bytes(EX));
        assert_eq!(reencode_dataset(&be, BE, IM).unwrap(), d.to_bytes(IM));
        let df = reencode_dataset(&be, BE, DF).unwrap();
        assert_eq!(reencode_dataset(&df, DF, EX).unwrap(), d.to_bytes(EX));
    }

    /// Explicit VR big endian written by hand (independent of the builder).
    #[test]
    fn hand_written_big_endian() {
        fn el(out: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], value: &[u8]) {
            out.extend_from_slice(&g.to_be_bytes());
            out.extend_from_slice(&e.to_be_bytes());
            out.extend_from_slice(vr);
            if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT" | b"OF") {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            } else {
                out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(value);
        }
        let mut item = Vec::new();
        el(&mut item, 0x0008, 0x1155, b"UI", b"1.2.3\0");
        el(&mut item, 0x0028, 0x0010, b"US", &[0x01, 0x02]);
        let mut seq = Vec::new();
        seq.extend_from_slice(&[0xFF, 0xFE, 0xE0, 0x00]);
        seq.extend_from_slice(&(item.len() as u32).to_be_bytes());
        seq.extend_from_slice(&item);
        let mut be = Vec::new();
        el(&mut be, 0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.7\0");
        el(&mut be, 0x0008, 0x1140, b"SQ", &seq);
        el(&mut be, 0x0018, 0x6020, b"SL", &[0xFF, 0xFE, 0xEE, 0x90]); // -70000
        el(&mut be, 0x0020, 0x9165, b"AT", &[0x00, 0x20, 0x90, 0x57]);
        el(&mut be, 0x0028, 0x0010, b"US", &[0x00, 0x02, 0x01, 0x00]); // 2, 256
        el(&mut be, 0x0028, 0x0030, b"DS", b"0.5\\0.5 ");
        el(&mut be, 0x0008, 0x1163, b"FD", &1.5f64.to_be_bytes());
        el(&mut be, 0x0009, 0x1001, b"OB", &[1, 2, 3, 4]);
        el(&mut be, 0x7FE0, 0x0010, b"OW", &[0x00, 0x01, 0x00, 0x02, 0xFF, 0xFE]);
        for to in [EX, IM] {
            let le = reencode_dataset(&be, BE, to).unwrap();
            let f = flat(&le, to);
            let get = |p: &str| f.iter().find(|x| x.0 == p).unwrap_or_else(|| panic!("{p}")).2.clone();
            assert_eq!(get("00081140/0/00081155"), b"1.2.3\0");
            assert_eq!(get("00081140/0/00280010"), [0x02, 0x01]);
            assert_eq!(get("00186020"), (-70000i32).to_le_bytes());
            assert_eq!(get("00209165"), [0x20, 0x00, 0x57, 0x90]);
            assert_eq!(get("00280010"), [0x02, 0x00, 0x00, 0x01]);
            assert_eq!(get("00280030"), b"0.5\\0.5 ");
            assert_eq!(get("00081163"), 1.5f64.to_le_bytes());
            assert_eq!(get("00091001"), [1, 2, 3, 4]);
            assert_eq!(get("7FE00010"), [0x01, 0x00, 0x02, 0x00, 0xFE, 0xFF]);
        }
        // The defined-length sequence keeps a defined (recomputed) length.
        let im = reencode_dataset(&be, BE, IM).unwrap();
        let at = im.windows(4).position(|w| w == [0x08, 0x00, 0x40, 0x11]).unwrap();
        let len = u32::from_le_bytes(im[at + 4..at + 8].try_into().unwrap());
        assert_eq!(len as usize, 8 + 8 + 6 + 8 + 2);
    }

    #[test]
    fn deflated_converts() {
        let d = sample();
        let df = d.to_bytes(DF);
        assert_eq!(reencode_dataset(&df, DF, EX).unwrap(), d.to_bytes(EX));
        assert_eq!(reencode_dataset(&df, DF, IM).unwrap(), d.to_bytes(IM));
        let again = reencode_dataset(&d.to_bytes(IM), IM, DF).unwrap();
        assert_eq!(reencode_dataset(&again, DF, EX).unwrap(), d.to_bytes(EX));
        let ds = parse_dataset(&mut Cursor::new(&again), again.len() as u64, DF, &ParseOptions::default()).unwrap();
        assert_eq!(ds.ascii(tags::SOP_INSTANCE_UID).as_deref(), Some("1.2.3.4.5.6"));
        // The inflation cap holds.
        let zeros = deflate(&vec![0u8; 1 << 20]);
        let opts = ParseOptions { max_inflated: 1000, ..ParseOptions::default() };
        assert!(matches!(
            reencode_dataset_with(&zeros, DF, EX, &opts),
            Err(ReencodeError::Malformed(ParseError::InflateTooLarge(1000)))
        ));
        assert!(reencode_dataset(b"not deflate at all", DF, EX).is_err());
    }

    #[test]
    fn defined_length_sequences_are_recomputed() {
        // encode_json_dataset writes defined-length sequences and items.
        let j = serde_json::json!({
            "00080016": {"vr": "UI", "Value": ["1.2.3"]},
            "00081115": {"vr": "SQ", "Value": [
                {"0020000E": {"vr": "UI", "Value": ["1.2.3.8"]},
                 "0008114A": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3.9"]}}, {}]}},
            ]},
            "00280010": {"vr": "US", "Value": [2]},
        });
        let serde_json::Value::Object(j) = j else { unreachable!() };
        let ex = crate::json_dataset::encode_json_dataset(&j, true).unwrap();
        let im = crate::json_dataset::encode_json_dataset(&j, false).unwrap();
        assert_eq!(reencode_dataset(&ex, EX, IM).unwrap(), im);
        assert_eq!(reencode_dataset(&im, IM, EX).unwrap(), ex);
    }

    #[test]
    fn implicit_specifics() {
        // A private element becomes UN; a long 16-bit-length value becomes UN;
        // group lengths are dropped.
        let mut d = DataSetBuilder::new();
        d.u32(Tag(0x0008, 0x0000), 1234);
        d.str(tags::INSTITUTION_ADDRESS, VR::ST, &"x".repeat(70_000));
        d.str(Tag(0x0009, 0x0010), VR::LO, "YUNYING");
        d.bytes(Tag(0x0009, 0x1001), VR::OB, vec![1, 2, 3, 4]);
        let im = d.to_bytes(IM);
        let ex = reencode_dataset(&im, IM, EX).unwrap();
        let f = flat(&ex, EX);
        assert!(f.iter().all(|x| x.0 != "00080000"));
        let long = f.iter().find(|x| x.0 == "00080081").unwrap();
        assert_eq!(long.2.len(), 70_000);
        let hdr = ex.windows(4).position(|w| w == [0x08, 0x00, 0x81, 0x00]).unwrap();
        assert_eq!(&ex[hdr + 4..hdr + 6], b"UN");
        assert_eq!(f.iter().find(|x| x.0 == "00090010").unwrap().1, VR::LO);
        let hdr = ex.windows(4).position(|w| w == [0x09, 0x00, 0x01, 0x10]).unwrap();
        assert_eq!(&ex[hdr + 4..hdr + 6], b"UN");
        // Back to implicit: the same values.
        let im2 = reencode_dataset(&ex, EX, IM).unwrap();
        assert_eq!(without_vr(&flat(&im2, IM)), without_vr(&flat(&im, IM))[1..].to_vec());
    }

    #[test]
    fn undefined_length_un_is_copied() {
        // (0009,1002) UN, undefined length: an implicit VR LE sequence.
        let mut raw = vec![0x09, 0x00, 0x10, 0x00, b'L', b'O', 8, 0];
        raw.extend_from_slice(b"YUNYING ");
        raw.extend_from_slice(&[0x09, 0x00, 0x02, 0x10, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        raw.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        raw.extend_from_slice(&[0x10, 0x00, 0x20, 0x00, 4, 0, 0, 0]);
        raw.extend_from_slice(b"P01 ");
        raw.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        raw.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let im = reencode_dataset(&raw, EX, IM).unwrap();
        let f = flat(&im, IM);
        assert_eq!(f.iter().find(|x| x.0 == "00091002/0/00100020").unwrap().2, b"P01 ");
        let ex = reencode_dataset(&im, IM, EX).unwrap();
        assert_eq!(flat(&ex, EX).iter().find(|x| x.0 == "00091002/0/00100020").unwrap().2, b"P01 ");
    }

    #[test]
    fn encapsulated_pixel_data_is_kept_only_as_is() {
        let mut d = DataSetBuilder::new();
        d.u16(tags::ROWS, 2);
        d.pixel_data_fragments(&[vec![0xFF, 0xD8, 0xFF, 0xD9]]);
        let ex = d.to_bytes(EX);
        assert_eq!(reencode_dataset(&ex, JPEG, JPEG).unwrap(), ex);
        assert!(matches!(reencode_dataset(&ex, JPEG, EX), Err(ReencodeError::Unsupported(_))));
        // Fragments under a native syntax (a mislabelled object).
        assert!(matches!(reencode_dataset(&ex, EX, IM), Err(ReencodeError::Unsupported(_))));
        assert!(matches!(reencode_dataset(&d.to_bytes(IM), IM, EX), Err(ReencodeError::Unsupported(_))));
    }

    #[test]
    fn implicit_content_under_explicit_label_is_read_as_implicit() {
        let im = sample().to_bytes(IM);
        assert_eq!(reencode_dataset(&im, EX, IM).unwrap(), im);
        assert_eq!(
            reencode_dataset(&im, EX, DF).map(|d| reencode_dataset(&d, DF, IM).unwrap()).unwrap(),
            sample().to_bytes(IM)
        );
    }

    #[test]
    fn padding_and_stray_delimiters_are_dropped() {
        let d = sample();
        let mut ex = d.to_bytes(EX);
        ex.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        ex.extend_from_slice(&[0u8; 1001]);
        assert_eq!(reencode_dataset(&ex, EX, IM).unwrap(), d.to_bytes(IM));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let d = sample();
        for (from, to) in [(EX, IM), (IM, EX), (BE, EX), (BE, IM)] {
            let bytes = d.to_bytes(from);
            for cut in 0..bytes.len() {
                let _ = reencode_dataset(&bytes[..cut], from, to);
            }
            // Cut inside the pixel data value: an error.
            assert!(reencode_dataset(&bytes[..bytes.len() - 3], from, to).is_err());
            // Pseudo-random corruption.
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            for _ in 0..3000 {
                let mut b = bytes.clone();
                for _ in 0..3 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed % b.len() as u64) as usize;
                    b[i] = (seed >> 32) as u8;
                }
                let _ = reencode_dataset(&b, from, to);
            }
        }
        // A 4 GB declared length.
        let mut b = vec![0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF];
        b.extend_from_slice(&[0u8; 16]);
        assert!(matches!(
            reencode_dataset(&b, EX, IM),
            Err(ReencodeError::Malformed(ParseError::LengthExceedsInput { declared: 0xFFFF_FFF0, .. }))
        ));
        // An item longer than its sequence.
        let mut b = vec![0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 16, 0, 0, 0];
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 100, 0, 0, 0]);
        b.extend_from_slice(&[0u8; 120]);
        assert!(matches!(
            reencode_dataset(&b, EX, IM),
            Err(ReencodeError::Malformed(ParseError::LengthExceedsInput { .. }))
        ));
        // Deep nesting.
        let mut b = Vec::new();
        for _ in 0..100 {
            b.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        assert!(matches!(reencode_dataset(&b, EX, IM), Err(ReencodeError::Malformed(ParseError::TooDeep(32)))));
        // A bad VR.
        let mut b = vec![0x08, 0x00, 0x16, 0x00, b'U', b'I', 2, 0, b'1', 0];
        b.extend_from_slice(&[0x08, 0x00, 0x18, 0x00, b'z', b'z', 0, 0]);
        assert!(matches!(
            reencode_dataset(&b, EX, IM),
            Err(ReencodeError::Malformed(ParseError::BadVr { bytes: [b'z', b'z'], .. }))
        ));
        // Zeros up to a last non-zero byte: (0000,0000) elements, each
        // checked against the zero tail in constant time.
        let mut b = vec![0u8; 8 << 20];
        *b.last_mut().unwrap() = 1;
        let t = std::time::Instant::now();
        assert!(reencode_dataset(&b, IM, EX).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
        // An element limit.
        let opts = ParseOptions { max_elements: 5, ..ParseOptions::default() };
        assert!(matches!(
            reencode_dataset_with(&d.to_bytes(EX), EX, IM, &opts),
            Err(ReencodeError::Malformed(ParseError::TooManyElements(5)))
        ));
    }

    /// Compares our conversion with DCMTK's `dcmconv` (skipped when absent).
    #[test]
    fn agrees_with_dcmconv() {
        let Ok(out) = std::process::Command::new("dcmconv").arg("--version").output() else {
            eprintln!("dcmconv not installed: skipping");
            return;
        };
        if !out.status.success() {
            eprintln!("dcmconv not usable: skipping");
            return;
        }
        let dir = std::env::temp_dir().join(format!("yunying-reencode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |input: &[u8], opt: &str, name: &str| -> Vec<u8> {
            let src = dir.join(format!("{name}.in.dcm"));
            let dst = dir.join(format!("{name}.out.dcm"));
            std::fs::write(&src, input).unwrap();
            let st = std::process::Command::new("dcmconv").arg(opt).arg(&src).arg(&dst).status().unwrap();
            assert!(st.success(), "dcmconv {opt} failed");
            std::fs::read(&dst).unwrap()
        };
        let data_set = |file: &[u8]| -> (String, Vec<u8>) {
            let obj = parse_part10(&mut Cursor::new(file), file.len() as u64, &ParseOptions::default()).unwrap();
            (obj.transfer_syntax().to_string(), file[obj.dataset_offset as usize..].to_vec())
        };
        for (from, opt, to) in [(EX, "+ti", IM), (IM, "+te", EX), (BE, "+te", EX), (BE, "+ti", IM), (DF, "+te", EX)] {
            let mut file = crate::write::file_meta("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5.6", from, None);
            file.extend_from_slice(&sample().to_bytes(from));
            let (theirs_ts, theirs) = data_set(&run(&file, opt, &format!("{}-{}", from, to)));
            assert_eq!(theirs_ts, to);
            let (_, ours_in) = data_set(&file);
            let ours = reencode_dataset(&ours_in, from, to).unwrap();
            let (a, b) = (flat(&ours, to), flat(&theirs, to));
            if to == EX {
                // Pixel data: DCMTK may choose OB/OW by Bits Allocated; compare the rest with VRs.
                let strip = |f: &Flat| f.iter().filter(|x| x.0 != "7FE00010").cloned().collect::<Flat>();
                assert_eq!(strip(&a), strip(&b), "{from} -> {to}");
            }
            assert_eq!(without_vr(&a), without_vr(&b), "{from} -> {to}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
