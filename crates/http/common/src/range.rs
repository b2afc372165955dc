//! Single byte-range requests (RFC 9110 §14): `Range: bytes=a-b`, `a-`, `-n`.

/// A resolved range: `start..=end` within a body of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.start, self.end)
    }
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range (or a multi-range request we answer in full).
    Full,
    Partial(ByteRange),
    /// Cannot be satisfied: answer 416.
    Unsatisfiable,
}

/// Resolves a `Range` header value against a body of `total` bytes.
pub fn resolve(header: Option<&str>, total: u64) -> RangeRequest {
    let Some(h) = header else { return RangeRequest::Full };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeRequest::Full };
    if spec.contains(',') {
        return RangeRequest::Full; // several ranges: the full body is a valid answer
    }
    let Some((a, b)) = spec.split_once('-') else { return RangeRequest::Full };
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else { return RangeRequest::Full };
        if n == 0 || total == 0 {
            return RangeRequest::Unsatisfiable;
        }
        ByteRange { start: total.saturating_sub(n), end: total - 1 }
    } else {
        let Ok(start) = a.parse::<u64>() else { return RangeRequest::Full };
        if start >= total {
            return RangeRequest::Unsatisfiable;
        }
        let end = if b.is_empty() { total - 1 } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(total - 1),
                _ => return RangeRequest::Full,
            }
        };
        ByteRange { start, end }
    };
    RangeRequest::Partial(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ranges() {
        assert_eq!(resolve(Some("bytes=0-99"), 1000), RangeRequest::Partial(ByteRange { start: 0, end: 99 }));
        assert_eq!(resolve(Some("bytes=900-"), 1000), RangeRequest::Partial(ByteRange { start: 900, end: 999 }));
        assert_eq!(resolve(Some("bytes=-100"), 1000), RangeRequest::Partial(ByteRange { start: 900, end: 999 }));
        assert_eq!(resolve(Some("bytes=990-2000"), 1000), RangeRequest::Partial(ByteRange { start: 990, end: 999 }));
        assert_eq!(resolve(Some("bytes=1000-"), 1000), RangeRequest::Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-1,5-6"), 1000), RangeRequest::Full);
        assert_eq!(resolve(None, 1000), RangeRequest::Full);
        assert_eq!(ByteRange { start: 0, end: 99 }.content_range(1000), "bytes 0-99/1000");
    }
}
