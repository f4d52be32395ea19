//! The control API (`api_addr`, livego's :8090).

pub mod relays;
pub mod statics;

use std::collections::HashMap;
use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use switchboard_actors::key_store::KeyStoreError;

use crate::context::ServerContext;
use crate::envelope;

type ApiState = ServerContext;

/// Bind and start the API server; returns it with the address it listens on.
pub fn start(ctx: &ServerContext, addr: SocketAddr) -> std::io::Result<(Server, SocketAddr)> {
    let state = web::Data::new(ctx.clone());
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(crate::HTTP_SHUTDOWN_TIMEOUT_SECS)
        .bind(addr)?;
    let local = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), local))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    relays::routes(cfg);
    cfg.route("/control/get", web::route().to(get_key))
        .route("/control/reset", web::route().to(reset_key))
        .route("/control/delete", web::route().to(delete_room));
    // Last: the console serves `/`.
    statics::routes(cfg);
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
