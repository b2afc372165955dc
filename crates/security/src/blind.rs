//! Blind indexes: keyed HMAC-SM3 digests of normalised values, stored next
//! to encrypted fields so they can be searched by equality without
//! decrypting. An index is `<blind key id>:<64 hex digits>`; after a blind
//! key rotation, indexes are rebuilt with the new key (or searched under
//! every key with [`blind_indexes`] meanwhile).

use crate::keys::{BlindKey, Keyring};

/// Kind of value whose normalisation strips spaces and hyphens and upper-
/// cases the trailing check letter `X` (resident identity card numbers).
pub const KIND_NATIONAL_ID: &str = "national_id";
/// Kind of value whose normalisation keeps digits only and drops a `86` /
/// `0086` country code before an 11-digit mobile number.
pub const KIND_PHONE: &str = "phone";

/// The form of `value` that is indexed, according to its `kind`.
pub fn normalize(kind: &str, value: &str) -> String {
    match kind {
        KIND_NATIONAL_ID => value
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '‐' | '－'))
            .flat_map(char::to_uppercase)
            .collect(),
        KIND_PHONE => {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            for code in ["0086", "86"] {
                if let Some(rest) = digits.strip_prefix(code)
                    && rest.len() == 11
                {
                    return rest.to_owned();
                }
            }
            digits
        }
        _ => value.trim().to_lowercase(),
    }
}

/// The blind index of `value` (of `kind`, e.g. `"phone"`) under the active
/// blind key.
pub fn blind_index(ring: &Keyring, kind: &str, value: &str) -> String {
    blind_index_with(ring.active_blind(), kind, value)
}

/// The blind index of `value` under a given blind key (re-indexing).
pub fn blind_index_with(key: &BlindKey, kind: &str, value: &str) -> String {
    let normalized = normalize(kind, value);
    let digest = key.mac_parts(&[kind.as_bytes(), &[0], normalized.as_bytes()]);
    let mut out = String::with_capacity(key.id().len() + 1 + 64);
    out.push_str(key.id());
    out.push(':');
    out.push_str(&hex::encode(digest));
    out
}

/// The blind indexes of `value` under every blind key, active first (to
/// search while indexes are being rebuilt after a rotation).
pub fn blind_indexes(ring: &Keyring, kind: &str, value: &str) -> Vec<String> {
    let active = ring.active_blind();
    std::iter::once(active)
        .chain(ring.blind_keys().iter().filter(|k| k.id() != active.id()))
        .map(|k| blind_index_with(k, kind, value))
        .collect()
}

/// The id of the key an index was computed with.
pub fn key_id(index: &str) -> Option<&str> {
    index
        .rsplit_once(':')
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::FieldAlgorithm;
    use crate::mac::hmac_sm3;

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize("national_id", " 1101 0119-9003 07123x "),
            "11010119900307123X"
        );
        assert_eq!(normalize("phone", "+86 138-0013-8000"), "13800138000");
        assert_eq!(normalize("phone", "0086 13800138000"), "13800138000");
        assert_eq!(normalize("phone", "8613800138000"), "13800138000");
        assert_eq!(normalize("phone", "(010) 6275-1234"), "01062751234");
        assert_eq!(
            normalize("phone", "86123"),
            "86123",
            "country code kept when not before 11 digits"
        );
        assert_eq!(normalize("phone", "861380013800"), "861380013800");
        assert_eq!(normalize("name", "  Zhang San "), "zhang san");
        assert_eq!(normalize("name", "张三"), "张三");
    }

    #[test]
    fn index_matches_equivalent_values() {
        let ring = Keyring::generate(FieldAlgorithm::Sm4Gcm);
        let a = blind_index(&ring, "phone", "+86 138 0013 8000");
        let b = blind_index(&ring, "phone", "13800138000");
        assert_eq!(a, b);
        assert!(a.starts_with(&format!("{}:", ring.active_blind().id())));
        assert_eq!(a.len(), ring.active_blind().id().len() + 1 + 64);
        assert_eq!(key_id(&a), Some(ring.active_blind().id()));
        assert_ne!(a, blind_index(&ring, "phone", "13800138001"));
        // The kind is part of the MAC: same digits, other kind, other index.
        assert_ne!(a, blind_index(&ring, "other", "13800138000"));
        assert_eq!(
            blind_index(&ring, "national_id", "11010119900307123x"),
            blind_index(&ring, "national_id", "110101 19900307 123X")
        );
        // Definition: HMAC-SM3(key, kind || 0x00 || normalised value).
        let expected = hmac_sm3(ring.active_blind().key_bytes(), b"phone\x0013800138000");
        assert_eq!(
            b,
            format!("{}:{}", ring.active_blind().id(), hex::encode(expected))
        );
    }

    #[test]
    fn rotation_changes_indexes() {
        let mut ring = Keyring::generate(FieldAlgorithm::Sm4Gcm);
        let old_id = ring.active_blind().id().to_owned();
        let old = blind_index(&ring, "phone", "13800138000");
        let new_id = ring.rotate_blind();
        let new = blind_index(&ring, "phone", "13800138000");
        assert_ne!(old, new);
        assert_eq!(key_id(&new), Some(new_id.as_str()));
        assert_eq!(
            blind_index_with(ring.blind_key(&old_id).unwrap(), "phone", "13800138000"),
            old
        );
        assert_eq!(blind_indexes(&ring, "phone", "13800138000"), vec![new, old]);
    }
}
