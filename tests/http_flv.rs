//! HTTP-FLV egress: response shape, GOP-cache start, time to first video
//! tag, 404 for unknown rooms, `/streams`.

mod common;

use common::*;
use std::thread;
use std::time::{Duration, Instant};

/// Headers and the first tags of a fresh viewer: the first video tag is the
/// AVC sequence header, the next one a keyframe (GOP cache), and it arrives
/// quickly. Viewers join at several points inside the 1 s GOP.
#[test]
fn new_viewer_starts_with_seq_header_then_keyframe_fast() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("gop");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("gop", Duration::from_secs(10));

    for (i, offset_ms) in [1300u64, 450, 820].into_iter().enumerate() {
        thread::sleep(Duration::from_millis(offset_ms));
        let got = read_flv_tags(&srv.flv_url("gop"), Duration::from_secs(5), |tags| {
            tags.iter().filter(|(_, t)| t.is_video()).count() >= 2
        })
        .expect("GET HTTP-FLV");
        assert_eq!(got.status, 200);
        let h = |n: &str| {
            got.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            h("content-type").as_deref(),
            Some("video/x-flv"),
            "headers: {:?}",
            got.headers
        );
        assert_eq!(
            h("access-control-allow-origin").as_deref(),
            Some("*"),
            "headers: {:?}",
            got.headers
        );
        assert!(
            h("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")),
            "expected a chunked body; headers: {:?}",
            got.headers
        );
        assert!(
            got.parse_error.is_none(),
            "FLV parse error: {:?}",
            got.parse_error
        );
        assert!(
            got.header_flags.is_some_and(|f| f & 1 == 1),
            "FLV header lacks the video flag: {:?}",
            got.header_flags
        );

        let videos: Vec<&(Instant, FlvTag)> =
            got.tags.iter().filter(|(_, t)| t.is_video()).collect();
        assert!(
            videos.len() >= 2,
            "viewer {i}: fewer than 2 video tags within 5 s (end: {:?})",
            got.end
        );
        let (_, first) = videos[0];
        let (at, second) = videos[1];
        assert!(
            first.is_avc_seq_header(),
            "viewer {i}: first video tag is not the AVC sequence header: {:02x?}",
            &first.body[..first.body.len().min(8)]
        );
        assert!(
            second.is_avc_keyframe(),
            "viewer {i}: first video tag after the sequence header is not a keyframe: {:02x?}",
            &second.body[..second.body.len().min(8)]
        );
        let latency = *at - got.requested_at;
        eprintln!("viewer {i} (joined {offset_ms} ms later): first keyframe after {latency:.2?} (target < 200 ms)");
        assert!(
            latency < Duration::from_secs(1),
            "viewer {i}: first video tag took {latency:?}"
        );
    }
    assert!(
        publisher.is_running(),
        "publisher died: {}",
        publisher.describe()
    );
}

#[test]
fn unknown_room_is_404() {
    let _slot = heavy_slot();
    let srv = Server::start(&[]);
    let r = http_get(&srv.flv_url("nosuchroom")).expect("GET");
    assert_eq!(r.status, 404, "body: {}", r.text());
}

/// `GET /streams` has livego's shape and lists the publisher and viewers.
#[test]
fn streams_endpoint_lists_publisher_and_players() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("listed");
    let _publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("listed", Duration::from_secs(10));

    // One HTTP-FLV and one RTMP viewer, both kept open.
    let (mut flv, first) = http_stream_for(
        &srv.flv_url("listed"),
        Duration::from_millis(500),
        16 * 1024,
    )
    .expect("GET FLV");
    assert!(!first.body.is_empty(), "no FLV bytes");
    let rtmp_viewer = Decoder::spawn(&srv.play_url("listed"), None, Duration::from_secs(10));
    poll_until(Duration::from_secs(8), Duration::from_millis(100), || {
        (rtmp_viewer.frames() > 0).then_some(())
    })
    .unwrap_or_else(|| panic!("RTMP viewer got no frames: {}", rtmp_viewer.proc.describe()));

    let url = format!("http://127.0.0.1:{}/streams", srv.flv_port);
    let mut last = Value::Null;
    let ok = poll_until(Duration::from_secs(5), Duration::from_millis(200), || {
        let _ = flv.read_for(Duration::from_millis(10), usize::MAX); // keep draining
        let r = http_get(&url).ok()?;
        if r.status != 200 {
            return None;
        }
        last = serde_json::from_slice(&r.body).ok()?;
        let pubs = last["publishers"].as_array()?;
        let players = last["players"].as_array()?;
        let pub_ok = pubs
            .iter()
            .any(|p| p["key"] == "live/listed" && p["id"].as_str().is_some_and(|s| !s.is_empty()));
        let n_players = players
            .iter()
            .filter(|p| {
                p["key"] == "live/listed" && p["id"].as_str().is_some_and(|s| !s.is_empty())
            })
            .count();
        (pub_ok && n_players >= 2).then_some(())
    });
    assert!(
        ok.is_some(),
        "/streams should list publisher live/listed and >= 2 players (RTMP + HTTP-FLV) with ids; last: {last}"
    );
}

/// A viewer that stops reading never slows the publisher or another viewer: its queue fills,
/// it skips to keyframes, and after write_timeout without recovering it is dropped. The
/// stalled client is a socket with a tiny receive buffer that reads nothing.
#[test]
fn stalled_viewer_does_not_slow_others_and_is_dropped() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&["--write_timeout=3"]);
    let key = srv.key("slow");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("slow", Duration::from_secs(10));

    let port = srv.flv_port;
    // std cannot shrink SO_RCVBUF; python can, and is on every machine that runs these tests.
    let script = format!(
        "import socket,time\n\
         s=socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)\n\
         s.connect(('127.0.0.1',{port}))\n\
         s.sendall(b'GET /live/slow.flv HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n\
         time.sleep(30)\n"
    );
    let mut stalled = Proc::spawn(
        "stalled viewer",
        std::process::Command::new("python3").args(["-c", &script]),
    );

    let decode = decode_frames(&srv.flv_url("slow"), 6.0);
    assert!(
        decode.ok() && decode.frames >= 150,
        "the healthy viewer must decode in real time: {}",
        decode.summary()
    );
    assert!(
        publisher.is_running(),
        "publisher must keep going: {}",
        publisher.describe()
    );
    // The stalled client is still connected (it sleeps 30 s): it must have been dropped by
    // the server, either by the kernel's TCP_USER_TIMEOUT (write_timeout) or by the channel.
    let players_gone = poll_until(Duration::from_secs(8), Duration::from_millis(200), || {
        let streams = http_get_timeout(
            &format!("http://127.0.0.1:{}/streams", srv.flv_port),
            Duration::from_secs(2),
        )
        .ok()?;
        let players = streams.json()["players"].as_array()?.len();
        (players == 0).then_some(())
    });
    assert!(
        players_gone.is_some(),
        "the stalled viewer should have been dropped; log tail:\n{}",
        tail_lines(&srv.log(), 30)
    );
    assert!(
        stalled.is_running(),
        "the stalled client itself never closes"
    );
    stalled.kill();
}
