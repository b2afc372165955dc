//! The object key layout, version 1.
//!
//! `dicom/v1/{h0h1}/{h2h3}/{study}/{series}/{sop}.{sha16}.dcm`, where `h` is
//! the SHA-256 of the Study Instance UID (spreading studies over 65 536
//! directories while keeping each study together) and `sha16` the first 16
//! hex digits of the object's own SHA-256 (so versions of one SOP instance
//! never share a key). The object itself holds every UID, so the catalog can
//! be rebuilt from the store alone.

use sha2::{Digest, Sha256};

/// The layout version written in every key.
pub const LAYOUT: &str = "v1";

/// The key of an original object.
pub fn original(study: &str, series: &str, sop: &str, sha256_hex: &str) -> String {
    let h = hex::encode(Sha256::digest(study.as_bytes()));
    format!("dicom/{LAYOUT}/{}/{}/{study}/{series}/{sop}.{}.dcm", &h[0..2], &h[2..4], &sha256_hex[..16])
}

/// Study, series and SOP Instance UIDs named by an original object's key.
pub fn uids_of(key: &str) -> Option<(&str, &str, &str)> {
    let mut parts = key.strip_prefix("dicom/v1/")?.split('/');
    let (_, _, study, series, file) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let sop = file.strip_suffix(".dcm")?.rsplit_once('.')?.0;
    Some((study, series, sop))
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout() {
        let k = super::original("1.2.3", "1.2.3.4", "1.2.3.4.5", &"ab".repeat(32));
        assert!(k.starts_with("dicom/v1/"));
        assert!(k.ends_with("/1.2.3/1.2.3.4/1.2.3.4.5.abababababababab.dcm"));
        yunying_blob::validate_key(&k).unwrap();
        assert_eq!(super::uids_of(&k), Some(("1.2.3", "1.2.3.4", "1.2.3.4.5")));
        assert_eq!(super::uids_of("derived/v1/x"), None);
    }
}
