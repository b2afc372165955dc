//! Random secrets: bearer tokens, session ids, client secrets, and the
//! digests under which they are stored.
//!
//! A secret from [`new_secret`] carries 256 bits of entropy, so storing its
//! plain SM3 digest ([`secret_hash`]) is enough: no salt or stretching.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::mac;

/// `N` bytes from the operating system's random source.
///
/// # Panics
/// If the operating system has no usable random source (the process cannot
/// work securely then).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill_random(&mut out);
    out
}

/// Fills `buf` from the operating system's random source.
///
/// # Panics
/// If the operating system has no usable random source.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// A new secret: `prefix` followed by 32 random bytes in unpadded
/// base64url (43 characters), e.g. `new_secret("yyt_")` → `yyt_Xq3…`.
/// The prefix is used as given (include the separator).
pub fn new_secret(prefix: &str) -> String {
    let bytes = random_bytes::<32>();
    let mut out = String::with_capacity(prefix.len() + 43);
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

/// The digest under which a secret is stored: lowercase hex SM3 (64 chars).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(mac::sm3(secret.as_bytes()))
}

/// Whether `secret` matches a digest from [`secret_hash`] (constant time).
pub fn verify_secret(secret: &str, stored_hash: &str) -> bool {
    mac::ct_eq(
        secret_hash(secret).as_bytes(),
        stored_hash.to_ascii_lowercase().as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_prefix_and_length() {
        let a = new_secret("yyt_");
        let b = new_secret("yyt_");
        assert!(a.starts_with("yyt_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
        assert!(
            a[4..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn random_bytes_differ() {
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
        assert_eq!(random_bytes::<0>(), []);
    }

    #[test]
    fn hash_is_hex_sm3() {
        assert_eq!(
            secret_hash("abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        let s = new_secret("yys_");
        let h = secret_hash(&s);
        assert_eq!(h.len(), 64);
        assert!(verify_secret(&s, &h));
        assert!(verify_secret(&s, &h.to_uppercase()));
        assert!(!verify_secret("yys_other", &h));
        assert!(!verify_secret(&s, "short"));
    }
}
