//! Relays against a foreign RTMP server: nginx with libnginx-mod-rtmp.

mod common;
#[path = "support/nginx.rs"]
mod nginx;
#[path = "support/relays.rs"]
mod relays;

use common::*;
use nginx::NginxRtmp;
use relays::assert_plays_h264_aac;
use std::thread;
use std::time::{Duration, Instant};

const FAST_BACKOFF: &str = "relay_backoff_min_ms = 200\nrelay_backoff_max_ms = 1000\n";

/// Push to nginx-rtmp and play it there; pull it back from nginx into another room and play
/// that over HTTP-FLV.
#[test]
fn push_to_and_pull_from_nginx_rtmp() {
    let _slot = heavy_slot();
    let media = test_media();
    let nginx = NginxRtmp::start(&["live"]);
    let srv = Server::start(&[]);
    let key = srv.key("cam");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("cam", Duration::from_secs(10));

    relays::start(&srv, "push", "live", "cam", &nginx.url("live/cam"));
    relays::wait_relay(
        &srv,
        "push running",
        Duration::from_secs(10),
        relays::is("push", "live", "cam", "running"),
    );
    assert!(
        nginx.wait_published("live", "cam", true, Duration::from_secs(10)),
        "nginx never saw the push; stat: {}\n{}",
        nginx.stat(),
        nginx.error_log()
    );
    assert_plays_h264_aac(&nginx.url("live/cam"));

    relays::start(&srv, "pull", "live", "back", &nginx.url("live/cam"));
    srv.wait_live("back", Duration::from_secs(10));
    assert_plays_h264_aac(&srv.flv_url("back"));
    let decode = decode_frames(&srv.flv_url("back"), 3.0);
    assert!(decode.ok() && decode.frames >= 60, "{}", decode.summary());
    let listed = relays::list(&srv);
    assert_eq!(listed.len(), 2, "{listed:#?}");
    assert!(
        listed.iter().all(|r| r["state"] == "running"),
        "{listed:#?}"
    );

    relays::stop(&srv, "pull", "live", "back");
    assert!(srv.wait_gone("back", Duration::from_secs(5)));

    // An API push outlives its source: it waits while the room is not published and resumes
    // when it is published again.
    publisher.signal("INT");
    assert!(publisher.wait_timeout(Duration::from_secs(10)).is_some());
    relays::wait_relay(
        &srv,
        "push waiting",
        Duration::from_secs(5),
        relays::is("push", "live", "cam", "waiting"),
    );
    assert!(
        nginx.wait_published("live", "cam", false, Duration::from_secs(5)),
        "nginx still has the stream after its source ended"
    );
    let _publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    relays::wait_relay(
        &srv,
        "push running again",
        Duration::from_secs(10),
        relays::is("push", "live", "cam", "running"),
    );
    assert!(nginx.wait_published("live", "cam", true, Duration::from_secs(10)));

    relays::stop(&srv, "push", "live", "cam");
    assert!(
        nginx.wait_published("live", "cam", false, Duration::from_secs(5)),
        "nginx still has the pushed stream after the push stopped"
    );
    srv.wait_live("cam", Duration::from_secs(2));
}

/// Each app's `static_push` list forwards that app's rooms, and only that app's, from publish
/// to unpublish.
#[test]
fn static_push_follows_publish_and_unpublish_per_app() {
    let _slot = heavy_slot();
    let media = test_media();
    let nginx = NginxRtmp::start(&["live", "other"]);
    let config = format!(
        "{FAST_BACKOFF}\
         [[server]]\nappname = \"live\"\nstatic_push = [\"{}\"]\n\n\
         [[server]]\nappname = \"show\"\nstatic_push = [\"{}\"]\n",
        nginx.url("live"),
        nginx.url("other"),
    );
    let srv = Server::start_with_config(&config, &[]);
    assert!(relays::list(&srv).is_empty());

    let mut first = ffmpeg_publisher(&media, &srv.publish_url(&srv.key("r1")));
    assert!(
        nginx.wait_published("live", "r1", true, Duration::from_secs(10)),
        "static push of live/r1 never reached nginx; stat: {}\n--- server log ---\n{}",
        nginx.stat(),
        tail_lines(&srv.log(), 40)
    );
    assert_plays_h264_aac(&nginx.url("live/r1"));
    let listed = relays::wait_relay(
        &srv,
        "static push of live/r1",
        Duration::from_secs(5),
        relays::is("push", "live", "r1", "running"),
    );
    assert_eq!(listed["origin"], "static", "{listed}");
    assert_eq!(listed["target"], nginx.url("live/r1"), "{listed}");

    let second = ffmpeg_publisher(&media, &srv.rtmp_url(&format!("show/{}", srv.key("r2"))));
    assert!(
        nginx.wait_published("other", "r2", true, Duration::from_secs(10)),
        "static push of show/r2 never reached nginx; stat: {}",
        nginx.stat()
    );
    // A stream pulled in from nginx is not static-pushed back to nginx (no relay loop).
    relays::start(&srv, "pull", "live", "mirror", &nginx.url("live/r1"));
    srv.wait_live("mirror", Duration::from_secs(10));
    // Each app used its own list only.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(nginx.published("live"), ["r1"], "{}", nginx.stat());
    assert_eq!(nginx.published("other"), ["r2"], "{}", nginx.stat());
    let listed = relays::list(&srv);
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert!(
        listed
            .iter()
            .all(|r| r["origin"] == "api" || r["name"] != "mirror"),
        "{listed:#?}"
    );
    relays::stop(&srv, "pull", "live", "mirror");
    assert!(srv.wait_gone("mirror", Duration::from_secs(5)));

    // A clean unpublish (SIGINT: ffmpeg sends FCUnpublish + deleteStream) ends that room's
    // push only.
    first.signal("INT");
    assert!(first.wait_timeout(Duration::from_secs(10)).is_some());
    assert!(
        nginx.wait_published("live", "r1", false, Duration::from_secs(5)),
        "the static push outlived its stream; stat: {}",
        nginx.stat()
    );
    let remaining = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        let listed = relays::list(&srv);
        (listed.len() == 1).then_some(listed)
    })
    .unwrap_or_else(|| panic!("relays after unpublish: {:#?}", relays::list(&srv)));
    assert_eq!(remaining[0]["app"], "show");
    assert!(nginx.is_published("other", "r2"));

    // Publishing the room again starts its push again.
    let _again = ffmpeg_publisher(&media, &srv.publish_url(&srv.key("r1")));
    assert!(
        nginx.wait_published("live", "r1", true, Duration::from_secs(10)),
        "static push did not restart on the second publish"
    );
    drop(second);
}

/// Kill nginx in the middle of a push and start it again: the push reconnects and the stream
/// plays there again, while a local HTTP-FLV viewer never notices. A pull from that nginx
/// reconnects too, and its local viewer's timestamps never go backwards.
#[test]
fn push_reconnects_after_nginx_restart_and_local_viewers_never_stall() {
    let _slot = heavy_slot();
    let media = test_media();
    let mut nginx = NginxRtmp::start(&["live"]);
    let srv = Server::start_with_config(&format!("{FAST_BACKOFF}{DEFAULT_CONFIG}"), &[]);
    let _publisher = ffmpeg_publisher(&media, &srv.publish_url(&srv.key("cam")));
    srv.wait_live("cam", Duration::from_secs(10));
    let viewer = relays::TimedViewer::open(&srv.flv_url("cam"));

    relays::start(&srv, "push", "live", "cam", &nginx.url("live/cam"));
    assert!(nginx.wait_published("live", "cam", true, Duration::from_secs(10)));
    relays::start(&srv, "pull", "live", "back", &nginx.url("live/cam"));
    srv.wait_live("back", Duration::from_secs(10));
    let pulled_viewer = relays::TimedViewer::open(&srv.flv_url("back"));
    thread::sleep(Duration::from_secs(1));

    let killed_at = Instant::now();
    nginx.kill();
    let failed = relays::wait_relay(
        &srv,
        "noticing nginx is gone",
        Duration::from_secs(10),
        |r| r["kind"] == "push" && r["state"] != "running" && r["last_error"].is_string(),
    );
    assert!(failed["last_error"].is_string(), "{failed}");
    let pulled_before = pulled_viewer.video_tags();
    thread::sleep(Duration::from_secs(2));
    // While nginx is down the relay keeps trying (and failing).
    let retrying = relays::list(&srv);
    assert!(
        retrying
            .iter()
            .all(|r| r["reconnects"].as_u64().unwrap_or(0) >= 2),
        "{retrying:#?}"
    );

    nginx.restart();
    relays::wait_relay(
        &srv,
        "push running again",
        Duration::from_secs(10),
        relays::is("push", "live", "cam", "running"),
    );
    assert!(
        nginx.wait_published("live", "cam", true, Duration::from_secs(10)),
        "nginx never got the stream back; stat: {}",
        nginx.stat()
    );
    assert_plays_h264_aac(&nginx.url("live/cam"));
    let outage = killed_at.elapsed();

    let tags = viewer.finish();
    let (longest, monotonic) = relays::video_gaps(&tags);
    let videos = tags.iter().filter(|(_, t)| t.is_video()).count();
    assert!(
        longest < Duration::from_millis(1500),
        "the local viewer stalled for {longest:?} during the {outage:?} outage"
    );
    assert!(monotonic, "local video timestamps went backwards");
    assert!(
        videos as f64 >= outage.as_secs_f64() * 20.0,
        "only {videos} video tags in {outage:?}"
    );

    // The pull came back as a new publisher of the same local stream: its viewer stayed
    // connected, got frames again and never saw time go backwards.
    let resumed = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (pulled_viewer.video_tags() >= pulled_before + 30).then_some(())
    });
    assert!(
        resumed.is_some(),
        "the pulled stream's viewer got no frames after nginx came back: {:#?}",
        relays::list(&srv)
    );
    let (_, monotonic) = relays::video_gaps(&pulled_viewer.finish());
    assert!(
        monotonic,
        "pulled video timestamps went backwards across the reconnect"
    );
    relays::stop(&srv, "pull", "live", "back");
    relays::stop(&srv, "push", "live", "cam");
}
