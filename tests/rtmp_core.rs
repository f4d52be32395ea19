//! Core RTMP ingest + fan-out: ffmpeg publishes H.264+AAC (`-c copy` of the
//! shared test media), viewers probe and decode over RTMP and HTTP-FLV.
//!
//! ffmpeg's native RTMP client (this ffmpeg has no librtmp) uses the digest
//! ("complex", FP9) handshake, so every test here exercises the server's
//! complex handshake path. See tests/clients.rs for the handshake matrix.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn api_key_is_stable_and_alphanumeric() {
    let _slot = heavy_slot();
    let srv = Server::start(&[]);
    let k1 = srv.key("alpha");
    let k2 = srv.key("alpha");
    let other = srv.key("beta");
    assert_eq!(
        k1, k2,
        "/control/get must return the same key on every call"
    );
    assert!(
        k1.len() >= 32 && k1.chars().all(|c| c.is_ascii_alphanumeric()),
        "key must be >= 32 alphanumerics: {k1:?}"
    );
    assert_ne!(k1, other, "different rooms must get different keys");
}

#[test]
fn ffmpeg_publish_probe_over_rtmp_and_http_flv() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("probe");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("probe", Duration::from_secs(10));

    for url in [srv.play_url("probe"), srv.flv_url("probe")] {
        let v = ffprobe_json(&url).unwrap_or_else(|e| panic!("{e}"));
        let s = probe_summary(&v);
        eprintln!("ffprobe {url}: {s:?}");
        assert_eq!(s.video_codec.as_deref(), Some("h264"), "{url}: {v}");
        assert_eq!((s.width, s.height), (Some(640), Some(360)), "{url}: {v}");
        assert_eq!(s.audio_codec.as_deref(), Some("aac"), "{url}: {v}");
    }
    assert!(
        publisher.is_running(),
        "publisher died: {}",
        publisher.describe()
    );
}

/// Three RTMP and three HTTP-FLV viewers decode at the same time; each must
/// get >= 120 video frames in 5 s of media with no decoder error.
#[test]
fn three_rtmp_and_three_http_flv_viewers_decode() {
    let _slot = heavy_slot();
    let media = test_media();
    let srv = Server::start(&[]);
    let key = srv.key("fanout");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("fanout", Duration::from_secs(10));

    let urls: Vec<String> = (0..3)
        .flat_map(|_| [srv.play_url("fanout"), srv.flv_url("fanout")])
        .collect();
    let decoders: Vec<Decoder> = urls
        .iter()
        .map(|u| Decoder::spawn(u, Some(5.0), Duration::from_secs(10)))
        .collect();
    let results: Vec<Decode> = decoders
        .into_iter()
        .map(|d| d.finish(Duration::from_secs(30)))
        .collect();
    for r in &results {
        eprintln!("{} -> frames={} in {:.2?}", r.url, r.frames, r.elapsed);
    }
    for r in &results {
        assert!(r.ok(), "{}", r.summary());
        assert!(
            r.error_lines().is_empty(),
            "decoder reported errors: {}",
            r.summary()
        );
        assert!(r.frames >= 120, "too few frames: {}", r.summary());
    }
    assert!(
        publisher.is_running(),
        "publisher died: {}",
        publisher.describe()
    );
}

/// Keyframes of over a megabyte (livego panics above 500 KB and desyncs its chunk parser) pass
/// through RTMP, HTTP-FLV and HLS intact.
#[test]
fn megabyte_keyframes_pass_through_every_protocol() {
    let _slot = heavy_slot();
    let media = test_media_huge_keyframes();
    let srv = Server::start(&["--rtmp_noauth", "--hls_fragment=1"]);
    let _publisher = ffmpeg_publisher(&media, &srv.publish_url("huge"));
    srv.wait_live("huge", Duration::from_secs(10));
    let hls = format!("http://127.0.0.1:{}/live/huge.m3u8", srv.hls_port);
    for url in [srv.play_url("huge"), srv.flv_url("huge"), hls] {
        let decode = decode_frames(&url, 2.0);
        assert!(
            decode.ok() && decode.frames >= 5,
            "{url}: {}",
            decode.summary()
        );
    }
}
