//! A frame as native samples: the one input every encoder takes, whatever
//! the frame was stored as.

use crate::decode::{DecodedFrame, Samples};
use crate::{ImageInfo, PixelError};

/// One frame of native samples, little endian, colour-by-pixel.
#[derive(Debug, Clone, Copy)]
pub struct NativeFrame<'a> {
    pub rows: u16,
    pub columns: u16,
    /// 1 (grayscale, palette indices) or 3 (RGB).
    pub samples_per_pixel: u16,
    /// 8 or 16: the width of each sample in `data`.
    pub bits_allocated: u16,
    /// The significant bits of each sample (≤ `bits_allocated`).
    pub bits_stored: u16,
    /// Two's complement samples (Pixel Representation 1).
    pub signed: bool,
    /// `rows × columns × samples_per_pixel` samples of `bits_allocated / 8`
    /// bytes each, little endian, interleaved (R G B R G B …).
    pub data: &'a [u8],
}

impl<'a> NativeFrame<'a> {
    /// Describes `data` (as [`native_bytes`](crate::native_bytes) gives it)
    /// with the attributes of `info` and the layout of `frame`.
    pub fn new(
        info: &ImageInfo,
        frame: &DecodedFrame,
        data: &'a [u8],
    ) -> Result<NativeFrame<'a>, PixelError> {
        let (samples_per_pixel, bits_allocated, bits_stored, signed) = match frame.data {
            Samples::Gray(_) => (1, info.bits_allocated, info.bits_stored, info.signed),
            Samples::Color(_) => (3, 8, 8, false),
        };
        let f = NativeFrame {
            rows: frame.rows,
            columns: frame.columns,
            samples_per_pixel,
            bits_allocated,
            bits_stored,
            signed,
            data,
        };
        f.check()?;
        Ok(f)
    }

    /// The number of bytes `data` must hold.
    pub fn expected_len(&self) -> usize {
        self.rows as usize
            * self.columns as usize
            * self.samples_per_pixel as usize
            * (self.bits_allocated as usize / 8)
    }

    /// Refuses a description that contradicts itself.
    pub fn check(&self) -> Result<(), PixelError> {
        if !matches!(self.bits_allocated, 8 | 16) {
            return Err(PixelError::Unsupported(format!(
                "encoding {}-bit samples",
                self.bits_allocated
            )));
        }
        if !matches!(self.samples_per_pixel, 1 | 3) {
            return Err(PixelError::Unsupported(format!(
                "encoding {} samples per pixel",
                self.samples_per_pixel
            )));
        }
        if self.bits_stored == 0 || self.bits_stored > self.bits_allocated {
            return Err(PixelError::Malformed(format!(
                "bits stored {} with bits allocated {}",
                self.bits_stored, self.bits_allocated
            )));
        }
        if self.data.len() != self.expected_len() {
            return Err(PixelError::Malformed(format!(
                "{} bytes for a {}×{}×{} frame of {}-bit samples",
                self.data.len(),
                self.columns,
                self.rows,
                self.samples_per_pixel,
                self.bits_allocated
            )));
        }
        Ok(())
    }

    /// Sample `i` (in interleaved order) as a signed value.
    pub fn sample(&self, i: usize) -> i32 {
        if self.bits_allocated == 8 {
            let b = self.data[i];
            if self.signed {
                b as i8 as i32
            } else {
                b as i32
            }
        } else {
            let v = u16::from_le_bytes([self.data[2 * i], self.data[2 * i + 1]]);
            if self.signed {
                v as i16 as i32
            } else {
                v as i32
            }
        }
    }
}
