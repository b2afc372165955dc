//! Pixel data of DICOM images, for the rendered resources of WADO-RS and for
//! thumbnails: decode a frame, render it to 8 bits the way PS3.3 C.11 and
//! PS3.18 "rendered" describe, and write JPEG or PNG.
//!
//! The codecs are Rust (jpeg-decoder, jpeg-encoder, png, and our own RLE and
//! 12-bit JPEG decoders) and two C/C++ libraries built from source:
//! OpenJPEG (JPEG 2000, HTJ2K) and CharLS (JPEG-LS). The frame bytes come
//! from the frame index of [`yunying_dicom::frames`], so a frame is rendered
//! from one ranged read of the stored object.
//!
//! - [`image_info`]: the Image Pixel, Modality LUT, VOI LUT and palette
//!   attributes of a data set ([`ImageInfo`]).
//! - [`decode`]: one frame to stored values or RGB ([`decode_frame`]), for
//!   these transfer syntaxes:
//!   - native: implicit and explicit VR little endian, explicit VR big
//!     endian, deflated explicit VR little endian (once inflated);
//!   - RLE Lossless (1.2.840.10008.1.2.5);
//!   - JPEG Baseline (.4.50); JPEG Extended (.4.51), 8-bit through
//!     jpeg-decoder and 12-bit through our own sequential DCT decoder
//!     (`jpeg_extended`, whose samples equal IJG's, so DCMTK's);
//!   - JPEG Lossless, process 14 (.4.57) and selection value 1 (.4.70);
//!   - JPEG-LS Lossless (.4.80) and Near-Lossless (.4.81), through CharLS
//!     ([`jpegls`]);
//!   - JPEG 2000 (.4.90, .4.91) and HTJ2K (.4.201, .4.202, .4.203), through
//!     OpenJPEG.
//! - [`render`]: modality LUT → VOI LUT → presentation → 8 bits, palettes,
//!   resizing to a viewport ([`render()`](render::render)).
//! - [`encode`]: JPEG and PNG output.
//! - [`transcode`]: a stored frame to another transfer syntax
//!   ([`transcode::transcode_frame`]); [`rle_encode`]: RLE Lossless encoding.
//! - [`film`]: electronic film sheets (a grid of rendered images with
//!   header text) and their PDF.
//! - [`native_frame`]: a frame as native samples, the input of every
//!   encoder ([`NativeFrame`]).
//! - [`jpegls::encode_lossless`]: a [`NativeFrame`] as lossless JPEG-LS, for
//!   storing or sending frames as 1.2.840.10008.1.2.4.80.
//! - [`jpeg2000_encode`]: lossless HTJ2K ([`encode_htj2k`], RPCL with TLM
//!   and a tile-part per resolution, for .201/.202) and JPEG 2000
//!   ([`encode_j2k_lossless`], .90, through OpenJPEG); where each
//!   resolution ends in such a codestream ([`resolution_ends`]).

pub mod decode;
pub mod encode;
pub mod film;
pub mod image_info;
mod jpeg_extended;
pub mod jpegls;
pub mod jpeg2000_encode;
pub mod native_frame;
pub mod openjpeg_decode;
pub mod render;
pub mod rle_encode;
pub mod transcode;

pub use decode::{DecodedFrame, Samples, decode_frame, native_bytes};
pub use encode::{to_jpeg, to_png, to_webp};
pub use image_info::{FrameGroups, ImageInfo, PaletteLut, Photometric, VoiFunction};
pub use jpegls::encode_lossless as encode_jpegls_lossless;
pub use jpeg2000_encode::{
    HtOptions, Progression, ResolutionEnd, TilePart, encode_htj2k, encode_j2k_lossless,
    resolution_ends, tile_parts,
};
pub use native_frame::NativeFrame;
pub use render::{RenderOptions, Rendered, RgbOrGray8, render};

/// Why a frame cannot be decoded or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PixelError {
    /// A transfer syntax, photometric interpretation or layout we do not decode.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The attributes or the frame bytes contradict each other or are damaged.
    #[error("malformed pixel data: {0}")]
    Malformed(String),
}

/// Decodes a frame and renders it: the whole road from stored bytes to an
/// 8-bit image. `frame_bytes` are the frame's bytes as stored (for
/// encapsulated syntaxes, its fragments concatenated; for deflated objects,
/// taken from the inflated data set).
pub fn render_frame(
    info: &ImageInfo,
    transfer_syntax: &str,
    frame_bytes: &[u8],
    opts: &RenderOptions,
) -> Result<Rendered, PixelError> {
    let frame = decode_frame(info, transfer_syntax, frame_bytes)?;
    render(info, &frame, opts)
}
