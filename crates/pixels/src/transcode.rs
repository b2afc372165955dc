//! Transcoding one frame from the transfer syntax it is stored in to the one
//! a client asks for: decode ([`crate::decode_frame`]), then encode with the
//! encoder of the target syntax. Lossless targets give back exactly the
//! stored values; the only lossy target is JPEG Baseline, for 8-bit images.
//!
//! Colour frames are decoded to RGB, so a transcoded colour object changes
//! its Photometric Interpretation: [`Transcoded::photometric`] says to what.

use crate::decode::{DecodedFrame, Samples};
use crate::{ImageInfo, NativeFrame, Photometric, PixelError};

pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const RLE: &str = "1.2.840.10008.1.2.5";
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
pub const JPEG_2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
pub const HTJ2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.201";
pub const HTJ2K_LOSSLESS_RPCL: &str = "1.2.840.10008.1.2.4.202";

/// Transfer syntaxes frames can be encoded to, best first for a client that
/// accepts several (lossless, then small, then simple).
pub const ENCODABLE: &[&str] = &[
    HTJ2K_LOSSLESS_RPCL,
    HTJ2K_LOSSLESS,
    JPEG_LS_LOSSLESS,
    JPEG_2000_LOSSLESS,
    RLE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    JPEG_BASELINE,
];

/// Whether frames can be encoded to `ts`.
pub fn can_encode(ts: &str) -> bool {
    ENCODABLE.contains(&ts)
}

/// Whether `ts` keeps every stored value (all targets but JPEG Baseline).
pub fn is_lossless_target(ts: &str) -> bool {
    can_encode(ts) && ts != JPEG_BASELINE
}

/// A frame in its new transfer syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcoded {
    /// The frame's bytes: native little endian, or one encapsulated frame.
    pub bytes: Vec<u8>,
    /// The Photometric Interpretation the object must now declare, when it
    /// changes (colour decoded to RGB, or colour-transformed by the encoder).
    pub photometric: Option<&'static str>,
    /// For a lossy target: the method named in Lossy Image Compression Method
    /// (0028,2114) and the ratio (0028,2112).
    pub lossy: Option<(&'static str, f64)>,
}

/// Decodes a stored frame and encodes it in `target`.
pub fn transcode_frame(info: &ImageInfo, stored: &str, bytes: &[u8], target: &str) -> Result<Transcoded, PixelError> {
    if !can_encode(target) {
        return Err(PixelError::Unsupported(format!("encoding to transfer syntax {target}")));
    }
    let decoded = crate::decode_frame(info, stored, bytes)?;
    encode_decoded(info, &decoded, target)
}

/// Encodes a decoded frame in `target`.
pub fn encode_decoded(info: &ImageInfo, decoded: &DecodedFrame, target: &str) -> Result<Transcoded, PixelError> {
    let (native, colour) = match &decoded.data {
        Samples::Gray(_) => (crate::native_bytes(info, decoded)?, false),
        // Colour is decoded to 8 bits per sample: deeper colour would lose bits.
        Samples::Color(_) if info.bits_allocated != 8 => {
            return Err(PixelError::Unsupported(format!(
                "transcoding colour with {}-bit samples (decoded to 8 bits, it would lose values)",
                info.bits_stored
            )));
        }
        Samples::Color(rgb) => (rgb.clone(), true),
    };
    let frame = NativeFrame::new(info, decoded, &native)?;
    // Decoded colour is RGB whatever the object declared.
    let rgb = (colour && info.photometric != Photometric::Rgb).then_some("RGB");
    let (bytes, photometric, lossy) = match target {
        EXPLICIT_LE | IMPLICIT_LE => (native.clone(), rgb, None),
        RLE => (crate::rle_encode::encode_rle(&frame)?, rgb, None),
        JPEG_LS_LOSSLESS => (jls_encode(&frame)?, rgb, None),
        // Both JPEG 2000 encoders apply the reversible colour transform to RGB.
        JPEG_2000_LOSSLESS => (j2k_encode(&frame)?, colour.then_some("YBR_RCT"), None),
        HTJ2K_LOSSLESS | HTJ2K_LOSSLESS_RPCL => (htj2k_encode(&frame)?, colour.then_some("YBR_RCT"), None),
        JPEG_BASELINE => {
            if frame.bits_allocated != 8 || frame.signed {
                return Err(PixelError::Unsupported(format!(
                    "JPEG Baseline of {}-bit{} data would lose its values: ask for a lossless syntax, or for a \
                     rendered image",
                    frame.bits_stored,
                    if frame.signed { " signed" } else { "" }
                )));
            }
            let out = jpeg_baseline(&frame)?;
            let ratio = native.len() as f64 / out.len().max(1) as f64;
            (out, colour.then_some("YBR_FULL"), Some(("ISO_10918_1", ratio)))
        }
        other => return Err(PixelError::Unsupported(format!("encoding to transfer syntax {other}"))),
    };
    Ok(Transcoded { bytes, photometric, lossy })
}

/// JPEG Baseline (process 1) at quality 90, 4:4:4 for colour.
fn jpeg_baseline(frame: &NativeFrame) -> Result<Vec<u8>, PixelError> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let color = if frame.samples_per_pixel == 3 { ColorType::Rgb } else { ColorType::Luma };
    let mut out = Vec::with_capacity(frame.data.len() / 6 + 1024);
    let mut enc = Encoder::new(&mut out, 90);
    enc.set_sampling_factor(SamplingFactor::F_1_1);
    enc.encode(frame.data, frame.columns, frame.rows, color)
        .map_err(|e| PixelError::Malformed(format!("JPEG encoding: {e}")))?;
    Ok(out)
}

// The encoders of the lossless syntaxes.
fn jls_encode(frame: &NativeFrame) -> Result<Vec<u8>, PixelError> {
    crate::jpegls::encode_lossless(frame)
}
fn j2k_encode(frame: &NativeFrame) -> Result<Vec<u8>, PixelError> {
    crate::jpeg2000_encode::encode_j2k_lossless(frame)
}
fn htj2k_encode(frame: &NativeFrame) -> Result<Vec<u8>, PixelError> {
    crate::jpeg2000_encode::encode_htj2k(frame, &crate::jpeg2000_encode::HtOptions::default())
}
