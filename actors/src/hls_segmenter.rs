//! The HLS segmenter: one actor per stream of an app with `hls = true`.
//!
//! It subscribes to the stream's channel like any viewer (as `ClientKind::HlsSegmenter`), turns
//! the frames into MPEG-TS segments ([`TsSegmenter`]), keeps the sliding window
//! ([`LivePlaylist`]) and hands each new state to the [`HlsHub`], which serves the viewers. When
//! the stream ends the last segment is closed and the playlist gets `#EXT-X-ENDLIST`; when the
//! hub sees the room published again it subscribes anew and the playlist goes on, with the
//! media sequence continued and a discontinuity at the new publisher's first keyframe.

use std::sync::Arc;
use std::time::SystemTime;

use actix::prelude::*;
use futures_util::stream::{self, StreamExt};
use log::{debug, info, warn};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{ClientId, ClientInfo, ClientKind, StreamKey, ViewerControl};
use crate::hls_hub::{HlsHub, PlaylistUpdated};
use crate::media::codec::{self, AudioCodec, VideoCodec};
use crate::media::hls_playlist::{LivePlaylist, NewSegment};
use crate::media::ts::{FinishedSegment, SegmentLimits, TsSegmenter};
use crate::media::{FrameKind, MediaFrame};
use crate::registry::{Play, Registry, Subscription};
use crate::settings::HlsSettings;
use crate::stream_channel::{PlayRejected, StreamChannel, Unsubscribe};

/// Media sequence numbers start here, as livego's do.
const FIRST_SEQUENCE: u64 = 1;
/// See [`HlsSegmenter::on_end`].
const MAX_RESUBSCRIBES: u32 = 3;

// ---------------------------------------------------------------------------------------------
// Messages

/// Hub → segmenter: a publisher was accepted on the stream; follow it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// Counts the stream's publishes; the segmenter's updates carry the one they belong to.
    pub generation: u64,
}

/// Hub → segmenter: the stream is forgotten; stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSegmenter;

/// The registry's answer to one of our `Play` requests.
#[derive(Message)]
#[rtype(result = "()")]
struct Subscribed {
    attempt: u64,
    viewer: ClientId,
    result: Result<Subscription, PlayRejected>,
}

/// One subscription's frame queue, tagged with the attempt that opened it; `End` when the
/// channel closed it (the stream ended or we were dropped).
enum Feed {
    Frame(u64, Arc<MediaFrame>),
    End(u64),
}

/// What the hub serves for one stream. Replaced whole on every change.
#[derive(Debug)]
pub struct HlsOutput {
    pub playlist: LivePlaylist,
    /// RFC 6381 codecs for the master playlist, when every track's is known.
    pub codecs: Option<String>,
    pub resolution: Option<(u32, u32)>,
    /// In every segment name, so that one URI never names two different segments (a room
    /// published again after its playlist was dropped starts again at sequence 1).
    pub token: u32,
    /// The publish (see [`Subscribe`]) this state follows.
    pub generation: u64,
}

// ---------------------------------------------------------------------------------------------
// The actor

struct CurrentSubscription {
    attempt: u64,
    viewer: ClientId,
    channel: Addr<StreamChannel>,
    feed: SpawnHandle,
}

/// Timestamps already muxed: after switching to a new subscription of the same channel, its
/// GOP replay repeats frames we have; they are skipped until the timeline moves past them.
#[derive(Debug, Clone, Copy, Default)]
struct ResumeAfter {
    video: Option<u32>,
    audio: Option<u32>,
}

pub struct HlsSegmenter {
    key: StreamKey,
    registry: Addr<Registry>,
    hub: Addr<HlsHub>,
    token: u32,
    packager: TsSegmenter,
    playlist: LivePlaylist,
    generation: u64,
    attempts: u64,
    /// The newest attempt whose subscription was taken.
    applied_attempt: u64,
    current: Option<CurrentSubscription>,
    /// The channel of the latest subscription, also after it ended.
    last_channel: Option<Addr<StreamChannel>>,
    /// Subscriptions renewed by the segmenter itself since the last publish; bounded so that
    /// a channel that keeps dropping us cannot make it loop.
    resubscribes_since_publish: u32,
    resume_after: Option<ResumeAfter>,
    last_video_ts: Option<u32>,
    last_audio_ts: Option<u32>,
    reported_drops: u64,
    unsupported_codecs: Vec<&'static str>,
}

/// `a` is later than `b` on the wrapping millisecond clock.
fn is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl HlsSegmenter {
    pub fn new(
        key: StreamKey,
        registry: Addr<Registry>,
        hub: Addr<HlsHub>,
        settings: &HlsSettings,
        token: u32,
    ) -> HlsSegmenter {
        HlsSegmenter {
            key,
            registry,
            hub,
            token,
            packager: TsSegmenter::new(SegmentLimits::for_fragment(settings.fragment)),
            playlist: LivePlaylist::new(settings.window, FIRST_SEQUENCE, settings.fragment),
            generation: 0,
            attempts: 0,
            applied_attempt: 0,
            current: None,
            last_channel: None,
            resubscribes_since_publish: 0,
            resume_after: None,
            last_video_ts: None,
            last_audio_ts: None,
            reported_drops: 0,
            unsupported_codecs: Vec::new(),
        }
    }

    /// Whether anything was segmented yet: a new source then continues with a discontinuity.
    fn has_output(&self) -> bool {
        !self.playlist.is_empty() || self.packager.is_open()
    }

    fn notify_hub(&self) {
        self.hub.do_send(PlaylistUpdated {
            key: self.key.clone(),
            output: Arc::new(HlsOutput {
                playlist: self.playlist.clone(),
                codecs: self.packager.codecs(),
                resolution: self.packager.resolution(),
                token: self.token,
                generation: self.generation,
            }),
        });
    }

    fn add_segment(&mut self, segment: FinishedSegment) {
        let duration_ms = segment.duration_ms;
        let bytes = segment.data.len();
        let sequence = self.playlist.push(
            NewSegment {
                duration_ms: segment.duration_ms,
                discontinuity: segment.discontinuity,
                data: segment.data,
                video_bytes: segment.video_bytes,
                audio_bytes: segment.audio_bytes,
            },
            SystemTime::now(),
        );
        debug!(
            "stream={} hls segment {sequence}: {:.3} s, {bytes} bytes{}",
            self.key,
            f64::from(duration_ms) / 1000.0,
            if segment.discontinuity {
                ", discontinuity"
            } else {
                ""
            }
        );
        if self.packager.dropped_frames > self.reported_drops {
            warn!(
                "stream={} hls: {} frame(s) could not be muxed (malformed or unsupported)",
                self.key,
                self.packager.dropped_frames - self.reported_drops
            );
            self.reported_drops = self.packager.dropped_frames;
        }
    }

    fn unsubscribe(&mut self, ctx: &mut Context<Self>) {
        if let Some(current) = self.current.take() {
            ctx.cancel_future(current.feed);
            current.channel.do_send(Unsubscribe {
                viewer: current.viewer,
            });
        }
    }

    /// Says once per codec when a stream carries one that HLS output leaves out.
    fn note_codec(&mut self, frame: &MediaFrame) {
        let name = match frame.kind {
            FrameKind::Video => match codec::video_codec(&frame.body) {
                Some(VideoCodec::H264 | VideoCodec::H265) | None => return,
                Some(other) => other.name(),
            },
            FrameKind::Audio => match codec::audio_codec(&frame.body) {
                Some(AudioCodec::Aac | AudioCodec::Mp3) | None => return,
                Some(other) => other.name(),
            },
            FrameKind::Metadata => return,
        };
        if !self.unsupported_codecs.contains(&name) {
            self.unsupported_codecs.push(name);
            warn!(
                "stream={} hls: {:?} {name} is not carried in HLS (H.264, HEVC, AAC and MP3 are)",
                self.key, frame.kind
            );
        }
    }

    fn on_frame(&mut self, frame: &MediaFrame) {
        if frame.is_sequence_header {
            self.note_codec(frame);
        } else {
            if let Some(resume) = self.resume_after.as_mut() {
                let mark = match frame.kind {
                    FrameKind::Video => &mut resume.video,
                    FrameKind::Audio => &mut resume.audio,
                    FrameKind::Metadata => &mut None,
                };
                if let Some(last) = *mark {
                    if !is_after(frame.timestamp, last) {
                        return;
                    }
                    *mark = None;
                }
                if resume.video.is_none() && resume.audio.is_none() {
                    self.resume_after = None;
                }
            }
            match frame.kind {
                FrameKind::Video => self.last_video_ts = Some(frame.timestamp),
                FrameKind::Audio => self.last_audio_ts = Some(frame.timestamp),
                FrameKind::Metadata => {}
            }
        }
        if let Some(segment) = self.packager.push(frame) {
            self.add_segment(segment);
            self.notify_hub();
        }
    }

    /// The channel closed our queue: usually the stream ended, but the channel also drops a
    /// viewer that fell too far behind. Asking again tells the two apart: a stream still
    /// published continues (with a discontinuity), otherwise the playlist ends.
    fn on_end(&mut self, ctx: &mut Context<Self>) {
        self.current = None;
        if let Some(segment) = self.packager.finish() {
            self.add_segment(segment);
            self.notify_hub();
        }
        if self.resubscribes_since_publish < MAX_RESUBSCRIBES {
            self.resubscribes_since_publish += 1;
            self.request_subscription(ctx);
        } else {
            self.end_playlist();
        }
    }

    fn end_playlist(&mut self) {
        if let Some(segment) = self.packager.finish() {
            self.add_segment(segment);
        }
        self.playlist.set_ended(true);
        info!(
            "stream={} hls: stream ended; playlist closed after sequence {}",
            self.key,
            self.playlist.next_sequence().saturating_sub(1)
        );
        self.notify_hub();
    }

    fn request_subscription(&mut self, ctx: &mut Context<Self>) {
        self.attempts += 1;
        let attempt = self.attempts;
        let info = ClientInfo::new(
            ClientKind::HlsSegmenter,
            None,
            format!("/{}/{}.m3u8", self.key.app, self.key.room),
        );
        let viewer = info.id;
        let request = self.registry.send(Play {
            key: self.key.clone(),
            info,
            control: Some(ctx.address().recipient()),
            require_publisher: true,
        });
        let me = ctx.address();
        ctx.spawn(
            async move {
                let result = match request.await {
                    Ok(result) => result,
                    Err(_) => Err(PlayRejected::ChannelGone),
                };
                me.do_send(Subscribed {
                    attempt,
                    viewer,
                    result,
                });
            }
            .into_actor(self),
        );
    }

    fn take_subscription(
        &mut self,
        attempt: u64,
        viewer: ClientId,
        subscription: Subscription,
        ctx: &mut Context<Self>,
    ) {
        let previous = self
            .current
            .as_ref()
            .map(|c| &c.channel)
            .or(self.last_channel.as_ref());
        let same_channel = previous == Some(&subscription.channel);
        // Whether the old queue was still flowing: nothing was lost in between.
        let continuous = self.current.is_some();
        if let Some(old) = self.current.take() {
            ctx.cancel_future(old.feed);
            old.channel.do_send(Unsubscribe { viewer: old.viewer });
        }
        if same_channel {
            // The channel's timeline goes on; its GOP replay repeats what we already have.
            // (On a takeover the segmenter already cut, or will cut, at the new publisher's
            // first keyframe.)
            self.resume_after = Some(ResumeAfter {
                video: self.last_video_ts,
                audio: self.last_audio_ts,
            });
        } else {
            // A new channel: a new timeline and the new publisher's own headers.
            self.resume_after = None;
            self.packager.reset_tracks();
        }
        if !(same_channel && continuous) && self.has_output() {
            self.packager.mark_discontinuity();
        }
        self.last_channel = Some(subscription.channel.clone());
        let frames = ReceiverStream::new(subscription.frames)
            .map(move |frame| Feed::Frame(attempt, frame))
            .chain(stream::once(async move { Feed::End(attempt) }));
        let feed = ctx.add_stream(frames);
        self.current = Some(CurrentSubscription {
            attempt,
            viewer,
            channel: subscription.channel,
            feed,
        });
        self.applied_attempt = attempt;
        if self.playlist.is_ended() {
            self.playlist.set_ended(false);
        }
        self.notify_hub();
        info!("stream={} hls: following the stream", self.key);
    }
}

impl Actor for HlsSegmenter {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        debug!("stream={} hls segmenter started", self.key);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(current) = self.current.take() {
            current.channel.do_send(Unsubscribe {
                viewer: current.viewer,
            });
        }
        debug!("stream={} hls segmenter stopped", self.key);
    }
}

impl Handler<Subscribe> for HlsSegmenter {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Self::Context) {
        self.generation = msg.generation;
        self.resubscribes_since_publish = 0;
        if self.has_output() {
            // A takeover keeps this subscription alive until the new one is in place, and the
            // channel resends headers before the new publisher's first keyframe: cut there.
            self.packager.mark_discontinuity();
        }
        self.request_subscription(ctx);
    }
}

impl Handler<Subscribed> for HlsSegmenter {
    type Result = ();

    fn handle(&mut self, msg: Subscribed, ctx: &mut Self::Context) {
        match msg.result {
            Ok(subscription) if msg.attempt > self.applied_attempt => {
                self.take_subscription(msg.attempt, msg.viewer, subscription, ctx);
            }
            Ok(subscription) => {
                // A newer subscription is already in place.
                subscription
                    .channel
                    .do_send(Unsubscribe { viewer: msg.viewer });
            }
            Err(e) => {
                debug!("stream={} hls: subscribing failed ({e:?})", self.key);
                if self.current.is_none() {
                    self.end_playlist();
                }
            }
        }
    }
}

impl StreamHandler<Feed> for HlsSegmenter {
    fn handle(&mut self, item: Feed, ctx: &mut Self::Context) {
        let current = self.current.as_ref().map(|c| c.attempt);
        match item {
            Feed::Frame(attempt, frame) if Some(attempt) == current => self.on_frame(&frame),
            Feed::End(attempt) if Some(attempt) == current => self.on_end(ctx),
            _ => {}
        }
    }

    // A subscription ending is an `End` item; the actor lives on for the next publish.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl Handler<ViewerControl> for HlsSegmenter {
    type Result = ();

    fn handle(&mut self, msg: ViewerControl, _ctx: &mut Self::Context) {
        let ViewerControl::Kick { reason } = msg;
        // The channel closes our queue as well; its end closes the playlist.
        info!(
            "stream={} hls segmenter dropped by the channel: {reason}",
            self.key
        );
    }
}

impl Handler<StopSegmenter> for HlsSegmenter {
    type Result = ();

    fn handle(&mut self, _msg: StopSegmenter, ctx: &mut Self::Context) {
        self.unsubscribe(ctx);
        ctx.stop();
    }
}
