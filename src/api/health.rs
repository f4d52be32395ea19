//! `GET /healthz`: is the server up, and can it reach its key store.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use switchboard_actors::registry::ListStreams;

use super::ApiState;
use crate::envelope;

#[derive(Serialize)]
struct Health {
    /// `ok`, or `degraded` when the key store is unreachable (live streams are unaffected;
    /// new keys and new keyed publishes are not possible).
    status: &'static str,
    version: &'static str,
    key_store: KeyStoreHealth,
    streams: usize,
}

#[derive(Serialize)]
struct KeyStoreHealth {
    backend: &'static str,
    ok: bool,
    /// Why it is not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Always 200 while the process serves requests: a key store outage must not make a load
/// balancer or supervisor take down a server that keeps streaming; `status` tells it apart.
pub async fn healthz(state: web::Data<ApiState>) -> HttpResponse {
    // A lookup of a key that cannot exist is the one store call with no side effects.
    let probe = state.keys.room_for_key("").await;
    let streams = state
        .registry
        .send(ListStreams)
        .await
        .map_or(0, |s| s.len());
    let backend = if state.config.redis_addr.trim().is_empty() {
        "memory"
    } else {
        "redis"
    };
    let error = probe.err().map(|e| e.to_string());
    envelope::ok(Health {
        status: if error.is_none() { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        key_store: KeyStoreHealth {
            backend,
            ok: error.is_none(),
            error,
        },
        streams,
    })
}
