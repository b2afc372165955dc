//! DICOM for Yunying, written for untrusted input and for serving bytes fast.
//!
//! dicom-rs gives us the data dictionary and the vocabulary types ([`Tag`], [`VR`]);
//! the reading of files that arrive from the network is ours, because an archive
//! needs three things the stock parser does not give: every allocation bounded by
//! the bytes actually received (a 482-byte file must not make us allocate 4 GB),
//! the byte offset of every frame and bulk value (to serve them without
//! re-parsing), and an object that stops short of reading pixel data.
//!
//! - [`parse`]: the bounded Part-10 / data-set parser ([`parse_part10`]).
//! - [`charset`]: Specific Character Set decoding, GB18030/GBK/GB2312 included,
//!   with ISO 2022 code extensions.
//! - [`json`]: the DICOM JSON model (PS3.18 Annex F) with `BulkDataURI`.
//! - [`json_dataset`]: DICOM JSON back to a binary data set (C-FIND responses).
//! - [`reencode`]: native transfer syntax conversion of a data set (implicit ⇄
//!   explicit little endian, big endian and deflated to little endian).
//! - [`rewrite`]: a data set rebuilt in another transfer syntax (native or
//!   encapsulated) around new pixel data, with top-level edits (transcoding).
//! - [`frames`]: where each frame's bytes lie in the file.
//! - [`attrs`]: the attributes the catalog indexes, extracted and normalised.
//! - [`write`](mod@write): a small Part-10 writer (explicit VR little endian) used by the
//!   synthetic data generator and by tests; also the file meta information
//!   put in front of a data set received over the network ([`file_meta`],
//!   [`part10`]).
//! - [`ts`]: transfer syntax facts (encoding, media types).
//! - [`dict`]: keyword ↔ tag ↔ VR lookups over the standard dictionary.

pub mod attrs;
pub mod charset;
pub mod dict;
pub mod frames;
pub mod json;
pub mod json_dataset;
pub mod parse;
pub mod reencode;
pub mod rewrite;
pub mod ts;
pub mod write;

pub use dicom_core::{Tag, VR};
pub use dicom_dictionary_std::tags;
pub use json_dataset::{JsonDatasetError, encode_json_dataset};
pub use parse::{DataSet, Element, ParseError, ParseOptions, ParsedObject, Value, parse_part10};
pub use reencode::{ReencodeError, can_reencode, reencode_dataset};
pub use rewrite::{Edits, PixelDataOut, rewrite_dataset};
pub use write::{dataset_offset, file_meta, part10};
