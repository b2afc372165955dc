//! Keyword ↔ tag ↔ VR lookups over the standard data dictionary.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// Parses an attribute as QIDO-RS and C-FIND name it: a keyword
/// (`PatientName`) or eight hex digits (`00100010`). Also accepts `(0010,0010)`.
pub fn parse_attribute(s: &str) -> Option<Tag> {
    let s = s.trim();
    let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let looks_hex = s.len() == 8 && s.chars().all(|c| c.is_ascii_hexdigit())
        || (s.starts_with('(') && s.ends_with(')') && hex.len() == 8);
    if looks_hex {
        let g = u16::from_str_radix(&hex[0..4], 16).ok()?;
        let e = u16::from_str_radix(&hex[4..8], 16).ok()?;
        return Some(Tag(g, e));
    }
    StandardDataDictionary.by_name(s).map(|e| e.tag())
}

/// The dictionary VR of a tag (US for the US/SS ambiguity, OW for OB/OW).
pub fn vr_of(tag: Tag) -> VR {
    crate::parse::implicit_vr(tag)
}

/// The keyword of a tag, if the dictionary knows it.
pub fn keyword_of(tag: Tag) -> Option<&'static str> {
    StandardDataDictionary.by_tag(tag).map(|e| e.alias)
}

/// The JSON key of a tag: eight upper-case hex digits.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.0, tag.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn lookups() {
        assert_eq!(parse_attribute("PatientName"), Some(Tag(0x0010, 0x0010)));
        assert_eq!(parse_attribute("00100020"), Some(Tag(0x0010, 0x0020)));
        assert_eq!(parse_attribute("0020000d"), Some(Tag(0x0020, 0x000D)));
        assert_eq!(parse_attribute("NoSuchKeyword"), None);
        assert_eq!(vr_of(Tag(0x0010, 0x0010)), VR::PN);
        assert_eq!(keyword_of(Tag(0x0008, 0x0060)), Some("Modality"));
        assert_eq!(tag_key(Tag(0x7FE0, 0x0010)), "7FE00010");
    }
}
