//! Field encryption: authenticated encryption of single values (phone
//! numbers, national ids, addresses…) with the key ring's active data key,
//! as self-describing text that fits a text column:
//!
//! `yy1:<key id>:<base64url(nonce (12 bytes) || ciphertext || tag (16 bytes))>`
//!
//! The algorithm (SM4-GCM or AES-256-GCM) follows from the key. The
//! associated data binds a value to its column (e.g. `"patient.phone"`), so
//! a ciphertext moved to another column no longer decrypts. Nonces are 96
//! random bits: rotate the data key well before 2^32 values per key.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, AesGcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sm4::Sm4;

use crate::SecurityError;
use crate::keys::{DataKey, FieldAlgorithm, Keyring};
use crate::token::random_bytes;

/// SM4 in GCM mode with 96-bit nonces.
pub type Sm4Gcm = AesGcm<Sm4, U12>;

/// Prefix of every ciphertext of this format version.
pub const PREFIX: &str = "yy1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

enum Cipher {
    Sm4(Box<Sm4Gcm>),
    Aes(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(key: &DataKey) -> Cipher {
        const LEN_CHECKED: &str = "key length is checked when the key ring is built";
        match key.algorithm() {
            FieldAlgorithm::Sm4Gcm => Cipher::Sm4(Box::new(
                Sm4Gcm::new_from_slice(key.key_bytes()).expect(LEN_CHECKED),
            )),
            FieldAlgorithm::Aes256Gcm => Cipher::Aes(Box::new(
                Aes256Gcm::new_from_slice(key.key_bytes()).expect(LEN_CHECKED),
            )),
        }
    }

    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        payload: Payload<'_, '_>,
    ) -> Result<Vec<u8>, aes_gcm::Error> {
        let nonce = Nonce::<U12>::from(*nonce);
        match self {
            Cipher::Sm4(c) => c.encrypt(&nonce, payload),
            Cipher::Aes(c) => c.encrypt(&nonce, payload),
        }
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        payload: Payload<'_, '_>,
    ) -> Result<Vec<u8>, aes_gcm::Error> {
        let nonce = Nonce::<U12>::from(*nonce);
        match self {
            Cipher::Sm4(c) => c.decrypt(&nonce, payload),
            Cipher::Aes(c) => c.decrypt(&nonce, payload),
        }
    }
}

/// Encrypts `plaintext` with the active data key, bound to `aad` (the
/// column or kind of value, e.g. `"patient.phone"`).
pub fn encrypt(ring: &Keyring, plaintext: &str, aad: &str) -> String {
    encrypt_with(ring.active_data(), plaintext, aad)
}

/// Encrypts with a given data key (re-encryption tools; normally use
/// [`encrypt`]).
pub fn encrypt_with(key: &DataKey, plaintext: &str, aad: &str) -> String {
    let nonce = random_bytes::<NONCE_LEN>();
    let sealed = Cipher::new(key)
        .seal(
            &nonce,
            Payload {
                msg: plaintext.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .expect("GCM encrypts any value shorter than 64 GiB");
    let mut raw = Vec::with_capacity(NONCE_LEN + sealed.len());
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&sealed);
    let mut out =
        String::with_capacity(PREFIX.len() + key.id().len() + 1 + (raw.len() * 4).div_ceil(3));
    out.push_str(PREFIX);
    out.push_str(key.id());
    out.push(':');
    URL_SAFE_NO_PAD.encode_string(&raw, &mut out);
    out
}

/// Splits a ciphertext into key id and body.
fn split(ct: &str) -> Result<(&str, &str), SecurityError> {
    let rest = ct
        .strip_prefix(PREFIX)
        .ok_or(SecurityError::MalformedCiphertext(
            "it does not start with `yy1:`",
        ))?;
    let (id, body) = rest
        .split_once(':')
        .ok_or(SecurityError::MalformedCiphertext("no key id"))?;
    if id.is_empty() {
        return Err(SecurityError::MalformedCiphertext("empty key id"));
    }
    Ok((id, body))
}

/// Decrypts a ciphertext from [`encrypt`] with the key it names, checking
/// that it was sealed for the same `aad`.
pub fn decrypt(ring: &Keyring, ct: &str, aad: &str) -> Result<String, SecurityError> {
    let (id, body) = split(ct)?;
    let key = ring
        .data_key(id)
        .ok_or_else(|| SecurityError::UnknownKey(id.to_owned()))?;
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| SecurityError::MalformedCiphertext("its body is not base64url"))?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(SecurityError::MalformedCiphertext("too short"));
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
    let plain = Cipher::new(key)
        .open(
            nonce,
            Payload {
                msg: sealed,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| SecurityError::DecryptFailed)?;
    String::from_utf8(plain).map_err(|_| SecurityError::DecryptFailed)
}

/// The id of the key a ciphertext was sealed with (to find values still
/// under an old key), or `None` when `ct` is not a ciphertext.
pub fn key_id(ct: &str) -> Option<&str> {
    split(ct).ok().map(|(id, _)| id)
}

/// Whether `s` has the shape of a ciphertext from [`encrypt`] (prefix, key
/// id, base64url body long enough for nonce and tag). Does not decrypt.
pub fn is_ciphertext(s: &str) -> bool {
    let Ok((id, body)) = split(s) else {
        return false;
    };
    id.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && body.len() >= ((NONCE_LEN + TAG_LEN) * 4).div_ceil(3)
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm4::cipher::BlockCipherEncrypt;

    #[test]
    fn sm4_gbt32907_vector() {
        // GB/T 32907-2016 appendix A, example 1.
        let key = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let cipher = Sm4::new_from_slice(&key).unwrap();
        let mut block = sm4::cipher::Block::<Sm4>::try_from(&key[..]).unwrap();
        cipher.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
        // Example 2: one million encryptions.
        let mut block = sm4::cipher::Block::<Sm4>::try_from(&key[..]).unwrap();
        for _ in 0..1_000_000 {
            cipher.encrypt_block(&mut block);
        }
        assert_eq!(hex::encode(block), "595298c7c6fd271f0402f804c33d3f66");
    }

    #[test]
    fn sm4_gcm_rfc8998_vector() {
        // RFC 8998 appendix A.1 (SM4-GCM).
        let key = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let nonce: [u8; 12] = hex::decode("00001234567800000000ABCD")
            .unwrap()
            .try_into()
            .unwrap();
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").unwrap();
        let pt = hex::decode(
            "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD\
             EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
        )
        .unwrap();
        let cipher = Sm4Gcm::new_from_slice(&key).unwrap();
        let out = cipher
            .encrypt(
                &Nonce::<U12>::from(nonce),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(
            hex::encode_upper(&out),
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735\
             D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D\
             83DE3541E4C2B58177E065A9BF7B62EC"
        );
    }

    fn ring(alg: FieldAlgorithm) -> Keyring {
        Keyring::generate(alg)
    }

    #[test]
    fn round_trip_both_algorithms() {
        for alg in [FieldAlgorithm::Sm4Gcm, FieldAlgorithm::Aes256Gcm] {
            let ring = ring(alg);
            for value in ["13800138000", "", "北京市海淀区 1 号", &"x".repeat(10_000)] {
                let ct = encrypt(&ring, value, "patient.phone");
                assert!(
                    ct.starts_with(&format!("yy1:{}:", ring.active_data().id())),
                    "{ct}"
                );
                assert!(is_ciphertext(&ct), "{ct}");
                assert_eq!(key_id(&ct), Some(ring.active_data().id()));
                assert_eq!(
                    decrypt(&ring, &ct, "patient.phone").unwrap(),
                    value,
                    "{alg}"
                );
            }
            // Random nonces: the same value encrypts differently.
            assert_ne!(encrypt(&ring, "a", "k"), encrypt(&ring, "a", "k"));
        }
    }

    #[test]
    fn wrong_key_aad_and_tampering_fail() {
        let ring_a = ring(FieldAlgorithm::Sm4Gcm);
        let ct = encrypt(&ring_a, "110101199003071234", "patient.national_id");
        assert!(matches!(
            decrypt(&ring_a, &ct, "patient.phone"),
            Err(SecurityError::DecryptFailed)
        ));
        // Another ring that does not know the key.
        let ring_b = ring(FieldAlgorithm::Sm4Gcm);
        assert!(matches!(
            decrypt(&ring_b, &ct, "patient.national_id"),
            Err(SecurityError::UnknownKey(_))
        ));
        // Another ring holding a different key under the same id.
        let forged = ct.replacen(ring_a.active_data().id(), ring_b.active_data().id(), 1);
        assert!(matches!(
            decrypt(&ring_b, &forged, "patient.national_id"),
            Err(SecurityError::DecryptFailed)
        ));
        // Every flipped body character fails.
        let body_start = ct.rfind(':').unwrap() + 1;
        for i in body_start..ct.len() {
            let mut bytes = ct.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                decrypt(&ring_a, &tampered, "patient.national_id").is_err(),
                "position {i}"
            );
        }
        // Truncation and garbage.
        assert!(matches!(
            decrypt(&ring_a, &ct[..ct.len() - 4], "patient.national_id"),
            Err(SecurityError::DecryptFailed | SecurityError::MalformedCiphertext(_))
        ));
        let short = format!("yy1:{}:AAAA", ring_a.active_data().id());
        assert!(matches!(
            decrypt(&ring_a, &short, ""),
            Err(SecurityError::MalformedCiphertext(_))
        ));
        assert!(matches!(
            decrypt(&ring_a, "13800138000", ""),
            Err(SecurityError::MalformedCiphertext(_))
        ));
        assert!(matches!(
            decrypt(&ring_a, "yy1:nokey", ""),
            Err(SecurityError::MalformedCiphertext(_))
        ));
        let bad_b64 = format!("yy1:{}:!!!!", ring_a.active_data().id());
        assert!(matches!(
            decrypt(&ring_a, &bad_b64, ""),
            Err(SecurityError::MalformedCiphertext(_))
        ));
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let mut ring = ring(FieldAlgorithm::Sm4Gcm);
        let old_id = ring.active_data().id().to_owned();
        let old_ct = encrypt(&ring, "张三", "patient.name");
        let new_id = ring.rotate_data(FieldAlgorithm::Aes256Gcm);
        let new_ct = encrypt(&ring, "张三", "patient.name");
        assert_eq!(key_id(&old_ct), Some(old_id.as_str()));
        assert_eq!(key_id(&new_ct), Some(new_id.as_str()));
        assert_eq!(decrypt(&ring, &old_ct, "patient.name").unwrap(), "张三");
        assert_eq!(decrypt(&ring, &new_ct, "patient.name").unwrap(), "张三");
        // Survives a trip through the key file text.
        let reloaded = Keyring::from_toml(&ring.to_toml()).unwrap();
        assert_eq!(decrypt(&reloaded, &old_ct, "patient.name").unwrap(), "张三");
        // Re-encryption under a chosen key.
        let re = encrypt_with(ring.data_key(&old_id).unwrap(), "李四", "x");
        assert_eq!(key_id(&re), Some(old_id.as_str()));
        assert_eq!(decrypt(&ring, &re, "x").unwrap(), "李四");
    }

    #[test]
    fn shape_detection() {
        assert!(!is_ciphertext("13800138000"));
        assert!(!is_ciphertext("yy1:"));
        assert!(!is_ciphertext("yy1:id:short"));
        assert!(!is_ciphertext(
            "yy1::AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(is_ciphertext(
            "yy1:d-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        ));
        assert!(!is_ciphertext(
            "yy1:d-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/"
        ));
        assert_eq!(key_id("yy1:d-1:xyz"), Some("d-1"));
        assert_eq!(key_id("plain"), None);
    }
}
