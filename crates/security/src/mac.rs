//! Hashes and message authentication: SM3, HMAC-SM3 and constant-time
//! comparison of secrets.

use ctutils::CtEq;
use hmac::{Hmac, KeyInit, Mac};
use sm3::{Digest, Sm3};

/// SM3 digest (GB/T 32905) of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// HMAC-SM3 of `data` under `key` (any key length).
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; 32] {
    hmac_sm3_parts(key, &[data])
}

/// HMAC-SM3 over the concatenation of `parts` (avoids building a buffer).
pub fn hmac_sm3_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sm3> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).to_bool()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm3_gbt_vectors() {
        // GB/T 32905-2016 appendix A, examples 1 and 2.
        assert_eq!(
            hex::encode(sm3(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(
            hex::encode(sm3(&b"abcd".repeat(16))),
            "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        );
    }

    #[test]
    fn hmac_sm3_known_and_keyed() {
        // Checked against the RFC 2104 construction done by hand over SM3
        // (block size 64 bytes).
        let key = b"key";
        let data = b"The quick brown fox jumps over the lazy dog";
        let mut k0 = [0u8; 64];
        k0[..key.len()].copy_from_slice(key);
        let ipad: Vec<u8> = k0.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k0.iter().map(|b| b ^ 0x5c).collect();
        let inner = sm3(&[ipad.as_slice(), data].concat());
        let expected = sm3(&[opad.as_slice(), &inner].concat());
        assert_eq!(hmac_sm3(key, data), expected);
        assert_eq!(
            hmac_sm3_parts(key, &[b"The quick ", b"brown fox jumps over the lazy dog"]),
            expected
        );
        assert_ne!(hmac_sm3(b"other", data), expected);
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"", b""));
    }
}
