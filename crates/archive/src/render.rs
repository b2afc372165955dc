//! Rendered images (PS3.18 "rendered" and "thumbnail" resources, WADO-URI):
//! a stored frame decoded (`yunying-pixels`), put through the modality LUT,
//! the VOI window (the request's, else the object's, else the frame's
//! range) and the presentation of its photometric interpretation, sized to
//! the requested viewport and encoded as JPEG or PNG. The object's header
//! is parsed from the stored file (pixel data is skipped, not read); frames
//! come from the byte ranges recorded at ingest.

use std::io::Cursor;

use bytes::Bytes;
use yunying_index::StoredInstance;
use yunying_pixels::{RenderOptions, VoiFunction};

use crate::{Archive, ArchiveError};

/// The image formats a rendered resource can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    /// Lossless WebP.
    Webp,
}

impl ImageFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
        }
    }
}

/// What the client asked of the rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderRequest {
    pub format: ImageFormat,
    /// Window centre and width, and the VOI LUT function.
    pub window: Option<(f64, f64, VoiFunction)>,
    /// Fit inside this many columns and rows (aspect kept).
    pub viewport: Option<(u32, u32)>,
    /// JPEG quality, 1-100.
    pub quality: u8,
}

impl Default for RenderRequest {
    fn default() -> Self {
        RenderRequest { format: ImageFormat::Jpeg, window: None, viewport: None, quality: 90 }
    }
}

impl Archive {
    /// Frame `frame` (1-based) of an instance, rendered.
    pub async fn render(&self, inst: &StoredInstance, frame: u32, req: &RenderRequest) -> Result<Bytes, ArchiveError> {
        let key = format!(
            "r/{}/{frame}/{:?}/{:?}/{:?}/{}",
            inst.sha256, req.format, req.window, req.viewport, req.quality
        );
        if let Some(hit) = self.output_cache.get(&key) {
            return Ok(hit);
        }
        let out = self.render_uncached(inst, frame, req).await?;
        self.output_cache.put(&key, out.clone());
        Ok(out)
    }

    async fn render_uncached(&self, inst: &StoredInstance, frame: u32, req: &RenderRequest) -> Result<Bytes, ArchiveError> {
        let img = self.rendered_pixels(inst, frame, req.window, req.viewport).await?;
        let (format, quality) = (req.format, req.quality);
        tokio::task::spawn_blocking(move || {
            let encoded = match format {
                ImageFormat::Jpeg => yunying_pixels::encode::to_jpeg(&img, quality),
                ImageFormat::Png => yunying_pixels::encode::to_png(&img),
                ImageFormat::Webp => yunying_pixels::encode::to_webp(&img),
            }
            .map_err(|e| ArchiveError::NotAcceptable(format!("cannot encode the rendered image: {e}")))?;
            Ok(Bytes::from(encoded))
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))?
    }

    /// Frame `frame` of an instance rendered to 8 bits (not encoded).
    pub(crate) async fn rendered_pixels(
        &self,
        inst: &StoredInstance,
        frame: u32,
        window: Option<(f64, f64, VoiFunction)>,
        viewport: Option<(u32, u32)>,
    ) -> Result<yunying_pixels::Rendered, ArchiveError> {
        // Enhanced multi-frame objects: this frame's rescale and window.
        let header = self.image_header(inst).await?.for_frame(frame);
        let data = self.frames(inst, &[frame]).await?.remove(0);
        // Native frames come out little endian whatever the stored syntax
        // (big endian swapped, deflated inflated).
        let ts = match inst.transfer_syntax.as_str() {
            "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99" => "1.2.840.10008.1.2.1".to_string(),
            other => other.to_string(),
        };
        tokio::task::spawn_blocking(move || {
            let opts = RenderOptions { window, viewport, quality: 90 };
            yunying_pixels::render_frame(&header, &ts, &data.bytes, &opts).map_err(|e| match e {
                yunying_pixels::PixelError::Unsupported(m) => {
                    ArchiveError::NotAcceptable(format!("cannot render this object yet: {m}"))
                }
                other => ArchiveError::BadRequest(format!("cannot render this object: {other}")),
            })
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))?
    }

    /// The image attributes of an instance, from its stored header.
    pub(crate) async fn image_header(&self, inst: &StoredInstance) -> Result<yunying_pixels::ImageInfo, ArchiveError> {
        let len = inst.size_bytes as u64;
        let opts = self.settings.parse.clone();
        let local = self.blobs.local_path(&inst.blob_key);
        // A local file is parsed in place (the pixel data is skipped);
        // otherwise the object is fetched.
        let bytes = match &local {
            Some(_) => None,
            None => Some(self.blobs.get_range(&inst.blob_key, 0, len).await?),
        };
        let sop = inst.sop_uid.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let open = |path: &std::path::Path| {
                std::fs::File::open(path).map_err(|e| ArchiveError::Internal(format!("cannot open {sop}: {e}")))
            };
            let parsed = match (&local, &bytes) {
                (Some(path), _) => yunying_dicom::parse::parse_part10(&mut std::io::BufReader::new(open(path)?), len, &opts),
                (None, Some(b)) => yunying_dicom::parse::parse_part10(&mut Cursor::new(&b[..]), len, &opts),
                (None, None) => unreachable!("either a local path or the bytes"),
            }
            .map_err(|e| ArchiveError::Internal(format!("cannot read the header of {sop}: {e}")))?;
            // Values the parser left in place (a palette's tables) are read when needed.
            let mut file = match &local {
                Some(path) => Some(open(path)?),
                None => None,
            };
            let bulk = |offset: u64, length: u64| -> Option<Vec<u8>> {
                match (&mut file, &bytes) {
                    (Some(f), _) => {
                        let mut buf = vec![0u8; usize::try_from(length).ok()?];
                        f.seek(SeekFrom::Start(offset)).ok()?;
                        f.read_exact(&mut buf).ok()?;
                        Some(buf)
                    }
                    (None, Some(b)) => b.get(offset as usize..(offset + length) as usize).map(<[u8]>::to_vec),
                    _ => None,
                }
            };
            yunying_pixels::ImageInfo::from_dataset_with(&parsed.dataset, parsed.encoding.big_endian, bulk)
                .map_err(|e| ArchiveError::NotAcceptable(format!("{sop} is not an image that can be rendered: {e}")))
        })
        .await
        .map_err(|e| ArchiveError::Internal(e.to_string()))?
    }
}
