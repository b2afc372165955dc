//! An established association: DIMSE messages over the upper layer, both
//! ways, for SCPs and SCUs alike.
//!
//! A reader task per connection reads PDUs (each length checked against
//! the limit we advertised), decodes them and hands them over a small
//! bounded channel, so the socket is read while a handler writes to disk and
//! a C-CANCEL can be noticed while responses are being sent. Data sets are
//! handed out fragment by fragment as they arrive ([`Association::data_fragment`]):
//! nothing is buffered whole unless the caller asks for it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::command::{Command, CommandError, MAX_COMMAND_BYTES, field};
use crate::pdu::{self, Abort, Pdu, PduError, Pdv, RoleSelection, UserIdentity};
use crate::uids::Service;

/// Why an association ended or a message could not be exchanged.
#[derive(Debug, thiserror::Error)]
pub enum AssocError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Pdu(#[from] PduError),
    #[error("{0}")]
    Command(#[from] CommandError),
    #[error("the peer closed the connection")]
    Closed,
    #[error("the peer aborted the association (source {}, reason {})", .0.source, .0.reason)]
    Aborted(Abort),
    #[error("no activity for {0:?}")]
    Timeout(Duration),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("association rejected (result {result}, source {origin}, reason {reason})")]
    Rejected { result: u8, origin: u8, reason: u8 },
}

impl AssocError {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        AssocError::Protocol(msg.into())
    }
}

/// A presentation context both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedContext {
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntax: String,
}

/// What was negotiated.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub peer: SocketAddr,
    /// The requestor's AE title.
    pub calling_ae: String,
    /// The acceptor's AE title.
    pub called_ae: String,
    pub contexts: Vec<AcceptedContext>,
    /// Largest P-DATA PDU the peer receives (0: unlimited).
    pub peer_max_pdu: u32,
    /// Role selections agreed (as the requestor's roles).
    pub roles: Vec<RoleSelection>,
    pub peer_implementation_class_uid: String,
    pub peer_implementation_version: Option<String>,
    pub user_identity: Option<UserIdentity>,
}

impl Negotiated {
    pub fn context(&self, id: u8) -> Option<&AcceptedContext> {
        self.contexts.iter().find(|c| c.id == id)
    }

    /// True when the requestor agreed to act as SCP for this SOP class (C-GET).
    pub fn requestor_is_scp(&self, sop_class: &str) -> bool {
        self.roles.iter().any(|r| r.sop_class == sop_class && r.scp)
    }
}

/// One thing received from the peer (PDVs dominate; the rare control PDU
/// is not worth a box).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Item {
    Pdv(Pdv),
    Pdu(Pdu),
    Failed(AssocError),
}

/// What the peer asked for next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A DIMSE command; if it announces a data set, read it with
    /// [`Association::data_fragment`] or [`Association::read_data_set`].
    Command { context_id: u8, command: Command },
    /// The peer asked to release the association.
    ReleaseRequested,
}

/// The stream an association runs over: plain TCP, TLS over TCP, or
/// anything else that reads and writes bytes.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

type ReadHalf = Box<dyn AsyncRead + Unpin + Send>;
type WriteHalf = Box<dyn AsyncWrite + Unpin + Send>;

/// Splits a stream into its two directions. A `TcpStream` is split into
/// owned halves (no lock between the reader task and the writer, as
/// before); any other stream (TLS) with `tokio::io::split`. Both halves are
/// buffered by the caller, so the boxing costs one indirect call per
/// buffer refill or flush, not per PDU.
fn split<S: Transport>(stream: S) -> (ReadHalf, WriteHalf) {
    let any: Box<dyn std::any::Any> = Box::new(stream);
    match any.downcast::<TcpStream>() {
        Ok(tcp) => {
            let _ = tcp.set_nodelay(true);
            let (r, w) = tcp.into_split();
            (Box::new(r), Box::new(w))
        }
        Err(any) => {
            let stream = *any.downcast::<S>().expect("the stream's own type");
            let (r, w) = tokio::io::split(stream);
            (Box::new(r), Box::new(w))
        }
    }
}

/// The connection: a reader task and a buffered writer.
pub(crate) struct Link {
    rx: mpsc::Receiver<Result<Pdu, AssocError>>,
    writer: BufWriter<WriteHalf>,
    reader: JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Link {
    /// Starts reading `stream`. `max_pdata` is the largest P-DATA PDU body
    /// we advertise (a larger one ends the connection).
    pub(crate) fn start<S: Transport>(stream: S, max_pdata: u32) -> Link {
        let (r, w) = split(stream);
        let (tx, rx) = mpsc::channel(4);
        let reader = tokio::spawn(read_loop(BufReader::with_capacity(64 * 1024, r), max_pdata, tx));
        Link { rx, writer: BufWriter::with_capacity(256 * 1024, w), reader }
    }

    pub(crate) async fn recv(&mut self, timeout: Duration) -> Result<Pdu, AssocError> {
        match tokio::time::timeout(timeout, self.rx.recv()).await {
            Err(_) => Err(AssocError::Timeout(timeout)),
            Ok(None) => Err(AssocError::Closed),
            Ok(Some(r)) => r,
        }
    }

    pub(crate) async fn send(&mut self, pdu: &Pdu) -> Result<(), AssocError> {
        self.writer.write_all(&pdu::encode(pdu)).await?;
        self.writer.flush().await?;
        Ok(())
    }

    pub(crate) async fn close(mut self) {
        let _ = self.writer.flush().await;
        let _ = self.writer.shutdown().await;
    }
}

async fn read_loop(mut r: BufReader<ReadHalf>, max_pdata: u32, tx: mpsc::Sender<Result<Pdu, AssocError>>) {
    loop {
        let mut h = [0u8; 6];
        if let Err(e) = r.read_exact(&mut h).await {
            let err = if e.kind() == std::io::ErrorKind::UnexpectedEof { AssocError::Closed } else { e.into() };
            let _ = tx.send(Err(err)).await;
            return;
        }
        let t = h[0];
        let len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
        let limit = if t == pdu::kind::P_DATA_TF {
            // Tolerate peers that count the 6-byte header in the maximum.
            max_pdata.saturating_add(6)
        } else {
            pdu::MAX_CONTROL_PDU
        };
        if !(pdu::kind::ASSOCIATE_RQ..=pdu::kind::ABORT).contains(&t) {
            let _ = tx.send(Err(PduError::UnknownType(t).into())).await;
            return;
        }
        if len > limit {
            let _ = tx.send(Err(PduError::TooLarge { len, max: limit }.into())).await;
            return;
        }
        let mut body = BytesMut::with_capacity(len as usize);
        let mut taken = (&mut r).take(len as u64);
        while body.len() < len as usize {
            match taken.read_buf(&mut body).await {
                Ok(0) => {
                    let _ = tx.send(Err(AssocError::Closed)).await;
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            }
        }
        let decoded = pdu::decode(t, body.freeze()).map_err(AssocError::from);
        let stop = decoded.is_err();
        if tx.send(decoded).await.is_err() || stop {
            return;
        }
    }
}

/// An established association.
pub struct Association {
    link: Option<Link>,
    pending: VecDeque<Item>,
    negotiated: Negotiated,
    idle: Duration,
    next_message_id: u16,
    /// The context whose data set is being received, if any.
    receiving: Option<u8>,
}

impl std::fmt::Debug for Association {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Association")
            .field("peer", &self.negotiated.peer)
            .field("calling_ae", &self.negotiated.calling_ae)
            .field("called_ae", &self.negotiated.called_ae)
            .field("contexts", &self.negotiated.contexts.len())
            .finish()
    }
}

/// Largest P-DATA value we put in one PDU when the peer sets no limit.
const UNLIMITED_FRAGMENT: usize = 1 << 20;

impl Association {
    pub(crate) fn new(link: Link, negotiated: Negotiated, idle: Duration) -> Association {
        Association { link: Some(link), pending: VecDeque::new(), negotiated, idle, next_message_id: 1, receiving: None }
    }

    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The transfer syntax of an accepted context.
    pub fn context_transfer_syntax(&self, ctx: u8) -> Option<&str> {
        self.negotiated.context(ctx).map(|c| c.transfer_syntax.as_str())
    }

    /// A message ID for a request this side sends.
    pub fn next_message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    fn link(&mut self) -> Result<&mut Link, AssocError> {
        self.link.as_mut().ok_or(AssocError::Closed)
    }

    async fn next_item(&mut self) -> Result<Item, AssocError> {
        if let Some(i) = self.pending.pop_front() {
            return Ok(i);
        }
        let idle = self.idle;
        let pdu = match self.link()?.recv(idle).await {
            Ok(p) => p,
            Err(e) => return Ok(Item::Failed(e)),
        };
        Ok(self.enqueue(pdu).unwrap_or_else(|| self.pending.pop_front().expect("queued")))
    }

    /// Queues a received PDU; returns it directly when it is not P-DATA.
    fn enqueue(&mut self, pdu: Pdu) -> Option<Item> {
        match pdu {
            Pdu::PData(pdvs) => {
                self.pending.extend(pdvs.into_iter().map(Item::Pdv));
                None
            }
            other => Some(Item::Pdu(other)),
        }
    }

    /// Waits for the peer's next command (or release request).
    pub async fn next_event(&mut self) -> Result<Event, AssocError> {
        if self.receiving.is_some() {
            // The handler did not read the whole data set: skip the rest.
            while self.data_fragment().await?.is_some() {}
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut ctx: Option<u8> = None;
        loop {
            match self.next_item().await? {
                Item::Pdv(p) => {
                    if !p.command {
                        return Err(AssocError::protocol("a data set fragment arrived where a command was expected"));
                    }
                    if ctx.is_some_and(|c| c != p.context_id) {
                        return Err(AssocError::protocol("command fragments on different presentation contexts"));
                    }
                    ctx = Some(p.context_id);
                    if buf.len() + p.data.len() > MAX_COMMAND_BYTES {
                        return Err(AssocError::protocol("command set too large"));
                    }
                    buf.extend_from_slice(&p.data);
                    if p.last {
                        let context_id = p.context_id;
                        if self.negotiated.context(context_id).is_none() {
                            return Err(AssocError::protocol(format!(
                                "command on presentation context {context_id}, which was not accepted"
                            )));
                        }
                        let command = Command::decode(&buf)?;
                        if command.has_data_set() {
                            self.receiving = Some(context_id);
                        }
                        return Ok(Event::Command { context_id, command });
                    }
                }
                Item::Pdu(Pdu::ReleaseRq) if ctx.is_none() => return Ok(Event::ReleaseRequested),
                Item::Pdu(Pdu::Abort(a)) => return Err(AssocError::Aborted(a)),
                Item::Pdu(other) => {
                    return Err(AssocError::protocol(format!("unexpected PDU {other:?} while waiting for a command")));
                }
                Item::Failed(e) => return Err(e),
            }
        }
    }

    /// The next fragment of the data set being received, `None` after the last.
    pub async fn data_fragment(&mut self) -> Result<Option<Bytes>, AssocError> {
        let Some(ctx) = self.receiving else { return Ok(None) };
        match self.next_item().await? {
            Item::Pdv(p) if !p.command && p.context_id == ctx => {
                if p.last {
                    self.receiving = None;
                }
                Ok(Some(p.data))
            }
            Item::Pdv(_) => Err(AssocError::protocol("a command or another context interrupted a data set")),
            Item::Pdu(Pdu::Abort(a)) => Err(AssocError::Aborted(a)),
            Item::Pdu(other) => Err(AssocError::protocol(format!("unexpected PDU {other:?} inside a data set"))),
            Item::Failed(e) => Err(e),
        }
    }

    /// Reads the whole data set being received (identifiers, reports), at
    /// most `limit` bytes.
    pub async fn read_data_set(&mut self, limit: usize) -> Result<Bytes, AssocError> {
        let mut parts = BytesMut::new();
        while let Some(f) = self.data_fragment().await? {
            if parts.len() + f.len() > limit {
                return Err(AssocError::protocol(format!("data set larger than {limit} bytes where a small one was expected")));
            }
            parts.extend_from_slice(&f);
        }
        Ok(parts.freeze())
    }

    /// Checks, without waiting, whether the peer cancelled the request with
    /// this message ID (C-CANCEL-RQ), or went away. Other arrivals stay queued.
    pub fn cancelled(&mut self, message_id: u16) -> bool {
        loop {
            let Some(link) = self.link.as_mut() else { return true };
            match link.rx.try_recv() {
                Ok(Ok(pdu)) => {
                    if let Some(item) = self.enqueue(pdu) {
                        self.pending.push_back(item);
                    }
                }
                Ok(Err(e)) => self.pending.push_back(Item::Failed(e)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return true,
            }
        }
        let mut hit = None;
        for (i, item) in self.pending.iter().enumerate() {
            match item {
                Item::Pdv(p) if p.command && p.last => {
                    if let Ok(c) = Command::decode(&p.data)
                        && c.command_field == field::C_CANCEL_RQ
                        && c.message_id_being_responded_to == Some(message_id)
                    {
                        hit = Some(i);
                        break;
                    }
                }
                Item::Pdu(Pdu::Abort(_)) | Item::Failed(_) => return true,
                _ => {}
            }
        }
        if let Some(i) = hit {
            self.pending.remove(i);
            return true;
        }
        false
    }

    fn max_fragment(&self) -> usize {
        match self.negotiated.peer_max_pdu {
            0 => UNLIMITED_FRAGMENT,
            n => (n as usize).saturating_sub(6).clamp(64, UNLIMITED_FRAGMENT),
        }
    }

    async fn write_pdv(&mut self, ctx: u8, command: bool, last: bool, data: &[u8]) -> Result<(), AssocError> {
        let header = pdu::pdata_single_pdv_header(ctx, command, last, data.len());
        let w = &mut self.link()?.writer;
        w.write_all(&header).await?;
        w.write_all(data).await?;
        Ok(())
    }

    async fn write_fragments(&mut self, ctx: u8, command: bool, data: &[u8]) -> Result<(), AssocError> {
        let max = self.max_fragment();
        if data.is_empty() {
            return self.write_pdv(ctx, command, true, data).await;
        }
        let mut chunks = data.chunks(max).peekable();
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.write_pdv(ctx, command, last, chunk).await?;
        }
        Ok(())
    }

    /// Sends a command and, when given, its data set; flushes.
    pub async fn send(&mut self, ctx: u8, command: &Command, data: Option<&[u8]>) -> Result<(), AssocError> {
        self.send_buffered(ctx, command, data).await?;
        self.link()?.writer.flush().await?;
        Ok(())
    }

    /// Sends a command and its data set without flushing: for a run of
    /// responses (C-FIND matches) that the next flush sends together.
    pub async fn send_buffered(&mut self, ctx: u8, command: &Command, data: Option<&[u8]>) -> Result<(), AssocError> {
        let mut command = command.clone();
        command.data_set_type = if data.is_some() { 0x0000 } else { crate::command::NO_DATA_SET };
        self.write_fragments(ctx, true, &command.encode()).await?;
        if let Some(d) = data {
            self.write_fragments(ctx, false, d).await?;
        }
        Ok(())
    }

    /// Sends a command announcing a data set, then the data set in parts
    /// (`parts` may be split anywhere); flushes.
    pub async fn send_parts(&mut self, ctx: u8, command: &Command, parts: &[Bytes]) -> Result<(), AssocError> {
        let mut command = command.clone();
        command.data_set_type = 0x0000;
        self.write_fragments(ctx, true, &command.encode()).await?;
        let max = self.max_fragment();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut sent = 0usize;
        let mut frag: Vec<u8> = Vec::new();
        if total == 0 {
            self.write_pdv(ctx, false, true, &[]).await?;
        }
        for part in parts {
            let mut rest = &part[..];
            while !rest.is_empty() {
                if frag.is_empty() && rest.len() >= max {
                    // A whole fragment from this part: no copy.
                    let (now, later) = rest.split_at(max);
                    sent += now.len();
                    self.write_pdv(ctx, false, sent == total, now).await?;
                    rest = later;
                    continue;
                }
                let n = (max - frag.len()).min(rest.len());
                frag.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if frag.len() == max {
                    sent += frag.len();
                    let f = std::mem::take(&mut frag);
                    self.write_pdv(ctx, false, sent == total, &f).await?;
                }
            }
        }
        if !frag.is_empty() {
            sent += frag.len();
            self.write_pdv(ctx, false, sent == total, &frag).await?;
        }
        self.link()?.writer.flush().await?;
        Ok(())
    }

    /// Waits for the response to the request with `message_id`, skipping
    /// nothing: any other command is a protocol error for callers that do not
    /// expect one (use [`Association::next_event`] for the general case).
    pub async fn response(&mut self, message_id: u16) -> Result<(u8, Command, Option<Bytes>), AssocError> {
        match self.next_event().await? {
            Event::Command { context_id, command } if command.is_response() => {
                if command.message_id_being_responded_to != Some(message_id) {
                    return Err(AssocError::protocol(format!(
                        "response to message {:?}, expected {message_id}",
                        command.message_id_being_responded_to
                    )));
                }
                let data = if command.has_data_set() { Some(self.read_data_set(16 << 20).await?) } else { None };
                Ok((context_id, command, data))
            }
            Event::Command { command, .. } => Err(AssocError::protocol(format!(
                "{} received while waiting for a response",
                field::name(command.command_field)
            ))),
            Event::ReleaseRequested => Err(AssocError::protocol("release requested while a response was awaited")),
        }
    }

    /// Answers the peer's release request and closes.
    pub async fn confirm_release(mut self) -> Result<(), AssocError> {
        let mut link = self.link.take().ok_or(AssocError::Closed)?;
        link.send(&Pdu::ReleaseRp).await?;
        // Give the peer a moment to close first (it owns the TCP close).
        let _ = tokio::time::timeout(Duration::from_secs(1), link.rx.recv()).await;
        link.close().await;
        Ok(())
    }

    /// Asks the peer to release, waits for its answer, and closes.
    pub async fn release(mut self) -> Result<(), AssocError> {
        let mut link = self.link.take().ok_or(AssocError::Closed)?;
        link.send(&Pdu::ReleaseRq).await?;
        let idle = self.idle;
        loop {
            match link.recv(idle).await? {
                Pdu::ReleaseRp => break,
                // A release collision: answer and carry on waiting.
                Pdu::ReleaseRq => link.send(&Pdu::ReleaseRp).await?,
                Pdu::PData(_) => continue,
                Pdu::Abort(a) => return Err(AssocError::Aborted(a)),
                other => return Err(AssocError::protocol(format!("unexpected {other:?} during release"))),
            }
        }
        link.close().await;
        Ok(())
    }

    /// Aborts the association (A-ABORT) and closes.
    pub async fn abort(mut self, abort: Abort) {
        if let Some(mut link) = self.link.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), link.send(&Pdu::Abort(abort))).await;
            link.close().await;
        }
    }

    /// The accepted context for `abstract_syntax` whose transfer syntax
    /// satisfies `pred`, preferring the first match.
    pub fn find_context(&self, abstract_syntax: &str, pred: impl Fn(&str) -> bool) -> Option<&AcceptedContext> {
        self.negotiated.contexts.iter().find(|c| c.abstract_syntax == abstract_syntax && pred(&c.transfer_syntax))
    }
}

/// The service of each accepted context, for dispatch.
pub(crate) fn service_for(negotiated: &Negotiated, ctx: u8, unknown_is_storage: bool) -> Option<Service> {
    negotiated.context(ctx).and_then(|c| crate::uids::service_of(&c.abstract_syntax, unknown_is_storage))
}
