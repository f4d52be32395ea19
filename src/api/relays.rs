//! `/control/pull`, `/control/push` (livego's relay control) and `GET /api/relays`.
//!
//! `oper=start|stop&app=<app>&name=<room>&url=rtmp://…`, in the query string or as a form body.
//! Unlike livego, the HTTP status says what happened: 200 started or stopped, 400 bad
//! parameters or URL, 403 a target `relay_allow` does not cover, 404 stopping a relay that does
//! not exist, 409 starting one that already runs.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use switchboard_actors::client::StreamKey;
use switchboard_actors::relay_manager::{ListRelays, RelayError, StartRelay, StopRelay};
use switchboard_actors::relay_session::RelayDirection;

use super::params::Params;
use super::ApiState;
use crate::envelope;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/control/pull", web::route().to(pull))
        .route("/control/push", web::route().to(push))
        .service(
            web::resource("/api/relays")
                .route(web::get().to(list))
                .default_service(web::to(|| super::method_not_allowed("GET"))),
        );
}

async fn pull(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> HttpResponse {
    control(RelayDirection::Pull, &req, payload, &state).await
}

async fn push(req: HttpRequest, payload: web::Payload, state: web::Data<ApiState>) -> HttpResponse {
    control(RelayDirection::Push, &req, payload, &state).await
}

enum Oper {
    Start { url: String },
    Stop,
}

fn usage(direction: RelayDirection) -> String {
    format!(
        "usage: /control/{direction}?oper=start|stop&app=<app>&name=<room>&url=rtmp://host[:port]/app/stream (url only for start)"
    )
}

fn parse(direction: RelayDirection, params: &Params) -> Result<(Oper, StreamKey), String> {
    let get = |name: &str| params.get(name);
    let oper = match get("oper") {
        Some("start") => {
            let Some(url) = get("url") else {
                return Err(format!("missing url; {}", usage(direction)));
            };
            Oper::Start {
                url: url.to_string(),
            }
        }
        Some("stop") => Oper::Stop,
        Some(other) => {
            return Err(format!(
                "oper must be start or stop, got {other:?}; {}",
                usage(direction)
            ))
        }
        None => return Err(format!("missing oper; {}", usage(direction))),
    };
    let (Some(app), Some(name)) = (get("app"), get("name")) else {
        return Err(format!("missing app or name; {}", usage(direction)));
    };
    if app.contains('/') || name.contains('/') {
        return Err("app and name must not contain '/'".to_string());
    }
    Ok((oper, StreamKey::new(app, name)))
}

fn error_reply(e: RelayError) -> HttpResponse {
    let status = match e {
        RelayError::BadUrl(_) | RelayError::UnknownApp(_) => StatusCode::BAD_REQUEST,
        RelayError::NotAllowed(_) => StatusCode::FORBIDDEN,
        RelayError::NotFound { .. } => StatusCode::NOT_FOUND,
        RelayError::AlreadyRunning { .. } => StatusCode::CONFLICT,
    };
    envelope::reply(status, e.to_string())
}

async fn control(
    direction: RelayDirection,
    req: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
) -> HttpResponse {
    let params = match Params::read(req, payload).await {
        Ok(params) => params,
        Err(e) => return e.reply(),
    };
    let (oper, key) = match parse(direction, &params) {
        Ok(parsed) => parsed,
        Err(message) => return envelope::reply(StatusCode::BAD_REQUEST, message),
    };
    let reply = match oper {
        Oper::Start { url } => {
            state
                .relays
                .send(StartRelay {
                    direction,
                    key,
                    url,
                })
                .await
        }
        Oper::Stop => state.relays.send(StopRelay { direction, key }).await,
    };
    match reply {
        Ok(Ok(status)) => envelope::ok(status),
        Ok(Err(e)) => error_reply(e),
        Err(_) => envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down"),
    }
}

async fn list(state: web::Data<ApiState>) -> HttpResponse {
    match state.relays.send(ListRelays).await {
        Ok(relays) => envelope::ok(relays),
        Err(_) => envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down"),
    }
}
