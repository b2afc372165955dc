//! What an SCP asks of the application: the [`Services`] trait (implemented
//! by the archive) and the types that cross it. The protocol crate decides
//! nothing about data: who may associate, what is stored, what a query
//! matches, where a C-MOVE goes are all answered through this trait.

use std::net::SocketAddr;

use async_trait::async_trait;
use bytes::Bytes;

use crate::assoc::{AssocError, Association};
use crate::pdu::{AssociateRj, AssociateRq};
use crate::uids::{QueryModel, Service};

/// The status of a finished operation, with an optional comment for the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: u16,
    pub comment: Option<String>,
}

impl Outcome {
    pub fn success() -> Outcome {
        Outcome { status: crate::status::SUCCESS, comment: None }
    }
    pub fn failure(status: u16, comment: impl Into<String>) -> Outcome {
        Outcome { status, comment: Some(comment.into()) }
    }
}

/// A C-STORE request, as the storage handler sees it.
#[derive(Debug, Clone)]
pub struct StoreRequest {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// The transfer syntax of the data set (the presentation context's).
    pub transfer_syntax: String,
    /// The sender's AE title.
    pub calling_ae: String,
    /// Set when the store is a C-MOVE sub-operation.
    pub move_originator: Option<String>,
}

/// The data set of a C-STORE, fragment by fragment as it arrives.
pub struct DataSetStream<'a> {
    assoc: &'a mut Association,
}

impl<'a> DataSetStream<'a> {
    pub(crate) fn new(assoc: &'a mut Association) -> Self {
        DataSetStream { assoc }
    }

    /// The next fragment; `None` after the last. An error means the peer went
    /// away or broke the protocol: whatever was received must be discarded.
    pub async fn next(&mut self) -> Result<Option<Bytes>, AssocError> {
        self.assoc.data_fragment().await
    }
}

/// Matches of a C-FIND, each an identifier already encoded in the
/// transfer syntax of the request.
#[derive(Debug, Clone, Default)]
pub struct FindResult {
    pub matches: Vec<Bytes>,
    /// Status of each pending response (0xFF00, or 0xFF01 when optional
    /// keys were not supported).
    pub pending_status: u16,
    /// Final status: success, or a warning when results were cut.
    pub final_outcome: Option<Outcome>,
}

/// One instance a C-MOVE or C-GET sends.
#[derive(Debug, Clone)]
pub struct RetrieveItem {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// The syntax the instance is stored in.
    pub transfer_syntax: String,
    /// The application's handle to load it with ([`Services::load`]).
    pub key: String,
    pub size: u64,
}

/// A remote AE we open associations to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAe {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

/// A SOP instance reference (storage commitment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopRef {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
}

#[async_trait]
pub trait Services: Send + Sync + 'static {
    /// What the application knows about an admitted peer (its institution,
    /// its policy); passed back on every call.
    type Peer: Send + Sync + 'static;

    /// Admits or rejects an association request.
    async fn admit(&self, rq: &AssociateRq, peer: SocketAddr) -> Result<Self::Peer, AssociateRj>;

    /// Whether this peer may use a service (others' contexts are rejected).
    fn allows(&self, peer: &Self::Peer, service: Service) -> bool;

    /// Stores an instance. Must read `data` to its end (or fail); success
    /// only once the instance is durable.
    async fn store(&self, peer: &Self::Peer, rq: &StoreRequest, data: &mut DataSetStream<'_>) -> Outcome;

    /// Runs a C-FIND; the identifier is in `transfer_syntax`, and so must the matches be.
    async fn find(
        &self,
        peer: &Self::Peer,
        model: QueryModel,
        identifier: Bytes,
        transfer_syntax: &str,
    ) -> Result<FindResult, Outcome>;

    /// The instances a C-MOVE or C-GET identifier designates.
    async fn retrieve(
        &self,
        peer: &Self::Peer,
        model: QueryModel,
        identifier: Bytes,
        transfer_syntax: &str,
    ) -> Result<Vec<RetrieveItem>, Outcome>;

    /// The data set (no file meta) of an instance to send.
    async fn load(&self, item: &RetrieveItem) -> Result<Bytes, String>;

    /// Whether an instance stored in `from` can be sent in `to` by
    /// [`Services::transcode`] (beyond the native conversions done here).
    fn can_transcode(&self, _from: &str, _to: &str) -> bool {
        false
    }

    /// The data set of an instance in transfer syntax `to`, for a receiver
    /// that accepted no syntax it could otherwise be sent in.
    async fn transcode(&self, item: &RetrieveItem, _data: Bytes, to: &str) -> Result<Bytes, String> {
        Err(format!("cannot convert {} to {to}", item.transfer_syntax))
    }

    /// Where a C-MOVE to this AE title goes, if this peer may send there.
    async fn move_destination(&self, peer: &Self::Peer, ae_title: &str) -> Option<RemoteAe>;

    /// Storage commitment: for each reference, `None` when the archive holds
    /// it durably, or the failure reason (0x0112 no such object instance...).
    async fn commit(&self, peer: &Self::Peer, refs: &[SopRef]) -> Vec<Option<u16>>;

    /// Where a storage commitment report goes when it cannot be given on the
    /// association of the request.
    async fn commitment_destination(&self, peer: &Self::Peer) -> Option<RemoteAe>;
}
