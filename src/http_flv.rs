//! The HTTP-FLV surface (`httpflv_addr`, livego's :7001): `/<app>/<room>.flv` and `/streams`.

use std::net::SocketAddr;
use std::sync::Arc;

use actix::Addr;
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Serialize;
use switchboard_actors::client::StreamKey;
use switchboard_actors::flv_viewer::FlvViewer;
use switchboard_actors::registry::{ListStreams, Registry};
use switchboard_actors::settings::StreamSettings;
use switchboard_actors::stream_channel::PlayRejected;

use crate::context::ServerContext;
use crate::envelope;

pub struct FlvState {
    pub registry: Addr<Registry>,
    pub settings: Arc<StreamSettings>,
}

/// Bind and start the HTTP-FLV server; returns it with the address it listens on.
pub fn start(ctx: &ServerContext, addr: SocketAddr) -> std::io::Result<(Server, SocketAddr)> {
    let state = web::Data::new(FlvState {
        registry: ctx.registry.clone(),
        settings: ctx.settings.clone(),
    });
    let write_timeout = ctx.settings.write_timeout;
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
        .on_connect(move |conn, _ext| tune_viewer_socket(conn, write_timeout));
    start_http_server!(server, ctx.workers, addr)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/streams", web::get().to(streams))
        .route("/{app}/{file}", web::get().to(play));
}

/// Low latency, and a bound on how long a viewer that reads nothing can hold its connection:
/// actix-web never times out a response body that the client has stopped reading.
pub fn tune_viewer_socket(conn: &dyn std::any::Any, write_timeout: std::time::Duration) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        let _ = tcp.set_nodelay(true);
        let _ = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(write_timeout));
    }
}

async fn play(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<FlvState>,
) -> HttpResponse {
    let (app, file) = path.into_inner();
    let Some(room) = file.strip_suffix(".flv").filter(|r| !r.is_empty()) else {
        return envelope::reply(
            StatusCode::NOT_FOUND,
            "not found: HTTP-FLV URLs look like /<app>/<room>.flv",
        );
    };
    if !state.settings.live_app(&app).is_some_and(|rules| rules.flv) {
        return envelope::reply(
            StatusCode::NOT_FOUND,
            format!("application {app:?} does not serve HTTP-FLV"),
        );
    }
    let key = StreamKey::new(app, room);
    let url = format!(
        "http://{}{}",
        req.connection_info().host(),
        req.uri().path()
    );
    match FlvViewer::open(&state.registry, key.clone(), req.peer_addr(), url).await {
        Ok(body) => HttpResponse::Ok()
            .content_type("video/x-flv")
            .insert_header(("Access-Control-Allow-Origin", "*"))
            .insert_header(("Cache-Control", "no-cache, no-store"))
            .streaming(body),
        Err(PlayRejected::NotPublishing) => envelope::reply(
            StatusCode::NOT_FOUND,
            format!("stream {key} is not being published"),
        ),
        Err(PlayRejected::ChannelGone) => {
            envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
        }
    }
}

#[derive(Serialize)]
struct StreamEntry {
    key: String,
    id: String,
}

#[derive(Serialize)]
struct StreamsReply {
    publishers: Vec<StreamEntry>,
    players: Vec<StreamEntry>,
}

/// livego's `/streams`: every publisher and every viewer, `[]` rather than `null` when empty.
async fn streams(state: web::Data<FlvState>) -> HttpResponse {
    let Ok(streams) = state.registry.send(ListStreams).await else {
        return envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down");
    };
    let mut reply = StreamsReply {
        publishers: Vec::new(),
        players: Vec::new(),
    };
    for stream in streams {
        let key = stream.key.to_string();
        if let Some(publisher) = stream.publisher {
            reply.publishers.push(StreamEntry {
                key: key.clone(),
                id: publisher.info.id.to_string(),
            });
        }
        // The server's own subscribers (HLS segmenter, recorder) are not players.
        for viewer in stream
            .viewers
            .into_iter()
            .filter(|v| v.info.kind.is_player())
        {
            reply.players.push(StreamEntry {
                key: key.clone(),
                id: viewer.info.id.to_string(),
            });
        }
    }
    HttpResponse::Ok()
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .json(reply)
}
