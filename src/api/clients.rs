//! `GET /api/clients` and `DELETE /api/clients/{id}`: list and kick publishers and viewers.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use log::info;
use switchboard_actors::hls_hub::KickHlsSession;
use switchboard_actors::registry::Kick;
use uuid::Uuid;

use super::stats::Snapshot;
use super::ApiState;
use crate::envelope;

const KICK_TIMEOUT: Duration = Duration::from_secs(5);
/// What a kicked RTMP client reads in its onStatus description.
const KICK_REASON: &str = "disconnected by the server operator";

/// Every publisher, then every player, in the livestat entry shape.
pub async fn list(state: web::Data<ApiState>) -> HttpResponse {
    match Snapshot::take(&state).await {
        Ok(snapshot) => {
            let mut clients = snapshot.publishers();
            clients.extend(snapshot.players());
            envelope::ok(clients)
        }
        Err(reply) => reply,
    }
}

/// End one client: an RTMP session gets an error onStatus and is closed, an HTTP-FLV response
/// ends, an HLS session is forgotten.
pub async fn kick(path: web::Path<String>, state: web::Data<ApiState>) -> HttpResponse {
    let raw = path.into_inner();
    let Ok(id) = Uuid::parse_str(raw.trim()) else {
        return envelope::reply(
            StatusCode::BAD_REQUEST,
            format!("invalid client id {raw:?}: expected an id from GET /api/clients"),
        );
    };
    let registry = state.registry.send(Kick {
        id,
        reason: KICK_REASON.to_string(),
    });
    let found = match tokio::time::timeout(KICK_TIMEOUT, registry).await {
        Ok(Ok(found)) => found,
        Ok(Err(_)) => {
            return envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
        }
        Err(_) => {
            return envelope::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "the streams did not answer in time; try again",
            )
        }
    };
    let found = found
        || matches!(
            tokio::time::timeout(KICK_TIMEOUT, state.hls.send(KickHlsSession { id })).await,
            Ok(Ok(true))
        );
    if found {
        info!("client={id} kicked through the API");
        envelope::ok("Ok")
    } else {
        envelope::reply(StatusCode::NOT_FOUND, "client not found")
    }
}
