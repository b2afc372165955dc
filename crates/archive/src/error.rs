//! The archive's errors, and their DICOM status codes — the one place where
//! an ingest failure becomes a status (C-STORE responses and STOW-RS
//! FailureReason both read it from here).

use yunying_blob::BlobError;
use yunying_index::IndexError;

/// DICOM status codes the archive answers with (PS3.4 Annex B, PS3.7 Annex C).
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources.
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class.
    pub const DATA_SET_MISMATCH: u16 = 0xA900;
    /// Error: cannot understand.
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Failure: processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// Refused: not authorized (PS3.4 C.4.2.1.4 / PS3.7 C.5.x, 0124H).
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    /// Warning: coercion of data elements.
    pub const COERCION: u16 = 0xB000;
}

/// Why an object was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestErrorKind {
    /// Not a DICOM object, or cut short, or malformed.
    Unreadable,
    /// A required attribute is missing or invalid.
    Invalid,
    /// Contradicts what the archive holds (another patient's study...), or
    /// does not belong to the study the request addressed.
    Conflict,
    /// Larger than allowed, or the disk is full.
    OutOfResources,
    /// The archive failed (catalog or storage error): retry later.
    Internal,
    /// The sender may not store this (its credential, or another institution's data).
    NotAuthorized,
}

/// An ingest failure: what kind, and a message for the sender.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct IngestError {
    pub kind: IngestErrorKind,
    pub message: String,
    /// SOP Class / Instance UIDs when they could be read.
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
}

impl IngestError {
    pub fn new(kind: IngestErrorKind, message: impl Into<String>) -> Self {
        IngestError { kind, message: message.into(), sop_class_uid: None, sop_instance_uid: None }
    }

    pub fn with_uids(mut self, class: &str, instance: &str) -> Self {
        self.sop_class_uid = Some(class.to_string());
        self.sop_instance_uid = Some(instance.to_string());
        self
    }

    /// The DICOM status of this failure.
    pub fn dicom_status(&self) -> u16 {
        match self.kind {
            IngestErrorKind::Unreadable => status::CANNOT_UNDERSTAND,
            IngestErrorKind::Invalid | IngestErrorKind::Conflict => status::DATA_SET_MISMATCH,
            IngestErrorKind::OutOfResources => status::OUT_OF_RESOURCES,
            IngestErrorKind::Internal => status::PROCESSING_FAILURE,
            IngestErrorKind::NotAuthorized => status::NOT_AUTHORIZED,
        }
    }

    pub(crate) fn internal(what: &str, e: impl std::fmt::Display) -> Self {
        IngestError::new(IngestErrorKind::Internal, format!("{what}: {e}"))
    }

    pub(crate) fn io(what: &str, e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) {
            IngestError::new(IngestErrorKind::OutOfResources, format!("{what}: the archive's disk is full"))
        } else {
            IngestError::internal(what, e)
        }
    }
}

/// Errors of reading from the archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be served as asked (e.g. a transfer syntax that
    /// would need transcoding).
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    BadRequest(String),
    /// No valid credential (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid credential that may not do this (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Contradicts what exists (a taken username...).
    #[error("{0}")]
    Conflict(String),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("catalog: {0}")]
    Index(#[from] IndexError),
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Internal(String),
}
