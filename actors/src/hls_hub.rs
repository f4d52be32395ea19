//! The HLS hub: one [`HlsSegmenter`] per stream of an app with `hls = true`, the latest
//! playlist of each, and the HLS viewer sessions.
//!
//! Segmenters push their state here on every new segment; the HTTP side asks here for
//! playlists and segments, which are shared `Bytes`, so serving costs a lookup and a refcount.
//!
//! Sessions: a viewer's first request (`/<app>/<room>.m3u8` with no session) gets a master
//! playlist whose single variant is `<room>.m3u8?session=<id>`; the media playlist behind it
//! puts the same id on every segment URI. Every HLS player follows a master playlist and
//! reloads the variant URI it was given, so each viewer is counted once, with its bytes, until
//! it has been idle for a few target durations.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use log::{debug, info};
use uuid::Uuid;

use crate::client::{ClientId, ClientInfo, ClientKind, ClientSnapshot, StreamKey, TrafficStats};
use crate::hls_segmenter::{HlsOutput, HlsSegmenter, StopSegmenter, Subscribe};
use crate::media::hls_playlist::{render_master, Variant};
use crate::registry::{ArbiterPool, Registry, StreamPublished};
use crate::settings::StreamSettings;

/// The query parameter that carries a viewer's session id.
pub const SESSION_PARAM: &str = "session";

const TICK: Duration = Duration::from_secs(1);
/// Rates are averaged over this window, as the channel does for RTMP and HTTP-FLV viewers.
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// A session expires after this many target durations without a request (players reload the
/// playlist about once per target duration) ...
const SESSION_IDLE_TARGETS: u32 = 3;
/// ... and never sooner than this.
const MIN_SESSION_IDLE: Duration = Duration::from_secs(20);
/// Sessions are not tracked beyond this many (a client may ask for new ones in a loop);
/// viewers beyond it are served without being counted.
const MAX_SESSIONS: usize = 50_000;
/// A kicked session id is refused for this long.
const KICK_MEMORY: Duration = Duration::from_secs(600);
const MAX_KICKED: usize = 10_000;
/// An ended playlist stays, with `#EXT-X-ENDLIST`, for this many target durations so that
/// players see the end (unless `hls_keep_after_end` keeps it until the next publish) ...
const END_GRACE_TARGETS: u32 = 3;
/// ... and at least this long.
const MIN_END_GRACE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Messages

/// Segmenter → hub: the stream's playlist changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PlaylistUpdated {
    pub key: StreamKey,
    pub output: Arc<HlsOutput>,
}

/// HTTP → hub: `GET /<app>/<room>.m3u8[?session=<id>]`.
#[derive(Message)]
#[rtype(result = "PlaylistReply")]
pub struct GetPlaylist {
    pub key: StreamKey,
    /// The `session` query parameter as sent.
    pub session: Option<String>,
    pub remote_addr: Option<SocketAddr>,
    /// For statistics.
    pub url: String,
}

#[derive(Debug)]
pub enum PlaylistReply {
    /// An m3u8 document (master or media).
    Playlist(Bytes),
    /// The stream is published but its first segment is not complete yet.
    NotReady,
    NotFound,
    /// The session was kicked through the API.
    SessionKicked,
}

/// HTTP → hub: `GET /<app>/<room>/<token>-<sequence>.ts[?session=<id>]`.
#[derive(Message)]
#[rtype(result = "SegmentReply")]
pub struct GetSegment {
    pub key: StreamKey,
    pub token: u32,
    pub sequence: u64,
    pub session: Option<String>,
    pub remote_addr: Option<SocketAddr>,
    pub url: String,
}

#[derive(Debug)]
pub enum SegmentReply {
    Segment(Bytes),
    /// Unknown stream, or a segment that left the window.
    NotFound,
    SessionKicked,
}

/// A viewer session of a stream's HLS output, for statistics.
#[derive(Debug, Clone)]
pub struct HlsSessionInfo {
    pub key: crate::client::StreamKey,
    pub snapshot: crate::client::ClientSnapshot,
}

/// List every live HLS viewer session.
#[derive(Message)]
#[rtype(result = "Vec<HlsSessionInfo>")]
pub struct ListHlsSessions;

/// End one HLS viewer session (API kick). Replies whether it existed.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct KickHlsSession {
    pub id: crate::client::ClientId,
}

// ---------------------------------------------------------------------------------------------
// The actor

struct HlsStream {
    segmenter: Addr<HlsSegmenter>,
    generation: u64,
    output: Option<Arc<HlsOutput>>,
    /// Set when the current generation's stream ended.
    ended_since: Option<Instant>,
}

impl HlsStream {
    fn target_duration(&self) -> Duration {
        Duration::from_secs(
            self.output
                .as_ref()
                .map_or(1, |o| o.playlist.target_duration()),
        )
    }
}

#[derive(Default)]
struct SessionTraffic {
    stats: TrafficStats,
    window_video: u64,
    window_audio: u64,
}

struct HlsSession {
    key: StreamKey,
    info: ClientInfo,
    last_seen: Instant,
    traffic: SessionTraffic,
}

pub struct HlsHub {
    registry: Addr<Registry>,
    settings: Arc<StreamSettings>,
    arbiters: ArbiterPool,
    streams: HashMap<StreamKey, HlsStream>,
    sessions: HashMap<ClientId, HlsSession>,
    kicked: HashMap<ClientId, Instant>,
    publishes: u64,
    window_started: Instant,
}

/// Percent-encodes a path segment for a relative URI (`:` included, or a first segment
/// like `a:b` would read as a scheme).
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The last path segment of a room name: URIs in a playlist are relative to the playlist's
/// own directory, which already holds any earlier segments of the room.
fn room_leaf(room: &str) -> String {
    encode_path_segment(room.rsplit('/').next().unwrap_or(room))
}

fn segment_file_name(token: u32, sequence: u64) -> String {
    format!("{token:08x}-{sequence}.ts")
}

/// Parses `<token>-<sequence>` (the segment file name without `.ts`).
pub fn parse_segment_name(stem: &str) -> Option<(u32, u64)> {
    let (token, sequence) = stem.split_once('-')?;
    if token.len() != 8 || sequence.is_empty() || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((u32::from_str_radix(token, 16).ok()?, sequence.parse().ok()?))
}

impl HlsHub {
    pub fn new(
        registry: Addr<Registry>,
        settings: Arc<StreamSettings>,
        arbiters: ArbiterPool,
    ) -> HlsHub {
        HlsHub {
            registry,
            settings,
            arbiters,
            streams: HashMap::new(),
            sessions: HashMap::new(),
            kicked: HashMap::new(),
            publishes: 0,
            window_started: Instant::now(),
        }
    }

    fn start_segmenter(&self, key: &StreamKey, hub: Addr<HlsHub>) -> Addr<HlsSegmenter> {
        let key = key.clone();
        let registry = self.registry.clone();
        let hls = self.settings.hls.clone();
        // Low bits of a random UUID: segment names differ between lives of a room.
        let token = Uuid::new_v4().as_u128() as u32;
        match self.arbiters.pick() {
            Some(arbiter) => HlsSegmenter::start_in_arbiter(arbiter, move |_| {
                HlsSegmenter::new(key, registry, hub, &hls, token)
            }),
            None => HlsSegmenter::new(key, registry, hub, &hls, token).start(),
        }
    }

    /// The session a request belongs to: `None` when it carries none (or one we cannot
    /// read), `Err` when it was kicked. Known or well-formed ids are (re)registered, so a
    /// viewer coming back after expiry is counted again.
    fn session_for(
        &mut self,
        raw: Option<&str>,
        key: &StreamKey,
        remote_addr: Option<SocketAddr>,
        url: &str,
    ) -> Result<Option<ClientId>, ()> {
        let Some(id) = raw.and_then(|raw| Uuid::parse_str(raw).ok()) else {
            return Ok(None);
        };
        if self.kicked.contains_key(&id) {
            return Err(());
        }
        if let Some(session) = self.sessions.get_mut(&id) {
            session.last_seen = Instant::now();
            return Ok(Some(id));
        }
        if self.sessions.len() >= MAX_SESSIONS {
            return Ok(None);
        }
        let mut info = ClientInfo::new(ClientKind::Hls, remote_addr, url.to_string());
        info.id = id;
        debug!("viewer={id} stream={key} hls session started");
        self.sessions.insert(
            id,
            HlsSession {
                key: key.clone(),
                info,
                last_seen: Instant::now(),
                traffic: SessionTraffic::default(),
            },
        );
        Ok(Some(id))
    }

    fn tick(&mut self) {
        let keep_after_end = self.settings.hls.keep_after_end;
        self.streams.retain(|key, stream| {
            let Some(since) = stream.ended_since else {
                return true;
            };
            let has_segments = stream
                .output
                .as_ref()
                .is_some_and(|o| !o.playlist.is_empty());
            if keep_after_end && has_segments {
                return true;
            }
            let grace = (stream.target_duration() * END_GRACE_TARGETS).max(MIN_END_GRACE);
            if since.elapsed() < grace {
                return true;
            }
            info!("stream={key} hls playlist removed (the stream ended)");
            stream.segmenter.do_send(StopSegmenter);
            false
        });

        let streams = &self.streams;
        self.sessions.retain(|id, session| {
            let target = streams
                .get(&session.key)
                .map_or(Duration::ZERO, HlsStream::target_duration);
            let idle = (target * SESSION_IDLE_TARGETS).max(MIN_SESSION_IDLE);
            let alive = session.last_seen.elapsed() < idle;
            if !alive {
                debug!("viewer={id} stream={} hls session expired", session.key);
            }
            alive
        });
        self.kicked.retain(|_, at| at.elapsed() < KICK_MEMORY);

        let elapsed = self.window_started.elapsed();
        if elapsed >= RATE_WINDOW {
            self.window_started = Instant::now();
            let secs = elapsed.as_secs_f64();
            for session in self.sessions.values_mut() {
                let t = &mut session.traffic;
                t.stats.video_speed = (t.window_video as f64 * 8.0 / secs / 1000.0).round() as u64;
                t.stats.audio_speed = (t.window_audio as f64 * 8.0 / secs / 1000.0).round() as u64;
                t.window_video = 0;
                t.window_audio = 0;
            }
        }
    }
}

impl Actor for HlsHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Every HLS request passes through here; they are small and must not be refused.
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(TICK, |act, _ctx| act.tick());
    }
}

impl Handler<StreamPublished> for HlsHub {
    type Result = ();

    fn handle(&mut self, msg: StreamPublished, ctx: &mut Self::Context) {
        if !self
            .settings
            .live_app(&msg.key.app)
            .is_some_and(|rules| rules.hls)
        {
            return;
        }
        self.publishes += 1;
        let generation = self.publishes;
        if !self.streams.contains_key(&msg.key) {
            let segmenter = self.start_segmenter(&msg.key, ctx.address());
            self.streams.insert(
                msg.key.clone(),
                HlsStream {
                    segmenter,
                    generation,
                    output: None,
                    ended_since: None,
                },
            );
        }
        if let Some(stream) = self.streams.get_mut(&msg.key) {
            stream.generation = generation;
            stream.ended_since = None;
            stream.segmenter.do_send(Subscribe { generation });
        }
    }
}

impl Handler<PlaylistUpdated> for HlsHub {
    type Result = ();

    fn handle(&mut self, msg: PlaylistUpdated, _ctx: &mut Self::Context) {
        let Some(stream) = self.streams.get_mut(&msg.key) else {
            return;
        };
        if msg.output.generation == stream.generation {
            if msg.output.playlist.is_ended() {
                stream.ended_since.get_or_insert_with(Instant::now);
            } else {
                stream.ended_since = None;
            }
        }
        stream.output = Some(msg.output);
    }
}

impl Handler<GetPlaylist> for HlsHub {
    type Result = MessageResult<GetPlaylist>;

    fn handle(&mut self, msg: GetPlaylist, _ctx: &mut Self::Context) -> Self::Result {
        let Some(stream) = self.streams.get(&msg.key) else {
            return MessageResult(PlaylistReply::NotFound);
        };
        let Some(output) = stream.output.clone().filter(|o| !o.playlist.is_empty()) else {
            return MessageResult(if stream.ended_since.is_some() {
                PlaylistReply::NotFound
            } else {
                PlaylistReply::NotReady
            });
        };
        let leaf = room_leaf(&msg.key.room);
        let session =
            match self.session_for(msg.session.as_deref(), &msg.key, msg.remote_addr, &msg.url) {
                Ok(session) => session,
                Err(()) => return MessageResult(PlaylistReply::SessionKicked),
            };
        let body = match session {
            Some(id) => {
                let query = format!("?{SESSION_PARAM}={}", id.simple());
                output.playlist.render(|segment| {
                    format!(
                        "{leaf}/{}{query}",
                        segment_file_name(output.token, segment.sequence)
                    )
                })
            }
            None if self.sessions.len() < MAX_SESSIONS => {
                let id = Uuid::new_v4();
                render_master(&Variant {
                    uri: format!("{leaf}.m3u8?{SESSION_PARAM}={}", id.simple()),
                    bandwidth: output.playlist.peak_bandwidth(),
                    average_bandwidth: Some(output.playlist.average_bandwidth()),
                    codecs: output.codecs.clone(),
                    resolution: output.resolution,
                })
            }
            // Too many sessions to count: serve the playlist without one.
            None => output.playlist.render(|segment| {
                format!(
                    "{leaf}/{}",
                    segment_file_name(output.token, segment.sequence)
                )
            }),
        };
        MessageResult(PlaylistReply::Playlist(Bytes::from(body)))
    }
}

impl Handler<GetSegment> for HlsHub {
    type Result = MessageResult<GetSegment>;

    fn handle(&mut self, msg: GetSegment, _ctx: &mut Self::Context) -> Self::Result {
        let segment = self
            .streams
            .get(&msg.key)
            .and_then(|s| s.output.as_ref())
            .filter(|o| o.token == msg.token)
            .and_then(|o| o.playlist.segment(msg.sequence))
            .cloned();
        let Some(segment) = segment else {
            return MessageResult(SegmentReply::NotFound);
        };
        match self.session_for(msg.session.as_deref(), &msg.key, msg.remote_addr, &msg.url) {
            Err(()) => return MessageResult(SegmentReply::SessionKicked),
            Ok(Some(id)) => {
                if let Some(session) = self.sessions.get_mut(&id) {
                    let t = &mut session.traffic;
                    t.stats.video_total_bytes += segment.video_bytes;
                    t.stats.audio_total_bytes += segment.audio_bytes;
                    t.window_video += segment.video_bytes;
                    t.window_audio += segment.audio_bytes;
                }
            }
            Ok(None) => {}
        }
        MessageResult(SegmentReply::Segment(segment.data.clone()))
    }
}

impl Handler<ListHlsSessions> for HlsHub {
    type Result = MessageResult<ListHlsSessions>;

    fn handle(&mut self, _msg: ListHlsSessions, _ctx: &mut Self::Context) -> Self::Result {
        let mut sessions: Vec<HlsSessionInfo> = self
            .sessions
            .values()
            .map(|s| HlsSessionInfo {
                key: s.key.clone(),
                snapshot: ClientSnapshot {
                    info: s.info.clone(),
                    traffic: s.traffic.stats.clone(),
                },
            })
            .collect();
        sessions.sort_by(|a, b| {
            (&a.key, a.snapshot.info.connected_at).cmp(&(&b.key, b.snapshot.info.connected_at))
        });
        MessageResult(sessions)
    }
}

impl Handler<KickHlsSession> for HlsHub {
    type Result = bool;

    fn handle(&mut self, msg: KickHlsSession, _ctx: &mut Self::Context) -> bool {
        let Some(session) = self.sessions.remove(&msg.id) else {
            return false;
        };
        info!(
            "viewer={} stream={} hls session kicked",
            msg.id, session.key
        );
        if self.kicked.len() < MAX_KICKED {
            self.kicked.insert(msg.id, Instant::now());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_for_relative_uris() {
        assert_eq!(encode_path_segment("room-1_a.b~"), "room-1_a.b~");
        assert_eq!(encode_path_segment("a b:c?d#e%"), "a%20b%3Ac%3Fd%23e%25");
        assert_eq!(encode_path_segment("é"), "%C3%A9");
        assert_eq!(room_leaf("a/b c"), "b%20c");
    }

    #[test]
    fn segment_names_round_trip() {
        let name = segment_file_name(0x00ab_cdef, 42);
        assert_eq!(name, "00abcdef-42.ts");
        assert_eq!(
            parse_segment_name(name.trim_end_matches(".ts")),
            Some((0x00ab_cdef, 42))
        );
        for bad in [
            "",
            "42",
            "abc-1",
            "00abcdef-",
            "00abcdef-x",
            "00abcdef-+1",
            "0000000g-1",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }
}
