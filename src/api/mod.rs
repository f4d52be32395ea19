//! The control API (`api_addr`, livego's :8090): room keys, statistics, client management.
//!
//! Every reply is livego's envelope `{"status": N, "data": ...}` with HTTP status N. Two
//! middlewares wrap every route, the console's included: CORS outermost (it answers `OPTIONS`
//! itself, with no data), then JWT. The routes this module registers are listed once, in
//! [`ROUTES`]; `docs/openapi.json` describes them and a test keeps the two in step.

mod clients;
mod cors;
mod health;
mod jwt;
mod keys;
mod openapi;
mod params;
pub mod relays;
pub mod statics;
mod stats;

use std::net::SocketAddr;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{middleware, web, App, HttpRequest, HttpResponse, HttpServer};

use crate::context::ServerContext;
use crate::envelope;

type ApiState = ServerContext;

/// Bind and start the API server; returns it with the address it listens on.
pub fn start(ctx: &ServerContext, addr: SocketAddr) -> std::io::Result<(Server, SocketAddr)> {
    let state = web::Data::new(ctx.clone());
    let jwt = web::Data::new(jwt::JwtPolicy::from_config(&ctx.config.jwt));
    let cors = web::Data::new(cors::CorsPolicy::from_config(&ctx.config.api_cors_origins));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(jwt.clone())
            .app_data(cors.clone())
            .default_service(web::to(not_found))
            .configure(routes)
            .wrap(middleware::from_fn(jwt::require_token))
            // Registered last, so it runs first: even a 403 carries the CORS headers.
            .wrap(middleware::from_fn(cors::apply))
    });
    start_http_server!(server, 1, addr)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    relays::routes(cfg);
    register(cfg);
    // Last: the console serves `/`.
    statics::routes(cfg);
}

/// Declares [`ROUTES`] and registers them, from one list. `ANY` accepts every method, as
/// livego's handlers do (query string or form body); other methods get 405.
macro_rules! api_routes {
    (@method ANY) => { web::route() };
    (@method GET) => { web::get() };
    (@method DELETE) => { web::delete() };
    ($($method:ident $path:literal => $handler:path,)*) => {
        /// Every route this module registers, as (method, path pattern).
        // Read by the OpenAPI test that keeps docs/openapi.json in step.
        #[cfg_attr(not(test), allow(dead_code))]
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        .route(api_routes!(@method $method).to($handler))
                        .default_service(web::to(|| method_not_allowed(stringify!($method)))),
                );
            )*
        }
    };
}

api_routes! {
    ANY "/control/get" => keys::get_key,
    ANY "/control/reset" => keys::reset_key,
    ANY "/control/delete" => keys::delete_room,
    ANY "/stat/livestat" => stats::livestat,
    GET "/api/streams" => stats::streams,
    GET "/api/clients" => clients::list,
    DELETE "/api/clients/{id}" => clients::kick,
    GET "/healthz" => health::healthz,
    GET "/api/openapi.json" => openapi::document,
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    envelope::reply(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", req.path()),
    )
}

async fn method_not_allowed(allowed: &'static str) -> HttpResponse {
    let mut reply = envelope::reply(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allowed}"),
    );
    if let Ok(value) = format!("{allowed}, OPTIONS").parse() {
        reply
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    reply
}
