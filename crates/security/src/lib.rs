//! Cryptographic building blocks of Yunying (no I/O beyond reading and
//! writing key files and running a key command): password hashing and
//! rules, TOTP, key rings, field encryption, blind indexes, MACs, bearer
//! tokens and display masking.
//!
//! Defaults follow the commercial-cryptography requirements (GB/T 39786):
//! SM3 for hashes and MACs, SM4-GCM for field encryption; AES-256-GCM can
//! be chosen per data key. Argon2id hashes passwords and HMAC-SHA1 is used
//! only where RFC 6238 (TOTP authenticator apps) requires it.

pub mod blind;
mod error;
pub mod field;
pub mod keys;
pub mod mac;
pub mod password;
pub mod redact;
pub mod token;
pub mod totp;

pub use error::SecurityError;
pub use keys::{DataKey, FieldAlgorithm, Keyring, MacKey};
