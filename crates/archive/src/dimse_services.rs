//! The archive behind the DICOM network services: who may associate (the AE
//! registry), where received instances go (the ingest road, streamed), what
//! C-FIND matches and C-MOVE/C-GET send (query_retrieve), and what storage
//! commitment can promise (instances indexed and durable).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use yunying_dimse::pdu::{AssociateRj, AssociateRq};
use yunying_dimse::{
    DataSetStream, FindResult, Outcome, QueryModel, RemoteAe, RetrieveItem, Service, Services, SopRef, StoreRequest,
    status,
};
use yunying_index::query::{Key, Level, Matcher, Query};
use yunying_index::{ApplicationEntity, Institution};

use crate::query_retrieve::{QrModel, QrError};
use crate::{Archive, IngestSource};

/// What the network services allow beyond the registry.
#[derive(Debug, Clone)]
pub struct DimsePolicy {
    /// Our AE title (C-FIND responses name it as Retrieve AE Title).
    pub ae_title: String,
    /// Admit calling AE titles missing from the registry (attributed to the
    /// default institution) instead of rejecting them.
    pub accept_unknown_ae: bool,
    /// What such unknown AEs may do.
    pub unknown_may_store: bool,
    pub unknown_may_query: bool,
    pub unknown_may_retrieve: bool,
    /// Most matches one C-FIND returns.
    pub max_find_results: u32,
}

impl DimsePolicy {
    pub fn new(ae_title: &str) -> DimsePolicy {
        DimsePolicy {
            ae_title: ae_title.to_string(),
            accept_unknown_ae: false,
            unknown_may_store: true,
            unknown_may_query: true,
            unknown_may_retrieve: false,
            max_find_results: 10_000,
        }
    }
}

/// An admitted peer.
pub struct DimsePeer {
    pub calling_ae: String,
    pub address: SocketAddr,
    /// The registry entry, when the AE is registered.
    pub registered: Option<ApplicationEntity>,
    pub institution: Institution,
    may_store: bool,
    may_query: bool,
    may_retrieve: bool,
    /// The AE as the policy and the audit trail see it.
    pub caller: crate::Caller,
}

/// The principal of an admitted AE: its registry policy as actions, its
/// institution as scope (the whole region for the centre's own AEs).
fn ae_caller(title: &str, peer: SocketAddr, institution: &Institution, regional: bool, store: bool, query: bool, retrieve: bool) -> crate::Caller {
    use crate::policy::{Action, Principal, PrincipalKind};
    let mut actions = Vec::new();
    if store {
        actions.push(Action::Store);
    }
    if query {
        actions.push(Action::Query);
    }
    if retrieve {
        actions.extend([Action::Read, Action::Export]);
    }
    crate::Caller::new(
        Principal {
            kind: PrincipalKind::Ae,
            id: format!("ae:{title}"),
            name: title.to_string(),
            roles: Vec::new(),
            actions: Some(actions),
            institution: Some(institution.id),
            institution_code: Some(institution.code.clone()),
            regional,
            granted_studies: Vec::new(),
        },
        Some(format!("{title}@{}", peer.ip())),
        yunying_audit::event::INTERFACE_DICOM,
    )
}

impl Archive {
    /// Ingests the data set of a C-STORE (an SCP's, or a C-GET's we asked
    /// for) as it arrives: a file meta header naming the negotiated syntax and
    /// the sender is written in front, every fragment is staged, and the
    /// object goes down the one ingest road. The data set's SOP Class and
    /// Instance UIDs must be the ones the command announced. The status says
    /// what happened, with the data set bytes received; nothing of a refused
    /// or cut-short object is kept.
    pub async fn ingest_c_store(
        self: &Arc<Self>,
        rq: &StoreRequest,
        data: &mut DataSetStream<'_>,
        mut source: IngestSource,
    ) -> (Outcome, u64) {
        let mut received = 0u64;
        let outcome = self.ingest_c_store_counted(rq, data, &mut source, &mut received).await;
        (outcome, received)
    }

    async fn ingest_c_store_counted(
        self: &Arc<Self>,
        rq: &StoreRequest,
        data: &mut DataSetStream<'_>,
        source: &mut IngestSource,
        received: &mut u64,
    ) -> Outcome {
        let sender = source.sender_ae.clone().unwrap_or_default();
        let refused = |o: Outcome| {
            tracing::warn!(from = %source.peer, sop = %rq.sop_instance_uid, status = o.status, comment = ?o.comment, "C-STORE refused");
            o
        };
        let staged = match self.stage(source.institution) {
            Ok(s) => s,
            Err(e) => return refused(Outcome::failure(e.dicom_status(), e.message)),
        };
        let meta = yunying_dicom::file_meta(
            &rq.sop_class_uid,
            &rq.sop_instance_uid,
            &rq.transfer_syntax,
            (!sender.is_empty()).then_some(sender.as_str()),
        );
        let mut failure: Option<Outcome> = None;
        let mut staged = match staged.write_bytes(Bytes::from(meta)).await {
            Ok(s) => Some(s),
            Err(e) => {
                failure = Some(Outcome::failure(e.dicom_status(), e.message));
                None
            }
        };
        loop {
            match data.next().await {
                Ok(Some(fragment)) => {
                    *received += fragment.len() as u64;
                    if failure.is_some() {
                        continue; // drain what the sender still sends
                    }
                    match staged.take().expect("staged").write_bytes(fragment).await {
                        Ok(s) => staged = Some(s),
                        Err(e) => failure = Some(Outcome::failure(e.dicom_status(), e.message)),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The sender went away mid-object: nothing of it is kept
                    // (dropping the staged file removes it).
                    return refused(Outcome::failure(status::PROCESSING_FAILURE, format!("data set cut short: {e}")));
                }
            }
        }
        if let Some(f) = failure {
            return refused(f);
        }
        source.expected_instance = Some((rq.sop_class_uid.clone(), rq.sop_instance_uid.clone()));
        match self.ingest(staged.take().expect("staged"), source).await {
            Ok(_) => Outcome::success(),
            Err(e) => refused(Outcome::failure(e.dicom_status(), e.message)),
        }
    }
}

/// [`yunying_dimse::Services`] over the archive.
pub struct DimseServices {
    archive: Arc<Archive>,
    policy: DimsePolicy,
}

impl DimseServices {
    pub fn new(archive: Arc<Archive>, policy: DimsePolicy) -> Arc<DimseServices> {
        Arc::new(DimseServices { archive, policy })
    }
}

fn qr_model(m: QueryModel) -> QrModel {
    match m {
        QueryModel::PatientRoot => QrModel::PatientRoot,
        QueryModel::StudyRoot => QrModel::StudyRoot,
    }
}

/// The institutions of a DIMSE caller's scope (`None`: the region). AEs
/// have no grants, so the granted studies are always empty.
fn split_scope(scope: Option<(Vec<i64>, Vec<String>)>) -> (Option<Vec<i64>>, Vec<String>) {
    match scope {
        None => (None, Vec::new()),
        Some((i, s)) => (Some(i), s),
    }
}

fn qr_outcome(e: QrError) -> Outcome {
    Outcome::failure(e.status, e.message)
}

#[async_trait]
impl Services for DimseServices {
    type Peer = DimsePeer;

    async fn admit(&self, rq: &AssociateRq, peer: SocketAddr) -> Result<DimsePeer, AssociateRj> {
        let registered = match self.archive.index().application_entity(&rq.calling_ae).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "AE registry look-up failed");
                return Err(AssociateRj::TEMPORARY_CONGESTION);
            }
        };
        match registered {
            Some(ae) => {
                let institution = self
                    .archive
                    .find_institution(|i| i.id == ae.institution_id, true)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| self.archive.default_institution().clone());
                let regional = self.archive.index().regional_institutions().await.unwrap_or_default().contains(&institution.id);
                let caller = ae_caller(&rq.calling_ae, peer, &institution, regional, ae.may_store, ae.may_query, ae.may_retrieve);
                Ok(DimsePeer {
                    caller,
                    calling_ae: rq.calling_ae.clone(),
                    address: peer,
                    may_store: ae.may_store,
                    may_query: ae.may_query,
                    may_retrieve: ae.may_retrieve,
                    registered: Some(ae),
                    institution,
                })
            }
            None if self.policy.accept_unknown_ae => Ok(DimsePeer {
                caller: ae_caller(
                    &rq.calling_ae,
                    peer,
                    self.archive.default_institution(),
                    false,
                    self.policy.unknown_may_store,
                    self.policy.unknown_may_query,
                    self.policy.unknown_may_retrieve,
                ),
                calling_ae: rq.calling_ae.clone(),
                address: peer,
                registered: None,
                institution: self.archive.default_institution().clone(),
                may_store: self.policy.unknown_may_store,
                may_query: self.policy.unknown_may_query,
                may_retrieve: self.policy.unknown_may_retrieve,
            }),
            None => {
                tracing::warn!(calling = %rq.calling_ae, %peer, "association from an unregistered AE title rejected");
                let who = crate::Caller::new(
                    crate::policy::Principal::system("dicom"),
                    Some(format!("{}@{}", rq.calling_ae, peer.ip())),
                    yunying_audit::event::INTERFACE_DICOM,
                );
                let mut e = self.archive.audit_event(&who, yunying_audit::Action::AssociationRejected, yunying_audit::Outcome::MinorFailure);
                e.actor = yunying_audit::Actor::new(yunying_audit::ActorKind::Ae, format!("ae:{}", rq.calling_ae), rq.calling_ae.clone());
                e.detail = serde_json::json!({ "reason": "calling AE title not recognized", "called": rq.called_ae });
                self.archive.audit(e).await;
                Err(AssociateRj::CALLING_AE_NOT_RECOGNIZED)
            }
        }
    }

    fn allows(&self, peer: &DimsePeer, service: Service) -> bool {
        match service {
            Service::Verification => true,
            Service::Storage | Service::StorageCommitment => peer.may_store,
            Service::Find(_) => peer.may_query,
            Service::Move(_) | Service::Get(_) => peer.may_retrieve,
        }
    }

    async fn store(&self, peer: &DimsePeer, rq: &StoreRequest, data: &mut DataSetStream<'_>) -> Outcome {
        let mut source = IngestSource::new("dimse", format!("{}@{}", peer.calling_ae, peer.address.ip()));
        source.institution = Some(peer.institution.id);
        source.sender_ae = Some(peer.calling_ae.clone());
        source.caller = peer.caller.clone();
        self.archive.ingest_c_store(rq, data, source).await.0
    }

    async fn find(
        &self,
        peer: &DimsePeer,
        model: QueryModel,
        identifier: Bytes,
        transfer_syntax: &str,
    ) -> Result<FindResult, Outcome> {
        let scope = self.archive.scope_for(&peer.caller, crate::policy::Action::Query);
        let (institutions, granted) = split_scope(scope);
        let _ = granted;
        let found = self
            .archive
            .qr_find(qr_model(model), &identifier, transfer_syntax, &self.policy.ae_title, institutions, self.policy.max_find_results)
            .await
            .map_err(qr_outcome)?;
        self.archive.audit_query(&peer.caller, &format!("C-FIND {model:?}"), found.matches.len(), None).await;
        let explicit = transfer_syntax != yunying_dicom::ts::IMPLICIT_VR_LE;
        let mut matches = Vec::with_capacity(found.matches.len());
        for m in &found.matches {
            let bytes = yunying_dicom::json_dataset::encode_json_dataset(m, explicit)
                .map_err(|e| Outcome::failure(status::CANNOT_UNDERSTAND, format!("cannot encode a match: {e}")))?;
            matches.push(Bytes::from(bytes));
        }
        let final_outcome = if found.warnings.is_empty() {
            None
        } else {
            tracing::info!(warnings = ?found.warnings, "C-FIND warnings");
            None
        };
        Ok(FindResult { matches, pending_status: status::PENDING, final_outcome })
    }

    async fn retrieve(
        &self,
        peer: &DimsePeer,
        model: QueryModel,
        identifier: Bytes,
        transfer_syntax: &str,
    ) -> Result<Vec<RetrieveItem>, Outcome> {
        let (institutions, _) = split_scope(self.archive.scope_for(&peer.caller, crate::policy::Action::Export));
        let found = self
            .archive
            .qr_retrieve_set(qr_model(model), &identifier, transfer_syntax, institutions)
            .await
            .map_err(qr_outcome)?;
        let mut studies: Vec<String> = found.iter().map(|i| i.study_uid.clone()).collect();
        studies.sort();
        studies.dedup();
        for study in &studies {
            if let Ok(Some(facts)) = self.archive.study_facts(study).await {
                let n = found.iter().filter(|i| i.study_uid == *study).count();
                self.archive
                    .audit_access(&peer.caller, crate::policy::Action::Export, &facts, serde_json::json!({ "service": format!("{model:?}"), "count": n }))
                    .await;
            }
        }
        Ok(found
            .into_iter()
            .map(|i| RetrieveItem {
                sop_class_uid: i.sop_class_uid,
                sop_instance_uid: i.sop_uid,
                transfer_syntax: i.transfer_syntax,
                key: i.blob_key,
                size: i.size_bytes.max(0) as u64,
            })
            .collect())
    }

    async fn load(&self, item: &RetrieveItem) -> Result<Bytes, String> {
        self.archive.load_dataset(&item.key).await
    }

    fn can_transcode(&self, from: &str, to: &str) -> bool {
        Archive::can_transcode_object(from, to)
    }

    async fn transcode(&self, item: &RetrieveItem, _data: Bytes, to: &str) -> Result<Bytes, String> {
        self.archive.dataset_in(item, to).await
    }

    async fn move_destination(&self, _peer: &DimsePeer, ae_title: &str) -> Option<RemoteAe> {
        let ae = self.archive.index().application_entity(ae_title).await.ok().flatten()?;
        match (ae.host, ae.port) {
            (Some(host), Some(port)) => Some(RemoteAe { ae_title: ae.ae_title, host, port }),
            _ => {
                tracing::warn!(ae = ae_title, "C-MOVE destination is registered without host and port");
                None
            }
        }
    }

    async fn commit(&self, _peer: &DimsePeer, refs: &[SopRef]) -> Vec<Option<u16>> {
        let mut results = vec![Some(status::NO_SUCH_OBJECT_INSTANCE); refs.len()];
        for (chunk_no, chunk) in refs.chunks(500).enumerate() {
            let uids: Vec<String> = chunk.iter().map(|r| r.sop_instance_uid.clone()).filter(|u| !u.is_empty()).collect();
            if uids.is_empty() {
                continue;
            }
            let q = Query::new(Level::Instance).filter(Key::SopInstanceUid, Matcher::List(uids));
            let rows = match self.archive.query_instances(&q).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "storage commitment look-up failed");
                    for i in 0..chunk.len() {
                        results[chunk_no * 500 + i] = Some(status::PROCESSING_FAILURE);
                    }
                    continue;
                }
            };
            for (i, r) in chunk.iter().enumerate() {
                if let Some(row) = rows.iter().find(|row| row.sop_uid == r.sop_instance_uid) {
                    results[chunk_no * 500 + i] =
                        if row.sop_class_uid == r.sop_class_uid { None } else { Some(0x0119) /* class-instance conflict */ };
                }
            }
        }
        results
    }

    async fn commitment_destination(&self, peer: &DimsePeer) -> Option<RemoteAe> {
        let ae = peer.registered.as_ref()?;
        Some(RemoteAe { ae_title: ae.ae_title.clone(), host: ae.host.clone()?, port: ae.port? })
    }
}
