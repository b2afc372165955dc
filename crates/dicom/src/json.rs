//! The DICOM JSON model (PS3.18 Annex F), written from our parsed data sets.
//!
//! Unlike dicom-json 0.10, large binary values and pixel data become
//! `BulkDataURI`s (built by a caller-supplied function from the value's path),
//! and values the parser left in place are never read. Text is decoded with
//! the data set's Specific Character Set, so GB18030 names come out as Unicode;
//! the output therefore declares `ISO_IR 192` as its character set.

use base64::Engine;
use dicom_core::{Tag, VR};
use serde_json::{Map, Value as Json, json};

use crate::charset::{CharacterSet, vr_uses_charset};
use crate::dict::tag_key;
use crate::parse::{DataSet, Element, Value};

const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);

/// How to write JSON.
pub struct JsonOptions<'a> {
    /// Character set of the top-level data set (items may override it).
    pub charset: &'a CharacterSet,
    /// True when numeric values are big endian (Explicit VR Big Endian).
    pub big_endian: bool,
    /// Inline binary values at most this long are written as `InlineBinary`.
    pub inline_binary_limit: usize,
    /// Builds the `BulkDataURI` of a value from its path (see [`bulk_path`]);
    /// `None` omits bulk values (as QIDO-RS does).
    pub bulk_uri: Option<&'a dyn Fn(&str) -> String>,
}

/// The path of a value inside a data set, as used in bulk data URIs:
/// the tag, preceded by `SEQTAG/ITEM/` for each enclosing sequence item.
pub fn bulk_path(parents: &[(Tag, usize)], tag: Tag) -> String {
    let mut s = String::new();
    for (t, i) in parents {
        s.push_str(&tag_key(*t));
        s.push('/');
        s.push_str(&i.to_string());
        s.push('/');
    }
    s.push_str(&tag_key(tag));
    s
}

/// Serializes a data set to a DICOM JSON object.
pub fn to_json(ds: &DataSet, opts: &JsonOptions<'_>) -> Map<String, Json> {
    let mut parents = Vec::new();
    let mut map = write_dataset(ds, opts, opts.charset, &mut parents);
    // The JSON holds Unicode whatever the object declared (or failed to
    // declare): say so, for clients that turn it back into DICOM.
    map.insert(tag_key(SPECIFIC_CHARACTER_SET), json!({"vr": "CS", "Value": ["ISO_IR 192"]}));
    map
}

fn write_dataset(
    ds: &DataSet,
    opts: &JsonOptions<'_>,
    inherited: &CharacterSet,
    parents: &mut Vec<(Tag, usize)>,
) -> Map<String, Json> {
    // An item may declare its own character set.
    let own;
    let charset = match ds.bytes(SPECIFIC_CHARACTER_SET) {
        Some(raw) if !parents.is_empty() => {
            own = CharacterSet::from_specific_character_set(Some(raw), encoding_rs::GB18030);
            &own
        }
        _ => inherited,
    };
    let mut map = Map::new();
    for el in &ds.elements {
        if el.tag.1 == 0x0000 || el.tag.0 == 0x0002 || el.tag.0 == 0xFFFE {
            continue; // group lengths, file meta, delimiters
        }
        if el.tag == SPECIFIC_CHARACTER_SET {
            map.insert(tag_key(el.tag), json!({"vr": "CS", "Value": ["ISO_IR 192"]}));
            continue;
        }
        if let Some(v) = write_element(el, opts, charset, parents) {
            map.insert(tag_key(el.tag), v);
        }
    }
    map
}

fn is_pixel_data(tag: Tag) -> bool {
    tag.0 == 0x7FE0 && matches!(tag.1, 0x0008 | 0x0009 | 0x0010)
}

fn write_element(
    el: &Element,
    opts: &JsonOptions<'_>,
    charset: &CharacterSet,
    parents: &mut Vec<(Tag, usize)>,
) -> Option<Json> {
    let vr = el.vr;
    let mut obj = Map::new();
    obj.insert("vr".into(), Json::String(vr.to_string().into()));
    let bulk = |obj: &mut Map<String, Json>| -> bool {
        match opts.bulk_uri {
            Some(f) => {
                obj.insert("BulkDataURI".into(), Json::String(f(&bulk_path(parents, el.tag))));
                true
            }
            None => false,
        }
    };
    match &el.value {
        Value::Sequence(items) => {
            let mut arr = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                parents.push((el.tag, i));
                arr.push(Json::Object(write_dataset(item, opts, charset, parents)));
                parents.pop();
            }
            if !arr.is_empty() {
                obj.insert("Value".into(), Json::Array(arr));
            }
        }
        Value::Fragments { .. } | Value::Bulk { .. } => {
            bulk(&mut obj);
        }
        Value::Inline(bytes) => {
            if is_pixel_data(el.tag) {
                bulk(&mut obj);
            } else if is_binary_vr(vr) {
                if bytes.len() > opts.inline_binary_limit {
                    bulk(&mut obj);
                } else if !bytes.is_empty() {
                    let le = to_little_endian(vr, bytes, opts.big_endian);
                    obj.insert(
                        "InlineBinary".into(),
                        Json::String(base64::engine::general_purpose::STANDARD.encode(le)),
                    );
                }
            } else if let Some(values) = decode_values(vr, bytes, charset, opts.big_endian)
                && !values.is_empty()
            {
                obj.insert("Value".into(), Json::Array(values));
            }
        }
    }
    Some(Json::Object(obj))
}

fn is_binary_vr(vr: VR) -> bool {
    matches!(vr, VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN)
}

fn to_little_endian(vr: VR, bytes: &[u8], big_endian: bool) -> Vec<u8> {
    let width = match vr {
        VR::OW => 2,
        VR::OF | VR::OL => 4,
        VR::OD | VR::OV => 8,
        _ => 1,
    };
    if !big_endian || width == 1 {
        return bytes.to_vec();
    }
    let mut out = bytes.to_vec();
    for c in out.chunks_exact_mut(width) {
        c.reverse();
    }
    out
}

/// Decodes the values of a non-binary, non-sequence element to JSON values.
pub fn decode_values(vr: VR, bytes: &[u8], charset: &CharacterSet, be: bool) -> Option<Vec<Json>> {
    macro_rules! nums {
        ($t:ty, $n:expr) => {{
            let v: Vec<Json> = bytes
                .chunks_exact($n)
                .map(|c| {
                    let a: [u8; $n] = c.try_into().unwrap();
                    let x = if be { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) };
                    json!(x)
                })
                .collect();
            Some(v)
        }};
    }
    match vr {
        VR::US => nums!(u16, 2),
        VR::SS => nums!(i16, 2),
        VR::UL => nums!(u32, 4),
        VR::SL => nums!(i32, 4),
        VR::FL => Some(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    let a: [u8; 4] = c.try_into().unwrap();
                    let x = if be { f32::from_be_bytes(a) } else { f32::from_le_bytes(a) };
                    float_json(x as f64)
                })
                .collect(),
        ),
        VR::FD => Some(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let a: [u8; 8] = c.try_into().unwrap();
                    let x = if be { f64::from_be_bytes(a) } else { f64::from_le_bytes(a) };
                    float_json(x)
                })
                .collect(),
        ),
        VR::SV => Some(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let a: [u8; 8] = c.try_into().unwrap();
                    let x = if be { i64::from_be_bytes(a) } else { i64::from_le_bytes(a) };
                    if x.unsigned_abs() <= (1u64 << 53) { json!(x) } else { json!(x.to_string()) }
                })
                .collect(),
        ),
        VR::UV => Some(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let a: [u8; 8] = c.try_into().unwrap();
                    let x = if be { u64::from_be_bytes(a) } else { u64::from_le_bytes(a) };
                    if x <= (1u64 << 53) { json!(x) } else { json!(x.to_string()) }
                })
                .collect(),
        ),
        VR::AT => Some(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    let g = if be { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_le_bytes([c[0], c[1]]) };
                    let e = if be { u16::from_be_bytes([c[2], c[3]]) } else { u16::from_le_bytes([c[2], c[3]]) };
                    json!(format!("{g:04X}{e:04X}"))
                })
                .collect(),
        ),
        _ => {
            let text = if vr_uses_charset(vr) {
                charset.decode(bytes)
            } else {
                bytes.iter().map(|&b| b as char).collect::<String>()
            };
            let single = matches!(vr, VR::LT | VR::ST | VR::UT | VR::UR);
            let parts: Vec<&str> = if single { vec![text.as_str()] } else { text.split('\\').collect() };
            if parts.len() == 1 && trim_value(vr, parts[0]).is_empty() {
                return Some(Vec::new());
            }
            Some(parts.into_iter().map(|p| string_json(vr, p)).collect())
        }
    }
}

fn float_json(x: f64) -> Json {
    if x.is_finite() { json!(x) } else { Json::Null }
}

fn trim_value(vr: VR, s: &str) -> &str {
    match vr {
        // Leading spaces are significant in these; trailing padding is not.
        VR::LT | VR::ST | VR::UT => s.trim_end_matches([' ', '\0']),
        VR::UI => s.trim_matches(['\0', ' ']),
        _ => s.trim_matches([' ', '\0']),
    }
}

fn string_json(vr: VR, raw: &str) -> Json {
    let s = trim_value(vr, raw);
    if s.is_empty() {
        return Json::Null;
    }
    match vr {
        VR::IS => match s.parse::<i64>() {
            Ok(i) => json!(i),
            Err(_) => json!(s),
        },
        VR::DS => {
            if let Ok(i) = s.parse::<i64>() {
                json!(i)
            } else {
                match s.parse::<f64>() {
                    Ok(f) if f.is_finite() => json!(f),
                    _ => json!(s),
                }
            }
        }
        VR::PN => person_name_json(s),
        _ => json!(s),
    }
}

/// A PN value as the JSON model writes it: up to three component groups.
pub fn person_name_json(s: &str) -> Json {
    let mut obj = Map::new();
    for (name, group) in ["Alphabetic", "Ideographic", "Phonetic"].iter().zip(s.split('=')) {
        let g = group.trim_end_matches('^').trim();
        if !g.is_empty() {
            obj.insert((*name).to_string(), Json::String(group.trim_end().to_string()));
        }
    }
    Json::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_part10};
    use crate::write::ObjectBuilder;

    #[test]
    fn gb18030_name_comes_out_as_unicode_groups() {
        let mut b = ObjectBuilder::new("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", crate::ts::EXPLICIT_VR_LE);
        b.charset("GB18030");
        b.str(Tag(0x0010, 0x0010), VR::PN, "Zhang^San=张^三");
        b.str(Tag(0x0020, 0x0013), VR::IS, "7");
        b.str(Tag(0x0018, 0x0050), VR::DS, "0.625");
        b.str(Tag(0x0008, 0x0008), VR::CS, "ORIGINAL\\PRIMARY\\AXIAL");
        b.u16(Tag(0x0028, 0x0010), 512);
        b.pixel_data_native(vec![0; 8], VR::OW);
        let bytes = b.to_bytes();
        let obj = parse_part10(&mut std::io::Cursor::new(&bytes), bytes.len() as u64, &ParseOptions::default())
            .unwrap();
        let cs = CharacterSet::from_specific_character_set(
            obj.dataset.bytes(Tag(0x0008, 0x0005)),
            encoding_rs::GB18030,
        );
        let uri = |p: &str| format!("http://x/bulk/{p}");
        let j = to_json(
            &obj.dataset,
            &JsonOptions { charset: &cs, big_endian: false, inline_binary_limit: 1024, bulk_uri: Some(&uri) },
        );
        assert_eq!(j["00100010"]["Value"][0]["Alphabetic"], "Zhang^San");
        assert_eq!(j["00100010"]["Value"][0]["Ideographic"], "张^三");
        assert_eq!(j["00200013"]["Value"][0], 7);
        assert_eq!(j["00180050"]["Value"][0], 0.625);
        assert_eq!(j["00080008"]["Value"][2], "AXIAL");
        assert_eq!(j["00280010"]["Value"][0], 512);
        assert_eq!(j["7FE00010"]["BulkDataURI"], "http://x/bulk/7FE00010");
        assert_eq!(j["00080005"]["Value"][0], "ISO_IR 192");
    }
}
