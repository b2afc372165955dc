//! Pixels: axial slices painted from a phantom's cross-section (row spans of
//! 2D ellipses, no per-pixel geometry), projection radiographs computed as
//! line integrals of X-ray attenuation through the cross-sections, and the
//! deterministic noise added to both. Output is 16-bit little-endian words,
//! ready to be the value of Pixel Data (7FE0,0010).

use crate::phantom::{Ellipse, Phantom, TISSUES};
use crate::rng::{Rng, derive};

/// A regular grid of pixel centres in a plane: pixel (r, c) is at
/// `(u0 + c·du, v0 + r·dv)` in the plane's own coordinates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub rows: usize,
    pub cols: usize,
    pub u0: f64,
    pub v0: f64,
    pub du: f64,
    pub dv: f64,
}

/// Paints an axial cross-section: `out[r·cols + c]` becomes the value (from
/// `lut`) of the last ellipse containing the pixel centre `(x, y)`, with
/// `u` = x and `v` = y, or `background`.
pub(crate) fn paint_section(section: &[Ellipse], lut: &[i16; TISSUES], background: i16, g: &Grid, out: &mut [i16]) {
    debug_assert_eq!(out.len(), g.rows * g.cols);
    out.fill(background);
    let last = g.cols as f64 - 1.0;
    for (r, row) in out.chunks_exact_mut(g.cols).enumerate() {
        let y = g.v0 + r as f64 * g.dv;
        for e in section {
            let Some((x_lo, x_hi)) = e.x_span(y) else { continue };
            let c_lo = ((x_lo - g.u0) / g.du).ceil().max(0.0);
            let c_hi = ((x_hi - g.u0) / g.du).floor().min(last);
            if c_hi < c_lo {
                continue;
            }
            row[c_lo as usize..=c_hi as usize].fill(lut[e.tissue as usize]);
        }
    }
}

/// Gaussian-like (triangular) noise of a given standard deviation, from the
/// bytes of a 64-bit word: cheap enough for hundreds of millions of pixels.
pub(crate) struct Noise {
    rng: Rng,
    word: u64,
    left: u32,
    /// Scale, in 1/256, of the unit-variance-ish sum of two bytes (σ ≈ 104.5).
    k: i32,
}

impl Noise {
    pub(crate) fn new(seed: u64, sigma: f64) -> Noise {
        Noise { rng: Rng::new(seed), word: 0, left: 0, k: (sigma * 256.0 / 104.5).round() as i32 }
    }

    #[inline]
    pub(crate) fn sample(&mut self) -> i32 {
        if self.left == 0 {
            self.word = self.rng.next_u64();
            self.left = 4;
        }
        let a = (self.word & 0xff) as i32;
        let b = ((self.word >> 8) & 0xff) as i32;
        self.word >>= 16;
        self.left -= 1;
        ((a + b - 255) * self.k) >> 8
    }
}

/// Turns painted CT numbers into stored values `HU + 1024` (12 bits,
/// RescaleIntercept -1024), with noise, and zero (-1024 HU) outside the
/// circular reconstruction field of view of radius `fov_radius` (in u/v units,
/// centred on u = v = 0).
pub(crate) fn ct_words(hu: &[i16], g: &Grid, sigma: f64, seed: u64, fov_radius: f64) -> Vec<u8> {
    let mut out = vec![0u8; hu.len() * 2];
    for (r, (src, dst)) in hu.chunks_exact(g.cols).zip(out.chunks_exact_mut(g.cols * 2)).enumerate() {
        let y = g.v0 + r as f64 * g.dv;
        let half = fov_radius * fov_radius - y * y;
        if half <= 0.0 {
            continue;
        }
        let half = half.sqrt();
        let c_lo = ((-half - g.u0) / g.du).ceil().max(0.0) as usize;
        let c_hi = (((half - g.u0) / g.du).floor() as i64).min(g.cols as i64 - 1);
        if c_hi < c_lo as i64 {
            continue;
        }
        let mut noise = Noise::new(derive(seed, r as u64), sigma);
        for c in c_lo..=c_hi as usize {
            let v = (src[c] as i32 + 1024 + noise.sample()).clamp(0, 4095) as u16;
            dst[2 * c..2 * c + 2].copy_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Turns painted MR signal into stored values with Rician-like noise (the
/// magnitude of signal plus noise, so air is dark but not black).
pub(crate) fn mr_words(signal: &[i16], cols: usize, sigma: f64, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; signal.len() * 2];
    for (r, (src, dst)) in signal.chunks_exact(cols).zip(out.chunks_exact_mut(cols * 2)).enumerate() {
        let mut noise = Noise::new(derive(seed, r as u64), sigma);
        for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
            let re = *s as i32 + noise.sample();
            let im = noise.sample();
            let mag = ((re * re + im * im) as f64).sqrt() as i32;
            d.copy_from_slice(&(mag.clamp(0, 4095) as u16).to_le_bytes());
        }
    }
    out
}

/// The direction of the X-ray beam of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beam {
    /// Antero-posterior or postero-anterior: rays along y; the image's
    /// horizontal axis is x.
    Frontal,
    /// Lateral: rays along x; the image's horizontal axis is y.
    Lateral,
}

/// Line integrals of attenuation through the phantom. Image rows go down in
/// z from `z_top` (`v0` is ignored; row r is at `z_top - r·dv`), columns run
/// along x (frontal) or y (lateral) from `u0`. Where shapes overlap, the one
/// painted last counts, as in the slices.
pub(crate) fn project(phantom: &Phantom, mu: &[f32; TISSUES], beam: Beam, g: &Grid, z_top: f64) -> Vec<f32> {
    let mut out = vec![0f32; g.rows * g.cols];
    let mut section = Vec::with_capacity(128);
    let mut spans: Vec<(f64, f64, f32)> = Vec::with_capacity(64);
    let mut points: Vec<f64> = Vec::with_capacity(128);
    for r in 0..g.rows {
        let z = z_top - r as f64 * g.dv;
        phantom.section_into(z, &mut section);
        // Bounds of each ellipse along the image's horizontal axis, for rejection.
        for c in 0..g.cols {
            let u = g.u0 + c as f64 * g.du;
            spans.clear();
            for e in &section {
                let span = match beam {
                    Beam::Frontal => {
                        if (u - e.cx).abs() > e.half_w {
                            continue;
                        }
                        e.y_span(u)
                    }
                    Beam::Lateral => {
                        if (u - e.cy).abs() > e.half_h {
                            continue;
                        }
                        e.x_span(u)
                    }
                };
                if let Some((lo, hi)) = span {
                    spans.push((lo, hi, mu[e.tissue as usize]));
                }
            }
            out[r * g.cols + c] = painter_integral(&spans, &mut points);
        }
    }
    out
}

/// The integral along a line of a piecewise-constant function given as
/// intervals in painting order (the last interval covering a point wins).
fn painter_integral(spans: &[(f64, f64, f32)], points: &mut Vec<f64>) -> f32 {
    if spans.is_empty() {
        return 0.0;
    }
    points.clear();
    for s in spans {
        points.push(s.0);
        points.push(s.1);
    }
    points.sort_unstable_by(|a, b| a.total_cmp(b));
    let mut sum = 0f64;
    for w in points.windows(2) {
        let len = w[1] - w[0];
        if len <= 0.0 {
            continue;
        }
        let mid = 0.5 * (w[0] + w[1]);
        if let Some(s) = spans.iter().rev().find(|s| s.0 <= mid && mid <= s.1) {
            sum += s.2 as f64 * len;
        }
    }
    sum as f32
}

/// Bilinear resampling of a `rows × cols` image to `out_rows × out_cols`.
pub(crate) fn resample(src: &[f32], rows: usize, cols: usize, out_rows: usize, out_cols: usize) -> Vec<f32> {
    if rows == out_rows && cols == out_cols {
        return src.to_vec();
    }
    let mut out = vec![0f32; out_rows * out_cols];
    let sy = rows as f64 / out_rows as f64;
    let sx = cols as f64 / out_cols as f64;
    for r in 0..out_rows {
        let fy = ((r as f64 + 0.5) * sy - 0.5).clamp(0.0, (rows - 1) as f64);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(rows - 1);
        let ty = (fy - y0 as f64) as f32;
        for c in 0..out_cols {
            let fx = ((c as f64 + 0.5) * sx - 0.5).clamp(0.0, (cols - 1) as f64);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(cols - 1);
            let tx = (fx - x0 as f64) as f32;
            let top = src[y0 * cols + x0] * (1.0 - tx) + src[y0 * cols + x1] * tx;
            let bottom = src[y1 * cols + x0] * (1.0 - tx) + src[y1 * cols + x1] * tx;
            out[r * out_cols + c] = top * (1.0 - ty) + bottom * ty;
        }
    }
    out
}

/// Maps line integrals to 12-bit radiograph values, as a detector's
/// logarithmic processing does (bright where the body attenuates), with
/// noise; `invert` gives MONOCHROME1 values (bright where X-rays got through).
pub(crate) fn radiograph_words(p: &[f32], cols: usize, seed: u64, invert: bool) -> Vec<u8> {
    let mut out = vec![0u8; p.len() * 2];
    for (r, (src, dst)) in p.chunks_exact(cols).zip(out.chunks_exact_mut(cols * 2)).enumerate() {
        let mut noise = Noise::new(derive(seed, r as u64), 12.0);
        for (v, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
            let x = (1.0 - (-(*v as f64) / 2.2).exp()) * 3900.0 + 60.0;
            let mut w = (x as i32 + noise.sample()).clamp(0, 4095);
            if invert {
                w = 4095 - w;
            }
            d.copy_from_slice(&(w as u16).to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn painter_integral_respects_order() {
        let mut pts = Vec::new();
        // A long interval of 1 with a later interval of 3 over its middle.
        let v = painter_integral(&[(0.0, 10.0, 1.0), (4.0, 6.0, 3.0)], &mut pts);
        assert!((v - (8.0 + 6.0)).abs() < 1e-5, "{v}");
        // An earlier interval hidden by a later one contributes nothing.
        let v = painter_integral(&[(4.0, 6.0, 3.0), (0.0, 10.0, 1.0)], &mut pts);
        assert!((v - 10.0).abs() < 1e-5, "{v}");
        assert_eq!(painter_integral(&[], &mut pts), 0.0);
    }

    #[test]
    fn noise_has_the_requested_spread() {
        let mut n = Noise::new(11, 20.0);
        let xs: Vec<f64> = (0..40_000).map(|_| n.sample() as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 1.0, "{mean}");
        assert!((var.sqrt() - 20.0).abs() < 2.0, "{}", var.sqrt());
    }

    #[test]
    fn resample_keeps_constants() {
        let src = vec![5.0f32; 6 * 4];
        let out = resample(&src, 6, 4, 13, 9);
        assert!(out.iter().all(|v| (*v - 5.0).abs() < 1e-6));
    }
}
