//! DICOM networking (PS3.7, PS3.8) for Yunying: the upper layer, DIMSE
//! messages, the acceptor (SCP) and the requestor (SCU).
//!
//! The upper layer is ours rather than dicom-ul's, for four reasons found
//! while testing dicom-ul 0.10 (see `docs/design/architecture.md`): the
//! acceptor must choose transfer syntaxes by the archive's policy, not the
//! requestor's order; C-STORE data must stream into the archive fragment by
//! fragment; C-GET needs role selection on both sides; and PDU decoding is
//! attack surface we want bounded, fuzzed and in one place.
//!
//! - [`pdu`]: PDUs and their bounded encoding/decoding.
//! - [`command`]: DIMSE command sets.
//! - [`status`]: status codes.
//! - [`uids`]: service UIDs, storage SOP classes, the transfer syntax policy.
//! - [`assoc`]: an established association (messages both ways, streaming data).
//! - [`service`]: the [`Services`] trait the archive implements.
//! - [`scp`]: the acceptor and request dispatch; [`retrieve`] (C-MOVE, C-GET,
//!   and sending stored instances in general) and `commitment` (storage
//!   commitment) serve the longer operations.
//! - [`scu`]: opening associations and client operations.

pub mod assoc;
pub mod command;
mod commitment;
pub mod pdu;
pub mod retrieve;
pub mod scp;
pub mod scu;
pub mod service;
pub mod status;
pub mod uids;

pub use assoc::{AcceptedContext, AssocError, Association, Event, Negotiated, Transport};
pub use command::{Command, field};
pub use pdu::{AssociateRj, AssociateRq, RoleSelection};
pub use scp::{Scp, ScpConfig};
pub use scu::{Proposal, Requestor, ScuTls, StoreSink, SubOperations, associate};
pub use service::{DataSetStream, FindResult, Outcome, RemoteAe, RetrieveItem, Services, SopRef, StoreRequest};
pub use uids::{QueryModel, Service};
