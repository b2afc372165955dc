//! RLE Lossless encoding (PS3.5 Annex G) of a native frame: one PackBits
//! segment per byte plane, most significant byte first, sample by sample.

use crate::{NativeFrame, PixelError};

/// Encodes a frame as a DICOM RLE Lossless fragment (header + segments).
pub fn encode_rle(frame: &NativeFrame) -> Result<Vec<u8>, PixelError> {
    frame.check()?;
    let bytes_per_sample = frame.bits_allocated as usize / 8;
    let spp = frame.samples_per_pixel as usize;
    let segments = spp * bytes_per_sample;
    if segments > 15 {
        return Err(PixelError::Unsupported(format!("RLE of {segments} byte planes (at most 15)")));
    }
    let pixels = frame.rows as usize * frame.columns as usize;
    let mut out = vec![0u8; 64];
    out[0..4].copy_from_slice(&(segments as u32).to_le_bytes());
    let mut plane = Vec::with_capacity(pixels);
    let mut seg = 0;
    for s in 0..spp {
        // Most significant byte first; samples are little endian in `data`.
        for b in (0..bytes_per_sample).rev() {
            plane.clear();
            let stride = spp * bytes_per_sample;
            let start = s * bytes_per_sample + b;
            plane.extend((0..pixels).map(|p| frame.data[p * stride + start]));
            let offset = out.len() as u32;
            out[4 + 4 * seg..8 + 4 * seg].copy_from_slice(&offset.to_le_bytes());
            packbits(&plane, &mut out);
            if out.len() % 2 == 1 {
                out.push(0);
            }
            seg += 1;
        }
    }
    Ok(out)
}

/// PackBits: runs of 3 to 128 equal bytes as `1 - n`, byte; everything
/// else as literal runs of up to 128 bytes, `n - 1`, bytes.
fn packbits(src: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut literal_start = 0;
    let flush = |out: &mut Vec<u8>, from: usize, to: usize| {
        let mut s = from;
        while s < to {
            let n = (to - s).min(128);
            out.push((n - 1) as u8);
            out.extend_from_slice(&src[s..s + n]);
            s += n;
        }
    };
    while i < src.len() {
        let mut run = 1;
        while i + run < src.len() && run < 128 && src[i + run] == src[i] {
            run += 1;
        }
        if run >= 3 {
            flush(out, literal_start, i);
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(src[i]);
            i += run;
            literal_start = i;
        } else {
            i += run;
        }
    }
    flush(out, literal_start, src.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(src: &[u8], n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < n {
            let c = src[i] as i8;
            i += 1;
            if c >= 0 {
                out.extend_from_slice(&src[i..i + c as usize + 1]);
                i += c as usize + 1;
            } else if c != -128 {
                out.extend(std::iter::repeat_n(src[i], (1 - c as i16) as usize));
                i += 1;
            }
        }
        out
    }

    #[test]
    fn packbits_round_trips() {
        let mut src = vec![1u8, 2, 3, 3, 3, 3, 4, 4, 5];
        src.extend(std::iter::repeat_n(9u8, 300));
        src.extend((0..=255u8).cycle().take(700));
        let mut packed = Vec::new();
        packbits(&src, &mut packed);
        assert_eq!(unpack(&packed, src.len()), src);
        assert!(packed.len() < src.len());
    }

    #[test]
    fn header_names_the_segments() {
        let data: Vec<u8> = (0..16u16).flat_map(|v| (v * 300).to_le_bytes()).collect();
        let f = NativeFrame { rows: 4, columns: 4, samples_per_pixel: 1, bits_allocated: 16, bits_stored: 16, signed: false, data: &data };
        let rle = encode_rle(&f).unwrap();
        assert_eq!(u32::from_le_bytes(rle[0..4].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(rle[4..8].try_into().unwrap()), 64);
        let second = u32::from_le_bytes(rle[8..12].try_into().unwrap()) as usize;
        let high = unpack(&rle[64..], 16);
        let low = unpack(&rle[second..], 16);
        for p in 0..16 {
            assert_eq!(u16::from_be_bytes([high[p], low[p]]), p as u16 * 300);
        }
    }
}
