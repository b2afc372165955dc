//! C-MOVE and C-GET as SCP: the instances an identifier designates are sent
//! as C-STORE sub-operations — to the move destination on a new association,
//! or back on the requesting association — with a pending response after
//! each, cancel honoured between sub-operations, and the failed SOP
//! instances listed in the final response.
//!
//! Instances are loaded ahead of sending (a small prefetch queue) so that
//! reading the store and writing the network overlap. An instance stored in
//! a syntax the receiver did not accept is re-encoded when that loses
//! nothing (between native encodings); otherwise its sub-operation fails.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use yunying_dicom::ts;

use crate::assoc::{AssocError, Association, Event};
use crate::command::{Command, field};
use crate::scp::Scp;
use crate::scu::{self, Proposal, Requestor};
use crate::service::{Outcome, RetrieveItem, Services};
use crate::status;
use crate::uids::QueryModel;

/// Instances loaded ahead of the one being sent.
const PREFETCH: usize = 4;

#[derive(Debug, Default)]
struct Tally {
    remaining: usize,
    completed: usize,
    failed: usize,
    warning: usize,
    failed_uids: Vec<String>,
}

impl Tally {
    fn counts(&self, rsp: &mut Command, with_remaining: bool) {
        let c = |n: usize| Some(n.min(u16::MAX as usize) as u16);
        rsp.remaining = if with_remaining { c(self.remaining) } else { None };
        rsp.completed = c(self.completed);
        rsp.failed = c(self.failed);
        rsp.warning = c(self.warning);
    }

    fn fail(&mut self, item: &RetrieveItem, why: &str) {
        tracing::warn!(sop = %item.sop_instance_uid, reason = why, "sub-operation failed");
        self.failed += 1;
        self.failed_uids.push(item.sop_instance_uid.clone());
    }

    /// The final status (PS3.4 C.4.2.1.5, C.4.3.1.4).
    fn final_status(&self, cancelled: bool) -> u16 {
        if cancelled {
            status::CANCEL
        } else if self.failed > 0 && self.completed == 0 && self.warning == 0 {
            status::OUT_OF_RESOURCES_SUB_OPERATIONS
        } else if self.failed > 0 || self.warning > 0 {
            status::SUB_OPERATIONS_FAILED
        } else {
            status::SUCCESS
        }
    }
}

/// The Failed SOP Instance UID List (0008,0058) as a data set in `transfer_syntax`.
fn failed_list(uids: &[String], transfer_syntax: &str) -> Vec<u8> {
    let mut value = String::new();
    for u in uids {
        if value.len() + u.len() + 1 > 0xFFF0 {
            break;
        }
        if !value.is_empty() {
            value.push('\\');
        }
        value.push_str(u);
    }
    let mut v = value.into_bytes();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    let mut out = Vec::with_capacity(v.len() + 12);
    out.extend_from_slice(&0x0008u16.to_le_bytes());
    out.extend_from_slice(&0x0058u16.to_le_bytes());
    if transfer_syntax == ts::IMPLICIT_VR_LE {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(b"UI");
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&v);
    out
}

/// The contexts to propose to send `items`: per SOP class, one context per
/// compressed syntax stored, and one of native syntaxes, offered for
/// compressed instances too when `can(stored, Explicit VR Little Endian)`:
/// the archive then decodes for a receiver that takes no compressed syntax.
pub fn storage_proposals(items: &[RetrieveItem], can: &dyn Fn(&str, &str) -> bool) -> Vec<Proposal> {
    let mut out: Vec<Proposal> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for it in items {
        let native = ts::is_native(&it.transfer_syntax);
        if !native && seen.insert((it.sop_class_uid.clone(), it.transfer_syntax.clone())) {
            out.push(Proposal::new(&it.sop_class_uid, &[&it.transfer_syntax]));
        }
        let decodable = native || can(&it.transfer_syntax, ts::EXPLICIT_VR_LE);
        if decodable && seen.insert((it.sop_class_uid.clone(), String::new())) {
            out.push(Proposal::new(&it.sop_class_uid, &[ts::EXPLICIT_VR_LE, ts::IMPLICIT_VR_LE]));
        }
        if out.len() >= 127 {
            break;
        }
    }
    out
}

/// How an item goes out on an association.
pub enum Prepared {
    /// On this context, with these bytes.
    Ready(u8, Bytes),
    /// On this context, once the archive has transcoded it to this syntax.
    Transcode(u8, String),
}

/// Chooses the context to send `item` on and prepares its bytes: as stored,
/// converted between native syntaxes here, or (when `can(from, to)`) to be
/// transcoded by the archive.
fn prepare(
    assoc: &Association,
    item: &RetrieveItem,
    data: Bytes,
    need_role: bool,
    can: &dyn Fn(&str, &str) -> bool,
) -> Result<Prepared, String> {
    let usable = |c: &&crate::assoc::AcceptedContext| {
        c.abstract_syntax == item.sop_class_uid
            && (!need_role || assoc.negotiated().roles.is_empty() || assoc.negotiated().requestor_is_scp(&item.sop_class_uid))
    };
    let contexts: Vec<_> = assoc.negotiated().contexts.iter().filter(usable).collect();
    if let Some(c) = contexts.iter().find(|c| c.transfer_syntax == item.transfer_syntax) {
        return Ok(Prepared::Ready(c.id, data));
    }
    for c in &contexts {
        if yunying_dicom::reencode::can_reencode(&item.transfer_syntax, &c.transfer_syntax) {
            let out = yunying_dicom::reencode::reencode_dataset(&data, &item.transfer_syntax, &c.transfer_syntax)
                .map_err(|e| format!("cannot convert to {}: {e}", c.transfer_syntax))?;
            return Ok(Prepared::Ready(c.id, Bytes::from(out)));
        }
    }
    // Explicit little endian first: the archive's decoder output needs no
    // further conversion there.
    let mut order: Vec<_> = contexts.iter().collect();
    order.sort_by_key(|c| c.transfer_syntax != ts::EXPLICIT_VR_LE);
    if let Some(c) = order.into_iter().find(|c| can(&item.transfer_syntax, &c.transfer_syntax)) {
        return Ok(Prepared::Transcode(c.id, c.transfer_syntax.clone()));
    }
    if contexts.is_empty() {
        Err(format!("the receiver accepted no presentation context for SOP class {}", item.sop_class_uid))
    } else {
        Err(format!(
            "the receiver accepts none of the transfer syntaxes the instance can be sent in (stored as {})",
            item.transfer_syntax
        ))
    }
}

/// Has `services` transcode `item` when `prepared` says so.
async fn ready<S: Services + ?Sized>(
    services: &S,
    item: &RetrieveItem,
    data: Bytes,
    prepared: Result<Prepared, String>,
) -> Result<(u8, Bytes), String> {
    match prepared? {
        Prepared::Ready(c, b) => Ok((c, b)),
        Prepared::Transcode(c, to) => Ok((c, services.transcode(item, data, &to).await?)),
    }
}

/// Chooses the context to send `item` on (as a C-STORE SCU on an association
/// we opened): as stored, converted between native syntaxes here, or to be
/// transcoded by the caller (when `can(stored, accepted)`).
pub fn prepare_for(
    assoc: &Association,
    item: &RetrieveItem,
    data: Bytes,
    can: &dyn Fn(&str, &str) -> bool,
) -> Result<Prepared, String> {
    prepare(assoc, item, data, false, can)
}

/// Loads the items in order, a few ahead of the sender.
fn spawn_loader<S: Services>(services: Arc<S>, items: Vec<RetrieveItem>) -> mpsc::Receiver<(RetrieveItem, Result<Bytes, String>)> {
    let (tx, rx) = mpsc::channel(PREFETCH);
    tokio::spawn(async move {
        for item in items {
            let data = services.load(&item).await;
            if tx.send((item, data)).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn sub_result(tally: &mut Tally, item: &RetrieveItem, rsp: &Command) {
    match rsp.status.map(status::class) {
        Some(status::Class::Success) => tally.completed += 1,
        Some(status::Class::Warning) => tally.warning += 1,
        _ => tally.fail(
            item,
            &format!(
                "the receiver answered status 0x{:04X} {}",
                rsp.status.unwrap_or(0xFFFF),
                rsp.error_comment.as_deref().unwrap_or("")
            ),
        ),
    }
}

async fn final_response(
    assoc: &mut Association,
    ctx: u8,
    request: &Command,
    rsp_field: u16,
    tally: &Tally,
    cancelled: bool,
    comment: Option<String>,
) -> Result<(), AssocError> {
    let ts = assoc.context_transfer_syntax(ctx).unwrap_or_default().to_string();
    let mut rsp = Command::response_to(request, rsp_field, tally.final_status(cancelled));
    tally.counts(&mut rsp, cancelled);
    rsp.error_comment = comment;
    if tally.failed_uids.is_empty() {
        assoc.send(ctx, &rsp, None).await
    } else {
        assoc.send(ctx, &rsp, Some(&failed_list(&tally.failed_uids, &ts))).await
    }
}

async fn refuse(assoc: &mut Association, ctx: u8, request: &Command, rsp_field: u16, o: Outcome) -> Result<(), AssocError> {
    tracing::warn!(command = field::name(request.command_field), status = o.status, comment = ?o.comment, "retrieve refused");
    let mut rsp = Command::response_to(request, rsp_field, o.status);
    rsp.error_comment = o.comment;
    assoc.send(ctx, &rsp, None).await
}

pub(crate) async fn c_move<S: Services>(
    scp: &Arc<Scp<S>>,
    assoc: &mut Association,
    peer: &S::Peer,
    ctx: u8,
    command: &Command,
    model: QueryModel,
) -> Result<(), AssocError> {
    let ts = assoc.context_transfer_syntax(ctx).unwrap_or_default().to_string();
    let identifier = assoc.read_data_set(scp.config.max_identifier_bytes).await?;
    let rsp_field = field::C_MOVE_RSP;
    let message_id = command.message_id.unwrap_or(0);
    let dest_ae = command.move_destination.clone().unwrap_or_default();
    let Some(dest) = scp.services.move_destination(peer, &dest_ae).await else {
        let o = Outcome::failure(status::MOVE_DESTINATION_UNKNOWN, format!("move destination {dest_ae:?} unknown"));
        return refuse(assoc, ctx, command, rsp_field, o).await;
    };
    let items = match scp.services.retrieve(peer, model, identifier, &ts).await {
        Ok(i) => i,
        Err(o) => return refuse(assoc, ctx, command, rsp_field, o).await,
    };
    let mut tally = Tally { remaining: items.len(), ..Default::default() };
    if items.is_empty() {
        return final_response(assoc, ctx, command, rsp_field, &tally, false, None).await;
    }
    let requestor = Requestor {
        calling_ae: scp.config.ae_title.clone(),
        called_ae: dest.ae_title.clone(),
        address: format!("{}:{}", dest.host, dest.port),
        max_pdu: scp.config.max_pdu,
        connect_timeout: Duration::from_secs(10),
        idle_timeout: scp.config.idle_timeout,
        // Destinations are registered by host and port only: plain TCP.
        tls: None,
    };
    let started = std::time::Instant::now();
    let total = items.len();
    let proposals = storage_proposals(&items, &|f, t| scp.services.can_transcode(f, t));
    let mut sub = match scu::associate(&requestor, &proposals, &[]).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(destination = %dest_ae, address = %requestor.address, error = %e, "C-MOVE destination unreachable");
            for it in &items {
                tally.failed += 1;
                tally.failed_uids.push(it.sop_instance_uid.clone());
            }
            tally.remaining = 0;
            let comment = Some(format!("cannot open an association to {dest_ae}: {e}"));
            return final_response(assoc, ctx, command, rsp_field, &tally, false, comment).await;
        }
    };
    let originator = assoc.negotiated().calling_ae.clone();
    let mut loader = spawn_loader(scp.services.clone(), items);
    let mut cancelled = false;
    let mut broken: Option<String> = None;
    while let Some((item, data)) = loader.recv().await {
        if broken.is_some() {
            tally.fail(&item, "the sub-association failed");
            tally.remaining -= 1;
            continue;
        }
        if assoc.cancelled(message_id) {
            cancelled = true;
            break;
        }
        tally.remaining -= 1;
        let prepared = match data {
            Ok(d) => {
                let p = prepare(&sub, &item, d.clone(), false, &|f, t| scp.services.can_transcode(f, t));
                ready(scp.services.as_ref(), &item, d, p).await
            }
            Err(e) => Err(e),
        };
        match prepared {
            Err(why) => tally.fail(&item, &why),
            Ok((sctx, bytes)) => {
                match sub
                    .store(sctx, &item.sop_class_uid, &item.sop_instance_uid, &[bytes], Some((&originator, message_id)))
                    .await
                {
                    Ok(rsp) => sub_result(&mut tally, &item, &rsp),
                    Err(e) => {
                        tally.fail(&item, &e.to_string());
                        broken = Some(e.to_string());
                    }
                }
            }
        }
        let mut rsp = Command::response_to(command, rsp_field, status::PENDING);
        tally.counts(&mut rsp, true);
        assoc.send(ctx, &rsp, None).await?;
    }
    drop(loader);
    if broken.is_none() {
        if let Err(e) = sub.release().await {
            tracing::debug!(error = %e, "C-MOVE sub-association release");
        }
    } else {
        sub.abort(crate::pdu::Abort::USER).await;
    }
    tracing::info!(
        destination = %dest_ae, total, completed = tally.completed, failed = tally.failed,
        warning = tally.warning, cancelled, ms = started.elapsed().as_millis() as u64, "C-MOVE finished"
    );
    final_response(assoc, ctx, command, rsp_field, &tally, cancelled, broken).await
}

pub(crate) async fn c_get<S: Services>(
    scp: &Arc<Scp<S>>,
    assoc: &mut Association,
    peer: &S::Peer,
    ctx: u8,
    command: &Command,
    model: QueryModel,
) -> Result<(), AssocError> {
    let ts = assoc.context_transfer_syntax(ctx).unwrap_or_default().to_string();
    let identifier = assoc.read_data_set(scp.config.max_identifier_bytes).await?;
    let rsp_field = field::C_GET_RSP;
    let message_id = command.message_id.unwrap_or(0);
    let items = match scp.services.retrieve(peer, model, identifier, &ts).await {
        Ok(i) => i,
        Err(o) => return refuse(assoc, ctx, command, rsp_field, o).await,
    };
    let started = std::time::Instant::now();
    let total = items.len();
    let mut tally = Tally { remaining: items.len(), ..Default::default() };
    let mut loader = spawn_loader(scp.services.clone(), items);
    let mut cancelled = false;
    while let Some((item, data)) = loader.recv().await {
        if assoc.cancelled(message_id) {
            cancelled = true;
            break;
        }
        tally.remaining -= 1;
        let prepared = match data {
            Ok(d) => {
                let p = prepare(assoc, &item, d.clone(), true, &|f, t| scp.services.can_transcode(f, t));
                ready(scp.services.as_ref(), &item, d, p).await
            }
            Err(e) => Err(e),
        };
        match prepared {
            Err(why) => tally.fail(&item, &why),
            Ok((sctx, bytes)) => {
                let id = assoc.next_message_id();
                let mut rq = Command::new(field::C_STORE_RQ);
                rq.affected_sop_class_uid = Some(item.sop_class_uid.clone());
                rq.affected_sop_instance_uid = Some(item.sop_instance_uid.clone());
                rq.message_id = Some(id);
                rq.priority = Some(crate::command::priority::MEDIUM);
                assoc.send_parts(sctx, &rq, &[bytes]).await?;
                // The store's response; a cancel of the C-GET may come first.
                loop {
                    match assoc.next_event().await? {
                        Event::Command { command: c, .. } if c.command_field == field::C_CANCEL_RQ => {
                            if c.message_id_being_responded_to == Some(message_id) {
                                cancelled = true;
                            }
                        }
                        Event::Command { command: c, .. }
                            if c.command_field == field::C_STORE_RSP && c.message_id_being_responded_to == Some(id) =>
                        {
                            if c.has_data_set() {
                                assoc.read_data_set(1 << 20).await?;
                            }
                            sub_result(&mut tally, &item, &c);
                            break;
                        }
                        Event::Command { command: c, .. } => {
                            return Err(AssocError::protocol(format!(
                                "{} received during C-GET sub-operations",
                                field::name(c.command_field)
                            )));
                        }
                        Event::ReleaseRequested => {
                            return Err(AssocError::protocol("release requested during a C-GET"));
                        }
                    }
                }
            }
        }
        if cancelled {
            break;
        }
        // Flushed with the next C-STORE or the final response.
        let mut rsp = Command::response_to(command, rsp_field, status::PENDING);
        tally.counts(&mut rsp, true);
        assoc.send_buffered(ctx, &rsp, None).await?;
    }
    tracing::info!(
        total, completed = tally.completed, failed = tally.failed, warning = tally.warning, cancelled,
        ms = started.elapsed().as_millis() as u64, "C-GET finished"
    );
    final_response(assoc, ctx, command, rsp_field, &tally, cancelled, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_list_encodings() {
        let uids = vec!["1.2.3".to_string(), "1.2.45".to_string()];
        let implicit = failed_list(&uids, ts::IMPLICIT_VR_LE);
        assert_eq!(&implicit[4..8], &12u32.to_le_bytes());
        assert_eq!(&implicit[8..], b"1.2.3\\1.2.45");
        let explicit = failed_list(&uids, ts::EXPLICIT_VR_LE);
        assert_eq!(&explicit[4..6], b"UI");
    }

    #[test]
    fn statuses() {
        let t = Tally { completed: 3, ..Default::default() };
        assert_eq!(t.final_status(false), status::SUCCESS);
        let t = Tally { completed: 3, failed: 1, ..Default::default() };
        assert_eq!(t.final_status(false), status::SUB_OPERATIONS_FAILED);
        let t = Tally { failed: 2, ..Default::default() };
        assert_eq!(t.final_status(false), status::OUT_OF_RESOURCES_SUB_OPERATIONS);
        assert_eq!(t.final_status(true), status::CANCEL);
    }
}
