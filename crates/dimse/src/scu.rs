//! The requestor side: opening associations and the client operations the
//! platform uses (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, N-EVENT-REPORT).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::net::TcpStream;

use crate::assoc::{AcceptedContext, AssocError, Association, Event, Link, Negotiated};
use crate::command::{Command, field, priority};
use crate::pdu::{self, AssociateRq, Pdu, ProposedContext, RoleSelection, UserInfo};
use crate::service::{DataSetStream, Outcome, StoreRequest};
use crate::status;
use yunying_dicom::ts;

/// How to reach and greet a peer.
#[derive(Debug, Clone)]
pub struct Requestor {
    pub calling_ae: String,
    pub called_ae: String,
    /// `host:port`.
    pub address: String,
    /// Largest P-DATA PDU we receive.
    pub max_pdu: u32,
    pub connect_timeout: Duration,
    /// Longest wait for any answer.
    pub idle_timeout: Duration,
    /// Connect over TLS (DICOM secure transport) instead of plain TCP.
    pub tls: Option<ScuTls>,
}

/// How to reach a peer over TLS: the client configuration (trusted CAs,
/// our certificate for peers that require one) and the name the peer's
/// certificate must carry (a DNS name, or an IP address).
#[derive(Clone)]
pub struct ScuTls {
    pub connector: tokio_rustls::TlsConnector,
    pub server_name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

impl ScuTls {
    pub fn new(
        config: std::sync::Arc<tokio_rustls::rustls::ClientConfig>,
        server_name: tokio_rustls::rustls::pki_types::ServerName<'static>,
    ) -> ScuTls {
        ScuTls { connector: tokio_rustls::TlsConnector::from(config), server_name }
    }
}

impl std::fmt::Debug for ScuTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScuTls").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl Requestor {
    pub fn new(calling_ae: &str, called_ae: &str, address: &str) -> Requestor {
        Requestor {
            calling_ae: calling_ae.to_string(),
            called_ae: called_ae.to_string(),
            address: address.to_string(),
            max_pdu: 256 * 1024,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// A presentation context to propose.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub abstract_syntax: String,
    pub transfer_syntaxes: Vec<String>,
}

impl Proposal {
    pub fn new(abstract_syntax: &str, transfer_syntaxes: &[&str]) -> Proposal {
        Proposal {
            abstract_syntax: abstract_syntax.into(),
            transfer_syntaxes: transfer_syntaxes.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Native little-endian syntaxes, explicit first.
    pub fn native(abstract_syntax: &str) -> Proposal {
        Proposal::new(abstract_syntax, &[ts::EXPLICIT_VR_LE, ts::IMPLICIT_VR_LE])
    }
}

/// Opens an association. At most 128 proposals (the protocol's limit).
pub async fn associate(
    req: &Requestor,
    proposals: &[Proposal],
    roles: &[RoleSelection],
) -> Result<Association, AssocError> {
    if proposals.is_empty() || proposals.len() > 128 {
        return Err(AssocError::protocol(format!("{} presentation contexts proposed (1 to 128 allowed)", proposals.len())));
    }
    let stream = tokio::time::timeout(req.connect_timeout, TcpStream::connect(&req.address))
        .await
        .map_err(|_| AssocError::Timeout(req.connect_timeout))??;
    let peer = stream.peer_addr()?;
    let mut link = match &req.tls {
        None => Link::start(stream, req.max_pdu),
        Some(tls) => {
            let _ = stream.set_nodelay(true);
            let handshake = tls.connector.connect(tls.server_name.clone(), stream);
            let stream = tokio::time::timeout(req.connect_timeout, handshake)
                .await
                .map_err(|_| AssocError::Timeout(req.connect_timeout))?
                .map_err(|e| AssocError::Tls(e.to_string()))?;
            Link::start(stream, req.max_pdu)
        }
    };
    let contexts: Vec<ProposedContext> = proposals
        .iter()
        .enumerate()
        .map(|(i, p)| ProposedContext {
            id: (2 * i + 1) as u8,
            abstract_syntax: p.abstract_syntax.clone(),
            transfer_syntaxes: p.transfer_syntaxes.clone(),
        })
        .collect();
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: req.called_ae.clone(),
        calling_ae: req.calling_ae.clone(),
        application_context: pdu::APPLICATION_CONTEXT.into(),
        contexts: contexts.clone(),
        user: UserInfo {
            max_pdu_length: req.max_pdu,
            implementation_class_uid: yunying_dicom::write::IMPLEMENTATION_CLASS_UID.into(),
            implementation_version_name: Some(yunying_dicom::write::IMPLEMENTATION_VERSION_NAME.into()),
            roles: roles.to_vec(),
            ..Default::default()
        },
    };
    link.send(&Pdu::AssociateRq(rq)).await?;
    let ac = match link.recv(req.idle_timeout).await? {
        Pdu::AssociateAc(ac) => ac,
        Pdu::AssociateRj(rj) => {
            link.close().await;
            return Err(AssocError::Rejected { result: rj.result, origin: rj.source, reason: rj.reason });
        }
        Pdu::Abort(a) => return Err(AssocError::Aborted(a)),
        other => return Err(AssocError::protocol(format!("unexpected answer to A-ASSOCIATE-RQ: {other:?}"))),
    };
    let accepted: Vec<AcceptedContext> = ac
        .contexts
        .iter()
        .filter(|r| r.result == pdu::context_result::ACCEPTANCE)
        .filter_map(|r| {
            let proposed = contexts.iter().find(|c| c.id == r.id)?;
            Some(AcceptedContext {
                id: r.id,
                abstract_syntax: proposed.abstract_syntax.clone(),
                transfer_syntax: r.transfer_syntax.clone(),
            })
        })
        .collect();
    // Roles: what we proposed, as far as the acceptor agreed.
    let agreed = roles
        .iter()
        .map(|r| match ac.user.roles.iter().find(|a| a.sop_class == r.sop_class) {
            Some(a) => RoleSelection { sop_class: r.sop_class.clone(), scu: r.scu && a.scu, scp: r.scp && a.scp },
            None => RoleSelection { sop_class: r.sop_class.clone(), scu: true, scp: false },
        })
        .collect();
    let negotiated = Negotiated {
        peer,
        calling_ae: req.calling_ae.clone(),
        called_ae: req.called_ae.clone(),
        contexts: accepted,
        peer_max_pdu: ac.user.max_pdu_length,
        roles: agreed,
        peer_implementation_class_uid: ac.user.implementation_class_uid.clone(),
        peer_implementation_version: ac.user.implementation_version_name.clone(),
        user_identity: None,
    };
    if negotiated.contexts.is_empty() {
        let a = Association::new(link, negotiated, req.idle_timeout);
        a.abort(pdu::Abort::USER).await;
        return Err(AssocError::protocol("the peer accepted none of the proposed presentation contexts"));
    }
    Ok(Association::new(link, negotiated, req.idle_timeout))
}

/// Receives the C-STOREs of a C-GET.
#[async_trait]
pub trait StoreSink: Send + Sync {
    async fn store(&self, rq: &StoreRequest, data: &mut DataSetStream<'_>) -> Outcome;
}

/// Sub-operation counts of a C-MOVE or C-GET response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubOperations {
    pub remaining: Option<u16>,
    pub completed: u16,
    pub failed: u16,
    pub warning: u16,
}

impl SubOperations {
    pub fn of(c: &Command) -> SubOperations {
        SubOperations {
            remaining: c.remaining,
            completed: c.completed.unwrap_or(0),
            failed: c.failed.unwrap_or(0),
            warning: c.warning.unwrap_or(0),
        }
    }
}

impl Association {
    fn context_for(&self, abstract_syntax: &str) -> Result<u8, AssocError> {
        self.find_context(abstract_syntax, |_| true)
            .map(|c| c.id)
            .ok_or_else(|| AssocError::protocol(format!("no accepted presentation context for {abstract_syntax}")))
    }

    /// C-ECHO; returns the status.
    pub async fn echo(&mut self) -> Result<u16, AssocError> {
        let ctx = self.context_for(crate::uids::VERIFICATION)?;
        let id = self.next_message_id();
        let mut c = Command::new(field::C_ECHO_RQ);
        c.affected_sop_class_uid = Some(crate::uids::VERIFICATION.into());
        c.message_id = Some(id);
        self.send(ctx, &c, None).await?;
        let (_, rsp, _) = self.response(id).await?;
        Ok(rsp.status.unwrap_or(status::PROCESSING_FAILURE))
    }

    /// C-STORE of a data set given in parts, on context `ctx` (whose
    /// transfer syntax the data must be in). Returns the response command.
    pub async fn store(
        &mut self,
        ctx: u8,
        sop_class: &str,
        sop_instance: &str,
        data: &[Bytes],
        originator: Option<(&str, u16)>,
    ) -> Result<Command, AssocError> {
        let id = self.next_message_id();
        let mut c = Command::new(field::C_STORE_RQ);
        c.affected_sop_class_uid = Some(sop_class.into());
        c.affected_sop_instance_uid = Some(sop_instance.into());
        c.message_id = Some(id);
        c.priority = Some(priority::MEDIUM);
        if let Some((ae, msg)) = originator {
            c.move_originator_ae = Some(ae.into());
            c.move_originator_message_id = Some(msg);
        }
        self.send_parts(ctx, &c, data).await?;
        let (_, rsp, _) = self.response(id).await?;
        Ok(rsp)
    }

    /// C-FIND; returns the matches (identifiers in the context's syntax) and the final status.
    pub async fn find(&mut self, model_uid: &str, identifier: &[u8]) -> Result<(Vec<Bytes>, Command), AssocError> {
        let ctx = self.context_for(model_uid)?;
        let id = self.next_message_id();
        let mut c = Command::new(field::C_FIND_RQ);
        c.affected_sop_class_uid = Some(model_uid.into());
        c.message_id = Some(id);
        c.priority = Some(priority::MEDIUM);
        self.send(ctx, &c, Some(identifier)).await?;
        let mut matches = Vec::new();
        loop {
            let (_, rsp, data) = self.response(id).await?;
            match rsp.status.map(status::class) {
                Some(status::Class::Pending) => {
                    if let Some(d) = data {
                        matches.push(d);
                    }
                }
                _ => return Ok((matches, rsp)),
            }
        }
    }

    /// C-MOVE to `destination`; `progress` sees each pending response.
    /// Returns the final response and its data set (failed SOP list).
    pub async fn c_move(
        &mut self,
        model_uid: &str,
        destination: &str,
        identifier: &[u8],
        mut progress: impl FnMut(SubOperations) + Send,
    ) -> Result<(Command, Option<Bytes>), AssocError> {
        let ctx = self.context_for(model_uid)?;
        let id = self.next_message_id();
        let mut c = Command::new(field::C_MOVE_RQ);
        c.affected_sop_class_uid = Some(model_uid.into());
        c.message_id = Some(id);
        c.priority = Some(priority::MEDIUM);
        c.move_destination = Some(destination.into());
        self.send(ctx, &c, Some(identifier)).await?;
        loop {
            let (_, rsp, data) = self.response(id).await?;
            if rsp.status.map(status::class) == Some(status::Class::Pending) {
                progress(SubOperations::of(&rsp));
                continue;
            }
            return Ok((rsp, data));
        }
    }

    /// C-GET: the peer sends the instances back on this association, each
    /// handed to `sink`. The association must have been proposed with storage
    /// contexts and SCP role selection for their SOP classes.
    pub async fn c_get(
        &mut self,
        model_uid: &str,
        identifier: &[u8],
        sink: &dyn StoreSink,
        mut progress: impl FnMut(SubOperations) + Send,
    ) -> Result<(Command, Option<Bytes>), AssocError> {
        let ctx = self.context_for(model_uid)?;
        let id = self.next_message_id();
        let mut c = Command::new(field::C_GET_RQ);
        c.affected_sop_class_uid = Some(model_uid.into());
        c.message_id = Some(id);
        c.priority = Some(priority::MEDIUM);
        self.send(ctx, &c, Some(identifier)).await?;
        loop {
            match self.next_event().await? {
                Event::Command { context_id, command } if command.command_field == field::C_STORE_RQ => {
                    let rq = StoreRequest {
                        sop_class_uid: command.affected_sop_class_uid.clone().unwrap_or_default(),
                        sop_instance_uid: command.affected_sop_instance_uid.clone().unwrap_or_default(),
                        transfer_syntax: self.context_transfer_syntax(context_id).unwrap_or_default().to_string(),
                        calling_ae: self.negotiated().called_ae.clone(),
                        move_originator: None,
                    };
                    let outcome = {
                        let mut stream = DataSetStream::new(self);
                        sink.store(&rq, &mut stream).await
                    };
                    let mut rsp = Command::response_to(&command, field::C_STORE_RSP, outcome.status);
                    rsp.error_comment = outcome.comment;
                    self.send(context_id, &rsp, None).await?;
                }
                Event::Command { command, .. } if command.command_field == field::C_GET_RSP => {
                    let data = if command.has_data_set() { Some(self.read_data_set(16 << 20).await?) } else { None };
                    if command.status.map(status::class) == Some(status::Class::Pending) {
                        progress(SubOperations::of(&command));
                        continue;
                    }
                    return Ok((command, data));
                }
                Event::Command { command, .. } => {
                    return Err(AssocError::protocol(format!(
                        "{} received during a C-GET",
                        field::name(command.command_field)
                    )));
                }
                Event::ReleaseRequested => return Err(AssocError::protocol("release requested during a C-GET")),
            }
        }
    }

    /// Sends an N-EVENT-REPORT-RQ and waits for its response status.
    pub async fn event_report(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        event_type: u16,
        data: &[u8],
    ) -> Result<u16, AssocError> {
        let ctx = self.context_for(sop_class)?;
        let id = self.next_message_id();
        let mut c = Command::new(field::N_EVENT_REPORT_RQ);
        c.affected_sop_class_uid = Some(sop_class.into());
        c.affected_sop_instance_uid = Some(sop_instance.into());
        c.event_type_id = Some(event_type);
        c.message_id = Some(id);
        self.send(ctx, &c, Some(data)).await?;
        let (_, rsp, _) = self.response(id).await?;
        Ok(rsp.status.unwrap_or(status::PROCESSING_FAILURE))
    }
}
