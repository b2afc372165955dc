//! DICOM JSON (PS3.18 Annex F) back to a binary data set: the encoder behind
//! C-FIND responses and anything else that holds attributes as JSON and must
//! put them on the wire. The reverse of [`crate::json::to_json`].
//!
//! What it writes:
//! - little endian only, implicit or explicit VR; elements in tag order
//!   (each item sorted on its own);
//! - group lengths (gggg,0000), file meta elements (0002,xxxx) and
//!   delimitation tags (FFFE,xxxx) of the object are not written;
//! - elements with a `BulkDataURI` are skipped (their value is elsewhere);
//!   elements with neither `Value` nor `InlineBinary` (or an empty `Value`)
//!   are written with a zero-length value: C-FIND returns the requested
//!   keys that way;
//! - text as UTF-8, padded to even length with a space (UI with NUL),
//!   several values joined with `\`, `null` values as empty values;
//!   PN from `{"Alphabetic","Ideographic","Phonetic"}` objects (or plain
//!   strings) joined with `=`;
//! - IS and DS from JSON numbers or strings; a DS number is written in the
//!   shortest form that reads back as the same double, or failing that the
//!   most precise form within the 16 characters DS allows;
//! - US SS UL SL SV UV FL FD AT in binary (numbers; also numeric strings,
//!   which is how [`crate::json`] writes 64-bit values beyond 2^53; `null` in
//!   FL/FD is NaN); binary VRs from base64 `InlineBinary`, NUL-padded;
//! - sequences and items with **defined lengths** (the encoder holds the
//!   whole item, so lengths are known; defined lengths are what every reader
//!   handles);
//! - character set: when any string anywhere in the object is not ASCII,
//!   (0008,0005) Specific Character Set is written as `ISO_IR 192` (UTF-8) at
//!   the top level, replacing whatever the object said, and any item-level
//!   (0008,0005) also becomes `ISO_IR 192`. When everything is ASCII the
//!   object's own (0008,0005), if any, is kept as given: ASCII is valid in
//!   every character set, and a C-FIND response should echo the requester's.
//!
//! A missing `"vr"` falls back to the dictionary VR. Malformed values (a
//! string where a number belongs, a number out of range, a value too long
//! for a 16-bit length) are errors naming the tag, never panics.

use std::str::FromStr;

use base64::Engine;
use dicom_core::{Tag, VR};
use serde_json::{Map, Value};

use crate::dict;
use crate::parse::TagDisplay;
use crate::ts::Encoding;
use crate::write::{header, long_length, pad, put_tag, put_u32};

const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);
const ITEM: Tag = Tag(0xFFFE, 0xE000);
/// Deepest sequence nesting accepted (a hand-built `Map` has no serde limit).
const MAX_DEPTH: u32 = 64;

/// Why a DICOM JSON object cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum JsonDatasetError {
    #[error("{0:?} is not a DICOM JSON attribute key (eight hex digits)")]
    BadKey(String),
    #[error("attribute {0} is not a JSON object")]
    NotAnObject(TagDisplay),
    #[error("attribute {tag} has an unknown VR {vr:?}")]
    BadVr { tag: TagDisplay, vr: String },
    #[error("attribute {tag} ({vr}): {reason}")]
    BadValue { tag: TagDisplay, vr: &'static str, reason: String },
    #[error("attribute {tag} ({vr}) is {len} bytes long, more than its length field holds")]
    ValueTooLong { tag: TagDisplay, vr: &'static str, len: usize },
    #[error("sequences nest deeper than {0} levels")]
    TooDeep(u32),
}

/// Encodes a DICOM JSON object as a binary data set in little endian,
/// explicit VR when `explicit_vr`, implicit VR otherwise. See the module
/// documentation for the rules (defined-length sequences; `ISO_IR 192` when
/// any text is not ASCII; `BulkDataURI` elements skipped).
pub fn encode_json_dataset(obj: &Map<String, Value>, explicit_vr: bool) -> Result<Vec<u8>, JsonDatasetError> {
    let enc = if explicit_vr { Encoding::EXPLICIT_LE } else { Encoding::IMPLICIT_LE };
    let utf8 = object_has_non_ascii(obj, 0);
    let mut out = Vec::new();
    encode_item(obj, enc, utf8, 0, &mut out)?;
    Ok(out)
}

/// True when any string in the object (keys aside) is not ASCII.
fn object_has_non_ascii(obj: &Map<String, Value>, depth: u32) -> bool {
    obj.values().any(|v| value_has_non_ascii(v, depth))
}

fn value_has_non_ascii(v: &Value, depth: u32) -> bool {
    if depth > MAX_DEPTH * 4 {
        return false; // the encoder reports TooDeep
    }
    match v {
        Value::String(s) => !s.is_ascii(),
        Value::Array(a) => a.iter().any(|x| value_has_non_ascii(x, depth + 1)),
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| k.as_str() != "InlineBinary" && k.as_str() != "BulkDataURI")
            .any(|(_, x)| value_has_non_ascii(x, depth + 1)),
        _ => false,
    }
}

fn parse_key(key: &str) -> Result<Tag, JsonDatasetError> {
    if key.len() != 8 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(JsonDatasetError::BadKey(key.to_string()));
    }
    let g = u16::from_str_radix(&key[0..4], 16).map_err(|_| JsonDatasetError::BadKey(key.to_string()))?;
    let e = u16::from_str_radix(&key[4..8], 16).map_err(|_| JsonDatasetError::BadKey(key.to_string()))?;
    Ok(Tag(g, e))
}

/// Encodes the elements of one data set (the top level or an item).
fn encode_item(
    obj: &Map<String, Value>,
    enc: Encoding,
    utf8: bool,
    depth: u32,
    out: &mut Vec<u8>,
) -> Result<(), JsonDatasetError> {
    if depth > MAX_DEPTH {
        return Err(JsonDatasetError::TooDeep(MAX_DEPTH));
    }
    let mut elements = Vec::with_capacity(obj.len() + 1);
    for (key, v) in obj {
        let tag = parse_key(key)?;
        if tag.1 == 0x0000 || tag.0 == 0x0002 || tag.0 == 0xFFFE {
            continue;
        }
        elements.push((tag, v));
    }
    let charset_value = Value::Object(Map::from_iter([
        ("vr".to_string(), Value::String("CS".into())),
        ("Value".to_string(), Value::Array(vec![Value::String("ISO_IR 192".into())])),
    ]));
    if utf8 {
        let declared = elements.iter().position(|(t, _)| *t == SPECIFIC_CHARACTER_SET);
        match declared {
            Some(i) => elements[i].1 = &charset_value,
            // Items inherit the top-level declaration.
            None if depth == 0 => elements.push((SPECIFIC_CHARACTER_SET, &charset_value)),
            None => {}
        }
    }
    elements.sort_by_key(|(t, _)| (t.0, t.1));
    for (tag, v) in elements {
        encode_element(tag, v, enc, utf8, depth, out)?;
    }
    Ok(())
}

fn encode_element(
    tag: Tag,
    v: &Value,
    enc: Encoding,
    utf8: bool,
    depth: u32,
    out: &mut Vec<u8>,
) -> Result<(), JsonDatasetError> {
    let Value::Object(attr) = v else {
        return Err(JsonDatasetError::NotAnObject(TagDisplay(tag)));
    };
    if attr.contains_key("BulkDataURI") {
        return Ok(());
    }
    let vr = match attr.get("vr") {
        Some(Value::String(s)) => {
            VR::from_str(s).map_err(|_| JsonDatasetError::BadVr { tag: TagDisplay(tag), vr: s.clone() })?
        }
        Some(other) => {
            return Err(JsonDatasetError::BadVr { tag: TagDisplay(tag), vr: other.to_string() });
        }
        None => dict::vr_of(tag),
    };
    let bad = |reason: String| JsonDatasetError::BadValue { tag: TagDisplay(tag), vr: vr.to_string(), reason };

    let value: Vec<u8> = if vr == VR::SQ {
        if attr.contains_key("InlineBinary") {
            return Err(bad("a sequence cannot have InlineBinary".into()));
        }
        let mut content = Vec::new();
        for item in value_array(attr).map_err(bad)? {
            let Value::Object(item) = item else {
                return Err(bad("a sequence item is not a JSON object".into()));
            };
            let mut body = Vec::new();
            encode_item(item, enc, utf8, depth + 1, &mut body)?;
            put_tag(&mut content, ITEM, false);
            put_u32(&mut content, length_of(tag, vr, body.len(), false)?, false);
            content.extend_from_slice(&body);
        }
        content
    } else if is_binary(vr) {
        if attr.contains_key("Value") {
            return Err(bad("binary values are given as InlineBinary or BulkDataURI, not Value".into()));
        }
        match attr.get("InlineBinary") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(b64)) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64.trim()))
                    .map_err(|e| bad(format!("InlineBinary is not base64: {e}")))?;
                pad(raw, 0)
            }
            Some(_) => return Err(bad("InlineBinary is not a string".into())),
        }
    } else {
        if attr.contains_key("InlineBinary") {
            return Err(bad("InlineBinary is only for OB, OD, OF, OL, OV, OW and UN".into()));
        }
        encode_values(vr, value_array(attr).map_err(bad)?).map_err(bad)?
    };

    let len = length_of(tag, vr, value.len(), enc.explicit_vr && !long_length(vr))?;
    header(out, tag, vr, len, enc);
    out.extend_from_slice(&value);
    Ok(())
}

/// The `Value` array (empty when absent or `null`).
fn value_array(attr: &Map<String, Value>) -> Result<&[Value], String> {
    match attr.get("Value") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err("Value is not an array".into()),
    }
}

/// A value length as the header holds it: 16 bits for the short explicit-VR
/// headers, else 32 bits short of the undefined-length marker.
fn length_of(tag: Tag, vr: VR, len: usize, short: bool) -> Result<u32, JsonDatasetError> {
    let max = if short { 0xFFFF } else { 0xFFFF_FFFE };
    if len > max {
        return Err(JsonDatasetError::ValueTooLong { tag: TagDisplay(tag), vr: vr.to_string(), len });
    }
    Ok(len as u32)
}

fn is_binary(vr: VR) -> bool {
    matches!(vr, VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN)
}

/// The value bytes of a non-sequence, non-binary element, padded to even length.
fn encode_values(vr: VR, values: &[Value]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match vr {
        VR::US => {
            for v in values {
                out.extend_from_slice(&(int_in(v, 0, u16::MAX as i128)? as u16).to_le_bytes());
            }
        }
        VR::SS => {
            for v in values {
                out.extend_from_slice(&(int_in(v, i16::MIN as i128, i16::MAX as i128)? as i16).to_le_bytes());
            }
        }
        VR::UL => {
            for v in values {
                out.extend_from_slice(&(int_in(v, 0, u32::MAX as i128)? as u32).to_le_bytes());
            }
        }
        VR::SL => {
            for v in values {
                out.extend_from_slice(&(int_in(v, i32::MIN as i128, i32::MAX as i128)? as i32).to_le_bytes());
            }
        }
        VR::SV => {
            for v in values {
                out.extend_from_slice(&(int_in(v, i64::MIN as i128, i64::MAX as i128)? as i64).to_le_bytes());
            }
        }
        VR::UV => {
            for v in values {
                out.extend_from_slice(&(int_in(v, 0, u64::MAX as i128)? as u64).to_le_bytes());
            }
        }
        VR::FL => {
            for v in values {
                out.extend_from_slice(&(float_of(v)? as f32).to_le_bytes());
            }
        }
        VR::FD => {
            for v in values {
                out.extend_from_slice(&float_of(v)?.to_le_bytes());
            }
        }
        VR::AT => {
            for v in values {
                let tag = match v {
                    Value::String(s) => parse_key(s.trim()).map_err(|_| format!("{s:?} is not a tag (GGGGEEEE)"))?,
                    other => return Err(format!("{other} is not a tag (GGGGEEEE)")),
                };
                out.extend_from_slice(&tag.0.to_le_bytes());
                out.extend_from_slice(&tag.1.to_le_bytes());
            }
        }
        _ => {
            let mut parts = Vec::with_capacity(values.len());
            for v in values {
                parts.push(text_of(vr, v)?);
            }
            // A single empty value is a zero-length value.
            if !(parts.len() == 1 && parts[0].is_empty()) {
                out = parts.join("\\").into_bytes();
            }
            return Ok(pad(out, if vr == VR::UI { 0 } else { b' ' }));
        }
    }
    Ok(out)
}

/// An integer value within `[min, max]`, from a JSON number (integral) or a
/// numeric string.
fn int_in(v: &Value, min: i128, max: i128) -> Result<i128, String> {
    let x: Option<i128> = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i as i128)
            } else if let Some(u) = n.as_u64() {
                Some(u as i128)
            } else {
                n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e38).map(|f| f as i128)
            }
        }
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i128>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && f.abs() < 1e38).map(|f| f as i128))
        }
        _ => None,
    };
    match x {
        Some(x) if (min..=max).contains(&x) => Ok(x),
        Some(x) => Err(format!("{x} is out of range")),
        None => Err(format!("{v} is not an integer")),
    }
}

/// A floating-point value; `null` (how JSON writes NaN and infinities) is NaN.
fn float_of(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Value::Null => Ok(f64::NAN),
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| format!("{s:?} is not a number")),
        other => Err(format!("{other} is not a number")),
    }
}

/// One value of a string VR as text.
fn text_of(vr: VR, v: &Value) -> Result<String, String> {
    match (vr, v) {
        (_, Value::Null) => Ok(String::new()),
        (VR::PN, Value::Object(groups)) => person_name(groups),
        (VR::IS, Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(i.to_string())
            } else if let Some(u) = n.as_u64() {
                Ok(u.to_string())
            } else {
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok((f as i64).to_string()),
                    _ => Err(format!("{n} is not an integer")),
                }
            }
        }
        (VR::DS, Value::Number(n)) => {
            if let Some(i) = n.as_i64().map(|i| i.to_string()).or_else(|| n.as_u64().map(|u| u.to_string()))
                && i.len() <= 16
            {
                return Ok(i);
            }
            let f = n.as_f64().ok_or_else(|| format!("{n} is not a number"))?;
            format_ds(f).ok_or_else(|| format!("{n} cannot be written as a decimal string"))
        }
        (VR::DS, Value::String(s)) => {
            let t = s.trim();
            if t.len() > 16
                && let Ok(f) = t.parse::<f64>()
                && let Some(short) = format_ds(f)
            {
                return Ok(short);
            }
            Ok(t.to_string())
        }
        (VR::LT | VR::ST | VR::UT, Value::String(s)) => Ok(s.trim_end().to_string()),
        (_, Value::String(s)) => Ok(s.trim().to_string()),
        (_, Value::Number(n)) => Ok(n.to_string()),
        (_, other) => Err(format!("{other} is not a string")),
    }
}

/// A PN value from its JSON object: the component groups joined with `=`,
/// trailing empty groups dropped.
fn person_name(groups: &Map<String, Value>) -> Result<String, String> {
    let mut parts = Vec::with_capacity(3);
    for name in ["Alphabetic", "Ideographic", "Phonetic"] {
        match groups.get(name) {
            None | Some(Value::Null) => parts.push(String::new()),
            Some(Value::String(s)) => parts.push(s.trim().to_string()),
            Some(other) => return Err(format!("PN {name} is {other}, not a string")),
        }
    }
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    Ok(parts.join("="))
}

/// A DS value (at most 16 characters) for `f`: the shortest of the plain and
/// exponent forms that read back as `f`, or, when neither fits, the most
/// precise rounding that does. `None` for NaN and infinities.
pub fn format_ds(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let shortest = |a: String, b: String| if b.len() < a.len() { b } else { a };
    let exact = shortest(format!("{f}"), format!("{f:e}"));
    if exact.len() <= 16 {
        return Some(exact);
    }
    for digits in (1..=17usize).rev() {
        let e = format!("{f:.*e}", digits - 1);
        let rounded: f64 = e.parse().ok()?;
        let candidate = shortest(format!("{rounded}"), format!("{rounded:e}"));
        if candidate.len() <= 16 {
            return Some(candidate);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charset::CharacterSet;
    use crate::json::{JsonOptions, to_json};
    use crate::parse::{DataSet, ParseOptions, Value as PValue, parse_dataset, parse_part10};
    use crate::write::{DataSetBuilder, ObjectBuilder};
    use crate::{tags, ts};
    use serde_json::json;
    use std::io::Cursor;

    fn parse_ds(bytes: &[u8], explicit: bool) -> DataSet {
        let ts = if explicit { ts::EXPLICIT_VR_LE } else { ts::IMPLICIT_VR_LE };
        parse_dataset(&mut Cursor::new(bytes), bytes.len() as u64, ts, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("re-parse ({ts}): {e}"))
    }

    fn json_of(ds: &DataSet) -> Map<String, Value> {
        let cs = CharacterSet::from_specific_character_set(ds.bytes(SPECIFIC_CHARACTER_SET), encoding_rs::GB18030);
        let uri = |p: &str| format!("bulk/{p}");
        to_json(
            ds,
            &JsonOptions { charset: &cs, big_endian: false, inline_binary_limit: 1 << 20, bulk_uri: Some(&uri) },
        )
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn round_trip_through_json() {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5", ts::EXPLICIT_VR_LE);
        b.charset("GB18030");
        b.str(Tag(0x0010, 0x0010), VR::PN, "Zhang^San=张^三");
        b.str(Tag(0x0010, 0x0020), VR::LO, "P001");
        b.str(Tag(0x0008, 0x0008), VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
        b.str(Tag(0x0008, 0x0020), VR::DA, "20240102");
        b.str(Tag(0x0008, 0x0050), VR::SH, ""); // empty AccessionNumber
        b.str(Tag(0x0008, 0x1030), VR::LO, "胸部 CT");
        b.str(Tag(0x0020, 0x0013), VR::IS, "7");
        b.str(Tag(0x0018, 0x0050), VR::DS, "0.625");
        b.str(Tag(0x0028, 0x0030), VR::DS, "0.488281\\0.488281");
        b.str(Tag(0x0020, 0x0032), VR::DS, "-125\\-125.5\\1e-5");
        b.u16(Tag(0x0028, 0x0010), 512);
        b.bytes(tags::TAG_ANGLE_SECOND_AXIS, VR::SS, (-2000i16).to_le_bytes().to_vec());
        b.bytes(tags::REFERENCE_PIXEL_X0, VR::SL, (-70000i32).to_le_bytes().to_vec());
        b.dataset.u32(tags::NUMBER_OF_WAVEFORM_SAMPLES, 123456);
        b.dataset.f64s(tags::TIME_RANGE, &[1000.5, -0.25]);
        b.bytes(tags::EXAMINED_BODY_THICKNESS, VR::FL, 2.5f32.to_le_bytes().to_vec());
        b.bytes(Tag(0x0020, 0x9165), VR::AT, vec![0x20, 0x00, 0x57, 0x90]);
        b.bytes(Tag(0x0009, 0x0010), VR::LO, b"YUNYING ".to_vec());
        b.bytes(Tag(0x0009, 0x1001), VR::OB, vec![1, 2, 3, 4]);
        b.bytes(Tag(0x0010, 0x1010), VR::AS, Vec::new()); // empty PatientAge
        let mut item = DataSetBuilder::new();
        item.str(Tag(0x0008, 0x0100), VR::SH, "T-D1100");
        item.bytes(Tag(0x0008, 0x0104), VR::LO, encoding_rs::GB18030.encode("头部").0.into_owned());
        let mut inner = DataSetBuilder::new();
        inner.u16(Tag(0x0028, 0x0002), 1);
        item.sequence(Tag(0x0040, 0xA170), vec![inner]);
        b.dataset.sequence(Tag(0x0008, 0x2218), vec![item, DataSetBuilder::new()]);
        b.dataset.sequence(Tag(0x0008, 0x1140), vec![]); // empty sequence
        b.pixel_data_native(vec![1, 0, 2, 0], VR::OW);
        let bytes = b.to_bytes();
        let original =
            parse_part10(&mut Cursor::new(&bytes), bytes.len() as u64, &ParseOptions::default()).unwrap().dataset;
        let j = json_of(&original);

        for explicit in [true, false] {
            let encoded = encode_json_dataset(&j, explicit).unwrap();
            let again = parse_ds(&encoded, explicit);
            let j2 = json_of(&again);
            // Everything but the bulk pixel data, which the encoder skips.
            let mut expected = j.clone();
            expected.remove("7FE00010");
            let mut j2 = j2;
            if !explicit {
                // A private element reads back as UN without its VR.
                assert_eq!(j2["00091001"]["vr"], "UN");
                j2.remove("00091001");
                expected.remove("00091001");
            }
            assert_eq!(Value::Object(j2), Value::Object(expected), "explicit={explicit}");
            assert!(again.get(Tag(0x7FE0, 0x0010)).is_none());

            // Bytes on the wire.
            assert_eq!(again.bytes(SPECIFIC_CHARACTER_SET), Some(&b"ISO_IR 192"[..]));
            assert_eq!(again.bytes(Tag(0x0010, 0x0010)), Some("Zhang^San=张^三 ".as_bytes()));
            assert_eq!(again.bytes(Tag(0x0008, 0x0018)), Some(&b"1.2.3.4.5\0"[..]));
            assert_eq!(again.bytes(Tag(0x0008, 0x0050)), Some(&b""[..]));
            assert_eq!(again.bytes(Tag(0x0010, 0x1010)), Some(&b""[..]));
            assert_eq!(again.bytes(Tag(0x0028, 0x0010)), Some(&512u16.to_le_bytes()[..]));
            assert_eq!(again.bytes(tags::REFERENCE_PIXEL_X0), Some(&(-70000i32).to_le_bytes()[..]));
            assert_eq!(again.bytes(Tag(0x0020, 0x9165)), Some(&[0x20, 0x00, 0x57, 0x90][..]));
            assert_eq!(again.bytes(Tag(0x0009, 0x1001)), Some(&[1, 2, 3, 4][..]));
            assert_eq!(again.items(Tag(0x0008, 0x2218)).unwrap().len(), 2);
            assert_eq!(again.items(Tag(0x0008, 0x1140)).unwrap().len(), 0);
            if explicit {
                // Defined-length sequence: SQ, reserved, length != 0xFFFFFFFF.
                let at = encoded.windows(6).position(|w| w == [0x08, 0x00, 0x18, 0x22, b'S', b'Q']).unwrap();
                assert_ne!(&encoded[at + 8..at + 12], &[0xFF; 4]);
            }
            // Elements in tag order, every value of even length.
            let tags: Vec<_> = again.elements.iter().map(|e| (e.tag.0, e.tag.1)).collect();
            let mut sorted = tags.clone();
            sorted.sort();
            assert_eq!(tags, sorted);
            for e in &again.elements {
                if let PValue::Inline(v) = &e.value {
                    assert_eq!(v.len() % 2, 0, "{:?}", e.tag);
                }
            }
        }
    }

    #[test]
    fn c_find_style_keys() {
        // A C-FIND response: matched values plus requested keys left empty.
        let j = obj(json!({
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Li^Si", "Ideographic": "李^四"}]},
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
            "00080061": {"vr": "CS", "Value": ["CT", "MR"]},
            "00201206": {"vr": "IS", "Value": [3]},
            "00080020": {"vr": "DA"},
            "00100030": {"vr": "DA", "Value": []},
            "00100040": {"vr": "CS", "Value": [null]},
            "00080052": {"vr": "AE", "Value": ["STUDY"]},
            "00080005": {"vr": "CS", "Value": ["GB18030"]},
            "7FE00010": {"vr": "OW", "BulkDataURI": "http://x/bulk"},
        }));
        let bytes = encode_json_dataset(&j, false).unwrap();
        let ds = parse_ds(&bytes, false);
        assert_eq!(ds.bytes(SPECIFIC_CHARACTER_SET), Some(&b"ISO_IR 192"[..]));
        assert_eq!(ds.bytes(Tag(0x0010, 0x0010)), Some("Li^Si=李^四 ".as_bytes()));
        assert_eq!(ds.bytes(Tag(0x0008, 0x0061)), Some(&b"CT\\MR "[..]));
        assert_eq!(ds.bytes(Tag(0x0020, 0x1206)), Some(&b"3 "[..]));
        assert_eq!(ds.bytes(Tag(0x0008, 0x0020)), Some(&b""[..]));
        assert_eq!(ds.bytes(Tag(0x0010, 0x0030)), Some(&b""[..]));
        assert_eq!(ds.bytes(Tag(0x0010, 0x0040)), Some(&b""[..]));
        assert_eq!(ds.bytes(Tag(0x0008, 0x0052)), Some(&b"STUDY "[..]));
        assert!(ds.get(Tag(0x7FE0, 0x0010)).is_none());
        // Implicit VR: tag, 4-byte length, value; first element is (0008,0005).
        assert_eq!(&bytes[..8], &[0x08, 0x00, 0x05, 0x00, 10, 0, 0, 0]);

        // All ASCII: the object's own character set is kept, none is added.
        let ascii = obj(json!({
            "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
        }));
        let ds = parse_ds(&encode_json_dataset(&ascii, true).unwrap(), true);
        assert_eq!(ds.bytes(SPECIFIC_CHARACTER_SET), Some(&b"ISO_IR 100"[..]));
        let none = obj(json!({"00100010": {"vr": "PN", "Value": ["Doe^John"]}}));
        let ds = parse_ds(&encode_json_dataset(&none, true).unwrap(), true);
        assert!(ds.get(SPECIFIC_CHARACTER_SET).is_none());
        assert_eq!(ds.bytes(Tag(0x0010, 0x0010)), Some(&b"Doe^John"[..]));
    }

    #[test]
    fn numbers_and_ds_formatting() {
        assert_eq!(format_ds(0.625).as_deref(), Some("0.625"));
        assert_eq!(format_ds(-125.0).as_deref(), Some("-125"));
        assert_eq!(format_ds(1e-10).as_deref(), Some("1e-10"));
        assert_eq!(format_ds(1e300).as_deref(), Some("1e300"));
        let third = format_ds(1.0 / 3.0).unwrap();
        assert!(third.len() <= 16 && (third.parse::<f64>().unwrap() - 1.0 / 3.0).abs() < 1e-14, "{third}");
        let big = format_ds(-1.234_567_891_234_567e-192).unwrap();
        assert!(big.len() <= 16, "{big}");
        assert!((big.parse::<f64>().unwrap() / -1.234_567_891_234_567e-192 - 1.0).abs() < 1e-9, "{big}");
        assert_eq!(format_ds(f64::NAN), None);

        let j = obj(json!({
            "00180050": {"vr": "DS", "Value": [0.1, 3, "  2.50 ", 0.30000000000000004]},
            "00280010": {"vr": "US", "Value": [512, "256"]},
            "00280106": {"vr": "SS", "Value": [-1]},
            "00189219": {"vr": "UV", "Value": ["18446744073709551615"]},
            "00189087": {"vr": "FD", "Value": [1.5, null]},
        }));
        let ds = parse_ds(&encode_json_dataset(&j, true).unwrap(), true);
        let ds_text = String::from_utf8(ds.bytes(Tag(0x0018, 0x0050)).unwrap().to_vec()).unwrap();
        let vals: Vec<&str> = ds_text.trim_end().split('\\').collect();
        assert_eq!(vals[..3], ["0.1", "3", "2.50"]);
        assert!(vals[3].len() <= 16);
        assert_eq!(ds.bytes(Tag(0x0028, 0x0010)), Some(&[0x00, 0x02, 0x00, 0x01][..]));
        assert_eq!(ds.bytes(Tag(0x0028, 0x0106)), Some(&[0xFF, 0xFF][..]));
        assert_eq!(ds.bytes(Tag(0x0018, 0x9219)), Some(&[0xFF; 8][..]));
        let fd = ds.bytes(Tag(0x0018, 0x9087)).unwrap();
        assert_eq!(f64::from_le_bytes(fd[..8].try_into().unwrap()), 1.5);
        assert!(f64::from_le_bytes(fd[8..].try_into().unwrap()).is_nan());
    }

    #[test]
    fn malformed_objects_are_errors() {
        let cases = [
            json!({"0010001": {"vr": "PN"}}),
            json!({"0010001G": {"vr": "PN"}}),
            json!({"00100010": "Doe"}),
            json!({"00100010": {"vr": "XX"}}),
            json!({"00280010": {"vr": "US", "Value": [70000]}}),
            json!({"00280010": {"vr": "US", "Value": ["abc"]}}),
            json!({"00280010": {"vr": "US", "Value": [1.5]}}),
            json!({"00200013": {"vr": "IS", "Value": [1.5]}}),
            json!({"00200013": {"vr": "IS", "Value": [true]}}),
            json!({"00091001": {"vr": "OB", "Value": [1]}}),
            json!({"00091001": {"vr": "OB", "InlineBinary": "***"}}),
            json!({"00100010": {"vr": "PN", "InlineBinary": "AAAA"}}),
            json!({"00082218": {"vr": "SQ", "Value": ["x"]}}),
            json!({"00082218": {"vr": "SQ", "Value": [{"00280010": {"vr": "US", "Value": [-1]}}]}}),
            json!({"00209165": {"vr": "AT", "Value": ["0020"]}}),
            json!({"00081030": {"vr": "LO", "Value": ["x".repeat(70000)]}}),
        ];
        for c in cases {
            assert!(encode_json_dataset(&obj(c.clone()), true).is_err(), "{c}");
        }
        // A 16-bit length is not a limit in implicit VR.
        let long = obj(json!({"00081030": {"vr": "LO", "Value": ["x".repeat(70000)]}}));
        assert_eq!(encode_json_dataset(&long, false).unwrap().len(), 8 + 70000);
        // Nesting is bounded.
        let mut deep = json!({"00100010": {"vr": "PN", "Value": ["X"]}});
        for _ in 0..100 {
            deep = json!({"00082218": {"vr": "SQ", "Value": [deep]}});
        }
        assert!(matches!(encode_json_dataset(&obj(deep), true), Err(JsonDatasetError::TooDeep(_))));
    }

    #[test]
    fn inline_binary_and_missing_vr() {
        let j = obj(json!({
            "00091001": {"vr": "OB", "InlineBinary": "AQID"},
            "00280010": {"Value": [64]},
            "00080016": {"Value": ["1.2.3"]},
        }));
        let bytes = encode_json_dataset(&j, true).unwrap();
        let ds = parse_ds(&bytes, true);
        assert_eq!(ds.bytes(Tag(0x0009, 0x1001)), Some(&[1, 2, 3, 0][..]));
        assert_eq!(ds.get(Tag(0x0028, 0x0010)).unwrap().vr, VR::US);
        assert_eq!(ds.get(Tag(0x0008, 0x0016)).unwrap().vr, VR::UI);
        assert_eq!(ds.bytes(Tag(0x0008, 0x0016)), Some(&b"1.2.3\0"[..]));
    }
}
