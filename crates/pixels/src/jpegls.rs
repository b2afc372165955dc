//! JPEG-LS (ISO/IEC 14495-1, ITU-T T.87): decoding of the lossless
//! (1.2.840.10008.1.2.4.80) and near-lossless (.81) transfer syntaxes and
//! lossless encoding, through CharLS 2.4 (the charls crate; the C++
//! library built from source by cmake and linked statically).
//!
//! JPEG-LS codes the bit pattern of each sample in P = Bits Stored bits:
//! signed data is stored as its two's complement masked to Bits Stored
//! (PS3.5 A.4.3 and 8.2.3), and sign-extended again on decoding.

use charls::{CharLS, FrameInfo, InterleaveMode};

use crate::PixelError;
use crate::decode::{DecodedFrame, Samples, colour_samples, stored};
use crate::image_info::{ImageInfo, Photometric};
use crate::native_frame::NativeFrame;

/// What the frame and first scan headers of a JPEG-LS stream say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    bits: u8,
    height: u16,
    width: u16,
    components: u8,
    /// ILV: 0 none (one scan per component), 1 line, 2 sample.
    interleave: u8,
}

fn malformed(msg: impl std::fmt::Display) -> PixelError {
    PixelError::Malformed(format!("JPEG-LS: {msg}"))
}

/// Reads the SOF55 frame header and the first scan header by walking the
/// marker segments from SOI (T.87 C.2). CharLS checks the rest.
fn header(data: &[u8]) -> Result<Header, PixelError> {
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(malformed("no start of image marker"));
    }
    let mut pos = 2;
    let mut frame: Option<Header> = None;
    loop {
        // Fill bytes may precede a marker.
        match data.get(pos) {
            Some(0xFF) => {}
            Some(_) => return Err(malformed(format!("no marker at byte {pos}"))),
            None => return Err(malformed("the data ends before the first scan")),
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *data
            .get(pos)
            .ok_or_else(|| malformed("the data ends before the first scan"))?;
        pos += 1;
        let len = match data.get(pos..pos + 2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
            None => return Err(malformed("the data ends in a marker segment")),
        };
        if len < 2 {
            return Err(malformed(format!(
                "a marker segment 0xFF{marker:02X} of length {len}"
            )));
        }
        let body = data.get(pos + 2..pos + len).ok_or_else(|| {
            malformed(format!("a marker segment 0xFF{marker:02X} beyond the data"))
        })?;
        pos += len;
        match marker {
            0xF7 => {
                if body.len() < 6 {
                    return Err(malformed("a short frame header"));
                }
                frame = Some(Header {
                    bits: body[0],
                    height: u16::from_be_bytes([body[1], body[2]]),
                    width: u16::from_be_bytes([body[3], body[4]]),
                    components: body[5],
                    interleave: 0,
                });
            }
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(malformed(format!(
                    "a JPEG frame header 0xFF{marker:02X}, not JPEG-LS"
                )));
            }
            0xDA => {
                let mut h = frame.ok_or_else(|| malformed("a scan before the frame header"))?;
                let ns = *body
                    .first()
                    .ok_or_else(|| malformed("an empty scan header"))?
                    as usize;
                h.interleave = *body
                    .get(2 + 2 * ns)
                    .ok_or_else(|| malformed("a short scan header"))?;
                return Ok(h);
            }
            0xD9 => return Err(malformed("no scan")),
            _ => {}
        }
    }
}

/// Maps a CharLS failure; `what` says what was being done.
fn charls_error(what: &str, e: charls::Error) -> PixelError {
    use charls::Error;
    match e {
        Error::JpegLsError { code } => {
            let msg = format!("JPEG-LS {what}: {e} (CharLS error {code})");
            // parameter_value_not_supported, bit_depth_for_transform_not_supported,
            // color_transform_not_supported, encoding_not_supported,
            // jpegls_preset_extended_parameter_type_not_supported.
            if matches!(code, 2 | 8 | 9 | 10 | 23) {
                PixelError::Unsupported(msg)
            } else {
                PixelError::Malformed(msg)
            }
        }
        Error::ComputeSize => PixelError::Malformed(format!(
            "JPEG-LS {what}: the image size in the header is not usable"
        )),
        other => PixelError::Unsupported(format!("JPEG-LS {what}: {other}")),
    }
}

/// Decodes one JPEG-LS frame: grayscale stored values (masked to Bits
/// Stored, sign-extended when Pixel Representation is 1), or RGB (YBR_FULL
/// converted; more than 8 bits reduced to the top 8).
pub(crate) fn decode(info: &ImageInfo, bytes: &[u8]) -> Result<DecodedFrame, PixelError> {
    let h = header(bytes)?;
    if h.width != info.columns || h.height != info.rows {
        return Err(malformed(format!(
            "the frame is {}x{}, the attributes say {}x{}",
            h.width, h.height, info.columns, info.rows
        )));
    }
    if h.components as u16 != info.samples_per_pixel {
        return Err(malformed(format!(
            "the frame has {} components, the attributes say {} samples per pixel",
            h.components, info.samples_per_pixel
        )));
    }
    if !(2..=16).contains(&h.bits) {
        return Err(malformed(format!("{} bits per sample", h.bits)));
    }
    // CharLS 2.4 reads a scan until a marker or the end of the buffer; when
    // entropy-coded data stops at the end of the buffer (a truncated frame)
    // it can spin through 2^32 bit reads before failing. Ending the buffer
    // with an EOI marker makes it fail at once.
    let trimmed = match bytes.iter().rposition(|&b| b != 0) {
        Some(last) => &bytes[..=last],
        None => bytes,
    };
    let terminated;
    let bytes = if trimmed.ends_with(&[0xFF, 0xD9]) {
        trimmed
    } else {
        terminated = [trimmed, &[0xFF, 0xD9]].concat();
        &terminated[..]
    };
    let raw = CharLS::default()
        .decode(bytes)
        .map_err(|e| charls_error("decoding", e))?;
    let n = info.pixels();
    let spp = h.components as usize;
    let wide = h.bits > 8;
    if raw.len() != n * spp * (1 + wide as usize) {
        return Err(malformed(format!(
            "CharLS gave {} bytes for a {}x{}x{spp} frame",
            raw.len(),
            info.columns,
            info.rows
        )));
    }
    let sample = |i: usize| -> u32 {
        if wide {
            u16::from_ne_bytes([raw[2 * i], raw[2 * i + 1]]) as u32
        } else {
            raw[i] as u32
        }
    };
    let (rows, columns) = (info.rows, info.columns);
    if spp == 1 {
        let data = (0..n).map(|i| stored(info, sample(i))).collect();
        return Ok(DecodedFrame {
            rows,
            columns,
            samples: 1,
            data: Samples::Gray(data),
        });
    }
    // Interleave mode none gives the components one after the other.
    let planar = h.interleave == 0;
    let shift = h.bits.saturating_sub(8) as u32;
    let ybr = matches!(
        info.photometric,
        Photometric::YbrFull | Photometric::YbrFull422
    );
    let mut out = vec![0u8; n * 3];
    for p in 0..n {
        for s in 0..3 {
            let v = sample(if planar { s * n + p } else { p * 3 + s });
            out[p * 3 + s] = (v >> shift).min(255) as u8;
        }
    }
    Ok(colour_samples(rows, columns, out, ybr))
}

/// Encodes a frame as lossless JPEG-LS (NEAR = 0), what JPEG-LS Lossless
/// Image Compression (1.2.840.10008.1.2.4.80) carries: P = Bits Stored
/// (2 to 16), each sample's bit pattern masked to it (signed data as two's
/// complement, PS3.5 A.4.3), colour sample-interleaved (ILV = 2) without a
/// colour transform. The stream has even length (a fill byte before the end
/// of image marker when needed), as a DICOM fragment must.
pub fn encode_lossless(frame: &NativeFrame) -> Result<Vec<u8>, PixelError> {
    frame.check()?;
    let bits = frame.bits_stored;
    if !(2..=16).contains(&bits) {
        return Err(PixelError::Unsupported(format!(
            "JPEG-LS of {bits}-bit samples (2 to 16 bits)"
        )));
    }
    if frame.rows == 0 || frame.columns == 0 {
        return Err(PixelError::Malformed(format!(
            "a {}x{} frame",
            frame.columns, frame.rows
        )));
    }
    let mask = ((1u32 << bits) - 1) as u16;
    let n = frame.expected_len() / (frame.bits_allocated as usize / 8);
    let pattern = |i: usize| -> u16 {
        let v = if frame.bits_allocated == 8 {
            frame.data[i] as u16
        } else {
            u16::from_le_bytes([frame.data[2 * i], frame.data[2 * i + 1]])
        };
        v & mask
    };
    let src: Vec<u8> = if bits <= 8 {
        (0..n).map(|i| pattern(i) as u8).collect()
    } else {
        (0..n).flat_map(|i| pattern(i).to_ne_bytes()).collect()
    };
    let mut codec = CharLS::default();
    if frame.samples_per_pixel == 3 {
        codec
            .set_interleave_mode(InterleaveMode::Sample)
            .map_err(|e| charls_error("encoding", e))?;
    }
    let info = FrameInfo {
        width: frame.columns as u32,
        height: frame.rows as u32,
        bits_per_sample: bits as i32,
        component_count: frame.samples_per_pixel as i32,
    };
    let mut out = codec
        .encode(info, 0, &src)
        .map_err(|e| charls_error("encoding", e))?;
    if out.len() % 2 == 1 {
        // A fill byte before EOI (T.87 C.1.1.2 allows any number of 0xFF
        // before a marker): what DCMTK writes too.
        if !out.ends_with(&[0xFF, 0xD9]) {
            return Err(PixelError::Malformed(
                "JPEG-LS encoding: CharLS's stream does not end with EOI".into(),
            ));
        }
        out.insert(out.len() - 2, 0xFF);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray_frame(bits: u16, signed: bool, data: &[u8]) -> NativeFrame<'_> {
        NativeFrame {
            rows: 3,
            columns: 5,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: bits,
            signed,
            data,
        }
    }

    fn info(bits: u16, signed: bool, spp: u16) -> ImageInfo {
        ImageInfo {
            rows: 3,
            columns: 5,
            samples_per_pixel: spp,
            photometric: if spp == 3 {
                Photometric::Rgb
            } else {
                Photometric::Monochrome2
            },
            bits_allocated: if bits > 8 { 16 } else { 8 },
            bits_stored: bits,
            high_bit: bits - 1,
            signed,
            planar: false,
            number_of_frames: 1,
            rescale_slope: 1.0,
            rescale_intercept: 0.0,
            window: None,
            voi_function: Default::default(),
            palette: None,
            pixel_data_ow: false,
            modality_lut: None,
            voi_lut: None,
            per_frame: Vec::new(),
        }
    }

    #[test]
    fn signed_12_bit_round_trip() {
        // Sign-extended 12-bit values in 16-bit words: the encoder keeps
        // 12 bits, the decoder sign-extends them again.
        let values: Vec<i16> = vec![
            -2048, -1, 0, 1, 2047, -100, 100, -7, 7, 0, -2048, 2047, 5, -5, 3,
        ];
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let stream = encode_lossless(&gray_frame(12, true, &data)).unwrap();
        assert_eq!(stream.len() % 2, 0);
        assert_eq!(header(&stream).unwrap().bits, 12);
        let f = decode(&info(12, true, 1), &stream).unwrap();
        let want: Vec<i32> = values.iter().map(|&v| v as i32).collect();
        assert_eq!(f.data, Samples::Gray(want));
    }

    #[test]
    fn colour_round_trip_and_interleave() {
        let rgb: Vec<u8> = (0..45u8).map(|i| i.wrapping_mul(37)).collect();
        let frame = NativeFrame {
            rows: 3,
            columns: 5,
            samples_per_pixel: 3,
            bits_allocated: 8,
            bits_stored: 8,
            signed: false,
            data: &rgb,
        };
        let stream = encode_lossless(&frame).unwrap();
        let h = header(&stream).unwrap();
        assert_eq!((h.components, h.interleave, h.bits), (3, 2, 8));
        let f = decode(&info(8, false, 3), &stream).unwrap();
        assert_eq!(f.data, Samples::Color(rgb));
    }

    #[test]
    fn refusals() {
        let data = [0u8; 30];
        let one_bit = gray_frame(1, false, &data);
        assert!(matches!(
            encode_lossless(&one_bit),
            Err(PixelError::Unsupported(_))
        ));
        let short = gray_frame(12, false, &data[..20]);
        assert!(matches!(
            encode_lossless(&short),
            Err(PixelError::Malformed(_))
        ));
        let stream = encode_lossless(&gray_frame(12, false, &data)).unwrap();
        // Truncated, damaged, not JPEG-LS, or another size than the
        // attributes: malformed.
        let i = info(12, false, 1);
        for bad in [
            &stream[..stream.len() / 2],
            &stream[..20],
            &stream[..2],
            b"\xFF\xD8\xFF\xC0\x00\x02",
            b"nothing",
        ] {
            let err = decode(&i, bad).unwrap_err();
            assert!(matches!(err, PixelError::Malformed(_)), "{bad:?}: {err:?}");
        }
        let mut wrong = i.clone();
        wrong.rows = 4;
        assert!(matches!(
            decode(&wrong, &stream),
            Err(PixelError::Malformed(_))
        ));
        let mut wrong = i.clone();
        wrong.samples_per_pixel = 3;
        assert!(matches!(
            decode(&wrong, &stream),
            Err(PixelError::Malformed(_))
        ));
    }
}
