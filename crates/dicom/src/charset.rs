//! Specific Character Set (0008,0005) decoding and encoding.
//!
//! Chinese equipment sends patient names in GB18030, GBK, GB2312 (as
//! `ISO 2022 IR 58`) or UTF-8, and a good share of it sends GBK bytes with no
//! Specific Character Set at all. This module decodes all of them:
//! - single-byte and multi-byte character sets without code extensions;
//! - ISO 2022 code extensions (multi-valued Specific Character Set, escape
//!   sequences, reset to the default repertoire at delimiters), which dicom-rs
//!   0.10 does not handle;
//! - a configurable fallback for undeclared non-ASCII text (GB18030 by default:
//!   it is a superset of GBK and GB2312 and decodes every byte sequence).
//!
//! Text is decoded first and split on `\` and `=` afterwards, because the
//! second byte of a GBK character may be 0x5C (`\`).

use encoding_rs::Encoding;

/// Which VRs are subject to the Specific Character Set (PS3.5 §6.1.2.3).
pub fn vr_uses_charset(vr: dicom_core::VR) -> bool {
    use dicom_core::VR::*;
    matches!(vr, SH | LO | ST | LT | UC | UT | PN)
}

/// One character repertoire of a Specific Character Set value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repertoire {
    Ascii,
    /// A single- or multi-byte encoding without code extensions.
    Plain(&'static Encoding),
    /// ISO 2022 IR 87 / IR 159: Japanese kanji in G0 (7-bit pairs).
    JisX0208,
    /// ISO 2022 IR 13: JIS X 0201 katakana in G1, romaji in G0.
    JisX0201,
}

/// A decoded Specific Character Set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterSet {
    /// The first value: the repertoire in force at the start of each value.
    initial: Repertoire,
    /// True when the attribute declares ISO 2022 code extensions.
    extensions: bool,
    /// Encoding for undeclared non-ASCII bytes (when no charset is declared).
    fallback: &'static Encoding,
}

impl Default for CharacterSet {
    fn default() -> Self {
        CharacterSet { initial: Repertoire::Ascii, extensions: false, fallback: encoding_rs::GB18030 }
    }
}

fn term_to_repertoire(term: &str) -> Option<Repertoire> {
    let t = term.trim();
    Some(match t {
        "" | "ISO_IR 6" | "ISO 2022 IR 6" => Repertoire::Ascii,
        "ISO_IR 100" | "ISO 2022 IR 100" => Repertoire::Plain(encoding_rs::WINDOWS_1252),
        "ISO_IR 101" | "ISO 2022 IR 101" => Repertoire::Plain(encoding_rs::ISO_8859_2),
        "ISO_IR 109" | "ISO 2022 IR 109" => Repertoire::Plain(encoding_rs::ISO_8859_3),
        "ISO_IR 110" | "ISO 2022 IR 110" => Repertoire::Plain(encoding_rs::ISO_8859_4),
        "ISO_IR 144" | "ISO 2022 IR 144" => Repertoire::Plain(encoding_rs::ISO_8859_5),
        "ISO_IR 127" | "ISO 2022 IR 127" => Repertoire::Plain(encoding_rs::ISO_8859_6),
        "ISO_IR 126" | "ISO 2022 IR 126" => Repertoire::Plain(encoding_rs::ISO_8859_7),
        "ISO_IR 138" | "ISO 2022 IR 138" => Repertoire::Plain(encoding_rs::ISO_8859_8),
        "ISO_IR 148" | "ISO 2022 IR 148" => Repertoire::Plain(encoding_rs::WINDOWS_1254),
        "ISO_IR 203" | "ISO 2022 IR 203" => Repertoire::Plain(encoding_rs::ISO_8859_15),
        "ISO_IR 166" | "ISO 2022 IR 166" => Repertoire::Plain(encoding_rs::WINDOWS_874),
        "ISO_IR 13" | "ISO 2022 IR 13" => Repertoire::JisX0201,
        "ISO 2022 IR 87" | "ISO 2022 IR 159" => Repertoire::JisX0208,
        "ISO 2022 IR 149" => Repertoire::Plain(encoding_rs::EUC_KR),
        "ISO 2022 IR 58" => Repertoire::Plain(encoding_rs::GBK),
        "ISO_IR 192" => Repertoire::Plain(encoding_rs::UTF_8),
        "GB18030" => Repertoire::Plain(encoding_rs::GB18030),
        "GBK" => Repertoire::Plain(encoding_rs::GBK),
        _ => return None,
    })
}

impl CharacterSet {
    /// From the raw value of (0008,0005). Unknown terms fall back to the
    /// configured fallback (never an error: a name must still be shown).
    pub fn from_specific_character_set(raw: Option<&[u8]>, fallback: &'static Encoding) -> CharacterSet {
        let Some(raw) = raw else {
            return CharacterSet { fallback, ..CharacterSet::default() };
        };
        let text: String = raw.iter().map(|&b| b as char).collect();
        let terms: Vec<&str> = text.trim_end_matches(['\0', ' ']).split('\\').collect();
        let first = terms.first().copied().unwrap_or("");
        let extensions = terms.len() > 1 || first.trim().starts_with("ISO 2022");
        let initial = match term_to_repertoire(first) {
            Some(r) => r,
            None => Repertoire::Plain(fallback),
        };
        CharacterSet { initial, extensions, fallback }
    }

    /// The character set named by a DICOM defined term, for encoding (writers).
    pub fn named(term: &str) -> Option<CharacterSet> {
        term_to_repertoire(term).map(|initial| CharacterSet {
            initial,
            extensions: false,
            fallback: encoding_rs::GB18030,
        })
    }

    /// The fallback used for undeclared non-ASCII text, by WHATWG label
    /// (`gb18030`, `gbk`, `utf-8`, `windows-1252`, ...).
    pub fn fallback_from_label(label: &str) -> Option<&'static Encoding> {
        Encoding::for_label(label.as_bytes())
    }

    /// Decodes a text value (all values, with `\` separators kept).
    pub fn decode(&self, bytes: &[u8]) -> String {
        let bytes = trim_trailing(bytes);
        if bytes.is_ascii() && !bytes.contains(&0x1B) {
            // Fast path, and the common case: pure ASCII decodes the same everywhere.
            return String::from_utf8_lossy(bytes).into_owned();
        }
        if self.extensions || bytes.contains(&0x1B) {
            return self.decode_iso2022(bytes);
        }
        match self.initial {
            Repertoire::Ascii => {
                // Undeclared non-ASCII: UTF-8 if it is valid UTF-8, else the fallback.
                match std::str::from_utf8(bytes) {
                    Ok(s) => s.to_string(),
                    Err(_) => self.fallback.decode_without_bom_handling(bytes).0.into_owned(),
                }
            }
            Repertoire::Plain(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
            Repertoire::JisX0201 => encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes).0.into_owned(),
            Repertoire::JisX0208 => self.decode_iso2022(bytes),
        }
    }

    /// ISO 2022 decoding: escape sequences switch the G0/G1 repertoires;
    /// CR, LF, FF, TAB, `\`, `^` and `=` in single-byte mode return to the
    /// initial repertoire (PS3.5 §6.1.2.5.3).
    fn decode_iso2022(&self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len());
        let mut g0_multi = false; // JIS X 0208 in G0
        let mut g0_katakana = false;
        let mut g1: Option<&'static Encoding> = match self.initial {
            Repertoire::Plain(e) => Some(e),
            Repertoire::JisX0201 => Some(encoding_rs::SHIFT_JIS),
            _ => None,
        };
        let initial_g1 = g1;
        let mut i = 0;
        let mut segment: Vec<u8> = Vec::new();
        let flush = |segment: &mut Vec<u8>, out: &mut String, g1: Option<&'static Encoding>| {
            if segment.is_empty() {
                return;
            }
            let enc = g1.unwrap_or(encoding_rs::WINDOWS_1252);
            out.push_str(&enc.decode_without_bom_handling(segment).0);
            segment.clear();
        };
        while i < bytes.len() {
            let b = bytes[i];
            if b == 0x1B {
                flush(&mut segment, &mut out, g1);
                let rest = &bytes[i + 1..];
                let (consumed, action) = match rest {
                    [b'(', b'B', ..] => (2, Esc::G0Ascii),
                    [b'(', b'J', ..] => (2, Esc::G0Ascii),
                    [b')', b'I', ..] => (2, Esc::G1(encoding_rs::SHIFT_JIS)),
                    [b'(', b'I', ..] => (2, Esc::G0Katakana),
                    [b'$', b'B', ..] => (2, Esc::G0Jis),
                    [b'$', b'(', b'D', ..] => (3, Esc::G0Jis),
                    [b'$', b')', b'C', ..] => (3, Esc::G1(encoding_rs::EUC_KR)),
                    [b'$', b')', b'A', ..] => (3, Esc::G1(encoding_rs::GBK)),
                    [b'-', b'A', ..] => (2, Esc::G1(encoding_rs::WINDOWS_1252)),
                    [b'-', b'B', ..] => (2, Esc::G1(encoding_rs::ISO_8859_2)),
                    [b'-', b'C', ..] => (2, Esc::G1(encoding_rs::ISO_8859_3)),
                    [b'-', b'D', ..] => (2, Esc::G1(encoding_rs::ISO_8859_4)),
                    [b'-', b'L', ..] => (2, Esc::G1(encoding_rs::ISO_8859_5)),
                    [b'-', b'G', ..] => (2, Esc::G1(encoding_rs::ISO_8859_6)),
                    [b'-', b'F', ..] => (2, Esc::G1(encoding_rs::ISO_8859_7)),
                    [b'-', b'H', ..] => (2, Esc::G1(encoding_rs::ISO_8859_8)),
                    [b'-', b'M', ..] => (2, Esc::G1(encoding_rs::WINDOWS_1254)),
                    [b'-', b'T', ..] => (2, Esc::G1(encoding_rs::WINDOWS_874)),
                    [b'%', b'G', ..] => (2, Esc::G1(encoding_rs::UTF_8)),
                    _ => (0, Esc::Unknown),
                };
                match action {
                    Esc::G0Ascii => {
                        g0_multi = false;
                        g0_katakana = false;
                    }
                    Esc::G0Jis => g0_multi = true,
                    Esc::G0Katakana => g0_katakana = true,
                    Esc::G1(e) => g1 = Some(e),
                    Esc::Unknown => {}
                }
                i += 1 + consumed;
                continue;
            }
            if g0_multi && (0x21..=0x7E).contains(&b) {
                // A JIS X 0208 pair: decode through ISO-2022-JP.
                let end = (i + 2).min(bytes.len());
                let mut buf = Vec::with_capacity(8);
                buf.extend_from_slice(b"\x1b$B");
                buf.extend_from_slice(&bytes[i..end]);
                buf.extend_from_slice(b"\x1b(B");
                out.push_str(&encoding_rs::ISO_2022_JP.decode_without_bom_handling(&buf).0);
                i = end;
                continue;
            }
            if g0_katakana && (0x21..=0x5F).contains(&b) {
                out.push_str(&encoding_rs::SHIFT_JIS.decode_without_bom_handling(&[b | 0x80]).0);
                i += 1;
                continue;
            }
            if b < 0x80 {
                flush(&mut segment, &mut out, g1);
                out.push(b as char);
                if matches!(b, b'\r' | b'\n' | 0x0C | b'\t' | b'\\' | b'^' | b'=') {
                    g0_multi = false;
                    g0_katakana = false;
                    g1 = initial_g1;
                }
                i += 1;
                continue;
            }
            segment.push(b);
            i += 1;
        }
        flush(&mut segment, &mut out, g1);
        out
    }

    /// Encodes text for writing under this character set. Characters the
    /// repertoire cannot represent become `?`.
    pub fn encode(&self, text: &str) -> Vec<u8> {
        match self.initial {
            Repertoire::Ascii => text.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect(),
            Repertoire::Plain(enc) => {
                if enc == encoding_rs::UTF_8 {
                    text.as_bytes().to_vec()
                } else {
                    enc.encode(text).0.into_owned()
                }
            }
            _ => encoding_rs::SHIFT_JIS.encode(text).0.into_owned(),
        }
    }
}

enum Esc {
    G0Ascii,
    G0Jis,
    G0Katakana,
    G1(&'static Encoding),
    Unknown,
}

fn trim_trailing(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && (b[end - 1] == b' ' || b[end - 1] == 0) {
        end -= 1;
    }
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(term: &str) -> CharacterSet {
        CharacterSet::from_specific_character_set(Some(term.as_bytes()), encoding_rs::GB18030)
    }

    #[test]
    fn gb18030_and_gbk_and_utf8() {
        let name = "Wang^XiaoDong=王^小东=";
        let gb = encoding_rs::GB18030.encode(name).0.into_owned();
        assert_eq!(cs("GB18030").decode(&gb), name);
        let gbk = encoding_rs::GBK.encode(name).0.into_owned();
        assert_eq!(cs("GBK").decode(&gbk), name);
        assert_eq!(cs("ISO_IR 192").decode(name.as_bytes()), name);
    }

    #[test]
    fn gbk_trail_byte_5c_is_not_a_delimiter() {
        // 淺 is 0x9C 0x5C in GBK: its second byte is a backslash.
        let s = "淺^淺";
        let gbk = encoding_rs::GBK.encode(s).0.into_owned();
        assert_eq!(gbk[1], 0x5C);
        assert_eq!(cs("GBK").decode(&gbk), s);
    }

    #[test]
    fn iso2022_ir58_gb2312() {
        // PS3.5 Annex K example: Wang^XiaoDong=王^小东=
        let mut b = b"Wang^XiaoDong=".to_vec();
        b.extend_from_slice(b"\x1b$)A");
        b.extend_from_slice(&encoding_rs::GBK.encode("王").0);
        b.push(b'^');
        b.extend_from_slice(b"\x1b$)A");
        b.extend_from_slice(&encoding_rs::GBK.encode("小东").0);
        b.push(b'=');
        assert_eq!(cs("\\ISO 2022 IR 58").decode(&b), "Wang^XiaoDong=王^小东=");
    }

    #[test]
    fn iso2022_ir87_japanese() {
        // PS3.5 Annex H: Yamada^Tarou=山田^太郎=やまだ^たろう
        let raw = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
        assert_eq!(cs("\\ISO 2022 IR 87").decode(raw), "Yamada^Tarou=山田^太郎=やまだ^たろう");
    }

    #[test]
    fn undeclared_gbk_uses_fallback_and_utf8_is_detected() {
        let none = CharacterSet::from_specific_character_set(None, encoding_rs::GB18030);
        let gbk = encoding_rs::GBK.encode("李^四").0.into_owned();
        assert_eq!(none.decode(&gbk), "李^四");
        assert_eq!(none.decode("李^四".as_bytes()), "李^四");
        assert_eq!(none.decode(b"DOE^JOHN "), "DOE^JOHN");
    }

    #[test]
    fn latin1() {
        assert_eq!(cs("ISO_IR 100").decode(&[b'B', 0xE9, b'b', 0xE9]), "Bébé");
    }
}
