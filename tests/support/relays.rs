//! Relay control through the API: `/control/pull`, `/control/push`, `/api/relays`, and a
//! background HTTP-FLV reader that records when each tag arrived (to prove a viewer never
//! stalled while a relay misbehaved).
//!
//! Include with `#[path = "support/relays.rs"] mod relays;` next to `mod common;`.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    http_get, poll_until, tail_lines, FlvParser, FlvTag, HttpEvent, HttpStream, Server, Value,
};

/// `GET /control/<kind>?<query>` → (HTTP status, JSON body). The envelope's status must match.
pub fn control(srv: &Server, kind: &str, query: &str) -> (u16, Value) {
    let url = srv.api_url(&format!("/control/{kind}?{query}"));
    let r = http_get(&url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {}", r.text()));
    assert_eq!(
        v["status"].as_u64(),
        Some(u64::from(r.status)),
        "GET {url}: envelope status differs from HTTP status: {v}"
    );
    (r.status, v)
}

/// Starts a relay and asserts 200.
pub fn start(srv: &Server, kind: &str, app: &str, name: &str, url: &str) -> Value {
    let (status, v) = control(
        srv,
        kind,
        &format!("oper=start&app={app}&name={name}&url={}", encode(url)),
    );
    assert_eq!(status, 200, "start {kind} {app}/{name} <-> {url}: {v}");
    v["data"].clone()
}

/// Stops a relay and asserts 200.
pub fn stop(srv: &Server, kind: &str, app: &str, name: &str) -> Value {
    let (status, v) = control(srv, kind, &format!("oper=stop&app={app}&name={name}"));
    assert_eq!(status, 200, "stop {kind} {app}/{name}: {v}");
    v["data"].clone()
}

/// `GET /api/relays` → the list.
pub fn list(srv: &Server) -> Vec<Value> {
    let url = srv.api_url("/api/relays");
    let r = http_get(&url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status, 200, "GET {url}: {}", r.text());
    let v = r.json();
    assert_eq!(v["status"], 200, "GET {url}: {v}");
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {url}: data is not a list: {v}"))
        .clone()
}

/// Waits until a listed relay satisfies `pred`; panics with the list and log otherwise.
pub fn wait_relay(
    srv: &Server,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Vec::new();
    poll_until(timeout, Duration::from_millis(100), || {
        last = list(srv);
        last.iter().find(|r| pred(r)).cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "no relay {what} within {timeout:?}; /api/relays: {last:#?}\n--- server log ---\n{}",
            tail_lines(&srv.log(), 60)
        )
    })
}

/// A relay of `kind` for `app/name` in `state`.
pub fn is(
    kind: &'static str,
    app: &'static str,
    name: &'static str,
    state: &'static str,
) -> impl Fn(&Value) -> bool {
    move |r: &Value| {
        r["kind"] == kind && r["app"] == app && r["name"] == name && r["state"] == state
    }
}

/// Percent-encodes a URL for use as a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads an HTTP-FLV body on a thread, keeping each tag with its arrival time.
pub struct TimedViewer {
    tags: Arc<Mutex<Vec<(Instant, FlvTag)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TimedViewer {
    pub fn open(url: &str) -> TimedViewer {
        let mut stream = HttpStream::open(url, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(stream.status, 200, "GET {url}");
        let tags = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (tags.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut parser = FlvParser::new();
            while !s.load(Ordering::Relaxed) {
                match stream.next(Instant::now() + Duration::from_millis(200)) {
                    HttpEvent::Data(d) => {
                        let now = Instant::now();
                        let parsed = parser.feed(&d);
                        let mut tags = t.lock().unwrap_or_else(|e| e.into_inner());
                        tags.extend(parsed.into_iter().map(|tag| (now, tag)));
                    }
                    HttpEvent::End(_) => break,
                    HttpEvent::Timeout => {}
                }
            }
        });
        TimedViewer {
            tags,
            stop,
            thread: Some(thread),
        }
    }

    pub fn video_tags(&self) -> usize {
        self.tags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, t)| t.is_video())
            .count()
    }

    /// Stops reading; returns the tags.
    pub fn finish(mut self) -> Vec<(Instant, FlvTag)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.tags.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for TimedViewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The longest wait between two consecutive video tags, and whether video timestamps never
/// went backwards.
pub fn video_gaps(tags: &[(Instant, FlvTag)]) -> (Duration, bool) {
    let videos: Vec<&(Instant, FlvTag)> = tags.iter().filter(|(_, t)| t.is_video()).collect();
    let longest = videos
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0))
        .max()
        .unwrap_or_default();
    let monotonic = videos
        .windows(2)
        .all(|w| w[1].1.timestamp >= w[0].1.timestamp);
    (longest, monotonic)
}

/// ffprobe sees H.264 and AAC at `url`.
pub fn assert_plays_h264_aac(url: &str) {
    let probe = crate::common::ffprobe_json(url).unwrap_or_else(|e| panic!("{e}"));
    let summary = crate::common::probe_summary(&probe);
    assert_eq!(
        summary.video_codec.as_deref(),
        Some("h264"),
        "{url}: {probe}"
    );
    assert_eq!(
        summary.audio_codec.as_deref(),
        Some("aac"),
        "{url}: {probe}"
    );
}

/// ffprobe sees the test media's H.264 640x360 and AAC at `url`.
pub fn assert_plays_h264_640x360(url: &str) {
    assert_plays_h264_aac(url);
    let probe = crate::common::ffprobe_json(url).unwrap_or_else(|e| panic!("{e}"));
    let summary = crate::common::probe_summary(&probe);
    assert_eq!(
        (summary.width, summary.height),
        (Some(640), Some(360)),
        "{url}"
    );
}
