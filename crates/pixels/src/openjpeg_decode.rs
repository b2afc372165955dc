//! JPEG 2000 and HTJ2K codestreams decoded by OpenJPEG 2.5 (the C library
//! that `openjpeg-sys` builds), through our own memory stream.
//!
//! We do not go through the `jpeg2k` crate's decoder: its skip callback
//! answers the new position instead of the bytes skipped, and it sets
//! strict mode explicitly, which in OpenJPEG 2.5 also turns off the repair
//! of codestreams with a wrong tile-part count: pydicom's
//! GDCMJ2K_TextGBR.dcm then decoded with 6.6 % of its samples off by up to
//! 108 against opj_decompress.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use openjpeg_sys as opj;

use crate::PixelError;

/// One decoded component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub width: u32,
    pub height: u32,
    /// Bits per sample.
    pub precision: u32,
    pub signed: bool,
    /// `width × height` samples, row by row.
    pub data: Vec<i32>,
}

/// How to decode.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeOptions {
    /// Refuse truncated codestreams (otherwise decode what is there).
    pub strict: bool,
    /// Decode at 1 / 2^reduce of the full resolution.
    pub reduce: u32,
}

struct Source<'a> {
    buf: &'a [u8],
    pos: usize,
}

unsafe extern "C" fn read(p_buffer: *mut c_void, n: usize, user: *mut c_void) -> usize {
    // SAFETY: `user` is the `Source` of `decode`, alive while the stream is;
    // OpenJPEG hands `n` writable bytes at `p_buffer`.
    let src = unsafe { &mut *(user as *mut Source) };
    let left = src.buf.len() - src.pos;
    if left == 0 {
        return usize::MAX; // end of stream, as OpenJPEG expects (-1)
    }
    let k = n.min(left);
    let out = unsafe { std::slice::from_raw_parts_mut(p_buffer as *mut u8, k) };
    out.copy_from_slice(&src.buf[src.pos..src.pos + k]);
    src.pos += k;
    k
}

unsafe extern "C" fn skip(n: i64, user: *mut c_void) -> i64 {
    // SAFETY: as in `read`.
    let src = unsafe { &mut *(user as *mut Source) };
    let to = (src.pos as i64).saturating_add(n).clamp(0, src.buf.len() as i64);
    let skipped = to - src.pos as i64;
    src.pos = to as usize;
    // The number of bytes skipped (OpenJPEG 2.5, opj_stream_set_skip_function).
    skipped
}

unsafe extern "C" fn seek(to: i64, user: *mut c_void) -> i32 {
    // SAFETY: as in `read`.
    let src = unsafe { &mut *(user as *mut Source) };
    if to < 0 || to as usize > src.buf.len() {
        return 0;
    }
    src.pos = to as usize;
    1
}

/// OpenJPEG's error handler: appends the message to the `String` at `user`.
pub(crate) unsafe extern "C" fn on_error(msg: *const c_char, user: *mut c_void) {
    if msg.is_null() || user.is_null() {
        return;
    }
    // SAFETY: `user` is a `String` that outlives the codec; `msg` a C string.
    let out = unsafe { &mut *(user as *mut String) };
    let msg = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    if !out.is_empty() {
        out.push_str("; ");
    }
    out.push_str(msg.trim_end());
}

unsafe extern "C" fn quiet(_msg: *const c_char, _user: *mut c_void) {}

/// Owns what OpenJPEG allocated, released in every outcome (the encoder
/// uses it too).
pub(crate) struct Handles {
    pub(crate) codec: *mut opj::opj_codec_t,
    pub(crate) stream: *mut opj::opj_stream_t,
    pub(crate) image: *mut opj::opj_image_t,
}

impl Drop for Handles {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or owned here, released once.
        unsafe {
            if !self.stream.is_null() {
                opj::opj_stream_destroy(self.stream);
            }
            if !self.codec.is_null() {
                opj::opj_destroy_codec(self.codec);
            }
            if !self.image.is_null() {
                opj::opj_image_destroy(self.image);
            }
        }
    }
}

/// Decodes a raw codestream (J2K / HTJ2K, starting with SOC).
pub fn decode(codestream: &[u8], opts: DecodeOptions) -> Result<Vec<Component>, PixelError> {
    if !codestream.starts_with(&[0xFF, 0x4F]) {
        return Err(PixelError::Malformed("JPEG 2000: not a codestream (no SOC marker)".into()));
    }
    let mut source = Source { buf: codestream, pos: 0 };
    let mut errors = String::new();
    let fail = |what: &str, errors: &String| {
        PixelError::Malformed(format!(
            "JPEG 2000: {what}{}",
            if errors.is_empty() { String::new() } else { format!(": {errors}") }
        ))
    };
    let mut h = Handles { codec: ptr::null_mut(), stream: ptr::null_mut(), image: ptr::null_mut() };
    // SAFETY: plain FFI use of OpenJPEG; every handle is released by `h`,
    // `source` and `errors` outlive the codec and the stream.
    unsafe {
        h.codec = opj::opj_create_decompress(opj::CODEC_FORMAT::OPJ_CODEC_J2K);
        if h.codec.is_null() {
            return Err(fail("cannot create a decoder", &errors));
        }
        let errors_ptr = &mut errors as *mut String as *mut c_void;
        opj::opj_set_error_handler(h.codec, Some(on_error), errors_ptr);
        opj::opj_set_warning_handler(h.codec, Some(quiet), ptr::null_mut());
        opj::opj_set_info_handler(h.codec, Some(quiet), ptr::null_mut());
        let mut params: opj::opj_dparameters_t = std::mem::zeroed();
        opj::opj_set_default_decoder_parameters(&mut params);
        params.cp_reduce = opts.reduce;
        if opj::opj_setup_decoder(h.codec, &mut params) == 0 {
            return Err(fail("decoder set-up", &errors));
        }
        // Strict is OpenJPEG's default. Setting it explicitly would also turn
        // off its repair of codestreams whose tile-parts say there are fewer
        // of them than there are (GDCM writes some): those would decode with
        // quality layers missing. So only the lenient mode is ever set.
        if !opts.strict {
            opj::opj_decoder_set_strict_mode(h.codec, 0);
        }
        h.stream = opj::opj_stream_create(1 << 20, 1);
        if h.stream.is_null() {
            return Err(fail("cannot create a stream", &errors));
        }
        opj::opj_stream_set_read_function(h.stream, Some(read));
        opj::opj_stream_set_skip_function(h.stream, Some(skip));
        opj::opj_stream_set_seek_function(h.stream, Some(seek));
        opj::opj_stream_set_user_data_length(h.stream, codestream.len() as u64);
        opj::opj_stream_set_user_data(h.stream, &mut source as *mut Source as *mut c_void, None);
        if opj::opj_read_header(h.stream, h.codec, &mut h.image) == 0 || h.image.is_null() {
            return Err(fail("header", &errors));
        }
        if opj::opj_decode(h.codec, h.stream, h.image) == 0 {
            return Err(fail("decoding", &errors));
        }
        if opj::opj_end_decompress(h.codec, h.stream) == 0 {
            return Err(fail("end of codestream", &errors));
        }
        let image = &*h.image;
        let comps = std::slice::from_raw_parts(image.comps, image.numcomps as usize);
        let mut out = Vec::with_capacity(comps.len());
        for c in comps {
            let n = c.w as usize * c.h as usize;
            if c.data.is_null() {
                return Err(fail("a component without data", &errors));
            }
            out.push(Component {
                width: c.w,
                height: c.h,
                precision: c.prec,
                signed: c.sgnd != 0,
                data: std::slice::from_raw_parts(c.data, n).to_vec(),
            });
        }
        Ok(out)
    }
}
