//! Other RTMP clients: GStreamer (rtmp2sink) as publisher, rtmpdump
//! (librtmp) as player, covering both handshakes.
//!
//! Handshake matrix. Checked on this machine (Debian 12: ffmpeg 5.1 built
//! without librtmp, librtmp 2.4, GStreamer 1.22) by capturing each client's
//! C1 with a throwaway TCP listener; C1 bytes 4..8 are the client version,
//! zero = simple handshake, non-zero = digest ("complex") handshake:
//!
//! | client                               | C1 version  | handshake |
//! |--------------------------------------|-------------|-----------|
//! | ffmpeg / ffprobe native `rtmp://`    | 9.0.124.2   | digest    |
//! | rtmpdump `-r rtmp://…` (plain)       | 0.0.0.0     | simple    |
//! | rtmpdump with `-w <hash> -x <size>`  | 10.0.45.2   | digest (librtmp FP9; also verifies S1's digest) |
//! | GStreamer rtmp2sink                  | 0.0.0.0     | simple    |
//! | harness `RtmpClient`                 | 0.0.0.0     | simple    |
//!
//! librtmp (handshake.h) switches to the FP9 handshake only for RTMPE or when
//! SWF verification data is set, which is why `-w/-x` flips it.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

/// GStreamer publishes (simple handshake), the stream plays over HTTP-FLV.
#[test]
fn gstreamer_rtmp2sink_publish_plays_over_http_flv() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("gst");
    let mut gst = gst_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("gst", Duration::from_secs(10));

    let v = ffprobe_json(&srv.flv_url("gst")).unwrap_or_else(|e| panic!("{e}\n{}", gst.describe()));
    let s = probe_summary(&v);
    eprintln!("ffprobe of the GStreamer stream: {s:?}");
    assert_eq!(s.video_codec.as_deref(), Some("h264"), "{v}");
    assert_eq!((s.width, s.height), (Some(640), Some(360)), "{v}");
    assert_eq!(s.audio_codec.as_deref(), Some("aac"), "{v}");

    let d = decode_frames(&srv.flv_url("gst"), 2.0);
    assert!(d.ok() && d.frames >= 45, "{}", d.summary());
    // The file is 10 s long and played once; gst must not have failed.
    if let Some(st) = gst.try_status() {
        assert!(st.success(), "gst-launch failed: {}", gst.describe());
    }
}

fn rtmpdump_case(room: &str, swf_verify: bool) {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key(room);
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live(room, Duration::from_secs(10));

    let out = srv.dir().join(format!("{room}.flv"));
    let p = rtmpdump(&srv.play_url(room), &out, 4.0, swf_verify);
    let data = fs::read(&out).unwrap_or_default();
    let (parser, tags) = parse_flv(&data);
    let videos: Vec<&FlvTag> = tags.iter().filter(|t| t.is_video()).collect();
    eprintln!(
        "rtmpdump (swf_verify={swf_verify}): {} bytes, {} tags, {} video, {} audio",
        data.len(),
        tags.len(),
        videos.len(),
        tags.iter().filter(|t| t.is_audio()).count()
    );
    assert!(
        parser.error.is_none(),
        "bad FLV from rtmpdump: {:?}\n{}",
        parser.error,
        p.describe()
    );
    assert!(
        videos.len() >= 60,
        "rtmpdump got {} video tags in ~4 s\n{}",
        videos.len(),
        p.describe()
    );
    assert!(
        videos.iter().any(|t| t.is_avc_seq_header()),
        "no AVC sequence header\n{}",
        p.describe()
    );
    assert!(
        videos.iter().any(|t| t.is_avc_keyframe()),
        "no keyframe\n{}",
        p.describe()
    );
    assert!(publisher.is_running(), "{}", publisher.describe());
}

/// rtmpdump plain: librtmp's simple handshake, live play.
#[test]
fn rtmpdump_plays_with_simple_handshake() {
    rtmpdump_case("dumpsimple", false);
}

/// rtmpdump with SWF verification data: librtmp's FP9 digest handshake.
#[test]
fn rtmpdump_plays_with_digest_handshake() {
    rtmpdump_case("dumpdigest", true);
}
