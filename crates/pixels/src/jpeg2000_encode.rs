//! JPEG 2000 encoders, lossless: HTJ2K (ISO/IEC 15444-15, the DICOM
//! transfer syntaxes 1.2.840.10008.1.2.4.201 and .202) through the pure-Rust
//! OpenJPH port `openjph-core`, and classic JPEG 2000 (Part 1, .90) through
//! OpenJPEG, the library that decodes them too.
//!
//! Both give a raw codestream (`.j2c`: SOC … EOC, no JP2 boxes), which is
//! what DICOM encapsulates, one frame per codestream.
//!
//! HTJ2K codestreams are written for "HTJ2K Lossless with RPCL Options"
//! (PS3.5 §10.18): RPCL progression, enough decomposition levels
//! for a base resolution of at most 64 columns or rows, a TLM marker
//! segment, and (as OpenJPH's `-tileparts R` does) one tile-part per
//! resolution, so the TLM says where each resolution ends and a prefix of
//! the codestream is a complete lower-resolution image
//! ([`resolution_ends`]). The JPEG 2000 codestreams have the same layout.
//!
//! `openjph-core` 0.1.0 (pinned) is used for its block coder, wavelet and
//! headers, around three defects found in testing:
//! - it writes one tile-part and leaves the TLM entries zero, whatever it
//!   is asked (and orders packets LRCP, which for one layer and one
//!   precinct per resolution is the RPCL order);
//! - its packet header writer sometimes ends a header with an extra zero
//!   byte (when a 0xFF falls among the last bytes), which decoders read as
//!   the first byte of the body: OpenJPEG and OpenJPH both refuse such a
//!   codestream, and it happens in a few frames in ten;
//! - it signals the reversible colour transform but does not apply it.
//!
//! So the colour transform is done here, and the encoder's tile is read
//! back packet by packet: each header is decoded and encoded again (which
//! must give the encoder's bytes back, padding defect included, or the
//! frame is refused), written with the standard termination, and the
//! packets are split into tile-parts at the resolution boundaries under a
//! TLM that holds the real lengths. Any disagreement is an error, never a
//! codestream that decodes wrong.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{NativeFrame, PixelError};

/// The progression order written in the COD marker.
///
/// The codestream has one quality layer and one precinct per resolution,
/// so both orders put the packets in the same sequence (resolution by
/// resolution, the components of each together): the order only says what
/// a reader may rely on. DICOM's .202 requires RPCL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progression {
    /// Resolution, position, component, layer (DICOM .202).
    #[default]
    Rpcl,
    /// Layer, resolution, component, position.
    Lrcp,
}

/// How [`encode_htj2k`] encodes. The default is what DICOM's "HTJ2K
/// Lossless with RPCL Options" (1.2.840.10008.1.2.4.202) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtOptions {
    /// Wavelet decomposition levels (0 to 12); `None` chooses them from the
    /// image size ([`default_decompositions`]: 5 for 512×512).
    pub decompositions: Option<u8>,
    /// Code-block width and height: powers of two from 4 to 1024 whose
    /// product is at most 4096. Default 64×64.
    pub code_block: (u16, u16),
    /// Default RPCL.
    pub progression: Progression,
    /// One tile-part per resolution and a TLM marker segment giving their
    /// lengths (default true, required by .202). When false, one
    /// tile-part and no TLM.
    pub tile_parts_per_resolution: bool,
}

impl Default for HtOptions {
    fn default() -> Self {
        HtOptions {
            decompositions: None,
            code_block: (64, 64),
            progression: Progression::Rpcl,
            tile_parts_per_resolution: true,
        }
    }
}

/// The number of decomposition levels chosen for a `columns × rows` image:
/// enough for the lowest resolution to be at most 64 wide or high (as
/// PS3.5 §10.18 asks of .202), and at least 5 (OpenJPH's and OpenJPEG's
/// default, a 16×16 first image of a 512×512 frame) unless the image is
/// too small for that (never fewer levels than halve the smaller side to
/// one sample).
pub fn default_decompositions(columns: u32, rows: u32) -> u8 {
    let large = columns.max(rows).max(1);
    let small = columns.min(rows).max(1);
    let mut needed = 0u8;
    while (large >> needed) > 64 {
        needed += 1;
    }
    let fits = (31 - small.leading_zeros()) as u8; // floor(log2(small))
    needed.max(5.min(fits))
}

/// Checks the frame and the options before any encoder sees them.
fn check_frame(frame: &NativeFrame) -> Result<(), PixelError> {
    frame.check()?;
    if frame.rows == 0 || frame.columns == 0 {
        return Err(PixelError::Malformed("an empty frame".into()));
    }
    Ok(())
}

/// Sample `i` of the frame (interleaved order), masked to Bits Stored and
/// sign-extended when signed: the value the codestream carries.
#[inline]
fn value(frame: &NativeFrame, i: usize) -> i32 {
    let raw = if frame.bits_allocated == 8 {
        frame.data[i] as u32
    } else {
        u16::from_le_bytes([frame.data[2 * i], frame.data[2 * i + 1]]) as u32
    };
    let bs = frame.bits_stored as u32;
    let v = raw & ((1u32 << bs) - 1);
    if frame.signed && v & (1 << (bs - 1)) != 0 {
        v as i32 - (1i32 << bs)
    } else {
        v as i32
    }
}

/// Encodes one frame as a lossless HTJ2K codestream (reversible 5/3
/// wavelet, one tile, one quality layer), for the transfer syntaxes
/// 1.2.840.10008.1.2.4.201 and, with the default options, .202.
///
/// Samples are taken as [`NativeFrame`] describes them: 1 to 16 significant
/// bits (Bits Stored, right-aligned; higher bits are ignored), signed or
/// unsigned, 1 or 3 samples per pixel.
///
/// **Colour**: 3 samples per pixel are coded with the reversible colour
/// transform (RCT), so the object that carries the codestream must say
/// Photometric Interpretation `YBR_RCT` (PS3.3 C.7.6.3.1.2, PS3.5 §8.2.4);
/// the decoder turns it back into the RGB given here, bit-exact.
pub fn encode_htj2k(frame: &NativeFrame, opts: &HtOptions) -> Result<Vec<u8>, PixelError> {
    check_frame(frame)?;
    let (cbw, cbh) = opts.code_block;
    let block_ok = |d: u16| d.is_power_of_two() && (4..=1024).contains(&d);
    if !block_ok(cbw) || !block_ok(cbh) || cbw as u32 * cbh as u32 > 4096 {
        return Err(PixelError::Unsupported(format!(
            "HTJ2K code-blocks of {cbw}×{cbh}"
        )));
    }
    let (w, h) = (frame.columns as u32, frame.rows as u32);
    let levels = opts
        .decompositions
        .unwrap_or_else(|| default_decompositions(w, h));
    // The encoder's magnitudes are 32-bit: its widest subband needs
    // Bits Stored + 2 + log2 of the wavelet's gain over the levels, which
    // stays under 31 up to 12 levels (65535 samples to 16).
    if levels > 12 {
        return Err(PixelError::Unsupported(format!(
            "{levels} decomposition levels (at most 12)"
        )));
    }
    // openjph-core is young: a panic in it must not take the caller down.
    let single = catch_unwind(AssertUnwindSafe(|| openjph_encode(frame, levels, opts)))
        .map_err(|_| PixelError::Malformed("the HTJ2K encoder failed (panic)".into()))??;
    let geometry = Geometry {
        width: w,
        height: h,
        components: frame.samples_per_pixel as u32,
        levels: levels as u32,
        code_block: (cbw as u32, cbh as u32),
    };
    rewrite_tile_parts(&single, &geometry, opts.tile_parts_per_resolution)
}

/// The codestream as openjph-core writes it: one tile, one tile-part.
fn openjph_encode(
    frame: &NativeFrame,
    levels: u8,
    opts: &HtOptions,
) -> Result<Vec<u8>, PixelError> {
    use openjph_core::codestream::Codestream;
    use openjph_core::file::MemOutfile;
    use openjph_core::types::{Point, Size};
    let err = |e: openjph_core::OjphError| PixelError::Malformed(format!("HTJ2K encoder: {e}"));
    let (w, h) = (frame.columns as u32, frame.rows as u32);
    let comps = frame.samples_per_pixel as u32;
    let mut cs = Codestream::new();
    let siz = cs.access_siz_mut();
    siz.set_image_extent(Point::new(w, h));
    siz.set_tile_size(Size::new(w, h));
    siz.set_num_components(comps);
    for c in 0..comps {
        siz.set_comp_info(c, Point::new(1, 1), frame.bits_stored as u32, frame.signed);
    }
    let cod = cs.access_cod_mut();
    cod.set_num_decomposition(levels as u32);
    cod.set_reversible(true);
    cod.set_color_transform(comps == 3);
    cod.set_block_dims(opts.code_block.0 as u32, opts.code_block.1 as u32);
    cod.set_progression_order(match opts.progression {
        Progression::Rpcl => "RPCL",
        Progression::Lrcp => "LRCP",
    })
    .map_err(err)?;
    cs.set_planar(0);
    let raw_len = frame.expected_len();
    let mut out = MemOutfile::with_capacity(raw_len / 2 + 1024);
    cs.write_headers(&mut out, &[]).map_err(err)?;
    let (wu, cu) = (w as usize, comps as usize);
    if cu == 1 {
        let mut line = vec![0i32; wu];
        for y in 0..h as usize {
            for (x, v) in line.iter_mut().enumerate() {
                *v = value(frame, y * wu + x);
            }
            cs.exchange(&line, 0).map_err(err)?;
        }
    } else {
        // openjph-core 0.1.0 signals the colour transform (COD, and one
        // more bit in QCD) but does not apply it: the forward RCT (G.2) is
        // done here. It comes after the DC level shift of unsigned samples,
        // which the encoder does itself: shift, transform, shift back.
        let shift = if frame.signed {
            0
        } else {
            1i32 << (frame.bits_stored - 1)
        };
        let (mut yl, mut cb, mut cr) = (vec![0i32; wu], vec![0i32; wu], vec![0i32; wu]);
        for y in 0..h as usize {
            for x in 0..wu {
                let i = (y * wu + x) * 3;
                let r = value(frame, i) - shift;
                let g = value(frame, i + 1) - shift;
                let b = value(frame, i + 2) - shift;
                yl[x] = ((r + 2 * g + b) >> 2) + shift;
                cb[x] = b - g + shift;
                cr[x] = r - g + shift;
            }
            for (c, line) in [&yl, &cb, &cr].into_iter().enumerate() {
                cs.exchange(line, c as u32).map_err(err)?;
            }
        }
    }
    cs.flush(&mut out).map_err(err)?;
    Ok(out.get_data().to_vec())
}

// ---- Codestream markers ----------------------------------------------------

const SOC: u16 = 0xFF4F;
const SIZ: u16 = 0xFF51;
const COD: u16 = 0xFF52;
const TLM: u16 = 0xFF55;
const SOT: u16 = 0xFF90;
const SOD: u16 = 0xFF93;
const EOC: u16 = 0xFFD9;

fn malformed(what: &str) -> PixelError {
    PixelError::Malformed(format!("JPEG 2000 codestream: {what}"))
}

fn be16(b: &[u8], at: usize) -> Result<u16, PixelError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| malformed("ends inside a marker segment"))
}

fn be32(b: &[u8], at: usize) -> Result<u32, PixelError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| malformed("ends inside a marker segment"))
}

/// A marker segment: marker, offset of the marker, length including the
/// marker.
type Segment = (u16, usize, usize);

/// The main header's marker segments after SOC, up to the first SOT, whose
/// offset is returned too.
fn main_header(cs: &[u8]) -> Result<(Vec<Segment>, usize), PixelError> {
    if be16(cs, 0)? != SOC {
        return Err(malformed("no SOC marker"));
    }
    let mut segments = Vec::new();
    let mut pos = 2;
    loop {
        let marker = be16(cs, pos)?;
        if marker == SOT {
            return Ok((segments, pos));
        }
        if marker >> 8 != 0xFF || marker == EOC || marker == SOD {
            return Err(malformed(&format!(
                "marker {marker:04X} in the main header"
            )));
        }
        let len = be16(cs, pos + 2)? as usize;
        if len < 2 || pos + 2 + len > cs.len() {
            return Err(malformed("a marker segment runs past the end"));
        }
        segments.push((marker, pos, 2 + len));
        pos += 2 + len;
    }
}

/// Image size and code-block layout of the single tile we encoded.
struct Geometry {
    width: u32,
    height: u32,
    components: u32,
    levels: u32,
    code_block: (u32, u32),
}

impl Geometry {
    /// The code-block grids (columns, rows of code-blocks) of the subbands
    /// of resolution `r` (0 = the lowest), in packet order: LL for r = 0,
    /// else HL, LH, HH. The image and the tile start at 0, there is one
    /// precinct per resolution (maximal precincts), so the grids are
    /// anchored at 0.
    fn subband_blocks(&self, r: u32) -> Vec<(u32, u32)> {
        let ceil_shift = |v: u32, s: u32| -> u32 {
            if s >= 32 {
                (v > 0) as u32
            } else {
                ((v as u64 + (1u64 << s) - 1) >> s) as u32
            }
        };
        let blocks = |len: u32, cb: u32| len.div_ceil(cb);
        let (cbw, cbh) = self.code_block;
        if r == 0 {
            let (lw, lh) = (
                ceil_shift(self.width, self.levels),
                ceil_shift(self.height, self.levels),
            );
            return vec![(blocks(lw, cbw), blocks(lh, cbh))];
        }
        // Resolution r is the LL of decomposition level nb - 1 split once more.
        let nb = self.levels - r + 1;
        let (pw, ph) = (
            ceil_shift(self.width, nb - 1),
            ceil_shift(self.height, nb - 1),
        );
        let (low_w, high_w) = (pw.div_ceil(2), pw / 2);
        let (low_h, high_h) = (ph.div_ceil(2), ph / 2);
        vec![
            (blocks(high_w, cbw), blocks(low_h, cbh)),
            (blocks(low_w, cbw), blocks(high_h, cbh)),
            (blocks(high_w, cbw), blocks(high_h, cbh)),
        ]
    }
}

/// A packet header as openjph-core 0.1.0's `BitBufferWrite` writes it, so
/// that its bytes can be predicted from the values read: its `finalize`
/// pads the pending bits to a multiple of 8 before emitting them, which
/// is one bit short when a 0xFF is among the last bytes (the byte after
/// 0xFF holds 7 bits), and then emits an extra zero byte that a decoder
/// takes for the first byte of the packet body. The standard header
/// (B.10.1) is the same bits, padded to the byte boundary, with one
/// stuffed zero byte after a last 0xFF.
#[derive(Clone)]
struct HeaderWriter {
    data: Vec<u8>,
    buf: u64,
    bits_used: u32,
    unstuff: bool,
}

impl HeaderWriter {
    fn new() -> Self {
        HeaderWriter {
            data: Vec::new(),
            buf: 0,
            bits_used: 0,
            unstuff: false,
        }
    }

    fn write(&mut self, val: u32, n: u32) {
        self.buf |= (val as u64) << (64 - self.bits_used - n);
        self.bits_used += n;
        if self.bits_used >= 32 {
            self.flush_bytes();
        }
    }

    fn emit_byte(&mut self) {
        if self.unstuff {
            self.data.push(((self.buf >> 57) as u8) & 0x7F);
            self.buf <<= 7;
            self.bits_used -= 7;
            self.unstuff = false;
        } else {
            let byte = (self.buf >> 56) as u8;
            self.data.push(byte);
            self.buf <<= 8;
            self.bits_used -= 8;
            self.unstuff = byte == 0xFF;
        }
    }

    fn flush_bytes(&mut self) {
        while self.bits_used >= if self.unstuff { 7 } else { 8 } {
            self.emit_byte();
        }
    }

    /// The bytes openjph-core writes (its `finalize`, extra byte included).
    fn encoded(mut self) -> Vec<u8> {
        while self.bits_used > 0 || self.unstuff {
            if self.bits_used == 0 {
                self.data.push(0);
                self.unstuff = false;
            } else {
                let byte_bits = if self.unstuff { 7 } else { 8 };
                if self.bits_used < byte_bits {
                    self.bits_used = byte_bits;
                } else if !self.bits_used.is_multiple_of(byte_bits) {
                    self.bits_used += byte_bits - self.bits_used % byte_bits;
                }
                self.flush_bytes();
            }
        }
        self.data
    }

    /// The same header as B.10.1 terminates it.
    fn standard(mut self) -> Vec<u8> {
        while self.bits_used > 0 {
            let byte_bits = if self.unstuff { 7 } else { 8 };
            self.bits_used = self.bits_used.max(byte_bits);
            self.emit_byte();
        }
        if self.unstuff {
            self.data.push(0);
        }
        self.data
    }
}

/// Reads packet header bits (B.10.1: after a 0xFF byte, only 7 bits),
/// keeping the bits read since they were last handed to a [`HeaderWriter`].
struct HeaderBits<'a> {
    data: &'a [u8],
    pos: usize,
    cur: u8,
    left: u8,
    last_ff: bool,
    pending: Vec<u32>,
}

impl<'a> HeaderBits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        HeaderBits {
            data,
            pos,
            cur: 0,
            left: 0,
            last_ff: false,
            pending: Vec::new(),
        }
    }

    fn bit(&mut self) -> Result<u32, PixelError> {
        if self.left == 0 {
            let b = *self
                .data
                .get(self.pos)
                .ok_or_else(|| malformed("a packet header runs past the tile"))?;
            self.pos += 1;
            self.left = if self.last_ff { 7 } else { 8 };
            self.last_ff = b == 0xFF;
            self.cur = b;
        }
        self.left -= 1;
        let bit = ((self.cur >> self.left) & 1) as u32;
        self.pending.push(bit);
        Ok(bit)
    }

    fn bits(&mut self, n: u32) -> Result<u32, PixelError> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    /// The offset just after the header (a 0xFF last byte is followed by a
    /// stuffed zero byte).
    fn end(&self) -> usize {
        self.pos + self.last_ff as usize
    }

    /// Hands the pending bits to `w` one by one, as the encoder writes
    /// tag tree and Lblock bits, except the last `group` bits, written as
    /// one value (a codeword or a length).
    fn hand_over(&mut self, w: &mut HeaderWriter, group: usize) {
        let split = self.pending.len() - group;
        for &b in &self.pending[..split] {
            w.write(b, 1);
        }
        if group > 0 {
            let v = self.pending[split..].iter().fold(0, |v, &b| (v << 1) | b);
            w.write(v, group as u32);
        }
        self.pending.clear();
    }
}

/// A tag tree being decoded (B.10.2).
struct TagTree {
    /// Per level (0 = leaves): width, and (value, low) of each node;
    /// `u32::MAX` while a value is unknown.
    levels: Vec<(u32, Vec<(u32, u32)>)>,
}

impl TagTree {
    fn new(w: u32, h: u32) -> Self {
        let mut levels = Vec::new();
        let (mut lw, mut lh) = (w, h);
        loop {
            levels.push((lw, vec![(u32::MAX, 0); (lw * lh) as usize]));
            if lw <= 1 && lh <= 1 {
                break;
            }
            lw = lw.div_ceil(2);
            lh = lh.div_ceil(2);
        }
        TagTree { levels }
    }

    /// Decodes towards leaf (x, y) until its value is known to be below
    /// `threshold` or not; true when it is below.
    fn decode(
        &mut self,
        x: u32,
        y: u32,
        threshold: u32,
        bits: &mut HeaderBits,
    ) -> Result<bool, PixelError> {
        let mut low = 0u32;
        for k in (0..self.levels.len()).rev() {
            let (lw, nodes) = &mut self.levels[k];
            let node = &mut nodes[((y >> k) * *lw + (x >> k)) as usize];
            if low > node.1 {
                node.1 = low;
            } else {
                low = node.1;
            }
            while low < threshold && low < node.0 {
                if bits.bit()? == 1 {
                    node.0 = low;
                } else {
                    low += 1;
                }
            }
            node.1 = low;
        }
        Ok(self.levels[0].1[(y * self.levels[0].0 + x) as usize].0 < threshold)
    }

    /// The leaf's value, decoding as far as needed.
    fn value(&mut self, x: u32, y: u32, bits: &mut HeaderBits) -> Result<u32, PixelError> {
        let mut t = 1;
        while !self.decode(x, y, t, bits)? {
            t += 1;
            if t > 64 {
                return Err(malformed("a tag tree value out of range"));
            }
        }
        Ok(self.levels[0].1[(y * self.levels[0].0 + x) as usize].0)
    }

    /// True when the root says no leaf is included in the first layer.
    fn root_excluded(&self) -> bool {
        self.levels.last().is_some_and(|(_, n)| n[0].0 != 0)
    }
}

/// One packet of the encoder's tile.
struct Packet {
    /// The header, terminated as B.10.1 says.
    header: Vec<u8>,
    /// The header's length as the encoder wrote it.
    encoded_len: usize,
    /// The body's length.
    body: usize,
}

/// Reads the packet at `pos` in the tile data: one quality layer, HT
/// code-blocks of at most 3 coding passes, no SOP or EPH markers. Its
/// header is re-encoded from the values read and must give the encoder's
/// bytes back.
fn read_packet(data: &[u8], pos: usize, subbands: &[(u32, u32)]) -> Result<Packet, PixelError> {
    let mut bits = HeaderBits::new(data, pos);
    let mut w = HeaderWriter::new();
    let mut body = 0usize;
    if bits.bit()? == 0 {
        bits.hand_over(&mut w, 0);
    } else {
        // The encoder writes the "not empty" bit when it meets the first
        // subband with a code-block, with one bit for each empty subband
        // before it, as one value.
        bits.pending.clear();
        let mut started = false;
        let mut skipped = 0u32;
        for &(nbx, nby) in subbands {
            if nbx == 0 || nby == 0 {
                continue;
            }
            let mut inclusion = TagTree::new(nbx, nby);
            let mut zero_planes = TagTree::new(nbx, nby);
            let first = inclusion.decode(0, 0, 1, &mut bits)?;
            if inclusion.root_excluded() {
                // No code-block: one 0 bit for the whole subband.
                bits.pending.pop();
                bits.hand_over(&mut w, 0);
                if started {
                    w.write(0, 1);
                } else {
                    skipped += 1;
                }
                continue;
            }
            if !started {
                w.write(1, 1);
                if skipped > 0 {
                    w.write(0, skipped);
                }
                started = true;
            }
            for y in 0..nby {
                for x in 0..nbx {
                    let included = if x == 0 && y == 0 {
                        first
                    } else {
                        inclusion.decode(x, y, 1, &mut bits)?
                    };
                    if !included {
                        continue;
                    }
                    zero_planes.value(x, y, &mut bits)?;
                    bits.hand_over(&mut w, 0);
                    // Number of coding passes (Table B.4).
                    let passes = if bits.bit()? == 0 {
                        1
                    } else if bits.bit()? == 0 {
                        2
                    } else {
                        let v = bits.bits(2)?;
                        if v < 3 {
                            3 + v
                        } else {
                            let v = bits.bits(5)?;
                            if v < 31 { 6 + v } else { 37 + bits.bits(7)? }
                        }
                    };
                    if passes > 3 {
                        return Err(PixelError::Unsupported(format!(
                            "HTJ2K code-blocks of {passes} coding passes"
                        )));
                    }
                    let codeword = bits.pending.len();
                    bits.hand_over(&mut w, codeword);
                    let mut lblock = 3;
                    while bits.bit()? == 1 {
                        lblock += 1;
                        if lblock > 32 {
                            return Err(malformed("a code-block length out of range"));
                        }
                    }
                    bits.hand_over(&mut w, 0);
                    // HT: the cleanup segment, then one for the other passes
                    // (15444-15: Lblock + floor(log2(passes - 1)) bits).
                    body += bits.bits(lblock)? as usize;
                    bits.hand_over(&mut w, lblock as usize);
                    if passes > 1 {
                        let n = lblock + if passes > 2 { 1 } else { 0 };
                        body += bits.bits(n)? as usize;
                        bits.hand_over(&mut w, n as usize);
                    }
                }
            }
        }
        if !started {
            return Err(malformed("a packet said not empty without a code-block"));
        }
        bits.hand_over(&mut w, 0);
    }
    let encoded = w.clone().encoded();
    if data.get(pos..pos + encoded.len()) != Some(&encoded[..]) {
        return Err(malformed("a packet header that does not read back"));
    }
    let header = w.standard();
    if bits.end() != pos + header.len() || !encoded.starts_with(&header) {
        return Err(malformed("a packet header that does not read back"));
    }
    Ok(Packet {
        header,
        encoded_len: encoded.len(),
        body,
    })
}

/// Writes the single tile-part of `cs` anew: each packet header
/// terminated as the standard says and, when `split`, one tile-part per
/// resolution with a TLM marker segment giving their lengths.
fn rewrite_tile_parts(cs: &[u8], g: &Geometry, split: bool) -> Result<Vec<u8>, PixelError> {
    let (segments, sot) = main_header(cs)?;
    // SOT: Lsot (10), Isot, Psot, TPsot, TNsot; then SOD and the data.
    if be16(cs, sot + 2)? != 10 {
        return Err(malformed("an SOT segment of unexpected length"));
    }
    let psot = be32(cs, sot + 6)? as usize;
    if be16(cs, sot + 12)? != SOD || psot < 14 || sot + psot > cs.len() {
        return Err(malformed("the tile-part is not where its SOT says"));
    }
    let data = &cs[sot + 14..sot + psot];
    if be16(cs, sot + psot)? != EOC {
        return Err(malformed("more than one tile-part from the encoder"));
    }
    // The packets, resolution by resolution (the components of each
    // together), and where each resolution ends in the new tile data.
    let mut tile = Vec::with_capacity(data.len());
    let mut ends = Vec::with_capacity(g.levels as usize + 1);
    let mut pos = 0usize;
    for r in 0..=g.levels {
        let subbands = g.subband_blocks(r);
        for _ in 0..g.components {
            let p = read_packet(data, pos, &subbands)?;
            let body = pos + p.encoded_len;
            let body = data
                .get(body..body + p.body)
                .ok_or_else(|| malformed("packets run past the tile"))?;
            tile.extend_from_slice(&p.header);
            tile.extend_from_slice(body);
            pos += p.encoded_len + p.body;
        }
        ends.push(tile.len());
    }
    if pos != data.len() {
        return Err(malformed(&format!(
            "the packets take {pos} of the tile's {} bytes",
            data.len()
        )));
    }
    let parts: Vec<&[u8]> = if split {
        let mut start = 0;
        ends.iter()
            .map(|&e| {
                let p = &tile[start..e];
                start = e;
                p
            })
            .collect()
    } else {
        vec![&tile[..]]
    };
    let mut out = Vec::with_capacity(cs.len() + 16 + 6 * parts.len());
    out.extend_from_slice(&SOC.to_be_bytes());
    for &(marker, at, len) in &segments {
        if marker != TLM {
            out.extend_from_slice(&cs[at..at + len]);
        }
    }
    if split {
        // Ztlm 0, Stlm 0x60: 16-bit tile indices, 32-bit lengths.
        out.extend_from_slice(&TLM.to_be_bytes());
        out.extend_from_slice(&((4 + 6 * parts.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0x60]);
        for p in &parts {
            out.extend_from_slice(&0u16.to_be_bytes());
            out.extend_from_slice(&((14 + p.len()) as u32).to_be_bytes());
        }
    }
    for (i, p) in parts.iter().enumerate() {
        out.extend_from_slice(&SOT.to_be_bytes());
        out.extend_from_slice(&10u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&((14 + p.len()) as u32).to_be_bytes());
        out.extend_from_slice(&[i as u8, parts.len() as u8]);
        out.extend_from_slice(&SOD.to_be_bytes());
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&EOC.to_be_bytes());
    Ok(out)
}

// ---- Reading our codestreams back ------------------------------------------

/// One tile-part of a codestream: its place in the bytes (from its SOT
/// marker to its last data byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePart {
    /// Isot: the tile.
    pub tile: u16,
    /// TPsot: the tile-part's index within its tile.
    pub part: u8,
    pub offset: usize,
    pub len: usize,
}

/// The tile-parts of a codestream, in order, from its SOT markers (each
/// checked against the TLM marker segment when there is one).
pub fn tile_parts(codestream: &[u8]) -> Result<Vec<TilePart>, PixelError> {
    let (segments, mut pos) = main_header(codestream)?;
    let mut parts = Vec::new();
    while be16(codestream, pos)? == SOT {
        let tile = be16(codestream, pos + 4)?;
        let psot = be32(codestream, pos + 6)? as usize;
        let part = *codestream
            .get(pos + 10)
            .ok_or_else(|| malformed("ends inside an SOT segment"))?;
        // Psot 0: the last tile-part, running to EOC.
        let len = if psot == 0 {
            codestream.len().saturating_sub(pos + 2)
        } else {
            psot
        };
        if len < 14 || pos + len > codestream.len() {
            return Err(malformed("a tile-part runs past the end"));
        }
        parts.push(TilePart {
            tile,
            part,
            offset: pos,
            len,
        });
        pos += len;
    }
    if be16(codestream, pos)? != EOC {
        return Err(malformed("no EOC after the last tile-part"));
    }
    // The TLM entries (Stlm: ST bits 4-5, SP bit 6), in tile-part order.
    let mut tlm_lens = Vec::new();
    for &(marker, at, len) in &segments {
        if marker != TLM {
            continue;
        }
        if len < 6 {
            return Err(malformed("a short TLM segment"));
        }
        let stlm = codestream[at + 5];
        let st = ((stlm >> 4) & 3) as usize;
        let sp = if stlm & 0x40 != 0 { 4 } else { 2 };
        if st == 3 {
            return Err(malformed("a TLM segment with ST = 3"));
        }
        let mut p = at + 6;
        while p + st + sp <= at + len {
            p += st;
            tlm_lens.push(if sp == 4 {
                be32(codestream, p)? as usize
            } else {
                be16(codestream, p)? as usize
            });
            p += sp;
        }
    }
    if !tlm_lens.is_empty() {
        let sot_lens: Vec<usize> = parts.iter().map(|p| p.len).collect();
        if tlm_lens != sot_lens {
            return Err(malformed(&format!(
                "the TLM says tile-parts of {tlm_lens:?} bytes, the SOT markers {sot_lens:?}"
            )));
        }
    }
    Ok(parts)
}

/// A prefix of a codestream that decodes to a whole image at a lower
/// resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolutionEnd {
    /// Resolutions dropped from the full image (0: the full image; the
    /// image is halved this many times).
    pub reduce: u8,
    pub columns: u32,
    pub rows: u32,
    /// Bytes from the start of the codestream to the end of this
    /// resolution's tile-part. Append EOC (FF D9) for a decoder that wants
    /// one.
    pub bytes: usize,
}

/// Where each resolution ends in a codestream written as [`encode_htj2k`]
/// writes it (one tile, one tile-part per resolution, lowest first): the
/// first entry is the smallest image, the last the whole codestream. A
/// codestream of another layout (several tiles, or tile-parts that are not
/// one per resolution) is refused.
pub fn resolution_ends(codestream: &[u8]) -> Result<Vec<ResolutionEnd>, PixelError> {
    let parts = tile_parts(codestream)?;
    let (segments, _) = main_header(codestream)?;
    let find = |m: u16| {
        segments
            .iter()
            .find(|s| s.0 == m)
            .map(|s| s.1)
            .ok_or_else(|| malformed(&format!("no {m:04X} marker in the main header")))
    };
    let siz = find(SIZ)?;
    let (x1, y1) = (be32(codestream, siz + 6)?, be32(codestream, siz + 10)?);
    let (x0, y0) = (be32(codestream, siz + 14)?, be32(codestream, siz + 18)?);
    let cod = find(COD)?;
    // Lcod, Scod, SGcod (order, layers, MCT), then SPcod: decompositions.
    let levels = *codestream
        .get(cod + 9)
        .ok_or_else(|| malformed("a short COD segment"))? as u32;
    if levels > 32 {
        return Err(malformed(&format!("{levels} decomposition levels")));
    }
    if parts.len() != levels as usize + 1
        || parts
            .iter()
            .enumerate()
            .any(|(i, p)| p.tile != 0 || p.part as usize != i)
    {
        return Err(PixelError::Unsupported(format!(
            "{} tile-parts for {} resolutions: not one tile-part per resolution",
            parts.len(),
            levels + 1
        )));
    }
    // A resolution's extent on the reference grid (B.5).
    let extent = |lo: u32, hi: u32, reduce: u32| {
        let c = |v: u32| ((v as u64 + (1u64 << reduce) - 1) >> reduce) as u32;
        c(hi).saturating_sub(c(lo))
    };
    Ok(parts
        .iter()
        .enumerate()
        .map(|(r, p)| {
            let reduce = levels - r as u32;
            ResolutionEnd {
                reduce: reduce as u8,
                columns: extent(x0, x1, reduce),
                rows: extent(y0, y1, reduce),
                bytes: p.offset + p.len,
            }
        })
        .collect())
}

// ---- JPEG 2000 (Part 1) through OpenJPEG -----------------------------------

/// Encodes one frame as a lossless JPEG 2000 codestream (reversible 5/3
/// wavelet, one layer) through OpenJPEG, for the transfer syntax
/// 1.2.840.10008.1.2.4.90. The layout is that of [`encode_htj2k`]: RPCL,
/// one tile-part per resolution and a TLM marker segment, so
/// [`resolution_ends`] applies; the decomposition levels of
/// [`default_decompositions`], but never more than halve the smaller side
/// to one sample (OpenJPEG's limit).
///
/// Samples as for [`encode_htj2k`]; 3 samples per pixel are coded with the
/// reversible colour transform, so Photometric Interpretation must be
/// `YBR_RCT`.
pub fn encode_j2k_lossless(frame: &NativeFrame) -> Result<Vec<u8>, PixelError> {
    check_frame(frame)?;
    let (w, h) = (frame.columns as u32, frame.rows as u32);
    // OpenJPEG wants each side at least 2^(resolutions - 1).
    let fits = 31 - w.min(h).leading_zeros();
    let levels = (default_decompositions(w, h) as u32).min(fits);
    let comps = frame.samples_per_pixel as usize;
    let n = (w * h) as usize;
    let mut planes = vec![vec![0i32; n]; comps];
    for (p, px) in (0..n).enumerate() {
        for (c, plane) in planes.iter_mut().enumerate() {
            plane[p] = value(frame, px * comps + c);
        }
    }
    openjpeg::encode(
        &planes,
        w,
        h,
        frame.bits_stored as u32,
        frame.signed,
        levels,
    )
}

mod openjpeg {
    use std::ffi::{c_char, c_void};
    use std::ptr;

    use openjpeg_sys as opj;

    use crate::PixelError;

    /// The encoder's output: bytes written at a position it may move.
    struct Sink {
        buf: Vec<u8>,
        pos: usize,
    }

    unsafe extern "C" fn write(p_buffer: *mut c_void, n: usize, user: *mut c_void) -> usize {
        // SAFETY: `user` is the `Sink` of `encode`, alive while the stream is;
        // OpenJPEG hands `n` readable bytes at `p_buffer`.
        let sink = unsafe { &mut *(user as *mut Sink) };
        let src = unsafe { std::slice::from_raw_parts(p_buffer as *const u8, n) };
        let end = sink.pos + n;
        if sink.buf.len() < end {
            sink.buf.resize(end, 0);
        }
        sink.buf[sink.pos..end].copy_from_slice(src);
        sink.pos = end;
        n
    }

    unsafe extern "C" fn skip(n: i64, user: *mut c_void) -> i64 {
        // SAFETY: as in `write`.
        let sink = unsafe { &mut *(user as *mut Sink) };
        let to = sink.pos as i64 + n;
        if to < 0 {
            return -1;
        }
        sink.pos = to as usize;
        n
    }

    unsafe extern "C" fn seek(to: i64, user: *mut c_void) -> i32 {
        // SAFETY: as in `write`.
        let sink = unsafe { &mut *(user as *mut Sink) };
        if to < 0 {
            return 0;
        }
        sink.pos = to as usize;
        1
    }

    // OpenJPEG's handles and error messages, as the decoder keeps them.
    use crate::openjpeg_decode::{Handles, on_error};

    /// Encodes component planes (`w × h` values each) losslessly.
    pub(super) fn encode(
        planes: &[Vec<i32>],
        w: u32,
        h: u32,
        precision: u32,
        signed: bool,
        levels: u32,
    ) -> Result<Vec<u8>, PixelError> {
        let mut errors = String::new();
        let mut sink = Box::new(Sink {
            buf: Vec::with_capacity((w * h) as usize),
            pos: 0,
        });
        let fail = |stage: &str, errors: &str| {
            PixelError::Malformed(format!("OpenJPEG encoder: {stage} failed: {errors}"))
        };
        let mut comp_params: Vec<opj::opj_image_cmptparm_t> = planes
            .iter()
            .map(|_| opj::opj_image_cmptparm_t {
                dx: 1,
                dy: 1,
                w,
                h,
                x0: 0,
                y0: 0,
                prec: precision,
                bpp: precision,
                sgnd: signed as u32,
            })
            .collect();
        let space = if planes.len() == 3 {
            opj::COLOR_SPACE::OPJ_CLRSPC_SRGB
        } else {
            opj::COLOR_SPACE::OPJ_CLRSPC_GRAY
        };
        let mut handles = Handles {
            codec: ptr::null_mut(),
            stream: ptr::null_mut(),
            image: ptr::null_mut(),
        };
        // SAFETY: plain FFI on handles owned by `handles`; the image's
        // component buffers are `w × h` values, as created; the stream's
        // user data (`sink`) and the handlers' (`errors`) outlive the codec
        // and the stream, which `handles` destroys first.
        unsafe {
            handles.image =
                opj::opj_image_create(comp_params.len() as u32, comp_params.as_mut_ptr(), space);
            if handles.image.is_null() {
                return Err(fail("image allocation", ""));
            }
            let image = &mut *handles.image;
            image.x0 = 0;
            image.y0 = 0;
            image.x1 = w;
            image.y1 = h;
            for (c, plane) in planes.iter().enumerate() {
                let comp = &mut *image.comps.add(c);
                if comp.data.is_null() {
                    return Err(fail("image allocation", ""));
                }
                ptr::copy_nonoverlapping(plane.as_ptr(), comp.data, plane.len());
            }

            let mut params: opj::opj_cparameters_t = std::mem::zeroed();
            opj::opj_set_default_encoder_parameters(&mut params);
            params.tcp_numlayers = 1;
            params.tcp_rates[0] = 0.0; // lossless
            params.cp_disto_alloc = 1;
            params.irreversible = 0;
            params.numresolution = levels as i32 + 1;
            params.tcp_mct = (planes.len() == 3) as c_char;
            params.prog_order = opj::PROG_ORDER::OPJ_RPCL;
            // One tile-part per resolution.
            params.tp_on = 1;
            params.tp_flag = b'R' as c_char;

            handles.codec = opj::opj_create_compress(opj::CODEC_FORMAT::OPJ_CODEC_J2K);
            if handles.codec.is_null() {
                return Err(fail("codec creation", ""));
            }
            let user = &mut errors as *mut String as *mut c_void;
            opj::opj_set_error_handler(handles.codec, Some(on_error), user);
            if opj::opj_setup_encoder(handles.codec, &mut params, handles.image) == 0 {
                return Err(fail("setup", &errors));
            }
            let tlm = c"TLM=YES";
            let options = [tlm.as_ptr(), ptr::null()];
            if opj::opj_encoder_set_extra_options(handles.codec, options.as_ptr()) == 0 {
                return Err(fail("TLM option", &errors));
            }

            handles.stream = opj::opj_stream_create(1 << 16, 0);
            if handles.stream.is_null() {
                return Err(fail("stream creation", ""));
            }
            opj::opj_stream_set_write_function(handles.stream, Some(write));
            opj::opj_stream_set_skip_function(handles.stream, Some(skip));
            opj::opj_stream_set_seek_function(handles.stream, Some(seek));
            opj::opj_stream_set_user_data(
                handles.stream,
                &mut *sink as *mut Sink as *mut c_void,
                None,
            );
            if opj::opj_start_compress(handles.codec, handles.image, handles.stream) == 0 {
                return Err(fail("start", &errors));
            }
            if opj::opj_encode(handles.codec, handles.stream) == 0 {
                return Err(fail("encoding", &errors));
            }
            if opj::opj_end_compress(handles.codec, handles.stream) == 0 {
                return Err(fail("end", &errors));
            }
        }
        // The stream flushes into `sink` when destroyed.
        drop(handles);
        Ok(std::mem::take(&mut sink.buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openjpeg_decode::{DecodeOptions, decode};

    /// A frame's bytes from interleaved values.
    fn bytes(values: &[i32], bits_allocated: u16) -> Vec<u8> {
        if bits_allocated == 8 {
            values.iter().map(|&v| v as u8).collect()
        } else {
            values
                .iter()
                .flat_map(|&v| (v as u16).to_le_bytes())
                .collect()
        }
    }

    /// xorshift: reproducible noise.
    fn noise(n: usize, seed: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    }

    /// Test images of `spp` samples of `bits` bits: extremes in a
    /// checkerboard (the largest wavelet coefficients), noise over the
    /// whole range, and a ramp.
    fn patterns(w: usize, h: usize, spp: usize, bits: u16, signed: bool) -> Vec<Vec<i32>> {
        let (lo, hi) = if signed {
            (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1)
        } else {
            (0, (1i32 << bits) - 1)
        };
        let n = w * h * spp;
        let span = (hi as i64 - lo as i64 + 1) as u64;
        let checker = (0..n)
            .map(|i| {
                let (p, c) = (i / spp, i % spp);
                let (x, y) = (p % w, p / w);
                // Colour: opposite extremes between samples (chroma extremes).
                if (x + y + c) % 2 == 0 { hi } else { lo }
            })
            .collect();
        let random = noise(n, (w * 31 + h * 17 + bits as usize) as u64)
            .iter()
            .map(|r| (lo as i64 + (r % span) as i64) as i32)
            .collect();
        let ramp = (0..n)
            .map(|i| (lo as i64 + (i as u64 * 7919 % span) as i64) as i32)
            .collect();
        vec![checker, random, ramp]
    }

    /// Encodes with both encoders (HTJ2K with several block sizes) and
    /// decodes with OpenJPEG, strict: the values must come back.
    fn roundtrip(w: usize, h: usize, spp: usize, bits: u16, signed: bool) {
        let ba = if bits > 8 { 16 } else { 8 };
        for (k, values) in patterns(w, h, spp, bits, signed).iter().enumerate() {
            let data = bytes(values, ba);
            let frame = NativeFrame {
                rows: h as u16,
                columns: w as u16,
                samples_per_pixel: spp as u16,
                bits_allocated: ba,
                bits_stored: bits,
                signed,
                data: &data,
            };
            let mut streams = Vec::new();
            for block in [(64, 64), (32, 32), (4, 1024), (1024, 4)] {
                let opts = HtOptions {
                    code_block: block,
                    ..Default::default()
                };
                streams.push((format!("HTJ2K {block:?}"), encode_htj2k(&frame, &opts)));
            }
            streams.push(("JPEG 2000".into(), encode_j2k_lossless(&frame)));
            for (label, cs) in streams {
                let what = format!("{label} {w}x{h}x{spp} {bits} bits signed={signed} pattern {k}");
                let cs = cs.unwrap_or_else(|e| panic!("{what}: {e}"));
                let comps = decode(&cs, DecodeOptions { strict: true, reduce: 0 })
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(comps.len(), spp, "{what}");
                for (c, comp) in comps.iter().enumerate() {
                    assert_eq!((comp.width as usize, comp.height as usize), (w, h));
                    let want: Vec<i32> = values.iter().skip(c).step_by(spp).copied().collect();
                    assert!(comp.data == want, "{what}: component {c} differs");
                }
                let ends = resolution_ends(&cs).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(ends.last().unwrap().bytes, cs.len() - 2, "{what}");
            }
        }
    }

    #[test]
    fn extremes_noise_and_odd_sizes_round_trip() {
        for (w, h) in [(1, 1), (1, 7), (7, 1), (3, 5), (65, 33), (130, 67)] {
            for bits in [8, 12, 16] {
                for signed in [false, true] {
                    roundtrip(w, h, 1, bits, signed);
                }
            }
            roundtrip(w, h, 3, 8, false);
        }
        for bits in [1, 2, 7, 9, 10, 11, 13, 14, 15] {
            roundtrip(40, 24, 1, bits, bits % 2 == 1);
        }
        roundtrip(37, 29, 3, 12, false);
        roundtrip(37, 29, 3, 16, true);
    }

    #[test]
    fn decompositions_follow_the_size() {
        assert_eq!(default_decompositions(512, 512), 5);
        assert_eq!(default_decompositions(64, 64), 5);
        assert_eq!(default_decompositions(16, 16), 4);
        assert_eq!(default_decompositions(1, 1), 0);
        assert_eq!(default_decompositions(4096, 4096), 6);
        assert_eq!(default_decompositions(65535, 2), 10);
        // The base resolution is at most 64 wide or high.
        for (w, h) in [(512u32, 512u32), (3000, 2000), (65535, 65535), (640, 480)] {
            let l = default_decompositions(w, h);
            assert!(w.max(h).div_ceil(1 << l) <= 64, "{w}x{h}: {l}");
        }
    }

    #[test]
    fn bad_frames_and_options_are_errors() {
        let data = vec![0u8; 8 * 8 * 2];
        let ok = NativeFrame {
            rows: 8,
            columns: 8,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 12,
            signed: false,
            data: &data,
        };
        let bad = [
            NativeFrame {
                bits_stored: 0,
                ..ok
            },
            NativeFrame {
                bits_stored: 17,
                ..ok
            },
            NativeFrame {
                bits_allocated: 12,
                ..ok
            },
            NativeFrame {
                samples_per_pixel: 2,
                ..ok
            },
            NativeFrame {
                data: &data[1..],
                ..ok
            },
            NativeFrame {
                rows: 0,
                columns: 0,
                data: &[],
                ..ok
            },
        ];
        for f in &bad {
            assert!(encode_htj2k(f, &HtOptions::default()).is_err(), "{f:?}");
            assert!(encode_j2k_lossless(f).is_err(), "{f:?}");
        }
        for opts in [
            HtOptions {
                code_block: (3, 64),
                ..Default::default()
            },
            HtOptions {
                code_block: (128, 64),
                ..Default::default()
            },
            HtOptions {
                code_block: (2048, 2),
                ..Default::default()
            },
            HtOptions {
                decompositions: Some(13),
                ..Default::default()
            },
        ] {
            let err = encode_htj2k(&ok, &opts).unwrap_err();
            assert!(
                matches!(err, PixelError::Unsupported(_)),
                "{opts:?}: {err:?}"
            );
        }
        // More levels than the image has samples is allowed.
        let cs = encode_htj2k(
            &ok,
            &HtOptions {
                decompositions: Some(12),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(resolution_ends(&cs).unwrap().len(), 13);
        // One tile-part, no TLM.
        let cs = encode_htj2k(
            &ok,
            &HtOptions {
                tile_parts_per_resolution: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tile_parts(&cs).unwrap().len(), 1);
        assert!(!cs.windows(2).any(|m| m == [0xFF, 0x55]));
        assert!(matches!(
            resolution_ends(&cs),
            Err(PixelError::Unsupported(_))
        ));
    }

    #[test]
    fn damaged_codestreams_are_errors_not_panics() {
        let values: Vec<i32> = (0..48 * 40).map(|i| i * 37 % 4096).collect();
        let data = bytes(&values, 16);
        let frame = NativeFrame {
            rows: 40,
            columns: 48,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 12,
            signed: false,
            data: &data,
        };
        let cs = encode_htj2k(&frame, &HtOptions::default()).unwrap();
        let parts = tile_parts(&cs).unwrap();
        assert_eq!(parts.len(), 6); // 48x40: 5 levels, 2x2 at the base
        assert_eq!(
            resolution_ends(&cs)
                .unwrap()
                .iter()
                .map(|e| (e.columns, e.rows))
                .collect::<Vec<_>>(),
            [(2, 2), (3, 3), (6, 5), (12, 10), (24, 20), (48, 40)]
        );
        for n in 0..cs.len() {
            assert!(tile_parts(&cs[..n]).is_err(), "prefix of {n} bytes");
            assert!(resolution_ends(&cs[..n]).is_err(), "prefix of {n} bytes");
        }
        // The packet reader on a damaged tile (one tile-part, as the
        // encoder gives it).
        let single = encode_htj2k(
            &frame,
            &HtOptions {
                tile_parts_per_resolution: false,
                ..Default::default()
            },
        )
        .unwrap();
        let g = Geometry {
            width: 48,
            height: 40,
            components: 1,
            levels: 5,
            code_block: (64, 64),
        };
        assert!(rewrite_tile_parts(&single, &g, true).is_ok());
        for r in noise(3000, 7) {
            for cs in [&cs, &single] {
                let mut damaged = cs.clone();
                let at = (r as usize) % damaged.len();
                damaged[at] ^= (r >> 32) as u8 | 1;
                let _ = tile_parts(&damaged);
                let _ = resolution_ends(&damaged);
                let _ = rewrite_tile_parts(&damaged, &g, true);
            }
        }
        assert!(tile_parts(b"").is_err());
        assert!(tile_parts(b"\xff\x4f\xff\x90").is_err());
        // A TLM that disagrees with the SOT markers.
        let tlm = cs.windows(2).position(|m| m == [0xFF, 0x55]).unwrap();
        let mut wrong = cs.clone();
        wrong[tlm + 6 + 5] ^= 1;
        assert!(tile_parts(&wrong).is_err());
    }
}
