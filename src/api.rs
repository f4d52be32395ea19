//! The control API (`api_addr`, livego's :8090).

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use switchboard_actors::key_store::{KeyStore, KeyStoreError};

use crate::envelope;

pub struct ApiState {
    pub keys: Arc<dyn KeyStore>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/control/get", web::route().to(get_key))
        .route("/control/reset", web::route().to(reset_key))
        .route("/control/delete", web::route().to(delete_room));
}

type Params = web::Query<HashMap<String, String>>;

fn room_param<'a>(params: &'a Params, endpoint: &str) -> Result<&'a str, HttpResponse> {
    match params
        .get("room")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
    {
        Some(room) => Ok(room),
        None => Err(envelope::reply(
            StatusCode::BAD_REQUEST,
            format!("missing room; usage: /control/{endpoint}?room=<ROOM_NAME>"),
        )),
    }
}

fn store_error(e: KeyStoreError) -> HttpResponse {
    envelope::reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

async fn get_key(params: Params, state: web::Data<ApiState>) -> HttpResponse {
    let room = match room_param(&params, "get") {
        Ok(room) => room,
        Err(reply) => return reply,
    };
    match state.keys.key_for_room(room).await {
        Ok(key) => envelope::ok(key),
        Err(e) => store_error(e),
    }
}

async fn reset_key(params: Params, state: web::Data<ApiState>) -> HttpResponse {
    let room = match room_param(&params, "reset") {
        Ok(room) => room,
        Err(reply) => return reply,
    };
    match state.keys.reset_key(room).await {
        Ok(key) => envelope::ok(key),
        Err(e) => store_error(e),
    }
}

async fn delete_room(params: Params, state: web::Data<ApiState>) -> HttpResponse {
    let room = match room_param(&params, "delete") {
        Ok(room) => room,
        Err(reply) => return reply,
    };
    match state.keys.delete_room(room).await {
        Ok(true) => envelope::ok("Ok"),
        Ok(false) => envelope::reply(StatusCode::NOT_FOUND, "room not found"),
        Err(e) => store_error(e),
    }
}
