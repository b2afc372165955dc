//! From decoded samples to an 8-bit image, the grayscale pipeline of PS3.3
//! C.11 (modality LUT → VOI LUT → presentation) as PS3.18 asks of rendered
//! resources: rescale slope and intercept, a window (asked for, else the
//! object's first, else the frame's range) through LINEAR, LINEAR_EXACT or
//! SIGMOID, MONOCHROME1 inverted. PALETTE COLOR goes through its tables,
//! colour passes through. Then a resize to fit a viewport.

use crate::PixelError;
use crate::decode::{DecodedFrame, Samples};
use crate::image_info::{ImageInfo, Photometric, VoiFunction};

/// How to render.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// Window center, width and function; `None` uses the object's window,
    /// or the frame's minimum and maximum when it has none.
    pub window: Option<(f64, f64, VoiFunction)>,
    /// Fit inside this width and height, keeping the aspect ratio (upscaling
    /// at most [`MAX_UPSCALE`] times).
    pub viewport: Option<(u32, u32)>,
    /// JPEG quality (1-100) for the encoder that follows.
    pub quality: u8,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            window: None,
            viewport: None,
            quality: 90,
        }
    }
}

/// The largest enlargement a viewport may ask for.
pub const MAX_UPSCALE: f64 = 4.0;

/// An 8-bit image, rows top to bottom, channels interleaved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: u8,
    pub pixels: Vec<u8>,
}

/// Another name for [`Rendered`].
pub type RgbOrGray8 = Rendered;

/// Renders a decoded frame.
pub fn render(
    info: &ImageInfo,
    frame: &DecodedFrame,
    opts: &RenderOptions,
) -> Result<Rendered, PixelError> {
    let n = frame.rows as usize * frame.columns as usize;
    let (channels, pixels) = match &frame.data {
        Samples::Color(rgb) => {
            if rgb.len() < n * 3 {
                return Err(PixelError::Malformed("short colour frame".into()));
            }
            (3u8, rgb[..n * 3].to_vec())
        }
        Samples::Gray(v) if info.photometric == Photometric::PaletteColor => {
            let lut = info
                .palette
                .as_ref()
                .ok_or_else(|| PixelError::Malformed("PALETTE COLOR without tables".into()))?;
            let mut out = Vec::with_capacity(v.len() * 3);
            for &s in v {
                out.extend_from_slice(&[lut[0].lookup8(s), lut[1].lookup8(s), lut[2].lookup8(s)]);
            }
            (3, out)
        }
        Samples::Gray(v) => (1, grayscale(info, v, opts)),
    };
    let img = Rendered {
        width: frame.columns as u32,
        height: frame.rows as u32,
        channels,
        pixels,
    };
    Ok(match opts.viewport {
        Some((w, h)) => resize_to_fit(&img, w, h),
        None => img,
    })
}

/// The VOI LUT functions of PS3.3 C.11.2.1.2 and C.11.2.1.3, to 0..=255.
#[inline]
pub fn voi(x: f64, c: f64, w: f64, f: VoiFunction) -> f64 {
    match f {
        VoiFunction::Linear => {
            let w1 = (w - 1.0).max(f64::MIN_POSITIVE);
            let lo = c - 0.5 - w1 / 2.0;
            let hi = c - 0.5 + w1 / 2.0;
            if x <= lo {
                0.0
            } else if x > hi {
                255.0
            } else {
                ((x - (c - 0.5)) / w1 + 0.5) * 255.0
            }
        }
        VoiFunction::LinearExact => {
            let w = w.max(f64::MIN_POSITIVE);
            if x <= c - w / 2.0 {
                0.0
            } else if x > c + w / 2.0 {
                255.0
            } else {
                ((x - c) / w + 0.5) * 255.0
            }
        }
        VoiFunction::Sigmoid => 255.0 / (1.0 + (-4.0 * (x - c) / w.max(f64::MIN_POSITIVE)).exp()),
    }
}

fn grayscale(info: &ImageInfo, v: &[i32], opts: &RenderOptions) -> Vec<u8> {
    let (slope, intercept) = (info.rescale_slope, info.rescale_intercept);
    // Modality LUT: the table when there is one, else the rescale.
    let modality = |s: i64| -> f64 {
        match &info.modality_lut {
            Some(l) => l.lookup(s.clamp(i32::MIN as i64, i32::MAX as i64) as i32) as f64,
            None => s as f64 * slope + intercept,
        }
    };
    // VOI: the request's window, else the object's, else its VOI LUT table,
    // else the frame's range after the modality LUT (as DCMTK's +Wm).
    let window = match (opts.window, info.window, &info.voi_lut) {
        (Some(win), _, _) => Some(win),
        (None, Some((c, w)), _) => Some((c, w, info.voi_function)),
        (None, None, Some(_)) => None,
        (None, None, None) => {
            let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| {
                let m = modality(x as i64);
                (lo.min(m), hi.max(m))
            });
            Some(((lo + hi + 1.0) / 2.0, hi - lo + 1.0, VoiFunction::Linear))
        }
    };
    let invert = info.photometric == Photometric::Monochrome1;
    // Truncated as DCMTK does (after the inversion of MONOCHROME1), with a
    // little slack for the float error of exact quotients: dcmj2pnm's
    // output is reproduced exactly.
    let out8 = |s: i64| -> u8 {
        let m = modality(s);
        let y = match (window, &info.voi_lut) {
            (Some((c, w, f)), _) => voi(m, c, w, f),
            (None, Some(l)) => l.lookup(m.round() as i32) as f64 * 255.0 / l.max_value(),
            (None, None) => unreachable!("a window or a VOI LUT"),
        };
        let y = if invert { 255.0 - y } else { y };
        (y + 1e-7).clamp(0.0, 255.0) as u8
    };
    let (lo, hi) = info.stored_range();
    if hi - lo < (1 << 17) {
        // One table over every possible stored value.
        let lut: Vec<u8> = (lo..=hi).map(out8).collect();
        v.iter()
            .map(|&s| lut[((s as i64).clamp(lo, hi) - lo) as usize])
            .collect()
    } else {
        v.iter().map(|&s| out8(s as i64)).collect()
    }
}

/// Resizes to fit inside `max_w` × `max_h`, keeping the aspect ratio: an
/// area average when shrinking, bilinear when enlarging.
pub fn resize_to_fit(img: &Rendered, max_w: u32, max_h: u32) -> Rendered {
    let (w, h) = (img.width as f64, img.height as f64);
    let scale = (max_w.max(1) as f64 / w)
        .min(max_h.max(1) as f64 / h)
        .min(MAX_UPSCALE);
    let nw = ((w * scale).round() as u32).clamp(1, max_w.max(1));
    let nh = ((h * scale).round() as u32).clamp(1, max_h.max(1));
    if nw == img.width && nh == img.height {
        return img.clone();
    }
    if scale < 1.0 {
        box_shrink(img, nw, nh)
    } else {
        bilinear(img, nw, nh)
    }
}

fn box_shrink(img: &Rendered, nw: u32, nh: u32) -> Rendered {
    let ch = img.channels as usize;
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (nw_, nh_) = (nw as usize, nh as usize);
    let mut out = vec![0u8; nw_ * nh_ * ch];
    let mut acc = vec![0u32; ch];
    for oy in 0..nh_ {
        let y0 = oy * sh / nh_;
        let y1 = ((oy + 1) * sh).div_ceil(nh_).max(y0 + 1).min(sh);
        for ox in 0..nw_ {
            let x0 = ox * sw / nw_;
            let x1 = ((ox + 1) * sw).div_ceil(nw_).max(x0 + 1).min(sw);
            acc.fill(0);
            for y in y0..y1 {
                let row = &img.pixels[(y * sw + x0) * ch..(y * sw + x1) * ch];
                for px in row.chunks_exact(ch) {
                    for (a, &p) in acc.iter_mut().zip(px) {
                        *a += p as u32;
                    }
                }
            }
            let count = ((y1 - y0) * (x1 - x0)) as u32;
            for (k, a) in acc.iter().enumerate() {
                out[(oy * nw_ + ox) * ch + k] = ((a + count / 2) / count) as u8;
            }
        }
    }
    Rendered {
        width: nw,
        height: nh,
        channels: img.channels,
        pixels: out,
    }
}

fn bilinear(img: &Rendered, nw: u32, nh: u32) -> Rendered {
    let ch = img.channels as usize;
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (nw_, nh_) = (nw as usize, nh as usize);
    let mut out = vec![0u8; nw_ * nh_ * ch];
    let sx = sw as f64 / nw_ as f64;
    let sy = sh as f64 / nh_ as f64;
    for oy in 0..nh_ {
        let fy = ((oy as f64 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f64);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let ty = fy - y0 as f64;
        for ox in 0..nw_ {
            let fx = ((ox as f64 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f64);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(sw - 1);
            let tx = fx - x0 as f64;
            for k in 0..ch {
                let p = |x: usize, y: usize| img.pixels[(y * sw + x) * ch + k] as f64;
                let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
                let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
                out[(oy * nw_ + ox) * ch + k] =
                    (top * (1.0 - ty) + bottom * ty).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Rendered {
        width: nw,
        height: nh,
        channels: img.channels,
        pixels: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_window_matches_the_standard() {
        // c = 40, w = 400: below -159.5 is 0, above 239.5 is 255.
        assert_eq!(voi(-160.0, 40.0, 400.0, VoiFunction::Linear), 0.0);
        assert_eq!(voi(240.0, 40.0, 400.0, VoiFunction::Linear), 255.0);
        assert!((voi(39.5, 40.0, 400.0, VoiFunction::Linear) - 127.5).abs() < 1e-9);
        assert!((voi(40.0, 40.0, 400.0, VoiFunction::LinearExact) - 127.5).abs() < 1e-9);
        assert!((voi(40.0, 40.0, 400.0, VoiFunction::Sigmoid) - 127.5).abs() < 1e-9);
    }

    #[test]
    fn resize_keeps_aspect_and_averages() {
        let img = Rendered {
            width: 4,
            height: 2,
            channels: 1,
            pixels: vec![0, 100, 200, 50, 0, 100, 200, 50],
        };
        let small = resize_to_fit(&img, 2, 2);
        assert_eq!((small.width, small.height), (2, 1));
        assert_eq!(small.pixels, vec![50, 125]);
        let big = resize_to_fit(&img, 100, 100);
        assert_eq!((big.width, big.height), (16, 8));
    }
}
