//! Patients' personal data at rest: which attributes of a received object
//! are personal data beyond what searching needs (telephone numbers,
//! addresses, other IDs such as the national ID number 身份证号), keeping
//! them out of the catalog's clear-text attributes and metadata, and holding
//! them encrypted (SM4-GCM by default) with a keyed blind index (HMAC-SM3)
//! so that a patient can still be found by them.
//!
//! The original object in the blob store is kept byte for byte (it is the
//! medical record); its protection at rest is the storage's encryption.

use yunying_index::PatientSecret;
use yunying_security::{Keyring, blind, field};

/// Top-level attributes held only encrypted: (DICOM JSON key, kind).
pub const SENSITIVE: &[(&str, &str)] = &[
    ("00102154", "phone"),     // Patient's Telephone Numbers
    ("00102155", "telecom"),   // Patient's Telecom Information
    ("00101040", "address"),   // Patient's Address
    ("00101000", "other_id"),  // Other Patient IDs (retired, still sent)
    ("00101002", "other_id"),  // Other Patient IDs Sequence
    ("00101005", "birth_name"), // Patient's Birth Name
    ("00101060", "mother_name"), // Patient's Mother's Birth Name
];

/// Removes the sensitive attributes from a DICOM JSON object and returns
/// their values as (kind, value) pairs. A national ID number found among
/// the other IDs is recognised as such (kind `national_id`).
pub fn take_sensitive(json: &mut serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (tag, kind) in SENSITIVE {
        let Some(v) = json.remove(*tag) else { continue };
        let values: Vec<String> = if *tag == "00101002" {
            v.get("Value")
                .and_then(|items| items.as_array())
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.get("00100020"))
                        .flat_map(strings)
                        .collect()
                })
                .unwrap_or_default()
        } else {
            strings(&v)
        };
        for value in values {
            let value = value.trim().to_string();
            if value.is_empty() {
                continue;
            }
            let kind = if *kind == "other_id" && is_national_id(&value) { "national_id" } else { kind };
            if !out.iter().any(|(k, v): &(String, String)| k == kind && *v == value) {
                out.push((kind.to_string(), value));
            }
        }
    }
    out
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    let Some(values) = v.get("Value").and_then(|x| x.as_array()) else { return Vec::new() };
    values
        .iter()
        .filter_map(|x| match x {
            serde_json::Value::String(s) => Some(s.clone()),
            // PN values are objects of component groups.
            serde_json::Value::Object(o) => o.get("Alphabetic").or_else(|| o.get("Ideographic")).and_then(|s| s.as_str()).map(String::from),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// Encrypts (kind, value) pairs for the catalog. The ciphertext is bound to
/// its kind (`patient.<kind>` as associated data).
pub fn seal(keys: &Keyring, values: &[(String, String)]) -> Vec<PatientSecret> {
    values
        .iter()
        .map(|(kind, value)| PatientSecret {
            kind: kind.clone(),
            ciphertext: field::encrypt(keys, value, &aad(kind)),
            blind_index: blind::blind_index(keys, kind, value),
        })
        .collect()
}

/// The associated data binding a ciphertext to its kind.
pub fn aad(kind: &str) -> String {
    format!("patient.{kind}")
}

/// A mainland resident identity card number (GB 11643): 18 characters with
/// a valid ISO 7064 MOD 11-2 check character, or the older 15 digits.
pub fn is_national_id(s: &str) -> bool {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() == 15 {
        return b.iter().all(u8::is_ascii_digit);
    }
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_ids_are_recognised_by_their_check_character() {
        assert!(is_national_id("11010519491231002X"));
        assert!(is_national_id("11010519491231002x"));
        assert!(!is_national_id("110105194912310021"));
        assert!(!is_national_id("MRN0001"));
    }

    #[test]
    fn sensitive_attributes_are_taken_out() {
        let mut m = serde_json::json!({
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Wang^Fang"}]},
            "00102154": {"vr": "SH", "Value": ["13812345678"]},
            "00101000": {"vr": "LO", "Value": ["11010519491231002X", "H-778"]},
            "00101040": {"vr": "LO", "Value": ["浙江省嵊州市剡湖街道"]},
        })
        .as_object()
        .cloned()
        .unwrap();
        let taken = take_sensitive(&mut m);
        assert_eq!(m.len(), 1);
        assert!(taken.contains(&("phone".into(), "13812345678".into())));
        assert!(taken.contains(&("national_id".into(), "11010519491231002X".into())));
        assert!(taken.contains(&("other_id".into(), "H-778".into())));
        assert!(taken.contains(&("address".into(), "浙江省嵊州市剡湖街道".into())));
        let keys = Keyring::generate(Default::default());
        let sealed = seal(&keys, &taken);
        assert!(sealed.iter().all(|s| !s.ciphertext.contains("1381234") && !s.ciphertext.contains("1101051949")));
        let phone = sealed.iter().find(|s| s.kind == "phone").unwrap();
        assert_eq!(field::decrypt(&keys, &phone.ciphertext, "patient.phone").unwrap(), "13812345678");
        assert_eq!(phone.blind_index, blind::blind_index(&keys, "phone", "+86 138-1234-5678"));
    }
}
