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
        }
    }
}
