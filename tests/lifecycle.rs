//! Stream and connection lifecycle: publisher death/stall/clean stop, early
//! players, re-publishing, idle timeouts, and FD hygiene under churn.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

/// Starts an HTTP-FLV viewer (already receiving) and an RTMP viewer (ffmpeg,
/// frames flowing) on `room`. The HTTP-FLV one is drained by a thread that
/// returns when its body ended.
fn two_viewers(
    srv: &Server,
    room: &str,
) -> (thread::JoinHandle<Option<(Instant, StreamEnd)>>, Decoder) {
    let (mut flv, first) =
        http_stream_for(&srv.flv_url(room), Duration::from_millis(800), 64 * 1024)
            .expect("GET FLV");
    assert_eq!(flv.status, 200);
    assert!(
        !first.body.is_empty() && first.end.is_none(),
        "HTTP-FLV viewer got nothing: {first:?}"
    );
    let flv_thread = thread::spawn(move || flv.wait_end(Duration::from_secs(30)));
    // A long rw_timeout so that only the server can end it quickly.
    let rtmp = Decoder::spawn(&srv.play_url(room), None, Duration::from_secs(60));
    poll_until(Duration::from_secs(8), Duration::from_millis(50), || {
        (rtmp.frames() > 0).then_some(())
    })
    .unwrap_or_else(|| panic!("RTMP viewer got no frames: {}", rtmp.proc.describe()));
    (flv_thread, rtmp)
}

/// Asserts both viewers end within `bound` of `t0`; prints the figures.
fn assert_viewers_end(
    what: &str,
    t0: Instant,
    bound: Duration,
    flv: thread::JoinHandle<Option<(Instant, StreamEnd)>>,
    mut rtmp: Decoder,
) {
    let rtmp_status = rtmp.proc.wait_timeout(bound + Duration::from_secs(5));
    let rtmp_took = rtmp.proc.exited_at().map(|t| t - t0);
    let flv_end = flv.join().expect("flv thread");
    let flv_took = flv_end.map(|(t, _)| t - t0);
    eprintln!(
        "{what}: HTTP-FLV viewer ended after {flv_took:.2?} ({:?}); RTMP viewer after {rtmp_took:.2?} ({rtmp_status:?}); bound {bound:?}",
        flv_end.map(|(_, e)| e)
    );
    assert!(
        flv_took.is_some_and(|d| d <= bound),
        "{what}: HTTP-FLV viewer not ended within {bound:?} (took {flv_took:?})"
    );
    assert!(
        rtmp_took.is_some_and(|d| d <= bound),
        "{what}: RTMP viewer not ended within {bound:?} (took {rtmp_took:?}): {}",
        rtmp.proc.describe()
    );
}

#[test]
fn killed_publisher_ends_viewers_within_write_timeout() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&["--write_timeout=3"]);
    let key = srv.key("killed");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("killed", Duration::from_secs(10));
    let (flv, rtmp) = two_viewers(&srv, "killed");

    publisher.kill(); // SIGKILL
    assert_viewers_end(
        "SIGKILL",
        Instant::now(),
        Duration::from_secs(3 + 2),
        flv,
        rtmp,
    );
}

/// A publisher that stops sending without closing the socket (SIGSTOP), i.e.
/// a stalled network peer: only the server's timers can end the viewers.
/// The server notices the silent publisher after read_timeout and then, as
/// for a killed publisher, gives viewers up to write_timeout for a publisher
/// to come back, hence read_timeout + write_timeout + 2 s.
#[test]
fn stalled_publisher_ends_viewers_within_timeouts() {
    let _slot = heavy_slot();
    let media = test_media();
    let (read_timeout, write_timeout) = (2, 3);
    let srv = Server::start(&[
        &format!("--read_timeout={read_timeout}"),
        &format!("--write_timeout={write_timeout}"),
    ]);
    let key = srv.key("stalled");
    let publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("stalled", Duration::from_secs(10));
    let (flv, rtmp) = two_viewers(&srv, "stalled");

    publisher.signal("STOP");
    let t0 = Instant::now();
    let bound = Duration::from_secs(read_timeout + write_timeout + 2);
    assert_viewers_end("SIGSTOP", t0, bound, flv, rtmp);
    drop(publisher); // SIGKILL also ends a stopped process
}

#[test]
fn clean_unpublish_ends_viewers_at_once() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("clean");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("clean", Duration::from_secs(10));
    let (flv, rtmp) = two_viewers(&srv, "clean");

    let t0 = Instant::now();
    publisher.signal("INT"); // ffmpeg: FCUnpublish + deleteStream, then close
    assert_viewers_end(
        "SIGINT (clean unpublish)",
        t0,
        Duration::from_millis(2500),
        flv,
        rtmp,
    );
    assert!(
        publisher.wait_timeout(Duration::from_secs(5)).is_some(),
        "{}",
        publisher.describe()
    );
}

/// An RTMP player that arrives first waits and plays once the publisher
/// starts; meanwhile HTTP-FLV says 404 for the not-yet-published room.
#[test]
fn early_rtmp_player_waits_for_publisher_and_flv_404s_before() {
    let _slot = heavy_slot();
    let media = test_media();
    let write_timeout = 5;
    let srv = Server::start(&[&format!("--write_timeout={write_timeout}")]);
    let key = srv.key("early");

    let mut player = Decoder::spawn(&srv.play_url("early"), Some(3.0), Duration::from_secs(20));
    thread::sleep(Duration::from_millis(1500));
    let r = http_get(&srv.flv_url("early")).expect("GET FLV");
    assert_eq!(
        r.status,
        404,
        "HTTP-FLV for a not-yet-published room: {}",
        r.text()
    );

    assert!(
        player.proc.is_running(),
        "early RTMP player gave up before the publisher came: {}",
        player.proc.describe()
    );

    let t0 = Instant::now();
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    let first_frames = poll_until(
        Duration::from_secs(write_timeout + 3),
        Duration::from_millis(50),
        || (player.frames() > 0).then(Instant::now),
    );
    eprintln!(
        "early player: first frames reported {:.2?} after the publisher started",
        first_frames.map(|t| t - t0)
    );
    assert!(
        first_frames.is_some_and(|t| t - t0 <= Duration::from_secs(write_timeout)),
        "early player did not start within write_timeout: {}",
        player.proc.describe()
    );
    let d = player.finish(Duration::from_secs(20));
    assert!(d.ok() && d.frames >= 60, "{}", d.summary());
    assert!(d.error_lines().is_empty(), "{}", d.summary());

    let r = HttpStream::open(&srv.flv_url("early"), Duration::from_secs(5)).expect("GET FLV");
    assert_eq!(r.status, 200, "HTTP-FLV once published");
    assert!(publisher.is_running(), "{}", publisher.describe());
}

/// A publisher ends (cleanly, then by SIGKILL) and the same key publishes
/// again right away. Run in reject mode so a stale "still live" stream would
/// show up as a refusal rather than a silent takeover.
#[test]
fn republish_right_after_end_works() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&["--publish_conflict=reject"]);
    let key = srv.key("again");

    let mut first = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("again", Duration::from_secs(10));
    thread::sleep(Duration::from_millis(500));

    first.signal("INT");
    assert!(
        first.wait_timeout(Duration::from_secs(5)).is_some(),
        "{}",
        first.describe()
    );
    let mut second = ffmpeg_publisher(&media, &srv.publish_url(&key));
    thread::sleep(Duration::from_millis(1500));
    assert!(
        second.is_running(),
        "re-publish after a clean stop was refused: {}",
        second.describe()
    );
    let d = decode_frames(&srv.flv_url("again"), 2.0);
    assert!(
        d.ok() && d.frames >= 45,
        "after clean re-publish: {}",
        d.summary()
    );

    second.kill();
    thread::sleep(Duration::from_millis(200));
    let mut third = ffmpeg_publisher(&media, &srv.publish_url(&key));
    thread::sleep(Duration::from_millis(1500));
    assert!(
        third.is_running(),
        "re-publish after SIGKILL was refused: {}",
        third.describe()
    );
    let d = decode_frames(&srv.flv_url("again"), 2.0);
    assert!(
        d.ok() && d.frames >= 45,
        "after re-publish following SIGKILL: {}",
        d.summary()
    );
}

/// A client that completes the handshake and then sends nothing is
/// disconnected after read_timeout (+2 s).
#[test]
fn idle_connection_after_handshake_is_closed_after_read_timeout() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--read_timeout=2"]);
    let mut c = RtmpClient::open(srv.rtmp_port).expect("handshake");
    let t0 = Instant::now();
    let closed = c.wait_closed(Duration::from_secs(10));
    let took = closed.map(|t| t - t0);
    eprintln!("idle post-handshake connection closed after {took:.2?}");
    assert!(
        took.is_some_and(|d| d <= Duration::from_secs(4)),
        "not closed within read_timeout + 2 s: {took:?}"
    );
    assert!(
        took.is_some_and(|d| d >= Duration::from_millis(1000)),
        "closed suspiciously early ({took:?}): handshake rejected?"
    );
}

/// A publisher that got Publish.Start and then sends no media is dropped
/// after the inactivity timeout (both timeouts 2 s here).
#[test]
fn idle_publisher_is_closed_after_timeout() {
    let _slot = heavy_slot();
    let srv = Server::start(&["--read_timeout=2", "--write_timeout=2"]);
    let key = srv.key("quiet");
    let (mut c, reply) =
        RtmpClient::start_publish(srv.rtmp_port, "live", &key).expect("raw publish");
    assert_eq!(
        reply.code().as_deref(),
        Some("NetStream.Publish.Start"),
        "reply: {reply:?}"
    );
    let t0 = Instant::now();
    let took = c.wait_closed(Duration::from_secs(10)).map(|t| t - t0);
    eprintln!("idle publisher closed after {took:.2?}");
    assert!(
        took.is_some_and(|d| d <= Duration::from_secs(4)),
        "idle publisher not closed within 2 + 2 s: {took:?}"
    );
}

/// 200 connect/disconnect cycles of every kind leave the FD count where it was.
#[test]
fn fd_count_stable_after_200_connect_cycles() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("churn");
    let raw_key = srv.key("churnraw");
    let short_key = srv.key("churnshort");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("churn", Duration::from_secs(10));

    let started = Instant::now();
    let mut cycles = 0usize;
    // One "round" of each kind; the first round is the warm-up.
    let round = |counts: &[usize; 11], cycles: &mut usize| {
        let [tcp_rtmp, tcp_flv, tcp_api, rtmp_connect, rtmp_publish, rtmp_play, flv_get, flv_404, api_get, ff_play, ff_publish] =
            *counts;
        for _ in 0..tcp_rtmp {
            drop(std::net::TcpStream::connect(("127.0.0.1", srv.rtmp_port)).expect("tcp rtmp"));
            *cycles += 1;
        }
        for _ in 0..tcp_flv {
            drop(std::net::TcpStream::connect(("127.0.0.1", srv.flv_port)).expect("tcp flv"));
            *cycles += 1;
        }
        for _ in 0..tcp_api {
            drop(std::net::TcpStream::connect(("127.0.0.1", srv.api_port)).expect("tcp api"));
            *cycles += 1;
        }
        for _ in 0..rtmp_connect {
            let mut c = RtmpClient::open(srv.rtmp_port).expect("handshake");
            let r = c.connect_app("live").expect("connect");
            assert_eq!(r.name, "_result", "{r:?}");
            *cycles += 1;
        }
        for _ in 0..rtmp_publish {
            let (_c, r) =
                RtmpClient::start_publish(srv.rtmp_port, "live", &raw_key).expect("raw publish");
            assert_eq!(
                r.code().as_deref(),
                Some("NetStream.Publish.Start"),
                "{r:?}"
            );
            *cycles += 1;
        }
        for _ in 0..rtmp_play {
            let mut c = RtmpClient::open(srv.rtmp_port).expect("handshake");
            assert_eq!(c.connect_app("live").expect("connect").name, "_result");
            let sid = c.create_stream().expect("createStream");
            let r = c.play(sid, "churn").expect("play");
            assert!(
                r.code().is_some_and(|c| c.starts_with("NetStream.Play")),
                "{r:?}"
            );
            for _ in 0..5 {
                if c.read_message().is_err() {
                    break;
                }
            }
            *cycles += 1;
        }
        for _ in 0..flv_get {
            let (s, r) = http_stream_for(&srv.flv_url("churn"), Duration::from_secs(3), 32 * 1024)
                .expect("GET FLV");
            assert_eq!(s.status, 200);
            assert!(!r.body.is_empty());
            s.close();
            *cycles += 1;
        }
        for _ in 0..flv_404 {
            assert_eq!(http_get(&srv.flv_url("nobody")).expect("GET").status, 404);
            *cycles += 1;
        }
        for _ in 0..api_get {
            assert_eq!(get_key(srv.api_port, "churn"), key);
            *cycles += 1;
        }
        for _ in 0..ff_play {
            let d = decode_frames(&srv.play_url("churn"), 0.5);
            assert!(
                d.ok(),
                "{}\npublisher: {}",
                d.summary(),
                publisher.describe()
            );
            *cycles += 1;
        }
        for _ in 0..ff_publish {
            let mut p = ffmpeg_publish_once(&media, &srv.publish_url(&short_key), 1.0, false);
            let st = p.wait_timeout(Duration::from_secs(15));
            assert!(st.is_some_and(|s| s.success()), "{}", p.describe());
            *cycles += 1;
        }
    };

    round(&[1; 11], &mut cycles);
    let settle = |srv: &Server| {
        // Wait until the count has been stable for 1 s (max 10 s).
        let mut last = srv.open_fds();
        let mut stable_since = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && stable_since.elapsed() < Duration::from_secs(1) {
            thread::sleep(Duration::from_millis(100));
            let n = srv.open_fds();
            if n != last {
                last = n;
                stable_since = Instant::now();
            }
        }
        last
    };
    let baseline = settle(&srv);
    let baseline_list: BTreeSet<String> = srv.fd_listing().into_iter().collect();
    let warmup = cycles;

    // 60+20+20 raw TCP, 30 RTMP connects, 20 raw publishes, 10 raw plays,
    // 20 HTTP-FLV GETs, 5 HTTP 404s, 5 API GETs, 5 ffmpeg plays, 5 ffmpeg publishes.
    round(&[60, 20, 20, 30, 20, 10, 20, 5, 5, 5, 5], &mut cycles);
    let churn = cycles - warmup;
    let churn_time = started.elapsed();

    let limit = baseline + 3;
    let after = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let n = srv.open_fds();
        (n <= baseline).then_some(n)
    })
    .unwrap_or_else(|| settle(&srv));
    eprintln!("fd churn: {churn} cycles in {churn_time:.1?}; fds baseline {baseline}, after {after} (limit {limit})");
    assert_eq!(churn, 200);
    if after > limit {
        let now: BTreeSet<String> = srv.fd_listing().into_iter().collect();
        let extra: Vec<&String> = now.difference(&baseline_list).collect();
        panic!("FD leak: baseline {baseline}, after {after}; new fds:\n{extra:#?}");
    }
    assert!(publisher.is_running(), "{}", publisher.describe());
}
