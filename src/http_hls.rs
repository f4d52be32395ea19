//! The HLS surface (`hls_addr`, livego's :7002): `/<app>/<room>.m3u8`, the segments it lists
//! (`/<app>/<room>/<token>-<sequence>.ts`) and `crossdomain.xml`.
//!
//! Everything is served from memory by the HLS hub; paths are only ever parsed into stream
//! keys and numbers, never joined onto a filesystem path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use actix_web::dev::Server;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use switchboard_actors::client::StreamKey;
use switchboard_actors::hls_hub::{
    parse_segment_name, GetPlaylist, GetSegment, HlsHub, PlaylistReply, SegmentReply, SESSION_PARAM,
};
use switchboard_actors::settings::StreamSettings;

use crate::context::ServerContext;
use crate::envelope;

const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
const SEGMENT_CONTENT_TYPE: &str = "video/mp2t";
/// A segment name is never reused for other content, so caches may keep it; an hour is long
/// past any live window.
const SEGMENT_CACHE_CONTROL: &str = "public, max-age=3600, immutable";
/// A playlist request for a stream that just started waits this long for its first segment
/// (below hls.js's 10 s manifest timeout), polling the hub every `FIRST_SEGMENT_POLL`.
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(8);
const FIRST_SEGMENT_POLL: Duration = Duration::from_millis(50);

/// livego's Flash cross-domain policy: everything allowed.
const CROSSDOMAIN_XML: &str = r#"<?xml version="1.0" ?>
<cross-domain-policy>
	<allow-access-from domain="*" />
	<allow-http-request-headers-from domain="*" headers="*"/>
</cross-domain-policy>
"#;

pub struct HlsState {
    pub hub: Addr<HlsHub>,
    pub settings: Arc<StreamSettings>,
}

/// Bind and start the HLS server; returns it with the address it listens on.
pub fn start(ctx: &ServerContext, addr: SocketAddr) -> std::io::Result<(Server, SocketAddr)> {
    let state = web::Data::new(HlsState {
        hub: ctx.hls.clone(),
        settings: ctx.settings.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Browsers play HLS from pages of any origin (hls.js fetches with CORS), errors
            // included, or a player cannot tell a 404 from a network failure.
            .wrap(DefaultHeaders::new().add(("Access-Control-Allow-Origin", "*")))
            .default_service(web::to(serve))
    });
    start_http_server!(server, ctx.workers, addr)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    CrossDomain,
    Playlist(StreamKey),
    Segment {
        key: StreamKey,
        token: u32,
        sequence: u64,
    },
}

/// Decodes one percent-encoded path segment; `None` for bad escapes, invalid UTF-8, control
/// characters, encoded slashes and the dot segments.
fn decode_segment(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    // An encoded `/` would let one segment smuggle in several (`..%2f..`).
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.chars().any(char::is_control) {
        return None;
    }
    Some(s)
}

/// `/<app>/<room>.m3u8`, `/<app>/<room>/<token>-<sequence>.ts`, `[/...]/crossdomain.xml`.
/// A room may itself contain `/`.
fn route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let (&last, dirs) = parts.split_last()?;
    if last == "crossdomain.xml" {
        return Some(Route::CrossDomain);
    }
    let decoded: Vec<String> = dirs
        .iter()
        .map(|p| decode_segment(p))
        .collect::<Option<_>>()?;
    if let Some(room_leaf) = last.strip_suffix(".m3u8") {
        let (app, rooms) = decoded.split_first()?;
        let mut room: Vec<String> = rooms.to_vec();
        room.push(decode_segment(room_leaf)?);
        return Some(Route::Playlist(StreamKey::new(app.clone(), room.join("/"))));
    }
    if let Some(stem) = last.strip_suffix(".ts") {
        let (token, sequence) = parse_segment_name(stem)?;
        let (app, room) = decoded.split_first()?;
        if room.is_empty() {
            return None;
        }
        return Some(Route::Segment {
            key: StreamKey::new(app.clone(), room.join("/")),
            token,
            sequence,
        });
    }
    None
}

fn session_param(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == SESSION_PARAM)
        .map(|(_, value)| value.to_string())
}

fn request_url(req: &HttpRequest) -> String {
    format!(
        "http://{}{}",
        req.connection_info().host(),
        req.uri().path()
    )
}

async fn serve(req: HttpRequest, state: web::Data<HlsState>) -> HttpResponse {
    match *req.method() {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => return preflight(&req),
        _ => {
            let mut reply =
                envelope::reply(StatusCode::METHOD_NOT_ALLOWED, "HLS is served with GET");
            if let Ok(allow) = "GET, HEAD, OPTIONS".parse() {
                reply
                    .headers_mut()
                    .insert(actix_web::http::header::ALLOW, allow);
            }
            return reply;
        }
    }
    let Some(route) = route(req.path()) else {
        return envelope::reply(
            StatusCode::NOT_FOUND,
            "not found: HLS URLs look like /<app>/<room>.m3u8",
        );
    };
    let key = match &route {
        Route::CrossDomain => {
            return HttpResponse::Ok()
                .content_type("application/xml")
                .body(CROSSDOMAIN_XML);
        }
        Route::Playlist(key) | Route::Segment { key, .. } => key.clone(),
    };
    if !state
        .settings
        .live_app(&key.app)
        .is_some_and(|rules| rules.hls)
    {
        return envelope::reply(
            StatusCode::NOT_FOUND,
            format!("application {:?} does not serve HLS", key.app),
        );
    }
    let session = session_param(req.query_string());
    match route {
        Route::Segment {
            key,
            token,
            sequence,
        } => segment(&req, &state, key, token, sequence, session).await,
        _ => playlist(&req, &state, key, session).await,
    }
}

async fn playlist(
    req: &HttpRequest,
    state: &HlsState,
    key: StreamKey,
    session: Option<String>,
) -> HttpResponse {
    let deadline = Instant::now() + FIRST_SEGMENT_WAIT;
    loop {
        let reply = state
            .hub
            .send(GetPlaylist {
                key: key.clone(),
                session: session.clone(),
                remote_addr: req.peer_addr(),
                url: request_url(req),
            })
            .await;
        return match reply {
            Ok(PlaylistReply::Playlist(body)) => HttpResponse::Ok()
                .content_type(PLAYLIST_CONTENT_TYPE)
                .insert_header(("Cache-Control", "no-cache"))
                .body(body),
            Ok(PlaylistReply::NotReady) if Instant::now() < deadline => {
                actix_rt::time::sleep(FIRST_SEGMENT_POLL).await;
                continue;
            }
            Ok(PlaylistReply::NotReady) => {
                let mut reply = envelope::reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("stream {key} has no HLS segment yet"),
                );
                if let Ok(value) = "1".parse() {
                    reply
                        .headers_mut()
                        .insert(actix_web::http::header::RETRY_AFTER, value);
                }
                reply
            }
            Ok(PlaylistReply::NotFound) => envelope::reply(
                StatusCode::NOT_FOUND,
                format!("stream {key} is not being published"),
            ),
            Ok(PlaylistReply::SessionKicked) => kicked(),
            Err(_) => shutting_down(),
        };
    }
}

async fn segment(
    req: &HttpRequest,
    state: &HlsState,
    key: StreamKey,
    token: u32,
    sequence: u64,
    session: Option<String>,
) -> HttpResponse {
    let reply = state
        .hub
        .send(GetSegment {
            key: key.clone(),
            token,
            sequence,
            session,
            remote_addr: req.peer_addr(),
            url: request_url(req),
        })
        .await;
    match reply {
        Ok(SegmentReply::Segment(data)) => HttpResponse::Ok()
            .content_type(SEGMENT_CONTENT_TYPE)
            .insert_header(("Cache-Control", SEGMENT_CACHE_CONTROL))
            .body(data),
        Ok(SegmentReply::NotFound) => envelope::reply(
            StatusCode::NOT_FOUND,
            format!("segment {sequence} of stream {key} is not in its playlist window"),
        ),
        Ok(SegmentReply::SessionKicked) => kicked(),
        Err(_) => shutting_down(),
    }
}

fn kicked() -> HttpResponse {
    envelope::reply(
        StatusCode::FORBIDDEN,
        "this HLS session was ended by the server",
    )
}

fn shutting_down() -> HttpResponse {
    envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
}

/// CORS preflight: players that add headers (a Range, an auth header) ask first.
fn preflight(req: &HttpRequest) -> HttpResponse {
    let headers = req
        .headers()
        .get("Access-Control-Request-Headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*")
        .to_string();
    HttpResponse::NoContent()
        .insert_header(("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"))
        .insert_header(("Access-Control-Allow-Headers", headers))
        .insert_header(("Access-Control-Max-Age", "86400"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str, room: &str) -> StreamKey {
        StreamKey::new(app, room)
    }

    #[test]
    fn playlist_and_segment_paths_are_parsed() {
        assert_eq!(
            route("/live/room.m3u8"),
            Some(Route::Playlist(key("live", "room")))
        );
        assert_eq!(
            route("/live/a%20b.m3u8"),
            Some(Route::Playlist(key("live", "a b")))
        );
        assert_eq!(
            route("/live/sub/room.m3u8"),
            Some(Route::Playlist(key("live", "sub/room")))
        );
        assert_eq!(
            route("/live/room/0000abcd-17.ts"),
            Some(Route::Segment {
                key: key("live", "room"),
                token: 0xabcd,
                sequence: 17
            })
        );
        assert_eq!(
            route("/live/sub/room/0000abcd-1.ts"),
            Some(Route::Segment {
                key: key("live", "sub/room"),
                token: 0xabcd,
                sequence: 1
            })
        );
        assert_eq!(route("/crossdomain.xml"), Some(Route::CrossDomain));
        assert_eq!(route("/live/crossdomain.xml"), Some(Route::CrossDomain));
    }

    #[test]
    fn bad_paths_are_refused() {
        for path in [
            "",
            "/",
            "/live",
            "/room.m3u8",
            "/live/.m3u8",
            "/live/room.flv",
            "/live/room/17.ts",
            "/live/0000abcd-1.ts",
            "/live/room/0000abcd-x.ts",
            "/live/../room.m3u8",
            "/live/%2e%2e.m3u8",
            "/live/..%2f..%2fetc.m3u8",
            "/live/%zz.m3u8",
            "/live/%ff.m3u8",
            "/live/a%00b.m3u8",
            "/live//room.m3u8",
            "/../../etc/passwd",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }

    #[test]
    fn the_session_parameter_is_found_among_others() {
        assert_eq!(session_param("session=abc"), Some("abc".into()));
        assert_eq!(session_param("x=1&session=abc&y"), Some("abc".into()));
        assert_eq!(session_param("sessions=abc"), None);
        assert_eq!(session_param(""), None);
    }
}
