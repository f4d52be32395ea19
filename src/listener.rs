//! The RTMP listener: accepts TCP connections and hands each to an `RtmpSession` actor on one
//! of the worker arbiters, round robin, so connections spread over the cores.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use log::{debug, warn};
use switchboard_actors::key_store::KeyStore;
use switchboard_actors::registry::{ArbiterPool, Registry};
use switchboard_actors::rtmp_session::RtmpSession;
use switchboard_actors::settings::StreamSettings;
use tokio::net::{TcpListener, TcpStream};

/// Pause after an accept error (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub struct RtmpListener {
    pub listener: TcpListener,
    pub pool: ArbiterPool,
    pub registry: Addr<Registry>,
    pub keys: Arc<dyn KeyStore>,
    pub settings: Arc<StreamSettings>,
}

impl RtmpListener {
    pub async fn run(self) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("rtmp accept failed: {e}");
                    actix_rt::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            debug!("rtmp connection from {peer}");
            let registry = self.registry.clone();
            let keys = self.keys.clone();
            let settings = self.settings.clone();
            let Some((index, arbiter)) = self.pool.pick_indexed() else {
                start_session(stream, registry, keys, settings, None);
                continue;
            };
            // Each arbiter is its own runtime: move the socket over as a std stream and
            // register it with the target runtime there.
            let std_stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    warn!("rtmp connection from {peer} lost before handoff: {e}");
                    continue;
                }
            };
            arbiter.spawn(async move {
                match TcpStream::from_std(std_stream) {
                    Ok(stream) => start_session(stream, registry, keys, settings, Some(index)),
                    Err(e) => warn!("rtmp connection from {peer} lost in handoff: {e}"),
                }
            });
        }
    }
}

fn start_session(
    stream: TcpStream,
    registry: Addr<Registry>,
    keys: Arc<dyn KeyStore>,
    settings: Arc<StreamSettings>,
    arbiter: Option<usize>,
) {
    if let Err(e) = RtmpSession::start(stream, registry, keys, settings, arbiter) {
        debug!("rtmp connection closed before its session started: {e}");
    }
}
