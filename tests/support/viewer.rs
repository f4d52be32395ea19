//! An HTTP-FLV viewer read by a background thread, so its queue never backs up while the test
//! does other things; the test watches its byte count and when its response ends.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{poll_until, HttpEvent, HttpStream, StreamEnd};

pub struct FlvWatcher {
    bytes: Arc<AtomicU64>,
    ended: Arc<Mutex<Option<(Instant, StreamEnd)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FlvWatcher {
    /// Opens `url` and asserts a 200 before reading starts.
    pub fn open(url: &str) -> FlvWatcher {
        let mut stream = HttpStream::open(url, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(stream.status, 200, "GET {url}");
        let bytes = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, e, s) = (bytes.clone(), ended.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match stream.next(Instant::now() + Duration::from_millis(200)) {
                    HttpEvent::Data(d) => {
                        b.fetch_add(d.len() as u64, Ordering::Relaxed);
                    }
                    HttpEvent::End(how) => {
                        *e.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), how));
                        return;
                    }
                    HttpEvent::Timeout => {}
                }
            }
        });
        FlvWatcher {
            bytes,
            ended,
            stop,
            thread: Some(thread),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn ended(&self) -> Option<(Instant, StreamEnd)> {
        *self.ended.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout` for the response to end.
    pub fn wait_end(&self, timeout: Duration) -> Option<(Instant, StreamEnd)> {
        poll_until(timeout, Duration::from_millis(20), || self.ended())
    }

    /// Bytes received during the next `window`.
    pub fn bytes_during(&self, window: Duration) -> u64 {
        let before = self.bytes();
        thread::sleep(window);
        self.bytes() - before
    }
}

impl Drop for FlvWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
