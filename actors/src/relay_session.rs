//! A relay session: one actor per relay. A *pull* plays a remote RTMP stream and publishes it
//! locally; a *push* subscribes to a local room like a viewer and publishes it to a remote
//! RTMP server (API push and static push alike).
//!
//! The remote side is rml_rtmp's sans-IO handshake and `ClientSession`. The actor outlives its
//! connections: when one fails it waits (capped exponential backoff, with jitter) and dials
//! again, for a push only while the local room is live. A connection runs three tasks: a
//! reader that feeds the remote's bytes to the actor, a writer that drains two bounded queues
//! (control packets before media, so replies never wait behind video), and, for a push, a pump
//! that takes a frame from the channel subscription only when the media queue has room. A slow
//! remote therefore makes the channel skip this subscriber to the next keyframe; nothing ever
//! waits for it but its own queue.

use std::collections::VecDeque;
use std::fmt;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use log::{debug, info, warn};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::MessagePayload;
use rml_rtmp::rml_amf0::{self, Amf0Value};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::client::{ClientId, ClientInfo, ClientKind, PublisherControl, StreamKey, ViewerControl};
use crate::media::frame::RTMP_OUT_CHUNK_SIZE;
use crate::media::{flv, FrameKind, MediaFrame};
use crate::registry::{Play, Publish, Registry};
use crate::relay_manager::{RelayFinished, RelayManager, RelayPublishing};
use crate::settings::StreamSettings;
use crate::stream_channel::{
    offer, FrameReceiver, PlayRejected, PublishFrame, PublishMetadata, PublishRejected,
    StreamChannel, Unpublish, Unsubscribe,
};

/// Control packets (handshake, commands, acks) the remote may leave unread.
const CONTROL_QUEUE: usize = 256;
/// Serialized media messages queued for the remote. Small on purpose: the real buffer is the
/// channel subscription, where overflow skips to a keyframe instead of cutting a GOP.
const MEDIA_QUEUE: usize = 64;
const READ_BUFFER: usize = 64 * 1024;
const TICK: Duration = Duration::from_secs(1);
/// A connection that ran this long was healthy; its failure starts the backoff from the minimum.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);
/// RTMP aggregate message (FMS, Wowza); rml_rtmp hands it over unparsed.
const MESSAGE_TYPE_AGGREGATE: u8 = 22;

// ---------------------------------------------------------------------------------------------
// Messages

/// Manager → session: stop for good (API stop).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Manager → push session: the local room has a new publisher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SourcePublished;

/// A snapshot of the relay for `/api/relays`.
#[derive(Message)]
#[rtype(result = "RelayStatus")]
pub struct GetRelayStatus;

/// Reader task → session: bytes from the remote, in order.
#[derive(Message)]
#[rtype(result = "()")]
struct Input {
    conn: u64,
    bytes: Bytes,
}

/// Reader or writer task → session: the connection is gone.
#[derive(Message)]
#[rtype(result = "()")]
struct LinkLost {
    conn: u64,
    reason: String,
}

/// Pump → session: serialize this frame for the remote. `None` means it is not sent.
#[derive(Message)]
#[rtype(result = "Option<Bytes>")]
struct EncodeFrame {
    conn: u64,
    frame: Arc<MediaFrame>,
}

/// Pump → session: the local subscription ended (the stream ended or we were dropped).
#[derive(Message)]
#[rtype(result = "()")]
struct SubscriptionEnded {
    conn: u64,
}

// ---------------------------------------------------------------------------------------------
// What a relay is

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayDirection {
    /// Remote stream → local room.
    Pull,
    /// Local room → remote server.
    Push,
}

impl fmt::Display for RelayDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RelayDirection::Pull => "pull",
            RelayDirection::Push => "push",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayOrigin {
    /// Started by `/control/pull` or `/control/push`; runs until stopped there.
    Api,
    /// A `static_push` target of the app; runs while the room is published.
    Static,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelayState {
    /// A push whose local room is not published; it starts when it is.
    Waiting,
    /// Dialling, handshaking or negotiating with the remote.
    Connecting,
    Running,
    /// The last attempt failed; the next one is scheduled.
    BackingOff,
}

#[derive(Debug, Clone, Serialize)]
pub struct RelayStatus {
    pub id: Uuid,
    pub kind: RelayDirection,
    pub origin: RelayOrigin,
    pub app: String,
    pub name: String,
    /// The remote URL (without its query string, which often carries credentials).
    pub target: String,
    pub state: RelayState,
    /// Bytes received from (pull) or media bytes sent to (push) the remote, over all connections.
    pub bytes: u64,
    /// Seconds the current connection has been running; 0 when not running.
    pub uptime: u64,
    /// Unix time the relay was started.
    pub started_at: u64,
    /// Failed connections so far.
    pub reconnects: u64,
    pub last_error: Option<String>,
}

/// Everything that identifies one relay.
#[derive(Debug, Clone)]
pub struct RelaySpec {
    pub direction: RelayDirection,
    pub origin: RelayOrigin,
    /// The local room.
    pub key: StreamKey,
    pub url: RtmpUrl,
}

// ---------------------------------------------------------------------------------------------
// RTMP URLs

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("only rtmp:// URLs are supported, got {0:?}")]
    NotRtmp(String),
    #[error("the URL contains spaces or control characters")]
    BadCharacter,
    #[error("the URL has no host")]
    NoHost,
    #[error("user:password@ in an RTMP URL is not supported")]
    Credentials,
    #[error("invalid host {0:?}")]
    BadHost(String),
    #[error("invalid port {0:?}")]
    BadPort(String),
    #[error("the URL must name an application: rtmp://host[:port]/app/stream")]
    NoApp,
    #[error("the URL must name a stream: rtmp://host[:port]/app/stream")]
    NoStream,
}

/// `rtmp://host[:port]/app/stream[?query]`, split the way RTMP needs it: the first path segment
/// is the application (`connect`), the rest is the stream name (`play` / `publish`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// Lower case; an IPv6 address without brackets.
    host: String,
    port: u16,
    app: String,
    /// Empty only for a static-push base URL.
    stream: String,
}

pub const DEFAULT_RTMP_PORT: u16 = 1935;

impl RtmpUrl {
    /// A relay target: application and stream are both required.
    pub fn parse(url: &str) -> Result<RtmpUrl, UrlError> {
        let parsed = RtmpUrl::parse_base(url)?;
        if parsed.stream.is_empty() {
            return Err(UrlError::NoStream);
        }
        Ok(parsed)
    }

    /// A static-push base (`rtmp://host/app`), to which each room's name is appended.
    pub fn parse_base(url: &str) -> Result<RtmpUrl, UrlError> {
        let url = url.trim();
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::BadCharacter);
        }
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("rtmp://") => &url[7..],
            _ => return Err(UrlError::NotRtmp(url.chars().take(64).collect())),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(UrlError::NoHost);
        }
        if authority.contains('@') {
            return Err(UrlError::Credentials);
        }
        let (host, port) = split_authority(authority)?;
        let path = path.trim_start_matches('/');
        let (app, stream) = path.split_once('/').unwrap_or((path, ""));
        // An app never carries the query; `rtmp://h/app?x` is app "app" with no stream.
        let app = app.split('?').next().unwrap_or_default();
        if app.is_empty() {
            return Err(UrlError::NoApp);
        }
        Ok(RtmpUrl {
            host,
            port,
            app: app.to_string(),
            stream: stream.trim_start_matches('/').to_string(),
        })
    }

    /// This base with `room` appended to its path (before any query string).
    pub fn with_room(&self, room: &str) -> RtmpUrl {
        let stream = if self.stream.is_empty() {
            room.to_string()
        } else {
            let (path, query) = match self.stream.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (self.stream.as_str(), None),
            };
            let path = path.trim_end_matches('/');
            let joined = if path.is_empty() {
                room.to_string()
            } else {
                format!("{path}/{room}")
            };
            match query {
                Some(query) => format!("{joined}?{query}"),
                None => joined,
            }
        };
        RtmpUrl {
            stream,
            ..self.clone()
        }
    }

    /// `host:port`, bracketed for IPv6, as used to dial and to compare servers.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn app(&self) -> &str {
        &self.app
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// What `connect` sends as `tcUrl`; some servers refuse a connect without it.
    pub fn tc_url(&self) -> String {
        format!("rtmp://{}/{}", self.authority(), self.app)
    }

    /// The URL without its query string, for logs, statistics and the API.
    pub fn without_query(&self) -> String {
        let stream = self.stream.split('?').next().unwrap_or_default();
        if stream.is_empty() {
            self.tc_url()
        } else {
            format!("{}/{stream}", self.tc_url())
        }
    }

    /// Whether one of `prefixes` (`rtmp://host[:port][/path]`) covers this URL. Both sides are
    /// normalised (lower-case host, explicit port) and the host part always ends at a `/`, so
    /// `rtmp://cdn.example.com` never matches `rtmp://cdn.example.com.evil.org/…`. An empty
    /// list allows everything.
    pub fn allowed_by(&self, prefixes: &[String]) -> bool {
        if prefixes.is_empty() {
            return true;
        }
        let target = format!("{}/{}", self.tc_url(), self.stream);
        prefixes
            .iter()
            .filter_map(|prefix| normalise_prefix(prefix))
            .any(|prefix| target.starts_with(&prefix))
    }
}

impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stream.is_empty() {
            f.write_str(&self.tc_url())
        } else {
            write!(f, "{}/{}", self.tc_url(), self.stream)
        }
    }
}

fn split_authority(authority: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| UrlError::BadHost(authority.to_string()))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UrlError::BadPort(p.to_string()))?,
            ),
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(UrlError::BadHost(host.to_string()));
        }
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(UrlError::BadHost(host.to_string()));
        }
        (host, port)
    };
    let port = match port {
        None => DEFAULT_RTMP_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError::BadPort(p.to_string()))?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// `rtmp://Host[:port][/path]` → `rtmp://host:port/path`; `None` for an unusable entry.
fn normalise_prefix(prefix: &str) -> Option<String> {
    let prefix = prefix.trim();
    let rest = match prefix.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("rtmp://") => &prefix[7..],
        _ => return None,
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return None;
    }
    let (host, port) = split_authority(authority).ok()?;
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Some(format!("rtmp://{authority}/{path}"))
}

// ---------------------------------------------------------------------------------------------
// Backoff

/// Reconnect delays: `min`, doubling per failure up to `max`, each ±20% so relays that failed
/// together do not retry together.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The delay before the next attempt, without jitter; advances the sequence.
    pub fn next_base(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    pub fn next_delay(&mut self) -> Duration {
        let base = self.next_base();
        // Any randomness will do for jitter; a v4 UUID is already at hand.
        let spread = (Uuid::new_v4().as_u128() % 401) as f64 / 1000.0;
        base.mul_f64(0.8 + spread)
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

// ---------------------------------------------------------------------------------------------
// The actor

/// The local stream a pull publishes into.
struct LocalPublish {
    channel: Addr<StreamChannel>,
    publisher: ClientId,
}

/// One connection to the remote.
struct Link {
    conn: u64,
    peer: Option<SocketAddr>,
    handshake: Option<Handshake>,
    session: Option<ClientSession>,
    control: Option<mpsc::Sender<Bytes>>,
    media: Option<mpsc::Sender<Bytes>>,
    /// Push: the subscription's queue, until the remote accepts the publish and the pump takes it.
    frames: Option<FrameReceiver>,
    /// Events of the current input batch, handled in order; held while a local publish is decided.
    pending: VecDeque<ClientSessionEvent>,
    deciding: bool,
    opened: Instant,
    running_since: Option<Instant>,
    last_media: Instant,
    /// Pull: this connection's media goes to `RelaySession::local`.
    published: bool,
    reader: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    pump: Option<JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in [self.reader.take(), self.pump.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

pub struct RelaySession {
    id: Uuid,
    spec: RelaySpec,
    registry: Addr<Registry>,
    manager: Addr<RelayManager>,
    settings: Arc<StreamSettings>,
    state: RelayState,
    started_at: SystemTime,
    /// Generation of the current attempt; anything from an older one is ignored.
    conn: u64,
    link: Option<Link>,
    /// Push: the channel and viewer id of the current subscription.
    subscription: Option<(Addr<StreamChannel>, ClientId)>,
    backoff: Backoff,
    retry: Option<SpawnHandle>,
    bytes: Arc<AtomicU64>,
    reconnects: u64,
    last_error: Option<String>,
    /// Pull: kept across reconnects so local viewers stay until `read_timeout` passes without
    /// media.
    local: Option<LocalPublish>,
    last_media: Instant,
    /// `SourcePublished` messages received; the manager compares it with what it sent.
    wakes_seen: u64,
    /// A `SourcePublished` arrived since the last source check was sent.
    recheck: bool,
    stopping: bool,
}

impl RelaySession {
    pub fn new(
        id: Uuid,
        spec: RelaySpec,
        registry: Addr<Registry>,
        manager: Addr<RelayManager>,
        settings: Arc<StreamSettings>,
    ) -> RelaySession {
        let backoff = Backoff::new(settings.relays.backoff_min, settings.relays.backoff_max);
        RelaySession {
            id,
            spec,
            registry,
            manager,
            settings,
            state: RelayState::Connecting,
            started_at: SystemTime::now(),
            conn: 0,
            link: None,
            subscription: None,
            backoff,
            retry: None,
            bytes: Arc::new(AtomicU64::new(0)),
            reconnects: 0,
            last_error: None,
            local: None,
            last_media: Instant::now(),
            wakes_seen: 0,
            recheck: false,
            stopping: false,
        }
    }

    pub fn status(&self) -> RelayStatus {
        let uptime = match (&self.link, self.state) {
            (Some(link), RelayState::Running) => link
                .running_since
                .map(|since| since.elapsed().as_secs())
                .unwrap_or(0),
            _ => 0,
        };
        RelayStatus {
            id: self.id,
            kind: self.spec.direction,
            origin: self.spec.origin,
            app: self.spec.key.app.clone(),
            name: self.spec.key.room.clone(),
            target: self.spec.url.without_query(),
            state: self.state,
            bytes: self.bytes.load(Ordering::Relaxed),
            uptime,
            started_at: self
                .started_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            reconnects: self.reconnects,
            last_error: self.last_error.clone(),
        }
    }

    /// `relay=… pull live/room <- rtmp://…` for logs.
    fn describe(&self) -> String {
        let arrow = match self.spec.direction {
            RelayDirection::Pull => "<-",
            RelayDirection::Push => "->",
        };
        format!(
            "relay={} {} stream={} {arrow} {}",
            self.id,
            self.spec.direction,
            self.spec.key,
            self.spec.url.without_query()
        )
    }

    fn is_current(&self, conn: u64) -> bool {
        !self.stopping && self.link.as_ref().is_some_and(|link| link.conn == conn)
    }

    fn connect_timeout(&self) -> Duration {
        self.settings.write_timeout.max(Duration::from_secs(1))
    }

    /// Start a new attempt: for a push, check the source first by subscribing to it.
    fn attempt(&mut self, ctx: &mut Context<Self>) {
        self.retry = None;
        if self.stopping {
            return;
        }
        self.teardown_link(false);
        self.drop_subscription();
        self.conn += 1;
        let conn = self.conn;
        self.state = RelayState::Connecting;
        // Every publish the manager told us about so far is visible to the check sent now.
        self.recheck = false;
        match self.spec.direction {
            RelayDirection::Pull => self.dial(conn, None, ctx),
            RelayDirection::Push => {
                let info = ClientInfo::new(ClientKind::Relay, None, self.spec.url.without_query());
                let viewer = info.id;
                let request = self.registry.send(Play {
                    key: self.spec.key.clone(),
                    info,
                    control: Some(ctx.address().recipient()),
                    require_publisher: true,
                });
                ctx.spawn(request.into_actor(self).map(move |result, act, ctx| {
                    if act.stopping || act.conn != conn {
                        if let Ok(Ok(subscription)) = result {
                            subscription.channel.do_send(Unsubscribe { viewer });
                        }
                        return;
                    }
                    match result {
                        Ok(Ok(subscription)) => {
                            act.subscription = Some((subscription.channel, viewer));
                            act.dial(conn, Some(subscription.frames), ctx);
                        }
                        Ok(Err(PlayRejected::NotPublishing)) => act.source_gone(ctx),
                        Ok(Err(PlayRejected::ChannelGone)) | Err(_) => {
                            act.fail("the local stream went away while subscribing", ctx)
                        }
                    }
                }));
            }
        }
    }

    /// The local room of a push has no publisher.
    fn source_gone(&mut self, ctx: &mut Context<Self>) {
        if self.recheck {
            return self.attempt(ctx);
        }
        self.teardown_link(true);
        self.drop_subscription();
        self.state = RelayState::Waiting;
        match self.spec.origin {
            RelayOrigin::Static => {
                info!("{} source ended; static push done", self.describe());
                self.manager.do_send(RelayFinished {
                    id: self.id,
                    wakes_seen: self.wakes_seen,
                });
                self.stopping = true;
                ctx.stop();
            }
            RelayOrigin::Api => {
                info!(
                    "{} waiting for stream={} to be published",
                    self.describe(),
                    self.spec.key
                );
            }
        }
    }

    fn dial(&mut self, conn: u64, frames: Option<FrameReceiver>, ctx: &mut Context<Self>) {
        let host = self.spec.url.host().to_string();
        let port = self.spec.url.port();
        let authority = self.spec.url.authority();
        let timeout = self.connect_timeout();
        debug!("{} dialling {authority}", self.describe());
        let connect = async move {
            tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await
        };
        ctx.spawn(connect.into_actor(self).map(move |result, act, ctx| {
            if act.stopping || act.conn != conn {
                return;
            }
            match result {
                Ok(Ok(stream)) => act.open_link(conn, stream, frames, ctx),
                Ok(Err(e)) => act.fail(format!("cannot connect to {authority}: {e}"), ctx),
                Err(_) => act.fail(
                    format!("timed out connecting to {authority} after {timeout:?}"),
                    ctx,
                ),
            }
        }));
    }

    fn open_link(
        &mut self,
        conn: u64,
        stream: TcpStream,
        frames: Option<FrameReceiver>,
        ctx: &mut Context<Self>,
    ) {
        // Commands are tiny; without this every round trip of the setup waits on delayed ACKs.
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let (read_half, write_half) = stream.into_split();
        let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
        let addr = ctx.address();
        let (received, sent) = match self.spec.direction {
            RelayDirection::Pull => (Some(self.bytes.clone()), None),
            RelayDirection::Push => (None, Some(self.bytes.clone())),
        };
        let reader = actix_rt::spawn(read_loop(read_half, addr.clone(), conn, received));
        let writer = actix_rt::spawn(write_loop(
            write_half,
            control_rx,
            media_rx,
            self.settings.write_timeout,
            sent,
            addr,
            conn,
        ));
        let mut handshake = Handshake::new(PeerType::Client);
        let p0_p1 = handshake.generate_outbound_p0_and_p1();
        self.link = Some(Link {
            conn,
            peer,
            handshake: Some(handshake),
            session: None,
            control: Some(control_tx),
            media: Some(media_tx),
            frames,
            pending: VecDeque::new(),
            deciding: false,
            opened: Instant::now(),
            running_since: None,
            last_media: Instant::now(),
            published: false,
            reader: Some(reader),
            writer: Some(writer),
            pump: None,
        });
        match p0_p1 {
            Ok(bytes) => self.send_control(Bytes::from(bytes), ctx),
            Err(e) => self.fail(format!("cannot start the RTMP handshake: {e:?}"), ctx),
        }
    }

    fn send_control(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        let Some(control) = self.link.as_ref().and_then(|link| link.control.as_ref()) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = control.try_send(bytes) {
            self.fail("the remote does not read what we send", ctx);
        }
        // Closed: the writer failed and its LinkLost is on the way.
    }

    fn on_bytes(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let Some(handshake) = link.handshake.as_mut() else {
            return self.feed(bytes, ctx);
        };
        match handshake.process_bytes(bytes) {
            Err(e) => self.fail(format!("RTMP handshake failed: {e:?}"), ctx),
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                if !response_bytes.is_empty() {
                    self.send_control(Bytes::from(response_bytes), ctx);
                }
            }
            Ok(HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            }) => {
                link.handshake = None;
                if !response_bytes.is_empty() {
                    self.send_control(Bytes::from(response_bytes), ctx);
                }
                self.start_session(ctx);
                if !remaining_bytes.is_empty() {
                    self.feed(&remaining_bytes, ctx);
                }
            }
        }
    }

    fn start_session(&mut self, ctx: &mut Context<Self>) {
        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(self.spec.url.tc_url());
        config.chunk_size = RTMP_OUT_CHUNK_SIZE;
        if self.spec.direction == RelayDirection::Push {
            // What encoders announce; some ingest servers look at it.
            config.flash_version = "FMLE/3.0 (compatible; Switchboard)".to_string();
        }
        let (mut session, results) = match ClientSession::new(config) {
            Ok(created) => created,
            Err(e) => return self.fail(format!("cannot start the RTMP session: {e}"), ctx),
        };
        let connect = session.request_connection(self.spec.url.app().to_string());
        if let Some(link) = self.link.as_mut() {
            link.session = Some(session);
        }
        self.apply(results, ctx);
        match connect {
            Ok(result) => self.apply(vec![result], ctx),
            Err(e) => self.fail(format!("cannot send connect: {e}"), ctx),
        }
    }

    fn feed(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        let Some(session) = self.link.as_mut().and_then(|link| link.session.as_mut()) else {
            return;
        };
        match session.handle_input(bytes) {
            Ok(results) => {
                self.apply(results, ctx);
                self.process_events(ctx);
            }
            Err(e) => self.fail(format!("RTMP protocol error from the remote: {e}"), ctx),
        }
    }

    /// Write a batch of session results whole and in order (rml_rtmp compresses chunk headers
    /// against the packets before them); events are queued and handled after the batch.
    fn apply(&mut self, results: Vec<ClientSessionResult>, ctx: &mut Context<Self>) {
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    self.send_control(Bytes::from(packet.bytes), ctx)
                }
                ClientSessionResult::RaisedEvent(event) => {
                    if let Some(link) = self.link.as_mut() {
                        link.pending.push_back(event);
                    }
                }
                ClientSessionResult::UnhandleableMessageReceived(payload) => {
                    if payload.type_id == MESSAGE_TYPE_AGGREGATE
                        && self.spec.direction == RelayDirection::Pull
                    {
                        let events = split_aggregate(&payload);
                        if let Some(link) = self.link.as_mut() {
                            link.pending.extend(events);
                        }
                    } else {
                        debug!(
                            "{} ignoring message type {}",
                            self.describe(),
                            payload.type_id
                        );
                    }
                }
            }
        }
    }

    fn process_events(&mut self, ctx: &mut Context<Self>) {
        loop {
            let Some(link) = self.link.as_mut() else {
                return;
            };
            if link.deciding {
                return;
            }
            let Some(event) = link.pending.pop_front() else {
                return;
            };
            let conn = link.conn;
            self.handle_event(event, ctx);
            if !self.is_current(conn) {
                return;
            }
        }
    }

    fn handle_event(&mut self, event: ClientSessionEvent, ctx: &mut Context<Self>) {
        match event {
            ClientSessionEvent::ConnectionRequestAccepted => {
                let Some(session) = self.link.as_mut().and_then(|link| link.session.as_mut())
                else {
                    return;
                };
                let stream = self.spec.url.stream().to_string();
                let request = match self.spec.direction {
                    RelayDirection::Pull => session.request_playback(stream),
                    RelayDirection::Push => {
                        session.request_publishing(stream, PublishRequestType::Live)
                    }
                };
                match request {
                    Ok(result) => self.apply(vec![result], ctx),
                    Err(e) => self.fail(format!("cannot request the stream: {e}"), ctx),
                }
            }
            ClientSessionEvent::ConnectionRequestRejected { description } => self.fail(
                format!(
                    "the remote refused connect to app {:?}: {description}",
                    self.spec.url.app()
                ),
                ctx,
            ),
            ClientSessionEvent::PlaybackRequestAccepted => {
                self.mark_running();
                info!("{} playing", self.describe());
            }
            ClientSessionEvent::PublishRequestAccepted => {
                self.mark_running();
                info!("{} publishing", self.describe());
                self.start_pump(ctx);
            }
            ClientSessionEvent::StreamMetadataReceived { metadata } => {
                self.on_remote_media(RemoteMedia::Metadata(metadata), ctx)
            }
            ClientSessionEvent::VideoDataReceived { timestamp, data } => self.on_remote_media(
                RemoteMedia::Frame(FrameKind::Video, timestamp.value, data),
                ctx,
            ),
            ClientSessionEvent::AudioDataReceived { timestamp, data } => self.on_remote_media(
                RemoteMedia::Frame(FrameKind::Audio, timestamp.value, data),
                ctx,
            ),
            ClientSessionEvent::UnhandleableOnStatusCode { code } => {
                if is_error_status(&code) {
                    self.fail(format!("the remote answered {code}"), ctx);
                } else {
                    debug!("{} remote status {code}", self.describe());
                }
            }
            ClientSessionEvent::UnhandleableAmf0Command { command_name, .. } => {
                debug!("{} ignoring command {command_name}", self.describe());
            }
            other => debug!("{} ignoring {other:?}", self.describe()),
        }
    }

    fn mark_running(&mut self) {
        if let Some(link) = self.link.as_mut() {
            link.running_since = Some(Instant::now());
            link.last_media = Instant::now();
        }
        self.state = RelayState::Running;
    }

    fn start_pump(&mut self, ctx: &mut Context<Self>) {
        let addr = ctx.address();
        let Some(link) = self.link.as_mut() else {
            return;
        };
        let (Some(frames), Some(media)) = (link.frames.take(), link.media.clone()) else {
            return self.fail("the local subscription is gone", ctx);
        };
        link.pump = Some(actix_rt::spawn(pump(frames, media, addr, link.conn)));
    }

    /// Pull: a metadata or media event from the remote; the first one of a connection makes
    /// this relay the local publisher.
    fn on_remote_media(&mut self, media: RemoteMedia, ctx: &mut Context<Self>) {
        if self.spec.direction != RelayDirection::Pull {
            return;
        }
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.last_media = Instant::now();
        self.last_media = Instant::now();
        if !link.published {
            link.pending.push_front(media.into_event());
            return self.publish_locally(ctx);
        }
        let Some(local) = self.local.as_ref() else {
            return;
        };
        let channel = local.channel.clone();
        let publisher = local.publisher;
        match media {
            RemoteMedia::Metadata(metadata) => {
                let msg = PublishMetadata {
                    publisher,
                    metadata,
                };
                if let Some(request) = offer(&channel, msg) {
                    self.pause_until(request, ctx);
                }
            }
            RemoteMedia::Frame(kind, timestamp, body) => {
                let msg = PublishFrame {
                    publisher,
                    kind,
                    timestamp,
                    body,
                };
                if let Some(request) = offer(&channel, msg) {
                    self.pause_until(request, ctx);
                }
            }
        }
    }

    /// The local channel's mailbox is full: read and handle nothing more from the remote until
    /// it takes `request` (TCP pushes back on the remote); frames stay in order.
    fn pause_until<F>(&mut self, request: F, ctx: &mut Context<Self>)
    where
        F: std::future::Future + 'static,
    {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.deciding = true;
        let conn = link.conn;
        ctx.wait(request.into_actor(self).map(move |_, act, ctx| {
            if let Some(link) = act.link.as_mut().filter(|link| link.conn == conn) {
                link.deciding = false;
            }
            act.process_events(ctx);
        }));
    }

    /// Attach as a new publisher of the local room. After a reconnect the previous attachment
    /// is dropped first, so the channel starts a new timeline segment (monotonic timestamps)
    /// and viewers resume at the new connection's first keyframe with its sequence headers.
    fn publish_locally(&mut self, ctx: &mut Context<Self>) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        link.deciding = true;
        let conn = link.conn;
        let peer = link.peer;
        if let Some(old) = self.local.take() {
            old.channel.do_send(Unpublish {
                publisher: old.publisher,
                clean: false,
            });
        }
        let info = ClientInfo::new(ClientKind::Relay, peer, self.spec.url.without_query());
        let publisher = info.id;
        // Before the publish, so the manager knows this publisher when StreamPublished arrives.
        self.manager.do_send(RelayPublishing {
            relay: self.id,
            publisher,
        });
        let request = self.registry.send(Publish {
            key: self.spec.key.clone(),
            info,
            control: ctx.address().recipient(),
            arbiter: None,
        });
        // `wait`: the remote's bytes queue up behind the decision (TCP backpressure) instead
        // of piling up in memory.
        ctx.wait(request.into_actor(self).map(move |result, act, ctx| {
            if let Some(link) = act.link.as_mut().filter(|link| link.conn == conn) {
                link.deciding = false;
            }
            match result {
                Ok(Ok(channel)) => {
                    if !act.is_current(conn) {
                        channel.do_send(Unpublish {
                            publisher,
                            clean: true,
                        });
                        return;
                    }
                    info!("{} publishing locally", act.describe());
                    act.local = Some(LocalPublish { channel, publisher });
                    if let Some(link) = act.link.as_mut() {
                        link.published = true;
                    }
                    act.process_events(ctx);
                }
                Ok(Err(PublishRejected::AlreadyPublishing)) => act.fail(
                    format!(
                        "stream {} is already published here (publish_conflict = \"reject\")",
                        act.spec.key
                    ),
                    ctx,
                ),
                Ok(Err(PublishRejected::ChannelGone)) => {
                    act.fail("the local stream went away while publishing", ctx)
                }
                Err(_) => act.fail("the server is shutting down", ctx),
            }
        }));
    }

    /// The connection failed: remember why and try again after the backoff.
    fn fail(&mut self, reason: impl Into<String>, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        let reason = reason.into();
        let was_stable = self
            .link
            .as_ref()
            .and_then(|link| link.running_since)
            .is_some_and(|since| since.elapsed() >= STABLE_CONNECTION);
        if was_stable {
            self.backoff.reset();
        }
        self.teardown_link(false);
        self.drop_subscription();
        // A new attempt supersedes anything still in flight for this one.
        self.conn += 1;
        let delay = self.backoff.next_delay();
        warn!(
            "{}: {reason}; retrying in {:.1}s",
            self.describe(),
            delay.as_secs_f64()
        );
        self.last_error = Some(reason);
        self.reconnects += 1;
        self.state = RelayState::BackingOff;
        if let Some(handle) = self.retry.take() {
            ctx.cancel_future(handle);
        }
        self.retry = Some(ctx.run_later(delay, |act, ctx| act.attempt(ctx)));
    }

    /// Close the connection. `graceful` tells the remote we stop (deleteStream) and lets the
    /// writer flush that before closing; otherwise every task is aborted at once.
    fn teardown_link(&mut self, graceful: bool) {
        let Some(mut link) = self.link.take() else {
            return;
        };
        if graceful {
            let direction = self.spec.direction;
            if let (Some(session), Some(control)) = (link.session.as_mut(), link.control.as_ref()) {
                let goodbye = match direction {
                    RelayDirection::Push => session.stop_publishing(),
                    RelayDirection::Pull => session.stop_playback(),
                };
                for result in goodbye.unwrap_or_default() {
                    if let ClientSessionResult::OutboundResponse(packet) = result {
                        let _ = control.try_send(Bytes::from(packet.bytes));
                    }
                }
            }
            // Detached: the writer ends by itself once its queue is drained (bounded by
            // write_timeout), closing the socket.
            link.writer.take();
        }
    }

    fn drop_subscription(&mut self) {
        if let Some((channel, viewer)) = self.subscription.take() {
            channel.do_send(Unsubscribe { viewer });
        }
    }

    fn retire_local(&mut self, why: &str) {
        if let Some(local) = self.local.take() {
            info!("{} local stream retired: {why}", self.describe());
            local.channel.do_send(Unpublish {
                publisher: local.publisher,
                clean: true,
            });
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.stopping {
            return;
        }
        let connect_timeout = self.connect_timeout();
        let read_timeout = self.settings.read_timeout;
        if let Some(link) = self.link.as_ref() {
            if link.running_since.is_none() && link.opened.elapsed() >= connect_timeout {
                return self.fail(
                    format!(
                        "the remote did not complete the RTMP setup within {connect_timeout:?}"
                    ),
                    ctx,
                );
            }
        }
        if self.spec.direction != RelayDirection::Pull {
            return;
        }
        if self.last_media.elapsed() >= read_timeout {
            self.retire_local("no media from the remote within read_timeout");
        }
        let silent = self.link.as_ref().is_some_and(|link| {
            link.running_since.is_some()
                && !link.deciding
                && link.last_media.elapsed() >= read_timeout
        });
        if silent {
            self.fail(
                format!("no media from the remote for {read_timeout:?}"),
                ctx,
            );
        }
    }
}

/// A pull's media event, whichever way it arrived.
enum RemoteMedia {
    Metadata(StreamMetadata),
    Frame(FrameKind, u32, Bytes),
}

impl RemoteMedia {
    fn into_event(self) -> ClientSessionEvent {
        match self {
            RemoteMedia::Metadata(metadata) => {
                ClientSessionEvent::StreamMetadataReceived { metadata }
            }
            RemoteMedia::Frame(FrameKind::Video, ts, data) => {
                ClientSessionEvent::VideoDataReceived {
                    timestamp: RtmpTimestamp::new(ts),
                    data,
                }
            }
            RemoteMedia::Frame(_, ts, data) => ClientSessionEvent::AudioDataReceived {
                timestamp: RtmpTimestamp::new(ts),
                data,
            },
        }
    }
}

/// Status codes after which the remote will not play or take our stream.
fn is_error_status(code: &str) -> bool {
    [
        "Failed",
        "BadName",
        "StreamNotFound",
        "Rejected",
        "Denied",
        "Unauthorized",
        "Forbidden",
        "Idle",
        "InvalidArg",
    ]
    .iter()
    .any(|word| code.contains(word))
}

/// The audio and video messages inside an aggregate message, on the aggregate's clock.
fn split_aggregate(payload: &MessagePayload) -> Vec<ClientSessionEvent> {
    let tags = match flv::parse_tags(&payload.data) {
        Ok((_, tags, _)) => tags,
        Err(e) => {
            debug!("unparseable aggregate message: {e}");
            return Vec::new();
        }
    };
    let Some(first) = tags.first().map(|tag| tag.timestamp) else {
        return Vec::new();
    };
    tags.into_iter()
        .filter_map(|tag| {
            let timestamp = RtmpTimestamp::new(
                payload
                    .timestamp
                    .value
                    .wrapping_add(tag.timestamp.wrapping_sub(first)),
            );
            match tag.tag_type {
                flv::TAG_VIDEO => Some(ClientSessionEvent::VideoDataReceived {
                    timestamp,
                    data: tag.body,
                }),
                flv::TAG_AUDIO => Some(ClientSessionEvent::AudioDataReceived {
                    timestamp,
                    data: tag.body,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Our `onMetaData` body (AMF0 "onMetaData" + array) back into rml_rtmp's metadata.
pub fn metadata_from_body(body: &[u8]) -> Option<StreamMetadata> {
    let values = rml_amf0::deserialize(&mut Cursor::new(body)).ok()?;
    let properties = values.into_iter().find_map(|value| match value {
        Amf0Value::Object(properties) => Some(properties),
        _ => None,
    })?;
    let mut metadata = StreamMetadata::new();
    metadata.apply_metadata_values(properties);
    Some(metadata)
}

async fn read_loop(
    mut socket: OwnedReadHalf,
    session: Addr<RelaySession>,
    conn: u64,
    received: Option<Arc<AtomicU64>>,
) {
    let mut buf = BytesMut::with_capacity(READ_BUFFER);
    loop {
        buf.reserve(READ_BUFFER);
        match socket.read_buf(&mut buf).await {
            Ok(0) => {
                session.do_send(LinkLost {
                    conn,
                    reason: "the remote closed the connection".to_string(),
                });
                return;
            }
            Ok(n) => {
                if let Some(received) = received.as_ref() {
                    received.fetch_add(n as u64, Ordering::Relaxed);
                }
                let bytes = buf.split().freeze();
                // Awaiting the actor is the backpressure: no read runs ahead of processing.
                if session.send(Input { conn, bytes }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                session.do_send(LinkLost {
                    conn,
                    reason: format!("reading from the remote failed: {e}"),
                });
                return;
            }
        }
    }
}

async fn write_loop(
    mut socket: OwnedWriteHalf,
    mut control: mpsc::Receiver<Bytes>,
    media: mpsc::Receiver<Bytes>,
    write_timeout: Duration,
    sent: Option<Arc<AtomicU64>>,
    session: Addr<RelaySession>,
    conn: u64,
) {
    let mut media = Some(media);
    let failure = loop {
        // Control first: a packet queued before a media packet is always written before it,
        // which is all the ordering rml_rtmp needs across its (per type) chunk streams.
        let (bytes, is_media) = tokio::select! {
            biased;
            packet = control.recv() => match packet {
                Some(packet) => (packet, false),
                None => break None,
            },
            packet = next_media(&mut media), if media.is_some() => match packet {
                Some(packet) => (packet, true),
                None => {
                    media = None;
                    continue;
                }
            },
        };
        match tokio::time::timeout(write_timeout, socket.write_all(&bytes)).await {
            Ok(Ok(())) => {
                if is_media {
                    if let Some(sent) = sent.as_ref() {
                        sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    }
                }
            }
            Ok(Err(e)) => break Some(format!("writing to the remote failed: {e}")),
            Err(_) => {
                break Some(format!(
                    "the remote accepted nothing for {:.0}s",
                    write_timeout.as_secs_f64()
                ))
            }
        }
    };
    match failure {
        None => {
            let _ = tokio::time::timeout(write_timeout, socket.shutdown()).await;
        }
        Some(reason) => session.do_send(LinkLost { conn, reason }),
    }
}

async fn next_media(media: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match media {
        Some(media) => media.recv().await,
        None => std::future::pending().await,
    }
}

/// Moves frames from the subscription to the media queue, one at a time and only when the
/// queue has room: while the remote is slow the subscription fills up and the channel skips
/// this subscriber to the next keyframe.
async fn pump(
    mut frames: FrameReceiver,
    media: mpsc::Sender<Bytes>,
    session: Addr<RelaySession>,
    conn: u64,
) {
    loop {
        let Ok(permit) = media.reserve().await else {
            return;
        };
        let Some(frame) = frames.recv().await else {
            session.do_send(SubscriptionEnded { conn });
            return;
        };
        match session.send(EncodeFrame { conn, frame }).await {
            Ok(Some(bytes)) => permit.send(bytes),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

impl Actor for RelaySession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        info!("{} started ({:?})", self.describe(), self.spec.origin);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        self.attempt(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.stopping = true;
        self.teardown_link(true);
        self.drop_subscription();
        self.retire_local("relay stopped");
        info!("{} stopped", self.describe());
    }
}

impl Handler<Shutdown> for RelaySession {
    type Result = ();

    fn handle(&mut self, _msg: Shutdown, ctx: &mut Self::Context) {
        self.stopping = true;
        if let Some(handle) = self.retry.take() {
            ctx.cancel_future(handle);
        }
        ctx.stop();
    }
}

impl Handler<SourcePublished> for RelaySession {
    type Result = ();

    fn handle(&mut self, _msg: SourcePublished, ctx: &mut Self::Context) {
        self.wakes_seen += 1;
        if self.stopping {
            return;
        }
        if self.state == RelayState::Waiting {
            self.attempt(ctx);
        } else {
            self.recheck = true;
        }
    }
}

impl Handler<GetRelayStatus> for RelaySession {
    type Result = MessageResult<GetRelayStatus>;

    fn handle(&mut self, _msg: GetRelayStatus, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.status())
    }
}

impl Handler<Input> for RelaySession {
    type Result = ();

    fn handle(&mut self, msg: Input, ctx: &mut Self::Context) {
        if self.is_current(msg.conn) {
            self.on_bytes(&msg.bytes, ctx);
        }
    }
}

impl Handler<LinkLost> for RelaySession {
    type Result = ();

    fn handle(&mut self, msg: LinkLost, ctx: &mut Self::Context) {
        if self.is_current(msg.conn) {
            self.fail(msg.reason, ctx);
        }
    }
}

impl Handler<EncodeFrame> for RelaySession {
    type Result = Option<Bytes>;

    fn handle(&mut self, msg: EncodeFrame, ctx: &mut Self::Context) -> Option<Bytes> {
        if !self.is_current(msg.conn) {
            return None;
        }
        let frame = &msg.frame;
        let session = self.link.as_mut()?.session.as_mut()?;
        let timestamp = RtmpTimestamp::new(frame.timestamp);
        // Nothing serialized is ever dropped (the pump waits for room first), so every
        // message may use compressed chunk headers.
        let result = match frame.kind {
            FrameKind::Video => session.publish_video_data(frame.body.clone(), timestamp, false),
            FrameKind::Audio => session.publish_audio_data(frame.body.clone(), timestamp, false),
            FrameKind::Metadata => session.publish_metadata(&metadata_from_body(&frame.body)?),
        };
        match result {
            Ok(ClientSessionResult::OutboundResponse(packet)) => Some(Bytes::from(packet.bytes)),
            Ok(_) => None,
            Err(e) => {
                self.fail(format!("cannot send media to the remote: {e}"), ctx);
                None
            }
        }
    }
}

impl Handler<SubscriptionEnded> for RelaySession {
    type Result = ();

    fn handle(&mut self, msg: SubscriptionEnded, ctx: &mut Self::Context) {
        if !self.is_current(msg.conn) {
            return;
        }
        info!("{} local subscription ended", self.describe());
        self.teardown_link(true);
        self.subscription = None;
        // Either the stream ended or the channel dropped us for lagging; the new attempt's
        // subscription tells which.
        self.attempt(ctx);
    }
}

impl Handler<PublisherControl> for RelaySession {
    type Result = ();

    fn handle(&mut self, msg: PublisherControl, ctx: &mut Self::Context) {
        let PublisherControl::Kick { reason } = msg;
        // The channel already forgot us; do not tell it we left.
        if self.local.take().is_some() {
            self.fail(
                format!("the local stream was taken from this relay: {reason}"),
                ctx,
            );
        }
    }
}

impl Handler<ViewerControl> for RelaySession {
    type Result = ();

    fn handle(&mut self, msg: ViewerControl, ctx: &mut Self::Context) {
        let ViewerControl::Kick { reason } = msg;
        self.subscription = None;
        self.fail(format!("the local subscription was ended: {reason}"), ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_splits_into_app_and_stream() {
        let url = RtmpUrl::parse("rtmp://Example.COM/live/room").unwrap();
        assert_eq!(url.host(), "example.com");
        assert_eq!(url.port(), 1935);
        assert_eq!(url.app(), "live");
        assert_eq!(url.stream(), "room");
        assert_eq!(url.tc_url(), "rtmp://example.com:1935/live");
        assert_eq!(url.to_string(), "rtmp://example.com:1935/live/room");
    }

    #[test]
    fn url_keeps_nested_stream_names_and_queries() {
        let url = RtmpUrl::parse("rtmp://10.0.0.1:19350/app/a/b?token=x").unwrap();
        assert_eq!(url.port(), 19350);
        assert_eq!(url.app(), "app");
        assert_eq!(url.stream(), "a/b?token=x");
        assert_eq!(url.without_query(), "rtmp://10.0.0.1:19350/app/a/b");
    }

    #[test]
    fn url_accepts_ipv6_hosts() {
        let url = RtmpUrl::parse("rtmp://[::1]:1940/live/x").unwrap();
        assert_eq!(url.host(), "::1");
        assert_eq!(url.authority(), "[::1]:1940");
    }

    #[test]
    fn url_rejects_what_cannot_be_relayed() {
        for (url, expected) in [
            (
                "http://h/live/x",
                UrlError::NotRtmp("http://h/live/x".into()),
            ),
            (
                "rtmps://h/live/x",
                UrlError::NotRtmp("rtmps://h/live/x".into()),
            ),
            ("rtmp:///live/x", UrlError::NoHost),
            ("rtmp://u:p@h/live/x", UrlError::Credentials),
            ("rtmp://h:0/live/x", UrlError::BadPort("0".into())),
            ("rtmp://h:99999/live/x", UrlError::BadPort("99999".into())),
            ("rtmp://h", UrlError::NoApp),
            ("rtmp://h/live", UrlError::NoStream),
            ("rtmp://h/live/", UrlError::NoStream),
            ("rtmp://h/live/a b", UrlError::BadCharacter),
            ("rtmp://h%2f/live/x", UrlError::BadHost("h%2f".into())),
        ] {
            assert_eq!(RtmpUrl::parse(url), Err(expected), "{url}");
        }
    }

    #[test]
    fn static_push_base_gets_the_room_appended() {
        let base = RtmpUrl::parse_base("rtmp://cdn/live").unwrap();
        assert_eq!(base.with_room("r1").to_string(), "rtmp://cdn:1935/live/r1");
        let base = RtmpUrl::parse_base("rtmp://cdn/live/").unwrap();
        assert_eq!(base.with_room("r1").to_string(), "rtmp://cdn:1935/live/r1");
        let base = RtmpUrl::parse_base("rtmp://cdn/live/sub?k=v").unwrap();
        assert_eq!(
            base.with_room("r1").to_string(),
            "rtmp://cdn:1935/live/sub/r1?k=v"
        );
    }

    #[test]
    fn allow_list_matches_normalised_prefixes_only() {
        let allow = vec![
            "rtmp://CDN.example.com/".to_string(),
            "rtmp://10.0.0.5:1940/live/".to_string(),
        ];
        let ok = |u: &str| RtmpUrl::parse(u).unwrap().allowed_by(&allow);
        assert!(ok("rtmp://cdn.example.com/live/x"));
        assert!(ok("rtmp://cdn.example.com:1935/other/x"));
        assert!(!ok("rtmp://cdn.example.com.evil.org/live/x"));
        assert!(!ok("rtmp://cdn.example.com:1936/live/x"));
        assert!(ok("rtmp://10.0.0.5:1940/live/x"));
        assert!(!ok("rtmp://10.0.0.5:1940/vod/x"));
        assert!(RtmpUrl::parse("rtmp://anything/a/b")
            .unwrap()
            .allowed_by(&[]));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let delays: Vec<u128> = (0..5).map(|_| backoff.next_base().as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
        backoff.reset();
        assert_eq!(backoff.next_base(), Duration::from_millis(500));
        for _ in 0..100 {
            let d = backoff.next_delay();
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(3600));
        }
    }

    #[test]
    fn metadata_survives_the_round_trip_through_our_body() {
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(640);
        metadata.video_height = Some(360);
        metadata.audio_sample_rate = Some(44100);
        metadata.encoder = Some("obs".into());
        let body = crate::media::amf::metadata_body(&metadata);
        assert_eq!(metadata_from_body(&body), Some(metadata));
    }

    #[test]
    fn aggregate_messages_become_frames_on_the_aggregate_clock() {
        let mut data = Vec::new();
        data.extend_from_slice(&flv::encode_tag(9, 5000, &[0x17, 1, 0, 0, 0]));
        data.extend_from_slice(&flv::encode_tag(8, 5020, &[0xaf, 1, 7]));
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(100),
            type_id: MESSAGE_TYPE_AGGREGATE,
            message_stream_id: 1,
            data: Bytes::from(data),
        };
        let events = split_aggregate(&payload);
        assert_eq!(
            events,
            vec![
                ClientSessionEvent::VideoDataReceived {
                    timestamp: RtmpTimestamp::new(100),
                    data: Bytes::from_static(&[0x17, 1, 0, 0, 0]),
                },
                ClientSessionEvent::AudioDataReceived {
                    timestamp: RtmpTimestamp::new(120),
                    data: Bytes::from_static(&[0xaf, 1, 7]),
                },
            ]
        );
    }
}
