//! Statistics and client management with real clients: an ffmpeg publisher, an ffmpeg RTMP
//! player and an HTTP-FLV viewer. `/stat/livestat` must list them all with growing byte
//! counts and speeds that match the media's real bitrate (measured with ffprobe); kicking the
//! HTTP-FLV viewer ends its response, kicking the others ends their sessions.

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/viewer.rs"]
mod viewer;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use viewer::FlvWatcher;

/// Average bitrate of one stream of `media` in kbit/s, from its packets.
fn measured_kbps(media: &Path, stream: &str) -> f64 {
    let probe = |args: &[&str]| -> String {
        let out = Command::new("ffprobe")
            .args(["-v", "error"])
            .args(args)
            .arg(media)
            .output()
            .expect("run ffprobe");
        assert!(out.status.success(), "ffprobe {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bytes: u64 = probe(&[
        "-select_streams",
        stream,
        "-show_entries",
        "packet=size",
        "-of",
        "csv=p=0",
    ])
    .lines()
    .filter_map(|l| l.trim().trim_end_matches(',').parse::<u64>().ok())
    .sum();
    let duration: f64 = probe(&["-show_entries", "format=duration", "-of", "csv=p=0"])
        .trim()
        .parse()
        .expect("duration");
    bytes as f64 * 8.0 / duration / 1000.0
}

fn livestat(srv: &Server, query: &str) -> Value {
    let r = api::get(&srv.api_url(&format!("/stat/livestat{query}")));
    assert_eq!(r.status, 200, "{}", r.text());
    r.data()
}

fn entries<'a>(stat: &'a Value, list: &str) -> &'a Vec<Value> {
    stat[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} is not an array: {stat}"))
}

fn player<'a>(stat: &'a Value, protocol: &str) -> Option<&'a Value> {
    entries(stat, "players")
        .iter()
        .find(|p| p["protocol"] == protocol)
}

fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected * tolerance
}

#[test]
fn empty_server_lists_are_empty_arrays() {
    let _slot = heavy_slot();
    let srv = Server::start(&[]);
    let stat = livestat(&srv, "");
    assert_eq!(stat, serde_json::json!({"publishers": [], "players": []}));
    let r = api::get(&srv.api_url("/stat/livestat?room=live/nothing"));
    assert_eq!(
        (r.status, r.message().as_str()),
        (404, "room not found or inactive")
    );
    assert_eq!(
        api::get(&srv.api_url("/api/streams")).data(),
        serde_json::json!([])
    );
    assert_eq!(
        api::get(&srv.api_url("/api/clients")).data(),
        serde_json::json!([])
    );
    let r = api::delete(&srv.api_url("/api/clients/not-an-id"));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = api::delete(&srv.api_url("/api/clients/0d7f3f7e-4a8e-4d0b-9d6c-8a6b1c2d3e4f"));
    assert_eq!((r.status, r.message().as_str()), (404, "client not found"));
}

#[test]
fn livestat_lists_live_clients_with_real_rates_and_kicks_them() {
    let _slot = heavy_slot();
    let media = test_media();
    let video_kbps = measured_kbps(&media, "v:0");
    let audio_kbps = measured_kbps(&media, "a:0");
    eprintln!("test media: video {video_kbps:.0} kbit/s, audio {audio_kbps:.0} kbit/s");

    let srv = Server::start(&[]);
    let room = "stats";
    let key = srv.key(room);
    let published_at = Instant::now();
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live(room, Duration::from_secs(10));
    let flv = FlvWatcher::open(&srv.flv_url(room));
    let mut rtmp_player = Decoder::spawn(&srv.play_url(room), None, Duration::from_secs(10));

    let stat = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let stat = livestat(&srv, "");
        (player(&stat, "rtmp").is_some() && player(&stat, "http-flv").is_some()).then_some(stat)
    })
    .unwrap_or_else(|| panic!("players not listed: {}", livestat(&srv, "")));

    // Shape: livego's fields and ours, with the right values.
    let publishers = entries(&stat, "publishers");
    assert_eq!(publishers.len(), 1, "{stat}");
    let p = &publishers[0];
    assert_eq!(p["key"], "live/stats");
    assert_eq!(p["stream_id"], 1);
    assert_eq!(p["role"], "publisher");
    assert_eq!(p["protocol"], "rtmp");
    let url = p["url"].as_str().expect("url");
    assert!(
        url.starts_with("rtmp://") && url.ends_with("/live/stats"),
        "{url}"
    );
    assert!(
        !stat.to_string().contains(&key),
        "the publish key leaked: {stat}"
    );
    assert!(
        p["remote_addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{p}"
    );
    let connected = p["connected_at"].as_str().expect("connected_at");
    assert!(
        connected.len() == 20 && connected.ends_with('Z'),
        "{connected}"
    );
    assert_eq!(p["video_codec"], "h264");
    assert_eq!(p["audio_codec"], "aac");
    assert_eq!(
        (p["width"].as_u64(), p["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!(p["id"].as_str().is_some_and(|id| id.len() == 36), "{p}");
    for field in [
        "video_total_bytes",
        "video_speed",
        "audio_total_bytes",
        "audio_speed",
        "dropped_frames",
    ] {
        assert!(p[field].is_u64(), "{field}: {p}");
    }
    let players = entries(&stat, "players");
    assert_eq!(players.len(), 2, "exactly the two viewers: {stat}");
    for protocol in ["rtmp", "http-flv"] {
        let v = player(&stat, protocol).expect("listed");
        assert_eq!(v["key"], "live/stats");
        assert_eq!(v["role"], "player");
        assert_eq!(v["stream_id"], 1);
    }
    let only = livestat(&srv, "?room=live/stats");
    assert_eq!(entries(&only, "publishers").len(), 1, "{only}");
    assert_eq!(entries(&only, "players").len(), 2, "{only}");
    let r = api::get(&srv.api_url("/stat/livestat?room=live/other"));
    assert_eq!(r.status, 404);

    // Byte counts grow for everyone.
    let before = livestat(&srv, "");
    thread::sleep(Duration::from_millis(1500));
    let after = livestat(&srv, "");
    for who in ["publisher", "rtmp", "http-flv"] {
        let client = |stat: &Value| -> Value {
            match who {
                "publisher" => stat["publishers"][0].clone(),
                protocol => player(stat, protocol).cloned().unwrap_or_default(),
            }
        };
        for field in ["video_total_bytes", "audio_total_bytes"] {
            let b = client(&before)[field].as_u64().unwrap_or(0);
            let a = client(&after)[field].as_u64().unwrap_or(0);
            assert!(a > b, "{who} {field} did not grow: {b} → {a}");
        }
    }

    // Speeds: two full measuring windows after the start, within 20 % of the media's bitrate.
    let settle = Duration::from_secs(5).saturating_sub(published_at.elapsed());
    thread::sleep(settle);
    let mut samples = Vec::new();
    for _ in 0..2 {
        let stat = livestat(&srv, "");
        let p = &entries(&stat, "publishers")[0];
        samples.push((
            p["video_speed"].as_f64().unwrap_or(0.0),
            p["audio_speed"].as_f64().unwrap_or(0.0),
        ));
        thread::sleep(Duration::from_secs(3));
    }
    let n = samples.len() as f64;
    let video = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let audio = samples.iter().map(|s| s.1).sum::<f64>() / n;
    eprintln!("livestat speeds {samples:?}: video {video:.0}, audio {audio:.0} kbit/s");
    assert!(
        within(video, video_kbps, 0.2),
        "video_speed {video:.0} kbit/s vs media {video_kbps:.0} kbit/s ({samples:?})"
    );
    assert!(
        within(audio, audio_kbps, 0.2),
        "audio_speed {audio:.0} kbit/s vs media {audio_kbps:.0} kbit/s ({samples:?})"
    );
    let stat = livestat(&srv, "");
    let fps = entries(&stat, "publishers")[0]["fps"]
        .as_f64()
        .unwrap_or(0.0);
    assert!((24.0..=36.0).contains(&fps), "fps {fps}");

    // /api/streams and /api/clients agree with livestat.
    let streams = api::get(&srv.api_url("/api/streams")).data();
    let stream = &streams[0];
    assert_eq!(stream["key"], "live/stats");
    assert_eq!(
        (stream["app"].as_str(), stream["room"].as_str()),
        (Some("live"), Some("stats"))
    );
    assert_eq!(stream["publisher"]["role"], "publisher");
    assert_eq!(
        stream["players"].as_array().map(Vec::len),
        Some(2),
        "{stream}"
    );
    let clients = api::get(&srv.api_url("/api/clients")).data();
    assert_eq!(clients.as_array().map(Vec::len), Some(3), "{clients}");

    // Kick the HTTP-FLV viewer: its response ends, the others go on.
    let flv_id = player(&stat, "http-flv").expect("flv")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let kicked_at = Instant::now();
    let r = api::delete(&srv.api_url(&format!("/api/clients/{flv_id}")));
    assert_eq!(
        (r.status, r.message().as_str()),
        (200, "Ok"),
        "{}",
        r.text()
    );
    let (ended_at, how) = flv
        .wait_end(Duration::from_secs(5))
        .expect("the kicked HTTP-FLV response did not end");
    eprintln!(
        "HTTP-FLV response ended {:?} after the kick ({how:?})",
        ended_at - kicked_at
    );
    let r = api::delete(&srv.api_url(&format!("/api/clients/{flv_id}")));
    assert_eq!(r.status, 404, "kicked twice: {}", r.text());
    let stat = livestat(&srv, "");
    assert!(player(&stat, "http-flv").is_none(), "{stat}");
    assert!(player(&stat, "rtmp").is_some(), "{stat}");
    assert!(
        rtmp_player.proc.is_running(),
        "{}",
        rtmp_player.proc.describe()
    );

    // Kick the RTMP player: ffmpeg's play ends.
    let rtmp_id = player(&stat, "rtmp").expect("rtmp")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = api::delete(&srv.api_url(&format!("/api/clients/{rtmp_id}")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        rtmp_player
            .proc
            .wait_timeout(Duration::from_secs(10))
            .is_some(),
        "kicked RTMP player still running: {}",
        rtmp_player.proc.describe()
    );

    // Kick the publisher: ffmpeg is told why and stops; the stream is gone.
    let publisher_id = entries(&stat, "publishers")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = api::delete(&srv.api_url(&format!("/api/clients/{publisher_id}")));
    assert_eq!(r.status, 200, "{}", r.text());
    let status = publisher.wait_timeout(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| !s.success()),
        "kicked publisher: {}",
        publisher.describe()
    );
    let gone = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        let stat = livestat(&srv, "");
        entries(&stat, "publishers").is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "publisher still listed: {}",
        livestat(&srv, "")
    );
}

/// ffmpeg hits a broken pipe before it reads the server's last words; a client that reads
/// shows what a kicked publisher is told.
#[test]
fn a_kicked_rtmp_publisher_is_told_why() {
    let _slot = heavy_slot();
    let srv = Server::start(&[]);
    let key = srv.key("told");
    let (mut client, reply) =
        RtmpClient::start_publish(srv.rtmp_port, "live", &key).expect("RTMP exchange");
    assert_eq!(
        reply.code().as_deref(),
        Some("NetStream.Publish.Start"),
        "{reply:?}"
    );
    let clients = api::get(&srv.api_url("/api/clients")).data();
    let id = clients[0]["id"]
        .as_str()
        .expect("publisher listed")
        .to_string();
    assert_eq!(clients[0]["key"], "live/told", "{clients}");
    let r = api::delete(&srv.api_url(&format!("/api/clients/{id}")));
    assert_eq!(r.status, 200, "{}", r.text());
    let status = client
        .wait_command(&["onStatus"], None)
        .expect("an onStatus before the close");
    assert_eq!(status.level().as_deref(), Some("error"), "{status:?}");
    let description = status
        .values
        .iter()
        .find_map(|v| {
            v.get("description")
                .and_then(Amf::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    assert!(
        description.contains("disconnected by the server operator"),
        "{status:?}"
    );
    assert!(
        client.wait_closed(Duration::from_secs(5)).is_some(),
        "not closed"
    );
    assert_eq!(
        api::get(&srv.api_url("/api/clients")).data(),
        serde_json::json!([])
    );
}
