//! HLS output end to end: ffmpeg publishes; ffprobe, ffmpeg's HLS demuxer and our own readers
//! (m3u8-rs, mpeg2ts) check the playlists and segments.

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/hls.rs"]
mod hls;

use std::process::Command;
use std::time::Duration;

use common::*;
use hls::*;

fn probe(url: &str) -> ProbeSummary {
    probe_summary(&ffprobe_json(url).unwrap_or_else(|e| panic!("{e}")))
}

/// The newest sequence number a media playlist lists.
fn newest(m: &m3u8_rs::MediaPlaylist) -> u64 {
    m.media_sequence + m.segments.len() as u64 - 1
}

fn stop(publisher: &mut Proc) {
    // SIGINT: ffmpeg closes the stream properly (an unpublish, not a dropped connection).
    publisher.signal("INT");
    if publisher.wait_timeout(Duration::from_secs(10)).is_none() {
        publisher.kill();
    }
}

#[test]
fn a_published_stream_plays_over_hls_and_every_segment_decodes_alone() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--hls_fragment=1"]);
    let key = srv.key("hls");
    let _publisher = ffmpeg_publisher(&test_media(), &srv.publish_url(&key));
    let url = playlist_url(&srv, "live", "hls");

    let (master, media_url) = open_session(&url, Duration::from_secs(20));
    let variant = &master.variants[0];
    assert!(
        variant
            .codecs
            .as_deref()
            .is_some_and(|c| c.starts_with("avc1.") && c.ends_with(",mp4a.40.2")),
        "{variant:?}"
    );
    assert_eq!(
        variant.resolution.map(|r| (r.width, r.height)),
        Some((640, 360))
    );
    assert!(variant.bandwidth > 100_000, "{variant:?}");

    let m = wait_media(&media_url, Duration::from_secs(15), "4 segments", |m| {
        m.segments.len() >= 4
    });
    assert_eq!(m.version, Some(3));
    assert!(m.media_sequence >= 1);
    let longest = m.segments.iter().map(|s| s.duration).fold(0f32, f32::max);
    assert_eq!(m.target_duration, longest.ceil() as u64, "{m:#?}");
    for s in &m.segments {
        // 1 s GOP, 1 s fragments.
        assert!((s.duration - 1.0).abs() <= 0.1, "EXTINF {}", s.duration);
        assert!(s.program_date_time.is_some());
        assert!(!s.discontinuity);
    }
    for pair in m.segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let step = (b.program_date_time.unwrap() - a.program_date_time.unwrap()).num_milliseconds();
        assert!(
            (step - (a.duration * 1000.0) as i64).abs() <= 50,
            "program date times step {step} ms over a {} s segment",
            a.duration
        );
    }

    let mut all = Vec::new();
    for (i, s) in m.segments.iter().enumerate() {
        let data = get_segment(&resolve(&media_url, &s.uri));
        let summary = check_ts(&data);
        assert!(summary.starts_with_tables, "segment {i}: {summary:?}");
        assert_eq!(summary.video_frames, 30, "segment {i}: {summary:?}");
        assert!(summary.audio_frames >= 40, "segment {i}: {summary:?}");
        let path = srv.dir().join(format!("segment-{i}.ts"));
        std::fs::write(&path, &data).unwrap();
        let alone = probe(path.to_str().unwrap());
        assert_eq!(alone.video_codec.as_deref(), Some("h264"), "segment {i}");
        assert_eq!(alone.audio_codec.as_deref(), Some("aac"), "segment {i}");
        all.extend(data);
    }
    // Continuity counters and PCR carry on from one segment to the next.
    check_ts(&all);

    let seen = probe(&url);
    assert_eq!(seen.video_codec.as_deref(), Some("h264"), "{seen:?}");
    assert_eq!(seen.audio_codec.as_deref(), Some("aac"), "{seen:?}");
    assert_eq!((seen.width, seen.height), (Some(640), Some(360)));

    let decode = decode_frames(&url, 6.0);
    assert!(
        decode.ok() && decode.error_lines().is_empty(),
        "{}",
        decode.summary()
    );
    assert!(decode.frames >= 150, "{}", decode.summary());
}

#[test]
fn the_window_slides_the_end_is_marked_and_a_new_publish_plays_at_once() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--hls_fragment=1", "--hls_window=3"]);
    let key = srv.key("win");
    let media = test_media();
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    let url = playlist_url(&srv, "live", "win");
    let (_, media_url) = open_session(&url, Duration::from_secs(20));

    let first = get_media(&media_url);
    let slid = wait_media(&media_url, Duration::from_secs(15), "window slid", |m| {
        m.media_sequence >= first.media_sequence + 2
    });
    assert_eq!(slid.segments.len(), 3);
    let gone = http_get(&resolve(&media_url, &first.segments[0].uri)).unwrap();
    assert_eq!(
        gone.status,
        404,
        "a segment out of the window: {}",
        gone.text()
    );
    assert_eq!(gone.json()["status"], 404);

    stop(&mut publisher);
    let ended = wait_media(&media_url, Duration::from_secs(8), "ENDLIST", |m| {
        m.end_list
    });
    assert!(ended.media_sequence >= slid.media_sequence);
    let last = newest(&ended);

    // livego keeps serving the dead source here; the new publish must play right away.
    let mut again = ffmpeg_publisher(&media, &srv.publish_url(&key));
    let resumed = wait_media(&media_url, Duration::from_secs(15), "new segments", |m| {
        !m.end_list && newest(m) >= last + 2
    });
    assert!(resumed.media_sequence >= ended.media_sequence);
    let first_new = resumed
        .segments
        .iter()
        .enumerate()
        .find(|(i, _)| resumed.media_sequence + *i as u64 == last + 1)
        .map(|(_, s)| s)
        .expect("the first new segment is still listed");
    assert!(
        first_new.discontinuity,
        "the new publish starts with a discontinuity: {resumed:#?}"
    );
    let seen = probe(&url);
    assert_eq!(
        (seen.video_codec.as_deref(), seen.audio_codec.as_deref()),
        (Some("h264"), Some("aac"))
    );
    let decode = decode_frames(&url, 3.0);
    assert!(
        decode.ok() && decode.error_lines().is_empty(),
        "{}",
        decode.summary()
    );

    // Without hls_keep_after_end the ended playlist goes away (after players saw the end).
    stop(&mut again);
    wait_media(&media_url, Duration::from_secs(8), "ENDLIST again", |m| {
        m.end_list
    });
    let removed = poll_until(Duration::from_secs(20), Duration::from_millis(250), || {
        http_get(&url).ok().filter(|r| r.status == 404)
    });
    assert!(removed.is_some(), "the ended playlist was not removed");
}

#[test]
fn an_audio_only_publish_gives_an_aac_playlist_kept_after_the_end() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--hls_fragment=1", "--hls_keep_after_end=true"]);
    let key = srv.key("radio");
    let mut publisher = ffmpeg_publisher(&test_media_audio_only(), &srv.publish_url(&key));
    let url = playlist_url(&srv, "live", "radio");
    let (master, media_url) = open_session(&url, Duration::from_secs(20));
    assert_eq!(master.variants[0].codecs.as_deref(), Some("mp4a.40.2"));
    assert_eq!(master.variants[0].resolution, None);

    let m = wait_media(&media_url, Duration::from_secs(15), "3 segments", |m| {
        m.segments.len() >= 3
    });
    // Cut by time at the last AAC frame within the fragment.
    assert_eq!(m.target_duration, 1);
    for s in &m.segments {
        assert!((0.95..=1.0).contains(&s.duration), "EXTINF {}", s.duration);
        let summary = check_ts(&get_segment(&resolve(&media_url, &s.uri)));
        assert!(summary.starts_with_tables);
        assert_eq!(summary.video_frames, 0);
        assert!(summary.audio_frames >= 40, "{summary:?}");
    }
    let seen = probe(&url);
    assert_eq!(seen.audio_codec.as_deref(), Some("aac"), "{seen:?}");
    assert_eq!(seen.video_codec, None, "{seen:?}");
    let decode = decode_frames(&url, 3.0);
    assert!(
        decode.ok() && decode.error_lines().is_empty(),
        "{}",
        decode.summary()
    );

    stop(&mut publisher);
    wait_media(&media_url, Duration::from_secs(8), "ENDLIST", |m| {
        m.end_list
    });
    // Past the time an unkept playlist is removed.
    std::thread::sleep(Duration::from_millis(11_500));
    let kept = get_media(&media_url);
    assert!(kept.end_list && !kept.segments.is_empty());
}

#[test]
fn a_publisher_taking_over_continues_the_playlist_with_a_discontinuity() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--hls_fragment=1"]);
    let key = srv.key("takeover");
    let media = test_media();
    let _first = ffmpeg_publisher(&media, &srv.publish_url(&key));
    let url = playlist_url(&srv, "live", "takeover");
    let (_, media_url) = open_session(&url, Duration::from_secs(20));
    wait_media(&media_url, Duration::from_secs(15), "2 segments", |m| {
        m.segments.len() >= 2
    });

    let _second = ffmpeg_publisher(&media, &srv.publish_url(&key));
    let m = wait_media(
        &media_url,
        Duration::from_secs(15),
        "2 segments after a discontinuity",
        |m| {
            m.segments
                .iter()
                .position(|s| s.discontinuity)
                .is_some_and(|i| m.segments.len() >= i + 3)
        },
    );
    let mut all = Vec::new();
    for s in &m.segments {
        let data = get_segment(&resolve(&media_url, &s.uri));
        let summary = check_ts(&data);
        assert!(
            summary.starts_with_tables && summary.video_frames > 0,
            "{summary:?}"
        );
        all.extend(data);
    }
    check_ts(&all);
    let mut decode = run_with_timeout(
        "ffmpeg decoding across the takeover",
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-xerror"])
            .args(["-live_start_index", "0", "-i", &media_url])
            .args(["-t", "4", "-f", "null", "-"]),
        Duration::from_secs(30),
    );
    assert!(
        decode.try_status().is_some_and(|s| s.success()) && decode.stderr().trim().is_empty(),
        "{}",
        decode.describe()
    );
}

#[test]
fn viewer_sessions_are_counted_in_livestat_and_can_be_kicked() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--hls_fragment=1"]);
    let key = srv.key("counted");
    let _publisher = ffmpeg_publisher(&test_media(), &srv.publish_url(&key));
    let url = playlist_url(&srv, "live", "counted");
    let (_, media_url) = open_session(&url, Duration::from_secs(20));
    let session = media_url
        .split("session=")
        .nth(1)
        .expect("the variant URI carries the session")
        .to_string();
    let m = wait_media(&media_url, Duration::from_secs(15), "2 segments", |m| {
        m.segments.len() >= 2
    });
    assert!(m.segments.iter().all(|s| s.uri.ends_with(&session)));
    let segment_url = resolve(&media_url, &m.segments[0].uri);
    let bytes = get_segment(&segment_url).len() as u64;

    let stat = api::get(&srv.api_url("/stat/livestat")).data();
    let players = stat["players"].as_array().expect("players");
    let viewer = players
        .iter()
        .find(|p| p["protocol"] == "hls")
        .unwrap_or_else(|| panic!("no HLS player in {stat}"));
    let id = viewer["id"].as_str().unwrap().to_string();
    assert_eq!(id.replace('-', ""), session);
    assert_eq!(viewer["key"], "live/counted");
    let counted = viewer["video_total_bytes"].as_u64().unwrap()
        + viewer["audio_total_bytes"].as_u64().unwrap();
    assert_eq!(counted, bytes, "{viewer}");
    assert!(viewer["video_total_bytes"].as_u64().unwrap() > 0);
    // The server's own segmenter is not a player.
    assert_eq!(players.len(), 1, "{stat}");

    let kicked = api::delete(&srv.api_url(&format!("/api/clients/{id}")));
    assert_eq!(kicked.status, 200, "{}", kicked.text());
    assert_eq!(http_get(&media_url).unwrap().status, 403);
    assert_eq!(http_get(&segment_url).unwrap().status, 403);
    let stat = api::get(&srv.api_url("/stat/livestat")).data();
    assert!(
        stat["players"]
            .as_array()
            .is_none_or(|p| p.iter().all(|p| p["protocol"] != "hls")),
        "{stat}"
    );
    // A new viewer is welcome.
    open_session(&url, Duration::from_secs(5));
}

const TWO_APPS: &str = r#"[[server]]
appname = "live"
live = true
hls = true
flv = true
api = true

[[server]]
appname = "nohls"
live = true
hls = false
flv = true
api = true
"#;

#[test]
fn errors_headers_and_paths_are_as_players_expect() {
    let _slot = heavy_slot();
    let srv = Server::start_with_config(TWO_APPS, &[]);
    let base = format!("http://127.0.0.1:{}", srv.hls_port);
    for path in [
        "/live/nobody.m3u8",
        "/nohls/room.m3u8",
        "/live/room/0000abcd-1.ts",
        "/live/room/1.ts",
        "/",
        "/live/room.flv",
        "/live/../../etc/passwd",
        "/live/%2e%2e/%2e%2e/etc/passwd.m3u8",
        "/live/..%2f..%2fetc%2fpasswd.m3u8",
        "/live/room/..%2f..%2f0000abcd-1.ts",
        "/live/a%00b.m3u8",
    ] {
        let r = api::get(&format!("{base}{path}"));
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        r.data();
    }
    for path in ["/crossdomain.xml", "/live/crossdomain.xml"] {
        let r = api::get(&format!("{base}{path}"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/xml"));
        assert!(r.text().contains(r#"<allow-access-from domain="*" />"#));
    }
    let preflight = api::request(
        "OPTIONS",
        &format!("{base}/live/room.m3u8"),
        &[
            ("Origin", "http://example.test"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range"),
        ],
        None,
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(preflight
        .header("access-control-allow-methods")
        .is_some_and(|m| m.contains("GET")));
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("range")
    );
    let post = api::request("POST", &format!("{base}/live/room.m3u8"), &[], None);
    assert_eq!(post.status, 405);
}
