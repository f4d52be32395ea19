//! The registry: maps `app/room` to its stream channel and routes publish and play requests.
//!
//! It only routes. It creates a channel on the first request for a room, forwards attach
//! requests to it with `do_send` (so they arrive in the order routed) and retires it once the
//! channel reports itself empty with no attach still in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::join_all;
use log::debug;
use tokio::sync::oneshot;

use crate::client::{ClientId, ClientInfo, PublisherControl, StreamKey, ViewerControl};
use crate::settings::StreamSettings;
use crate::stream_channel::{
    AttachPublisher, AttachViewer, EndStream, FrameReceiver, GetStreamInfo, KickClient,
    PlayRejected, PublishRejected, Retire, StreamChannel, StreamInfo,
};

// ---------------------------------------------------------------------------------------------
// Messages

/// Make a client the publisher of `key`.
#[derive(Message)]
#[rtype(result = "Result<Addr<StreamChannel>, PublishRejected>")]
pub struct Publish {
    pub key: StreamKey,
    pub info: ClientInfo,
    pub control: Recipient<PublisherControl>,
    /// The pool arbiter the publisher runs on: a new channel starts there, so the publisher's
    /// frames reach it without a cross-thread hop.
    pub arbiter: Option<usize>,
}

/// Subscribe a viewer to `key`.
#[derive(Message)]
#[rtype(result = "Result<Subscription, PlayRejected>")]
pub struct Play {
    pub key: StreamKey,
    pub info: ClientInfo,
    pub control: Option<Recipient<ViewerControl>>,
    /// Refuse at once when nobody publishes (HTTP); otherwise wait up to `write_timeout` (RTMP).
    pub require_publisher: bool,
}

/// What a viewer gets: the channel to unsubscribe from and its frame queue.
pub struct Subscription {
    pub channel: Addr<StreamChannel>,
    pub frames: FrameReceiver,
    /// The channel's thread (its index in the pool and handle): a viewer that writes from there
    /// gets its frames without a cross-thread wake-up per frame.
    pub home: Option<(usize, ArbiterHandle)>,
}

/// Channel → registry: the channel has no publisher and no viewers after `attaches_handled`
/// attach messages.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelEmptied {
    pub key: StreamKey,
    pub attaches_handled: u64,
}

/// Registry → observers: a publisher was accepted on `key`. Subscribers that follow every
/// stream of an app (HLS segmenter, recorder, static push) start from this.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct StreamPublished {
    pub key: StreamKey,
    /// The accepted publisher (a relay observer must not push a stream back to where it came from).
    pub publisher: ClientId,
}

/// Register an observer of [`StreamPublished`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddPublishObserver(pub Recipient<StreamPublished>);

/// The server is stopping: end every stream (publishers are told why, viewers' queues end so
/// recordings and playlists are finished) and refuse new publishers and viewers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Snapshot every live stream.
#[derive(Message)]
#[rtype(result = "Vec<StreamInfo>")]
pub struct ListStreams;

/// End one client, wherever it is. Replies whether it was found.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Kick {
    pub id: ClientId,
    pub reason: String,
}

// ---------------------------------------------------------------------------------------------
// The actor

struct ChannelEntry {
    addr: Addr<StreamChannel>,
    attaches_sent: u64,
    home: Option<(usize, ArbiterHandle)>,
}

/// Threads that channels run on, picked round robin, so streams spread over the cores.
#[derive(Clone, Default)]
pub struct ArbiterPool {
    arbiters: Arc<Vec<ArbiterHandle>>,
    next: Arc<AtomicUsize>,
}

impl ArbiterPool {
    pub fn new(arbiters: Vec<ArbiterHandle>) -> Self {
        ArbiterPool {
            arbiters: Arc::new(arbiters),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The next arbiter, or `None` to run on the caller's own.
    pub fn pick(&self) -> Option<&ArbiterHandle> {
        self.pick_indexed().map(|(_, arbiter)| arbiter)
    }

    /// The arbiter at `index`.
    pub fn get(&self, index: usize) -> Option<&ArbiterHandle> {
        self.arbiters.get(index)
    }

    /// The next arbiter with its index in the pool.
    pub fn pick_indexed(&self) -> Option<(usize, &ArbiterHandle)> {
        if self.arbiters.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        self.arbiters.get(i).map(|arbiter| (i, arbiter))
    }
}

pub struct Registry {
    settings: Arc<StreamSettings>,
    channels: HashMap<StreamKey, ChannelEntry>,
    arbiters: ArbiterPool,
    observers: Vec<Recipient<StreamPublished>>,
    shutting_down: bool,
}

impl Registry {
    pub fn new(settings: Arc<StreamSettings>, arbiters: ArbiterPool) -> Self {
        Registry {
            settings,
            channels: HashMap::new(),
            arbiters,
            observers: Vec::new(),
            shutting_down: false,
        }
    }

    fn channel_for(
        &mut self,
        key: &StreamKey,
        preferred: Option<usize>,
        ctx: &mut Context<Self>,
    ) -> &mut ChannelEntry {
        let registry = ctx.address();
        let settings = self.settings.clone();
        let arbiters = self.arbiters.clone();
        self.channels.entry(key.clone()).or_insert_with(|| {
            let key = key.clone();
            let home = preferred
                .and_then(|index| arbiters.get(index).map(|arbiter| (index, arbiter)))
                .or_else(|| arbiters.pick_indexed())
                .map(|(index, arbiter)| (index, arbiter.clone()));
            let addr = match &home {
                Some((_, arbiter)) => StreamChannel::start_in_arbiter(arbiter, move |_| {
                    StreamChannel::new(key, registry, settings)
                }),
                None => StreamChannel::new(key, registry, settings).start(),
            };
            ChannelEntry {
                addr,
                attaches_sent: 0,
                home,
            }
        })
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Routing must never be refused for a full mailbox; requests are small and bounded by
        // the number of connections.
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<Publish> for Registry {
    type Result = ResponseFuture<Result<Addr<StreamChannel>, PublishRejected>>;

    fn handle(&mut self, msg: Publish, ctx: &mut Self::Context) -> Self::Result {
        if self.shutting_down {
            return Box::pin(async { Err(PublishRejected::ChannelGone) });
        }
        let entry = self.channel_for(&msg.key, msg.arbiter, ctx);
        entry.attaches_sent += 1;
        let addr = entry.addr.clone();
        let (reply, answer) = oneshot::channel();
        let published = StreamPublished {
            key: msg.key.clone(),
            publisher: msg.info.id,
        };
        addr.do_send(AttachPublisher {
            info: msg.info,
            control: msg.control,
            reply,
        });
        let observers = self.observers.clone();
        Box::pin(async move {
            match answer.await {
                Ok(Ok(())) => {
                    for observer in &observers {
                        observer.do_send(published.clone());
                    }
                    Ok(addr)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(PublishRejected::ChannelGone),
            }
        })
    }
}

impl Handler<Play> for Registry {
    type Result = ResponseFuture<Result<Subscription, PlayRejected>>;

    fn handle(&mut self, msg: Play, ctx: &mut Self::Context) -> Self::Result {
        if self.shutting_down {
            return Box::pin(async { Err(PlayRejected::ChannelGone) });
        }
        if msg.require_publisher && !self.channels.contains_key(&msg.key) {
            return Box::pin(async { Err(PlayRejected::NotPublishing) });
        }
        let entry = self.channel_for(&msg.key, None, ctx);
        entry.attaches_sent += 1;
        let addr = entry.addr.clone();
        let home = entry.home.clone();
        let (reply, answer) = oneshot::channel();
        addr.do_send(AttachViewer {
            info: msg.info,
            control: msg.control,
            require_publisher: msg.require_publisher,
            reply,
        });
        Box::pin(async move {
            match answer.await {
                Ok(Ok(frames)) => Ok(Subscription {
                    channel: addr,
                    frames,
                    home,
                }),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(PlayRejected::ChannelGone),
            }
        })
    }
}

impl Handler<AddPublishObserver> for Registry {
    type Result = ();

    fn handle(&mut self, msg: AddPublishObserver, _ctx: &mut Self::Context) {
        self.observers.push(msg.0);
    }
}

impl Handler<ChannelEmptied> for Registry {
    type Result = ();

    fn handle(&mut self, msg: ChannelEmptied, _ctx: &mut Self::Context) {
        let settled = self
            .channels
            .get(&msg.key)
            .is_some_and(|entry| entry.attaches_sent == msg.attaches_handled);
        if settled {
            if let Some(entry) = self.channels.remove(&msg.key) {
                debug!("stream={} empty; retiring its channel", msg.key);
                entry.addr.do_send(Retire);
            }
        }
    }
}

impl Handler<Shutdown> for Registry {
    type Result = ();

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) {
        self.shutting_down = true;
        for entry in self.channels.values() {
            entry.addr.do_send(EndStream {
                reason: "server is shutting down".to_string(),
            });
        }
    }
}

impl Handler<ListStreams> for Registry {
    type Result = ResponseFuture<Vec<StreamInfo>>;

    fn handle(&mut self, _msg: ListStreams, _ctx: &mut Self::Context) -> Self::Result {
        let requests: Vec<_> = self
            .channels
            .values()
            .map(|entry| entry.addr.send(GetStreamInfo))
            .collect();
        Box::pin(async move {
            let mut streams: Vec<StreamInfo> = join_all(requests)
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            streams.sort_by(|a, b| a.key.cmp(&b.key));
            streams
        })
    }
}

impl Handler<Kick> for Registry {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Kick, _ctx: &mut Self::Context) -> Self::Result {
        let requests: Vec<_> = self
            .channels
            .values()
            .map(|entry| {
                entry.addr.send(KickClient {
                    id: msg.id,
                    reason: msg.reason.clone(),
                })
            })
            .collect();
        Box::pin(async move {
            join_all(requests)
                .await
                .into_iter()
                .any(|found| matches!(found, Ok(true)))
        })
    }
}
