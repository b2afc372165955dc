//! One frame's stored bytes to sample values: native pixel data, RLE
//! Lossless (PS3.5 Annex G, our own decoder), JPEG (baseline, extended
//! 8-bit and lossless through jpeg-decoder; extended 12-bit through our own
//! decoder, `jpeg_extended`), JPEG-LS lossless and near-lossless
//! (through CharLS 2.4, [`crate::jpegls`]) and JPEG 2000 and HTJ2K (through
//! OpenJPEG 2.5, see [`crate::openjpeg_decode`]).

use crate::PixelError;
use crate::image_info::{ImageInfo, Photometric};

/// Transfer syntaxes decoded here.
pub mod ts {
    pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
    pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
    pub const DEFLATED_LE: &str = "1.2.840.10008.1.2.1.99";
    pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
    pub const RLE: &str = "1.2.840.10008.1.2.5";
    pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
    pub const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
    pub const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.57";
    pub const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
    pub const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
    pub const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";
    pub const JPEG_2000_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
    pub const JPEG_2000: &str = "1.2.840.10008.1.2.4.91";
    pub const HTJ2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.201";
    pub const HTJ2K_LOSSLESS_RPCL: &str = "1.2.840.10008.1.2.4.202";
    pub const HTJ2K: &str = "1.2.840.10008.1.2.4.203";
}

/// True when [`decode_frame`] knows the transfer syntax.
pub fn is_supported(transfer_syntax: &str) -> bool {
    use ts::*;
    matches!(
        transfer_syntax,
        IMPLICIT_LE
            | EXPLICIT_LE
            | DEFLATED_LE
            | EXPLICIT_BE
            | RLE
            | JPEG_BASELINE
            | JPEG_EXTENDED
            | JPEG_LOSSLESS
            | JPEG_LOSSLESS_SV1
            | JPEG_LS_LOSSLESS
            | JPEG_LS_NEAR_LOSSLESS
            | JPEG_2000_LOSSLESS
            | JPEG_2000
            | HTJ2K_LOSSLESS
            | HTJ2K_LOSSLESS_RPCL
            | HTJ2K
    )
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    pub rows: u16,
    pub columns: u16,
    /// 1 (grayscale or palette indices) or 3 (RGB).
    pub samples: u16,
    pub data: Samples,
}

/// The values of a decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Samples {
    /// Stored values, masked to Bits Stored and sign-extended when Pixel
    /// Representation is 1 (MONOCHROME1/2, PALETTE COLOR indices).
    Gray(Vec<i32>),
    /// Interleaved 8-bit RGB (YBR_FULL, YBR_FULL_422 and colour-by-plane
    /// already converted).
    Color(Vec<u8>),
}

/// Decodes one frame. `frame_bytes` are the frame as stored: native bytes in
/// the object's byte order (deflated objects: from the inflated data set), or
/// the frame's fragments concatenated for encapsulated syntaxes.
pub fn decode_frame(
    info: &ImageInfo,
    transfer_syntax: &str,
    frame_bytes: &[u8],
) -> Result<DecodedFrame, PixelError> {
    if info.bits_allocated == 1 {
        return Err(PixelError::Unsupported("1-bit pixel data".into()));
    }
    let j2k = matches!(
        transfer_syntax,
        ts::JPEG_2000_LOSSLESS
            | ts::JPEG_2000
            | ts::HTJ2K_LOSSLESS
            | ts::HTJ2K_LOSSLESS_RPCL
            | ts::HTJ2K
    );
    match info.photometric {
        // The codestream's multiple component transform gives RGB back.
        Photometric::Other(ref p)
            if j2k && (p == "YBR_ICT" || p == "YBR_RCT") && info.samples_per_pixel == 3 => {}
        Photometric::Other(ref p) => {
            return Err(PixelError::Unsupported(format!(
                "photometric interpretation {p}"
            )));
        }
        Photometric::PaletteColor | Photometric::Monochrome1 | Photometric::Monochrome2
            if info.samples_per_pixel != 1 =>
        {
            return Err(PixelError::Malformed(
                "a monochrome or palette image with 3 samples per pixel".into(),
            ));
        }
        Photometric::Rgb | Photometric::YbrFull | Photometric::YbrFull422
            if info.samples_per_pixel != 3 =>
        {
            return Err(PixelError::Malformed(
                "a colour image without 3 samples per pixel".into(),
            ));
        }
        _ => {}
    }
    use ts::*;
    match transfer_syntax {
        IMPLICIT_LE | EXPLICIT_LE | DEFLATED_LE => native(info, frame_bytes, false, info.planar),
        EXPLICIT_BE => {
            if info.bits_allocated == 8 && info.pixel_data_ow {
                let mut swapped = frame_bytes.to_vec();
                for pair in swapped.chunks_exact_mut(2) {
                    pair.swap(0, 1);
                }
                native(info, &swapped, false, info.planar)
            } else {
                native(info, frame_bytes, true, info.planar)
            }
        }
        RLE => {
            let le = rle_decode(info, frame_bytes)?;
            native(info, &le, false, false)
        }
        JPEG_BASELINE | JPEG_EXTENDED | JPEG_LOSSLESS | JPEG_LOSSLESS_SV1 => {
            jpeg(info, frame_bytes)
        }
        JPEG_LS_LOSSLESS | JPEG_LS_NEAR_LOSSLESS => crate::jpegls::decode(info, frame_bytes),
        JPEG_2000_LOSSLESS | JPEG_2000 | HTJ2K_LOSSLESS | HTJ2K_LOSSLESS_RPCL | HTJ2K => {
            jpeg2000(info, frame_bytes)
        }
        other => Err(PixelError::Unsupported(format!("transfer syntax {other}"))),
    }
}

/// Masks a raw sample to Bits Stored (after High Bit) and sign-extends it.
#[inline]
pub(crate) fn stored(info: &ImageInfo, raw: u32) -> i32 {
    let bs = info.bits_stored as u32;
    let shift = info.high_bit as u32 + 1 - bs;
    let v = (raw >> shift) & if bs >= 32 { u32::MAX } else { (1u32 << bs) - 1 };
    if info.signed && bs < 32 && v & (1 << (bs - 1)) != 0 {
        (v as i64 - (1i64 << bs)) as i32
    } else {
        v as i32
    }
}

fn native(
    info: &ImageInfo,
    bytes: &[u8],
    be: bool,
    planar: bool,
) -> Result<DecodedFrame, PixelError> {
    let n = info.pixels();
    let bps = info.bits_allocated as usize / 8;
    let spp = info.samples_per_pixel as usize;
    let ybr422 = info.photometric == Photometric::YbrFull422 && spp == 3;
    let count = if ybr422 { n * 2 } else { n * spp };
    let need = count * bps;
    if bytes.len() < need {
        return Err(PixelError::Malformed(format!(
            "the frame has {} bytes, {need} expected",
            bytes.len()
        )));
    }
    let raw = |i: usize| -> u32 {
        let b = &bytes[i * bps..(i + 1) * bps];
        match (bps, be) {
            (1, _) => b[0] as u32,
            (2, false) => u16::from_le_bytes([b[0], b[1]]) as u32,
            (2, true) => u16::from_be_bytes([b[0], b[1]]) as u32,
            (_, false) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            (_, true) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        }
    };
    let (rows, columns) = (info.rows, info.columns);
    if spp == 1 {
        let data: Vec<i32> = match (bps, be) {
            (1, _) => bytes[..n].iter().map(|&b| stored(info, b as u32)).collect(),
            (2, false) => bytes[..need]
                .chunks_exact(2)
                .map(|c| stored(info, u16::from_le_bytes([c[0], c[1]]) as u32))
                .collect(),
            _ => (0..n).map(|i| stored(info, raw(i))).collect(),
        };
        return Ok(DecodedFrame {
            rows,
            columns,
            samples: 1,
            data: Samples::Gray(data),
        });
    }
    // Colour: samples to 8 bits (the top bits of Bits Stored).
    let bs = info.bits_stored as u32;
    let to8 = |i: usize| -> u8 {
        let v = stored_unsigned(info, raw(i));
        if bs > 8 {
            (v >> (bs - 8)) as u8
        } else {
            v as u8
        }
    };
    let mut out = vec![0u8; n * 3];
    if ybr422 {
        // Y1 Y2 Cb Cr for each pair of pixels in a row.
        for p in 0..n {
            let pair = p / 2;
            let y = to8(pair * 4 + (p % 2));
            let cb = to8(pair * 4 + 2);
            let cr = to8(pair * 4 + 3);
            out[p * 3..p * 3 + 3].copy_from_slice(&ybr_to_rgb(y, cb, cr));
        }
        return Ok(DecodedFrame {
            rows,
            columns,
            samples: 3,
            data: Samples::Color(out),
        });
    }
    for p in 0..n {
        for s in 0..3 {
            out[p * 3 + s] = if planar {
                to8(s * n + p)
            } else {
                to8(p * 3 + s)
            };
        }
    }
    Ok(color_frame(info, rows, columns, out))
}

/// Interleaved 8-bit colour samples as a frame, YBR_FULL converted to RGB.
fn color_frame(info: &ImageInfo, rows: u16, columns: u16, out: Vec<u8>) -> DecodedFrame {
    colour_samples(rows, columns, out, info.photometric == Photometric::YbrFull)
}

/// Interleaved 8-bit colour samples as a frame, converted from YCbCr to RGB
/// when `ybr` (the one place colour frames are made).
pub(crate) fn colour_samples(rows: u16, columns: u16, mut out: Vec<u8>, ybr: bool) -> DecodedFrame {
    if ybr {
        for px in out.chunks_exact_mut(3) {
            let rgb = ybr_to_rgb(px[0], px[1], px[2]);
            px.copy_from_slice(&rgb);
        }
    }
    DecodedFrame { rows, columns, samples: 3, data: Samples::Color(out) }
}

fn stored_unsigned(info: &ImageInfo, raw: u32) -> u32 {
    let bs = info.bits_stored as u32;
    let shift = info.high_bit as u32 + 1 - bs;
    (raw >> shift) & if bs >= 32 { u32::MAX } else { (1u32 << bs) - 1 }
}

/// YBR_FULL to RGB (PS3.3 C.7.6.3.1.2, ITU-R BT.601 full range).
#[inline]
pub fn ybr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (y as f32, cb as f32 - 128.0, cr as f32 - 128.0);
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
    ]
}

/// RLE Lossless (PS3.5 Annex G) to native little-endian, colour-by-pixel bytes.
fn rle_decode(info: &ImageInfo, bytes: &[u8]) -> Result<Vec<u8>, PixelError> {
    let n = info.pixels();
    let bps = info.bits_allocated as usize / 8;
    let spp = info.samples_per_pixel as usize;
    if info.photometric == Photometric::YbrFull422 {
        return Err(PixelError::Malformed("RLE with YBR_FULL_422".into()));
    }
    if bytes.len() < 64 {
        return Err(PixelError::Malformed(
            "the RLE header is shorter than 64 bytes".into(),
        ));
    }
    let header: Vec<u32> = bytes[..64]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let segments = header[0] as usize;
    if segments != bps * spp {
        return Err(PixelError::Malformed(format!(
            "the RLE frame has {segments} segments, {} expected",
            bps * spp
        )));
    }
    let mut out = vec![0u8; n * bps * spp];
    let mut plane = vec![0u8; n];
    for seg in 0..segments {
        let start = header[1 + seg] as usize;
        let end = if seg + 1 < segments {
            header[2 + seg] as usize
        } else {
            bytes.len()
        };
        if start < 64 || start > end || end > bytes.len() {
            return Err(PixelError::Malformed(format!(
                "RLE segment {seg} lies outside the frame"
            )));
        }
        packbits(&bytes[start..end], &mut plane)
            .map_err(|e| PixelError::Malformed(format!("RLE segment {seg}: {e}")))?;
        // Segment order: for each sample, its bytes most significant first.
        let sample = seg / bps;
        let byte_in_sample = bps - 1 - seg % bps;
        for (p, &b) in plane.iter().enumerate() {
            out[(p * spp + sample) * bps + byte_in_sample] = b;
        }
    }
    Ok(out)
}

/// PackBits into `out` (filled exactly; a short segment is an error, extra
/// output beyond the plane is ignored as the standard pads to even length).
fn packbits(src: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut i = 0;
    let mut o = 0;
    while o < out.len() {
        let Some(&h) = src.get(i) else {
            return Err(format!("ends after {o} of {} bytes", out.len()));
        };
        i += 1;
        let h = h as i8;
        if h >= 0 {
            let len = h as usize + 1;
            let lit = src
                .get(i..i + len)
                .ok_or("literal run beyond the segment")?;
            let take = len.min(out.len() - o);
            out[o..o + take].copy_from_slice(&lit[..take]);
            o += take;
            i += len;
        } else if h != -128 {
            let len = (-(h as i32)) as usize + 1;
            let &b = src.get(i).ok_or("replicate run beyond the segment")?;
            i += 1;
            let take = len.min(out.len() - o);
            out[o..o + take].fill(b);
            o += take;
        }
    }
    Ok(())
}

fn jpeg(info: &ImageInfo, bytes: &[u8]) -> Result<DecodedFrame, PixelError> {
    use jpeg_decoder::{ColorTransform, Decoder, Error, PixelFormat, UnsupportedFeature};
    // 12-bit DCT frames (JPEG Extended, process 4; progressive 12-bit is
    // refused there): jpeg-decoder has no 12-bit lossy, our decoder does.
    // Sequential 8-bit frames without chroma subsampling go there too: it
    // computes exactly what DCTMK's (IJG's) decoder does, where
    // jpeg-decoder's IDCT differs by one here and there and, on pydicom's
    // SC_jpeg_no_color_transform.dcm, by up to 110 in a few samples.
    // Subsampled colour stays with jpeg-decoder, whose upsampling
    // interpolates as IJG's does.
    if crate::jpeg_extended::frame_kind(bytes)
        .is_some_and(|k| k.is_dct() && (k.precision != 8 || (k.is_sequential_dct() && !k.subsampled)))
    {
        return crate::jpeg_extended::decode(info, bytes);
    }
    let mut dec = Decoder::new(bytes);
    match info.photometric {
        // DICOM says whether the codestream is colour-transformed; the
        // JPEG markers often do not (as DCMTK, trust the photometric).
        Photometric::Rgb => dec.set_color_transform(ColorTransform::None),
        Photometric::YbrFull | Photometric::YbrFull422 => {
            dec.set_color_transform(ColorTransform::YCbCr)
        }
        _ => {}
    }
    let pixels = match dec.decode() {
        Ok(p) => p,
        // A precision jpeg-decoder refuses that the routing above missed.
        Err(Error::Unsupported(UnsupportedFeature::SamplePrecision(_))) => {
            return crate::jpeg_extended::decode(info, bytes);
        }
        Err(Error::Unsupported(f)) => {
            return Err(PixelError::Unsupported(format!("JPEG feature {f:?}")));
        }
        Err(other) => return Err(PixelError::Malformed(format!("JPEG: {other}"))),
    };
    let meta = dec
        .info()
        .ok_or_else(|| PixelError::Malformed("JPEG without a frame header".into()))?;
    if meta.width != info.columns || meta.height != info.rows {
        return Err(PixelError::Malformed(format!(
            "the JPEG frame is {}x{}, the attributes say {}x{}",
            meta.width, meta.height, info.columns, info.rows
        )));
    }
    let (rows, columns) = (info.rows, info.columns);
    let n = info.pixels();
    match meta.pixel_format {
        PixelFormat::L8 if info.samples_per_pixel == 1 => {
            let data = pixels
                .iter()
                .take(n)
                .map(|&b| stored(info, b as u32))
                .collect();
            Ok(DecodedFrame {
                rows,
                columns,
                samples: 1,
                data: Samples::Gray(data),
            })
        }
        PixelFormat::L16 if info.samples_per_pixel == 1 => {
            let data = pixels
                .chunks_exact(2)
                .take(n)
                .map(|c| stored(info, u16::from_ne_bytes([c[0], c[1]]) as u32))
                .collect();
            Ok(DecodedFrame {
                rows,
                columns,
                samples: 1,
                data: Samples::Gray(data),
            })
        }
        PixelFormat::RGB24 if info.samples_per_pixel == 3 => {
            let mut data = pixels;
            data.truncate(n * 3);
            Ok(DecodedFrame {
                rows,
                columns,
                samples: 3,
                data: Samples::Color(data),
            })
        }
        other => Err(PixelError::Unsupported(format!(
            "JPEG output {other:?} for {} samples per pixel",
            info.samples_per_pixel
        ))),
    }
}

/// JPEG 2000 or HTJ2K (a J2K codestream or, as some writers do, a JP2 file) through
/// OpenJPEG in strict mode, so a truncated codestream is an error rather
/// than a partial image.
fn jpeg2000(info: &ImageInfo, bytes: &[u8]) -> Result<DecodedFrame, PixelError> {
    // DICOM wants a bare codestream, but some writers (GDCM) put a JP2 file
    // in the fragment: its colour box would make the decoder convert colours
    // the Photometric Interpretation already accounts for. Only the
    // codestream (`jp2c` box) is decoded.
    let bytes = jp2_codestream(bytes).unwrap_or(bytes);
    let comps = crate::openjpeg_decode::decode(bytes, crate::openjpeg_decode::DecodeOptions { strict: true, reduce: 0 })?;
    let (rows, columns) = (info.rows, info.columns);
    let n = info.pixels();
    for (i, c) in comps.iter().enumerate() {
        if c.width != columns as u32 || c.height != rows as u32 || c.data.len() != n {
            return Err(PixelError::Malformed(format!(
                "JPEG 2000 component {i} is {}x{}, the attributes say {columns}x{rows}",
                c.width, c.height
            )));
        }
    }
    match (comps.len(), info.samples_per_pixel) {
        (1, 1) => {
            let c = &comps[0];
            // OpenJPEG gives the sample values, sign-extended when the
            // codestream says signed. When the codestream's signedness
            // disagrees with Pixel Representation, the attributes rule (as
            // for native data): the bits are reinterpreted.
            let data = if c.signed == info.signed {
                c.data.clone()
            } else {
                c.data.iter().map(|&v| stored(info, v as u32)).collect()
            };
            Ok(DecodedFrame {
                rows,
                columns,
                samples: 1,
                data: Samples::Gray(data),
            })
        }
        (3, 3) => {
            let mut out = vec![0u8; n * 3];
            for (s, c) in comps.iter().enumerate() {
                let prec = c.precision;
                let offset = if c.signed { 1i64 << (prec - 1) } else { 0 };
                for (p, &v) in c.data.iter().enumerate() {
                    let v = v as i64 + offset;
                    let v = if prec > 8 { v >> (prec - 8) } else { v };
                    out[p * 3 + s] = v.clamp(0, 255) as u8;
                }
            }
            // YBR_ICT / YBR_RCT: the decoder already inverted the component
            // transform. YBR_FULL without it: components are Y, Cb, Cr.
            Ok(color_frame(info, rows, columns, out))
        }
        (c, s) => Err(PixelError::Unsupported(format!(
            "JPEG 2000 with {c} components for {s} samples per pixel"
        ))),
    }
}

/// The contiguous codestream box (`jp2c`) of a JP2 file, or `None` when
/// `bytes` is not a JP2 file (or has no such box).
fn jp2_codestream(bytes: &[u8]) -> Option<&[u8]> {
    const SIGNATURE: [u8; 12] = [0, 0, 0, 0x0C, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A];
    if !bytes.starts_with(&SIGNATURE) {
        return None;
    }
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().ok()?) as u64;
        let kind = &bytes[at + 4..at + 8];
        let (header, len) = match len {
            0 => (8, (bytes.len() - at) as u64),
            1 => {
                let l = u64::from_be_bytes(bytes.get(at + 8..at + 16)?.try_into().ok()?);
                (16, l)
            }
            l => (8, l),
        };
        let end = at.checked_add(usize::try_from(len).ok()?)?.min(bytes.len());
        if len < header as u64 {
            return None;
        }
        if kind == b"jp2c" {
            return bytes.get(at + header..end);
        }
        at = end;
    }
    None
}

/// A decoded frame as native little-endian pixel data (what Explicit VR
/// Little Endian carries), for serving a compressed frame decompressed.
/// Grayscale values are packed into Bits Allocated (8 or 16; two's
/// complement when signed). Colour frames are given only when the object
/// is already RGB (8 bits): a YBR object decoded to RGB would contradict its
/// Photometric Interpretation, so it is refused.
pub fn native_bytes(info: &ImageInfo, frame: &DecodedFrame) -> Result<Vec<u8>, PixelError> {
    match &frame.data {
        Samples::Gray(values) => match info.bits_allocated {
            8 => Ok(values.iter().map(|v| *v as u8).collect()),
            16 => Ok(values
                .iter()
                .flat_map(|v| (*v as u16).to_le_bytes())
                .collect()),
            other => Err(PixelError::Unsupported(format!(
                "native output of {other}-bit data"
            ))),
        },
        Samples::Color(rgb) => {
            if info.photometric == crate::Photometric::Rgb
                && info.bits_allocated == 8
                && !info.planar
            {
                Ok(rgb.clone())
            } else {
                Err(PixelError::Unsupported(format!(
                    "native output of {:?} colour ({}-bit{}): the decoded RGB would not match the object's attributes",
                    info.photometric,
                    info.bits_allocated,
                    if info.planar { ", by plane" } else { "" }
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_runs() {
        // literal 3, replicate 4 of 9, no-op, literal 1
        let src = [2, 1, 2, 3, (-3i8) as u8, 9, 0x80, 0, 7];
        let mut out = [0u8; 8];
        packbits(&src, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 9, 9, 9, 9, 7]);
        let mut long = [0u8; 9];
        assert!(packbits(&src, &mut long).is_err());
    }

    #[test]
    fn jp2_files_give_their_codestream() {
        let mut jp2 = vec![0, 0, 0, 0x0C, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A];
        jp2.extend_from_slice(&[0, 0, 0, 12, b'f', b't', b'y', b'p', 1, 2, 3, 4]);
        jp2.extend_from_slice(&[0, 0, 0, 0, b'j', b'p', b'2', b'c', 0xFF, 0x4F, 0xFF, 0x51]);
        assert_eq!(jp2_codestream(&jp2), Some(&[0xFF, 0x4F, 0xFF, 0x51][..]));
        assert_eq!(jp2_codestream(&[0xFF, 0x4F, 0xFF, 0x51]), None);
        assert_eq!(jp2_codestream(&jp2[..20]), None, "truncated");
    }

    #[test]
    fn ybr_grey_stays_grey() {
        assert_eq!(ybr_to_rgb(77, 128, 128), [77, 77, 77]);
        assert_eq!(ybr_to_rgb(76, 85, 255), [254, 0, 0]);
    }
}
