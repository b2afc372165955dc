//! Storage Commitment Push Model as SCP (PS3.4 Annex J): N-ACTION asks the
//! archive to commit to keeping a list of instances; the answer comes as an
//! N-EVENT-REPORT listing what is held durably and what is not.
//!
//! The report is sent on the requesting association right after the
//! N-ACTION response. If the requestor releases before confirming it, the
//! report is delivered on a new association to the requestor's registered
//! address (we act as SCU of the N-EVENT-REPORT, with SCP/SCU role selection),
//! retried with backoff.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use yunying_dicom::parse::{ParseOptions, parse_dataset};
use yunying_dicom::{Tag, ts};

use crate::assoc::{AssocError, Association};
use crate::command::{Command, field};
use crate::pdu::RoleSelection;
use crate::scp::Scp;
use crate::scu::{self, Proposal, Requestor};
use crate::service::{Services, SopRef};
use crate::status;
use crate::uids::{STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_PUSH_INSTANCE};

/// A commitment report to deliver.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    transaction_uid: String,
    committed: Vec<SopRef>,
    failed: Vec<(SopRef, u16)>,
    retrieve_ae: String,
}

impl Report {
    /// Event type 1: all committed; 2: some failures.
    fn event_type(&self) -> u16 {
        if self.failed.is_empty() { 1 } else { 2 }
    }

    fn encode(&self, transfer_syntax: &str) -> Vec<u8> {
        let explicit = transfer_syntax != ts::IMPLICIT_VR_LE;
        let mut d = Writer::new(explicit);
        if !self.committed.is_empty() {
            d.text(0x0008, 0x0054, b"AE", &self.retrieve_ae, b' ');
        }
        d.text(0x0008, 0x1195, b"UI", &self.transaction_uid, 0);
        if !self.failed.is_empty() {
            let items = self
                .failed
                .iter()
                .map(|(r, reason)| {
                    let mut i = Writer::new(explicit);
                    i.text(0x0008, 0x1150, b"UI", &r.sop_class_uid, 0);
                    i.text(0x0008, 0x1155, b"UI", &r.sop_instance_uid, 0);
                    i.us(0x0008, 0x1197, *reason);
                    i.out
                })
                .collect();
            d.sequence(0x0008, 0x1198, items);
        }
        if !self.committed.is_empty() {
            let items = self
                .committed
                .iter()
                .map(|r| {
                    let mut i = Writer::new(explicit);
                    i.text(0x0008, 0x1150, b"UI", &r.sop_class_uid, 0);
                    i.text(0x0008, 0x1155, b"UI", &r.sop_instance_uid, 0);
                    i.out
                })
                .collect();
            d.sequence(0x0008, 0x1199, items);
        }
        d.out
    }
}

/// A minimal little-endian data set writer for the report's few elements.
struct Writer {
    explicit: bool,
    out: Vec<u8>,
}

impl Writer {
    fn new(explicit: bool) -> Writer {
        Writer { explicit, out: Vec::new() }
    }
    fn header(&mut self, g: u16, e: u16, vr: &[u8; 2], len: u32) {
        self.out.extend_from_slice(&g.to_le_bytes());
        self.out.extend_from_slice(&e.to_le_bytes());
        if self.explicit {
            self.out.extend_from_slice(vr);
            if vr == b"SQ" {
                self.out.extend_from_slice(&[0, 0]);
                self.out.extend_from_slice(&len.to_le_bytes());
            } else {
                self.out.extend_from_slice(&(len as u16).to_le_bytes());
            }
        } else {
            self.out.extend_from_slice(&len.to_le_bytes());
        }
    }
    fn text(&mut self, g: u16, e: u16, vr: &[u8; 2], v: &str, pad: u8) {
        let mut b = v.as_bytes().to_vec();
        if b.len() % 2 == 1 {
            b.push(pad);
        }
        self.header(g, e, vr, b.len() as u32);
        self.out.extend_from_slice(&b);
    }
    fn us(&mut self, g: u16, e: u16, v: u16) {
        self.header(g, e, b"US", 2);
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// A sequence of undefined length, items of undefined length.
    fn sequence(&mut self, g: u16, e: u16, items: Vec<Vec<u8>>) {
        self.header(g, e, b"SQ", 0xFFFF_FFFF);
        for item in items {
            self.out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
            self.out.extend_from_slice(&item);
            self.out.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        }
        self.out.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    }
}

/// Reports sent on an association and not yet confirmed.
#[derive(Debug, Default)]
pub(crate) struct PendingReports {
    sent: Vec<(u16, Report)>,
}

impl PendingReports {
    pub(crate) fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }
    pub(crate) fn confirmed(&mut self, message_id: Option<u16>) {
        self.sent.retain(|(id, _)| Some(*id) != message_id);
    }
}

/// The transaction and references of an N-ACTION request.
fn parse_request(data: &[u8], transfer_syntax: &str) -> Result<(String, Vec<SopRef>), String> {
    let ds = parse_dataset(&mut Cursor::new(data), data.len() as u64, transfer_syntax, &ParseOptions::default())
        .map_err(|e| format!("unreadable N-ACTION data set: {e}"))?;
    let transaction = ds
        .ascii(Tag(0x0008, 0x1195))
        .map(|s| yunying_util::uid::trim_padding(&s).to_string())
        .filter(|s| !s.is_empty())
        .ok_or("Transaction UID (0008,1195) is missing")?;
    let items = ds.items(Tag(0x0008, 0x1199)).ok_or("Referenced SOP Sequence (0008,1199) is missing")?;
    let mut refs = Vec::with_capacity(items.len());
    for item in items {
        let get = |t: Tag| item.ascii(t).map(|s| yunying_util::uid::trim_padding(&s).to_string()).unwrap_or_default();
        refs.push(SopRef { sop_class_uid: get(Tag(0x0008, 0x1150)), sop_instance_uid: get(Tag(0x0008, 0x1155)) });
    }
    Ok((transaction, refs))
}

pub(crate) async fn n_action<S: Services>(
    scp: &Arc<Scp<S>>,
    assoc: &mut Association,
    peer: &S::Peer,
    ctx: u8,
    command: &Command,
    reports: &mut PendingReports,
) -> Result<(), AssocError> {
    let ts = assoc.context_transfer_syntax(ctx).unwrap_or_default().to_string();
    let data = if command.has_data_set() { assoc.read_data_set(16 << 20).await? } else { Default::default() };
    let respond = |st: u16, comment: Option<String>| {
        let mut rsp = Command::response_to(command, field::N_ACTION_RSP, st);
        rsp.action_type_id = command.action_type_id;
        rsp.error_comment = comment;
        rsp
    };
    if command.action_type_id != Some(1) {
        let rsp = respond(status::NO_SUCH_ACTION_TYPE, Some("only action type 1 (request commitment) exists".into()));
        return assoc.send(ctx, &rsp, None).await;
    }
    let (transaction_uid, refs) = match parse_request(&data, &ts) {
        Ok(x) => x,
        Err(why) => {
            tracing::warn!(reason = %why, "storage commitment request refused");
            return assoc.send(ctx, &respond(status::INVALID_ARGUMENT_VALUE, Some(why)), None).await;
        }
    };
    let results = scp.services.commit(peer, &refs).await;
    let mut report =
        Report { transaction_uid, committed: Vec::new(), failed: Vec::new(), retrieve_ae: scp.config.ae_title.clone() };
    for (r, res) in refs.into_iter().zip(results) {
        match res {
            None => report.committed.push(r),
            Some(reason) => report.failed.push((r, reason)),
        }
    }
    tracing::info!(
        transaction = %report.transaction_uid, committed = report.committed.len(), failed = report.failed.len(),
        "storage commitment"
    );
    assoc.send(ctx, &respond(status::SUCCESS, None), None).await?;
    // The report, on this association.
    let id = assoc.next_message_id();
    let mut ev = Command::new(field::N_EVENT_REPORT_RQ);
    ev.affected_sop_class_uid = Some(STORAGE_COMMITMENT_PUSH.into());
    ev.affected_sop_instance_uid = Some(STORAGE_COMMITMENT_PUSH_INSTANCE.into());
    ev.event_type_id = Some(report.event_type());
    ev.message_id = Some(id);
    let bytes = report.encode(&ts);
    reports.sent.push((id, report));
    assoc.send(ctx, &ev, Some(&bytes)).await
}

/// Delivers unconfirmed reports on new associations, in the background.
pub(crate) fn deliver_later<S: Services>(scp: Arc<Scp<S>>, peer: S::Peer, reports: PendingReports) {
    tokio::spawn(async move {
        let Some(dest) = scp.services.commitment_destination(&peer).await else {
            tracing::warn!(
                reports = reports.sent.len(),
                "storage commitment reports not confirmed, and the requestor has no registered address to send them to"
            );
            return;
        };
        for (_, report) in reports.sent {
            let mut delay = Duration::from_secs(2);
            for attempt in 1..=5 {
                match deliver(&scp.config.ae_title, &dest, &report).await {
                    Ok(()) => {
                        tracing::info!(transaction = %report.transaction_uid, to = %dest.ae_title, "storage commitment report delivered");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(transaction = %report.transaction_uid, to = %dest.ae_title, attempt, error = %e, "storage commitment report not delivered");
                        tokio::time::sleep(delay).await;
                        delay *= 4;
                    }
                }
            }
        }
    });
}

async fn deliver(our_ae: &str, dest: &crate::service::RemoteAe, report: &Report) -> Result<(), AssocError> {
    let req = Requestor::new(our_ae, &dest.ae_title, &format!("{}:{}", dest.host, dest.port));
    let roles = [RoleSelection { sop_class: STORAGE_COMMITMENT_PUSH.into(), scu: false, scp: true }];
    let mut assoc = scu::associate(&req, &[Proposal::native(STORAGE_COMMITMENT_PUSH)], &roles).await?;
    let ts = assoc.negotiated().contexts[0].transfer_syntax.clone();
    let st = assoc
        .event_report(STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_PUSH_INSTANCE, report.event_type(), &report.encode(&ts))
        .await?;
    let _ = assoc.release().await;
    if status::class(st) == status::Class::Failure {
        return Err(AssocError::protocol(format!("the requestor answered status 0x{st:04X}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_roundtrip_through_our_parser() {
        let r = Report {
            transaction_uid: "1.2.3.4".into(),
            committed: vec![SopRef { sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(), sop_instance_uid: "1.2.3.5".into() }],
            failed: vec![(SopRef { sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(), sop_instance_uid: "1.2.3.6".into() }, 0x0112)],
            retrieve_ae: "YUNYING".into(),
        };
        for syntax in [ts::IMPLICIT_VR_LE, ts::EXPLICIT_VR_LE] {
            let bytes = r.encode(syntax);
            let ds = parse_dataset(&mut Cursor::new(&bytes), bytes.len() as u64, syntax, &ParseOptions::default()).unwrap();
            assert_eq!(ds.items(Tag(0x0008, 0x1199)).unwrap().len(), 1);
            assert_eq!(ds.items(Tag(0x0008, 0x1198)).unwrap().len(), 1);
            // The same layout parses as a request (transaction + references).
            let (t, refs) = parse_request(&bytes, syntax).unwrap();
            assert_eq!(t, "1.2.3.4");
            assert_eq!(refs[0].sop_instance_uid, "1.2.3.5");
        }
    }
}
