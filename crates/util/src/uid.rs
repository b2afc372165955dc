//! DICOM unique identifiers (PS3.5 §9.1): at most 64 characters, components of
//! digits separated by single dots, no leading zero in a multi-digit component.

use std::fmt;

/// Why a string is not a valid DICOM UID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    #[error("UID is empty")]
    Empty,
    #[error("UID is {0} characters long; DICOM allows at most 64")]
    TooLong(usize),
    #[error("UID contains a character other than digits and dots: {0:?}")]
    BadChar(char),
    #[error("UID has an empty component (two dots in a row, or a leading/trailing dot)")]
    EmptyComponent,
    #[error("UID component {0:?} has a leading zero")]
    LeadingZero(String),
}

/// Checks a UID strictly. Trailing NUL and space padding must be stripped before.
pub fn validate(s: &str) -> Result<(), UidError> {
    if s.is_empty() {
        return Err(UidError::Empty);
    }
    if s.len() > 64 {
        return Err(UidError::TooLong(s.len()));
    }
    for comp in s.split('.') {
        if comp.is_empty() {
            return Err(UidError::EmptyComponent);
        }
        if let Some(c) = comp.chars().find(|c| !c.is_ascii_digit()) {
            return Err(UidError::BadChar(c));
        }
        if comp.len() > 1 && comp.starts_with('0') {
            return Err(UidError::LeadingZero(comp.to_string()));
        }
    }
    Ok(())
}

/// Checks a UID leniently, as real modalities send them: digits and dots only,
/// at most 64 characters, no empty component. Leading zeros (a common vendor
/// defect) are tolerated, since refusing them would refuse real studies.
pub fn validate_lenient(s: &str) -> Result<(), UidError> {
    match validate(s) {
        Err(UidError::LeadingZero(_)) => Ok(()),
        other => other,
    }
}

/// Strips the padding DICOM allows on UI values (trailing NUL, and spaces that
/// some writers add by mistake).
pub fn trim_padding(s: &str) -> &str {
    s.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

/// A new UID under the `2.25` root: the decimal form of a random 128-bit value
/// (PS3.5 §B.2). Always at most 44 characters.
pub fn generate() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    // RFC 4122 version 4 / variant bits, so the value is a valid UUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(buf).is_ok()
    {
        return;
    }
    // Fallback: hash of time and address; only reached when /dev/urandom is absent.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(crate::time::now_nanos());
    let a = h.finish().to_le_bytes();
    let mut h2 = std::collections::hash_map::RandomState::new().build_hasher();
    h2.write_u64(u64::from_le_bytes(a) ^ 0x9e37_79b9_7f4a_7c15);
    let b = h2.finish().to_le_bytes();
    for (i, x) in buf.iter_mut().enumerate() {
        *x = if i < 8 { a[i] } else { b[i - 8] };
    }
}

/// A validated UID of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uid(String);

impl Uid {
    /// Parses leniently (see [`validate_lenient`]) after trimming padding.
    pub fn parse(s: &str) -> Result<Self, UidError> {
        let s = trim_padding(s);
        validate_lenient(s)?;
        Ok(Uid(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Uid {
    type Error = UidError;
    fn try_from(s: String) -> Result<Self, UidError> {
        Uid::parse(&s)
    }
}
impl From<Uid> for String {
    fn from(u: Uid) -> String {
        u.0
    }
}
impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uid_newtype {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A validated ", $what, ".")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Uid);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, UidError> {
                Uid::parse(s).map($name)
            }
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }
        impl TryFrom<String> for $name {
            type Error = UidError;
            fn try_from(s: String) -> Result<Self, UidError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(u: $name) -> String {
                u.0.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

uid_newtype!(StudyUid, "Study Instance UID (0020,000D)");
uid_newtype!(SeriesUid, "Series Instance UID (0020,000E)");
uid_newtype!(SopUid, "SOP Instance UID (0008,0018)");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_refuses_invalid() {
        assert!(validate("1.2.840.10008.1.2.1").is_ok());
        assert_eq!(validate(""), Err(UidError::Empty));
        assert_eq!(validate("1..2"), Err(UidError::EmptyComponent));
        assert_eq!(validate("1.2."), Err(UidError::EmptyComponent));
        assert_eq!(validate("1.2a"), Err(UidError::BadChar('a')));
        assert!(matches!(validate("1.02"), Err(UidError::LeadingZero(_))));
        assert!(validate_lenient("1.02").is_ok());
        assert!(matches!(validate(&"1".repeat(65)), Err(UidError::TooLong(65))));
    }

    #[test]
    fn trims_padding() {
        assert_eq!(Uid::parse("1.2.3\0").unwrap().as_str(), "1.2.3");
        assert_eq!(StudyUid::parse("1.2.3 ").unwrap().as_str(), "1.2.3");
    }

    #[test]
    fn generated_uids_are_valid_and_distinct() {
        let a = generate();
        let b = generate();
        assert!(a.starts_with("2.25."));
        assert!(a.len() <= 64);
        validate(&a).unwrap();
        assert_ne!(a, b);
    }
}
