//! The part of the server configuration the actors act on, decoupled from how it was parsed.

use std::collections::HashMap;
use std::time::Duration;

use crate::media::gop::GopLimits;

/// What happens when a second publisher arrives on a live room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// The newcomer wins; the old publisher is closed and viewers continue (livego's behaviour).
    Takeover,
    /// The newcomer is refused with `NetStream.Publish.BadName`.
    Reject,
}

/// Per-application switches from a `[[server]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRules {
    pub live: bool,
    pub flv: bool,
    pub hls: bool,
    /// RTMP URLs (`rtmp://host/app`) every stream of this app is pushed to, as `<url>/<room>`.
    pub static_push: Vec<String>,
}

/// How relays (pull, push, static push) reconnect and where they may connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// First reconnect delay; it doubles per failed attempt up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// URL prefixes API relays may connect to; empty allows every target.
    pub allow: Vec<String>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            allow: Vec::new(),
        }
    }
}

/// HLS output (`hls_fragment`, `hls_window`, `hls_keep_after_end`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsSettings {
    /// Target segment length; segments are cut at the first keyframe after it.
    pub fragment: Duration,
    /// Segments listed in (and kept for) a playlist.
    pub window: usize,
    /// Keep an ended stream's playlist (with `#EXT-X-ENDLIST`) until the room is published
    /// again, instead of dropping it shortly after the end.
    pub keep_after_end: bool,
}

impl Default for HlsSettings {
    fn default() -> Self {
        HlsSettings {
            fragment: Duration::from_secs(2),
            window: 6,
            keep_after_end: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub apps: HashMap<String, AppRules>,
    pub gop: GopLimits,
    /// Frames a viewer may lag behind live (beyond its GOP replay) before it skips to a keyframe.
    pub viewer_queue: usize,
    pub write_timeout: Duration,
    pub read_timeout: Duration,
    pub conflict: ConflictPolicy,
    /// Publishers use the room name as the stream key (no key check).
    pub noauth: bool,
    pub relays: RelaySettings,
    pub hls: HlsSettings,
}

impl StreamSettings {
    /// An app that accepts publishers and players (`live = true` in its `[[server]]` entry).
    pub fn live_app(&self, app: &str) -> Option<&AppRules> {
        self.apps.get(app).filter(|rules| rules.live)
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        let mut apps = HashMap::new();
        apps.insert(
            "live".to_string(),
            AppRules {
                live: true,
                flv: true,
                hls: true,
                static_push: Vec::new(),
            },
        );
        StreamSettings {
            apps,
            gop: GopLimits::default(),
            viewer_queue: 512,
            write_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            conflict: ConflictPolicy::Takeover,
            noauth: false,
            relays: RelaySettings::default(),
            hls: HlsSettings::default(),
        }
    }
}
