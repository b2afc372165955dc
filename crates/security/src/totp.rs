//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps,
//! 6 digits) for second-factor login with authenticator apps, with replay
//! refusal, base32 secrets (RFC 4648) and `otpauth://` provisioning URIs.
//!
//! SHA-1 is used here only because every authenticator app expects it; the
//! HMAC construction keeps it sound for this use.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::SecurityError;
use crate::mac::ct_eq;
use crate::token::random_bytes;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new random 160-bit secret (the RFC 4226 recommended length).
pub fn new_secret() -> Vec<u8> {
    random_bytes::<20>().to_vec()
}

/// RFC 4648 base32 without padding, upper case.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Decodes RFC 4648 base32: case-insensitive, spaces (and hyphens) ignored,
/// trailing `=` padding allowed.
pub fn base32_decode(text: &str) -> Result<Vec<u8>, SecurityError> {
    let cleaned: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'-')
        .collect();
    let end = cleaned
        .iter()
        .rposition(|&b| b != b'=')
        .map_or(0, |i| i + 1);
    let symbols = &cleaned[..end];
    if cleaned[end..].len() > 6 {
        return Err(SecurityError::InvalidBase32("too much padding"));
    }
    if matches!(symbols.len() % 8, 1 | 3 | 6) {
        return Err(SecurityError::InvalidBase32("truncated (invalid length)"));
    }
    let mut out = Vec::with_capacity(symbols.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &c in symbols {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            b'=' => return Err(SecurityError::InvalidBase32("padding in the middle")),
            _ => {
                return Err(SecurityError::InvalidBase32(
                    "characters other than A-Z and 2-7",
                ));
            }
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// The HOTP value (RFC 4226) of `counter`, `digits` long, zero-padded.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    let code = binary % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// The time step containing `unix_secs`.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// The 6-digit code valid at `unix_secs`.
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    hotp(secret, step_at(unix_secs), DIGITS)
}

/// Checks `code` (spaces ignored) against the steps within `window_steps`
/// of the one containing `unix_secs` (1 is usual: ±30 s of clock drift).
/// Returns the matched step, which the caller stores and passes back as
/// `last_used_step` next time: steps at or before it are refused, so a code
/// cannot be replayed.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_secs: u64,
    window_steps: u64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_secs);
    let first = now.saturating_sub(window_steps);
    let last = now.saturating_add(window_steps);
    let mut found = None;
    for step in first..=last {
        if last_used_step.is_some_and(|used| step <= used) {
            continue;
        }
        if ct_eq(hotp(secret, step, DIGITS).as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// An `otpauth://totp/` URI for QR codes, e.g.
/// `otpauth://totp/%E4%BA%91%E5%BD%B1:alice?secret=…&issuer=%E4%BA%91%E5%BD%B1&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent_encode(account),
        base32_encode(secret),
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B (SHA1, 8 digits) and their 6-digit forms.
        let vectors = [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, expected) in vectors {
            assert_eq!(hotp(RFC_SECRET, step_at(t), 8), expected, "t={t}");
            assert_eq!(code_at(RFC_SECRET, t), expected[2..], "t={t}");
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = ["755224", "287082", "359152", "969429", "338314"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), *code);
        }
    }

    #[test]
    fn base32_round_trip_and_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("mzxw 6ytb oi").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert!(base32_decode("MZXW6YTB1").is_err());
        assert!(base32_decode("M").is_err());
        assert!(base32_decode("MZ=XQ").is_err());
        let secret = new_secret();
        assert_eq!(secret.len(), 20);
        assert_eq!(base32_encode(&secret).len(), 32);
        assert_eq!(
            base32_decode(&base32_encode(&secret).to_lowercase()).unwrap(),
            secret
        );
    }

    #[test]
    fn verify_window_and_replay() {
        let secret = new_secret();
        let now = 1_800_000_015u64;
        let step = step_at(now);
        let code = code_at(&secret, now);
        assert_eq!(verify(&secret, &code, now, 1, None), Some(step));
        assert_eq!(
            verify(
                &secret,
                &format!("{} {}", &code[..3], &code[3..]),
                now,
                1,
                None
            ),
            Some(step)
        );
        // Replay of the same code is refused.
        assert_eq!(verify(&secret, &code, now, 1, Some(step)), None);
        assert_eq!(verify(&secret, &code, now + 5, 1, Some(step)), None);
        // The previous and the next step are accepted with a window of 1...
        let prev = code_at(&secret, now - 30);
        let next = code_at(&secret, now + 30);
        assert_eq!(verify(&secret, &prev, now, 1, None), Some(step - 1));
        assert_eq!(verify(&secret, &next, now, 1, None), Some(step + 1));
        // ...but not with a window of 0, nor two steps away.
        assert_eq!(verify(&secret, &prev, now, 0, None), None);
        assert_eq!(
            verify(&secret, &code_at(&secret, now - 60), now, 1, None),
            None
        );
        // A later code is still accepted after an earlier one was used.
        assert_eq!(verify(&secret, &next, now, 1, Some(step)), Some(step + 1));
        // An earlier code is refused once a later one was used.
        assert_eq!(verify(&secret, &prev, now, 1, Some(step)), None);
        // Malformed codes.
        assert_eq!(verify(&secret, "12345", now, 1, None), None);
        assert_eq!(verify(&secret, "abcdef", now, 1, None), None);
        assert_eq!(verify(&secret, "", now, 1, None), None);
        // Near the epoch the window does not underflow.
        assert_eq!(
            verify(RFC_SECRET, &code_at(RFC_SECRET, 0), 0, 1, None),
            Some(0)
        );
    }

    #[test]
    fn uri() {
        let uri = otpauth_uri("云影 PACS", "alice@example.org", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/%E4%BA%91%E5%BD%B1%20PACS:alice%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=%E4%BA%91%E5%BD%B1%20PACS\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
