//! `/control/get`, `/control/reset`, `/control/delete`: a room's publish key.

use actix_web::http::header::{HeaderValue, CACHE_CONTROL};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use switchboard_actors::key_store::KeyStoreError;

use super::params::{ParamError, Params};
use super::ApiState;
use crate::envelope;

/// Room names become URL path segments (`/live/<room>.flv`) and RTMP stream names.
const MAX_ROOM_LEN: usize = 200;

pub async fn get_key(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let room = match room(&req, payload, "get").await {
        Ok(room) => room,
        Err(reply) => return reply,
    };
    match state.keys.key_for_room(&room).await {
        Ok(key) => secret(key),
        Err(e) => store_error(e),
    }
}

pub async fn reset_key(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let room = match room(&req, payload, "reset").await {
        Ok(room) => room,
        Err(reply) => return reply,
    };
    match state.keys.reset_key(&room).await {
        Ok(key) => {
            log::info!("room={room} publish key reset; the old key is revoked");
            secret(key)
        }
        Err(e) => store_error(e),
    }
}

pub async fn delete_room(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let room = match room(&req, payload, "delete").await {
        Ok(room) => room,
        Err(reply) => return reply,
    };
    match state.keys.delete_room(&room).await {
        Ok(true) => {
            log::info!("room={room} deleted; its publish key is revoked");
            envelope::ok("Ok")
        }
        Ok(false) => envelope::reply(StatusCode::NOT_FOUND, "room not found"),
        Err(e) => store_error(e),
    }
}

/// The `room` parameter, present and usable as a stream name.
async fn room(
    req: &HttpRequest,
    payload: web::Payload,
    endpoint: &str,
) -> Result<String, HttpResponse> {
    let params = Params::read(req, payload)
        .await
        .map_err(ParamError::reply)?;
    let usage = format!("usage: /control/{endpoint}?room=<ROOM_NAME>");
    let Some(room) = params.get("room") else {
        return Err(envelope::reply(
            StatusCode::BAD_REQUEST,
            format!("missing room; {usage}"),
        ));
    };
    if let Some(problem) = room_problem(room) {
        return Err(envelope::reply(
            StatusCode::BAD_REQUEST,
            format!("invalid room {room:?}: {problem}; {usage}"),
        ));
    }
    Ok(room.to_string())
}

/// Why `room` cannot name a stream, if it cannot.
fn room_problem(room: &str) -> Option<String> {
    if room.chars().count() > MAX_ROOM_LEN {
        return Some(format!("longer than {MAX_ROOM_LEN} characters"));
    }
    // '/' would split the play URL, '?' starts an RTMP stream name's query, '#' a fragment.
    if let Some(c) = room
        .chars()
        .find(|c| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Some(format!("contains {c:?}"));
    }
    None
}

/// A key is a credential: no cache may keep it.
fn secret(key: String) -> HttpResponse {
    let mut reply = envelope::ok(key);
    reply
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

fn store_error(e: KeyStoreError) -> HttpResponse {
    log::warn!("key API: {e}");
    envelope::reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_that_cannot_be_stream_names_are_refused() {
        assert_eq!(room_problem("movie"), None);
        assert_eq!(room_problem("Movie-1_b.c:d"), None);
        assert_eq!(room_problem("房间"), None);
        for bad in ["a/b", "a?b", "a#b", "a b", "a\tb"] {
            assert!(room_problem(bad).is_some(), "{bad:?}");
        }
        assert!(room_problem(&"r".repeat(MAX_ROOM_LEN)).is_none());
        assert!(room_problem(&"r".repeat(MAX_ROOM_LEN + 1)).is_some());
    }
}
