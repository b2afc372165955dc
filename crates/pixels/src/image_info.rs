//! The attributes that say how to read and present pixel data: Image Pixel
//! (PS3.3 C.7.6.3), Modality LUT (C.11.1, rescale only), VOI LUT (C.11.2,
//! window only) and the palette colour lookup tables (C.7.6.3.1.5-6).

use yunying_dicom::{DataSet, Tag, VR, Value};

use crate::PixelError;

/// Photometric Interpretation (0028,0004).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Photometric {
    Monochrome1,
    Monochrome2,
    Rgb,
    YbrFull,
    YbrFull422,
    PaletteColor,
    /// Any other value (YBR_ICT, YBR_RCT, YBR_PARTIAL_422, ...), as written.
    Other(String),
}

impl Photometric {
    fn parse(s: &str) -> Photometric {
        match s {
            "MONOCHROME1" => Photometric::Monochrome1,
            "MONOCHROME2" => Photometric::Monochrome2,
            "RGB" => Photometric::Rgb,
            "YBR_FULL" => Photometric::YbrFull,
            "YBR_FULL_422" => Photometric::YbrFull422,
            "PALETTE COLOR" => Photometric::PaletteColor,
            other => Photometric::Other(other.to_string()),
        }
    }

    /// True for MONOCHROME1 and MONOCHROME2.
    pub fn is_monochrome(&self) -> bool {
        matches!(self, Photometric::Monochrome1 | Photometric::Monochrome2)
    }
}

/// VOI LUT Function (0028,1056).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VoiFunction {
    #[default]
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    /// Parses the defined terms; anything else is LINEAR (the default).
    pub fn parse(s: &str) -> VoiFunction {
        match s.trim() {
            "LINEAR_EXACT" => VoiFunction::LinearExact,
            "SIGMOID" => VoiFunction::Sigmoid,
            _ => VoiFunction::Linear,
        }
    }
}

/// One palette colour lookup table (red, green or blue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaletteLut {
    /// First stored value mapped (values below map to the first entry).
    pub first_mapped: i32,
    /// Bits per entry (8 or 16).
    pub bits: u16,
    /// The entries (values above the table map to the last entry).
    pub data: Vec<u16>,
}

impl PaletteLut {
    /// The entry for a value (clamped to the table's ends).
    pub fn lookup(&self, v: i32) -> u16 {
        let i = (v - self.first_mapped).clamp(0, self.data.len() as i32 - 1) as usize;
        self.data[i]
    }

    /// The largest value an entry can hold.
    pub fn max_value(&self) -> f64 {
        ((1u32 << self.bits.clamp(1, 16)) - 1) as f64
    }

    /// The 8-bit output of a stored value.
    pub fn lookup8(&self, v: i32) -> u8 {
        let i = (v - self.first_mapped).clamp(0, self.data.len() as i32 - 1) as usize;
        let e = self.data[i];
        if self.bits > 8 {
            (e >> (self.bits - 8)) as u8
        } else {
            e.min(255) as u8
        }
    }
}

/// What the pixel data of an object is and how to present it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    pub rows: u16,
    pub columns: u16,
    pub samples_per_pixel: u16,
    pub photometric: Photometric,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    /// Pixel Representation 1: stored values are two's complement.
    pub signed: bool,
    /// Planar Configuration 1: colour-by-plane.
    pub planar: bool,
    pub number_of_frames: u32,
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
    /// Window Center and Width, first values.
    pub window: Option<(f64, f64)>,
    pub voi_function: VoiFunction,
    /// Red, green and blue tables of a PALETTE COLOR image.
    pub palette: Option<[PaletteLut; 3]>,
    /// Native pixel data of an explicit big-endian object written as OW:
    /// 8-bit samples are byte-swapped in 16-bit words.
    pub pixel_data_ow: bool,
    /// Modality LUT Sequence (0028,3000): a table instead of the rescale.
    pub modality_lut: Option<PaletteLut>,
    /// VOI LUT Sequence (0028,3010): a table, used when no window is given.
    pub voi_lut: Option<PaletteLut>,
    /// Enhanced multi-frame objects: each frame's own Pixel Value
    /// Transformation and Frame VOI LUT (Per-Frame Functional Groups), in
    /// frame order; empty otherwise. See [`ImageInfo::for_frame`].
    pub per_frame: Vec<FrameGroups>,
}

/// What a functional group item says of a frame's presentation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameGroups {
    /// Rescale Slope and Intercept (Pixel Value Transformation Sequence).
    pub rescale: Option<(f64, f64)>,
    /// Window Center and Width (Frame VOI LUT Sequence).
    pub window: Option<(f64, f64)>,
    pub voi_function: Option<VoiFunction>,
}

impl FrameGroups {
    /// Reads one item of the Shared or Per-Frame Functional Groups Sequence.
    fn of(item: &DataSet) -> FrameGroups {
        let first = |tag: Tag| item.items(tag).and_then(|i| i.first());
        let mut g = FrameGroups::default();
        if let Some(t) = first(Tag(0x0028, 0x9145)) {
            let slope = number(t, Tag(0x0028, 0x1053)).filter(|s| *s != 0.0);
            let intercept = number(t, Tag(0x0028, 0x1052));
            if slope.is_some() || intercept.is_some() {
                g.rescale = Some((slope.unwrap_or(1.0), intercept.unwrap_or(0.0)));
            }
        }
        if let Some(v) = first(Tag(0x0028, 0x9132)) {
            g.window = window_of(v);
            g.voi_function = v.ascii(Tag(0x0028, 0x1056)).map(|s| VoiFunction::parse(&s));
        }
        g
    }
}

/// The first value of a decimal string.
fn number(ds: &DataSet, tag: Tag) -> Option<f64> {
    ds.ascii(tag)
        .and_then(|s| s.split('\\').next().and_then(|v| v.trim().parse::<f64>().ok()))
        .filter(|v| v.is_finite())
}

fn window_of(ds: &DataSet) -> Option<(f64, f64)> {
    match (number(ds, Tag(0x0028, 0x1050)), number(ds, Tag(0x0028, 0x1051))) {
        (Some(c), Some(w)) if w > 0.0 => Some((c, w)),
        _ => None,
    }
}

const ROWS: Tag = Tag(0x0028, 0x0010);
const COLUMNS: Tag = Tag(0x0028, 0x0011);

impl ImageInfo {
    /// Reads the attributes from a data set whose values are in big-endian
    /// byte order when `big_endian`. Palette data left in place by the parser
    /// (longer than its inline limit) cannot be read here: use
    /// [`ImageInfo::from_dataset_with`].
    pub fn from_dataset(ds: &DataSet, big_endian: bool) -> Result<ImageInfo, PixelError> {
        Self::from_dataset_with(ds, big_endian, |_, _| None)
    }

    /// As [`ImageInfo::from_dataset`]; `bulk(offset, length)` returns the
    /// bytes of a value the parser left in place (palette tables).
    pub fn from_dataset_with(
        ds: &DataSet,
        big_endian: bool,
        mut bulk: impl FnMut(u64, u64) -> Option<Vec<u8>>,
    ) -> Result<ImageInfo, PixelError> {
        let be = big_endian;
        let req = |tag: Tag, name: &str| -> Result<u16, PixelError> {
            let v = ds
                .uint(tag, be)
                .ok_or_else(|| PixelError::Malformed(format!("{name} is missing")))?;
            u16::try_from(v)
                .map_err(|_| PixelError::Malformed(format!("{name} {v} is out of range")))
        };
        let rows = req(ROWS, "Rows")?;
        let columns = req(COLUMNS, "Columns")?;
        let bits_allocated = req(Tag(0x0028, 0x0100), "Bits Allocated")?;
        let bits_stored = ds
            .uint(Tag(0x0028, 0x0101), be)
            .map(|v| v as u16)
            .unwrap_or(bits_allocated);
        let high_bit = ds
            .uint(Tag(0x0028, 0x0102), be)
            .map(|v| v as u16)
            .unwrap_or(bits_stored.saturating_sub(1));
        let samples_per_pixel = ds.uint(Tag(0x0028, 0x0002), be).unwrap_or(1) as u16;
        let photometric = Photometric::parse(&ds.ascii(Tag(0x0028, 0x0004)).unwrap_or_else(|| {
            if samples_per_pixel == 3 {
                "RGB".into()
            } else {
                "MONOCHROME2".into()
            }
        }));
        let signed = ds.uint(Tag(0x0028, 0x0103), be).unwrap_or(0) == 1
            || ds
                .get(Tag(0x0028, 0x0103))
                .is_some_and(|_| pixel_rep_raw(ds, be) == Some(1));
        let planar = samples_per_pixel > 1 && ds.uint(Tag(0x0028, 0x0006), be).unwrap_or(0) == 1;
        let number_of_frames = ds
            .ascii(Tag(0x0028, 0x0008))
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        if rows == 0 || columns == 0 {
            return Err(PixelError::Malformed("Rows or Columns is zero".into()));
        }
        if !matches!(bits_allocated, 1 | 8 | 16 | 32) {
            return Err(PixelError::Unsupported(format!(
                "Bits Allocated {bits_allocated}"
            )));
        }
        if bits_stored == 0
            || bits_stored > bits_allocated
            || high_bit >= bits_allocated
            || high_bit + 1 < bits_stored
        {
            return Err(PixelError::Malformed(format!(
                "Bits Stored {bits_stored} / High Bit {high_bit} do not fit Bits Allocated {bits_allocated}"
            )));
        }
        if !matches!(samples_per_pixel, 1 | 3) {
            return Err(PixelError::Unsupported(format!(
                "Samples per Pixel {samples_per_pixel}"
            )));
        }
        // Enhanced multi-frame objects say it in their functional groups: the
        // shared ones stand for every frame, unless the top level says it.
        let shared = ds
            .items(Tag(0x5200, 0x9229))
            .and_then(|i| i.first())
            .map(FrameGroups::of)
            .unwrap_or_default();
        let per_frame: Vec<FrameGroups> = ds
            .items(Tag(0x5200, 0x9230))
            .map(|items| items.iter().map(FrameGroups::of).collect())
            .unwrap_or_default();
        let (rescale_slope, rescale_intercept) = match (
            number(ds, Tag(0x0028, 0x1053)).filter(|s| *s != 0.0),
            number(ds, Tag(0x0028, 0x1052)),
        ) {
            (None, None) => shared.rescale.unwrap_or((1.0, 0.0)),
            (s, i) => (s.unwrap_or(1.0), i.unwrap_or(0.0)),
        };
        let window = window_of(ds).or(shared.window);
        let voi_function = ds
            .ascii(Tag(0x0028, 0x1056))
            .map(|s| VoiFunction::parse(&s))
            .or(shared.voi_function)
            .unwrap_or_default();
        let palette = if photometric == Photometric::PaletteColor {
            Some(read_palette(ds, be, signed, &mut bulk)?)
        } else {
            None
        };
        let pixel_data_ow = be && ds.get(Tag(0x7FE0, 0x0010)).is_some_and(|e| e.vr == VR::OW);
        // LUT tables, when present and readable (a damaged one is ignored:
        // the rescale and window still apply).
        let table = |tag: Tag, signed_first: bool, bulk: &mut dyn FnMut(u64, u64) -> Option<Vec<u8>>| {
            ds.items(tag).and_then(|i| i.first()).and_then(|item| read_lut(item, be, signed_first, bulk))
        };
        let modality_lut = if samples_per_pixel == 1 { table(Tag(0x0028, 0x3000), signed, &mut bulk) } else { None };
        // The VOI LUT's first value mapped is signed when its input (the
        // modality output) can be negative.
        let voi_signed = signed || rescale_intercept < 0.0;
        let voi_lut = if samples_per_pixel == 1 { table(Tag(0x0028, 0x3010), voi_signed, &mut bulk) } else { None };
        Ok(ImageInfo {
            rows,
            columns,
            samples_per_pixel,
            photometric,
            bits_allocated,
            bits_stored,
            high_bit,
            signed,
            planar,
            number_of_frames,
            rescale_slope,
            rescale_intercept,
            window,
            voi_function,
            palette,
            pixel_data_ow,
            modality_lut,
            voi_lut,
            per_frame,
        })
    }

    /// The attributes as frame `n` (1-based) is presented: an enhanced
    /// multi-frame object's per-frame rescale and window replace the shared
    /// ones.
    pub fn for_frame(&self, n: u32) -> ImageInfo {
        let mut out = self.clone();
        if let Some(g) = n.checked_sub(1).and_then(|i| self.per_frame.get(i as usize)) {
            if let Some((slope, intercept)) = g.rescale {
                out.rescale_slope = slope;
                out.rescale_intercept = intercept;
            }
            if g.window.is_some() {
                out.window = g.window;
            }
            if let Some(f) = g.voi_function {
                out.voi_function = f;
            }
        }
        out.per_frame = Vec::new();
        out
    }

    /// Number of pixels in a frame.
    pub fn pixels(&self) -> usize {
        self.rows as usize * self.columns as usize
    }

    /// The smallest and largest stored values Bits Stored and Pixel
    /// Representation allow.
    pub fn stored_range(&self) -> (i64, i64) {
        let bs = self.bits_stored as u32;
        if self.signed {
            (-(1i64 << (bs - 1)), (1i64 << (bs - 1)) - 1)
        } else {
            (0, (1i64 << bs) - 1)
        }
    }
}

/// Pixel Representation read as raw US bytes (some writers give it as SS/UN).
fn pixel_rep_raw(ds: &DataSet, be: bool) -> Option<u16> {
    let b = ds.bytes(Tag(0x0028, 0x0103))?;
    let a: [u8; 2] = b.get(..2)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    })
}

fn words(b: &[u8], be: bool) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        })
        .collect()
}

/// A LUT of a Modality or VOI LUT Sequence item: LUT Descriptor (0028,3002)
/// and LUT Data (0028,3006).
fn read_lut(
    item: &DataSet,
    be: bool,
    signed_first: bool,
    bulk: &mut dyn FnMut(u64, u64) -> Option<Vec<u8>>,
) -> Option<PaletteLut> {
    let desc = item.bytes(Tag(0x0028, 0x3002)).map(|b| words(b, be)).filter(|d| d.len() >= 3)?;
    let entries = if desc[0] == 0 { 65536 } else { desc[0] as usize };
    let first_mapped = if signed_first { desc[1] as i16 as i32 } else { desc[1] as i32 };
    let bits = desc[2];
    if !(1..=16).contains(&bits) {
        return None;
    }
    let raw: Vec<u8> = match item.get(Tag(0x0028, 0x3006)).map(|e| &e.value) {
        Some(Value::Inline(b)) => b.clone(),
        Some(Value::Bulk { offset, length }) => bulk(*offset, *length)?,
        _ => return None,
    };
    let data: Vec<u16> = if bits <= 8 && raw.len() == entries { raw.iter().map(|&b| b as u16).collect() } else { words(&raw, be) };
    (!data.is_empty()).then_some(PaletteLut { first_mapped, bits, data })
}

fn read_palette(
    ds: &DataSet,
    be: bool,
    signed: bool,
    bulk: &mut impl FnMut(u64, u64) -> Option<Vec<u8>>,
) -> Result<[PaletteLut; 3], PixelError> {
    if ds.get(Tag(0x0028, 0x1221)).is_some() && ds.get(Tag(0x0028, 0x1201)).is_none() {
        return Err(PixelError::Unsupported(
            "segmented palette colour lookup tables".into(),
        ));
    }
    let one = |i: u16,
               bulk: &mut dyn FnMut(u64, u64) -> Option<Vec<u8>>|
     -> Result<PaletteLut, PixelError> {
        let color = ["red", "green", "blue"][i as usize];
        let desc = ds
            .bytes(Tag(0x0028, 0x1101 + i))
            .map(|b| words(b, be))
            .filter(|d| d.len() >= 3)
            .ok_or_else(|| {
                PixelError::Malformed(format!("the {color} palette descriptor is missing"))
            })?;
        let entries = if desc[0] == 0 {
            65536
        } else {
            desc[0] as usize
        };
        let first_mapped = if signed {
            desc[1] as i16 as i32
        } else {
            desc[1] as i32
        };
        let bits = desc[2];
        let raw: Vec<u8> = match ds.get(Tag(0x0028, 0x1201 + i)).map(|e| &e.value) {
            Some(Value::Inline(b)) => b.clone(),
            Some(Value::Bulk { offset, length }) => bulk(*offset, *length).ok_or_else(|| {
                PixelError::Unsupported(format!("the {color} palette data is not in memory"))
            })?,
            _ => {
                return Err(PixelError::Malformed(format!(
                    "the {color} palette data is missing"
                )));
            }
        };
        // 8-bit entries are sometimes packed two to a word.
        let data: Vec<u16> = if bits == 8 && raw.len() == entries {
            raw.iter().map(|&b| b as u16).collect()
        } else {
            words(&raw, be)
        };
        if data.is_empty() {
            return Err(PixelError::Malformed(format!(
                "the {color} palette data is empty"
            )));
        }
        Ok(PaletteLut {
            first_mapped,
            bits,
            data,
        })
    };
    Ok([one(0, bulk)?, one(1, bulk)?, one(2, bulk)?])
}
