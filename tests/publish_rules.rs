//! Who may publish: keys, apps, `--rtmp_noauth`, and the second publisher on
//! a live room (`--publish_conflict=takeover|reject`).
//!
//! ffmpeg prints onStatus/_error failures as `Server error: <description>`
//! (libavformat/rtmpproto.c), i.e. the description, not necessarily the
//! code, so exact codes are checked with the harness's raw RTMP client.

mod common;

use common::*;
use std::thread;
use std::time::{Duration, Instant};

fn mentions_rejection(stderr: &str, code: &str) -> bool {
    stderr.contains(code) || stderr.contains("Server error")
}

#[test]
fn unknown_key_is_refused_with_badname() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);

    // ffmpeg: non-zero exit, promptly, with the server's complaint.
    let start = Instant::now();
    let mut p = ffmpeg_publisher(&media, &srv.publish_url("notakey0123456789"));
    let st = p.wait_timeout(Duration::from_secs(10));
    let took = start.elapsed();
    eprintln!(
        "ffmpeg with a bad key exited {st:?} after {took:.2?}; stderr: {}",
        p.stderr().trim()
    );
    assert!(
        st.is_some_and(|s| !s.success()),
        "ffmpeg should fail: {}",
        p.describe()
    );
    assert!(
        took < Duration::from_secs(6),
        "ffmpeg took {took:?} to give up"
    );
    assert!(
        mentions_rejection(&p.stderr(), "BadName"),
        "{}",
        p.describe()
    );

    // Raw client: the exact onStatus, then the server closes.
    let (mut c, reply) =
        RtmpClient::start_publish(srv.rtmp_port, "live", "notakey0123456789").expect("raw publish");
    assert_eq!(
        reply.code().as_deref(),
        Some("NetStream.Publish.BadName"),
        "reply: {reply:?}"
    );
    assert_eq!(reply.level().as_deref(), Some("error"), "reply: {reply:?}");
    assert!(
        c.wait_closed(Duration::from_secs(5)).is_some(),
        "server kept the refused publisher's connection open"
    );
}

#[test]
fn unconfigured_app_is_rejected() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);

    let start = Instant::now();
    let mut p = ffmpeg_publisher(&media, &srv.rtmp_url("nosuchapp/x"));
    let st = p.wait_timeout(Duration::from_secs(10));
    let took = start.elapsed();
    eprintln!(
        "ffmpeg to an unknown app exited {st:?} after {took:.2?}; stderr: {}",
        p.stderr().trim()
    );
    assert!(st.is_some_and(|s| !s.success()), "{}", p.describe());
    assert!(
        took < Duration::from_secs(6),
        "ffmpeg took {took:?} to give up"
    );
    assert!(
        mentions_rejection(&p.stderr(), "Rejected"),
        "{}",
        p.describe()
    );

    let mut c = RtmpClient::open(srv.rtmp_port).expect("handshake");
    let reply = c.connect_app("nosuchapp").expect("connect reply");
    assert_eq!(reply.name, "_error", "reply: {reply:?}");
    assert_eq!(
        reply.code().as_deref(),
        Some("NetConnection.Connect.Rejected"),
        "reply: {reply:?}"
    );

    // Players of an unknown app are refused too.
    let d = decode_frames(&srv.rtmp_url("nosuchapp/x"), 2.0);
    assert!(
        !d.ok(),
        "playing an unconfigured app should fail: {}",
        d.summary()
    );
    assert!(d.elapsed < Duration::from_secs(8), "{}", d.summary());
}

#[test]
fn rtmp_noauth_accepts_room_name_as_key() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&["--rtmp_noauth"]);
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url("openroom"));
    srv.wait_live("openroom", Duration::from_secs(10));
    let d = decode_frames(&srv.flv_url("openroom"), 2.0);
    assert!(d.ok() && d.frames >= 45, "{}", d.summary());
    assert!(publisher.is_running(), "{}", publisher.describe());
}

/// Default mode (takeover): a second publisher replaces the first while an
/// HTTP-FLV viewer keeps decoding without error.
#[test]
fn second_publisher_takes_over_by_default() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("swap");
    let mut first = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("swap", Duration::from_secs(10));

    let viewer = Decoder::spawn(&srv.flv_url("swap"), Some(8.0), Duration::from_secs(10));
    poll_until(Duration::from_secs(8), Duration::from_millis(50), || {
        (viewer.frames() > 0).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "viewer got no frames before the switch: {}",
            viewer.proc.describe()
        )
    });
    thread::sleep(Duration::from_millis(1000));

    let mut second = ffmpeg_publisher(&media, &srv.publish_url(&key));
    let switched = Instant::now();
    let kicked = first.wait_timeout(Duration::from_secs(6));
    eprintln!(
        "first publisher exited {kicked:?} {:.2?} after the second one started",
        switched.elapsed()
    );
    assert!(
        kicked.is_some(),
        "first publisher was not kicked: {}",
        first.describe()
    );

    let d = viewer.finish(Duration::from_secs(30));
    eprintln!("{}", d.summary());
    assert!(d.ok(), "viewer failed across the takeover: {}", d.summary());
    assert!(
        d.error_lines().is_empty(),
        "viewer reported errors across the takeover: {}",
        d.summary()
    );
    assert!(d.frames >= 120, "{}", d.summary());

    assert!(
        second.is_running(),
        "second publisher died: {}",
        second.describe()
    );
    let fresh = decode_frames(&srv.flv_url("swap"), 2.0);
    assert!(
        fresh.ok() && fresh.frames >= 45,
        "new viewer after takeover: {}",
        fresh.summary()
    );
}

/// `--publish_conflict=reject`: the newcomer gets BadName, the first stays.
#[test]
fn reject_mode_refuses_second_publisher() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&["--publish_conflict=reject"]);
    let key = srv.key("mine");
    let mut first = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("mine", Duration::from_secs(10));

    let start = Instant::now();
    let mut second = ffmpeg_publisher(&media, &srv.publish_url(&key));
    let st = second.wait_timeout(Duration::from_secs(10));
    let took = start.elapsed();
    eprintln!(
        "second publisher exited {st:?} after {took:.2?}; stderr: {}",
        second.stderr().trim()
    );
    assert!(
        st.is_some_and(|s| !s.success()),
        "second publisher should be refused: {}",
        second.describe()
    );
    assert!(took < Duration::from_secs(6), "refusal took {took:?}");
    assert!(
        mentions_rejection(&second.stderr(), "BadName"),
        "{}",
        second.describe()
    );

    let (_c, reply) = RtmpClient::start_publish(srv.rtmp_port, "live", &key).expect("raw publish");
    assert_eq!(
        reply.code().as_deref(),
        Some("NetStream.Publish.BadName"),
        "reply: {reply:?}"
    );

    assert!(
        first.is_running(),
        "first publisher must keep going: {}",
        first.describe()
    );
    let d = decode_frames(&srv.flv_url("mine"), 2.0);
    assert!(d.ok() && d.frames >= 45, "{}", d.summary());
    assert!(
        first.is_running(),
        "first publisher must keep going: {}",
        first.describe()
    );
}
