//! Transfer syntax facts: how a data set is encoded and what media type its
//! frames have when served by WADO-RS.

/// Implicit VR Little Endian, the DICOM default.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
/// Explicit VR Big Endian (retired, still sent by old equipment).
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
/// Encapsulated Uncompressed Explicit VR Little Endian.
pub const ENCAPSULATED_UNCOMPRESSED: &str = "1.2.840.10008.1.2.1.98";

/// How the data set after the file meta information is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
    pub deflated: bool,
}

impl Encoding {
    pub const EXPLICIT_LE: Encoding = Encoding { explicit_vr: true, big_endian: false, deflated: false };
    pub const IMPLICIT_LE: Encoding = Encoding { explicit_vr: false, big_endian: false, deflated: false };
}

/// The data-set encoding of a transfer syntax. Unknown (private or future)
/// transfer syntaxes are read as explicit VR little endian, which is what every
/// transfer syntax defined since 1993 uses.
pub fn encoding_of(ts: &str) -> Encoding {
    match ts {
        IMPLICIT_VR_LE => Encoding::IMPLICIT_LE,
        EXPLICIT_VR_BE => Encoding { explicit_vr: true, big_endian: true, deflated: false },
        DEFLATED_EXPLICIT_VR_LE | "1.2.840.10008.1.2.8.1" => {
            Encoding { explicit_vr: true, big_endian: false, deflated: ts == DEFLATED_EXPLICIT_VR_LE }
        }
        _ => Encoding::EXPLICIT_LE,
    }
}

/// True for the transfer syntaxes whose pixel data is not encapsulated.
pub fn is_native(ts: &str) -> bool {
    matches!(ts, IMPLICIT_VR_LE | EXPLICIT_VR_LE | EXPLICIT_VR_BE | DEFLATED_EXPLICIT_VR_LE)
}

/// A transfer syntax the archive knows by name.
pub struct KnownTs {
    pub uid: &'static str,
    pub name: &'static str,
    /// Media type of one frame in this transfer syntax (PS3.18 Table 8.7.3-2).
    pub frame_media_type: &'static str,
}

/// Transfer syntaxes real modalities send, with the media type of their frames.
pub const KNOWN: &[KnownTs] = &[
    KnownTs { uid: IMPLICIT_VR_LE, name: "Implicit VR Little Endian", frame_media_type: "application/octet-stream" },
    KnownTs { uid: EXPLICIT_VR_LE, name: "Explicit VR Little Endian", frame_media_type: "application/octet-stream" },
    KnownTs { uid: DEFLATED_EXPLICIT_VR_LE, name: "Deflated Explicit VR Little Endian", frame_media_type: "application/octet-stream" },
    KnownTs { uid: EXPLICIT_VR_BE, name: "Explicit VR Big Endian", frame_media_type: "application/octet-stream" },
    KnownTs { uid: ENCAPSULATED_UNCOMPRESSED, name: "Encapsulated Uncompressed Explicit VR Little Endian", frame_media_type: "application/octet-stream" },
    KnownTs { uid: "1.2.840.10008.1.2.4.50", name: "JPEG Baseline (Process 1)", frame_media_type: "image/jpeg" },
    KnownTs { uid: "1.2.840.10008.1.2.4.51", name: "JPEG Extended (Process 2 & 4)", frame_media_type: "image/jpeg" },
    KnownTs { uid: "1.2.840.10008.1.2.4.57", name: "JPEG Lossless, Non-Hierarchical (Process 14)", frame_media_type: "image/jpeg" },
    KnownTs { uid: "1.2.840.10008.1.2.4.70", name: "JPEG Lossless, First-Order Prediction (Process 14 SV1)", frame_media_type: "image/jpeg" },
    KnownTs { uid: "1.2.840.10008.1.2.4.80", name: "JPEG-LS Lossless", frame_media_type: "image/jls" },
    KnownTs { uid: "1.2.840.10008.1.2.4.81", name: "JPEG-LS Near-Lossless", frame_media_type: "image/jls" },
    KnownTs { uid: "1.2.840.10008.1.2.4.90", name: "JPEG 2000 (Lossless Only)", frame_media_type: "image/jp2" },
    KnownTs { uid: "1.2.840.10008.1.2.4.91", name: "JPEG 2000", frame_media_type: "image/jp2" },
    KnownTs { uid: "1.2.840.10008.1.2.4.92", name: "JPEG 2000 Part 2 Multi-component (Lossless Only)", frame_media_type: "image/jpx" },
    KnownTs { uid: "1.2.840.10008.1.2.4.93", name: "JPEG 2000 Part 2 Multi-component", frame_media_type: "image/jpx" },
    KnownTs { uid: "1.2.840.10008.1.2.4.201", name: "HTJ2K (Lossless Only)", frame_media_type: "image/jphc" },
    KnownTs { uid: "1.2.840.10008.1.2.4.202", name: "HTJ2K with RPCL Options (Lossless Only)", frame_media_type: "image/jphc" },
    KnownTs { uid: "1.2.840.10008.1.2.4.203", name: "HTJ2K", frame_media_type: "image/jphc" },
    KnownTs { uid: "1.2.840.10008.1.2.5", name: "RLE Lossless", frame_media_type: "image/dicom-rle" },
    KnownTs { uid: "1.2.840.10008.1.2.4.100", name: "MPEG2 Main Profile / Main Level", frame_media_type: "video/mpeg" },
    KnownTs { uid: "1.2.840.10008.1.2.4.101", name: "MPEG2 Main Profile / High Level", frame_media_type: "video/mpeg" },
    KnownTs { uid: "1.2.840.10008.1.2.4.102", name: "MPEG-4 AVC/H.264 High Profile / Level 4.1", frame_media_type: "video/mp4" },
    KnownTs { uid: "1.2.840.10008.1.2.4.103", name: "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", frame_media_type: "video/mp4" },
    KnownTs { uid: "1.2.840.10008.1.2.4.104", name: "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", frame_media_type: "video/mp4" },
    KnownTs { uid: "1.2.840.10008.1.2.4.105", name: "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", frame_media_type: "video/mp4" },
    KnownTs { uid: "1.2.840.10008.1.2.4.106", name: "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", frame_media_type: "video/mp4" },
    KnownTs { uid: "1.2.840.10008.1.2.4.107", name: "HEVC/H.265 Main Profile / Level 5.1", frame_media_type: "video/H265" },
    KnownTs { uid: "1.2.840.10008.1.2.4.108", name: "HEVC/H.265 Main 10 Profile / Level 5.1", frame_media_type: "video/H265" },
    KnownTs { uid: "1.2.840.10008.1.2.4.110", name: "JPEG XL Lossless", frame_media_type: "image/jxl" },
    KnownTs { uid: "1.2.840.10008.1.2.4.111", name: "JPEG XL JPEG Recompression", frame_media_type: "image/jxl" },
    KnownTs { uid: "1.2.840.10008.1.2.4.112", name: "JPEG XL", frame_media_type: "image/jxl" },
];

/// Looks up a transfer syntax by UID.
pub fn known(uid: &str) -> Option<&'static KnownTs> {
    KNOWN.iter().find(|t| t.uid == uid)
}

/// The media type of one frame stored in `ts` (`application/octet-stream` for
/// native pixel data and for transfer syntaxes we do not know).
pub fn frame_media_type(ts: &str) -> &'static str {
    known(ts).map(|t| t.frame_media_type).unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn encodings() {
        assert_eq!(encoding_of(IMPLICIT_VR_LE), Encoding::IMPLICIT_LE);
        assert!(encoding_of(EXPLICIT_VR_BE).big_endian);
        assert!(encoding_of(DEFLATED_EXPLICIT_VR_LE).deflated);
        assert_eq!(encoding_of("1.2.840.10008.1.2.4.50"), Encoding::EXPLICIT_LE);
        assert_eq!(frame_media_type("1.2.840.10008.1.2.4.80"), "image/jls");
        assert!(is_native(EXPLICIT_VR_LE));
        assert!(!is_native("1.2.840.10008.1.2.5"));
    }
}
