//! A small STOW-RS client: `yunying synth --url` and `yunying import --url`
//! send objects to a running server with it, authenticated by the API token
//! in `YUNYING_TOKEN` (`yunying token create --actions store`).

use bytes::Bytes;

/// What a STOW-RS request achieved.
#[derive(Debug, Clone, Default)]
pub struct StowSummary {
    pub status: u16,
    pub stored: usize,
    pub failed: usize,
    pub warnings: Vec<String>,
}

/// Sends Part-10 objects to a DICOMweb server.
#[derive(Clone)]
pub struct StowClient {
    http: reqwest::Client,
    /// The DICOMweb root, e.g. `http://127.0.0.1:8080/dicom-web`.
    base: String,
}

impl StowClient {
    pub fn new(base: &str) -> StowClient {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(token) = std::env::var("YUNYING_TOKEN")
            && let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        {
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let http = reqwest::Client::builder().default_headers(headers).build().unwrap_or_default();
        StowClient { http, base: base.trim_end_matches('/').to_string() }
    }

    /// Stores objects in one multipart request.
    pub async fn store(&self, objects: Vec<Bytes>) -> Result<StowSummary, String> {
        let boundary = format!("yunying-{}", yunying_util::uid::generate().replace('.', ""));
        let mut body = Vec::with_capacity(objects.iter().map(|o| o.len() + 100).sum());
        for o in &objects {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes());
            body.extend_from_slice(o);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let resp = self
            .http
            .post(format!("{}/studies", self.base))
            .header("Content-Type", format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"))
            .header("Accept", "application/dicom+json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let body = resp.bytes().await.unwrap_or_default();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let count = |tag: &str| json[tag]["Value"].as_array().map(|a| a.len()).unwrap_or(0);
        Ok(StowSummary { status, stored: count("00081199"), failed: count("00081198"), warnings })
    }
}
