//! Passwords: Argon2id hashing in PHC strings and the password rules of
//! MLPS level 3 (length, character classes, no user name, no common
//! passwords, maximum age), with messages in English and Chinese.

use std::fmt;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::SecurityError;
use crate::token::random_bytes;

/// Argon2id memory cost in KiB (OWASP's recommended minimum).
pub const ARGON2_M_COST: u32 = 19_456;
/// Argon2id passes.
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_P_COST: u32 = 1;
/// Longest password accepted by [`PasswordRules::check`], in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_COST, ARGON2_T_COST, ARGON2_P_COST, None)
        .expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with Argon2id (m=19456 KiB, t=2, p=1, 16-byte random
/// salt) into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash_password(pw: &str) -> Result<String, SecurityError> {
    let salt = random_bytes::<16>();
    hasher()
        .hash_password_with_salt(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecurityError::PasswordHash(e.to_string()))
}

/// Whether `pw` matches the PHC string `phc`; false when `phc` is malformed.
/// The parameters stored in `phc` are used.
pub fn verify_password(phc: &str, pw: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm.as_str() != "argon2id" {
        return false;
    }
    Argon2::default()
        .verify_password(pw.as_bytes(), &hash)
        .is_ok()
}

/// Whether a stored hash was made with other (older) parameters and should
/// be replaced with [`hash_password`] at the next successful login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    hash.algorithm.as_str() != "argon2id"
        || hash.version != Some(Version::V0x13 as u32)
        || params.m_cost() != ARGON2_M_COST
        || params.t_cost() != ARGON2_T_COST
        || params.p_cost() != ARGON2_P_COST
}

/// Password policy. The defaults meet MLPS level 3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordRules {
    /// Minimum length in characters.
    pub min_length: usize,
    /// Minimum number of character classes among lowercase, uppercase,
    /// digits and symbols (anything else).
    pub min_classes: usize,
    /// Days after which a password must be changed; 0 = never.
    pub max_age_days: u32,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self {
            min_length: 10,
            min_classes: 3,
            max_age_days: 90,
        }
    }
}

/// Why a password was refused. `Display` is English; [`PasswordProblem::zh`]
/// gives the Chinese message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password must be at least {min} characters long")]
    TooShort { min: usize },
    #[error(
        "the password must mix at least {min} of: lowercase letters, uppercase letters, digits, symbols"
    )]
    TooFewClasses { min: usize },
    #[error("the password must not contain the user name")]
    ContainsUsername,
    #[error("the password must be at most 128 characters long")]
    TooLong,
    #[error("the password is too common; choose another one")]
    Common,
}

impl PasswordProblem {
    /// The message in Simplified Chinese.
    pub fn zh(&self) -> String {
        match self {
            Self::TooShort { min } => format!("密码至少需要 {min} 个字符"),
            Self::TooFewClasses { min } => {
                format!("密码须至少包含小写字母、大写字母、数字、符号中的 {min} 类")
            }
            Self::ContainsUsername => "密码不能包含用户名".to_owned(),
            Self::TooLong => format!("密码不能超过 {MAX_PASSWORD_CHARS} 个字符"),
            Self::Common => "密码过于常见，请换一个".to_owned(),
        }
    }
}

/// Obvious passwords refused whatever their length and classes (compared
/// case-insensitively).
const COMMON: &[&str] = &[
    "password123!",
    "password@123",
    "password#123",
    "password1234",
    "password123",
    "p@ssw0rd123",
    "p@ssw0rd1234",
    "p@ssw0rd!",
    "passw0rd!",
    "passw0rd123",
    "admin@123",
    "admin@1234",
    "admin@12345",
    "admin123!",
    "admin123456",
    "admin#123",
    "administrator1",
    "administrator@1",
    "root@123",
    "root@1234",
    "root123456",
    "12345678aa!",
    "123456789aa",
    "1234567890a",
    "1qaz@wsx",
    "1qaz@wsx3edc",
    "1qaz2wsx3edc",
    "1qaz!qaz2wsx",
    "qwer1234!",
    "qwerty123!",
    "qwerty12345",
    "qwe123!@#",
    "asdf1234!",
    "abc123456!",
    "abcd1234!",
    "abcd@1234",
    "aa123456!",
    "a123456789",
    "a1234567890",
    "welcome123!",
    "welcome@123",
    "changeme123",
    "changeme!1",
    "letmein123!",
    "iloveyou123",
    "huawei@123",
    "huawei12#$",
    "woaini1314!",
    "woaini520!",
    "zaq12wsx!",
    "test@1234",
    "test123456",
    "yunying@123",
    "pacs@12345",
    "hospital123",
    "doctor@123",
];

impl PasswordRules {
    /// Checks `pw` for `username` against the rules.
    pub fn check(&self, username: &str, pw: &str) -> Result<(), PasswordProblem> {
        let len = pw.chars().count();
        if len > MAX_PASSWORD_CHARS {
            return Err(PasswordProblem::TooLong);
        }
        if len < self.min_length {
            return Err(PasswordProblem::TooShort {
                min: self.min_length,
            });
        }
        let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
        for c in pw.chars() {
            match c {
                'a'..='z' => lower = true,
                'A'..='Z' => upper = true,
                '0'..='9' => digit = true,
                _ => symbol = true,
            }
        }
        let classes = [lower, upper, digit, symbol]
            .into_iter()
            .filter(|&b| b)
            .count();
        if classes < self.min_classes {
            return Err(PasswordProblem::TooFewClasses {
                min: self.min_classes,
            });
        }
        let user = username.trim().to_lowercase();
        let lowered = pw.to_lowercase();
        if user.chars().count() >= 3 && lowered.contains(&user) {
            return Err(PasswordProblem::ContainsUsername);
        }
        if COMMON.contains(&lowered.as_str()) {
            return Err(PasswordProblem::Common);
        }
        Ok(())
    }

    /// Whether a password last changed at `changed_unix` (seconds) has
    /// expired at `now_unix`. Never when `max_age_days` is 0.
    pub fn is_expired(&self, changed_unix: u64, now_unix: u64) -> bool {
        self.max_age_days != 0
            && now_unix.saturating_sub(changed_unix) >= u64::from(self.max_age_days) * 86_400
    }
}

impl fmt::Display for PasswordRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at least {} characters, {} of 4 character classes, changed every {} days",
            self.min_length, self.min_classes, self.max_age_days
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let phc = hash_password("correct horse Battery 9").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse Battery 9"));
        assert!(!verify_password(&phc, "correct horse battery 9"));
        assert!(!needs_rehash(&phc));
        // Salted: two hashes of one password differ.
        assert_ne!(phc, hash_password("correct horse Battery 9").unwrap());
    }

    #[test]
    fn malformed_hashes_are_refused() {
        assert!(!verify_password("", "x"));
        assert!(!verify_password("not a hash", "x"));
        assert!(!verify_password("$argon2id$v=19$m=19456,t=2,p=1$bad", "x"));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn old_parameters_need_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).unwrap(),
        )
        .hash_password_with_salt(b"pw", &[7u8; 16])
        .unwrap()
        .to_string();
        assert!(verify_password(&weak, "pw"));
        assert!(needs_rehash(&weak));
    }

    #[test]
    fn rules() {
        let r = PasswordRules::default();
        assert_eq!(r.check("zhangsan", "Xk9#mq2!vB"), Ok(()));
        assert_eq!(
            r.check("zhangsan", "Xk9#mq2!v"),
            Err(PasswordProblem::TooShort { min: 10 })
        );
        assert_eq!(
            r.check("zhangsan", "abcdefghij1"),
            Err(PasswordProblem::TooFewClasses { min: 3 })
        );
        assert_eq!(r.check("zhangsan", "abcdefghiJ1"), Ok(()));
        assert_eq!(
            r.check("zhangsan", "影像归档系统安全口令ab"),
            Err(PasswordProblem::TooFewClasses { min: 3 })
        );
        assert_eq!(r.check("zhangsan", "影像归档系统安全口令aB"), Ok(()));
        assert_eq!(
            r.check("ZhangSan", "my-zhangsan-9X"),
            Err(PasswordProblem::ContainsUsername)
        );
        assert_eq!(
            r.check("li", "li-Strong-9x"),
            Ok(()),
            "short user names are not searched"
        );
        assert_eq!(
            r.check("u", &"aB3!".repeat(33)),
            Err(PasswordProblem::TooLong)
        );
        assert_eq!(r.check("u", &"aB3!".repeat(32)), Ok(()));
        for common in ["Password123!", "Admin@123", "12345678aA!", "1qaz@WSX3edc"] {
            let strict = PasswordRules {
                min_length: 8,
                ..PasswordRules::default()
            };
            assert_eq!(
                strict.check("someone", common),
                Err(PasswordProblem::Common),
                "{common}"
            );
        }
    }

    #[test]
    fn messages_in_both_languages() {
        let p = PasswordProblem::TooShort { min: 10 };
        assert_eq!(
            p.to_string(),
            "the password must be at least 10 characters long"
        );
        assert_eq!(p.zh(), "密码至少需要 10 个字符");
        let p = PasswordProblem::TooFewClasses { min: 3 };
        assert!(p.to_string().contains("at least 3 of"));
        assert_eq!(
            p.zh(),
            "密码须至少包含小写字母、大写字母、数字、符号中的 3 类"
        );
        assert_eq!(PasswordProblem::ContainsUsername.zh(), "密码不能包含用户名");
        assert_eq!(PasswordProblem::TooLong.zh(), "密码不能超过 128 个字符");
        assert_eq!(PasswordProblem::Common.zh(), "密码过于常见，请换一个");
        assert!(PasswordProblem::Common.to_string().contains("too common"));
    }

    #[test]
    fn expiry() {
        let r = PasswordRules::default();
        assert!(!r.is_expired(0, 89 * 86_400));
        assert!(r.is_expired(0, 90 * 86_400));
        let never = PasswordRules {
            max_age_days: 0,
            ..r
        };
        assert!(!never.is_expired(0, u64::MAX));
    }
}
