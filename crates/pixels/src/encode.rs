//! Rendered images to JPEG (jpeg-encoder, baseline 8-bit), PNG (png) and
//! lossless WebP (image-webp).

use crate::PixelError;
use crate::render::Rendered;

/// Baseline JPEG at `quality` (1-100).
pub fn to_jpeg(img: &Rendered, quality: u8) -> Result<Vec<u8>, PixelError> {
    use jpeg_encoder::{ColorType, Encoder};
    let (w, h) = dims16(img)?;
    let color = if img.channels == 3 {
        ColorType::Rgb
    } else {
        ColorType::Luma
    };
    let mut out = Vec::with_capacity(img.pixels.len() / 8 + 1024);
    Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(&img.pixels, w, h, color)
        .map_err(|e| PixelError::Malformed(format!("JPEG encoding: {e}")))?;
    Ok(out)
}

/// PNG, 8 bits per sample, grayscale or RGB.
pub fn to_png(img: &Rendered) -> Result<Vec<u8>, PixelError> {
    let mut out = Vec::with_capacity(img.pixels.len() / 2 + 1024);
    {
        let mut enc = png::Encoder::new(&mut out, img.width, img.height);
        enc.set_color(if img.channels == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let err = |e: png::EncodingError| PixelError::Malformed(format!("PNG encoding: {e}"));
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(&img.pixels).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}

/// Lossless WebP, grayscale or RGB.
pub fn to_webp(img: &Rendered) -> Result<Vec<u8>, PixelError> {
    use image_webp::{ColorType, WebPEncoder};
    let mut out = Vec::with_capacity(img.pixels.len() / 2 + 1024);
    let color = if img.channels == 3 { ColorType::Rgb8 } else { ColorType::L8 };
    WebPEncoder::new(&mut out)
        .encode(&img.pixels, img.width, img.height, color)
        .map_err(|e| PixelError::Malformed(format!("WebP encoding: {e}")))?;
    Ok(out)
}

fn dims16(img: &Rendered) -> Result<(u16, u16), PixelError> {
    match (u16::try_from(img.width), u16::try_from(img.height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(PixelError::Unsupported(format!(
            "a {}x{} JPEG",
            img.width, img.height
        ))),
    }
}
