//! Statistics: livego's `/stat/livestat` and `GET /api/streams`.
//!
//! Both read one snapshot: the registry's streams (publisher and every subscriber with its
//! traffic counters) plus the HLS hub's viewer sessions, which are not channel subscribers.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use switchboard_actors::client::{ClientSnapshot, StreamKey};
use switchboard_actors::hls_hub::{HlsSessionInfo, ListHlsSessions};
use switchboard_actors::registry::ListStreams;
use switchboard_actors::stream_channel::StreamInfo;

use super::params::Params;
use super::ApiState;
use crate::envelope;

/// A channel stuck behind a huge backlog must not hold an API request forever.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);
/// livego's `stream_id`: the RTMP message stream every accepted publish and play uses.
const RTMP_STREAM_ID: u32 = 1;

/// One publisher or player. livego's fields first, in livego's order, then ours.
#[derive(Serialize, Debug, Clone)]
pub struct ClientEntry {
    /// `app/room`.
    pub key: String,
    /// How the client reached the stream; never contains a publish key.
    pub url: String,
    pub stream_id: u32,
    pub video_total_bytes: u64,
    /// kbit/s.
    pub video_speed: u64,
    pub audio_total_bytes: u64,
    /// kbit/s.
    pub audio_speed: u64,
    /// The id `DELETE /api/clients/{id}` takes.
    pub id: String,
    /// `publisher` or `player`.
    pub role: &'static str,
    pub protocol: &'static str,
    pub remote_addr: Option<String>,
    /// RFC 3339, UTC.
    pub connected_at: String,
    pub video_codec: Option<&'static str>,
    pub audio_codec: Option<&'static str>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: f64,
    pub dropped_frames: u64,
}

/// Everything live right now.
pub struct Snapshot {
    pub streams: Vec<StreamInfo>,
    pub hls_sessions: Vec<HlsSessionInfo>,
}

impl Snapshot {
    pub async fn take(state: &ApiState) -> Result<Snapshot, HttpResponse> {
        let streams = state.registry.send(ListStreams);
        let hls = state.hls.send(ListHlsSessions);
        let joined =
            tokio::time::timeout(SNAPSHOT_TIMEOUT, futures_util::future::join(streams, hls));
        match joined.await {
            Ok((Ok(streams), Ok(hls_sessions))) => Ok(Snapshot {
                streams,
                hls_sessions,
            }),
            Ok(_) => Err(envelope::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "server is shutting down",
            )),
            Err(_) => Err(envelope::reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "statistics not gathered within {} s",
                    SNAPSHOT_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    fn stream(&self, key: &StreamKey) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| &s.key == key)
    }

    /// Every publisher, by stream.
    pub fn publishers(&self) -> Vec<ClientEntry> {
        self.streams
            .iter()
            .filter_map(|stream| {
                let publisher = stream.publisher.as_ref()?;
                Some(entry(&stream.key, Some(stream), "publisher", publisher))
            })
            .collect()
    }

    /// Every viewer of every kind (RTMP, HTTP-FLV, HLS sessions, relays), but not the server's
    /// own subscribers (HLS segmenter, recorder).
    pub fn players(&self) -> Vec<ClientEntry> {
        let mut players: Vec<ClientEntry> = self
            .streams
            .iter()
            .flat_map(|stream| {
                let mut viewers: Vec<&ClientSnapshot> = stream
                    .viewers
                    .iter()
                    .filter(|v| v.info.kind.is_player())
                    .collect();
                viewers.sort_by_key(|v| (v.info.connected_at, v.info.id));
                viewers
                    .into_iter()
                    .map(|v| entry(&stream.key, Some(stream), "player", v))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut hls: Vec<&HlsSessionInfo> = self.hls_sessions.iter().collect();
        hls.sort_by(|a, b| {
            (&a.key, a.snapshot.info.connected_at).cmp(&(&b.key, b.snapshot.info.connected_at))
        });
        players.extend(
            hls.into_iter()
                .map(|s| entry(&s.key, self.stream(&s.key), "player", &s.snapshot)),
        );
        players
    }
}

fn entry(
    key: &StreamKey,
    stream: Option<&StreamInfo>,
    role: &'static str,
    client: &ClientSnapshot,
) -> ClientEntry {
    let traffic = &client.traffic;
    ClientEntry {
        key: key.to_string(),
        url: client.info.url.clone(),
        stream_id: RTMP_STREAM_ID,
        video_total_bytes: traffic.video_total_bytes,
        video_speed: traffic.video_speed,
        audio_total_bytes: traffic.audio_total_bytes,
        audio_speed: traffic.audio_speed,
        id: client.info.id.to_string(),
        role,
        protocol: client.info.kind.protocol(),
        remote_addr: client.info.remote_addr.as_ref().map(SocketAddr::to_string),
        connected_at: rfc3339(client.info.connected_at),
        video_codec: stream.and_then(|s| s.video_codec),
        audio_codec: stream.and_then(|s| s.audio_codec),
        width: stream.and_then(|s| s.width),
        height: stream.and_then(|s| s.height),
        fps: stream.map_or(0.0, |s| s.fps),
        dropped_frames: traffic.dropped_frames,
    }
}

#[derive(Serialize)]
struct LiveStat {
    publishers: Vec<ClientEntry>,
    players: Vec<ClientEntry>,
}

/// `/stat/livestat[?room=<app>/<room>]`: livego's shape, every kind of viewer included.
pub async fn livestat(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> HttpResponse {
    let params = match Params::read(&req, payload).await {
        Ok(params) => params,
        Err(e) => return e.reply(),
    };
    let snapshot = match Snapshot::take(&state).await {
        Ok(snapshot) => snapshot,
        Err(reply) => return reply,
    };
    let mut stat = LiveStat {
        publishers: snapshot.publishers(),
        players: snapshot.players(),
    };
    if let Some(room) = params.get("room") {
        stat.publishers.retain(|c| c.key == room);
        stat.players.retain(|c| c.key == room);
        if stat.publishers.is_empty() && stat.players.is_empty() {
            return envelope::reply(StatusCode::NOT_FOUND, "room not found or inactive");
        }
    }
    envelope::ok(stat)
}

#[derive(Serialize)]
struct StreamEntry {
    key: String,
    app: String,
    room: String,
    /// `null` while the stream waits for its publisher to come back.
    publisher: Option<ClientEntry>,
    players: Vec<ClientEntry>,
    video_codec: Option<&'static str>,
    audio_codec: Option<&'static str>,
    width: Option<u32>,
    height: Option<u32>,
    fps: f64,
    gop_cache_frames: usize,
}

/// `GET /api/streams`: every live stream with its publisher and players.
pub async fn streams(state: web::Data<ApiState>) -> HttpResponse {
    let snapshot = match Snapshot::take(&state).await {
        Ok(snapshot) => snapshot,
        Err(reply) => return reply,
    };
    let publishers = snapshot.publishers();
    let players = snapshot.players();
    let streams: Vec<StreamEntry> = snapshot
        .streams
        .iter()
        .map(|stream| {
            let key = stream.key.to_string();
            StreamEntry {
                publisher: publishers.iter().find(|p| p.key == key).cloned(),
                players: players.iter().filter(|p| p.key == key).cloned().collect(),
                app: stream.key.app.clone(),
                room: stream.key.room.clone(),
                video_codec: stream.video_codec,
                audio_codec: stream.audio_codec,
                width: stream.width,
                height: stream.height,
                fps: stream.fps,
                gop_cache_frames: stream.gop_cache_frames,
                key,
            }
        })
        .collect();
    envelope::ok(streams)
}

/// `2026-11-25T16:03:09Z`. Hand-rolled: one timestamp format does not justify a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let at = |secs: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
    }
}
