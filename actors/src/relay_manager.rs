//! The relay manager: starts, stops and lists relay sessions (API pull and push) and runs each
//! app's static pushes while its rooms are published.
//!
//! API relays are identified like livego's sessions: one pull and one push per local
//! `app/name`. Static pushes are one per room and target URL; they start on `StreamPublished`
//! and end when the room's subscription ends.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::join_all;
use log::{info, warn};
use uuid::Uuid;

use crate::client::{ClientId, StreamKey};
use crate::registry::{Registry, StreamPublished};
use crate::relay_session::{
    GetRelayStatus, RelayDirection, RelayOrigin, RelaySession, RelaySpec, RelayStatus, RtmpUrl,
    Shutdown, SourcePublished, UrlError,
};
use crate::settings::StreamSettings;

// ---------------------------------------------------------------------------------------------
// Messages

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("bad relay URL: {0}")]
    BadUrl(#[from] UrlError),
    #[error("application {0:?} is not configured for live streams on this server")]
    UnknownApp(String),
    #[error("relay target {0} is not allowed by relay_allow")]
    NotAllowed(String),
    #[error("a {direction} relay for {key} is already running (to {target})")]
    AlreadyRunning {
        direction: RelayDirection,
        key: StreamKey,
        target: String,
    },
    #[error("no {direction} relay for {key}")]
    NotFound {
        direction: RelayDirection,
        key: StreamKey,
    },
}

/// API: start a pull (`url` → local `key`) or a push (local `key` → `url`).
#[derive(Message)]
#[rtype(result = "Result<RelayStatus, RelayError>")]
pub struct StartRelay {
    pub direction: RelayDirection,
    pub key: StreamKey,
    pub url: String,
}

/// API: stop the pull or push relay of `key`. Replies with its last status.
#[derive(Message)]
#[rtype(result = "Result<RelayStatus, RelayError>")]
pub struct StopRelay {
    pub direction: RelayDirection,
    pub key: StreamKey,
}

/// Every relay, API and static, sorted by room.
#[derive(Message)]
#[rtype(result = "Vec<RelayStatus>")]
pub struct ListRelays;

/// Static push session → manager: its room has no publisher any more and it stopped.
/// `wakes_seen` counts the `SourcePublished` it received, so a publish that raced with its end
/// is not lost.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelayFinished {
    pub id: Uuid,
    pub wakes_seen: u64,
}

/// Pull session → manager: `publisher` is about to publish the pulled stream locally.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RelayPublishing {
    pub relay: Uuid,
    pub publisher: ClientId,
}

// ---------------------------------------------------------------------------------------------
// The actor

struct RelayEntry {
    spec: RelaySpec,
    addr: Addr<RelaySession>,
    /// `SourcePublished` messages sent to this session.
    wakes_sent: u64,
    /// Pull: the client id its current local publish uses.
    publisher: Option<ClientId>,
}

pub struct RelayManager {
    registry: Addr<Registry>,
    settings: Arc<StreamSettings>,
    /// Each app's static push bases, parsed once.
    static_push: HashMap<String, Vec<RtmpUrl>>,
    relays: HashMap<Uuid, RelayEntry>,
}

impl RelayManager {
    pub fn new(registry: Addr<Registry>, settings: Arc<StreamSettings>) -> RelayManager {
        let mut static_push = HashMap::new();
        for (app, rules) in &settings.apps {
            let mut bases = Vec::new();
            for url in &rules.static_push {
                match RtmpUrl::parse_base(url) {
                    Ok(base) => bases.push(base),
                    Err(e) => warn!("app={app} static_push {url:?} ignored: {e}"),
                }
            }
            if !bases.is_empty() {
                static_push.insert(app.clone(), bases);
            }
        }
        for prefix in &settings.relays.allow {
            if !prefix.trim().to_ascii_lowercase().starts_with("rtmp://") {
                warn!("relay_allow entry {prefix:?} is not an rtmp:// prefix and matches nothing");
            }
        }
        RelayManager {
            registry,
            settings,
            static_push,
            relays: HashMap::new(),
        }
    }

    fn find_api(&self, direction: RelayDirection, key: &StreamKey) -> Option<Uuid> {
        self.relays
            .iter()
            .find(|(_, entry)| {
                entry.spec.origin == RelayOrigin::Api
                    && entry.spec.direction == direction
                    && entry.spec.key == *key
            })
            .map(|(id, _)| *id)
    }

    fn spawn(&mut self, spec: RelaySpec, ctx: &mut Context<Self>) -> RelayStatus {
        let id = Uuid::new_v4();
        let session = RelaySession::new(
            id,
            spec.clone(),
            self.registry.clone(),
            ctx.address(),
            self.settings.clone(),
        );
        let status = session.status();
        let addr = session.start();
        self.relays.insert(
            id,
            RelayEntry {
                spec,
                addr,
                wakes_sent: 0,
                publisher: None,
            },
        );
        status
    }

    /// A pull whose current local publisher is `publisher`, if any.
    fn pull_feeding(&self, publisher: ClientId) -> Option<&RelayEntry> {
        self.relays.values().find(|entry| {
            entry.spec.direction == RelayDirection::Pull && entry.publisher == Some(publisher)
        })
    }

    fn start_static_pushes(&mut self, msg: &StreamPublished, ctx: &mut Context<Self>) {
        let Some(bases) = self.static_push.get(&msg.key.app) else {
            return;
        };
        let targets: Vec<RtmpUrl> = bases.iter().map(|b| b.with_room(&msg.key.room)).collect();
        // A stream pulled in from a server is never pushed back to that server: with a pull
        // from B and a static push to B on the same app, the two would feed each other.
        let source = self
            .pull_feeding(msg.publisher)
            .map(|entry| entry.spec.url.authority());
        for target in targets {
            if source.as_deref() == Some(target.authority().as_str()) {
                info!(
                    "stream={} static push to {} skipped: the stream is pulled from that server",
                    msg.key,
                    target.without_query()
                );
                continue;
            }
            let existing = self.relays.values_mut().find(|entry| {
                entry.spec.origin == RelayOrigin::Static
                    && entry.spec.key == msg.key
                    && entry.spec.url == target
            });
            match existing {
                Some(entry) => {
                    entry.wakes_sent += 1;
                    entry.addr.do_send(SourcePublished);
                }
                None => {
                    self.spawn(
                        RelaySpec {
                            direction: RelayDirection::Push,
                            origin: RelayOrigin::Static,
                            key: msg.key.clone(),
                            url: target,
                        },
                        ctx,
                    );
                }
            }
        }
    }
}

impl Actor for RelayManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Publish notifications and API calls must not be refused for a full mailbox.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<StartRelay> for RelayManager {
    type Result = Result<RelayStatus, RelayError>;

    fn handle(&mut self, msg: StartRelay, ctx: &mut Self::Context) -> Self::Result {
        let url = RtmpUrl::parse(&msg.url)?;
        if self.settings.live_app(&msg.key.app).is_none() {
            return Err(RelayError::UnknownApp(msg.key.app));
        }
        if !url.allowed_by(&self.settings.relays.allow) {
            return Err(RelayError::NotAllowed(url.without_query()));
        }
        if let Some(id) = self.find_api(msg.direction, &msg.key) {
            let target = self
                .relays
                .get(&id)
                .map(|entry| entry.spec.url.without_query())
                .unwrap_or_default();
            return Err(RelayError::AlreadyRunning {
                direction: msg.direction,
                key: msg.key,
                target,
            });
        }
        Ok(self.spawn(
            RelaySpec {
                direction: msg.direction,
                origin: RelayOrigin::Api,
                key: msg.key,
                url,
            },
            ctx,
        ))
    }
}

impl Handler<StopRelay> for RelayManager {
    type Result = ResponseFuture<Result<RelayStatus, RelayError>>;

    fn handle(&mut self, msg: StopRelay, _ctx: &mut Self::Context) -> Self::Result {
        let Some(entry) = self
            .find_api(msg.direction, &msg.key)
            .and_then(|id| self.relays.remove(&id))
        else {
            return Box::pin(async move {
                Err(RelayError::NotFound {
                    direction: msg.direction,
                    key: msg.key,
                })
            });
        };
        Box::pin(async move {
            let status = entry.addr.send(GetRelayStatus).await;
            entry.addr.do_send(Shutdown);
            status.map_err(|_| RelayError::NotFound {
                direction: msg.direction,
                key: msg.key,
            })
        })
    }
}

impl Handler<ListRelays> for RelayManager {
    type Result = ResponseFuture<Vec<RelayStatus>>;

    fn handle(&mut self, _msg: ListRelays, _ctx: &mut Self::Context) -> Self::Result {
        // A session that stopped on its own without reporting is simply not listed.
        self.relays.retain(|_, entry| entry.addr.connected());
        let requests: Vec<_> = self
            .relays
            .values()
            .map(|entry| entry.addr.send(GetRelayStatus))
            .collect();
        Box::pin(async move {
            let mut relays: Vec<RelayStatus> = join_all(requests)
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            relays.sort_by(|a, b| {
                (&a.app, &a.name, a.kind == RelayDirection::Push, &a.target).cmp(&(
                    &b.app,
                    &b.name,
                    b.kind == RelayDirection::Push,
                    &b.target,
                ))
            });
            relays
        })
    }
}

impl Handler<StreamPublished> for RelayManager {
    type Result = ();

    fn handle(&mut self, msg: StreamPublished, ctx: &mut Self::Context) {
        for entry in self.relays.values_mut() {
            if entry.spec.origin == RelayOrigin::Api
                && entry.spec.direction == RelayDirection::Push
                && entry.spec.key == msg.key
            {
                entry.wakes_sent += 1;
                entry.addr.do_send(SourcePublished);
            }
        }
        self.start_static_pushes(&msg, ctx);
    }
}

impl Handler<RelayFinished> for RelayManager {
    type Result = ();

    fn handle(&mut self, msg: RelayFinished, ctx: &mut Self::Context) {
        let Some(entry) = self.relays.remove(&msg.id) else {
            return;
        };
        if entry.wakes_sent > msg.wakes_seen {
            // The room was published again after the session decided it had ended.
            self.spawn(entry.spec, ctx);
        }
    }
}

impl Handler<RelayPublishing> for RelayManager {
    type Result = ();

    fn handle(&mut self, msg: RelayPublishing, _ctx: &mut Self::Context) {
        if let Some(entry) = self.relays.get_mut(&msg.relay) {
            entry.publisher = Some(msg.publisher);
        }
    }
}
