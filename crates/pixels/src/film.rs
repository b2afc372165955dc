//! Electronic film (电子胶片): a sheet of key images laid out on a grid, with
//! the institution's and the patient's header, composed into RGB pages, and
//! written as a PDF. The images come already rendered (windowed, 8-bit);
//! text is drawn with a TrueType / OpenType font (a CJK one for Chinese
//! names: WenQuanYi Micro Hei, Noto Sans CJK...).

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

use crate::{PixelError, Rendered};

/// Paper sizes, in millimetres (portrait).
pub fn paper_mm(name: &str) -> Option<(f64, f64)> {
    Some(match name.to_ascii_lowercase().as_str() {
        "14x17" | "14x17in" => (355.6, 431.8),
        "11x14" | "11x14in" => (279.4, 355.6),
        "8x10" | "8x10in" => (203.2, 254.0),
        "a4" => (210.0, 297.0),
        "a3" => (297.0, 420.0),
        _ => return None,
    })
}

/// A font for the sheet's text.
pub struct FilmFont(FontVec);

impl FilmFont {
    /// Reads a font file (`.ttf`, `.otf`, or the first face of a `.ttc`).
    pub fn load(bytes: Vec<u8>) -> Result<FilmFont, PixelError> {
        FontVec::try_from_vec_and_index(bytes, 0)
            .map(FilmFont)
            .map_err(|e| PixelError::Malformed(format!("font: {e}")))
    }

    /// Whether the font can draw every character of `text`.
    pub fn covers(&self, text: &str) -> bool {
        text.chars().filter(|c| !c.is_whitespace()).all(|c| self.0.glyph_id(c).0 != 0)
    }
}

/// Where a label sits in its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

/// Text on an image: in a corner, or at a point given as fractions of the
/// image's width and height.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Corner(Corner, String),
    At { x: f64, y: f64, text: String },
}

/// One cell of the grid.
pub struct Cell {
    pub image: Rendered,
    pub labels: Vec<Label>,
}

/// A film sheet to compose.
pub struct Sheet {
    /// Page size in pixels.
    pub width: u32,
    pub height: u32,
    pub columns: u32,
    pub rows: u32,
    /// Lines across the top (institution, patient, study).
    pub header: Vec<String>,
    /// A line across the bottom (page number, time of printing).
    pub footer: String,
    /// The cells of this page, row by row (fewer than columns × rows leave
    /// the rest black).
    pub cells: Vec<Cell>,
}

/// A composed page, RGB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Sheet {
    /// The size of a cell (for rendering the images to fit), in pixels.
    pub fn cell_size(&self) -> (u32, u32) {
        let (_, _, w, h) = self.grid_area();
        let gap = GAP * (self.columns.max(1) - 1);
        let gap_v = GAP * (self.rows.max(1) - 1);
        ((w.saturating_sub(gap)) / self.columns.max(1), (h.saturating_sub(gap_v)) / self.rows.max(1))
    }

    fn header_height(&self) -> u32 {
        if self.header.is_empty() { 0 } else { self.text_px() * (self.header.len() as u32) + self.text_px() }
    }

    fn text_px(&self) -> u32 {
        (self.height / 60).clamp(12, 64)
    }

    /// Left, top, width, height of the grid.
    fn grid_area(&self) -> (u32, u32, u32, u32) {
        let top = self.header_height();
        let bottom = self.text_px() * 2;
        (GAP, top, self.width.saturating_sub(2 * GAP), self.height.saturating_sub(top + bottom))
    }

    /// Draws the page.
    pub fn compose(&self, font: &FilmFont) -> Result<Page, PixelError> {
        if self.columns == 0 || self.rows == 0 || self.columns > 12 || self.rows > 12 {
            return Err(PixelError::Malformed(format!("a {}x{} grid (1 to 12 each way)", self.columns, self.rows)));
        }
        if self.width < 200 || self.height < 200 || self.width > 8000 || self.height > 8000 {
            return Err(PixelError::Malformed(format!("a {}x{} page", self.width, self.height)));
        }
        let mut page = Page { width: self.width, height: self.height, pixels: vec![0; self.width as usize * self.height as usize * 3] };
        let px = self.text_px() as f32;
        for (i, line) in self.header.iter().enumerate() {
            let size = if i == 0 { px * 1.2 } else { px };
            page.text(font, line, GAP as f32, (i as f32 + 1.0) * px, size, [235, 235, 235]);
        }
        page.text(font, &self.footer, GAP as f32, self.height as f32 - px * 0.6, px * 0.8, [180, 180, 180]);
        let (x0, y0, _, _) = self.grid_area();
        let (cw, ch) = self.cell_size();
        for (k, cell) in self.cells.iter().enumerate().take((self.columns * self.rows) as usize) {
            let (c, r) = (k as u32 % self.columns, k as u32 / self.columns);
            let (cx, cy) = (x0 + c * (cw + GAP), y0 + r * (ch + GAP));
            let img = &cell.image;
            // Centred in its cell (the images come fitted to the cell).
            let (iw, ih) = (img.width.min(cw), img.height.min(ch));
            let (ox, oy) = (cx + (cw - iw) / 2, cy + (ch - ih) / 2);
            page.blit(img, ox, oy, iw, ih);
            let lp = (px * 0.8).max(10.0);
            for label in &cell.labels {
                let (text, x, y) = match label {
                    Label::Corner(corner, t) => {
                        let w = font.width(t, lp);
                        let (x, y) = match corner {
                            Corner::TopLeft => (ox as f32 + 4.0, oy as f32 + lp),
                            Corner::TopRight => ((ox + iw) as f32 - w - 4.0, oy as f32 + lp),
                            Corner::BottomLeft => (ox as f32 + 4.0, (oy + ih) as f32 - 4.0),
                            Corner::BottomRight => ((ox + iw) as f32 - w - 4.0, (oy + ih) as f32 - 4.0),
                        };
                        (t, x, y)
                    }
                    Label::At { x, y, text } => {
                        (text, ox as f32 + x.clamp(0.0, 1.0) as f32 * iw as f32, oy as f32 + y.clamp(0.0, 1.0) as f32 * ih as f32)
                    }
                };
                page.text(font, text, x, y, lp, [255, 220, 0]);
            }
        }
        Ok(page)
    }
}

/// Pixels between cells and around the grid.
const GAP: u32 = 6;

impl FilmFont {
    fn width(&self, text: &str, size: f32) -> f32 {
        let f = self.0.as_scaled(PxScale::from(size));
        text.chars().map(|c| f.h_advance(f.glyph_id(c))).sum()
    }
}

impl Page {
    fn blit(&mut self, img: &Rendered, x: u32, y: u32, w: u32, h: u32) {
        for row in 0..h {
            for col in 0..w {
                let s = (row * img.width + col) as usize;
                let rgb = if img.channels == 3 {
                    [img.pixels[3 * s], img.pixels[3 * s + 1], img.pixels[3 * s + 2]]
                } else {
                    let v = img.pixels[s];
                    [v, v, v]
                };
                let d = (((y + row) * self.width + x + col) * 3) as usize;
                self.pixels[d..d + 3].copy_from_slice(&rgb);
            }
        }
    }

    /// Draws `text` with its baseline at `y`, from `x`.
    fn text(&mut self, font: &FilmFont, text: &str, x: f32, y: f32, size: f32, colour: [u8; 3]) {
        let scaled = font.0.as_scaled(PxScale::from(size));
        let mut pen = x;
        for ch in text.chars() {
            let id = scaled.glyph_id(ch);
            let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, y));
            pen += scaled.h_advance(id);
            let Some(outline) = font.0.outline_glyph(glyph) else { continue };
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                if px < 0 || py < 0 || px >= self.width as i64 || py >= self.height as i64 {
                    return;
                }
                let d = ((py as u32 * self.width + px as u32) * 3) as usize;
                let a = coverage.clamp(0.0, 1.0);
                for (dst, &c) in self.pixels[d..d + 3].iter_mut().zip(&colour) {
                    let old = *dst as f32;
                    *dst = (old + (c as f32 - old) * a).round() as u8;
                }
            });
        }
    }

    /// The page as a rendered image (for the JPEG and PNG encoders).
    pub fn as_rendered(&self) -> Rendered {
        Rendered { width: self.width, height: self.height, channels: 3, pixels: self.pixels.clone() }
    }
}

/// A PDF of JPEG pages, each filling a page of `paper_mm` (portrait).
pub fn pdf(pages: &[(u32, u32, Vec<u8>)], paper_mm: (f64, f64), title: &str) -> Vec<u8> {
    let pt = |mm: f64| mm / 25.4 * 72.0;
    let (pw, ph) = (pt(paper_mm.0), pt(paper_mm.1));
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets: Vec<usize> = Vec::new();
    // Objects: 1 catalog, 2 pages, 3 info, then per page: page, contents, image.
    let n = pages.len();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 3 * i)).collect();
    let obj = |out: &mut Vec<u8>, offsets: &mut Vec<usize>, body: &[u8]| {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", offsets.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    obj(&mut out, &mut offsets, b"<< /Type /Catalog /Pages 2 0 R >>");
    obj(&mut out, &mut offsets, format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).as_bytes());
    // The title as UTF-16BE with a byte order mark (Chinese included).
    let title_hex: String = std::iter::once(0xFEFFu16).chain(title.encode_utf16()).map(|u| format!("{u:04X}")).collect();
    obj(&mut out, &mut offsets, format!("<< /Title <{title_hex}> /Producer (Yunying) >>").as_bytes());
    for (i, (w, h, jpeg)) in pages.iter().enumerate() {
        let (contents, image) = (5 + 3 * i, 6 + 3 * i);
        obj(
            &mut out,
            &mut offsets,
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {pw:.2} {ph:.2}] /Contents {contents} 0 R \
                 /Resources << /XObject << /Im0 {image} 0 R >> >> >>"
            )
            .as_bytes(),
        );
        // The image fills the page, aspect kept, centred.
        let scale = (pw / *w as f64).min(ph / *h as f64);
        let (dw, dh) = (*w as f64 * scale, *h as f64 * scale);
        let content = format!("q {dw:.2} 0 0 {dh:.2} {:.2} {:.2} cm /Im0 Do Q", (pw - dw) / 2.0, (ph - dh) / 2.0);
        obj(&mut out, &mut offsets, format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len() + 1).as_bytes());
        let mut img = format!(
            "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB /BitsPerComponent 8 \
             /Filter /DCTDecode /Length {} >>\nstream\n",
            jpeg.len()
        )
        .into_bytes();
        img.extend_from_slice(jpeg);
        img.extend_from_slice(b"\nendstream");
        obj(&mut out, &mut offsets, &img);
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for o in &offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R /Info 3 0 R >>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1).as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papers_and_grid() {
        assert_eq!(paper_mm("14x17"), Some((355.6, 431.8)));
        assert_eq!(paper_mm("A4"), Some((210.0, 297.0)));
        assert!(paper_mm("letter-ish").is_none());
        let s = Sheet { width: 1400, height: 1700, columns: 4, rows: 5, header: vec!["a".into(), "b".into()], footer: String::new(), cells: Vec::new() };
        let (cw, ch) = s.cell_size();
        assert!(cw * 4 + GAP * 3 <= 1400 - 2 * GAP && ch * 5 <= 1700, "{cw}x{ch}");
        assert!(cw > 300 && ch > 250, "{cw}x{ch}");
    }

    #[test]
    fn pdf_structure() {
        let p = pdf(&[(10, 20, vec![0xFF, 0xD8, 0xFF, 0xD9]), (10, 20, vec![0xFF, 0xD8, 0xFF, 0xD9])], (210.0, 297.0), "胶片");
        let text = String::from_utf8_lossy(&p);
        assert!(text.starts_with("%PDF-1.4"));
        assert!(text.contains("/Count 2"));
        assert!(text.contains("<FEFF80F67247>"), "the title in UTF-16BE");
        // The xref offsets point at the objects (byte offsets: the header
        // has binary bytes, so look at bytes, not text).
        let xref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(p[xref..].starts_with(b"xref"));
        let line = std::str::from_utf8(&p[xref..]).unwrap().lines().nth(3).unwrap().to_string();
        let off: usize = line[..10].parse().unwrap();
        assert!(p[off..].starts_with(b"1 0 obj"));
    }
}
