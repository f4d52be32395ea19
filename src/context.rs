//! What every surface of the server (RTMP, HTTP-FLV, HLS, API) shares.

use std::sync::Arc;

use actix::Addr;
use switchboard_actors::hls_hub::HlsHub;
use switchboard_actors::key_store::KeyStore;
use switchboard_actors::registry::Registry;
use switchboard_actors::relay_manager::RelayManager;
use switchboard_actors::settings::StreamSettings;

use crate::config::Config;

#[derive(Clone)]
pub struct ServerContext {
    pub config: Arc<Config>,
    pub settings: Arc<StreamSettings>,
    pub registry: Addr<Registry>,
    pub keys: Arc<dyn KeyStore>,
    pub hls: Addr<HlsHub>,
    pub relays: Addr<RelayManager>,
    /// HTTP worker threads per server.
    pub workers: usize,
}
