//! The one error type of the crate, worded for the operator who reads it.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Messages never contain key
/// material, plaintext or secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The key file could not be read or written.
    #[error("key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file may be read by other users.
    #[error(
        "key file {} is readable by group or others (mode {mode:04o}); \
         restrict it with `chmod 600 {}` and make the service user its owner",
        path.display(),
        path.display()
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    /// The key file (or the key command's output) is not a valid key file.
    #[error("invalid key file ({origin}): {reason}")]
    InvalidKeyFile { origin: String, reason: String },
    /// The external key command failed.
    #[error("key command `{command}` failed: {reason}")]
    KeyCommand { command: String, reason: String },
    /// A ciphertext names a key that the key ring does not hold.
    #[error("ciphertext was sealed with key `{0}`, which is not in the key file (was it removed?)")]
    UnknownKey(String),
    /// The value is not a Yunying ciphertext.
    #[error("malformed ciphertext: {0}")]
    MalformedCiphertext(&'static str),
    /// Authentication of a ciphertext failed.
    #[error("decryption failed: wrong key, value moved from another field, or ciphertext altered")]
    DecryptFailed,
    /// Password hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// A TOTP secret is not valid base32.
    #[error("invalid base32 secret: {0}")]
    InvalidBase32(&'static str),
}
