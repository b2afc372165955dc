//! The audit trail's vocabulary: what an audit event records, how events
//! are sealed into a keyed hash chain and verified, and how they are
//! exported (DICOM PS3.15 audit messages, FHIR AuditEvent, RFC 5424 syslog).
//!
//! - [`event`]: [`AuditEvent`] and its parts, action codes and their DICOM coding.
//! - [`chain`]: canonical bytes, [`seal`], [`verify`], the [`Anchor`].
//! - [`dicom_xml`]: PS3.15 A.5 `AuditMessage` XML.
//! - [`fhir`]: FHIR R4 `AuditEvent` and Bundles.
//! - [`syslog`]: RFC 5424 formatting and the non-blocking [`SyslogSink`].
//!
//! The MAC (HMAC-SM3) is not computed here: sealing and verifying take it
//! as a closure `(key_id, bytes) -> Option<[u8; 32]>`.

pub mod chain;
pub mod dicom_xml;
pub mod event;
pub mod fhir;
pub mod syslog;

pub use chain::{
    Anchor, AnchorStatus, ChainError, GENESIS_MAC, Problem, ProblemKind, SealedEvent, VerifyReport,
    anchor_mac, canonical_bytes, seal, verify,
};
pub use event::{Action, Actor, ActorKind, AuditEvent, Outcome, PatientRef};
pub use syslog::{SyslogSink, SyslogTarget};
