//! HLS segment latency for `make bench` (scripts/bench-hls.sh): the time from the frame that
//! completes a segment arriving at the server to the playlist listing that segment.
//!
//! A segment is cut at the keyframe that starts the next one, so that keyframe is the frame
//! that completes it. Our own RTMP publisher paces the cached test media (1 s GOP) at real
//! time and notes when it wrote each keyframe; a poller fetches the media playlist every
//! 2 ms and notes when each sequence number first appears. The figure is the difference, so
//! it includes the RTMP hop, the channel, the segmenter, the hub and one HTTP round trip, and
//! is accurate to the poll interval.
//!
//! Output: a human summary on stderr and `key=value` lines on stdout.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/hls.rs"]
mod hls;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{http_get, test_media, RtmpClient, Server};

const CHUNK_SIZE: usize = 4096;
const POLL: Duration = Duration::from_millis(2);

struct Tag {
    type_id: u8,
    timestamp: u32,
    body: Vec<u8>,
}

fn read_flv(path: &std::path::Path) -> Vec<Tag> {
    let data = std::fs::read(path).expect("read the test media");
    let mut pos = 9 + 4;
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let h = &data[pos..pos + 11];
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let Some(body) = data.get(pos + 11..pos + 11 + size) else {
            break;
        };
        tags.push(Tag {
            type_id: h[0],
            timestamp,
            body: body.to_vec(),
        });
        pos += 11 + size + 4;
    }
    tags
}

/// One RTMP message as type-0 chunks (timestamps stay below 2^24 ms in this run).
fn chunks(csid: u8, type_id: u8, stream_id: u32, timestamp: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16 + payload.len() / CHUNK_SIZE);
    out.push(csid);
    out.extend_from_slice(&timestamp.to_be_bytes()[1..]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (i, part) in payload.chunks(CHUNK_SIZE).enumerate() {
        if i > 0 {
            out.push(0xc0 | csid);
        }
        out.extend_from_slice(part);
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let secs: u32 = std::env::var("SB_BENCH_HLS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let srv = Server::start(&["--hls_fragment=1", "--level=warn"]);
    let key = srv.key("bench");
    let tags = read_flv(&test_media());
    let file_ms = tags.last().map_or(0, |t| t.timestamp) + 33;

    let mut rtmp = RtmpClient::open(srv.rtmp_port).expect("RTMP connect");
    rtmp.connect_app("live").expect("connect");
    let stream_id = rtmp.create_stream().expect("createStream");
    let reply = rtmp.publish(stream_id, &key).expect("publish");
    assert_eq!(
        reply.code().as_deref(),
        Some("NetStream.Publish.Start"),
        "{reply:?}"
    );
    rtmp.send_message(2, 1, 0, &(CHUNK_SIZE as u32).to_be_bytes())
        .expect("set chunk size");

    let listed: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let listed = listed.clone();
        let done = done.clone();
        let url = hls::playlist_url(&srv, "live", "bench");
        thread::spawn(move || {
            let (_, media_url) = hls::open_session(&url, Duration::from_secs(30));
            while !done.load(Ordering::Relaxed) {
                if let Ok(r) = http_get(&media_url) {
                    let now = Instant::now();
                    if let Ok(m3u8_rs::Playlist::MediaPlaylist(m)) =
                        m3u8_rs::parse_playlist_res(&r.body)
                    {
                        let mut listed = listed.lock().unwrap();
                        for i in 0..m.segments.len() as u64 {
                            listed.entry(m.media_sequence + i).or_insert(now);
                        }
                    }
                }
                thread::sleep(POLL);
            }
        })
    };

    // Keyframes in the order written; the n-th (from 0) completes segment n (from 1).
    let mut keyframes: Vec<Instant> = Vec::new();
    let started = Instant::now();
    let mut lap = 0u32;
    'publish: loop {
        for tag in &tags {
            if !matches!(tag.type_id, 8 | 9) {
                continue;
            }
            let ts = lap * file_ms + tag.timestamp;
            if ts >= secs * 1000 {
                break 'publish;
            }
            let due = started + Duration::from_millis(u64::from(ts));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let csid = if tag.type_id == 9 { 6 } else { 4 };
            let bytes = chunks(csid, tag.type_id, stream_id, ts, &tag.body);
            rtmp.sock.write_all(&bytes).expect("publish write");
            let is_key =
                tag.type_id == 9 && tag.body.first() == Some(&0x17) && tag.body.get(1) == Some(&1);
            if is_key {
                keyframes.push(Instant::now());
            }
        }
        lap += 1;
    }
    thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    let _ = poller.join();

    let listed = listed.lock().unwrap();
    let mut delays: Vec<f64> = listed
        .iter()
        .filter_map(|(&seq, &at)| {
            let closing = keyframes.get(usize::try_from(seq).ok()?)?;
            at.checked_duration_since(*closing)
                .map(|d| d.as_secs_f64() * 1000.0)
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    if delays.is_empty() {
        eprintln!("hls latency: no segment was listed\n{}", srv.log());
        std::process::exit(1);
    }
    let median = percentile(&delays, 0.5);
    let p95 = percentile(&delays, 0.95);
    let max = delays[delays.len() - 1];
    eprintln!(
        "HLS: segment listed {median:.1} ms (median), {p95:.1} ms (p95), {max:.1} ms (max) after \
         the keyframe that completes it was written; {} segments, 1 s fragments, playlist polled every {} ms",
        delays.len(),
        POLL.as_millis()
    );
    println!("hls_segment_listed_median_ms={median:.1}");
    println!("hls_segment_listed_p95_ms={p95:.1}");
    println!("hls_segment_listed_max_ms={max:.1}");
    println!("hls_segment_listed_samples={}", delays.len());
}
