//! The stream channel: one actor per live `app/room`.
//!
//! It owns the stream's GOP cache, its timeline and its viewers. Frames arrive from the
//! publisher's session, become one `Arc<MediaFrame>` each, and go to every viewer's bounded
//! queue by refcount. A viewer whose queue is full skips to the next keyframe (the drop is
//! counted); the publisher and the other viewers never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::SendError;
use actix::prelude::*;
use bytes::Bytes;
use log::{debug, info};
use rml_rtmp::sessions::StreamMetadata;
use tokio::sync::{mpsc, oneshot};

use crate::client::{
    ClientId, ClientInfo, ClientSnapshot, PublisherControl, StreamKey, TrafficStats, ViewerControl,
};
use crate::media::codec;
use crate::media::gop::GopCache;
use crate::media::timeline::Timeline;
use crate::media::{amf, FrameKind, MediaFrame};
use crate::registry::{ChannelEmptied, Registry};
use crate::settings::StreamSettings;

/// How often rates are measured and timeouts checked.
const TICK: Duration = Duration::from_secs(1);
/// Rates are averaged over this window (livego recomputes every 5 s).
const RATE_WINDOW: Duration = Duration::from_secs(3);

pub type FrameReceiver = mpsc::Receiver<Arc<MediaFrame>>;

/// Messages a channel's mailbox holds before a publisher must wait for it. A publisher that
/// outpaces its channel is paused (its socket is not read, so TCP pushes back on the encoder)
/// instead of queueing frames without limit; see [`offer`].
pub const PUBLISH_BACKLOG: usize = 256;

/// Offer a publisher's message to its channel. `None`: accepted (or the channel is gone).
/// `Some(request)`: the mailbox is full; the caller pauses its input until the request
/// resolves, which keeps its frames in order.
pub fn offer<M>(
    channel: &Addr<StreamChannel>,
    msg: M,
) -> Option<actix::dev::Request<StreamChannel, M>>
where
    M: Message<Result = ()> + Send + 'static,
    StreamChannel: Handler<M>,
{
    match channel.try_send(msg) {
        Err(SendError::Full(msg)) => Some(channel.send(msg)),
        Ok(()) | Err(SendError::Closed(_)) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Messages

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishRejected {
    /// Someone is publishing and the policy is `reject`.
    AlreadyPublishing,
    /// The channel stopped between routing and delivery; the caller may retry.
    ChannelGone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayRejected {
    /// Nobody publishes this stream (HTTP viewers are not kept waiting).
    NotPublishing,
    ChannelGone,
}

/// Registry → channel: make this client the stream's publisher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachPublisher {
    pub info: ClientInfo,
    pub control: Recipient<PublisherControl>,
    pub reply: oneshot::Sender<Result<(), PublishRejected>>,
}

/// Registry → channel: add a viewer; the reply carries its frame queue, GOP replay included.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachViewer {
    pub info: ClientInfo,
    pub control: Option<Recipient<ViewerControl>>,
    /// Refuse when nobody publishes (HTTP-FLV answers 404) instead of waiting for a publisher.
    pub require_publisher: bool,
    pub reply: oneshot::Sender<Result<FrameReceiver, PlayRejected>>,
}

/// Publisher → channel: one audio or video message, timestamp as the publisher sent it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishFrame {
    pub publisher: ClientId,
    pub kind: FrameKind,
    pub timestamp: u32,
    pub body: Bytes,
}

/// Publisher → channel: new `onMetaData`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishMetadata {
    pub publisher: ClientId,
    pub metadata: StreamMetadata,
}

/// Publisher → channel: the publisher is gone. `clean` when it unpublished (viewers end at
/// once); otherwise its connection dropped and viewers wait `write_timeout` for it to return.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unpublish {
    pub publisher: ClientId,
    pub clean: bool,
}

/// Viewer → channel: the viewer left.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub viewer: ClientId,
}

/// Anyone → channel: end one client (API kick). Replies whether the client was here.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct KickClient {
    pub id: ClientId,
    pub reason: String,
}

/// Registry → channel: end the stream now (server shutdown): the publisher is told why and
/// closed, every subscriber's queue ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndStream {
    pub reason: String,
}

/// Registry → channel: nobody is here and nothing is in flight; stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// A snapshot of the stream for statistics.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub key: StreamKey,
    pub publisher: Option<ClientSnapshot>,
    pub viewers: Vec<ClientSnapshot>,
    pub video_codec: Option<&'static str>,
    pub audio_codec: Option<&'static str>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: f64,
    pub gop_cache_frames: usize,
}

#[derive(Message)]
#[rtype(result = "StreamInfo")]
pub struct GetStreamInfo;

// ---------------------------------------------------------------------------------------------
// The actor

struct PublisherSlot {
    info: ClientInfo,
    control: Recipient<PublisherControl>,
    traffic: Traffic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Frames go straight into the queue.
    Live,
    /// The queue overflowed; wait for a keyframe with room behind it. Skipped frames count as drops.
    Skipping,
    /// A new publisher took over; wait for its first keyframe (nothing is lost, nothing counted).
    Resync,
}

struct ViewerSlot {
    info: ClientInfo,
    control: Option<Recipient<ViewerControl>>,
    queue: mpsc::Sender<Arc<MediaFrame>>,
    delivery: Delivery,
    /// When the viewer last started skipping; one that never recovers is dropped.
    skipping_since: Option<Instant>,
    /// The header generation this viewer last received whole.
    headers_seen: u64,
    traffic: Traffic,
}

#[derive(Default)]
struct Traffic {
    stats: TrafficStats,
    window_video: u64,
    window_audio: u64,
}

impl Traffic {
    fn count(&mut self, frame: &MediaFrame) {
        let len = frame.len() as u64;
        match frame.kind {
            FrameKind::Video => {
                self.stats.video_total_bytes += len;
                self.window_video += len;
            }
            FrameKind::Audio => {
                self.stats.audio_total_bytes += len;
                self.window_audio += len;
            }
            FrameKind::Metadata => {}
        }
    }

    fn measure(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(0.001);
        self.stats.video_speed = (self.window_video as f64 * 8.0 / secs / 1000.0).round() as u64;
        self.stats.audio_speed = (self.window_audio as f64 * 8.0 / secs / 1000.0).round() as u64;
        self.window_video = 0;
        self.window_audio = 0;
    }
}

pub struct StreamChannel {
    key: StreamKey,
    registry: Addr<Registry>,
    settings: Arc<StreamSettings>,
    publisher: Option<PublisherSlot>,
    /// When the stream lost its publisher (or was created by a waiting player).
    orphaned_since: Option<Instant>,
    /// Whether any publisher ever published here (a new one then continues the timeline).
    had_publisher: bool,
    viewers: HashMap<ClientId, ViewerSlot>,
    gop: GopCache,
    timeline: Timeline,
    /// Bumped whenever metadata or a sequence header changes, so a resuming viewer gets them again.
    header_generation: u64,
    /// Attach messages handled so far; the registry compares it with what it sent.
    attaches_handled: u64,
    /// Whether an `ChannelEmptied` report is outstanding for the current attach count.
    emptied_reported: bool,
    width: Option<u32>,
    height: Option<u32>,
    metadata_fps: Option<f64>,
    video_frames_in_window: u64,
    fps: f64,
    window_started: Instant,
}

impl StreamChannel {
    pub fn new(key: StreamKey, registry: Addr<Registry>, settings: Arc<StreamSettings>) -> Self {
        let gop = GopCache::new(settings.gop.clone());
        StreamChannel {
            key,
            registry,
            settings,
            publisher: None,
            orphaned_since: Some(Instant::now()),
            had_publisher: false,
            viewers: HashMap::new(),
            gop,
            timeline: Timeline::new(),
            header_generation: 0,
            attaches_handled: 0,
            emptied_reported: false,
            width: None,
            height: None,
            metadata_fps: None,
            video_frames_in_window: 0,
            fps: 0.0,
            window_started: Instant::now(),
        }
    }

    fn is_empty(&self) -> bool {
        self.publisher.is_none() && self.viewers.is_empty()
    }

    /// Tell the registry we are empty, once per attach count.
    fn report_if_empty(&mut self) {
        if self.is_empty() && !self.emptied_reported {
            self.emptied_reported = true;
            self.registry.do_send(ChannelEmptied {
                key: self.key.clone(),
                attaches_handled: self.attaches_handled,
            });
        }
    }

    /// End every viewer: dropping its queue ends its response or RTMP play.
    fn end_all_viewers(&mut self, why: &str) {
        if !self.viewers.is_empty() {
            info!(
                "stream={} ending {} viewer(s): {why}",
                self.key,
                self.viewers.len()
            );
        }
        self.viewers.clear();
    }

    fn fan_out(&mut self, frame: &Arc<MediaFrame>) {
        let has_video = self.gop.video_header().is_some();
        let header_generation = self.header_generation;
        let mut closed = Vec::new();
        for (id, viewer) in self.viewers.iter_mut() {
            if !deliver(viewer, frame, &self.gop, header_generation, has_video) {
                closed.push(*id);
            }
        }
        for id in closed {
            if let Some(viewer) = self.viewers.remove(&id) {
                debug!(
                    "stream={} viewer={} gone (queue closed)",
                    self.key, viewer.info.id
                );
            }
        }
    }

    /// `timestamp` is already on the channel's timeline.
    fn accept_frame(&mut self, kind: FrameKind, timestamp: u32, body: Bytes) {
        let frame = Arc::new(MediaFrame::new(kind, timestamp, body));
        if frame.is_sequence_header || kind == FrameKind::Metadata {
            self.header_generation += 1;
        }
        if kind == FrameKind::Video {
            if frame.is_sequence_header {
                if let Some(cfg) = codec::avc_config_from_video_body(&frame.body) {
                    self.width = Some(cfg.width);
                    self.height = Some(cfg.height);
                }
            } else {
                self.video_frames_in_window += 1;
            }
        }
        if let Some(publisher) = self.publisher.as_mut() {
            publisher.traffic.count(&frame);
        }
        self.gop.push(&frame);
        self.fan_out(&frame);
    }

    fn tick(&mut self) {
        let elapsed = self.window_started.elapsed();
        if elapsed >= RATE_WINDOW {
            self.window_started = Instant::now();
            self.fps = self.video_frames_in_window as f64 / elapsed.as_secs_f64();
            self.video_frames_in_window = 0;
            if let Some(publisher) = self.publisher.as_mut() {
                publisher.traffic.measure(elapsed);
            }
            for viewer in self.viewers.values_mut() {
                viewer.traffic.measure(elapsed);
            }
        }
        // Viewers whose client went away are noticed here even when no frames flow; a viewer
        // that has not been able to take a keyframe for write_timeout is not coming back.
        let write_timeout = self.settings.write_timeout;
        let key = &self.key;
        self.viewers.retain(|id, viewer| {
            if viewer.queue.is_closed() {
                return false;
            }
            let stalled = viewer
                .skipping_since
                .is_some_and(|since| since.elapsed() >= write_timeout);
            if stalled {
                info!("stream={key} viewer={id} stalled for {write_timeout:?}; dropping it");
            }
            !stalled
        });
        if let Some(since) = self.orphaned_since {
            if since.elapsed() >= self.settings.write_timeout && !self.viewers.is_empty() {
                self.end_all_viewers("no publisher within write_timeout");
            }
        }
        self.report_if_empty();
    }
}

/// Put one frame into one viewer's queue under the drop-to-keyframe policy. Returns `false`
/// when the viewer is gone.
fn deliver(
    viewer: &mut ViewerSlot,
    frame: &Arc<MediaFrame>,
    gop: &GopCache,
    header_generation: u64,
    has_video: bool,
) -> bool {
    match viewer.delivery {
        Delivery::Live => match viewer.queue.try_send(frame.clone()) {
            Ok(()) => {
                viewer.traffic.count(frame);
                if frame.is_sequence_header || frame.kind == FrameKind::Metadata {
                    viewer.headers_seen = header_generation;
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                viewer.delivery = Delivery::Skipping;
                viewer.skipping_since = Some(Instant::now());
                viewer.traffic.stats.dropped_frames += 1;
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        },
        Delivery::Skipping | Delivery::Resync => {
            let resume_point = if has_video {
                frame.kind == FrameKind::Video && frame.is_keyframe
            } else {
                // Audio-only: any audio frame is a clean place to resume.
                frame.kind == FrameKind::Audio && !frame.is_sequence_header
            };
            if !resume_point {
                if viewer.delivery == Delivery::Skipping && !frame.is_sequence_header {
                    viewer.traffic.stats.dropped_frames += 1;
                }
                return !viewer.queue.is_closed();
            }
            let headers: Vec<&Arc<MediaFrame>> = if viewer.headers_seen != header_generation {
                [gop.metadata(), gop.video_header(), gop.audio_header()]
                    .into_iter()
                    .flatten()
                    .collect()
            } else {
                Vec::new()
            };
            // Resume only with room for a burst, or the viewer would flap between states.
            let room_needed = headers.len() + 1 + viewer.queue.max_capacity() / 4;
            if viewer.queue.capacity() < room_needed.min(viewer.queue.max_capacity()) {
                if viewer.queue.is_closed() {
                    return false;
                }
                if viewer.delivery == Delivery::Skipping {
                    viewer.traffic.stats.dropped_frames += 1;
                }
                return true;
            }
            for header in headers {
                // Headers keep their original timestamps; re-time them to this point so the
                // viewer's timeline never goes backwards.
                let retimed = Arc::new(header.retimed(frame.timestamp));
                if viewer.queue.try_send(retimed).is_err() {
                    return !viewer.queue.is_closed();
                }
            }
            viewer.headers_seen = header_generation;
            viewer.delivery = Delivery::Live;
            viewer.skipping_since = None;
            match viewer.queue.try_send(frame.clone()) {
                Ok(()) => {
                    viewer.traffic.count(frame);
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    viewer.delivery = Delivery::Skipping;
                    viewer.skipping_since = Some(Instant::now());
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        }
    }
}

impl Actor for StreamChannel {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        info!("stream={} channel started", self.key);
        ctx.set_mailbox_capacity(PUBLISH_BACKLOG);
        ctx.run_interval(TICK, |act, _ctx| act.tick());
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        info!("stream={} channel retired", self.key);
    }
}

impl Handler<AttachPublisher> for StreamChannel {
    type Result = ();

    fn handle(&mut self, msg: AttachPublisher, _ctx: &mut Self::Context) {
        self.attaches_handled += 1;
        self.emptied_reported = false;
        if let Some(current) = self.publisher.as_ref() {
            if self.settings.conflict == crate::settings::ConflictPolicy::Reject {
                let _ = msg.reply.send(Err(PublishRejected::AlreadyPublishing));
                self.report_if_empty();
                return;
            }
            info!(
                "stream={} publisher={} takes over from publisher={}",
                self.key, msg.info.id, current.info.id
            );
            current.control.do_send(PublisherControl::Kick {
                reason: "another publisher took over this stream".to_string(),
            });
        }
        if self.had_publisher {
            // Continue the same timeline; viewers wait for the new publisher's first keyframe
            // and get its sequence headers right before it.
            self.timeline.start_publisher();
            self.gop.clear_media();
            for viewer in self.viewers.values_mut() {
                if viewer.delivery == Delivery::Live {
                    viewer.delivery = Delivery::Resync;
                }
            }
        }
        info!(
            "stream={} publisher={} from {:?} started",
            self.key, msg.info.id, msg.info.remote_addr
        );
        self.publisher = Some(PublisherSlot {
            info: msg.info,
            control: msg.control,
            traffic: Traffic::default(),
        });
        self.had_publisher = true;
        self.orphaned_since = None;
        if msg.reply.send(Ok(())).is_err() {
            // The publisher vanished while we were routing it.
            self.publisher = None;
            self.orphaned_since = Some(Instant::now());
            self.report_if_empty();
        }
    }
}

impl Handler<AttachViewer> for StreamChannel {
    type Result = ();

    fn handle(&mut self, msg: AttachViewer, _ctx: &mut Self::Context) {
        self.attaches_handled += 1;
        self.emptied_reported = false;
        if msg.require_publisher && self.publisher.is_none() {
            let _ = msg.reply.send(Err(PlayRejected::NotPublishing));
            self.report_if_empty();
            return;
        }
        let replay = self.gop.replay();
        let (tx, rx) = mpsc::channel(replay.len() + self.settings.viewer_queue.max(8));
        let mut traffic = Traffic::default();
        for frame in &replay {
            // Capacity covers the whole replay, so this cannot fail.
            let _ = tx.try_send(frame.clone());
            traffic.count(frame);
        }
        let id = msg.info.id;
        debug!(
            "stream={} viewer={} ({}) attached with {} replayed frames",
            self.key,
            id,
            msg.info.kind.protocol(),
            replay.len()
        );
        if msg.reply.send(Ok(rx)).is_err() {
            self.report_if_empty();
            return;
        }
        // A viewer attached while no video keyframe is cached must not get mid-GOP frames.
        let delivery = if self.gop.video_header().is_some() && !self.gop.has_keyframe() {
            Delivery::Resync
        } else {
            Delivery::Live
        };
        self.viewers.insert(
            id,
            ViewerSlot {
                info: msg.info,
                control: msg.control,
                queue: tx,
                delivery,
                headers_seen: self.header_generation,
                skipping_since: None,
                traffic,
            },
        );
    }
}

impl Handler<PublishFrame> for StreamChannel {
    type Result = ();

    fn handle(&mut self, msg: PublishFrame, _ctx: &mut Self::Context) {
        if self.publisher.as_ref().map(|p| p.info.id) != Some(msg.publisher) {
            return; // a taken-over publisher's last frames
        }
        if msg.body.is_empty() {
            return;
        }
        let timestamp = self.timeline.map(msg.timestamp);
        self.accept_frame(msg.kind, timestamp, msg.body);
    }
}

impl Handler<PublishMetadata> for StreamChannel {
    type Result = ();

    fn handle(&mut self, msg: PublishMetadata, _ctx: &mut Self::Context) {
        if self.publisher.as_ref().map(|p| p.info.id) != Some(msg.publisher) {
            return;
        }
        if let Some(fps) = msg.metadata.video_frame_rate {
            self.metadata_fps = Some(fps as f64);
        }
        let body = amf::metadata_body(&msg.metadata);
        // Metadata carries no timestamp of its own; give it the stream's current time.
        let ts = self.timeline.last_output().unwrap_or(0);
        self.accept_frame(FrameKind::Metadata, ts, body);
    }
}

impl Handler<Unpublish> for StreamChannel {
    type Result = ();

    fn handle(&mut self, msg: Unpublish, _ctx: &mut Self::Context) {
        if self.publisher.as_ref().map(|p| p.info.id) != Some(msg.publisher) {
            return;
        }
        self.publisher = None;
        self.orphaned_since = Some(Instant::now());
        self.gop.clear_media();
        if msg.clean {
            info!(
                "stream={} publisher={} unpublished",
                self.key, msg.publisher
            );
            self.end_all_viewers("publisher ended the stream");
        } else {
            info!(
                "stream={} publisher={} lost; viewers wait up to {:?} for it to return",
                self.key, msg.publisher, self.settings.write_timeout
            );
        }
        self.report_if_empty();
    }
}

impl Handler<Unsubscribe> for StreamChannel {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Self::Context) {
        if self.viewers.remove(&msg.viewer).is_some() {
            debug!("stream={} viewer={} left", self.key, msg.viewer);
        }
        self.report_if_empty();
    }
}

impl Handler<KickClient> for StreamChannel {
    type Result = bool;

    fn handle(&mut self, msg: KickClient, _ctx: &mut Self::Context) -> bool {
        if let Some(viewer) = self.viewers.remove(&msg.id) {
            info!(
                "stream={} viewer={} kicked: {}",
                self.key, msg.id, msg.reason
            );
            if let Some(control) = viewer.control {
                control.do_send(ViewerControl::Kick { reason: msg.reason });
            }
            self.report_if_empty();
            return true;
        }
        if self.publisher.as_ref().map(|p| p.info.id) == Some(msg.id) {
            info!(
                "stream={} publisher={} kicked: {}",
                self.key, msg.id, msg.reason
            );
            if let Some(publisher) = self.publisher.take() {
                publisher
                    .control
                    .do_send(PublisherControl::Kick { reason: msg.reason });
            }
            self.orphaned_since = Some(Instant::now());
            self.gop.clear_media();
            self.end_all_viewers("publisher was kicked");
            self.report_if_empty();
            return true;
        }
        false
    }
}

impl Handler<EndStream> for StreamChannel {
    type Result = ();

    fn handle(&mut self, msg: EndStream, _ctx: &mut Self::Context) {
        if let Some(publisher) = self.publisher.take() {
            publisher.control.do_send(PublisherControl::Kick {
                reason: msg.reason.clone(),
            });
        }
        self.orphaned_since = Some(Instant::now());
        self.gop.clear_media();
        self.end_all_viewers(&msg.reason);
        self.report_if_empty();
    }
}

impl Handler<Retire> for StreamChannel {
    type Result = ();

    fn handle(&mut self, _msg: Retire, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<GetStreamInfo> for StreamChannel {
    type Result = MessageResult<GetStreamInfo>;

    fn handle(&mut self, _msg: GetStreamInfo, _ctx: &mut Self::Context) -> Self::Result {
        let snapshot = |info: &ClientInfo, traffic: &Traffic| ClientSnapshot {
            info: info.clone(),
            traffic: traffic.stats.clone(),
        };
        let fps = if self.fps > 0.0 {
            (self.fps * 100.0).round() / 100.0
        } else {
            self.metadata_fps.unwrap_or(0.0)
        };
        MessageResult(StreamInfo {
            key: self.key.clone(),
            publisher: self
                .publisher
                .as_ref()
                .map(|p| snapshot(&p.info, &p.traffic)),
            viewers: self
                .viewers
                .values()
                .map(|v| snapshot(&v.info, &v.traffic))
                .collect(),
            video_codec: self
                .gop
                .video_header()
                .and_then(|h| codec::video_codec(&h.body))
                .map(|c| c.name()),
            audio_codec: self
                .gop
                .audio_header()
                .and_then(|h| codec::audio_codec(&h.body))
                .map(|c| c.name()),
            width: self.width,
            height: self.height,
            fps,
            gop_cache_frames: self.gop.frames(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientKind;
    use crate::registry::{ArbiterPool, Play, Publish};

    /// Stands in for a publisher's or viewer's session.
    struct Sink;

    impl Actor for Sink {
        type Context = Context<Self>;
    }

    impl Handler<PublisherControl> for Sink {
        type Result = ();
        fn handle(&mut self, _msg: PublisherControl, _ctx: &mut Self::Context) {}
    }

    const VIDEO_HEADER: &[u8] = &[0x17, 0x00, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00];
    const AUDIO_HEADER: &[u8] = &[0xaf, 0x00, 0x12, 0x10];
    const KEYFRAME: &[u8] = &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65];
    const INTER: &[u8] = &[0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41];

    async fn publish(
        channel: &Addr<StreamChannel>,
        publisher: ClientId,
        kind: FrameKind,
        ts: u32,
        body: &'static [u8],
    ) {
        channel
            .send(PublishFrame {
                publisher,
                kind,
                timestamp: ts,
                body: Bytes::from_static(body),
            })
            .await
            .unwrap();
    }

    async fn start_stream(
        viewer_queue: usize,
    ) -> (Addr<Registry>, Addr<StreamChannel>, ClientId, StreamKey) {
        let settings = Arc::new(StreamSettings {
            viewer_queue,
            ..StreamSettings::default()
        });
        let registry = Registry::new(settings, ArbiterPool::default()).start();
        let key = StreamKey::new("live", "room");
        let (publisher, channel) = attach_publisher(&registry, &key).await;
        publish(&channel, publisher, FrameKind::Video, 0, VIDEO_HEADER).await;
        publish(&channel, publisher, FrameKind::Audio, 0, AUDIO_HEADER).await;
        publish(&channel, publisher, FrameKind::Video, 0, KEYFRAME).await;
        (registry, channel, publisher, key)
    }

    async fn attach_publisher(
        registry: &Addr<Registry>,
        key: &StreamKey,
    ) -> (ClientId, Addr<StreamChannel>) {
        let info = ClientInfo::new(ClientKind::RtmpPublisher, None, String::new());
        let publisher = info.id;
        let channel = registry
            .send(Publish {
                key: key.clone(),
                info,
                control: Sink.start().recipient(),
                arbiter: None,
            })
            .await
            .unwrap()
            .unwrap();
        (publisher, channel)
    }

    async fn play(registry: &Addr<Registry>, key: &StreamKey) -> FrameReceiver {
        registry
            .send(Play {
                key: key.clone(),
                info: ClientInfo::new(ClientKind::HttpFlv, None, String::new()),
                control: None,
                require_publisher: true,
            })
            .await
            .unwrap()
            .unwrap()
            .frames
    }

    #[actix::test]
    async fn new_viewer_gets_headers_then_the_cached_keyframe() {
        let (registry, _channel, _publisher, key) = start_stream(16).await;
        let mut frames = play(&registry, &key).await;
        let first: Vec<_> = (0..3).map(|_| frames.try_recv().unwrap()).collect();
        assert!(first[0].is_sequence_header && first[0].kind == FrameKind::Video);
        assert!(first[1].is_sequence_header && first[1].kind == FrameKind::Audio);
        assert!(first[2].is_keyframe);
    }

    #[actix::test]
    async fn slow_viewer_skips_to_the_next_keyframe_and_counts_drops() {
        let (registry, channel, publisher, key) = start_stream(8).await;
        let mut slow = play(&registry, &key).await;
        let mut fast = play(&registry, &key).await;
        let mut fast_received = 0;
        for i in 1..=40 {
            publish(&channel, publisher, FrameKind::Video, i * 33, INTER).await;
            while fast.try_recv().is_ok() {
                fast_received += 1;
            }
        }
        // The reader that keeps up gets everything: replay (3) and 40 frames.
        assert_eq!(fast_received, 43);
        let info = channel.send(GetStreamInfo).await.unwrap();
        let dropped: u64 = info.viewers.iter().map(|v| v.traffic.dropped_frames).sum();
        assert!(dropped > 0, "the slow viewer must have dropped frames");

        // Drain what the slow viewer has; more inter frames stay skipped, the next keyframe
        // is where it resumes.
        while slow.try_recv().is_ok() {}
        publish(&channel, publisher, FrameKind::Video, 2000, INTER).await;
        assert!(slow.try_recv().is_err(), "no mid-GOP frame after a drop");
        publish(&channel, publisher, FrameKind::Video, 2033, KEYFRAME).await;
        let resumed = slow.try_recv().unwrap();
        assert!(resumed.is_keyframe);
        publish(&channel, publisher, FrameKind::Video, 2066, INTER).await;
        assert!(!slow.try_recv().unwrap().is_keyframe);
    }

    #[actix::test]
    async fn clean_unpublish_ends_every_viewer() {
        let (registry, channel, publisher, key) = start_stream(16).await;
        let mut frames = play(&registry, &key).await;
        channel
            .send(Unpublish {
                publisher,
                clean: true,
            })
            .await
            .unwrap();
        while frames.try_recv().is_ok() {}
        assert!(frames.recv().await.is_none());
    }

    #[actix::test]
    async fn takeover_keeps_viewers_and_timestamps_monotonic() {
        let (registry, channel, _first, key) = start_stream(64).await;
        let mut frames = play(&registry, &key).await;
        let (second, _) = attach_publisher(&registry, &key).await;
        // The new encoder starts its clock at 0 again.
        publish(&channel, second, FrameKind::Video, 0, VIDEO_HEADER).await;
        publish(&channel, second, FrameKind::Video, 0, INTER).await;
        publish(&channel, second, FrameKind::Video, 10, KEYFRAME).await;
        let mut last = 0;
        let mut saw_new_keyframe = false;
        while let Ok(frame) = frames.try_recv() {
            assert!(frame.timestamp >= last, "timestamps must not go back");
            last = frame.timestamp;
            saw_new_keyframe |= frame.is_keyframe && frame.timestamp > 0;
            assert!(
                frame.is_keyframe || frame.is_sequence_header,
                "no mid-GOP frame across the switch"
            );
        }
        assert!(saw_new_keyframe);
    }

    #[actix::test]
    async fn a_publisher_that_outpaces_its_channel_is_held_back_in_order() {
        let (registry, channel, publisher, key) = start_stream(4096).await;
        let mut frames = play(&registry, &key).await;
        while frames.try_recv().is_ok() {}
        // Nothing yields to the channel here, so its mailbox fills up.
        let mut held_back = Vec::new();
        for i in 0..(PUBLISH_BACKLOG as u32 + 50) {
            let msg = PublishFrame {
                publisher,
                kind: FrameKind::Video,
                timestamp: 100 + i,
                body: Bytes::from_static(INTER),
            };
            if let Some(request) = offer(&channel, msg) {
                // A real publisher pauses here; this one awaits in order at the end.
                held_back.push(request);
            } else {
                assert!(held_back.is_empty(), "accepted after the mailbox was full");
            }
        }
        assert!(!held_back.is_empty(), "the mailbox bound must be reached");
        for request in held_back {
            request.await.unwrap();
        }
        let mut last = 0;
        let mut received = 0;
        while let Ok(frame) = frames.try_recv() {
            assert!(frame.timestamp > last, "frames out of order");
            last = frame.timestamp;
            received += 1;
        }
        assert_eq!(received, PUBLISH_BACKLOG + 50);
    }
}
