//! Forwarding the trail to a syslog server: RFC 5424 formatting of a sealed
//! record ([`format_rfc5424`]) and an asynchronous sender ([`SyslogSink`])
//! over UDP (RFC 5426, one message per datagram) or TCP (RFC 6587 octet
//! counting, `LEN SP MSG`), which never blocks the caller: when its queue is
//! full a message is dropped and counted.
//!
//! As IHE ATNA does, the MSG part is the DICOM audit message (XML) after a
//! UTF-8 BOM; the structured data `[yunying@32473 ...]` carries the record's
//! place in the chain so that a collector can tell a gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::chain::SealedEvent;
use crate::event::Outcome;

/// Facility 10, security/authorization messages (authpriv).
pub const FACILITY_AUTHPRIV: u8 = 10;
/// SD-ID of our structured data element (enterprise number 32473 is the one
/// RFC 5612 reserves for documentation and examples).
pub const SD_ID: &str = "yunying@32473";

/// Syslog severity of an outcome: 6 informational for success, 4 warning
/// for a minor failure, 3 error for a serious or major one.
pub fn severity(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Success => 6,
        Outcome::MinorFailure => 4,
        Outcome::SeriousFailure | Outcome::MajorFailure => 3,
    }
}

/// An RFC 5424 header field: printable US-ASCII only (others become `_`),
/// at most `max` characters, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .take(max)
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect();
    if f.is_empty() { "-".into() } else { f }
}

/// Escapes an SD-PARAM value (RFC 5424 §6.3.3): `"`, `\` and `]`.
fn sd_value(out: &mut String, v: &str) {
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The RFC 5424 message of a record:
/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [yunying@32473 chain=".." seq=".." key=".." mac=".."] BOM payload`,
/// PRI from facility authpriv and [`severity`], the event's time in RFC 3339
/// with milliseconds, our process id, the action code as MSGID.
pub fn format_rfc5424(r: &SealedEvent, hostname: &str, app_name: &str, payload: &str) -> String {
    let pri = FACILITY_AUTHPRIV as u32 * 8 + severity(r.event.outcome) as u32;
    let mut out = String::with_capacity(payload.len() + 256);
    out.push_str(&format!(
        "<{pri}>1 {} {} {} {} {} [{SD_ID} chain=\"",
        yunying_util::time::rfc3339_millis(r.event.at),
        header_field(hostname, 255),
        header_field(app_name, 48),
        std::process::id(),
        header_field(r.event.action.code(), 32),
    ));
    sd_value(&mut out, &r.chain);
    out.push_str("\" seq=\"");
    out.push_str(&r.seq.to_string());
    out.push_str("\" key=\"");
    sd_value(&mut out, &r.key_id);
    out.push_str("\" mac=\"");
    sd_value(&mut out, &r.mac);
    out.push_str("\"] \u{FEFF}");
    out.push_str(payload);
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyslogError {
    #[error("syslog target must be udp://host:port or tcp://host:port, not {0:?}")]
    BadTarget(String),
}

/// Where to send: `host:port` (a name is resolved at each connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    Udp(String),
    Tcp(String),
}

impl SyslogTarget {
    /// Parses `udp://host:514` or `tcp://host:6514` (`[v6]:port` for IPv6).
    pub fn parse(s: &str) -> Result<SyslogTarget, SyslogError> {
        let bad = || SyslogError::BadTarget(s.to_owned());
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        port.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && !host.contains('/')
            && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
        if !host_ok {
            return Err(bad());
        }
        match scheme.to_ascii_lowercase().as_str() {
            "udp" => Ok(SyslogTarget::Udp(rest.to_owned())),
            "tcp" => Ok(SyslogTarget::Tcp(rest.to_owned())),
            _ => Err(bad()),
        }
    }

    pub fn addr(&self) -> &str {
        match self {
            SyslogTarget::Udp(a) | SyslogTarget::Tcp(a) => a,
        }
    }
}

impl std::str::FromStr for SyslogTarget {
    type Err = SyslogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SyslogTarget::parse(s)
    }
}

impl std::fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogTarget::Udp(a) => write!(f, "udp://{a}"),
            SyslogTarget::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// How often a failure is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    dropped: AtomicU64,
    /// Unix ms of the last "queue full" warning.
    last_full_warn: AtomicI64,
}

/// A queue in front of a task that forwards messages to a syslog server.
/// Cloning shares the queue; the task ends when every clone is dropped and
/// the queue is drained (or, the server being unreachable, given up).
#[derive(Clone)]
pub struct SyslogSink {
    tx: mpsc::Sender<String>,
    stats: Arc<Stats>,
    target: Arc<SyslogTarget>,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("target", &self.target)
            .field("sent", &self.sent())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl SyslogSink {
    /// Starts the sending task (on the current Tokio runtime) with a queue
    /// of `capacity` messages (at least 1).
    pub fn spawn(target: SyslogTarget, capacity: usize) -> SyslogSink {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(Stats::default());
        let worker = Worker {
            stats: stats.clone(),
            warn: WarnLimiter::default(),
            target: target.to_string(),
        };
        match &target {
            SyslogTarget::Udp(addr) => {
                tokio::spawn(worker.run_udp(addr.clone(), rx));
            }
            SyslogTarget::Tcp(addr) => {
                tokio::spawn(worker.run_tcp(addr.clone(), rx));
            }
        }
        SyslogSink {
            tx,
            stats,
            target: Arc::new(target),
        }
    }

    /// Queues a message (a complete RFC 5424 message, without framing).
    /// Never waits: when the queue is full the message is dropped, counted,
    /// and `false` returned.
    pub fn send(&self, message: String) -> bool {
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(err) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                let now = yunying_util::time::now_millis();
                let last = self.stats.last_full_warn.load(Ordering::Relaxed);
                if now - last >= WARN_EVERY.as_millis() as i64
                    && self
                        .stats
                        .last_full_warn
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    let why = match err {
                        mpsc::error::TrySendError::Full(_) => "queue full",
                        mpsc::error::TrySendError::Closed(_) => "sender stopped",
                    };
                    tracing::warn!(
                        target: "yunying::audit",
                        syslog = %self.target,
                        dropped = self.dropped(),
                        "audit syslog message dropped: {why}"
                    );
                }
                false
            }
        }
    }

    /// Messages handed to the network (written to the TCP stream or sent as
    /// a datagram).
    pub fn sent(&self) -> u64 {
        self.stats.sent.load(Ordering::Relaxed)
    }

    /// Messages dropped: queue full, datagram refused, or given up at shutdown.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub fn target(&self) -> &SyslogTarget {
        &self.target
    }
}

#[derive(Default)]
struct WarnLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    fn warn(&mut self, target: &str, what: &str, err: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            target: "yunying::audit",
            syslog = %target,
            suppressed = self.suppressed,
            "audit syslog {what}: {err}"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

struct Worker {
    stats: Arc<Stats>,
    warn: WarnLimiter,
    target: String,
}

impl Worker {
    fn dropped(&self, n: u64) {
        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
    }

    async fn run_udp(mut self, addr: String, mut rx: mpsc::Receiver<String>) {
        let mut socket: Option<UdpSocket> = None;
        let mut retry_at = Instant::now();
        let mut backoff = MIN_BACKOFF;
        while let Some(msg) = rx.recv().await {
            if socket.is_none() {
                if Instant::now() < retry_at {
                    self.dropped(1);
                    continue;
                }
                match udp_connect(&addr).await {
                    Ok(s) => {
                        socket = Some(s);
                        backoff = MIN_BACKOFF;
                    }
                    Err(e) => {
                        self.warn.warn(&self.target, "cannot reach the server", &e);
                        self.dropped(1);
                        retry_at = Instant::now() + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            let Some(s) = socket.as_ref() else { continue };
            match s.send(msg.as_bytes()).await {
                Ok(_) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    // A refused datagram (no one listening), too large, or no route.
                    self.warn.warn(&self.target, "datagram not sent", &e);
                    self.dropped(1);
                    if e.kind() != std::io::ErrorKind::ConnectionRefused {
                        socket = None;
                    }
                }
            }
        }
    }

    async fn run_tcp(mut self, addr: String, mut rx: mpsc::Receiver<String>) {
        let mut stream: Option<TcpStream> = None;
        let mut backoff = MIN_BACKOFF;
        while let Some(msg) = rx.recv().await {
            let mut frame = Vec::with_capacity(msg.len() + 12);
            frame.extend_from_slice(msg.len().to_string().as_bytes());
            frame.push(b' ');
            frame.extend_from_slice(msg.as_bytes());
            drop(msg);
            // Deliver this frame, reconnecting as long as it takes.
            loop {
                if stream.as_ref().is_some_and(peer_closed) {
                    stream = None;
                }
                if stream.is_none() {
                    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr.as_str()))
                        .await
                    {
                        Ok(Ok(s)) => {
                            let _ = s.set_nodelay(true);
                            stream = Some(s);
                        }
                        Ok(Err(e)) => self.warn.warn(&self.target, "cannot connect", &e),
                        Err(_) => self.warn.warn(&self.target, "cannot connect", &"timed out"),
                    }
                    if stream.is_none() {
                        if rx.is_closed() {
                            // Shutting down with the server away: give up.
                            self.dropped(1 + rx.len() as u64);
                            return;
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
                let Some(s) = stream.as_mut() else { continue };
                match tokio::time::timeout(WRITE_TIMEOUT, s.write_all(&frame)).await {
                    Ok(Ok(())) => {
                        self.stats.sent.fetch_add(1, Ordering::Relaxed);
                        backoff = MIN_BACKOFF;
                        break;
                    }
                    Ok(Err(e)) => self.warn.warn(&self.target, "write failed", &e),
                    Err(_) => self.warn.warn(&self.target, "write failed", &"timed out"),
                }
                stream = None;
            }
        }
    }
}

async fn udp_connect(addr: &str) -> std::io::Result<UdpSocket> {
    let mut last = None;
    for target in tokio::net::lookup_host(addr).await? {
        let local = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        match UdpSocket::bind(local).await {
            Ok(s) => match s.connect(target).await {
                Ok(()) => return Ok(s),
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

/// Whether the server has closed the connection (a syslog server never
/// writes, so anything readable is an end of stream or an error; data, if
/// any, is discarded). Checked before each write so that a message is not
/// written into a connection already closed by the peer.
fn peer_closed(s: &TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tests::{sample_event, test_mac};
    use crate::chain::{GENESIS_MAC, seal};
    use crate::dicom_xml::to_audit_message;
    use crate::event::Action;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    fn record(seq: i64) -> SealedEvent {
        let mut e = sample_event(seq);
        if seq % 2 == 0 {
            e.outcome = Outcome::SeriousFailure;
        }
        seal("node \"a\"]", seq, GENESIS_MAC, e, "k1", &test_mac).unwrap()
    }

    fn message(seq: i64) -> String {
        let r = record(seq);
        format_rfc5424(
            &r,
            "pacs-01",
            "yunying",
            &to_audit_message(&r, "yunying@test"),
        )
    }

    /// Parses what we send and checks it (returns seq).
    fn check_message(m: &str) -> i64 {
        let (pri, rest) = m.strip_prefix('<').unwrap().split_once('>').unwrap();
        let mut parts = rest.splitn(7, ' ');
        let version = parts.next().unwrap();
        let ts = parts.next().unwrap();
        let host = parts.next().unwrap();
        let app = parts.next().unwrap();
        let procid = parts.next().unwrap();
        let msgid = parts.next().unwrap();
        let sd_and_msg = parts.next().unwrap();
        assert_eq!(version, "1");
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
        assert_eq!((host, app, msgid), ("pacs-01", "yunying", "read"));
        assert_eq!(procid, std::process::id().to_string());
        let (sd, msg) = sd_and_msg.split_once("\"] ").unwrap();
        assert!(
            sd.starts_with("[yunying@32473 chain=\"node \\\"a\\\"\\]\" seq=\""),
            "{sd}"
        );
        let seq: i64 = sd
            .split("seq=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let want_pri = if seq % 2 == 0 { 83 } else { 86 };
        assert_eq!(pri, want_pri.to_string());
        assert!(sd.contains(&format!("mac=\"{}", record(seq).mac)));
        let xml = msg.strip_prefix('\u{FEFF}').expect("BOM");
        let doc = roxmltree::Document::parse(xml).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "AuditMessage");
        seq
    }

    async fn read_frame(s: &mut tokio::net::TcpStream) -> std::io::Result<String> {
        let mut len = Vec::new();
        loop {
            let b = s.read_u8().await?;
            if b == b' ' {
                break;
            }
            assert!(b.is_ascii_digit());
            len.push(b);
        }
        let n: usize = String::from_utf8(len).unwrap().parse().unwrap();
        let mut buf = vec![0; n];
        s.read_exact(&mut buf).await?;
        Ok(String::from_utf8(buf).unwrap())
    }

    #[test]
    fn format_and_severity() {
        let m = message(1);
        assert!(m.starts_with("<86>1 2025-11-24T16:00:00.001Z pacs-01 yunying "));
        check_message(&m);
        let r = record(2);
        let m = format_rfc5424(&r, "", "我的 app", "x");
        assert!(
            m.starts_with("<83>1 2025-11-24T16:00:00.002Z - ___app "),
            "{m}"
        );
        assert!(m.ends_with("\"] \u{FEFF}x"));
        assert_eq!(severity(Outcome::MinorFailure), 4);
        let mut r = record(1);
        r.event.action = Action::AssociationRejected;
        assert!(format_rfc5424(&r, "h", "a", "").contains(" association-rejected [yunying@32473 "));
    }

    #[test]
    fn targets() {
        assert_eq!(
            SyslogTarget::parse("udp://log.example:514"),
            Ok(SyslogTarget::Udp("log.example:514".into()))
        );
        assert_eq!(
            "tcp://10.0.0.1:6514".parse(),
            Ok(SyslogTarget::Tcp("10.0.0.1:6514".into()))
        );
        assert_eq!(
            "TCP://[::1]:6514/".parse(),
            Ok(SyslogTarget::Tcp("[::1]:6514".into()))
        );
        for bad in [
            "log:514",
            "http://h:1",
            "udp://h",
            "udp://:514",
            "udp://h:0",
            "udp://h:99999",
            "tcp://::1:514",
        ] {
            assert!(SyslogTarget::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SyslogTarget::Udp("h:514".into()).to_string(), "udp://h:514");
    }

    #[tokio::test]
    async fn udp_delivery() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let sink = SyslogSink::spawn(SyslogTarget::parse(&format!("udp://{addr}")).unwrap(), 8);
        for seq in 1..=3 {
            assert!(sink.send(message(seq)));
        }
        let mut buf = vec![0u8; 65536];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), server.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            seen.push(check_message(std::str::from_utf8(&buf[..n]).unwrap()));
        }
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(sink.sent(), 3);
        assert_eq!(sink.dropped(), 0);
    }

    #[tokio::test]
    async fn tcp_delivery_survives_a_listener_restart() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = SyslogSink::spawn(SyslogTarget::Tcp(addr.to_string()), 16);
        assert!(sink.send(message(1)));
        assert!(sink.send(message(2)));
        let (mut conn, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(check_message(&read_frame(&mut conn).await.unwrap()), 1);
        assert_eq!(check_message(&read_frame(&mut conn).await.unwrap()), 2);

        // The server goes away and comes back on the same port.
        drop(conn);
        drop(listener);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = TcpListener::bind(addr).await.unwrap();

        // Keep sending until one arrives through a new connection.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seq = 3;
        let got = loop {
            assert!(Instant::now() < deadline, "no message after the restart");
            assert!(sink.send(message(seq)));
            seq += 1;
            if let Ok(Ok((mut conn, _))) =
                tokio::time::timeout(Duration::from_millis(300), listener.accept()).await
            {
                break check_message(&read_frame(&mut conn).await.unwrap());
            }
        };
        assert!(got >= 3);
        // The first message after the restart went through: the closed
        // connection was noticed before writing.
        assert_eq!(got, 3);
        assert!(sink.sent() >= 3);
    }

    #[tokio::test]
    async fn a_full_queue_drops_without_blocking() {
        // A port with no listener: the sender holds one message retrying, the
        // queue (1) fills, the rest is dropped.
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let sink = SyslogSink::spawn(SyslogTarget::Tcp(addr.to_string()), 1);
        let started = Instant::now();
        let accepted = (0..50).filter(|i| sink.send(format!("m{i}"))).count();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(accepted <= 2, "{accepted}");
        assert_eq!(sink.dropped(), 50 - accepted as u64);
        assert_eq!(sink.sent(), 0);
    }
}
