//! Masking of personal data for display and logs (national ids, phone
//! numbers, names): what staff see when they do not need the whole value.

/// Keeps the first `head` and last `tail` characters, masking the rest
/// with `*` (one per character). Values too short keep less.
fn keep(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n <= head + tail {
        return mask(s);
    }
    chars[..head]
        .iter()
        .copied()
        .chain(std::iter::repeat_n('*', n - head - tail))
        .chain(chars[n - tail..].iter().copied())
        .collect()
}

/// `110101199003071234` → `1101**********1234` (first 4 and last 4 kept).
pub fn mask_national_id(s: &str) -> String {
    keep(s.trim(), 4, 4)
}

/// `13800135678` → `138****5678` (first 3 and last 4 kept).
pub fn mask_phone(s: &str) -> String {
    keep(s.trim(), 3, 4)
}

/// Generic mask keeping the first and last character: `王小明` → `王*明`,
/// `张三` → `张*`, `a` → `*`.
pub fn mask(s: &str) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut out = String::with_capacity(n + 2);
            out.push(chars[0]);
            out.extend(std::iter::repeat_n('*', n - 2));
            out.push(chars[n - 1]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_id() {
        assert_eq!(mask_national_id("110101199003071234"), "1101**********1234");
        assert_eq!(mask_national_id("11010119900307123X"), "1101**********123X");
        assert_eq!(mask_national_id("12345678"), "1******8");
        assert_eq!(mask_national_id(""), "");
    }

    #[test]
    fn phone() {
        assert_eq!(mask_phone("13800135678"), "138****5678");
        assert_eq!(mask_phone(" 13800135678 "), "138****5678");
        assert_eq!(mask_phone("1234567"), "1*****7");
    }

    #[test]
    fn generic() {
        assert_eq!(mask("王小明"), "王*明");
        assert_eq!(mask("张三"), "张*");
        assert_eq!(mask("a"), "*");
        assert_eq!(mask(""), "");
        assert_eq!(mask("alice@example.org"), "a***************g");
        assert_eq!(mask("欧阳娜娜"), "欧**娜");
    }
}
