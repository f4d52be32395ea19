//! HLS client helpers for the end-to-end tests: playlists read with m3u8-rs, segments with
//! mpeg2ts, relative URIs resolved the way players do.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacket, TsPacketReader, TsPayload};

use crate::common::{http_get, HttpResponse, Server};

/// The PMT's PID in Switchboard's segments.
pub const PMT_PID: u16 = 0x1000;

/// `http://127.0.0.1:<hls>/<app>/<room>.m3u8`, the URL a viewer is given.
pub fn playlist_url(srv: &Server, app: &str, room: &str) -> String {
    format!("http://127.0.0.1:{}/{app}/{room}.m3u8", srv.hls_port)
}

/// Resolves a URI found in the playlist at `base` (RFC 3986, the cases playlists use).
pub fn resolve(base: &str, uri: &str) -> String {
    if uri.starts_with("http://") {
        return uri.to_string();
    }
    let without_query = base.split('?').next().unwrap_or(base);
    if uri.starts_with('/') {
        let origin_end = without_query[7..]
            .find('/')
            .map_or(without_query.len(), |i| i + 7);
        return format!("{}{uri}", &without_query[..origin_end]);
    }
    let dir_end = without_query
        .rfind('/')
        .map_or(without_query.len(), |i| i + 1);
    format!("{}{uri}", &without_query[..dir_end])
}

pub enum Parsed {
    Master(MasterPlaylist),
    Media(MediaPlaylist),
}

pub fn parse_playlist(body: &[u8]) -> Parsed {
    match m3u8_rs::parse_playlist_res(body) {
        Ok(Playlist::MasterPlaylist(m)) => Parsed::Master(m),
        Ok(Playlist::MediaPlaylist(m)) => Parsed::Media(m),
        Err(e) => panic!(
            "unparsable playlist ({e:?}):\n{}",
            String::from_utf8_lossy(body)
        ),
    }
}

/// GET a playlist URL and check the response headers every playlist must have.
pub fn get_playlist(url: &str) -> (HttpResponse, Parsed) {
    let r = http_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status, 200, "GET {url}: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.apple.mpegurl"),
        "{url}"
    );
    assert_eq!(r.header("cache-control"), Some("no-cache"), "{url}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{url}");
    let parsed = parse_playlist(&r.body);
    (r, parsed)
}

/// Waits (≤ `timeout`) for the room's playlist to answer 200; returns the master playlist and
/// the absolute URL of the session's media playlist.
pub fn open_session(url: &str, timeout: Duration) -> (MasterPlaylist, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match http_get(url) {
            Ok(r) if r.status == 200 => {
                let (_, parsed) = get_playlist(url);
                let Parsed::Master(master) = parsed else {
                    panic!("{url} without a session should give a master playlist");
                };
                let variant = resolve(url, &master.variants[0].uri);
                return (master, variant);
            }
            Ok(r) => format!("{} {}", r.status, r.text()),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{url} not playable within {timeout:?}: {last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn get_media(url: &str) -> MediaPlaylist {
    match get_playlist(url).1 {
        Parsed::Media(m) => m,
        Parsed::Master(_) => panic!("{url} gave a master playlist"),
    }
}

/// Polls a media playlist until `done` holds.
pub fn wait_media(
    url: &str,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&MediaPlaylist) -> bool,
) -> MediaPlaylist {
    let deadline = Instant::now() + timeout;
    loop {
        let m = get_media(url);
        if done(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; last playlist: {m:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET a segment and check its headers.
pub fn get_segment(url: &str) -> Vec<u8> {
    let r = http_get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status, 200, "GET {url}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("video/mp2t"), "{url}");
    assert!(
        r.header("cache-control")
            .is_some_and(|c| c.contains("max-age=") && !c.contains("no-")),
        "{url}: cache-control {:?}",
        r.header("cache-control")
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{url}");
    r.body
}

/// What a segment holds, read back with mpeg2ts.
#[derive(Debug, Default)]
pub struct TsSummary {
    pub packets: usize,
    pub video_frames: usize,
    pub audio_frames: usize,
    pub starts_with_tables: bool,
}

/// Parses TS data (one segment or several in a row); panics on anything mpeg2ts rejects,
/// on a continuity counter gap or on a PCR gap over 100 ms.
pub fn check_ts(data: &[u8]) -> TsSummary {
    assert_eq!(data.len() % TsPacket::SIZE, 0, "not whole TS packets");
    let mut reader = TsPacketReader::new(data);
    let mut summary = TsSummary::default();
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut last_pcr: Option<u64> = None;
    let mut first = Vec::new();
    while let Some(p) = reader.read_ts_packet().expect("valid TS packet") {
        summary.packets += 1;
        if first.len() < 2 {
            first.push(p.header.pid.as_u16());
        }
        let pid = p.header.pid.as_u16();
        let cc = p.header.continuity_counter.as_u8();
        if let Some(&prev) = last_cc.get(&pid) {
            let expected = if p.payload.is_some() {
                (prev + 1) & 0x0f
            } else {
                prev
            };
            assert_eq!(cc, expected, "continuity counter gap on PID {pid:#x}");
        }
        last_cc.insert(pid, cc);
        if let Some(pcr) = p.adaptation_field.as_ref().and_then(|a| a.pcr) {
            let base = pcr.as_u64() / 300;
            if let Some(prev) = last_pcr {
                assert!(
                    base >= prev && base - prev <= 9000,
                    "PCR gap {prev} -> {base}"
                );
            }
            last_pcr = Some(base);
        }
        if let Some(TsPayload::Pat(_)) = &p.payload {
            assert_eq!(pid, 0);
        }
    }
    summary.starts_with_tables = first == [0, PMT_PID];
    let mut pes = PesPacketReader::new(TsPacketReader::new(data));
    while let Some(p) = pes.read_pes_packet().expect("valid PES") {
        if p.header.stream_id.is_video() {
            summary.video_frames += 1;
        } else {
            summary.audio_frames += 1;
        }
    }
    summary
}
