//! The acceptor: listens, admits associations (a cap on how many at once,
//! ARTIM and idle timeouts), negotiates presentation contexts by the
//! archive's policy, and dispatches each DIMSE request to [`Services`].
//!
//! One task per association; a failure in one (garbage on the port, an
//! abort in the middle of a data set) ends that association alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::assoc::{AcceptedContext, AssocError, Association, Event, Link, Negotiated};
use crate::command::{Command, field};
use crate::commitment::PendingReports;
use crate::pdu::{
    self, Abort, AssociateAc, AssociateRj, AssociateRq, ContextResult, ExtendedNegotiation, Pdu, RoleSelection,
    UserInfo, context_result,
};
use crate::service::{DataSetStream, Services, StoreRequest};
use crate::status;
use crate::uids::{self, QueryModel, Service};

/// How the acceptor behaves.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// Our AE title.
    pub ae_title: String,
    /// Refuse requests addressed to another AE title.
    pub check_called_ae: bool,
    /// Most associations served at once; more are rejected (transient).
    pub max_associations: usize,
    /// Longest wait for the A-ASSOCIATE-RQ after connecting (ARTIM).
    pub artim_timeout: Duration,
    /// An association idle this long is aborted.
    pub idle_timeout: Duration,
    /// Largest P-DATA PDU we receive.
    pub max_pdu: u32,
    /// Accept SOP classes missing from the dictionary as storage classes.
    pub accept_unknown_sop_classes: bool,
    /// Largest C-FIND / C-MOVE identifier accepted.
    pub max_identifier_bytes: usize,
}

impl ScpConfig {
    pub fn new(ae_title: &str) -> ScpConfig {
        ScpConfig {
            ae_title: ae_title.to_string(),
            check_called_ae: true,
            max_associations: 64,
            artim_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_pdu: 256 * 1024,
            accept_unknown_sop_classes: true,
            max_identifier_bytes: 1 << 20,
        }
    }
}

/// A running acceptor.
pub struct Scp<S: Services> {
    pub(crate) config: ScpConfig,
    pub(crate) services: Arc<S>,
    permits: Arc<Semaphore>,
}

impl<S: Services> Scp<S> {
    pub fn new(config: ScpConfig, services: Arc<S>) -> Arc<Scp<S>> {
        let permits = Arc::new(Semaphore::new(config.max_associations));
        Arc::new(Scp { config, services, permits })
    }

    pub fn config(&self) -> &ScpConfig {
        &self.config
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        self.serve_with(listener, None).await
    }

    /// Serves DICOM over TLS (PS3.15 B.9, BCP 195) on `listener`: every
    /// connection starts with a TLS handshake, which must end within the
    /// ARTIM timeout. The same services, and the same cap on associations,
    /// as the plain listener(s) of this acceptor.
    pub async fn serve_tls(self: Arc<Self>, listener: TcpListener, acceptor: TlsAcceptor) {
        self.serve_with(listener, Some(acceptor)).await
    }

    /// Serves connections from `listener`, over TLS when `tls` is given.
    pub async fn serve_with(self: Arc<Self>, listener: TcpListener, tls: Option<TlsAcceptor>) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let me = self.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move { me.accept(stream, peer, tls).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "DICOM accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// A new connection: the TLS handshake (if any), then the association.
    async fn accept(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
        let artim = Instant::now() + self.config.artim_timeout;
        let max_pdu = self.config.max_pdu;
        let Some(acceptor) = tls else {
            return self.connection(Link::start(stream, max_pdu), peer, artim, false).await;
        };
        let _ = stream.set_nodelay(true);
        match tokio::time::timeout_at(artim, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let (_, session) = tls.get_ref();
                tracing::debug!(
                    %peer,
                    version = ?session.protocol_version(),
                    suite = ?session.negotiated_cipher_suite().map(|s| s.suite()),
                    client_certificate = session.peer_certificates().is_some(),
                    "DICOM TLS handshake done"
                );
                self.connection(Link::start(tls, max_pdu), peer, artim, true).await
            }
            Ok(Err(e)) => tracing::warn!(%peer, error = %e, "DICOM TLS handshake failed: no association"),
            Err(_) => tracing::warn!(
                %peer,
                timeout = ?self.config.artim_timeout,
                "DICOM TLS handshake not finished within the ARTIM timeout: no association"
            ),
        }
    }

    async fn connection(self: Arc<Self>, mut link: Link, peer: SocketAddr, artim: Instant, tls: bool) {
        let permit = self.permits.clone().try_acquire_owned().ok();
        let rq = match link.recv(artim.saturating_duration_since(Instant::now())).await {
            Ok(Pdu::AssociateRq(rq)) => rq,
            Ok(other) => {
                tracing::warn!(%peer, pdu = ?std::mem::discriminant(&other), "DICOM connection did not start with A-ASSOCIATE-RQ");
                let _ = link.send(&Pdu::Abort(Abort::UNEXPECTED_PDU)).await;
                link.close().await;
                return;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "DICOM connection closed before association");
                if matches!(e, AssocError::Pdu(_)) {
                    let _ = link.send(&Pdu::Abort(Abort::UNRECOGNIZED_PDU)).await;
                }
                link.close().await;
                return;
            }
        };
        let Some(_permit) = permit else {
            tracing::warn!(%peer, calling = %rq.calling_ae, limit = self.config.max_associations, "association refused: too many associations");
            let _ = link.send(&Pdu::AssociateRj(AssociateRj::LOCAL_LIMIT_EXCEEDED)).await;
            link.close().await;
            return;
        };
        let (peer_ctx, assoc) = match self.negotiate(&mut link, rq, peer).await {
            Some(x) => x,
            None => {
                link.close().await;
                return;
            }
        };
        let mut assoc = Association::new(link, assoc, self.config.idle_timeout);
        let n = assoc.negotiated().clone();
        tracing::info!(%peer, calling = %n.calling_ae, contexts = n.contexts.len(), max_pdu = n.peer_max_pdu, tls, "association accepted");
        let mut reports = PendingReports::default();
        let result = self.serve_association(&mut assoc, &peer_ctx, &mut reports).await;
        match result {
            Ok(true) => {
                let _ = assoc.confirm_release().await;
                tracing::info!(%peer, calling = %n.calling_ae, "association released");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%peer, calling = %n.calling_ae, error = %e, "association ended abnormally");
                let abort = match e {
                    AssocError::Aborted(_) | AssocError::Closed | AssocError::Io(_) => None,
                    AssocError::Pdu(_) | AssocError::Command(_) => Some(Abort::INVALID_PARAMETER),
                    _ => Some(Abort::UNEXPECTED_PDU),
                };
                match abort {
                    Some(a) => assoc.abort(a).await,
                    None => assoc.abort(Abort::USER).await,
                }
            }
        }
        if !reports.is_empty() {
            crate::commitment::deliver_later(self.clone(), peer_ctx, reports);
        }
    }

    /// Answers the A-ASSOCIATE-RQ; `None` when rejected.
    async fn negotiate(&self, link: &mut Link, rq: AssociateRq, peer: SocketAddr) -> Option<(S::Peer, Negotiated)> {
        let reject = |rj: AssociateRj, why: &str| {
            tracing::warn!(%peer, calling = %rq.calling_ae, called = %rq.called_ae, reason = why, "association rejected");
            rj
        };
        let rj = if rq.protocol_version & 1 == 0 {
            Some(reject(AssociateRj::PROTOCOL_VERSION_NOT_SUPPORTED, "protocol version"))
        } else if rq.application_context != pdu::APPLICATION_CONTEXT {
            Some(reject(AssociateRj::APPLICATION_CONTEXT_NOT_SUPPORTED, "application context"))
        } else if self.config.check_called_ae && rq.called_ae != self.config.ae_title {
            Some(reject(AssociateRj::CALLED_AE_NOT_RECOGNIZED, "called AE title is not ours"))
        } else {
            None
        };
        if let Some(rj) = rj {
            let _ = link.send(&Pdu::AssociateRj(rj)).await;
            return None;
        }
        let peer_ctx = match self.services.admit(&rq, peer).await {
            Ok(p) => p,
            Err(rj) => {
                let _ = link.send(&Pdu::AssociateRj(reject(rj, "refused by policy"))).await;
                return None;
            }
        };
        let mut results = Vec::with_capacity(rq.contexts.len());
        let mut accepted = Vec::new();
        for pc in &rq.contexts {
            let service = uids::service_of(&pc.abstract_syntax, self.config.accept_unknown_sop_classes);
            let (result, ts) = match service {
                None => (context_result::ABSTRACT_SYNTAX_NOT_SUPPORTED, None),
                // A storage context the requestor proposes to be SCP of is
                // the return path of its C-GETs: retrieving is what it needs.
                Some(Service::Storage)
                    if !self.services.allows(&peer_ctx, Service::Storage)
                        && (!rq.user.roles.iter().any(|r| r.sop_class == pc.abstract_syntax && r.scp)
                            || !self.services.allows(&peer_ctx, Service::Get(QueryModel::StudyRoot))) =>
                {
                    (context_result::USER_REJECTION, None)
                }
                Some(s) if s != Service::Storage && !self.services.allows(&peer_ctx, s) => {
                    (context_result::USER_REJECTION, None)
                }
                // The return path of C-GETs: we send on it, so we choose
                // what we can send (native first), not what we like to receive.
                Some(Service::Storage) if rq.user.roles.iter().any(|r| r.sop_class == pc.abstract_syntax && r.scp) => {
                    match uids::choose_for_sending(&pc.transfer_syntaxes) {
                        Some(ts) => (context_result::ACCEPTANCE, Some(ts)),
                        None => (context_result::TRANSFER_SYNTAXES_NOT_SUPPORTED, None),
                    }
                }
                Some(s) => match uids::choose(s, &pc.transfer_syntaxes) {
                    Some(ts) => (context_result::ACCEPTANCE, Some(ts)),
                    None => (context_result::TRANSFER_SYNTAXES_NOT_SUPPORTED, None),
                },
            };
            let ts = ts.unwrap_or_else(|| pc.transfer_syntaxes.first().cloned().unwrap_or_default());
            if result == context_result::ACCEPTANCE {
                accepted.push(AcceptedContext {
                    id: pc.id,
                    abstract_syntax: pc.abstract_syntax.clone(),
                    transfer_syntax: ts.clone(),
                });
            }
            results.push(ContextResult { id: pc.id, result, transfer_syntax: ts });
        }
        // Roles: the requestor may be SCP only for storage classes (C-GET).
        let roles: Vec<RoleSelection> = rq
            .user
            .roles
            .iter()
            .map(|r| {
                let storage = matches!(uids::service_of(&r.sop_class, self.config.accept_unknown_sop_classes), Some(Service::Storage));
                let commitment = r.sop_class == uids::STORAGE_COMMITMENT_PUSH;
                RoleSelection { sop_class: r.sop_class.clone(), scu: r.scu, scp: r.scp && (storage || commitment) }
            })
            .collect();
        let extended = rq.user.extended.iter().filter_map(answer_extended_negotiation).collect();
        let ac = AssociateAc {
            protocol_version: 1,
            called_ae: rq.called_ae.clone(),
            calling_ae: rq.calling_ae.clone(),
            application_context: pdu::APPLICATION_CONTEXT.into(),
            contexts: results,
            user: UserInfo {
                max_pdu_length: self.config.max_pdu,
                implementation_class_uid: yunying_dicom::write::IMPLEMENTATION_CLASS_UID.into(),
                implementation_version_name: Some(yunying_dicom::write::IMPLEMENTATION_VERSION_NAME.into()),
                roles: roles.clone(),
                extended,
                // Identity is not verified over DIMSE yet; a requested
                // positive response gets an empty server response.
                user_identity_response: rq
                    .user
                    .user_identity
                    .as_ref()
                    .filter(|u| u.positive_response_requested && matches!(u.kind, 1 | 2))
                    .map(|_| bytes::Bytes::new()),
                ..Default::default()
            },
        };
        if link.send(&Pdu::AssociateAc(ac)).await.is_err() {
            return None;
        }
        Some((
            peer_ctx,
            Negotiated {
                peer,
                calling_ae: rq.calling_ae.clone(),
                called_ae: rq.called_ae.clone(),
                contexts: accepted,
                peer_max_pdu: rq.user.max_pdu_length,
                roles,
                peer_implementation_class_uid: rq.user.implementation_class_uid.clone(),
                peer_implementation_version: rq.user.implementation_version_name.clone(),
                user_identity: rq.user.user_identity.clone(),
            },
        ))
    }

    /// Serves requests until release (`Ok(true)`) or an error.
    async fn serve_association(
        self: &Arc<Self>,
        assoc: &mut Association,
        peer: &S::Peer,
        reports: &mut PendingReports,
    ) -> Result<bool, AssocError> {
        loop {
            let (ctx, command) = match assoc.next_event().await? {
                Event::ReleaseRequested => return Ok(true),
                Event::Command { context_id, command } => (context_id, command),
            };
            let service = crate::assoc::service_for(assoc.negotiated(), ctx, self.config.accept_unknown_sop_classes);
            match (command.command_field, service) {
                (field::C_ECHO_RQ, Some(Service::Verification)) => {
                    let rsp = Command::response_to(&command, field::C_ECHO_RSP, status::SUCCESS);
                    assoc.send(ctx, &rsp, None).await?;
                }
                (field::C_STORE_RQ, Some(Service::Storage)) => self.store(assoc, peer, ctx, &command).await?,
                (field::C_FIND_RQ, Some(Service::Find(model))) => self.find(assoc, peer, ctx, &command, model).await?,
                (field::C_MOVE_RQ, Some(Service::Move(model))) => {
                    crate::retrieve::c_move(self, assoc, peer, ctx, &command, model).await?
                }
                (field::C_GET_RQ, Some(Service::Get(model))) => {
                    crate::retrieve::c_get(self, assoc, peer, ctx, &command, model).await?
                }
                (field::N_ACTION_RQ, Some(Service::StorageCommitment)) => {
                    crate::commitment::n_action(self, assoc, peer, ctx, &command, reports).await?
                }
                (field::N_EVENT_REPORT_RSP, Some(Service::StorageCommitment)) => {
                    reports.confirmed(command.message_id_being_responded_to);
                }
                (field::C_CANCEL_RQ, _) => {
                    // A cancel for a request already answered: nothing to do.
                }
                (f, _) => {
                    tracing::warn!(command = field::name(f), context = ctx, "request not supported on this presentation context");
                    if command.has_data_set() {
                        assoc.read_data_set(usize::MAX).await.ok();
                    }
                    if f & 0x8000 == 0 {
                        let rsp_status =
                            if service.is_some() { status::UNRECOGNIZED_OPERATION } else { status::SOP_CLASS_NOT_SUPPORTED };
                        let rsp = Command::response_to(&command, f | 0x8000, rsp_status);
                        assoc.send(ctx, &rsp, None).await?;
                    }
                }
            }
        }
    }

    async fn store(&self, assoc: &mut Association, peer: &S::Peer, ctx: u8, command: &Command) -> Result<(), AssocError> {
        let started = std::time::Instant::now();
        let ts = assoc.context_transfer_syntax(ctx).unwrap_or_default().to_string();
        let rq = StoreRequest {
            sop_class_uid: command.affected_sop_class_uid.clone().unwrap_or_default(),
            sop_instance_uid: command.affected_sop_instance_uid.clone().unwrap_or_default(),
            transfer_syntax: ts,
            calling_ae: assoc.negotiated().calling_ae.clone(),
            move_originator: command.move_originator_ae.clone(),
        };
        let outcome = if !command.has_data_set() {
            crate::service::Outcome::failure(status::CANNOT_UNDERSTAND, "C-STORE-RQ without a data set")
        } else {
            let mut stream = DataSetStream::new(assoc);
            self.services.store(peer, &rq, &mut stream).await
        };
        // The handler may have stopped early: the data set is skipped by
        // next_event(), and a broken stream surfaces there as an error.
        let mut rsp = Command::response_to(command, field::C_STORE_RSP, outcome.status);
        rsp.error_comment = outcome.comment;
        assoc.send(ctx, &rsp, None).await?;
        tracing::debug!(sop = %rq.sop_instance_uid, status = rsp.status, us = started.elapsed().as_micros() as u64, "C-STORE");
        Ok(())
    }

    async fn find(
        &self,
        assoc: &mut Association,
        peer: &S::Peer,
        ctx: u8,
        command: &Command,
        model: QueryModel,
    ) -> Result<(), AssocError> {
        let ts = assoc.context_transfer_syntax(ctx).unwrap_or_default().to_string();
        let identifier = assoc.read_data_set(self.config.max_identifier_bytes).await?;
        let message_id = command.message_id.unwrap_or(0);
        let result = self.services.find(peer, model, identifier, &ts).await;
        let found = match result {
            Ok(r) => r,
            Err(outcome) => {
                let mut rsp = Command::response_to(command, field::C_FIND_RSP, outcome.status);
                rsp.error_comment = outcome.comment;
                return assoc.send(ctx, &rsp, None).await;
            }
        };
        let pending = if found.pending_status == 0 { status::PENDING } else { found.pending_status };
        for m in &found.matches {
            if assoc.cancelled(message_id) {
                let rsp = Command::response_to(command, field::C_FIND_RSP, status::CANCEL);
                return assoc.send(ctx, &rsp, None).await;
            }
            let rsp = Command::response_to(command, field::C_FIND_RSP, pending);
            // Matches go out as the buffer fills; the final response flushes.
            assoc.send_buffered(ctx, &rsp, Some(m)).await?;
        }
        let outcome = found.final_outcome.unwrap_or_else(crate::service::Outcome::success);
        let mut rsp = Command::response_to(command, field::C_FIND_RSP, outcome.status);
        rsp.error_comment = outcome.comment;
        assoc.send(ctx, &rsp, None).await
    }
}

/// Our answer to a SOP class extended negotiation item (PS3.4 Annexes B.3.1,
/// C.5): the archive is a level 2 (full) storage SCP that does not coerce
/// elements; for queries it supports fuzzy person-name matching but neither
/// relational queries nor combined date-time matching nor time-zone adjustment;
/// for retrievals, no relational retrieval.
fn answer_extended_negotiation(e: &ExtendedNegotiation) -> Option<ExtendedNegotiation> {
    let info: Vec<u8> = match uids::service_of(&e.sop_class, true)? {
        Service::Storage => vec![2, 0, 0, 0, 0, 0],
        Service::Find(_) => {
            let asked = |i: usize| e.info.get(i).copied().unwrap_or(0);
            vec![0, 0, asked(2).min(1), 0]
        }
        Service::Move(_) | Service::Get(_) => vec![0],
        _ => return None,
    };
    let n = info.len().min(e.info.len().max(1));
    Some(ExtendedNegotiation { sop_class: e.sop_class.clone(), info: bytes::Bytes::from(info[..n].to_vec()) })
}
