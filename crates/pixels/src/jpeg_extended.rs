//! Sequential DCT JPEG with Huffman coding (ITU-T T.81 processes 1, 2 and
//! 4: baseline and extended), 8 and 12-bit sample precision, our own
//! decoder. jpeg-decoder refuses 12-bit lossy JPEG, which CT and MR
//! modalities send as JPEG Extended (1.2.840.10008.1.2.4.51); frames
//! with 12-bit precision come here.
//!
//! What it reads: SOF0 and SOF1 frames of 1 to 4 components with any
//! sampling factors (1 to 4), 8 or 16-bit quantisation tables (DQT Pq 0
//! and 1), up to four DC and four AC Huffman tables, restart intervals
//! (DRI, RST0-7), interleaved and non-interleaved scans, byte stuffing and
//! fill bytes. Progressive, lossless, hierarchical and arithmetic-coded
//! frames are refused as unsupported; damaged streams give
//! [`PixelError::Malformed`], never a panic.
//!
//! The inverse DCT (T.81 A.3.3) is an integer one, with the arithmetic of
//! IJG's "accurate integer" IDCT (what DCMTK's dcmdjpeg and most
//! modalities' decoders use): within 1 of the exact transform, and the very
//! samples DCMTK gives. Then the level shift of 2^(P-1) and clamping to
//! [0, 2^P - 1]. Subsampled components are upsampled by replication (IJG
//! interpolates 2:1 chroma: 12-bit colour, a rarity, may differ there).
//!
//! Routing: [`crate::decode`] sends frames whose SOF says 12 bits here
//! ([`frame_kind`]), and those jpeg-decoder refuses for their precision.

use crate::PixelError;
use crate::decode::{DecodedFrame, Samples, colour_samples, stored};
use crate::image_info::{ImageInfo, Photometric};

fn malformed(msg: impl Into<String>) -> PixelError {
    PixelError::Malformed(format!("JPEG: {}", msg.into()))
}

/// Natural (row-major) index of each zig-zag position (T.81 figure A.6).
const ZIGZAG: [u8; 64] = zigzag();

const fn zigzag() -> [u8; 64] {
    let mut t = [0u8; 64];
    let mut k = 0;
    let mut s = 0; // the anti-diagonal x + y
    while s < 15 {
        let mut i = 0;
        while i <= s {
            // Even diagonals run up and to the right, odd ones down and left.
            let (x, y) = if s % 2 == 0 { (i, s - i) } else { (s - i, i) };
            if x < 8 && y < 8 {
                t[k] = (y * 8 + x) as u8;
                k += 1;
            }
            i += 1;
        }
        s += 1;
    }
    t
}

/// The frame header's coding process and sample precision, read without
/// decoding: what [`crate::decode`] routes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameKind {
    /// The SOF marker's second byte (0xC0 baseline, 0xC1 extended, 0xC2
    /// progressive, 0xC3 lossless, ...).
    pub marker: u8,
    pub precision: u8,
    /// Components differ in sampling factors (chroma subsampled).
    pub subsampled: bool,
}

impl FrameKind {
    /// A DCT-based frame (sequential or progressive), not lossless.
    pub fn is_dct(&self) -> bool {
        !matches!(self.marker, 0xC3 | 0xC7 | 0xCB | 0xCF)
    }

    /// A sequential Huffman DCT frame (baseline or extended).
    pub fn is_sequential_dct(&self) -> bool {
        matches!(self.marker, 0xC0 | 0xC1)
    }
}

/// Finds the first SOFn marker segment by walking the marker segments from
/// SOI; `None` when the stream is not JPEG or ends before one.
pub(crate) fn frame_kind(data: &[u8]) -> Option<FrameKind> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2;
    loop {
        while *data.get(pos)? != 0xFF {
            pos += 1;
        }
        while *data.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = *data.get(pos)?;
        pos += 1;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let precision = *data.get(pos + 2)?;
                let ncomp = *data.get(pos + 7)? as usize;
                let factors: Vec<u8> = (0..ncomp).map(|i| data.get(pos + 8 + 3 * i + 1).copied()).collect::<Option<_>>()?;
                let subsampled = factors.windows(2).any(|w| w[0] != w[1]);
                return Some(FrameKind { marker, precision, subsampled });
            }
            0xD0..=0xD7 | 0x01 => {}
            0xD8..=0xDA => return None,
            _ => {
                let len = u16::from_be_bytes([*data.get(pos)?, *data.get(pos + 1)?]) as usize;
                pos += len;
            }
        }
    }
}

/// Decodes a sequential DCT frame into a [`DecodedFrame`] for `info`:
/// grayscale stored values (masked to Bits Stored, sign-extended), or RGB
/// (YBR_FULL and YBR_FULL_422 converted; 12-bit colour reduced to its top
/// 8 bits).
pub(crate) fn decode(info: &ImageInfo, data: &[u8]) -> Result<DecodedFrame, PixelError> {
    let img = decode_image(data, |w, h, nc| {
        if w != info.columns || h != info.rows {
            return Err(malformed(format!(
                "the frame is {w}x{h}, the attributes say {}x{}",
                info.columns, info.rows
            )));
        }
        if nc as u16 != info.samples_per_pixel {
            return Err(malformed(format!(
                "the frame has {nc} components, the attributes say {} samples per pixel",
                info.samples_per_pixel
            )));
        }
        Ok(())
    })?;
    let (rows, columns) = (info.rows, info.columns);
    if img.planes.len() == 1 {
        let data = img.planes[0]
            .iter()
            .map(|&v| stored(info, v as u32))
            .collect();
        return Ok(DecodedFrame {
            rows,
            columns,
            samples: 1,
            data: Samples::Gray(data),
        });
    }
    let shift = img.precision - 8;
    let n = info.pixels();
    let mut out = vec![0u8; n * 3];
    let ybr = matches!(
        info.photometric,
        Photometric::YbrFull | Photometric::YbrFull422
    );
    for p in 0..n {
        for s in 0..3 {
            out[p * 3 + s] = (img.planes[s][p] >> shift) as u8;
        }
    }
    Ok(colour_samples(rows, columns, out, ybr))
}

/// A decoded image: one full-size plane per component (subsampled
/// components upsampled), `width × height` samples each, in [0, 2^P - 1].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    pub width: usize,
    pub height: usize,
    pub precision: u8,
    pub planes: Vec<Vec<u16>>,
}

/// Decodes a sequential DCT JPEG stream. `check(width, height, components)`
/// sees the frame header before anything is allocated and may refuse it.
pub(crate) fn decode_image(
    data: &[u8],
    check: impl FnOnce(u16, u16, u8) -> Result<(), PixelError>,
) -> Result<Image, PixelError> {
    Decoder::default().run(data, check)
}

/// A Huffman table ready for decoding (T.81 F.2.2.3, with a lookup of the
/// codes up to [`FAST_BITS`] long).
#[derive(Clone)]
struct Huffman {
    /// Indexed by the next FAST_BITS bits: (code length, symbol); length 0
    /// when the code is longer.
    fast: Vec<(u8, u8)>,
    /// Largest code of each length (index 1..=16), -1 when none.
    maxcode: [i32; 17],
    /// For each length, the symbol index of its first code minus that code.
    offset: [i32; 17],
    values: Vec<u8>,
}

const FAST_BITS: u32 = 9;

impl Huffman {
    /// Builds the table from BITS (the number of codes of each length 1 to
    /// 16) and HUFFVAL (T.81 C.2, figures C.1 and C.2).
    fn new(counts: &[u8; 16], values: &[u8]) -> Result<Huffman, PixelError> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total == 0 || total > 256 || total != values.len() {
            return Err(malformed(format!(
                "a Huffman table with {total} codes ({} values)",
                values.len()
            )));
        }
        let mut fast = vec![(0u8, 0u8); 1 << FAST_BITS];
        let mut maxcode = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as u32;
            offset[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err(malformed("a Huffman table with more codes than fit"));
                }
                if len <= FAST_BITS {
                    let shift = FAST_BITS - len;
                    let first = (code << shift) as usize;
                    for e in &mut fast[first..first + (1 << shift)] {
                        *e = (len as u8, values[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Ok(Huffman {
            fast,
            maxcode,
            offset,
            values: values.to_vec(),
        })
    }
}

/// Entropy-coded data, most significant bit first, with stuffed zero bytes
/// removed. At a marker (or the end of the data) it supplies zero bits and
/// remembers that it did: consuming any of them means the data ended early.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bits, left-aligned; `nbits` of them valid.
    acc: u64,
    nbits: u32,
    /// Of the `nbits`, how many (the last ones) were made up.
    fake: u32,
    /// Where the marker that stopped reading starts (its first 0xFF), or
    /// `data.len()` at the end of the data.
    stop: Option<usize>,
    overrun: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader {
            data,
            pos,
            acc: 0,
            nbits: 0,
            fake: 0,
            stop: None,
            overrun: false,
        }
    }

    /// Tops the accumulator up to at least 57 bits.
    fn fill(&mut self) {
        while self.nbits <= 56 {
            let byte = if self.stop.is_some() {
                self.fake += 8;
                0
            } else {
                match self.data.get(self.pos) {
                    None => {
                        self.stop = Some(self.data.len());
                        self.fake += 8;
                        0
                    }
                    Some(&0xFF) => {
                        // 0xFF 0x00 is a stuffed 0xFF; 0xFF then other 0xFF
                        // (fill bytes) and a code is a marker.
                        let mut p = self.pos + 1;
                        while self.data.get(p) == Some(&0xFF) {
                            p += 1;
                        }
                        if p == self.pos + 1 && self.data.get(p) == Some(&0x00) {
                            self.pos += 2;
                            0xFF
                        } else {
                            self.stop = Some(if p >= self.data.len() {
                                self.data.len()
                            } else {
                                p - 1
                            });
                            self.fake += 8;
                            0
                        }
                    }
                    Some(&b) => {
                        self.pos += 1;
                        b
                    }
                }
            };
            self.acc |= (byte as u64) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    #[inline]
    fn peek(&self, n: u32) -> u32 {
        (self.acc >> (64 - n)) as u32
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.nbits -= n;
        if self.nbits < self.fake {
            self.overrun = true;
            self.fake = self.nbits;
        }
    }

    /// `n` (≤ 16) bits as an unsigned number.
    #[inline]
    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.nbits < n {
            self.fill();
        }
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// RECEIVE and EXTEND (T.81 F.2.2.1): an `s`-bit magnitude category
    /// value as a signed number.
    #[inline]
    fn receive_extend(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// DECODE (T.81 F.2.2.3): the next Huffman-coded symbol.
    #[inline]
    fn decode(&mut self, t: &Huffman) -> Result<u8, PixelError> {
        if self.nbits < 16 {
            self.fill();
        }
        let (len, sym) = t.fast[self.peek(FAST_BITS) as usize];
        if len > 0 {
            self.consume(len as u32);
            return Ok(sym);
        }
        for len in FAST_BITS + 1..=16 {
            let code = self.peek(len) as i32;
            if code <= t.maxcode[len as usize] {
                self.consume(len);
                let i = (t.offset[len as usize] + code) as usize;
                return t
                    .values
                    .get(i)
                    .copied()
                    .ok_or_else(|| malformed("a Huffman code outside its table"));
            }
        }
        Err(malformed("an invalid Huffman code"))
    }

    /// Where the next marker starts: the one that stopped reading, or the
    /// first one after the bytes read. `data.len()` when there is none.
    fn next_marker(&self) -> usize {
        if let Some(p) = self.stop {
            return p;
        }
        let mut p = self.pos;
        while p + 1 < self.data.len() {
            if self.data[p] == 0xFF && !matches!(self.data[p + 1], 0x00 | 0xFF) {
                return p;
            }
            p += 1;
        }
        self.data.len()
    }

    /// At the end of a restart interval: discards the bits left and reads
    /// the RSTn marker that must follow.
    fn restart(&mut self) -> Result<(), PixelError> {
        if self.overrun {
            return Err(malformed("the entropy-coded data ends early"));
        }
        let p = self.next_marker();
        let code = self.data.get(p + 1).copied();
        if !matches!(code, Some(0xD0..=0xD7)) {
            return Err(malformed(match code {
                Some(c) => format!("marker 0xFF{c:02X} where a restart marker belongs"),
                None => "the data ends where a restart marker belongs".into(),
            }));
        }
        *self = BitReader::new(self.data, p + 2);
        Ok(())
    }
}

/// A component of the frame and its decoded samples.
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per line and lines of blocks in a non-interleaved scan.
    blocks_w: usize,
    blocks_h: usize,
    /// The sample buffer: whole MCUs, `stride` wide.
    stride: usize,
    samples: Vec<u16>,
    decoded: bool,
}

struct Frame {
    precision: u8,
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
    mcus_x: usize,
    mcus_y: usize,
    components: Vec<Component>,
}

#[derive(Default)]
struct Decoder {
    /// Quantisation tables in zig-zag order.
    qt: [Option<[u16; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
    frame: Option<Frame>,
}

/// The contents of the marker segment at `*pos` (its length field first);
/// moves `*pos` past it.
fn segment<'a>(data: &'a [u8], pos: &mut usize, what: &str) -> Result<&'a [u8], PixelError> {
    let len = match data.get(*pos..*pos + 2) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]) as usize,
        None => return Err(malformed(format!("the data ends in the {what} segment"))),
    };
    if len < 2 {
        return Err(malformed(format!("a {what} segment of length {len}")));
    }
    let body = data
        .get(*pos + 2..*pos + len)
        .ok_or_else(|| malformed(format!("the data ends in the {what} segment")))?;
    *pos += len;
    Ok(body)
}

impl Decoder {
    fn run(
        mut self,
        data: &[u8],
        check: impl FnOnce(u16, u16, u8) -> Result<(), PixelError>,
    ) -> Result<Image, PixelError> {
        if data.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err(malformed("no start of image marker"));
        }
        let mut check = Some(check);
        let mut pos = 2;
        loop {
            // Skip anything up to the next 0xFF (extraneous bytes), then
            // fill bytes.
            while pos < data.len() && data[pos] != 0xFF {
                pos += 1;
            }
            while pos < data.len() && data[pos] == 0xFF {
                pos += 1;
            }
            let Some(&marker) = data.get(pos) else {
                // No end of image marker: fine when every component is decoded.
                break;
            };
            pos += 1;
            match marker {
                0xD9 => break,
                0xD8 => return Err(malformed("a second start of image marker")),
                0xC0 | 0xC1 => {
                    let body = segment(data, &mut pos, "frame header")?;
                    let check = check
                        .take()
                        .ok_or_else(|| malformed("a second frame header"))?;
                    self.frame_header(body, check)?;
                }
                0xC2 | 0xC6 | 0xCA | 0xCE => {
                    let p = data.get(pos + 2).copied().unwrap_or(0);
                    return Err(PixelError::Unsupported(format!(
                        "progressive {p}-bit JPEG (the retired transfer syntax 1.2.840.10008.1.2.4.55 and kin)"
                    )));
                }
                0xC3 | 0xC7 | 0xCB | 0xCF => {
                    return Err(PixelError::Unsupported(
                        "lossless JPEG in the DCT decoder".into(),
                    ));
                }
                0xC5 => {
                    return Err(PixelError::Unsupported("hierarchical JPEG".into()));
                }
                0xC9 | 0xCC | 0xCD => {
                    return Err(PixelError::Unsupported("arithmetic-coded JPEG".into()));
                }
                0xC4 => {
                    let body = segment(data, &mut pos, "Huffman table")?;
                    self.huffman_tables(body)?;
                }
                0xDB => {
                    let body = segment(data, &mut pos, "quantisation table")?;
                    self.quantisation_tables(body)?;
                }
                0xDD => {
                    let body = segment(data, &mut pos, "restart interval")?;
                    if body.len() != 2 {
                        return Err(malformed("a restart interval segment of the wrong length"));
                    }
                    self.restart_interval = u16::from_be_bytes([body[0], body[1]]) as usize;
                }
                0xDA => {
                    let body = segment(data, &mut pos, "scan header")?;
                    pos = self.scan(body, data, pos)?;
                }
                // Stray restart markers and TEM have no length.
                0xD0..=0xD7 | 0x01 => {}
                _ => {
                    segment(data, &mut pos, "marker")?;
                }
            }
        }
        let Some(frame) = self.frame else {
            return Err(malformed("no frame header"));
        };
        if let Some(c) = frame.components.iter().find(|c| !c.decoded) {
            return Err(malformed(format!("component {} is in no scan", c.id)));
        }
        Ok(frame.into_image())
    }

    fn frame_header(
        &mut self,
        b: &[u8],
        check: impl FnOnce(u16, u16, u8) -> Result<(), PixelError>,
    ) -> Result<(), PixelError> {
        if b.len() < 6 {
            return Err(malformed("a short frame header"));
        }
        let precision = b[0];
        let height = u16::from_be_bytes([b[1], b[2]]);
        let width = u16::from_be_bytes([b[3], b[4]]);
        let nf = b[5] as usize;
        if precision != 8 && precision != 12 {
            return Err(malformed(format!(
                "sample precision {precision} in a DCT frame"
            )));
        }
        if height == 0 {
            return Err(PixelError::Unsupported(
                "JPEG with the number of lines in a DNL marker".into(),
            ));
        }
        if width == 0 || nf == 0 || nf > 4 || b.len() != 6 + 3 * nf {
            return Err(malformed(format!(
                "a frame header of {width} columns and {nf} components in {} bytes",
                b.len()
            )));
        }
        check(width, height, nf as u8)?;
        let mut comps = Vec::with_capacity(nf);
        for c in b[6..].chunks_exact(3) {
            let (h, v, tq) = ((c[1] >> 4) as usize, (c[1] & 15) as usize, c[2] as usize);
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                return Err(malformed(format!(
                    "component {}: sampling {h}x{v}, quantisation table {tq}",
                    c[0]
                )));
            }
            if comps
                .iter()
                .any(|x: &(u8, usize, usize, usize)| x.0 == c[0])
            {
                return Err(malformed(format!("component {} twice", c[0])));
            }
            comps.push((c[0], h, v, tq));
        }
        let (width, height) = (width as usize, height as usize);
        let hmax = comps.iter().map(|c| c.1).max().unwrap_or(1);
        let vmax = comps.iter().map(|c| c.2).max().unwrap_or(1);
        let mcus_x = width.div_ceil(8 * hmax);
        let mcus_y = height.div_ceil(8 * vmax);
        let components = comps
            .into_iter()
            .map(|(id, h, v, tq)| {
                let stride = mcus_x * h * 8;
                Component {
                    id,
                    h,
                    v,
                    tq,
                    blocks_w: (width * h).div_ceil(hmax).div_ceil(8),
                    blocks_h: (height * v).div_ceil(vmax).div_ceil(8),
                    stride,
                    samples: vec![0; stride * mcus_y * v * 8],
                    decoded: false,
                }
            })
            .collect();
        self.frame = Some(Frame {
            precision,
            width,
            height,
            hmax,
            vmax,
            mcus_x,
            mcus_y,
            components,
        });
        Ok(())
    }

    fn huffman_tables(&mut self, mut b: &[u8]) -> Result<(), PixelError> {
        while !b.is_empty() {
            if b.len() < 17 {
                return Err(malformed("a short Huffman table"));
            }
            let (class, id) = (b[0] >> 4, (b[0] & 15) as usize);
            if class > 1 || id > 3 {
                return Err(malformed(format!("Huffman table class {class}, id {id}")));
            }
            let counts: [u8; 16] = b[1..17].try_into().expect("16 bytes");
            let n: usize = counts.iter().map(|&c| c as usize).sum();
            let values = b
                .get(17..17 + n)
                .ok_or_else(|| malformed("a short Huffman table"))?;
            let table = Huffman::new(&counts, values)?;
            if class == 0 {
                self.dc[id] = Some(table);
            } else {
                self.ac[id] = Some(table);
            }
            b = &b[17 + n..];
        }
        Ok(())
    }

    fn quantisation_tables(&mut self, mut b: &[u8]) -> Result<(), PixelError> {
        while !b.is_empty() {
            let (pq, tq) = (b[0] >> 4, (b[0] & 15) as usize);
            if pq > 1 || tq > 3 {
                return Err(malformed(format!(
                    "quantisation table precision {pq}, id {tq}"
                )));
            }
            let size = if pq == 0 { 64 } else { 128 };
            let raw = b
                .get(1..1 + size)
                .ok_or_else(|| malformed("a short quantisation table"))?;
            let mut q = [0u16; 64];
            for (k, e) in q.iter_mut().enumerate() {
                *e = if pq == 0 {
                    raw[k] as u16
                } else {
                    u16::from_be_bytes([raw[2 * k], raw[2 * k + 1]])
                };
            }
            self.qt[tq] = Some(q);
            b = &b[1 + size..];
        }
        Ok(())
    }

    /// Decodes the scan whose header is `b` and whose entropy-coded data
    /// starts at `start`; returns where the next marker starts.
    fn scan(&mut self, b: &[u8], data: &[u8], start: usize) -> Result<usize, PixelError> {
        let frame = self
            .frame
            .as_mut()
            .ok_or_else(|| malformed("a scan before the frame header"))?;
        let ns = *b.first().ok_or_else(|| malformed("an empty scan header"))? as usize;
        if ns == 0 || ns > 4 || b.len() != 4 + 2 * ns {
            return Err(malformed(format!(
                "a scan header of {ns} components in {} bytes",
                b.len()
            )));
        }
        // Ss, Se, Ah and Al (b[1 + 2ns..]) mean nothing in a sequential
        // scan (0, 63, 0, 0); some writers put other values there, which
        // IJG's library (and so DCMTK) ignores with a warning: so do we.
        // (component index, DC table, AC table, quantisation table)
        let mut scomps = Vec::with_capacity(ns);
        for s in b[1..1 + 2 * ns].chunks_exact(2) {
            let ci = frame
                .components
                .iter()
                .position(|c| c.id == s[0])
                .ok_or_else(|| malformed(format!("scan component {} not in the frame", s[0])))?;
            if scomps
                .iter()
                .any(|x: &(usize, &Huffman, &Huffman, [u16; 64])| x.0 == ci)
            {
                return Err(malformed(format!("scan component {} twice", s[0])));
            }
            let (td, ta) = ((s[1] >> 4) as usize, (s[1] & 15) as usize);
            let dc = self
                .dc
                .get(td)
                .and_then(Option::as_ref)
                .ok_or_else(|| malformed(format!("DC Huffman table {td} is not defined")))?;
            let ac = self
                .ac
                .get(ta)
                .and_then(Option::as_ref)
                .ok_or_else(|| malformed(format!("AC Huffman table {ta} is not defined")))?;
            let tq = frame.components[ci].tq;
            let q = self.qt[tq]
                .ok_or_else(|| malformed(format!("quantisation table {tq} is not defined")))?;
            scomps.push((ci, dc, ac, q));
        }
        let (mcus_x, mcus_y) = if ns == 1 {
            let c = &frame.components[scomps[0].0];
            (c.blocks_w, c.blocks_h)
        } else {
            (frame.mcus_x, frame.mcus_y)
        };
        let mut preds = [0i32; 4];
        let mut br = BitReader::new(data, start);
        let mut coefs = [0i64; 64];
        for m in 0..mcus_x * mcus_y {
            if self.restart_interval > 0 && m > 0 && m % self.restart_interval == 0 {
                br.restart()?;
                preds = [0; 4];
            }
            let (mx, my) = (m % mcus_x, m / mcus_x);
            for (si, (ci, dc, ac, q)) in scomps.iter().enumerate() {
                let comp = &mut frame.components[*ci];
                let (bh, bv) = if ns == 1 { (1, 1) } else { (comp.h, comp.v) };
                for v in 0..bv {
                    for h in 0..bh {
                        let (bx, by) = if ns == 1 {
                            (mx, my)
                        } else {
                            (mx * comp.h + h, my * comp.v + v)
                        };
                        decode_block(&mut br, dc, ac, q, &mut preds[si], &mut coefs)?;
                        let at = by * 8 * comp.stride + bx * 8;
                        idct_store(
                            &coefs,
                            &mut comp.samples[at..],
                            comp.stride,
                            frame.precision,
                        );
                    }
                }
            }
            if br.overrun {
                return Err(malformed("the entropy-coded data ends early"));
            }
        }
        for (ci, ..) in &scomps {
            frame.components[*ci].decoded = true;
        }
        Ok(br.next_marker())
    }
}

/// One block's coefficients (T.81 F.2.2.1-2), dequantised, in natural order.
fn decode_block(
    br: &mut BitReader,
    dc: &Huffman,
    ac: &Huffman,
    q: &[u16; 64],
    pred: &mut i32,
    out: &mut [i64; 64],
) -> Result<(), PixelError> {
    *out = [0; 64];
    let t = br.decode(dc)? as u32;
    if t > 15 {
        return Err(malformed(format!("DC difference category {t}")));
    }
    *pred = pred.wrapping_add(br.receive_extend(t));
    // A coefficient is 16 bits (T.81 A.3.5); only damaged data has more.
    out[0] = *pred as i16 as i64 * q[0] as i64;
    let mut k = 1usize;
    while k < 64 {
        let rs = br.decode(ac)?;
        let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
        if s == 0 {
            if r != 15 {
                break; // end of block
            }
            k += 16; // a run of 16 zeros
            continue;
        }
        k += r;
        if k > 63 {
            return Err(malformed("AC coefficients beyond the block"));
        }
        out[ZIGZAG[k] as usize] = br.receive_extend(s) as i64 * q[k] as i64;
        k += 1;
    }
    Ok(())
}

// The inverse DCT: the factorisation of Loeffler, Ligtenberg and Moschytz
// (ICASSP 1989; 12 multiplications per 8 points) in fixed point with 13
// fraction bits, columns first, then rows, with the intermediate scaling
// of 2 extra bits (8-bit samples) or 1 (12-bit) and rounding at each
// descaling: the arithmetic of the "accurate integer" IDCT of the IJG
// library, so that our 12-bit output equals DCMTK's. Each constant is
// round(v · 2^13) of the value named.

const CONST_BITS: u32 = 13;
/// √2 (c6)
const F_0_541196100: i64 = 4433;
/// √2 (c2 - c6)
const F_0_765366865: i64 = 6270;
/// √2 (c2 + c6)
const F_1_847759065: i64 = 15137;
/// √2 c3
const F_1_175875602: i64 = 9633;
/// √2 (-c1 + c3 + c5 - c7)
const F_0_298631336: i64 = 2446;
/// √2 (c1 + c3 - c5 + c7)
const F_2_053119869: i64 = 16819;
/// √2 (c1 + c3 + c5 - c7)
const F_3_072711026: i64 = 25172;
/// √2 (c1 + c3 - c5 - c7)
const F_1_501321110: i64 = 12299;
/// √2 (c3 - c7)
const F_0_899976223: i64 = 7373;
/// √2 (c1 + c3)
const F_2_562915447: i64 = 20995;
/// √2 (c3 + c5)
const F_1_961570560: i64 = 16069;
/// √2 (c3 - c5)
const F_0_390180644: i64 = 3196;

/// The 8-point inverse DCT of `x` as the factorisation leaves it: 2^13 · √8
/// times the orthonormal transform (T.81's 2-D transform is the square of
/// the orthonormal one); the caller descales.
#[inline]
fn idct_1d(x: [i64; 8]) -> [i64; 8] {
    // Even part: the rotation of x2 and x6, the butterfly of x0 and x4.
    let z1 = (x[2] + x[6]) * F_0_541196100;
    let r2 = z1 - x[6] * F_1_847759065;
    let r3 = z1 + x[2] * F_0_765366865;
    let s0 = (x[0] + x[4]) << CONST_BITS;
    let s1 = (x[0] - x[4]) << CONST_BITS;
    let (e0, e3) = (s0 + r3, s0 - r3);
    let (e1, e2) = (s1 + r2, s1 - r2);
    // Odd part: x7, x5, x3, x1.
    let (a, b, c, d) = (x[7], x[5], x[3], x[1]);
    let z5 = (a + c + b + d) * F_1_175875602;
    let z1 = -(a + d) * F_0_899976223;
    let z2 = -(b + c) * F_2_562915447;
    let z3 = -(a + c) * F_1_961570560 + z5;
    let z4 = -(b + d) * F_0_390180644 + z5;
    let o0 = a * F_0_298631336 + z1 + z3;
    let o1 = b * F_2_053119869 + z2 + z4;
    let o2 = c * F_3_072711026 + z2 + z3;
    let o3 = d * F_1_501321110 + z1 + z4;
    [
        e0 + o3,
        e1 + o2,
        e2 + o1,
        e3 + o0,
        e3 - o0,
        e2 - o1,
        e1 - o2,
        e0 - o3,
    ]
}

/// Divides by 2^n, rounding half up.
#[inline]
fn descale(x: i64, n: u32) -> i64 {
    (x + (1 << (n - 1))) >> n
}

/// The 8x8 inverse DCT of `coefs` (natural order), before the level shift.
fn idct(coefs: &[i64; 64], precision: u8) -> [i64; 64] {
    let pass1_bits = if precision <= 8 { 2 } else { 1 };
    let mut ws = [0i64; 64];
    for c in 0..8 {
        let col: [i64; 8] = std::array::from_fn(|r| coefs[r * 8 + c]);
        if col[1..].iter().all(|&v| v == 0) {
            // What the full transform gives for a lone DC term.
            for r in 0..8 {
                ws[r * 8 + c] = col[0] << pass1_bits;
            }
            continue;
        }
        let out = idct_1d(col);
        for r in 0..8 {
            ws[r * 8 + c] = descale(out[r], CONST_BITS - pass1_bits);
        }
    }
    let mut out = [0i64; 64];
    for r in 0..8 {
        let row: [i64; 8] = ws[r * 8..r * 8 + 8].try_into().expect("8 values");
        let res = idct_1d(row);
        for c in 0..8 {
            out[r * 8 + c] = descale(res[c], CONST_BITS + pass1_bits + 3);
        }
    }
    out
}

/// The inverse DCT of `coefs` into an 8x8 block of `dst` (`stride` wide),
/// level-shifted by 2^(P-1) and clamped to [0, 2^P - 1].
fn idct_store(coefs: &[i64; 64], dst: &mut [u16], stride: usize, precision: u8) {
    let shift = 1i64 << (precision - 1);
    let max = (1i64 << precision) - 1;
    let s = idct(coefs, precision);
    for y in 0..8 {
        let row = &mut dst[y * stride..y * stride + 8];
        for x in 0..8 {
            row[x] = (s[y * 8 + x] + shift).clamp(0, max) as u16;
        }
    }
}

impl Frame {
    fn into_image(self) -> Image {
        let (w, h) = (self.width, self.height);
        let planes = self
            .components
            .iter()
            .map(|c| {
                let mut plane = Vec::with_capacity(w * h);
                for y in 0..h {
                    let sy = y * c.v / self.vmax;
                    let row = &c.samples[sy * c.stride..];
                    if c.h == self.hmax {
                        plane.extend_from_slice(&row[..w]);
                    } else {
                        plane.extend((0..w).map(|x| row[x * c.h / self.hmax]));
                    }
                }
                plane
            })
            .collect();
        Image {
            width: w,
            height: h,
            precision: self.precision,
            planes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small sequential DCT encoder for the tests: any precision and
    /// sampling, interleaved or not, restart intervals, 8 or 16-bit
    /// quantisation tables, fill bytes before markers. Its Huffman tables
    /// give every symbol a code (253 of 8 bits, 3 of 9 bits), so 12-bit
    /// categories up to 15 fit.
    struct Enc {
        precision: u8,
        sampling: Vec<(usize, usize)>,
        interleaved: bool,
        restart: usize,
        /// Quantisation table in zig-zag order.
        q: [u16; 64],
        pq16: bool,
        fill: bool,
    }

    fn code(sym: u8) -> (u32, u32) {
        if sym < 253 {
            (sym as u32, 8)
        } else {
            (506 + sym as u32 - 253, 9)
        }
    }

    fn counts() -> [u8; 16] {
        let mut c = [0u8; 16];
        c[7] = 253;
        c[8] = 3;
        c
    }

    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }

    impl Bits {
        fn put(&mut self, v: u32, n: u32) {
            for i in (0..n).rev() {
                self.acc = self.acc << 1 | (v >> i) & 1;
                self.n += 1;
                if self.n == 8 {
                    self.out.push(self.acc as u8);
                    if self.acc == 0xFF {
                        self.out.push(0);
                    }
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }
        fn flush(&mut self) {
            while self.n != 0 {
                self.put(1, 1);
            }
        }
    }

    fn category(v: i32) -> u32 {
        32 - v.unsigned_abs().leading_zeros()
    }

    fn put_value(b: &mut Bits, v: i32, cat: u32) {
        let bits = if v < 0 { v - 1 } else { v };
        b.put(bits as u32 & ((1 << cat) - 1), cat);
    }

    /// `basis[x][u]`: C(u)/2 · cos((2x + 1)uπ/16), C(0) = 1/√2, else 1
    /// (T.81 A.3.3, one dimension).
    fn idct_basis() -> [[f64; 8]; 8] {
        let mut t = [[0f64; 8]; 8];
        for (x, row) in t.iter_mut().enumerate() {
            for (u, e) in row.iter_mut().enumerate() {
                let cu = if u == 0 {
                    std::f64::consts::FRAC_1_SQRT_2
                } else {
                    1.0
                };
                *e = cu / 2.0 * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos();
            }
        }
        t
    }

    /// Forward DCT (T.81 A.3.3) of a level-shifted block, natural order.
    fn fdct(block: &[f64; 64]) -> [f64; 64] {
        let b = idct_basis();
        let mut out = [0f64; 64];
        for v in 0..8 {
            for u in 0..8 {
                let mut s = 0.0;
                for y in 0..8 {
                    for x in 0..8 {
                        s += b[y][v] * b[x][u] * block[y * 8 + x];
                    }
                }
                out[v * 8 + u] = s;
            }
        }
        out
    }

    /// Direct 2-D inverse DCT (the double sum of A.3.3), rounded half up:
    /// the reference.
    fn naive_idct(c: &[f64; 64]) -> [i64; 64] {
        let mut out = [0i64; 64];
        let cc = |u: usize| {
            if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            }
        };
        for y in 0..8 {
            for x in 0..8 {
                let mut s = 0.0;
                for v in 0..8 {
                    for u in 0..8 {
                        s += cc(u) * cc(v) / 4.0
                            * c[v * 8 + u]
                            * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()
                            * ((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI / 16.0).cos();
                    }
                }
                out[y * 8 + x] = (s + 0.5).floor() as i64;
            }
        }
        out
    }

    impl Enc {
        fn new(precision: u8) -> Enc {
            Enc {
                precision,
                sampling: vec![(1, 1)],
                interleaved: true,
                restart: 0,
                q: [1; 64],
                pq16: false,
                fill: false,
            }
        }

        fn marker(&self, out: &mut Vec<u8>, code: u8) {
            if self.fill {
                out.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
            }
            out.extend_from_slice(&[0xFF, code]);
        }

        /// Encodes full-size planes; returns the stream and what an exact
        /// decoder gives back (each plane at full size).
        fn encode(&self, planes: &[Vec<u16>], w: usize, h: usize) -> (Vec<u8>, Vec<Vec<u16>>) {
            let p = self.precision;
            let shift = 1i32 << (p - 1);
            let hmax = self.sampling.iter().map(|s| s.0).max().unwrap();
            let vmax = self.sampling.iter().map(|s| s.1).max().unwrap();
            let mut out = vec![0xFF, 0xD8];
            // DQT
            self.marker(&mut out, 0xDB);
            let n = if self.pq16 { 128 } else { 64 };
            out.extend_from_slice(&((n + 3) as u16).to_be_bytes());
            out.push(if self.pq16 { 0x10 } else { 0x00 });
            for &q in &self.q {
                if self.pq16 {
                    out.extend_from_slice(&q.to_be_bytes());
                } else {
                    out.push(q as u8);
                }
            }
            // SOF
            self.marker(&mut out, if p == 8 { 0xC0 } else { 0xC1 });
            let nf = planes.len();
            out.extend_from_slice(&((8 + 3 * nf) as u16).to_be_bytes());
            out.push(p);
            out.extend_from_slice(&(h as u16).to_be_bytes());
            out.extend_from_slice(&(w as u16).to_be_bytes());
            out.push(nf as u8);
            for (i, (sh, sv)) in self.sampling.iter().enumerate() {
                out.extend_from_slice(&[i as u8 + 1, (*sh as u8) << 4 | *sv as u8, 0]);
            }
            // DHT: DC and AC tables 0 and 2, the same codes.
            self.marker(&mut out, 0xC4);
            out.extend_from_slice(&((2 + 4 * (17 + 256)) as u16).to_be_bytes());
            for tc_th in [0x00, 0x02, 0x10, 0x12] {
                out.push(tc_th);
                out.extend_from_slice(&counts());
                out.extend(0..=255u8);
            }
            if self.restart > 0 {
                self.marker(&mut out, 0xDD);
                out.extend_from_slice(&[0, 4]);
                out.extend_from_slice(&(self.restart as u16).to_be_bytes());
            }
            // Component planes at their own resolution, and the blocks'
            // quantised coefficients.
            let comp_dims: Vec<(usize, usize)> = self
                .sampling
                .iter()
                .map(|&(sh, sv)| ((w * sh).div_ceil(hmax), (h * sv).div_ceil(vmax)))
                .collect();
            let sample = |c: usize, x: usize, y: usize| -> f64 {
                let (cw, ch) = comp_dims[c];
                let (sh, sv) = self.sampling[c];
                let (x, y) = (x.min(cw - 1), y.min(ch - 1));
                let fx = (x * hmax / sh).min(w - 1);
                let fy = (y * vmax / sv).min(h - 1);
                planes[c][fy * w + fx] as f64 - shift as f64
            };
            let mcus_x = w.div_ceil(8 * hmax);
            let mcus_y = h.div_ceil(8 * vmax);
            let mut recon: Vec<Vec<u16>> = comp_dims
                .iter()
                .map(|_| vec![0u16; mcus_x * hmax * 8 * mcus_y * vmax * 8])
                .collect();
            let rstride = mcus_x * hmax * 8;
            let scans: Vec<Vec<usize>> = if self.interleaved {
                vec![(0..nf).collect()]
            } else {
                (0..nf).map(|c| vec![c]).collect()
            };
            for scan in scans {
                self.marker(&mut out, 0xDA);
                out.extend_from_slice(&((6 + 2 * scan.len()) as u16).to_be_bytes());
                out.push(scan.len() as u8);
                for &c in &scan {
                    let t = if c == 0 { 0x00 } else { 0x22 };
                    out.extend_from_slice(&[c as u8 + 1, t]);
                }
                out.extend_from_slice(&[0, 63, 0]);
                let (mx_n, my_n) = if scan.len() == 1 {
                    let (cw, ch) = comp_dims[scan[0]];
                    (cw.div_ceil(8), ch.div_ceil(8))
                } else {
                    (mcus_x, mcus_y)
                };
                let mut bits = Bits {
                    out: Vec::new(),
                    acc: 0,
                    n: 0,
                };
                let mut preds = vec![0i32; nf];
                for m in 0..mx_n * my_n {
                    if self.restart > 0 && m > 0 && m % self.restart == 0 {
                        bits.flush();
                        out.append(&mut bits.out);
                        self.marker(&mut out, 0xD0 + ((m / self.restart - 1) % 8) as u8);
                        preds.iter_mut().for_each(|p| *p = 0);
                    }
                    let (mx, my) = (m % mx_n, m / mx_n);
                    for &c in &scan {
                        let (bh, bv) = if scan.len() == 1 {
                            (1, 1)
                        } else {
                            self.sampling[c]
                        };
                        for v in 0..bv {
                            for hh in 0..bh {
                                let (bx, by) = if scan.len() == 1 {
                                    (mx, my)
                                } else {
                                    (mx * bh + hh, my * bv + v)
                                };
                                let mut block = [0f64; 64];
                                for y in 0..8 {
                                    for x in 0..8 {
                                        block[y * 8 + x] = sample(c, bx * 8 + x, by * 8 + y);
                                    }
                                }
                                let f = fdct(&block);
                                let zz: Vec<i32> = (0..64)
                                    .map(|k| {
                                        (f[ZIGZAG[k] as usize] / self.q[k] as f64).round() as i32
                                    })
                                    .collect();
                                let mut deq = [0i64; 64];
                                for k in 0..64 {
                                    deq[ZIGZAG[k] as usize] = zz[k] as i64 * self.q[k] as i64;
                                }
                                let mut r = [0u16; 64];
                                idct_store(&deq, &mut r, 8, p);
                                for y in 0..8 {
                                    let at = (by * 8 + y) * rstride + bx * 8;
                                    recon[c][at..at + 8].copy_from_slice(&r[y * 8..y * 8 + 8]);
                                }
                                let diff = zz[0] - preds[c];
                                preds[c] = zz[0];
                                let cat = category(diff);
                                let (hc, hl) = code(cat as u8);
                                bits.put(hc, hl);
                                put_value(&mut bits, diff, cat);
                                let mut run = 0;
                                let last = (1..64).rev().find(|&k| zz[k] != 0).unwrap_or(0);
                                for &z in zz.iter().take(last + 1).skip(1) {
                                    if z == 0 {
                                        run += 1;
                                        continue;
                                    }
                                    while run > 15 {
                                        let (hc, hl) = code(0xF0);
                                        bits.put(hc, hl);
                                        run -= 16;
                                    }
                                    let cat = category(z);
                                    let (hc, hl) = code((run << 4) as u8 | cat as u8);
                                    bits.put(hc, hl);
                                    put_value(&mut bits, z, cat);
                                    run = 0;
                                }
                                if last < 63 {
                                    let (hc, hl) = code(0);
                                    bits.put(hc, hl);
                                }
                            }
                        }
                    }
                }
                bits.flush();
                out.append(&mut bits.out);
            }
            self.marker(&mut out, 0xD9);
            // What an exact decoder gives: each plane cropped and upsampled
            // by replication.
            let full = (0..nf)
                .map(|c| {
                    let (sh, sv) = self.sampling[c];
                    let mut plane = Vec::with_capacity(w * h);
                    for y in 0..h {
                        for x in 0..w {
                            plane.push(recon[c][(y * sv / vmax) * rstride + x * sh / hmax]);
                        }
                    }
                    plane
                })
                .collect();
            (out, full)
        }
    }

    /// A test picture: a gradient, sharp edges and a pseudo-random texture.
    fn picture(w: usize, h: usize, precision: u8, seed: u32) -> Vec<u16> {
        let max = (1u32 << precision) - 1;
        let mut state = seed.wrapping_mul(2654435761) | 1;
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as u32, (i / w) as u32);
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let base = (x * max / w as u32 + y * max / (2 * h as u32)) % (max + 1);
                let edge = if (x / 5 + y / 7) % 3 == 0 { max / 3 } else { 0 };
                ((base + edge + state % (max / 16 + 1)) % (max + 1)) as u16
            })
            .collect()
    }

    /// Decodes and compares with the encoder's reconstruction (the same
    /// inverse DCT of the same coefficients): identical.
    fn assert_decodes(stream: &[u8], expected: &[Vec<u16>], w: usize, h: usize, what: &str) {
        let img = decode_image(stream, |_, _, _| Ok(())).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((img.width, img.height), (w, h), "{what}");
        assert_eq!(img.planes.len(), expected.len(), "{what}");
        for (c, (a, b)) in img.planes.iter().zip(expected).enumerate() {
            let diffs = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(diffs, 0, "{what}, component {c}: {diffs} samples differ");
        }
    }

    #[test]
    fn zigzag_is_a_permutation_in_the_standard_order() {
        assert_eq!(&ZIGZAG[..10], &[0, 1, 8, 16, 9, 2, 3, 10, 17, 24]);
        assert_eq!(&ZIGZAG[58..], &[61, 54, 47, 55, 62, 63]);
        let mut seen = [false; 64];
        for &z in &ZIGZAG {
            seen[z as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn huffman_codes_are_canonical() {
        // Two codes of length 2 (00, 01), one of length 3 (100), two of
        // length 10 (1010000000, 1010000001).
        let mut counts = [0u8; 16];
        counts[1] = 2;
        counts[2] = 1;
        counts[9] = 2;
        let t = Huffman::new(&counts, &[5, 6, 7, 8, 9]).unwrap();
        let stream = |bits: &str| -> Vec<u8> {
            let mut b = Bits {
                out: Vec::new(),
                acc: 0,
                n: 0,
            };
            for c in bits.chars() {
                b.put((c == '1') as u32, 1);
            }
            b.flush();
            b.out
        };
        let data = stream("00 01 100 1010000000 1010000001".replace(' ', "").as_str());
        let mut br = BitReader::new(&data, 0);
        let got: Vec<u8> = (0..5).map(|_| br.decode(&t).unwrap()).collect();
        assert_eq!(got, [5, 6, 7, 8, 9]);
        assert!(!br.overrun);
        // 1011... is no code.
        let data = stream("1011111111111111");
        assert!(BitReader::new(&data, 0).decode(&t).is_err());
        // Three codes of length 1 do not fit; nor do counts that disagree
        // with the values.
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_err());
        counts[0] = 1;
        assert!(Huffman::new(&counts, &[1, 2]).is_err());
        assert!(Huffman::new(&[0; 16], &[]).is_err());
    }

    #[test]
    fn receive_extend_and_byte_stuffing() {
        // Category 3: 000 is -7, 011 is -4, 100 is 4, 111 is 7. Then 8 one
        // bits (a stuffed 0xFF) and a marker: reading past it is noticed.
        let data = [0b0000_1110, 0b0111_1111, 0xFF, 0x00, 0xFF, 0xD9];
        let mut br = BitReader::new(&data, 0);
        assert_eq!(br.receive_extend(3), -7);
        assert_eq!(br.receive_extend(3), -4);
        assert_eq!(br.receive_extend(3), 4);
        assert_eq!(br.receive_extend(3), 7);
        assert_eq!(br.bits(4), 0b1111);
        assert_eq!(br.bits(8), 0xFF);
        assert!(!br.overrun);
        assert_eq!(br.next_marker(), 4);
        br.bits(1);
        assert!(br.overrun);
    }

    #[test]
    fn idct_constants_are_the_cosines() {
        let c = |k: f64| (k * std::f64::consts::PI / 16.0).cos();
        let s2 = std::f64::consts::SQRT_2;
        let fix = |v: f64| (v * 8192.0).round() as i64;
        assert_eq!(F_0_541196100, fix(s2 * c(6.0)));
        assert_eq!(F_0_765366865, fix(s2 * (c(2.0) - c(6.0))));
        assert_eq!(F_1_847759065, fix(s2 * (c(2.0) + c(6.0))));
        assert_eq!(F_1_175875602, fix(s2 * c(3.0)));
        assert_eq!(
            F_0_298631336,
            fix(s2 * (-c(1.0) + c(3.0) + c(5.0) - c(7.0)))
        );
        assert_eq!(F_2_053119869, fix(s2 * (c(1.0) + c(3.0) - c(5.0) + c(7.0))));
        assert_eq!(F_3_072711026, fix(s2 * (c(1.0) + c(3.0) + c(5.0) - c(7.0))));
        assert_eq!(F_1_501321110, fix(s2 * (c(1.0) + c(3.0) - c(5.0) - c(7.0))));
        assert_eq!(F_0_899976223, fix(s2 * (c(3.0) - c(7.0))));
        assert_eq!(F_2_562915447, fix(s2 * (c(1.0) + c(3.0))));
        assert_eq!(F_1_961570560, fix(s2 * (c(3.0) + c(5.0))));
        assert_eq!(F_0_390180644, fix(s2 * (c(3.0) - c(5.0))));
    }

    #[test]
    fn idct_is_within_one_of_the_direct_formula() {
        // A DC-only block is flat at DC/8.
        let mut c = [0i64; 64];
        c[0] = 80;
        assert!(idct(&c, 12).iter().all(|&v| v == 10));
        assert!(idct(&c, 8).iter().all(|&v| v == 10));
        // Random coefficients (IEEE 1180 style, ranges of 12-bit and 8-bit
        // blocks): at most 1 from the rounded exact value. 12-bit keeps one
        // bit less between the passes (as IJG's does): more samples are 1
        // off (about 15% for the widest range).
        let mut state = 12345u32;
        for (precision, range) in [(12u8, 4096u32), (12, 300), (8, 256), (8, 5)] {
            let (mut differ, mut total) = (0, 0);
            for _ in 0..500 {
                for e in c.iter_mut() {
                    state = state.wrapping_mul(1103515245).wrapping_add(12345);
                    *e = ((state >> 8) % (2 * range + 1)) as i64 - range as i64;
                }
                // Out-of-range samples are not compared: clamping hides them.
                let exact = naive_idct(&c.map(|v| v as f64));
                let ours = idct(&c, precision);
                let limit = 1i64 << precision;
                for (a, b) in ours.iter().zip(exact) {
                    if a.abs() < limit {
                        let d = (a - b).abs();
                        assert!(d <= 1, "{precision}-bit, range {range}: {a} against {b}");
                        differ += (d != 0) as u32;
                        total += 1;
                    }
                }
            }
            assert!(
                differ * 4 < total,
                "{precision}-bit, range {range}: {differ} of {total} differ"
            );
        }
    }

    #[test]
    fn twelve_bit_grayscale() {
        let (w, h) = (37, 29);
        let img = picture(w, h, 12, 1);
        let enc = Enc::new(12);
        let (stream, expected) = enc.encode(std::slice::from_ref(&img), w, h);
        assert_decodes(&stream, &expected, w, h, "12-bit");
        // Quantisation 1: close to the original.
        let dec = decode_image(&stream, |_, _, _| Ok(())).unwrap();
        let max = dec.planes[0]
            .iter()
            .zip(&img)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(max <= 3, "max error {max}");
        // 16-bit quantisation tables, with values above 255; restarts
        // every 2 MCUs; fill bytes before every marker.
        let mut enc = Enc::new(12);
        enc.pq16 = true;
        enc.q = std::array::from_fn(|k| 1 + 10 * k as u16);
        enc.restart = 2;
        enc.fill = true;
        let (stream, expected) = enc.encode(std::slice::from_ref(&img), w, h);
        assert!(enc.q.iter().any(|&q| q > 255));
        assert_decodes(&stream, &expected, w, h, "12-bit, 16-bit tables, restarts");
    }

    #[test]
    fn sixteen_bit_tables_equal_eight_bit_ones() {
        let (w, h) = (16, 16);
        let img = picture(w, h, 8, 2);
        let mut enc = Enc::new(8);
        enc.q = std::array::from_fn(|k| 2 + k as u16);
        let (a, _) = enc.encode(std::slice::from_ref(&img), w, h);
        enc.pq16 = true;
        let (b, _) = enc.encode(std::slice::from_ref(&img), w, h);
        assert_ne!(a, b);
        let da = decode_image(&a, |_, _, _| Ok(())).unwrap();
        let db = decode_image(&b, |_, _, _| Ok(())).unwrap();
        assert_eq!(da, db);
    }

    #[test]
    fn colour_sampling_interleaving_and_restarts() {
        let (w, h) = (45, 27);
        for (sampling, interleaved, restart, precision) in [
            (vec![(2, 2), (1, 1), (1, 1)], true, 0, 8),
            (vec![(2, 2), (1, 1), (1, 1)], true, 3, 12),
            (vec![(2, 1), (1, 1), (1, 1)], false, 5, 12),
            (vec![(1, 1), (1, 2), (1, 1)], false, 0, 8),
            (vec![(1, 1), (1, 1), (1, 1)], true, 1, 12),
            (vec![(3, 1), (1, 1), (1, 1)], true, 7, 8),
        ] {
            let planes: Vec<Vec<u16>> = (0..3).map(|s| picture(w, h, precision, 7 + s)).collect();
            let mut enc = Enc::new(precision);
            enc.sampling = sampling.clone();
            enc.interleaved = interleaved;
            enc.restart = restart;
            let (stream, expected) = enc.encode(&planes, w, h);
            assert_decodes(
                &stream,
                &expected,
                w,
                h,
                &format!(
                    "{sampling:?}, interleaved {interleaved}, restart {restart}, {precision}-bit"
                ),
            );
        }
    }

    #[test]
    fn eight_bit_agrees_with_jpeg_decoder() {
        use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
        let (w, h) = (61u16, 35u16);
        let gray: Vec<u8> = picture(w as usize, h as usize, 8, 3)
            .iter()
            .map(|&v| v as u8)
            .collect();
        for restart in [0u16, 3] {
            let mut out = Vec::new();
            let mut e = Encoder::new(&mut out, 90);
            if restart > 0 {
                e.set_restart_interval(restart);
            }
            e.encode(&gray, w, h, ColorType::Luma).unwrap();
            let theirs = jpeg_decoder::Decoder::new(&out[..]).decode().unwrap();
            let ours = decode_image(&out, |_, _, _| Ok(())).unwrap();
            let max = ours.planes[0]
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            assert!(
                max <= 1,
                "grayscale, restart {restart}: max difference {max}"
            );
            // YCbCr 4:2:0 with restarts: a grey picture (flat chroma, so
            // upsampling and colour conversion play no part), luma against
            // jpeg-decoder's red.
            let rgb: Vec<u8> = gray.iter().flat_map(|&g| [g, g, g]).collect();
            let mut out = Vec::new();
            let mut e = Encoder::new(&mut out, 90);
            e.set_sampling_factor(SamplingFactor::F_2_2);
            if restart > 0 {
                e.set_restart_interval(restart);
            }
            e.encode(&rgb, w, h, ColorType::Rgb).unwrap();
            let theirs = jpeg_decoder::Decoder::new(&out[..]).decode().unwrap();
            let ours = decode_image(&out, |_, _, _| Ok(())).unwrap();
            assert_eq!(ours.planes.len(), 3);
            assert!(
                ours.planes[1]
                    .iter()
                    .chain(&ours.planes[2])
                    .all(|&c| c == 128)
            );
            let max = ours.planes[0]
                .iter()
                .zip(theirs.chunks_exact(3))
                .map(|(a, b)| (*a as i32 - b[0] as i32).abs())
                .max()
                .unwrap();
            assert!(
                max <= 1,
                "colour luma, restart {restart}: max difference {max}"
            );
        }
    }

    #[test]
    fn refusals() {
        use jpeg_encoder::{ColorType, Encoder};
        let gray = vec![100u8; 16 * 16];
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, 90);
        e.set_progressive(true);
        e.encode(&gray, 16, 16, ColorType::Luma).unwrap();
        let err = decode_image(&out, |_, _, _| Ok(())).unwrap_err();
        assert!(
            matches!(&err, PixelError::Unsupported(m) if m.contains("progressive")),
            "{err:?}"
        );
        assert_eq!(
            frame_kind(&out),
            Some(FrameKind {
                marker: 0xC2,
                precision: 8,
                subsampled: false
            })
        );
        // The size check runs before anything is allocated.
        let (stream, _) = Enc::new(12).encode(&[vec![0; 64]], 8, 8);
        let err = decode_image(&stream, |w, h, n| {
            Err(PixelError::Malformed(format!("{w}x{h}x{n}")))
        })
        .unwrap_err();
        assert_eq!(err, PixelError::Malformed("8x8x1".into()));
        assert_eq!(
            frame_kind(&stream),
            Some(FrameKind {
                marker: 0xC1,
                precision: 12,
                subsampled: false
            })
        );
        for bad in [
            &b""[..],
            b"\xFF",
            b"\xFF\xD8",
            b"\xFF\xD8\xFF\xD9",
            b"GIF89a",
        ] {
            let err = decode_image(bad, |_, _, _| Ok(())).unwrap_err();
            assert!(matches!(err, PixelError::Malformed(_)), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn damaged_streams_are_errors_not_panics() {
        let (w, h) = (40, 24);
        let planes: Vec<Vec<u16>> = (0..3).map(|s| picture(w, h, 12, 20 + s)).collect();
        let mut enc = Enc::new(12);
        enc.sampling = vec![(2, 1), (1, 1), (1, 1)];
        enc.restart = 2;
        let (stream, _) = enc.encode(&planes, w, h);
        let eoi = stream.len() - 2;
        // Every truncation before the end of image marker's data is an error.
        for len in 0..eoi {
            let err = decode_image(&stream[..len], |_, _, _| Ok(()))
                .expect_err(&format!("truncated to {len}"));
            assert!(matches!(err, PixelError::Malformed(_)), "{len}: {err:?}");
        }
        assert!(decode_image(&stream[..eoi], |_, _, _| Ok(())).is_ok());
        // Corrupt bytes anywhere: decoded or refused, never a panic.
        let mut state = 99u32;
        for i in 0..2000 {
            let mut bad = stream.clone();
            for _ in 0..1 + i % 4 {
                state = state.wrapping_mul(1103515245).wrapping_add(12345);
                let at = (state >> 8) as usize % bad.len();
                bad[at] ^= 1 << (state >> 28 & 7);
            }
            let _ = decode_image(&bad, |_, _, _| Ok(()));
        }
    }
}
