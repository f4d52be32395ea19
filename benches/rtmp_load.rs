//! Load client for `make bench` (scripts/bench.sh): many RTMP players, an RTMP publisher that
//! paces a pre-encoded FLV file, and HTTP-FLV joins, all in one single-threaded tokio process.
//!
//! It runs against any RTMP server (Switchboard and nginx-rtmp alike), so the two are measured
//! by the same client under the same load. The client never owns the server: it only reads the
//! server's /proc entries when given `--pid`.
//!
//! Results go to stdout as `key=value` lines (numbers only) for the script to tabulate;
//! progress and errors go to stderr.
//!
//! Subcommands:
//! - `fanout`: N players on one stream; after a warm-up, a fixed window in which server CPU,
//!   server RSS and the frames each player received are measured.
//! - `ttff`: staggered joins (RTMP or HTTP-FLV); time from TCP connect to the first video
//!   keyframe.
//! - `latency`: our own publisher paces the file's tags at real time; players report the delay
//!   between a video frame's write by the publisher and its arrival.
//! - `churn`: connect/play/disconnect cycles; server RSS and open fds before and after.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
    PublishRequestType, StreamMetadata,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::LocalSet;
use tokio::time::sleep_until;

type BoxError = Box<dyn std::error::Error>;
type Result<T> = std::result::Result<T, BoxError>;

/// Linux reports process CPU times in USER_HZ ticks, 100 on every architecture we run on.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;
const READ_BUF: usize = 32 * 1024;

#[derive(Parser)]
#[command(about = "RTMP/HTTP-FLV load client for scripts/bench.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// `cargo bench` appends `--bench` to a harness-less bench's arguments.
    #[arg(long, global = true, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Command {
    /// N RTMP players on one stream; server CPU/RSS and per-player frames over a fixed window.
    Fanout {
        #[arg(long)]
        url: String,
        #[arg(long)]
        players: usize,
        /// Seconds between the last player's start and the measurement window.
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        /// Length of the measurement window, seconds.
        #[arg(long, default_value_t = 10.0)]
        window: f64,
        /// Video frame rate of the published stream (for the expected frame count).
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        /// Server process to measure.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Staggered joins; connect → first video keyframe. `rtmp://` or `http://…flv` URLs.
    Ttff {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 30)]
        joins: usize,
        /// Gap between joins; not a divisor of the GOP so joins land all over it.
        #[arg(long, default_value_t = 137)]
        spacing_ms: u64,
    },
    /// Own publisher pacing `media` at real time; per-frame publisher→player delay.
    Latency {
        /// rtmp://host:port/app/<publish name>
        #[arg(long)]
        publish: String,
        /// rtmp://host:port/app/<room>
        #[arg(long)]
        play: String,
        #[arg(long)]
        media: PathBuf,
        #[arg(long, default_value_t = 10)]
        players: usize,
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        #[arg(long, default_value_t = 10.0)]
        window: f64,
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Viewer connect/play/disconnect cycles; server RSS and fds before and after.
    Churn {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 500)]
        cycles: usize,
        #[arg(long, default_value_t = 20)]
        concurrency: usize,
        /// Cycles run before the baseline is taken (allocator and caches warm up).
        #[arg(long, default_value_t = 50)]
        warm_cycles: usize,
        /// Seconds to wait after the cycles before the final reading.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// How long each viewer keeps playing after its first keyframe.
        #[arg(long, default_value_t = 100)]
        hold_ms: u64,
        #[arg(long)]
        pid: u32,
    },
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rtmp_load: cannot start a runtime: {e}");
            std::process::exit(2);
        }
    };
    let local = LocalSet::new();
    let result = local.block_on(&runtime, async move {
        match cli.command {
            Command::Fanout {
                url,
                players,
                warmup,
                window,
                fps,
                pid,
            } => fanout(&url, players, warmup, window, fps, pid).await,
            Command::Ttff {
                url,
                joins,
                spacing_ms,
            } => ttff(&url, joins, Duration::from_millis(spacing_ms)).await,
            Command::Latency {
                publish,
                play,
                media,
                players,
                warmup,
                window,
                pid,
            } => latency(&publish, &play, &media, players, warmup, window, pid).await,
            Command::Churn {
                url,
                cycles,
                concurrency,
                warm_cycles,
                settle,
                hold_ms,
                pid,
            } => {
                let hold = Duration::from_millis(hold_ms);
                churn(&url, cycles, concurrency, warm_cycles, settle, hold, pid).await
            }
        }
    });
    if let Err(e) = result {
        eprintln!("rtmp_load: {e}");
        std::process::exit(1);
    }
}

fn emit(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

// ---------------------------------------------------------------------------------------------
// URLs

#[derive(Clone, Debug)]
struct RtmpUrl {
    /// host:port
    addr: String,
    app: String,
    stream: String,
    tc_url: String,
}

fn parse_rtmp_url(url: &str) -> Result<RtmpUrl> {
    let rest = url
        .strip_prefix("rtmp://")
        .ok_or_else(|| format!("not an rtmp:// URL: {url}"))?;
    let mut parts = rest.splitn(3, '/');
    let host = parts.next().unwrap_or_default();
    let app = parts.next().unwrap_or_default();
    let stream = parts.next().unwrap_or_default();
    if host.is_empty() || app.is_empty() || stream.is_empty() {
        return Err(format!("expected rtmp://host:port/app/stream, got {url}").into());
    }
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:1935")
    };
    Ok(RtmpUrl {
        tc_url: format!("rtmp://{addr}/{app}"),
        addr,
        app: app.to_string(),
        stream: stream.to_string(),
    })
}

/// (host:port, path) of an http:// URL.
fn parse_http_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    Ok((host, path.to_string()))
}

// ---------------------------------------------------------------------------------------------
// /proc readings

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')' field 0 is the state (field 3 in proc(5)), so utime (14) and stime (15) are 11, 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SEC)
}

fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn rss_kb(pid: &str) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

fn threads(pid: &str) -> Option<u64> {
    status_kb(pid, "Threads")
}

fn open_fds(pid: &str) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

// ---------------------------------------------------------------------------------------------
// FLV helpers

/// An AVC/HEVC video body that starts a GOP (frame type 1) and is not a sequence header.
fn is_video_keyframe(body: &[u8]) -> bool {
    body.len() >= 2 && body[0] >> 4 == 1 && body[1] == 1
}

fn is_video_sequence_header(body: &[u8]) -> bool {
    body.len() >= 2 && body[1] == 0
}

fn is_audio_sequence_header(body: &[u8]) -> bool {
    body.len() >= 2 && body[0] >> 4 == 10 && body[1] == 0
}

fn body_hash(body: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

struct FlvTag {
    kind: u8,
    timestamp: u32,
    body: Bytes,
}

fn read_flv_file(path: &PathBuf) -> Result<Vec<FlvTag>> {
    let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    if data.len() < 13 || &data[..3] != b"FLV" {
        return Err(format!("{} is not an FLV file", path.display()).into());
    }
    let data = Bytes::from(data);
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut pos = header_len + 4;
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let kind = data[pos] & 0x1f;
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let timestamp =
            u32::from_be_bytes([data[pos + 7], data[pos + 4], data[pos + 5], data[pos + 6]]);
        let start = pos + 11;
        let end = start + size;
        if end > data.len() {
            break;
        }
        tags.push(FlvTag {
            kind,
            timestamp,
            body: data.slice(start..end),
        });
        pos = end + 4;
    }
    Ok(tags)
}

/// Incremental FLV tag reader for an HTTP-FLV body.
#[derive(Default)]
struct FlvReader {
    buf: Vec<u8>,
    header_done: bool,
}

impl FlvReader {
    /// Feeds body bytes; returns (tag type, first two body bytes) of every complete tag.
    fn feed(&mut self, data: &[u8]) -> Result<Vec<(u8, [u8; 2])>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut pos = 0;
        if !self.header_done {
            if self.buf.len() < 13 {
                return Ok(out);
            }
            if &self.buf[..3] != b"FLV" {
                return Err("HTTP-FLV body does not start with an FLV header".into());
            }
            let header_len =
                u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) as usize;
            if self.buf.len() < header_len + 4 {
                return Ok(out);
            }
            pos = header_len + 4;
            self.header_done = true;
        }
        while pos + 11 <= self.buf.len() {
            let size =
                u32::from_be_bytes([0, self.buf[pos + 1], self.buf[pos + 2], self.buf[pos + 3]])
                    as usize;
            let end = pos + 11 + size + 4;
            if end > self.buf.len() {
                break;
            }
            let first = [
                self.buf.get(pos + 11).copied().unwrap_or(0),
                self.buf.get(pos + 12).copied().unwrap_or(0xff),
            ];
            out.push((self.buf[pos] & 0x1f, first));
            pos = end;
        }
        self.buf.drain(..pos);
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// RTMP connection

struct RtmpConn {
    stream: TcpStream,
    session: ClientSession,
    buf: Vec<u8>,
    bytes_read: u64,
}

impl RtmpConn {
    /// TCP connect, handshake, session; bytes that followed the handshake are fed later via
    /// `pending`.
    async fn open(url: &RtmpUrl) -> Result<(RtmpConn, Vec<u8>)> {
        let mut stream = TcpStream::connect(&url.addr).await?;
        stream.set_nodelay(true)?;
        let mut handshake = Handshake::new(PeerType::Client);
        let p0p1 = handshake
            .generate_outbound_p0_and_p1()
            .map_err(|e| format!("handshake: {e:?}"))?;
        stream.write_all(&p0p1).await?;
        let mut buf = vec![0u8; READ_BUF];
        let mut bytes_read = 0;
        let remaining = loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err("server closed during the handshake".into());
            }
            bytes_read += n as u64;
            match handshake
                .process_bytes(&buf[..n])
                .map_err(|e| format!("handshake: {e:?}"))?
            {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    stream.write_all(&response_bytes).await?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    stream.write_all(&response_bytes).await?;
                    break remaining_bytes;
                }
            }
        };
        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(url.tc_url.clone());
        let (session, _) =
            ClientSession::new(config).map_err(|e| format!("client session: {e:?}"))?;
        Ok((
            RtmpConn {
                stream,
                session,
                buf,
                bytes_read,
            },
            remaining,
        ))
    }

    async fn write_result(&mut self, result: ClientSessionResult) -> Result<()> {
        if let ClientSessionResult::OutboundResponse(packet) = result {
            self.stream.write_all(&packet.bytes).await?;
        }
        Ok(())
    }

    /// Feeds bytes to the session, writes its responses and returns its events.
    async fn process(&mut self, data: &[u8]) -> Result<Vec<ClientSessionEvent>> {
        let results = self
            .session
            .handle_input(data)
            .map_err(|e| format!("rtmp: {e:?}"))?;
        let mut events = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::OutboundResponse(packet) => {
                    self.stream.write_all(&packet.bytes).await?
                }
                ClientSessionResult::RaisedEvent(event) => events.push(event),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    /// Reads once (None at EOF) and processes what came.
    async fn read_events(&mut self) -> Result<Option<Vec<ClientSessionEvent>>> {
        let n = self.stream.read(&mut self.buf).await?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes_read += n as u64;
        let data = self.buf[..n].to_vec();
        self.process(&data).await.map(Some)
    }

    /// Sends connect and waits for its acceptance.
    async fn connect_app(&mut self, url: &RtmpUrl, pending: Vec<u8>) -> Result<()> {
        let request = self
            .session
            .request_connection(url.app.clone())
            .map_err(|e| format!("connect: {e:?}"))?;
        self.write_result(request).await?;
        let mut events = self.process(&pending).await?;
        loop {
            for event in events.drain(..) {
                match event {
                    ClientSessionEvent::ConnectionRequestAccepted => return Ok(()),
                    ClientSessionEvent::ConnectionRequestRejected { description } => {
                        return Err(format!("connect rejected: {description}").into())
                    }
                    _ => {}
                }
            }
            events = self
                .read_events()
                .await?
                .ok_or("server closed before accepting connect")?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Players

#[derive(Default, Clone, Copy)]
struct Window {
    start: Option<Instant>,
    end: Option<Instant>,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        self.start.is_some_and(|s| t >= s) && self.end.is_none_or(|e| t < e)
    }
}

#[derive(Default)]
struct PlayerReport {
    error: Option<String>,
    play_accepted: bool,
    first_video: Option<Duration>,
    first_keyframe: Option<Duration>,
    video_frames: u64,
    audio_frames: u64,
    video_frames_in_window: u64,
    bytes_read: u64,
    bytes_in_window: u64,
    /// Publisher-write → player-arrival delays, ms (latency mode).
    delays_ms: Vec<f64>,
}

/// Frames our own publisher wrote: body hash → when, for the latency measurement.
type SentLog = Rc<RefCell<HashMap<u64, Instant>>>;

struct PlayOptions {
    url: RtmpUrl,
    /// Stop when this instant passes.
    until: Option<Instant>,
    /// Stop at the first video keyframe (after `hold` more of playing).
    until_keyframe: bool,
    hold: Duration,
    /// Give up after this long without reaching the goal.
    timeout: Duration,
    window: Window,
    sent: Option<(SentLog, Rc<HashSet<u64>>)>,
    /// Say deleteStream before closing instead of just dropping the socket.
    clean_close: bool,
}

async fn play(opts: PlayOptions) -> PlayerReport {
    let mut report = PlayerReport::default();
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let deadline = opts.until.map_or(deadline, |u| u.min(deadline));
    let outcome =
        tokio::time::timeout_at(deadline.into(), play_inner(&opts, started, &mut report)).await;
    match outcome {
        Ok(Err(e)) => report.error = Some(e.to_string()),
        Err(_) if opts.until_keyframe || opts.until.is_none() => {
            report.error = Some(format!("no keyframe within {:?}", opts.timeout))
        }
        _ => {}
    }
    report
}

async fn play_inner(opts: &PlayOptions, started: Instant, report: &mut PlayerReport) -> Result<()> {
    let (mut conn, pending) = RtmpConn::open(&opts.url).await?;
    conn.connect_app(&opts.url, pending).await?;
    let request = conn
        .session
        .request_playback(opts.url.stream.clone())
        .map_err(|e| format!("play: {e:?}"))?;
    conn.write_result(request).await?;
    let mut last_bytes = conn.bytes_read;
    let mut leave_at: Option<Instant> = None;
    loop {
        let events = match conn.read_events().await {
            Ok(Some(events)) => events,
            Ok(None) => return Err("server closed the connection".into()),
            Err(e) => {
                report.bytes_read = conn.bytes_read;
                return Err(e);
            }
        };
        let now = Instant::now();
        if opts.window.contains(now) {
            report.bytes_in_window += conn.bytes_read - last_bytes;
        }
        last_bytes = conn.bytes_read;
        report.bytes_read = conn.bytes_read;
        for event in events {
            match event {
                ClientSessionEvent::PlaybackRequestAccepted => report.play_accepted = true,
                ClientSessionEvent::VideoDataReceived { data, .. } => {
                    if is_video_sequence_header(&data) {
                        continue;
                    }
                    report.video_frames += 1;
                    report.first_video.get_or_insert(now - started);
                    if opts.window.contains(now) {
                        report.video_frames_in_window += 1;
                    }
                    if let Some((sent, ambiguous)) = &opts.sent {
                        let hash = body_hash(&data);
                        if !ambiguous.contains(&hash) {
                            if let Some(at) = sent.borrow().get(&hash) {
                                if opts.window.contains(*at) {
                                    report
                                        .delays_ms
                                        .push(now.duration_since(*at).as_secs_f64() * 1000.0);
                                }
                            }
                        }
                    }
                    if is_video_keyframe(&data) && report.first_keyframe.is_none() {
                        report.first_keyframe = Some(now - started);
                        leave_at = Some(now + opts.hold);
                    }
                    if opts.until_keyframe && leave_at.is_some_and(|t| now >= t) {
                        if opts.clean_close {
                            if let Ok(results) = conn.session.stop_playback() {
                                for result in results {
                                    conn.write_result(result).await?;
                                }
                            }
                            let _ = conn.stream.shutdown().await;
                        }
                        return Ok(());
                    }
                }
                ClientSessionEvent::AudioDataReceived { .. } => report.audio_frames += 1,
                _ => {}
            }
        }
    }
}

/// Runs until the deadline in `until`; every exit reason but the deadline is an error.
fn player_ok(report: &PlayerReport) -> bool {
    report.error.is_none() && report.play_accepted
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn first_error<'a>(reports: impl Iterator<Item = &'a PlayerReport>) -> Option<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in reports {
        if let Some(e) = r.error.as_deref() {
            *counts.entry(e).or_default() += 1;
        }
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    v.first().map(|(e, n)| format!("{n}x {e}"))
}

// ---------------------------------------------------------------------------------------------
// fanout

async fn fanout(
    url: &str,
    players: usize,
    warmup: f64,
    window: f64,
    fps: f64,
    pid: Option<u32>,
) -> Result<()> {
    let url = parse_rtmp_url(url)?;
    let pid = pid.map(|p| p.to_string());
    let ramp = Duration::from_millis(2);
    let t0 = Instant::now() + ramp * players as u32 + Duration::from_secs_f64(warmup);
    let t1 = t0 + Duration::from_secs_f64(window);
    let win = Window {
        start: Some(t0),
        end: Some(t1),
    };
    let mut handles = Vec::with_capacity(players);
    for _ in 0..players {
        let opts = PlayOptions {
            url: url.clone(),
            until: Some(t1),
            until_keyframe: false,
            hold: Duration::ZERO,
            timeout: Duration::from_secs(3600),
            window: win,
            sent: None,
            clean_close: false,
        };
        handles.push(tokio::task::spawn_local(play(opts)));
        tokio::time::sleep(ramp).await;
    }
    eprintln!(
        "fanout: {players} players started on {}/{}/{}; measuring {window} s after {warmup} s",
        url.addr, url.app, url.stream
    );
    sleep_until(t0.into()).await;
    let cpu0 = pid.as_deref().and_then(cpu_seconds);
    let self_cpu0 = cpu_seconds("self");
    let wall0 = Instant::now();
    let mut rss_peak = 0;
    while Instant::now() + Duration::from_millis(1000) < t1 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        if let Some(rss) = pid.as_deref().and_then(rss_kb) {
            rss_peak = rss_peak.max(rss);
        }
    }
    sleep_until(t1.into()).await;
    let cpu1 = pid.as_deref().and_then(cpu_seconds);
    let self_cpu1 = cpu_seconds("self");
    let wall = wall0.elapsed().as_secs_f64();
    let rss = pid.as_deref().and_then(rss_kb);
    let thread_count = pid.as_deref().and_then(threads);

    let mut reports = Vec::with_capacity(players);
    for handle in handles {
        reports.push(handle.await.unwrap_or_default());
    }
    let expected = window * fps;
    let connected = reports.iter().filter(|r| r.play_accepted).count();
    let got_data = reports
        .iter()
        .filter(|r| r.video_frames_in_window > 0 && r.bytes_in_window > 0)
        .count();
    let ok90 = reports
        .iter()
        .filter(|r| player_ok(r) && r.video_frames_in_window as f64 >= 0.9 * expected)
        .count();
    let frames = sorted(
        reports
            .iter()
            .map(|r| r.video_frames_in_window as f64)
            .collect(),
    );
    let bytes_window: u64 = reports.iter().map(|r| r.bytes_in_window).sum();
    let errors = reports.iter().filter(|r| r.error.is_some()).count();

    emit("players", players);
    emit("connected", connected);
    emit("got_data", got_data);
    emit("ok90", ok90);
    emit(
        "ok90_frac",
        format!("{:.3}", ok90 as f64 / players.max(1) as f64),
    );
    emit("expected_frames", format!("{expected:.0}"));
    emit("frames_min", frames.first().copied().unwrap_or(0.0));
    emit("frames_median", percentile(&frames, 50.0));
    emit("errors", errors);
    emit(
        "delivered_mbps",
        format!("{:.1}", bytes_window as f64 * 8.0 / wall / 1e6),
    );
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        let cpu = c1 - c0;
        emit("server_cpu_pct", format!("{:.1}", cpu / wall * 100.0));
        // CPU per delivered data: fair even if one server delivered less than the other.
        if bytes_window > 0 {
            emit(
                "server_cpu_ms_per_gb",
                format!("{:.0}", cpu * 1000.0 / (bytes_window as f64 / 1e9)),
            );
        }
    }
    if let Some(rss) = rss {
        emit("server_rss_kb", rss);
        emit("server_rss_peak_kb", rss_peak.max(rss));
    }
    if let Some(t) = thread_count {
        emit("server_threads", t);
    }
    if let (Some(c0), Some(c1)) = (self_cpu0, self_cpu1) {
        emit("client_cpu_pct", format!("{:.1}", (c1 - c0) / wall * 100.0));
    }
    if let Some(e) = first_error(reports.iter()) {
        eprintln!("fanout: player errors: {e}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ttff

async fn ttff(url: &str, joins: usize, spacing: Duration) -> Result<()> {
    let http = url.starts_with("http://");
    let rtmp = if http {
        None
    } else {
        Some(parse_rtmp_url(url)?)
    };
    let http_target = if http {
        Some(parse_http_url(url)?)
    } else {
        None
    };
    let mut handles = Vec::with_capacity(joins);
    for i in 0..joins {
        if let Some(url) = rtmp.clone() {
            let opts = PlayOptions {
                url,
                until: None,
                until_keyframe: true,
                hold: Duration::ZERO,
                timeout: Duration::from_secs(10),
                window: Window::default(),
                sent: None,
                clean_close: i % 2 == 0,
            };
            handles.push(tokio::task::spawn_local(async move {
                let r = play(opts).await;
                match (r.first_keyframe, r.error) {
                    (Some(k), _) => Ok((k, r.first_video.unwrap_or(k))),
                    (None, e) => Err(e.unwrap_or_else(|| "no keyframe".into())),
                }
            }));
        } else if let Some((host, path)) = http_target.clone() {
            handles.push(tokio::task::spawn_local(async move {
                match tokio::time::timeout(Duration::from_secs(10), flv_join(&host, &path)).await {
                    Ok(Ok(t)) => Ok(t),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no keyframe within 10 s".to_string()),
                }
            }));
        }
        tokio::time::sleep(spacing).await;
    }
    let mut keyframe = Vec::new();
    let mut video = Vec::new();
    let mut errors = Vec::new();
    for handle in handles {
        match handle.await {
            Ok(Ok((k, v))) => {
                keyframe.push(k.as_secs_f64() * 1000.0);
                video.push(v.as_secs_f64() * 1000.0);
            }
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let keyframe = sorted(keyframe);
    let video = sorted(video);
    emit("joins", joins);
    emit("ok", keyframe.len());
    for (name, values) in [("keyframe", &keyframe), ("video", &video)] {
        for (label, p) in [("median", 50.0), ("p95", 95.0), ("max", 100.0)] {
            emit(
                &format!("{name}_ms_{label}"),
                format!("{:.1}", percentile(values, p)),
            );
        }
    }
    if let Some(e) = errors.first() {
        eprintln!("ttff: {} join(s) failed, e.g. {e}", errors.len());
    }
    Ok(())
}

/// One HTTP-FLV join: (time to first video keyframe tag, time to first video tag).
async fn flv_join(host: &str, path: &str) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(host).await?;
    stream.set_nodelay(true)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rtmp_load\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; READ_BUF];
    let mut head = Vec::new();
    let (chunked, mut body) = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err("server closed before the response head".into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
            let status = text.split_whitespace().nth(1).unwrap_or("");
            if status != "200" {
                return Err(format!("HTTP status {status}").into());
            }
            let chunked = text.contains("transfer-encoding: chunked");
            break (chunked, head[end + 4..].to_vec());
        }
    };
    let mut dechunk = Dechunker::default();
    let mut flv = FlvReader::default();
    let mut first_video = None;
    loop {
        let data = if chunked {
            dechunk.feed(&body)?
        } else {
            std::mem::take(&mut body)
        };
        let now = started.elapsed();
        for (kind, first) in flv.feed(&data)? {
            if kind != 9 || is_video_sequence_header(&first) {
                continue;
            }
            let video = *first_video.get_or_insert(now);
            if is_video_keyframe(&first) {
                return Ok((now, video));
            }
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err("server closed before a keyframe".into());
        }
        body = buf[..n].to_vec();
    }
}

/// HTTP/1.1 chunked transfer decoding, incremental.
#[derive(Default)]
struct Dechunker {
    buf: Vec<u8>,
    /// Bytes left in the current chunk's data (then its CRLF).
    remaining: usize,
}

impl Dechunker {
    fn feed(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            if self.remaining > 0 {
                let take = self.remaining.min(self.buf.len() - pos);
                out.extend_from_slice(&self.buf[pos..pos + take]);
                pos += take;
                self.remaining -= take;
                if self.remaining > 0 {
                    break;
                }
                // The data's trailing CRLF is skipped with the next size line.
            }
            let rest = &self.buf[pos..];
            let rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
            let skipped = self.buf.len() - pos - rest.len();
            let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let line = String::from_utf8_lossy(&rest[..eol]);
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                return Err("the HTTP-FLV body ended".into());
            }
            pos += skipped + eol + 2;
            self.remaining = size;
        }
        self.buf.drain(..pos);
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// latency

async fn latency(
    publish: &str,
    play_url: &str,
    media: &PathBuf,
    players: usize,
    warmup: f64,
    window: f64,
    pid: Option<u32>,
) -> Result<()> {
    let publish = parse_rtmp_url(publish)?;
    let play_url = parse_rtmp_url(play_url)?;
    let tags = Rc::new(read_flv_file(media)?);
    let mut seen = HashSet::new();
    let mut ambiguous = HashSet::new();
    for tag in tags.iter().filter(|t| t.kind == 9) {
        if !seen.insert(body_hash(&tag.body)) {
            ambiguous.insert(body_hash(&tag.body));
        }
    }
    let ambiguous = Rc::new(ambiguous);
    let sent: SentLog = Rc::new(RefCell::new(HashMap::new()));

    let publisher_ready = Rc::new(tokio::sync::Notify::new());
    let stop = Rc::new(RefCell::new(false));
    let publisher = tokio::task::spawn_local(run_publisher(
        publish.clone(),
        tags.clone(),
        sent.clone(),
        publisher_ready.clone(),
        stop.clone(),
    ));
    tokio::select! {
        _ = publisher_ready.notified() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            return Err("publisher not accepted within 10 s".into());
        }
    }
    // Let a keyframe through so players join a live stream, as a viewer would.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let t0 = Instant::now() + Duration::from_secs_f64(warmup);
    let t1 = t0 + Duration::from_secs_f64(window);
    let win = Window {
        start: Some(t0),
        end: Some(t1),
    };
    let mut handles = Vec::new();
    for _ in 0..players {
        let opts = PlayOptions {
            url: play_url.clone(),
            until: Some(t1 + Duration::from_millis(500)),
            until_keyframe: false,
            hold: Duration::ZERO,
            timeout: Duration::from_secs(3600),
            window: win,
            sent: Some((sent.clone(), ambiguous.clone())),
            clean_close: false,
        };
        handles.push(tokio::task::spawn_local(play(opts)));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sleep_until(t0.into()).await;
    let cpu0 = pid.map(|p| p.to_string()).as_deref().and_then(cpu_seconds);
    sleep_until(t1.into()).await;
    let cpu1 = pid.map(|p| p.to_string()).as_deref().and_then(cpu_seconds);
    let mut reports = Vec::new();
    for handle in handles {
        reports.push(handle.await.unwrap_or_default());
    }
    *stop.borrow_mut() = true;
    let published = match publisher.await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return Err(format!("publisher: {e}").into()),
        Err(e) => return Err(format!("publisher task: {e}").into()),
    };
    let delays = sorted(
        reports
            .iter()
            .flat_map(|r| r.delays_ms.iter().copied())
            .collect(),
    );
    let ok = reports.iter().filter(|r| !r.delays_ms.is_empty()).count();
    emit("players", players);
    emit("players_measured", ok);
    emit("published_video_frames", published);
    emit("samples", delays.len());
    emit(
        "delay_ms_median",
        format!("{:.1}", percentile(&delays, 50.0)),
    );
    emit("delay_ms_p95", format!("{:.1}", percentile(&delays, 95.0)));
    emit("delay_ms_p99", format!("{:.1}", percentile(&delays, 99.0)));
    emit("delay_ms_max", format!("{:.1}", percentile(&delays, 100.0)));
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        emit(
            "server_cpu_pct",
            format!("{:.1}", (c1 - c0) / window * 100.0),
        );
    }
    if let Some(e) = first_error(reports.iter()) {
        eprintln!("latency: player errors: {e}");
    }
    Ok(())
}

/// Publishes `tags` in a loop at real time until `stop`; returns the video frames written.
async fn run_publisher(
    url: RtmpUrl,
    tags: Rc<Vec<FlvTag>>,
    sent: SentLog,
    ready: Rc<tokio::sync::Notify>,
    stop: Rc<RefCell<bool>>,
) -> Result<u64> {
    let (mut conn, pending) = RtmpConn::open(&url).await?;
    conn.connect_app(&url, pending).await?;
    let request = conn
        .session
        .request_publishing(url.stream.clone(), PublishRequestType::Live)
        .map_err(|e| format!("publish: {e:?}"))?;
    conn.write_result(request).await?;
    'accept: loop {
        let events = conn
            .read_events()
            .await?
            .ok_or("server closed before accepting the publish")?;
        for event in events {
            if event == ClientSessionEvent::PublishRequestAccepted {
                break 'accept;
            }
        }
    }
    let mut metadata = StreamMetadata::new();
    metadata.video_width = Some(640);
    metadata.video_height = Some(360);
    metadata.video_codec_id = Some(7);
    metadata.video_frame_rate = Some(30.0);
    metadata.audio_codec_id = Some(10);
    let packet = conn
        .session
        .publish_metadata(&metadata)
        .map_err(|e| format!("metadata: {e:?}"))?;
    conn.write_result(packet).await?;
    ready.notify_one();

    let loop_len = tags.iter().map(|t| t.timestamp).max().unwrap_or(0) + 34;
    let started = Instant::now();
    let mut video_written = 0u64;
    let mut lap = 0u32;
    let mut read_buf = vec![0u8; READ_BUF];
    loop {
        for tag in tags.iter() {
            let headers = (tag.kind == 9 && is_video_sequence_header(&tag.body))
                || (tag.kind == 8 && is_audio_sequence_header(&tag.body));
            if tag.kind == 18 || (lap > 0 && headers) {
                continue;
            }
            let ts = tag.timestamp + lap * loop_len;
            let due = started + Duration::from_millis(u64::from(ts));
            // Keep reading (acks, pings) while waiting so the server never stalls on us.
            loop {
                tokio::select! {
                    _ = sleep_until(due.into()) => break,
                    n = conn.stream.read(&mut read_buf) => {
                        let n = n?;
                        if n == 0 {
                            return Err("server closed the publishing connection".into());
                        }
                        let data = read_buf[..n].to_vec();
                        conn.process(&data).await?;
                    }
                }
            }
            if *stop.borrow() {
                return Ok(video_written);
            }
            let timestamp = RtmpTimestamp::new(ts);
            let result = if tag.kind == 9 {
                conn.session
                    .publish_video_data(tag.body.clone(), timestamp, false)
            } else {
                conn.session
                    .publish_audio_data(tag.body.clone(), timestamp, false)
            }
            .map_err(|e| format!("media: {e:?}"))?;
            if tag.kind == 9 {
                sent.borrow_mut()
                    .insert(body_hash(&tag.body), Instant::now());
                video_written += 1;
            }
            conn.write_result(result).await?;
        }
        lap += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// churn

async fn churn(
    url: &str,
    cycles: usize,
    concurrency: usize,
    warm_cycles: usize,
    settle: f64,
    hold: Duration,
    pid: u32,
) -> Result<()> {
    let url = parse_rtmp_url(url)?;
    let pid = pid.to_string();
    let failures = run_cycles(&url, warm_cycles, concurrency, hold).await;
    tokio::time::sleep(Duration::from_secs_f64(settle)).await;
    let rss0 = rss_kb(&pid).ok_or("server process gone")?;
    let fds0 = open_fds(&pid).unwrap_or(0);
    let started = Instant::now();
    let failures = failures + run_cycles(&url, cycles, concurrency, hold).await;
    let elapsed = started.elapsed().as_secs_f64();
    let rss1 = rss_kb(&pid).ok_or("server process gone")?;
    tokio::time::sleep(Duration::from_secs_f64(settle)).await;
    let rss2 = rss_kb(&pid).ok_or("server process gone")?;
    let fds2 = open_fds(&pid).unwrap_or(0);
    emit("cycles", cycles);
    emit("failed", failures);
    emit("seconds", format!("{elapsed:.1}"));
    emit("rss_before_kb", rss0);
    emit("rss_after_kb", rss1);
    emit("rss_settled_kb", rss2);
    emit("rss_growth_kb", rss2 as i64 - rss0 as i64);
    emit("fds_before", fds0);
    emit("fds_after", fds2);
    Ok(())
}

/// `cycles` joins, `concurrency` at a time; each plays until `hold` after its first keyframe,
/// then leaves (every other one politely with deleteStream, the rest by dropping the socket,
/// usually with data still in flight).
async fn run_cycles(url: &RtmpUrl, cycles: usize, concurrency: usize, hold: Duration) -> usize {
    let next = Rc::new(RefCell::new(0usize));
    let failures = Rc::new(RefCell::new(0usize));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        let failures = failures.clone();
        let url = url.clone();
        workers.push(tokio::task::spawn_local(async move {
            loop {
                let i = {
                    let mut n = next.borrow_mut();
                    if *n >= cycles {
                        break;
                    }
                    *n += 1;
                    *n
                };
                let report = play(PlayOptions {
                    url: url.clone(),
                    until: None,
                    until_keyframe: true,
                    hold,
                    timeout: Duration::from_secs(5) + hold,
                    window: Window::default(),
                    sent: None,
                    clean_close: i % 2 == 0,
                })
                .await;
                if report.error.is_some() {
                    *failures.borrow_mut() += 1;
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let n = *failures.borrow();
    n
}
