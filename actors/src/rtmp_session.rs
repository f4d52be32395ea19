//! The RTMP session: one actor per TCP connection, publisher or player.
//!
//! It wraps rml_rtmp's sans-IO handshake and `ServerSession`: bytes from the socket go in,
//! packets come out in order and go to the connection's writer task. Admission decisions
//! (app, key, registry) are made before any `Publish.Start`/`Play.Start` is sent; a refused
//! client gets an error status and the connection closes.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use log::{debug, info, warn};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{BytesCodec, FramedRead};

use crate::client::{ClientId, ClientInfo, ClientKind, PublisherControl, StreamKey, ViewerControl};
use crate::key_store::{KeyStore, KeyStoreError};
use crate::media::frame::RTMP_OUT_CHUNK_SIZE;
use crate::media::{amf, rtmp_chunk, FrameKind};
use crate::registry::{Play, Publish, Registry};
use crate::settings::StreamSettings;
use crate::socket_writer::{self, WriterCommand, WriterEnd, WriterHooks, CONTROL_QUEUE};
use crate::stream_channel::{
    offer, PlayRejected, PublishFrame, PublishMetadata, PublishRejected, StreamChannel, Unpublish,
    Unsubscribe,
};

/// Chunk stream for the status messages we write ourselves; rml_rtmp only uses 2..=6.
const CSID_STATUS: u32 = 10;
/// How long a refused or finished connection may linger for the peer to read our last words.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
const TICK: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Messages

/// The writer task's frame queue ended: the stream is over for this player.
#[derive(Message)]
#[rtype(result = "()")]
struct MediaEnded;

/// The writer task ended.
#[derive(Message)]
#[rtype(result = "()")]
struct WriterFinished(WriterEnd);

// ---------------------------------------------------------------------------------------------
// The actor

enum Role {
    /// Connected, not yet publishing or playing.
    Idle,
    Publishing {
        channel: Addr<StreamChannel>,
        key: StreamKey,
        last_media: Instant,
    },
    Playing {
        channel: Addr<StreamChannel>,
        key: StreamKey,
        stream_id: u32,
    },
}

/// Why a publish request was refused.
enum PublishDenied {
    BadKey,
    Store(KeyStoreError),
    Registry(PublishRejected),
    ServerGone,
}

pub struct RtmpSession {
    id: ClientId,
    peer: SocketAddr,
    local: SocketAddr,
    registry: Addr<Registry>,
    keys: Arc<dyn KeyStore>,
    settings: Arc<StreamSettings>,
    handshake: Option<Handshake>,
    session: Option<ServerSession>,
    writer: Option<mpsc::Sender<WriterCommand>>,
    /// Events waiting while an admission decision (or a full channel mailbox) is pending,
    /// handled in arrival order.
    pending: VecDeque<ServerSessionEvent>,
    deciding: bool,
    app: Option<String>,
    role: Role,
    last_input: Instant,
    /// Set once we decided to close: input is ignored, the actor stops after `CLOSE_LINGER`.
    closing: bool,
    /// Which pool arbiter this session runs on.
    arbiter: Option<usize>,
}

impl RtmpSession {
    /// Start a session for an accepted socket, on the current arbiter (`arbiter`: its index in
    /// the registry's pool, if it is one of them).
    pub fn start(
        stream: TcpStream,
        registry: Addr<Registry>,
        keys: Arc<dyn KeyStore>,
        settings: Arc<StreamSettings>,
        arbiter: Option<usize>,
    ) -> io::Result<Addr<RtmpSession>> {
        // Replies to connect/createStream/publish are small; without this, Nagle and the
        // peer's delayed ACK add ~40 ms to every round trip of the setup.
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        let (read_half, write_half) = stream.into_split();
        let write_timeout = settings.write_timeout;
        Ok(RtmpSession::create(move |ctx| {
            ctx.add_stream(FramedRead::new(read_half, BytesCodec::new()));
            let (tx, rx) = mpsc::channel(CONTROL_QUEUE);
            let media_end = ctx.address();
            let finished = ctx.address();
            socket_writer::spawn(
                write_half,
                rx,
                write_timeout,
                WriterHooks {
                    on_media_end: Box::new(move || media_end.do_send(MediaEnded)),
                    on_finished: Box::new(move |end| finished.do_send(WriterFinished(end))),
                },
            );
            RtmpSession {
                id: uuid::Uuid::new_v4(),
                peer,
                local,
                registry,
                keys,
                settings,
                handshake: Some(Handshake::new(PeerType::Server)),
                session: None,
                writer: Some(tx),
                pending: VecDeque::new(),
                deciding: false,
                app: None,
                role: Role::Idle,
                last_input: Instant::now(),
                closing: false,
                arbiter,
            }
        }))
    }

    fn send(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        let Some(writer) = self.writer.as_ref() else {
            return;
        };
        if writer.try_send(WriterCommand::Bytes(bytes)).is_err() {
            warn!(
                "conn={} peer={} does not read its replies; closing",
                self.id, self.peer
            );
            self.writer = None;
            ctx.stop();
        }
    }

    fn write_results(&mut self, results: Vec<ServerSessionResult>, ctx: &mut Context<Self>) {
        // A batch is written whole and in order: rml_rtmp compresses chunk headers against
        // the packets before them.
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.send(Bytes::from(packet.bytes), ctx)
                }
                ServerSessionResult::RaisedEvent(event) => self.pending.push_back(event),
                ServerSessionResult::UnhandleableMessageReceived(payload) => {
                    debug!("conn={} ignoring message type {}", self.id, payload.type_id);
                }
            }
        }
    }

    fn on_bytes(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        if let Some(handshake) = self.handshake.as_mut() {
            match handshake.process_bytes(bytes) {
                Err(e) => {
                    debug!("conn={} peer={} bad handshake: {e:?}", self.id, self.peer);
                    ctx.stop();
                }
                Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                    self.send(Bytes::from(response_bytes), ctx);
                }
                Ok(HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                }) => {
                    self.handshake = None;
                    self.send(Bytes::from(response_bytes), ctx);
                    let mut config = ServerSessionConfig::new();
                    config.chunk_size = RTMP_OUT_CHUNK_SIZE;
                    match ServerSession::new(config) {
                        Ok((session, results)) => {
                            self.session = Some(session);
                            self.write_results(results, ctx);
                        }
                        Err(e) => {
                            warn!("conn={} cannot start RTMP session: {e:?}", self.id);
                            ctx.stop();
                            return;
                        }
                    }
                    if !remaining_bytes.is_empty() {
                        self.feed(&remaining_bytes, ctx);
                    }
                }
            }
            return;
        }
        self.feed(bytes, ctx);
    }

    fn feed(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.handle_input(bytes) {
            Ok(results) => {
                self.write_results(results, ctx);
                self.process_events(ctx);
            }
            Err(e) => {
                warn!(
                    "conn={} peer={} RTMP protocol error: {e:?}",
                    self.id, self.peer
                );
                let stream_id = match &self.role {
                    Role::Playing { stream_id, .. } => *stream_id,
                    _ => 1,
                };
                self.refuse_stream(
                    stream_id,
                    "NetStream.Failed",
                    &format!("protocol error: {e}"),
                    ctx,
                );
            }
        }
    }

    fn process_events(&mut self, ctx: &mut Context<Self>) {
        while !self.deciding && !self.closing {
            let Some(event) = self.pending.pop_front() else {
                break;
            };
            self.handle_event(event, ctx);
        }
    }

    fn handle_event(&mut self, event: ServerSessionEvent, ctx: &mut Context<Self>) {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => self.on_connect(request_id, app_name, ctx),
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => self.on_publish(request_id, app_name, stream_key, ctx),
            ServerSessionEvent::PlayStreamRequested {
                request_id,
                app_name,
                stream_key,
                stream_id,
                ..
            } => self.on_play(request_id, app_name, stream_key, stream_id, ctx),
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if let Role::Publishing { channel, key, .. } = &self.role {
                    info!("conn={} stream={key} unpublished", self.id);
                    channel.do_send(Unpublish {
                        publisher: self.id,
                        clean: true,
                    });
                }
                self.role = Role::Idle;
            }
            ServerSessionEvent::PlayStreamFinished { .. } => {
                if let Role::Playing { channel, .. } = &self.role {
                    channel.do_send(Unsubscribe { viewer: self.id });
                    if let Some(writer) = self.writer.as_ref() {
                        let _ = writer.try_send(WriterCommand::StopMedia);
                    }
                }
                self.role = Role::Idle;
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Role::Publishing { channel, .. } = &self.role {
                    let msg = PublishMetadata {
                        publisher: self.id,
                        metadata,
                    };
                    if let Some(request) = offer(channel, msg) {
                        self.pause_until(request, ctx);
                    }
                }
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.on_media(FrameKind::Video, data, timestamp.value, ctx),
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.on_media(FrameKind::Audio, data, timestamp.value, ctx),
            ServerSessionEvent::UnhandleableAmf0Command {
                command_name,
                additional_values,
                ..
            } => {
                // Some encoders wait for onFCPublish before they publish.
                if command_name == "FCPublish" {
                    let key = additional_values
                        .iter()
                        .find_map(|v| match v {
                            rml_rtmp::rml_amf0::Amf0Value::Utf8String(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    let body = amf::fc_publish_status_body(strip_query(&key));
                    self.send_command(0, body, ctx);
                } else {
                    debug!("conn={} ignoring command {command_name}", self.id);
                }
            }
            _ => {}
        }
    }

    fn on_media(&mut self, kind: FrameKind, body: Bytes, timestamp: u32, ctx: &mut Context<Self>) {
        let Role::Publishing {
            channel,
            last_media,
            ..
        } = &mut self.role
        else {
            return;
        };
        *last_media = Instant::now();
        let msg = PublishFrame {
            publisher: self.id,
            kind,
            timestamp,
            body,
        };
        if let Some(request) = offer(channel, msg) {
            self.pause_until(request, ctx);
        }
    }

    /// The channel's mailbox is full: handle no more events or input until it takes `request`.
    fn pause_until<F>(&mut self, request: F, ctx: &mut Context<Self>)
    where
        F: std::future::Future + 'static,
    {
        self.deciding = true;
        ctx.wait(request.into_actor(self).map(|_, act, ctx| {
            act.deciding = false;
            act.process_events(ctx);
        }));
    }

    fn on_connect(&mut self, request_id: u32, app: String, ctx: &mut Context<Self>) {
        if self.settings.live_app(&app).is_none() {
            info!(
                "conn={} peer={} refused: app {app:?} is not configured",
                self.id, self.peer
            );
            let description = format!(
                "NetConnection.Connect.Rejected: application {app:?} is not configured on this server"
            );
            // connect is always transaction 1 in practice (ffmpeg, OBS/librtmp, GStreamer).
            let body = amf::error_body(1.0, "NetConnection.Connect.Rejected", &description);
            self.send_command(0, body, ctx);
            self.close(ctx);
            return;
        }
        self.app = Some(app);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.accept_request(request_id) {
            Ok(results) => self.write_results(results, ctx),
            Err(e) => {
                warn!("conn={} cannot accept connect: {e:?}", self.id);
                ctx.stop();
            }
        }
    }

    fn on_publish(
        &mut self,
        request_id: u32,
        app: String,
        stream_key: String,
        ctx: &mut Context<Self>,
    ) {
        // rml_rtmp does not tell us the stream id of a publish; every client we know publishes
        // on the first stream it creates, id 1.
        let stream_id = 1;
        if !matches!(self.role, Role::Idle) {
            self.refuse_stream(
                stream_id,
                "NetStream.Publish.BadName",
                "this connection is already publishing or playing",
                ctx,
            );
            return;
        }
        let key = strip_query(&stream_key).to_string();
        let lookup = if self.settings.noauth {
            let room = key.clone();
            Box::pin(async move { Ok(Some(room)) }) as crate::key_store::BoxFuture<_>
        } else {
            self.keys.room_for_key(&key)
        };
        let registry = self.registry.clone();
        let control = ctx.address().recipient::<PublisherControl>();
        let id = self.id;
        let peer = self.peer;
        let local = self.local;
        let decision_app = app.clone();
        let arbiter = self.arbiter;
        let decision = async move {
            let room = match lookup.await {
                Ok(Some(room)) => room,
                Ok(None) => return Err(PublishDenied::BadKey),
                Err(e) => return Err(PublishDenied::Store(e)),
            };
            let key = StreamKey::new(decision_app, room);
            let mut info = ClientInfo::new(
                ClientKind::RtmpPublisher,
                Some(peer),
                format!("rtmp://{local}/{key}"),
            );
            info.id = id;
            match registry
                .send(Publish {
                    key: key.clone(),
                    info,
                    control,
                    arbiter,
                })
                .await
            {
                Ok(Ok(channel)) => Ok((key, channel)),
                Ok(Err(e)) => Err(PublishDenied::Registry(e)),
                Err(_) => Err(PublishDenied::ServerGone),
            }
        };
        self.deciding = true;
        ctx.wait(decision.into_actor(self).map(move |result, act, ctx| {
            act.deciding = false;
            act.finish_publish(request_id, stream_id, &app, result, ctx);
            act.process_events(ctx);
        }));
    }

    fn finish_publish(
        &mut self,
        request_id: u32,
        stream_id: u32,
        app: &str,
        result: Result<(StreamKey, Addr<StreamChannel>), PublishDenied>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok((key, channel)) => {
                let Some(session) = self.session.as_mut() else {
                    return;
                };
                match session.accept_request(request_id) {
                    Ok(results) => {
                        info!(
                            "conn={} peer={} publishing stream={key}",
                            self.id, self.peer
                        );
                        self.role = Role::Publishing {
                            channel,
                            key,
                            last_media: Instant::now(),
                        };
                        self.write_results(results, ctx);
                    }
                    Err(e) => {
                        warn!("conn={} cannot accept publish: {e:?}", self.id);
                        channel.do_send(Unpublish {
                            publisher: self.id,
                            clean: true,
                        });
                        ctx.stop();
                    }
                }
            }
            Err(denied) => {
                let (code, description) = match denied {
                    PublishDenied::BadKey => (
                        "NetStream.Publish.BadName",
                        format!("invalid stream key for application {app:?}; get one from /control/get?room=<room>"),
                    ),
                    PublishDenied::Store(e) => ("NetStream.Publish.Failed", e.to_string()),
                    PublishDenied::Registry(PublishRejected::AlreadyPublishing) => (
                        "NetStream.Publish.BadName",
                        "stream is already being published".to_string(),
                    ),
                    PublishDenied::Registry(PublishRejected::ChannelGone)
                    | PublishDenied::ServerGone => (
                        "NetStream.Publish.Failed",
                        "server is shutting down".to_string(),
                    ),
                };
                info!(
                    "conn={} peer={} publish refused: {code} {description}",
                    self.id, self.peer
                );
                self.refuse_stream(stream_id, code, &description, ctx);
            }
        }
    }

    fn on_play(
        &mut self,
        request_id: u32,
        app: String,
        stream_key: String,
        stream_id: u32,
        ctx: &mut Context<Self>,
    ) {
        if !matches!(self.role, Role::Idle) {
            self.refuse_stream(
                stream_id,
                "NetStream.Play.Failed",
                "this connection is already publishing or playing",
                ctx,
            );
            return;
        }
        let key = StreamKey::new(app, strip_query(&stream_key));
        let mut info = ClientInfo::new(
            ClientKind::RtmpPlayer,
            Some(self.peer),
            format!("rtmp://{}/{key}", self.local),
        );
        info.id = self.id;
        let request = self.registry.send(Play {
            key: key.clone(),
            info,
            control: Some(ctx.address().recipient::<ViewerControl>()),
            require_publisher: false,
        });
        self.deciding = true;
        ctx.wait(request.into_actor(self).map(move |result, act, ctx| {
            act.deciding = false;
            match result {
                Ok(Ok(subscription)) => {
                    let Some(session) = act.session.as_mut() else {
                        return;
                    };
                    match session.accept_request(request_id) {
                        Ok(results) => {
                            info!("conn={} peer={} playing stream={key}", act.id, act.peer);
                            act.write_results(results, ctx);
                            // Write from the channel's thread unless we are already on it.
                            let home = subscription
                                .home
                                .filter(|(index, _)| Some(*index) != act.arbiter)
                                .map(|(_, arbiter)| arbiter);
                            if let Some(writer) = act.writer.as_ref() {
                                let _ = writer.try_send(WriterCommand::Media {
                                    frames: subscription.frames,
                                    stream_id,
                                    home,
                                });
                            }
                            act.role = Role::Playing {
                                channel: subscription.channel,
                                key,
                                stream_id,
                            };
                        }
                        Err(e) => {
                            warn!("conn={} cannot accept play: {e:?}", act.id);
                            subscription.channel.do_send(Unsubscribe { viewer: act.id });
                            ctx.stop();
                        }
                    }
                }
                Ok(Err(PlayRejected::NotPublishing)) => act.refuse_stream(
                    stream_id,
                    "NetStream.Play.StreamNotFound",
                    &format!("stream {key} is not published"),
                    ctx,
                ),
                Ok(Err(PlayRejected::ChannelGone)) | Err(_) => act.refuse_stream(
                    stream_id,
                    "NetStream.Play.Failed",
                    "server is shutting down",
                    ctx,
                ),
            }
            act.process_events(ctx);
        }));
    }

    /// Write one AMF0 command message of our own, on a chunk stream rml_rtmp never uses.
    fn send_command(&mut self, stream_id: u32, body: Bytes, ctx: &mut Context<Self>) {
        let chunks =
            rtmp_chunk::encode_message(CSID_STATUS, 20, stream_id, 0, &body, RTMP_OUT_CHUNK_SIZE);
        self.send(chunks, ctx);
    }

    /// Tell the client why its stream is refused or ended, then close the connection.
    fn refuse_stream(
        &mut self,
        stream_id: u32,
        code: &str,
        description: &str,
        ctx: &mut Context<Self>,
    ) {
        // ffmpeg prints only the description, so it carries the code too.
        let body = amf::on_status_body(code, &format!("{code}: {description}"), "error");
        self.send_command(stream_id, body, ctx);
        self.close(ctx);
    }

    /// Stop reading, let the writer flush and close, and stop the actor shortly after.
    fn close(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.leave_stream(false);
        if let Some(writer) = self.writer.take() {
            let _ = writer.try_send(WriterCommand::Close);
        }
        ctx.run_later(CLOSE_LINGER, |_, ctx| ctx.stop());
    }

    /// Detach from the channel, whichever role we had.
    fn leave_stream(&mut self, clean: bool) {
        match std::mem::replace(&mut self.role, Role::Idle) {
            Role::Publishing { channel, .. } => channel.do_send(Unpublish {
                publisher: self.id,
                clean,
            }),
            Role::Playing { channel, .. } => channel.do_send(Unsubscribe { viewer: self.id }),
            Role::Idle => {}
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        let read_timeout = self.settings.read_timeout;
        match &self.role {
            Role::Publishing {
                key, last_media, ..
            } if last_media.elapsed() >= read_timeout => {
                info!(
                    "conn={} stream={key} publisher sent no media for {:?}; closing",
                    self.id, read_timeout
                );
                // Viewers have already seen nothing for read_timeout: end them now rather
                // than waiting for this publisher to come back.
                self.leave_stream(true);
                self.refuse_stream(
                    1,
                    "NetStream.Publish.Idle",
                    "no media received within read_timeout",
                    ctx,
                );
            }
            Role::Idle if !self.deciding && self.last_input.elapsed() >= read_timeout => {
                debug!(
                    "conn={} peer={} idle without publish or play; closing",
                    self.id, self.peer
                );
                self.close(ctx);
            }
            _ => {}
        }
    }
}

/// Stream names may carry a query string (`key?token=..`); it is not part of the name.
fn strip_query(name: &str) -> &str {
    name.split('?').next().unwrap_or(name)
}

impl Actor for RtmpSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        debug!("conn={} peer={} connected", self.id, self.peer);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // A connection that vanished mid-publish is not a clean end: viewers wait for the
        // encoder to come back (see StreamChannel's Unpublish).
        self.leave_stream(false);
        debug!("conn={} peer={} closed", self.id, self.peer);
    }
}

impl StreamHandler<Result<BytesMut, io::Error>> for RtmpSession {
    fn handle(&mut self, item: Result<BytesMut, io::Error>, ctx: &mut Self::Context) {
        match item {
            Ok(bytes) => {
                self.last_input = Instant::now();
                if !self.closing {
                    self.on_bytes(&bytes, ctx);
                }
            }
            Err(e) => {
                debug!("conn={} read error: {e}", self.id);
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<MediaEnded> for RtmpSession {
    type Result = ();

    fn handle(&mut self, _msg: MediaEnded, ctx: &mut Self::Context) {
        let Role::Playing { stream_id, key, .. } = &self.role else {
            return;
        };
        let stream_id = *stream_id;
        info!("conn={} stream={key} ended for this player", self.id);
        if let Some(session) = self.session.as_mut() {
            if let Ok(packet) = session.finish_playing(stream_id) {
                self.send(Bytes::from(packet.bytes), ctx);
            }
        }
        let body = amf::on_status_body(
            "NetStream.Play.UnpublishNotify",
            "the stream ended",
            "status",
        );
        self.send_command(stream_id, body, ctx);
        self.role = Role::Idle;
        self.close(ctx);
    }
}

impl Handler<WriterFinished> for RtmpSession {
    type Result = ();

    fn handle(&mut self, msg: WriterFinished, ctx: &mut Self::Context) {
        match msg.0 {
            WriterEnd::Closed => {}
            WriterEnd::Failed(e) => debug!("conn={} write failed: {e}", self.id),
            WriterEnd::TimedOut => info!(
                "conn={} peer={} not reading for {:?}; closing",
                self.id, self.peer, self.settings.write_timeout
            ),
        }
        self.writer = None;
        ctx.stop();
    }
}

impl Handler<PublisherControl> for RtmpSession {
    type Result = ();

    fn handle(&mut self, msg: PublisherControl, ctx: &mut Self::Context) {
        let PublisherControl::Kick { reason } = msg;
        if let Role::Publishing { key, .. } = &self.role {
            info!("conn={} stream={key} publisher closed: {reason}", self.id);
        }
        // The channel already forgot us; do not tell it we left.
        self.role = Role::Idle;
        self.refuse_stream(1, "NetStream.Publish.BadName", &reason, ctx);
    }
}

impl Handler<ViewerControl> for RtmpSession {
    type Result = ();

    fn handle(&mut self, msg: ViewerControl, ctx: &mut Self::Context) {
        let ViewerControl::Kick { reason } = msg;
        let stream_id = match &self.role {
            Role::Playing { stream_id, .. } => *stream_id,
            _ => 1,
        };
        self.role = Role::Idle;
        self.refuse_stream(stream_id, "NetStream.Play.Stop", &reason, ctx);
    }
}
