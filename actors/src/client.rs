//! Identities and statistics shared by every kind of client (publisher or viewer).

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use actix::Message;
use serde::Serialize;
use uuid::Uuid;

pub type ClientId = Uuid;

/// `app/room`, the name a stream is known by everywhere (livego's stream key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub app: String,
    pub room: String,
}

impl StreamKey {
    pub fn new(app: impl Into<String>, room: impl Into<String>) -> Self {
        StreamKey {
            app: app.into(),
            room: room.into(),
        }
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.room)
    }
}

/// Why a client exists; the channel treats them all alike, stats report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    RtmpPublisher,
    RtmpPlayer,
    HttpFlv,
    Hls,
    /// A relay: pushing this stream to another server, or publishing one pulled from it.
    Relay,
    /// The FLV recorder (not a viewer: never listed as a player).
    Recorder,
    /// The HLS packager (not a viewer: HLS viewers are counted as `Hls` sessions).
    HlsSegmenter,
}

impl ClientKind {
    /// The protocol name shown in statistics.
    pub fn protocol(self) -> &'static str {
        match self {
            ClientKind::RtmpPublisher | ClientKind::RtmpPlayer => "rtmp",
            ClientKind::HttpFlv => "http-flv",
            ClientKind::Hls => "hls",
            ClientKind::Relay => "relay",
            ClientKind::Recorder => "recorder",
            ClientKind::HlsSegmenter => "hls-segmenter",
        }
    }

    /// Whether statistics list this client among a stream's players.
    pub fn is_player(self) -> bool {
        !matches!(
            self,
            ClientKind::RtmpPublisher | ClientKind::Recorder | ClientKind::HlsSegmenter
        )
    }
}

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: ClientId,
    pub kind: ClientKind,
    pub remote_addr: Option<SocketAddr>,
    pub connected_at: SystemTime,
    /// The URL the client used, for statistics (never contains a publish key).
    pub url: String,
}

impl ClientInfo {
    pub fn new(kind: ClientKind, remote_addr: Option<SocketAddr>, url: String) -> Self {
        ClientInfo {
            id: Uuid::new_v4(),
            kind,
            remote_addr,
            connected_at: SystemTime::now(),
            url,
        }
    }
}

/// Told to a publisher by its channel.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum PublisherControl {
    /// Stop publishing and close, telling the client why.
    Kick { reason: String },
}

/// Told to a viewer by its channel. Ending the frame queue already ends a viewer; this carries
/// the reason so the viewer can tell its client.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum ViewerControl {
    Kick { reason: String },
}

/// Byte counters and rates for one client, as the channel sees them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficStats {
    pub video_total_bytes: u64,
    pub audio_total_bytes: u64,
    /// kbit/s over the last measuring interval.
    pub video_speed: u64,
    pub audio_speed: u64,
    pub dropped_frames: u64,
}

#[derive(Debug, Clone)]
pub struct ClientSnapshot {
    pub info: ClientInfo,
    pub traffic: TrafficStats,
}
