//! Upper-layer PDUs (PS3.8 §9.3): their types, and their encoding and
//! decoding with every length checked against the bytes actually present.
//!
//! Decoding never trusts a declared length: an item that claims more bytes
//! than its parent holds is an error, not an allocation. P-DATA values are
//! slices of the received buffer (no copy).

use bytes::{BufMut, Bytes};

/// PDU type codes.
pub mod kind {
    pub const ASSOCIATE_RQ: u8 = 0x01;
    pub const ASSOCIATE_AC: u8 = 0x02;
    pub const ASSOCIATE_RJ: u8 = 0x03;
    pub const P_DATA_TF: u8 = 0x04;
    pub const RELEASE_RQ: u8 = 0x05;
    pub const RELEASE_RP: u8 = 0x06;
    pub const ABORT: u8 = 0x07;
}

/// The DICOM application context name (the only one there is).
pub const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// Largest PDU other than P-DATA we accept (an A-ASSOCIATE-RQ with 128
/// presentation contexts of many transfer syntaxes is a few tens of KiB).
pub const MAX_CONTROL_PDU: u32 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("malformed PDU: {0}")]
    Malformed(String),
    #[error("unknown PDU type 0x{0:02X}")]
    UnknownType(u8),
    #[error("PDU of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u32, max: u32 },
}

fn bad(msg: impl Into<String>) -> PduError {
    PduError::Malformed(msg.into())
}

/// A decoded PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    AssociateRq(AssociateRq),
    AssociateAc(AssociateAc),
    AssociateRj(AssociateRj),
    PData(Vec<Pdv>),
    ReleaseRq,
    ReleaseRp,
    Abort(Abort),
}

/// A-ASSOCIATE-RQ.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociateRq {
    pub protocol_version: u16,
    pub called_ae: String,
    pub calling_ae: String,
    pub application_context: String,
    pub contexts: Vec<ProposedContext>,
    pub user: UserInfo,
}

/// A presentation context as proposed by the requestor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProposedContext {
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntaxes: Vec<String>,
}

/// A-ASSOCIATE-AC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociateAc {
    pub protocol_version: u16,
    pub called_ae: String,
    pub calling_ae: String,
    pub application_context: String,
    pub contexts: Vec<ContextResult>,
    pub user: UserInfo,
}

/// The acceptor's answer for one presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextResult {
    pub id: u8,
    pub result: u8,
    /// The chosen transfer syntax (meaningless unless accepted).
    pub transfer_syntax: String,
}

/// Presentation context results (PS3.8 §9.3.3.2).
pub mod context_result {
    pub const ACCEPTANCE: u8 = 0;
    pub const USER_REJECTION: u8 = 1;
    pub const NO_REASON: u8 = 2;
    pub const ABSTRACT_SYNTAX_NOT_SUPPORTED: u8 = 3;
    pub const TRANSFER_SYNTAXES_NOT_SUPPORTED: u8 = 4;
}

/// A-ASSOCIATE-RJ (PS3.8 §9.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociateRj {
    /// 1 rejected-permanent, 2 rejected-transient.
    pub result: u8,
    /// 1 service user, 2 service provider (ACSE), 3 service provider (presentation).
    pub source: u8,
    pub reason: u8,
}

impl AssociateRj {
    /// Calling AE title not recognised (permanent, service user).
    pub const CALLING_AE_NOT_RECOGNIZED: AssociateRj = AssociateRj { result: 1, source: 1, reason: 3 };
    /// Called AE title not recognised (permanent, service user).
    pub const CALLED_AE_NOT_RECOGNIZED: AssociateRj = AssociateRj { result: 1, source: 1, reason: 7 };
    /// Application context not supported (permanent, service user).
    pub const APPLICATION_CONTEXT_NOT_SUPPORTED: AssociateRj = AssociateRj { result: 1, source: 1, reason: 2 };
    /// No reason given (permanent, service user).
    pub const NO_REASON: AssociateRj = AssociateRj { result: 1, source: 1, reason: 1 };
    /// Protocol version not supported (permanent, ACSE provider).
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: AssociateRj = AssociateRj { result: 1, source: 2, reason: 2 };
    /// Local limit exceeded: too many associations (transient, presentation provider).
    pub const LOCAL_LIMIT_EXCEEDED: AssociateRj = AssociateRj { result: 2, source: 3, reason: 2 };
    /// Temporary congestion (transient, presentation provider).
    pub const TEMPORARY_CONGESTION: AssociateRj = AssociateRj { result: 2, source: 3, reason: 1 };
}

/// A-ABORT (PS3.8 §9.3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    /// 0 service user, 2 service provider.
    pub source: u8,
    /// For provider aborts: 0 not specified, 1 unrecognised PDU, 2 unexpected
    /// PDU, 4 unrecognised PDU parameter, 5 unexpected parameter, 6 invalid parameter value.
    pub reason: u8,
}

impl Abort {
    pub const USER: Abort = Abort { source: 0, reason: 0 };
    pub const UNRECOGNIZED_PDU: Abort = Abort { source: 2, reason: 1 };
    pub const UNEXPECTED_PDU: Abort = Abort { source: 2, reason: 2 };
    pub const INVALID_PARAMETER: Abort = Abort { source: 2, reason: 6 };
}

/// User information (PS3.7 Annex D, PS3.8 Annex D).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// Largest P-DATA PDU this side can receive (0: no limit).
    pub max_pdu_length: u32,
    pub implementation_class_uid: String,
    pub implementation_version_name: Option<String>,
    /// Asynchronous operations window (invoked, performed).
    pub async_ops: Option<(u16, u16)>,
    pub roles: Vec<RoleSelection>,
    pub extended: Vec<ExtendedNegotiation>,
    /// SOP Class Common Extended Negotiation items, kept raw (we do not use them).
    pub common_extended: Vec<Bytes>,
    pub user_identity: Option<UserIdentity>,
    /// Server response of the user identity negotiation (in an A-ASSOCIATE-AC).
    pub user_identity_response: Option<Bytes>,
}

/// SCP/SCU role selection for one SOP class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSelection {
    pub sop_class: String,
    pub scu: bool,
    pub scp: bool,
}

/// SOP class extended negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedNegotiation {
    pub sop_class: String,
    pub info: Bytes,
}

/// User identity negotiation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// 1 username, 2 username + passcode, 3 Kerberos, 4 SAML, 5 JWT.
    pub kind: u8,
    pub positive_response_requested: bool,
    pub primary: Bytes,
    pub secondary: Bytes,
}

/// One presentation data value of a P-DATA-TF PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    pub context_id: u8,
    /// Command (true) or data set (false) fragment.
    pub command: bool,
    /// Last fragment of the command or data set.
    pub last: bool,
    pub data: Bytes,
}

// --- decoding ------------------------------------------------------------

/// A bounded reader over a PDU body.
struct Cursor {
    buf: Bytes,
    pos: usize,
}

impl Cursor {
    fn new(buf: Bytes) -> Self {
        Cursor { buf, pos: 0 }
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize, what: &str) -> Result<Bytes, PduError> {
        if n > self.remaining() {
            return Err(bad(format!("{what}: {n} bytes declared, {} present", self.remaining())));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }
    fn u8(&mut self, what: &str) -> Result<u8, PduError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, PduError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, PduError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// An item: type, reserved byte, 2-byte length, value.
    fn item(&mut self) -> Result<(u8, Cursor), PduError> {
        let t = self.u8("item type")?;
        self.u8("item reserved byte")?;
        let len = self.u16("item length")? as usize;
        Ok((t, Cursor::new(self.take(len, "item")?)))
    }
    fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }
}

/// A UID or AE title from PDU bytes: ASCII, trailing NULs and spaces removed.
fn text(b: &[u8], what: &str) -> Result<String, PduError> {
    let s = std::str::from_utf8(b).map_err(|_| bad(format!("{what} is not ASCII")))?;
    if s.chars().any(|c| c.is_control() && c != '\0') {
        return Err(bad(format!("{what} holds control characters")));
    }
    Ok(s.trim_end_matches(['\0', ' ']).trim_start_matches(' ').to_string())
}

/// Decodes a PDU from its type and body (the 6-byte header already read).
pub fn decode(pdu_type: u8, body: Bytes) -> Result<Pdu, PduError> {
    let mut c = Cursor::new(body);
    match pdu_type {
        kind::ASSOCIATE_RQ => decode_associate_rq(&mut c).map(Pdu::AssociateRq),
        kind::ASSOCIATE_AC => decode_associate_ac(&mut c).map(Pdu::AssociateAc),
        kind::ASSOCIATE_RJ => {
            c.u8("reserved")?;
            Ok(Pdu::AssociateRj(AssociateRj { result: c.u8("result")?, source: c.u8("source")?, reason: c.u8("reason")? }))
        }
        kind::P_DATA_TF => decode_pdata(&mut c).map(Pdu::PData),
        kind::RELEASE_RQ => Ok(Pdu::ReleaseRq),
        kind::RELEASE_RP => Ok(Pdu::ReleaseRp),
        kind::ABORT => {
            c.u16("reserved")?;
            Ok(Pdu::Abort(Abort { source: c.u8("source")?, reason: c.u8("reason")? }))
        }
        other => Err(PduError::UnknownType(other)),
    }
}

fn decode_pdata(c: &mut Cursor) -> Result<Vec<Pdv>, PduError> {
    let mut pdvs = Vec::with_capacity(1);
    while c.remaining() > 0 {
        let len = c.u32("PDV length")? as usize;
        if len < 2 {
            return Err(bad("PDV shorter than its header"));
        }
        let mut item = Cursor::new(c.take(len, "PDV")?);
        let context_id = item.u8("PDV context")?;
        let control = item.u8("PDV control")?;
        if control & 0xFC != 0 {
            return Err(bad(format!("PDV control header 0x{control:02X} has reserved bits set")));
        }
        pdvs.push(Pdv { context_id, command: control & 1 != 0, last: control & 2 != 0, data: item.rest() });
    }
    if pdvs.is_empty() {
        return Err(bad("P-DATA-TF without any PDV"));
    }
    Ok(pdvs)
}

struct Header {
    protocol_version: u16,
    called_ae: String,
    calling_ae: String,
}

fn decode_header(c: &mut Cursor) -> Result<Header, PduError> {
    let protocol_version = c.u16("protocol version")?;
    c.u16("reserved")?;
    let called_ae = text(&c.take(16, "called AE title")?, "called AE title")?;
    let calling_ae = text(&c.take(16, "calling AE title")?, "calling AE title")?;
    c.take(32, "reserved")?;
    Ok(Header { protocol_version, called_ae, calling_ae })
}

fn decode_associate_rq(c: &mut Cursor) -> Result<AssociateRq, PduError> {
    let h = decode_header(c)?;
    let mut rq = AssociateRq {
        protocol_version: h.protocol_version,
        called_ae: h.called_ae,
        calling_ae: h.calling_ae,
        ..Default::default()
    };
    let mut have_user = false;
    while c.remaining() > 0 {
        let (t, mut item) = c.item()?;
        match t {
            0x10 => rq.application_context = text(&item.rest(), "application context")?,
            0x20 => {
                let id = item.u8("context id")?;
                item.take(3, "reserved")?;
                let mut pc = ProposedContext { id, ..Default::default() };
                while item.remaining() > 0 {
                    let (st, mut sub) = item.item()?;
                    match st {
                        0x30 => pc.abstract_syntax = text(&sub.rest(), "abstract syntax")?,
                        0x40 => pc.transfer_syntaxes.push(text(&sub.rest(), "transfer syntax")?),
                        other => return Err(bad(format!("unexpected item 0x{other:02X} in a presentation context"))),
                    }
                }
                rq.contexts.push(pc);
            }
            0x50 => {
                rq.user = decode_user_info(&mut item)?;
                have_user = true;
            }
            other => return Err(bad(format!("unexpected item 0x{other:02X} in A-ASSOCIATE-RQ"))),
        }
    }
    if rq.application_context.is_empty() {
        return Err(bad("A-ASSOCIATE-RQ without an application context"));
    }
    if !have_user {
        return Err(bad("A-ASSOCIATE-RQ without user information"));
    }
    Ok(rq)
}

fn decode_associate_ac(c: &mut Cursor) -> Result<AssociateAc, PduError> {
    let h = decode_header(c)?;
    let mut ac = AssociateAc {
        protocol_version: h.protocol_version,
        called_ae: h.called_ae,
        calling_ae: h.calling_ae,
        ..Default::default()
    };
    while c.remaining() > 0 {
        let (t, mut item) = c.item()?;
        match t {
            0x10 => ac.application_context = text(&item.rest(), "application context")?,
            0x21 => {
                let id = item.u8("context id")?;
                item.u8("reserved")?;
                let result = item.u8("result")?;
                item.u8("reserved")?;
                let mut transfer_syntax = String::new();
                while item.remaining() > 0 {
                    let (st, mut sub) = item.item()?;
                    if st == 0x40 {
                        transfer_syntax = text(&sub.rest(), "transfer syntax")?;
                    }
                }
                ac.contexts.push(ContextResult { id, result, transfer_syntax });
            }
            0x50 => ac.user = decode_user_info(&mut item)?,
            other => return Err(bad(format!("unexpected item 0x{other:02X} in A-ASSOCIATE-AC"))),
        }
    }
    Ok(ac)
}

fn decode_user_info(c: &mut Cursor) -> Result<UserInfo, PduError> {
    let mut u = UserInfo::default();
    while c.remaining() > 0 {
        let (t, mut item) = c.item()?;
        match t {
            0x51 => u.max_pdu_length = item.u32("maximum length")?,
            0x52 => u.implementation_class_uid = text(&item.rest(), "implementation class UID")?,
            0x53 => u.async_ops = Some((item.u16("operations invoked")?, item.u16("operations performed")?)),
            0x54 => {
                let n = item.u16("UID length")? as usize;
                let sop_class = text(&item.take(n, "SOP class UID")?, "SOP class UID")?;
                let scu = item.u8("SCU role")? != 0;
                let scp = item.u8("SCP role")? != 0;
                u.roles.push(RoleSelection { sop_class, scu, scp });
            }
            0x55 => u.implementation_version_name = Some(text(&item.rest(), "implementation version name")?),
            0x56 => {
                let n = item.u16("UID length")? as usize;
                let sop_class = text(&item.take(n, "SOP class UID")?, "SOP class UID")?;
                u.extended.push(ExtendedNegotiation { sop_class, info: item.rest() });
            }
            0x57 => u.common_extended.push(item.rest()),
            0x58 => {
                let kind = item.u8("user identity type")?;
                let positive_response_requested = item.u8("positive response requested")? != 0;
                let n = item.u16("primary field length")? as usize;
                let primary = item.take(n, "primary field")?;
                let n = item.u16("secondary field length")? as usize;
                let secondary = item.take(n, "secondary field")?;
                u.user_identity = Some(UserIdentity { kind, positive_response_requested, primary, secondary });
            }
            0x59 => {
                let n = item.u16("server response length")? as usize;
                u.user_identity_response = Some(item.take(n, "server response")?);
            }
            // Unknown user information items are ignored (PS3.8 §9.3.2.3).
            _ => {}
        }
    }
    Ok(u)
}

// --- encoding ------------------------------------------------------------

fn put_item(out: &mut Vec<u8>, t: u8, value: &[u8]) {
    out.put_u8(t);
    out.put_u8(0);
    out.put_u16(value.len().min(0xFFFF) as u16);
    out.extend_from_slice(&value[..value.len().min(0xFFFF)]);
}

fn nested(t: u8, out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    put_item(out, t, &inner);
}

fn ae_field(ae: &str) -> [u8; 16] {
    let mut f = [b' '; 16];
    for (d, s) in f.iter_mut().zip(ae.bytes()) {
        *d = s;
    }
    f
}

fn header_fields(out: &mut Vec<u8>, version: u16, called: &str, calling: &str) {
    out.put_u16(version);
    out.put_u16(0);
    out.extend_from_slice(&ae_field(called));
    out.extend_from_slice(&ae_field(calling));
    out.extend_from_slice(&[0u8; 32]);
}

fn user_info(out: &mut Vec<u8>, u: &UserInfo) {
    nested(0x50, out, |o| {
        put_item(o, 0x51, &u.max_pdu_length.to_be_bytes());
        put_item(o, 0x52, u.implementation_class_uid.as_bytes());
        if let Some((a, b)) = u.async_ops {
            let mut v = a.to_be_bytes().to_vec();
            v.extend_from_slice(&b.to_be_bytes());
            put_item(o, 0x53, &v);
        }
        for r in &u.roles {
            let mut v = (r.sop_class.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(r.sop_class.as_bytes());
            v.push(r.scu as u8);
            v.push(r.scp as u8);
            put_item(o, 0x54, &v);
        }
        if let Some(name) = &u.implementation_version_name {
            put_item(o, 0x55, name.as_bytes());
        }
        for e in &u.extended {
            let mut v = (e.sop_class.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(e.sop_class.as_bytes());
            v.extend_from_slice(&e.info);
            put_item(o, 0x56, &v);
        }
        if let Some(id) = &u.user_identity {
            let mut v = vec![id.kind, id.positive_response_requested as u8];
            v.extend_from_slice(&(id.primary.len() as u16).to_be_bytes());
            v.extend_from_slice(&id.primary);
            v.extend_from_slice(&(id.secondary.len() as u16).to_be_bytes());
            v.extend_from_slice(&id.secondary);
            put_item(o, 0x58, &v);
        }
        if let Some(resp) = &u.user_identity_response {
            let mut v = (resp.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(resp);
            put_item(o, 0x59, &v);
        }
    });
}

fn frame(pdu_type: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 6);
    out.put_u8(pdu_type);
    out.put_u8(0);
    out.put_u32(body.len() as u32);
    out.extend_from_slice(&body);
    out
}

/// Encodes a PDU, header included.
pub fn encode(pdu: &Pdu) -> Vec<u8> {
    match pdu {
        Pdu::AssociateRq(rq) => {
            let mut b = Vec::new();
            header_fields(&mut b, rq.protocol_version, &rq.called_ae, &rq.calling_ae);
            put_item(&mut b, 0x10, rq.application_context.as_bytes());
            for pc in &rq.contexts {
                nested(0x20, &mut b, |o| {
                    o.extend_from_slice(&[pc.id, 0, 0, 0]);
                    put_item(o, 0x30, pc.abstract_syntax.as_bytes());
                    for ts in &pc.transfer_syntaxes {
                        put_item(o, 0x40, ts.as_bytes());
                    }
                });
            }
            user_info(&mut b, &rq.user);
            frame(kind::ASSOCIATE_RQ, b)
        }
        Pdu::AssociateAc(ac) => {
            let mut b = Vec::new();
            header_fields(&mut b, ac.protocol_version, &ac.called_ae, &ac.calling_ae);
            put_item(&mut b, 0x10, ac.application_context.as_bytes());
            for pc in &ac.contexts {
                nested(0x21, &mut b, |o| {
                    o.extend_from_slice(&[pc.id, 0, pc.result, 0]);
                    put_item(o, 0x40, pc.transfer_syntax.as_bytes());
                });
            }
            user_info(&mut b, &ac.user);
            frame(kind::ASSOCIATE_AC, b)
        }
        Pdu::AssociateRj(rj) => frame(kind::ASSOCIATE_RJ, vec![0, rj.result, rj.source, rj.reason]),
        Pdu::PData(pdvs) => {
            let mut b = Vec::new();
            for p in pdvs {
                b.put_u32(p.data.len() as u32 + 2);
                b.put_u8(p.context_id);
                b.put_u8(p.command as u8 | ((p.last as u8) << 1));
                b.extend_from_slice(&p.data);
            }
            frame(kind::P_DATA_TF, b)
        }
        Pdu::ReleaseRq => frame(kind::RELEASE_RQ, vec![0; 4]),
        Pdu::ReleaseRp => frame(kind::RELEASE_RP, vec![0; 4]),
        Pdu::Abort(a) => frame(kind::ABORT, vec![0, 0, a.source, a.reason]),
    }
}

/// The 6-byte header of a P-DATA-TF PDU holding one PDV of `len` bytes,
/// followed by that PDV's own header (written before the value, which the
/// caller sends as is).
pub fn pdata_single_pdv_header(context_id: u8, command: bool, last: bool, len: usize) -> [u8; 12] {
    let pdv_len = len as u32 + 2;
    let pdu_len = pdv_len + 4;
    let mut h = [0u8; 12];
    h[0] = kind::P_DATA_TF;
    h[2..6].copy_from_slice(&pdu_len.to_be_bytes());
    h[6..10].copy_from_slice(&pdv_len.to_be_bytes());
    h[10] = context_id;
    h[11] = command as u8 | ((last as u8) << 1);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(p: Pdu) {
        let bytes = encode(&p);
        let body = Bytes::copy_from_slice(&bytes[6..]);
        assert_eq!(u32::from_be_bytes(bytes[2..6].try_into().unwrap()) as usize, body.len());
        assert_eq!(decode(bytes[0], body).unwrap(), p);
    }

    #[test]
    fn associate_roundtrip() {
        roundtrip(Pdu::AssociateRq(AssociateRq {
            protocol_version: 1,
            called_ae: "YUNYING".into(),
            calling_ae: "CT01".into(),
            application_context: APPLICATION_CONTEXT.into(),
            contexts: vec![ProposedContext {
                id: 1,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2.1".into(), "1.2.840.10008.1.2".into()],
            }],
            user: UserInfo {
                max_pdu_length: 16384,
                implementation_class_uid: "1.2.3".into(),
                implementation_version_name: Some("X".into()),
                async_ops: Some((1, 1)),
                roles: vec![RoleSelection { sop_class: "1.2.840.10008.5.1.4.1.1.2".into(), scu: false, scp: true }],
                extended: vec![ExtendedNegotiation { sop_class: "1.2".into(), info: Bytes::from_static(&[1, 0]) }],
                common_extended: vec![],
                user_identity: Some(UserIdentity {
                    kind: 2,
                    positive_response_requested: true,
                    primary: Bytes::from_static(b"u"),
                    secondary: Bytes::from_static(b"p"),
                }),
                user_identity_response: None,
            },
        }));
        roundtrip(Pdu::AssociateAc(AssociateAc {
            protocol_version: 1,
            called_ae: "YUNYING".into(),
            calling_ae: "CT01".into(),
            application_context: APPLICATION_CONTEXT.into(),
            contexts: vec![ContextResult { id: 1, result: 0, transfer_syntax: "1.2.840.10008.1.2.1".into() }],
            user: UserInfo { max_pdu_length: 0, implementation_class_uid: "1.2.3".into(), ..Default::default() },
        }));
        roundtrip(Pdu::AssociateRj(AssociateRj::CALLING_AE_NOT_RECOGNIZED));
        roundtrip(Pdu::ReleaseRq);
        roundtrip(Pdu::ReleaseRp);
        roundtrip(Pdu::Abort(Abort::UNEXPECTED_PDU));
        roundtrip(Pdu::PData(vec![
            Pdv { context_id: 1, command: true, last: true, data: Bytes::from_static(b"abcd") },
            Pdv { context_id: 1, command: false, last: false, data: Bytes::from_static(b"xy") },
        ]));
    }

    #[test]
    fn lengths_are_checked() {
        // A PDV claiming more bytes than the PDU holds.
        let body = Bytes::from_static(&[0, 0, 0, 100, 1, 3, 0, 0]);
        assert!(matches!(decode(kind::P_DATA_TF, body), Err(PduError::Malformed(_))));
        // An item claiming more than its parent.
        let mut rq = encode(&Pdu::AssociateRq(AssociateRq {
            protocol_version: 1,
            application_context: APPLICATION_CONTEXT.into(),
            ..Default::default()
        }));
        let user_info = 6 + 68 + 4 + APPLICATION_CONTEXT.len();
        assert_eq!(rq[user_info], 0x50);
        rq[user_info + 2] = 0xFF; // user info item length high byte
        assert!(decode(rq[0], Bytes::copy_from_slice(&rq[6..])).is_err());
    }

    #[test]
    fn single_pdv_header_matches_encoder() {
        let data = Bytes::from_static(b"0123456789");
        let full = encode(&Pdu::PData(vec![Pdv { context_id: 5, command: false, last: true, data: data.clone() }]));
        let h = pdata_single_pdv_header(5, false, true, data.len());
        assert_eq!(&full[..12], &h);
    }
}
