//! Shared vocabulary of Yunying, at the bottom of the crate graph.
//!
//! - [`uid`]: DICOM UID newtypes ([`StudyUid`], [`SeriesUid`], [`SopUid`]) that can
//!   only hold a syntactically valid UID (PS3.5 §9.1), plus UID generation under
//!   the `2.25` (UUID-derived) root.
//! - [`ids`]: catalog row identifiers ([`InstitutionId`], [`PatientRef`], ...).
//! - [`time`]: wall-clock helpers (unix milliseconds, RFC 3339, DICOM DA/TM).
//!
//! Nothing here knows about storage, networks or DICOM parsing.

pub mod ids;
pub mod time;
pub mod uid;

pub use ids::{InstitutionId, PatientRef};
pub use uid::{SeriesUid, SopUid, StudyUid, Uid, UidError};
