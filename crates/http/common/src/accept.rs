//! `Accept` header parsing (RFC 9110 §12.5.1) for DICOMweb negotiation, where
//! media-type parameters (`type`, `transfer-syntax`) matter.

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `type/subtype`, lower case (`multipart/related`, `*/*`).
    pub essence: String,
    /// Parameters with lower-case names and unquoted values.
    pub params: Vec<(String, String)>,
    pub q: f32,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// True for `*/*` and `type/*` ranges that cover `essence`.
    pub fn covers(&self, essence: &str) -> bool {
        if self.essence == "*/*" || self.essence == essence {
            return true;
        }
        match self.essence.strip_suffix("/*") {
            Some(t) => essence.split('/').next() == Some(t),
            None => false,
        }
    }
}

/// Parses a media type with parameters (`multipart/related; type="application/dicom"`).
pub fn parse_media_type(s: &str) -> Option<MediaRange> {
    let mut parts = split_outside_quotes(s, ';').into_iter();
    let essence = parts.next()?.trim().to_ascii_lowercase();
    if essence.is_empty() || !essence.contains('/') {
        return None;
    }
    let mut params = Vec::new();
    let mut q = 1.0;
    for p in parts {
        let Some((k, v)) = p.split_once('=') else { continue };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().trim_matches('"').to_string();
        if k == "q" {
            q = v.parse().unwrap_or(1.0);
        } else {
            params.push((k, v));
        }
    }
    Some(MediaRange { essence, params, q })
}

/// Splits on `sep` outside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if c == sep && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// Parses an `Accept` header (all values) into media ranges ordered by
/// preference (q-value, then order). An absent header is `*/*`.
pub fn parse_accept(values: &[&str]) -> Vec<MediaRange> {
    let mut out: Vec<MediaRange> = values
        .iter()
        .flat_map(|v| split_outside_quotes(v, ','))
        .filter_map(|r| parse_media_type(&r))
        .filter(|r| r.q > 0.0)
        .collect();
    if out.is_empty() {
        out.push(MediaRange { essence: "*/*".into(), params: Vec::new(), q: 1.0 });
    }
    out.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal));
    out
}

/// The `Accept` header values of a request.
pub fn accept_of(headers: &axum::http::HeaderMap) -> Vec<MediaRange> {
    let values: Vec<&str> = headers.get_all(axum::http::header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
    parse_accept(&values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicomweb_accepts() {
        let a = parse_accept(&[r#"multipart/related; type="application/dicom"; transfer-syntax=*, application/dicom;q=0.5"#]);
        assert_eq!(a[0].essence, "multipart/related");
        assert_eq!(a[0].param("type"), Some("application/dicom"));
        assert_eq!(a[0].param("transfer-syntax"), Some("*"));
        assert_eq!(a[1].q, 0.5);
        let a = parse_accept(&["multipart/related; type=application/octet-stream; transfer-syntax=*"]);
        assert_eq!(a[0].param("type"), Some("application/octet-stream"));
        assert_eq!(parse_accept(&[])[0].essence, "*/*");
        assert!(parse_accept(&["image/*"])[0].covers("image/jpeg"));
        assert!(!parse_accept(&["image/*"])[0].covers("application/dicom"));
    }
}
