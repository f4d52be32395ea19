//! The HLS surface (`hls_addr`, livego's :7002). (Stub; the HLS issue fills it in.)

use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpServer};

use crate::context::ServerContext;
use crate::envelope;

/// Bind and start the HLS server; returns it with the address it listens on.
pub fn start(ctx: &ServerContext, addr: SocketAddr) -> std::io::Result<(Server, SocketAddr)> {
    let state = web::Data::new(ctx.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).default_service(web::to(|| async {
            envelope::reply(StatusCode::NOT_FOUND, "HLS is not implemented yet")
        }))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(crate::HTTP_SHUTDOWN_TIMEOUT_SECS)
    .bind(addr)?;
    let local = server.addrs().first().copied().unwrap_or(addr);
    Ok((server.run(), local))
}
