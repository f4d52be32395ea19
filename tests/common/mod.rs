//! Shared harness for Switchboard's end-to-end tests.
//!
//! std + serde_json only. Every integration test file does `mod common;` and
//! uses only part of this module, hence the blanket `dead_code` allowance.
//!
//! # Concurrency (2 cores, shared with builders)
//!
//! Cargo runs integration-test *binaries* one after another; only the tests
//! inside one binary run in parallel (`--test-threads`, default = #CPUs). So the
//! number of e2e tests running at the same time is bounded by the test-thread
//! count of a single binary. `make test` passes `--test-threads=2`. As a second
//! guard (e.g. a plain `cargo test` on a 32-core box, where external tools
//! would otherwise pile up) every e2e test takes a slot from an in-process
//! semaphore, [`heavy_slot`], capped at `SB_E2E_JOBS` (default 2). We chose this
//! over a cross-process lock file because cargo never overlaps test binaries,
//! and a lock file needs stale-lock handling after a SIGKILLed test run.
//!
//! # Environment knobs
//! - `SB_E2E_JOBS`   max concurrent e2e tests per binary (default 2)
//! - `SB_LOG_LEVEL`  server `--level` (default `info`)
//! - `SB_KEEP_TMP`   keep per-test temp dirs (server log, config, outputs)

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use serde_json::Value;

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// `<target>/tmp` (cargo sets it for integration tests).
pub fn target_tmpdir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The cargo target dir (parent of `CARGO_TARGET_TMPDIR`).
pub fn target_dir() -> PathBuf {
    let tmp = target_tmpdir();
    tmp.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn unique_suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A temp directory under `target/tmp`, removed on drop unless `SB_KEEP_TMP`
/// is set or the thread is panicking (so failures leave evidence behind).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = target_tmpdir().join(format!("{prefix}-{}", unique_suffix()));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SB_KEEP_TMP").is_none() && !thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Tiny xorshift PRNG (no `rand` dev-dependency needed).
pub fn pseudo_random_bytes(n: usize) -> Vec<u8> {
    static SEED: AtomicU64 = AtomicU64::new(0);
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(every);
    }
}

/// Sends a signal by name (`INT`, `KILL`, `STOP`, `CONT`, `TERM`) via kill(1).
pub fn send_signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Last `n` lines of a text.
pub fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

// ---------------------------------------------------------------------------
// Concurrency cap
// ---------------------------------------------------------------------------

struct Semaphore {
    used: Mutex<usize>,
    cv: Condvar,
    max: usize,
}

/// Guard for one e2e slot; released on drop.
pub struct HeavySlot {
    sem: &'static Semaphore,
}

impl Drop for HeavySlot {
    fn drop(&mut self) {
        let mut used = self.sem.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        self.sem.cv.notify_one();
    }
}

/// Takes one of `SB_E2E_JOBS` (default 2) e2e slots of this test binary.
/// Every test that starts a server should hold one for its whole body.
pub fn heavy_slot() -> HeavySlot {
    static SEM: OnceLock<Semaphore> = OnceLock::new();
    let sem = SEM.get_or_init(|| Semaphore {
        used: Mutex::new(0),
        cv: Condvar::new(),
        max: std::env::var("SB_E2E_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(2),
    });
    let mut used = sem.used.lock().unwrap_or_else(|e| e.into_inner());
    while *used >= sem.max {
        used = sem.cv.wait(used).unwrap_or_else(|e| e.into_inner());
    }
    *used += 1;
    HeavySlot { sem }
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// A free loopback TCP port (bind 127.0.0.1:0, read, drop). Ports handed out
/// earlier in this process are never handed out again.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        drop(l);
        if given.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
    panic!("could not find a free port");
}

/// True if something accepts TCP on 127.0.0.1:port.
pub fn port_accepts(port: u16) -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

// ---------------------------------------------------------------------------
// Test media
// ---------------------------------------------------------------------------

fn ensure_media(name: &str, ffmpeg_args: &[&str]) -> PathBuf {
    let dir = target_dir().join("test-media");
    let target = dir.join(name);
    if target.exists() {
        return target;
    }
    fs::create_dir_all(&dir).expect("create target/test-media");
    // Unique temp name + rename: parallel test processes never see a partial file.
    let tmp = dir.join(format!("{name}.tmp-{}", unique_suffix()));
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(ffmpeg_args)
        .arg(&tmp)
        .stdin(Stdio::null())
        .output()
        .expect("spawn ffmpeg (is ffmpeg installed? run `make deps`)");
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!(
            "generating test media {name} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fs::rename(&tmp, &target).expect("rename test media into place");
    target
}

/// 10 s of 640x360@30 H.264 (1 s GOP, no B-frames) + 44.1 kHz AAC in FLV.
/// Encoded once per target dir, then reused by every test and run.
pub fn test_media() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        ensure_media(
            "av640.flv",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100",
                "-t",
                "10",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-g",
                "30",
                "-keyint_min",
                "30",
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-b:v",
                "800k",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
                "-f",
                "flv",
            ],
        )
    })
    .clone()
}

/// 10 s of 440 Hz AAC only, FLV.
pub fn test_media_audio_only() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        ensure_media(
            "a440.flv",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100",
                "-t",
                "10",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
                "-f",
                "flv",
            ],
        )
    })
    .clone()
}

/// 3 s of 1280x720 lossless H.264 over noise at 5 fps: keyframes of about 1.5 MB each, far
/// past livego's 500 KB message limit (encoded once per run).
pub fn test_media_huge_keyframes() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        ensure_media(
            "huge720.flv",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=5,noise=alls=60:allf=t",
                "-t",
                "3",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-qp",
                "0",
                "-g",
                "5",
                "-f",
                "flv",
            ],
        )
    })
    .clone()
}

// ---------------------------------------------------------------------------
// Child processes with captured output
// ---------------------------------------------------------------------------

/// A child process whose stdout/stderr are drained by threads into memory.
/// Killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// Last `frame=N` seen on stdout (`ffmpeg -progress pipe:1`).
    frames: Arc<AtomicU64>,
    readers: Vec<thread::JoinHandle<()>>,
    status: Option<ExitStatus>,
    exited_at: Option<Instant>,
    /// Set by `run_with_timeout` when the hard timeout killed it.
    pub timed_out: bool,
}

fn drain<R: Read + Send + 'static>(
    r: R,
    sink: Arc<Mutex<String>>,
    frames: Option<Arc<AtomicU64>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let s = String::from_utf8_lossy(&line);
                    if let Some(f) = &frames {
                        if let Some(v) = s.trim().strip_prefix("frame=") {
                            if let Ok(n) = v.trim().parse::<u64>() {
                                f.store(n, Ordering::Relaxed);
                            }
                        }
                    }
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&s);
                }
            }
        }
    })
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e} (run `make deps`?)"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let frames = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        if let Some(o) = child.stdout.take() {
            readers.push(drain(o, stdout.clone(), Some(frames.clone())));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(drain(e, stderr.clone(), None));
        }
        Proc {
            name: name.to_string(),
            child,
            started: Instant::now(),
            stdout,
            stderr,
            frames,
            readers,
            status: None,
            exited_at: None,
            timed_out: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn started(&self) -> Instant {
        self.started
    }
    pub fn exited_at(&self) -> Option<Instant> {
        self.exited_at
    }
    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Latest `frame=` value reported via `-progress pipe:1`.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    fn join_readers(&mut self) {
        for h in self.readers.drain(..) {
            let _ = h.join();
        }
    }

    /// Non-blocking: exit status if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
                self.exited_at = Some(Instant::now());
                self.join_readers();
            }
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for exit (polling every 10 ms).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_status() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.status = Some(st);
                self.exited_at = Some(Instant::now());
            }
            self.join_readers();
        }
        self.status
    }

    pub fn signal(&self, sig: &str) {
        if self.status.is_none() {
            send_signal(self.pid(), sig);
        }
    }

    /// Writes to the child's stdin (e.g. `q` to ffmpeg).
    pub fn write_stdin(&mut self, data: &[u8]) {
        if let Some(i) = self.child.stdin.as_mut() {
            let _ = i.write_all(data);
            let _ = i.flush();
        }
    }

    /// A one-paragraph description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {}) status={:?}\n--- stderr (tail) ---\n{}",
            self.name,
            self.pid(),
            self.status,
            tail_lines(&self.stderr(), 30)
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a command to completion with a hard timeout (killed after it).
/// Returns the finished `Proc` (`timed_out` tells whether it was killed).
pub fn run_with_timeout(name: &str, cmd: &mut Command, timeout: Duration) -> Proc {
    let mut p = Proc::spawn(name, cmd);
    if p.wait_timeout(timeout).is_none() {
        p.kill();
        p.timed_out = true;
    }
    p
}

// ---------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------

/// Default config written for each test server (livego-style app list).
pub const DEFAULT_CONFIG: &str = r#"[[server]]
appname = "live"
live = true
hls = true
flv = true
api = true
"#;

/// A running `switchboard` with all listeners on free loopback ports.
pub struct Server {
    child: Option<Child>,
    pub rtmp_port: u16,
    pub flv_port: u16,
    pub hls_port: u16,
    pub api_port: u16,
    pub args: Vec<String>,
    log_path: PathBuf,
    dir: TempDir,
}

impl Server {
    /// Starts the server with the default config plus `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with_config(DEFAULT_CONFIG, extra)
    }

    /// Starts the server with `config` (TOML text) plus `extra` flags. Waits
    /// (≤ 20 s) until the RTMP and API ports accept TCP. Retries with fresh
    /// ports if the server exits early complaining about a taken address.
    pub fn start_with_config(config: &str, extra: &[&str]) -> Server {
        let mut last_err = String::new();
        for attempt in 0..3 {
            match Server::try_start(config, extra) {
                Ok(s) => return s,
                Err((msg, retry)) => {
                    last_err = msg;
                    if !retry {
                        break;
                    }
                    eprintln!("server start attempt {attempt} failed (address in use?), retrying");
                }
            }
        }
        panic!("{last_err}");
    }

    fn try_start(config: &str, extra: &[&str]) -> Result<Server, (String, bool)> {
        let dir = TempDir::new("server");
        let cfg = dir.join("config.toml");
        fs::write(&cfg, config).expect("write config");
        let log_path = dir.join("server.log");
        let log = File::create(&log_path).expect("create server log");
        let (rtmp_port, flv_port, hls_port, api_port) =
            (free_port(), free_port(), free_port(), free_port());
        let level = std::env::var("SB_LOG_LEVEL").unwrap_or_else(|_| "info".into());
        let mut args = vec![
            format!("--config_file={}", cfg.display()),
            format!("--rtmp_addr=127.0.0.1:{rtmp_port}"),
            format!("--httpflv_addr=127.0.0.1:{flv_port}"),
            format!("--hls_addr=127.0.0.1:{hls_port}"),
            format!("--api_addr=127.0.0.1:{api_port}"),
            format!("--level={level}"),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log fd")))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| (format!("spawn switchboard: {e}"), false))?;
        let mut server = Server {
            child: Some(child),
            rtmp_port,
            flv_port,
            hls_port,
            api_port,
            args,
            log_path,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                server.child = None;
                let log = server.log();
                let retry = log.contains("in use") || log.contains("AddrInUse");
                return Err((
                    format!(
                        "switchboard exited during startup ({st}); args {:?}\n--- server log ---\n{}",
                        server.args,
                        tail_lines(&log, 80)
                    ),
                    retry,
                ));
            }
            if port_accepts(rtmp_port) && port_accepts(api_port) {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                let msg = format!(
                    "switchboard did not accept on rtmp {rtmp_port} and api {api_port} within 20 s; args {:?}\n--- server log ---\n{}",
                    server.args,
                    tail_lines(&server.log(), 80)
                );
                return Err((msg, false));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Number of entries in /proc/<pid>/fd.
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// `fd -> link target` lines, for leak diagnostics.
    pub fn fd_listing(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| {
                        let t = fs::read_link(e.path())
                            .map(|p| p.display().to_string())
                            .unwrap_or_default();
                        format!("{} -> {t}", e.file_name().to_string_lossy())
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The whole server log (stdout+stderr) so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    /// The per-server temp dir (config, log); tests may put outputs here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Panics (with the log) if the server process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(st) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "switchboard died ({st})\n--- server log ---\n{}",
                tail_lines(&self.log(), 80)
            );
        }
    }

    pub fn rtmp_url(&self, path: &str) -> String {
        format!(
            "rtmp://127.0.0.1:{}/{}",
            self.rtmp_port,
            path.trim_start_matches('/')
        )
    }
    /// Publish URL `rtmp://…/live/<key>`.
    pub fn publish_url(&self, key: &str) -> String {
        self.rtmp_url(&format!("live/{key}"))
    }
    /// RTMP play URL `rtmp://…/live/<room>`.
    pub fn play_url(&self, room: &str) -> String {
        self.rtmp_url(&format!("live/{room}"))
    }
    /// HTTP-FLV URL `http://…/live/<room>.flv`.
    pub fn flv_url(&self, room: &str) -> String {
        format!("http://127.0.0.1:{}/live/{room}.flv", self.flv_port)
    }
    pub fn api_url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.api_port, path_and_query)
    }

    /// Channel key for `room` via `/control/get`.
    pub fn key(&self, room: &str) -> String {
        get_key(self.api_port, room)
    }

    /// Waits until `GET /live/<room>.flv` answers 200 (stream is playable).
    pub fn wait_live(&self, room: &str, timeout: Duration) {
        let url = self.flv_url(room);
        let mut last = String::new();
        let ok = poll_until(
            timeout,
            Duration::from_millis(100),
            || match HttpStream::open(&url, Duration::from_secs(3)) {
                Ok(s) if s.status == 200 => Some(()),
                Ok(s) => {
                    last = format!("status {}", s.status);
                    None
                }
                Err(e) => {
                    last = format!("error {e}");
                    None
                }
            },
        );
        if ok.is_none() {
            panic!(
                "room {room} not live on HTTP-FLV within {timeout:?} (last: {last})\n--- server log ---\n{}",
                tail_lines(&self.log(), 60)
            );
        }
    }

    /// Waits until `GET /live/<room>.flv` answers 404 (stream gone).
    pub fn wait_gone(&self, room: &str, timeout: Duration) -> bool {
        let url = self.flv_url(room);
        poll_until(
            timeout,
            Duration::from_millis(100),
            || match HttpStream::open(&url, Duration::from_secs(3)) {
                Ok(s) if s.status == 404 => Some(()),
                _ => None,
            },
        )
        .is_some()
    }
}

impl Server {
    /// SIGTERM the server and wait for it to exit (`None` if it did not within `timeout`; it
    /// is then killed). The server is gone afterwards, so dropping it checks nothing.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        send_signal(child.id(), "TERM");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let died = child.try_wait().ok().flatten();
        let _ = child.kill();
        let _ = child.wait();
        if thread::panicking() {
            eprintln!(
                "--- switchboard log ({}; args {:?}) ---\n{}\n--- end of switchboard log ---",
                self.log_path.display(),
                self.args,
                tail_lines(&self.log(), 150)
            );
        } else if let Some(st) = died {
            panic!(
                "switchboard exited during the test ({st})\n--- server log ---\n{}",
                tail_lines(&self.log(), 80)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Publishers, players, probes
// ---------------------------------------------------------------------------

/// `ffmpeg -re -stream_loop -1 -i <media> -c copy -f flv <url>`.
/// `-nostdin`: stop it with SIGINT (`proc.signal("INT")`, a clean unpublish)
/// or SIGKILL (`proc.kill()`).
pub fn ffmpeg_publisher(media: &Path, url: &str) -> Proc {
    Proc::spawn(
        &format!("ffmpeg publisher -> {url}"),
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
            ])
            .arg(media)
            .args(["-c", "copy", "-f", "flv"])
            .arg(url),
    )
}

/// One-shot ffmpeg publish of the first `secs` seconds of `media`; `realtime`
/// adds `-re`. Exits on its own.
pub fn ffmpeg_publish_once(media: &Path, url: &str, secs: f64, realtime: bool) -> Proc {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"]);
    if realtime {
        cmd.arg("-re");
    }
    cmd.arg("-i")
        .arg(media)
        .args(["-t", &secs.to_string(), "-c", "copy", "-f", "flv"])
        .arg(url);
    Proc::spawn(&format!("ffmpeg publish-once -> {url}"), &mut cmd)
}

/// GStreamer re-mux (no encoding) of `media` to `url` through rtmp2sink.
/// Plays the 10 s file once in real time (sinks sync to the clock).
pub fn gst_publisher(media: &Path, url: &str) -> Proc {
    let pipeline = format!(
        "filesrc location={} ! flvdemux name=d \
         d.video ! queue ! h264parse ! flvmux streamable=true name=m ! rtmp2sink location={url} \
         d.audio ! queue ! aacparse ! m.",
        media.display()
    );
    let args: Vec<&str> = pipeline.split_whitespace().collect();
    Proc::spawn(
        &format!("gst-launch rtmp2sink -> {url}"),
        Command::new("gst-launch-1.0").arg("-q").args(&args),
    )
}

/// Result of a decode run.
#[derive(Debug)]
pub struct Decode {
    pub url: String,
    /// `None` = timed out and killed.
    pub status: Option<ExitStatus>,
    pub frames: u64,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Decode {
    pub fn ok(&self) -> bool {
        self.status.map(|s| s.success()).unwrap_or(false)
    }
    /// Non-empty stderr lines (ffmpeg runs with `-loglevel error`).
    pub fn error_lines(&self) -> Vec<String> {
        self.stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
    pub fn summary(&self) -> String {
        format!(
            "decode {}: status={:?} frames={} elapsed={:.2?} stderr:\n{}",
            self.url,
            self.status,
            self.frames,
            self.elapsed,
            tail_lines(&self.stderr, 20)
        )
    }
}

/// A running `ffmpeg -xerror -i <url> [-t secs] -f null -` decoder. Video
/// frames are counted with `-progress pipe:1` (`frame=N` lines on stdout,
/// robust against locale/`\r` stats formatting).
pub struct Decoder {
    pub url: String,
    pub proc: Proc,
}

impl Decoder {
    /// `secs = None` decodes until the stream ends. `rw_timeout` bounds any
    /// single blocked read (ffmpeg's own I/O timeout).
    pub fn spawn(url: &str, secs: Option<f64>, rw_timeout: Duration) -> Decoder {
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "error",
            "-nostdin",
            "-xerror",
        ])
        .args(["-progress", "pipe:1"])
        .args(["-rw_timeout", &rw_timeout.as_micros().to_string()])
        .args(["-i", url]);
        if let Some(s) = secs {
            cmd.args(["-t", &s.to_string()]);
        }
        cmd.args(["-f", "null", "-"]);
        Decoder {
            url: url.to_string(),
            proc: Proc::spawn(&format!("ffmpeg decoder <- {url}"), &mut cmd),
        }
    }

    pub fn frames(&self) -> u64 {
        self.proc.frames()
    }

    /// Waits up to `timeout` (then kills) and returns the result.
    pub fn finish(mut self, timeout: Duration) -> Decode {
        let status = self.proc.wait_timeout(timeout);
        if status.is_none() {
            self.proc.kill();
        }
        let end = self.proc.exited_at().unwrap_or_else(Instant::now);
        Decode {
            url: self.url.clone(),
            status,
            frames: self.proc.frames(),
            stderr: self.proc.stderr(),
            elapsed: end - self.proc.started(),
        }
    }
}

/// `ffmpeg -xerror -i <url> -t <secs> -f null -` with a hard timeout of secs+20.
pub fn decode_frames(url: &str, secs: f64) -> Decode {
    Decoder::spawn(url, Some(secs), Duration::from_secs(10))
        .finish(Duration::from_secs_f64(secs + 20.0))
}

/// `ffprobe -v error -show_streams -of json <url>` (15 s hard timeout).
pub fn ffprobe_json(url: &str) -> Result<Value, String> {
    let mut p = run_with_timeout(
        &format!("ffprobe {url}"),
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-rw_timeout",
                "8000000",
                "-show_streams",
                "-of",
                "json",
            ])
            .arg(url),
        Duration::from_secs(15),
    );
    match p.try_status() {
        Some(st) if st.success() && !p.timed_out => serde_json::from_str(&p.stdout())
            .map_err(|e| format!("ffprobe json parse: {e}: {}", p.stdout())),
        other => Err(format!(
            "ffprobe {url} failed: {other:?} (timed out: {})\n{}",
            p.timed_out,
            p.stderr()
        )),
    }
}

/// What `ffprobe` saw, reduced to what the tests check.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProbeSummary {
    pub video_codec: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub audio_codec: Option<String>,
}

pub fn probe_summary(v: &Value) -> ProbeSummary {
    let mut s = ProbeSummary::default();
    for st in v["streams"].as_array().into_iter().flatten() {
        match st["codec_type"].as_str() {
            Some("video") if s.video_codec.is_none() => {
                s.video_codec = st["codec_name"].as_str().map(str::to_string);
                s.width = st["width"].as_u64();
                s.height = st["height"].as_u64();
            }
            Some("audio") if s.audio_codec.is_none() => {
                s.audio_codec = st["codec_name"].as_str().map(str::to_string);
            }
            _ => {}
        }
    }
    s
}

/// `rtmpdump -r <url> -v -o <out>` (live). `swf_verify` adds `-w <hash> -x 1`,
/// which makes librtmp use the FP9 digest handshake. Stopped with SIGINT
/// after `secs` (rtmpdump then flushes and closes the file); SIGKILL 5 s later.
pub fn rtmpdump(url: &str, out: &Path, secs: f64, swf_verify: bool) -> Proc {
    let mut cmd = Command::new("rtmpdump");
    cmd.args(["-r", url, "-v", "-o"]).arg(out);
    if swf_verify {
        cmd.args(["-w", &"00".repeat(32), "-x", "1"]);
    }
    let mut p = Proc::spawn(&format!("rtmpdump <- {url}"), &mut cmd);
    if p.wait_timeout(Duration::from_secs_f64(secs)).is_none() {
        p.signal("INT");
        if p.wait_timeout(Duration::from_secs(5)).is_none() {
            p.kill();
        }
    }
    p
}

// ---------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------

/// `GET /control/get?room=R` → the channel key (asserts the livego shape).
pub fn get_key(api_port: u16, room: &str) -> String {
    let url = format!("http://127.0.0.1:{api_port}/control/get?room={room}");
    let r = http_get(&url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status, 200, "GET {url}: {}", r.text());
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("GET {url}: bad JSON ({e}): {}", r.text()));
    assert_eq!(v["status"], 200, "GET {url}: {v}");
    v["data"]
        .as_str()
        .unwrap_or_else(|| panic!("GET {url}: data is not a string: {v}"))
        .to_string()
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 client
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.text()))
    }
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// Splits `http://host:port/path?q` into (host:port, /path?q).
fn split_http_url(url: &str) -> io::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "only http:// URLs"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    Ok((hostport, path.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BodyState {
    ChunkSize,
    ChunkData(usize),
    ChunkCrlf,
    Length(usize),
    UntilEof,
    Done,
}

/// How a streamed body ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamEnd {
    /// Terminating zero chunk / full Content-Length seen.
    Clean,
    /// Peer closed (FIN) without a terminating chunk.
    Eof,
    /// Read error such as ECONNRESET.
    Error,
}

/// What one `HttpStream::next` call produced.
#[derive(Debug)]
pub enum HttpEvent {
    Data(Vec<u8>),
    End(StreamEnd),
    Timeout,
}

/// An HTTP/1.1 GET whose (possibly endless, chunked) body is read
/// incrementally with deadlines.
pub struct HttpStream {
    sock: TcpStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// When the request was written.
    pub requested_at: Instant,
    raw: Vec<u8>,
    state: BodyState,
    ended: Option<StreamEnd>,
}

impl HttpStream {
    /// Connects, sends the request and reads the response head (`timeout`
    /// bounds connect + head).
    pub fn open(url: &str, timeout: Duration) -> io::Result<HttpStream> {
        let (hostport, path) = split_http_url(url)?;
        let addr = hostport
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let deadline = Instant::now() + timeout;
        let mut sock = TcpStream::connect_timeout(&addr, timeout)?;
        sock.set_nodelay(true)?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: switchboard-tests\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let requested_at = Instant::now();
        sock.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        let head_end = loop {
            if let Some(i) = find(&raw, b"\r\n\r\n") {
                break i;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out reading response head",
                ));
            }
            sock.set_read_timeout(Some(deadline - now))?;
            let mut buf = [0u8; 16384];
            let n = sock.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed before response head ({} bytes)",
                        raw.len()
                    ),
                ));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        raw.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad status line {status_line:?}"),
                )
            })?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = header_of(&headers, "transfer-encoding")
            .map(|v| v.to_ascii_lowercase().contains("chunked"))
            .unwrap_or(false);
        let state = if chunked {
            BodyState::ChunkSize
        } else if let Some(n) = header_of(&headers, "content-length").and_then(|v| v.parse().ok()) {
            if n == 0 {
                BodyState::Done
            } else {
                BodyState::Length(n)
            }
        } else {
            BodyState::UntilEof
        };
        let ended = if state == BodyState::Done {
            Some(StreamEnd::Clean)
        } else {
            None
        };
        Ok(HttpStream {
            sock,
            status,
            headers,
            requested_at,
            raw,
            state,
            ended,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }

    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .map(|v| v.to_ascii_lowercase().contains("chunked"))
            .unwrap_or(false)
    }

    pub fn ended(&self) -> Option<StreamEnd> {
        self.ended
    }

    /// Decodes what is buffered; returns body bytes (possibly empty).
    fn decode(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            match self.state {
                BodyState::ChunkSize => {
                    let Some(i) = find(&self.raw, b"\r\n") else {
                        break;
                    };
                    let line = String::from_utf8_lossy(&self.raw[..i]).into_owned();
                    self.raw.drain(..i + 2);
                    let hex = line.split(';').next().unwrap_or("").trim();
                    match usize::from_str_radix(hex, 16) {
                        Ok(0) => {
                            self.state = BodyState::Done;
                            self.ended = Some(StreamEnd::Clean);
                        }
                        Ok(n) => self.state = BodyState::ChunkData(n),
                        Err(_) => {
                            self.state = BodyState::Done;
                            self.ended = Some(StreamEnd::Error);
                        }
                    }
                }
                BodyState::ChunkData(n) => {
                    if self.raw.is_empty() {
                        break;
                    }
                    let take = n.min(self.raw.len());
                    out.extend(self.raw.drain(..take));
                    self.state = if take == n {
                        BodyState::ChunkCrlf
                    } else {
                        BodyState::ChunkData(n - take)
                    };
                }
                BodyState::ChunkCrlf => {
                    if self.raw.len() < 2 {
                        break;
                    }
                    self.raw.drain(..2);
                    self.state = BodyState::ChunkSize;
                }
                BodyState::Length(n) => {
                    if self.raw.is_empty() {
                        break;
                    }
                    let take = n.min(self.raw.len());
                    out.extend(self.raw.drain(..take));
                    if take == n {
                        self.state = BodyState::Done;
                        self.ended = Some(StreamEnd::Clean);
                    } else {
                        self.state = BodyState::Length(n - take);
                    }
                }
                BodyState::UntilEof => {
                    out.append(&mut self.raw);
                    break;
                }
                BodyState::Done => break,
            }
        }
        out
    }

    /// Next piece of body, the end of the body, or `Timeout` at `deadline`.
    pub fn next(&mut self, deadline: Instant) -> HttpEvent {
        loop {
            let data = self.decode();
            if !data.is_empty() {
                return HttpEvent::Data(data);
            }
            if let Some(end) = self.ended {
                return HttpEvent::End(end);
            }
            let now = Instant::now();
            if now >= deadline {
                return HttpEvent::Timeout;
            }
            let wait = (deadline - now).min(Duration::from_millis(250));
            if self
                .sock
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                .is_err()
            {
                self.ended = Some(StreamEnd::Error);
                continue;
            }
            let mut buf = [0u8; 65536];
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    self.ended = Some(if self.state == BodyState::UntilEof {
                        StreamEnd::Clean
                    } else {
                        StreamEnd::Eof
                    });
                }
                Ok(n) => self.raw.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => self.ended = Some(StreamEnd::Error),
            }
        }
    }

    /// Reads until `dur` passes, `max_bytes` are collected or the body ends.
    pub fn read_for(&mut self, dur: Duration, max_bytes: usize) -> StreamRead {
        let deadline = Instant::now() + dur;
        let mut body = Vec::new();
        loop {
            if body.len() >= max_bytes {
                return StreamRead { body, end: None };
            }
            match self.next(deadline) {
                HttpEvent::Data(d) => body.extend(d),
                HttpEvent::End(e) => return StreamRead { body, end: Some(e) },
                HttpEvent::Timeout => return StreamRead { body, end: None },
            }
        }
    }

    /// Reads and discards until the body ends; `Some((when, how))` if it
    /// ended before `timeout`.
    pub fn wait_end(&mut self, timeout: Duration) -> Option<(Instant, StreamEnd)> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline) {
                HttpEvent::Data(_) => {}
                HttpEvent::End(e) => return Some((Instant::now(), e)),
                HttpEvent::Timeout => return None,
            }
        }
    }

    /// Closes the connection now.
    pub fn close(self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

#[derive(Debug)]
pub struct StreamRead {
    pub body: Vec<u8>,
    /// `None`: stopped because of the time/byte limit.
    pub end: Option<StreamEnd>,
}

/// A complete GET (10 s deadline). Not for endless streams: use `HttpStream`.
pub fn http_get(url: &str) -> io::Result<HttpResponse> {
    http_get_timeout(url, Duration::from_secs(10))
}

pub fn http_get_timeout(url: &str, timeout: Duration) -> io::Result<HttpResponse> {
    let deadline = Instant::now() + timeout;
    let mut s = HttpStream::open(url, timeout)?;
    let mut body = Vec::new();
    loop {
        match s.next(deadline) {
            HttpEvent::Data(d) => body.extend(d),
            HttpEvent::End(_) => break,
            HttpEvent::Timeout => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "GET {url}: body not finished within {timeout:?} ({} bytes)",
                        body.len()
                    ),
                ))
            }
        }
    }
    Ok(HttpResponse {
        status: s.status,
        headers: s.headers.clone(),
        body,
    })
}

/// Reads an endless (chunked) body for at most `dur` or `max_bytes`.
pub fn http_stream_for(
    url: &str,
    dur: Duration,
    max_bytes: usize,
) -> io::Result<(HttpStream, StreamRead)> {
    let mut s = HttpStream::open(url, Duration::from_secs(5))?;
    let r = s.read_for(dur, max_bytes);
    Ok((s, r))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// FLV
// ---------------------------------------------------------------------------

pub const FLV_AUDIO: u8 = 8;
pub const FLV_VIDEO: u8 = 9;
pub const FLV_SCRIPT: u8 = 18;

#[derive(Debug, Clone)]
pub struct FlvTag {
    pub tag_type: u8,
    /// Milliseconds, with the extended byte applied.
    pub timestamp: u32,
    pub body: Vec<u8>,
}

impl FlvTag {
    pub fn is_video(&self) -> bool {
        self.tag_type == FLV_VIDEO
    }
    pub fn is_audio(&self) -> bool {
        self.tag_type == FLV_AUDIO
    }
    /// AVC sequence header (AVCDecoderConfigurationRecord).
    pub fn is_avc_seq_header(&self) -> bool {
        self.is_video() && self.body.len() >= 2 && self.body[0] & 0x0f == 7 && self.body[1] == 0
    }
    /// Video keyframe carrying AVC NALUs (frame type 1, AVCPacketType 1).
    pub fn is_avc_keyframe(&self) -> bool {
        self.is_video() && self.body.len() >= 2 && self.body[0] >> 4 == 1 && self.body[1] == 1
    }
    /// Any video frame with NALUs (AVCPacketType 1).
    pub fn is_avc_nalu(&self) -> bool {
        self.is_video() && self.body.len() >= 2 && self.body[0] & 0x0f == 7 && self.body[1] == 1
    }
    /// AAC sequence header (AudioSpecificConfig).
    pub fn is_aac_seq_header(&self) -> bool {
        self.is_audio() && self.body.len() >= 2 && self.body[0] >> 4 == 10 && self.body[1] == 0
    }
}

/// Incremental FLV parser: feed bytes as they arrive, get whole tags out.
#[derive(Default)]
pub struct FlvParser {
    buf: Vec<u8>,
    header_done: bool,
    /// FLV header flags byte (bit 0 video, bit 2 audio).
    pub header_flags: Option<u8>,
    pub error: Option<String>,
}

impl FlvParser {
    pub fn new() -> FlvParser {
        FlvParser::default()
    }

    pub fn feed(&mut self, data: &[u8]) -> Vec<FlvTag> {
        self.buf.extend_from_slice(data);
        let mut tags = Vec::new();
        if self.error.is_some() {
            return tags;
        }
        if !self.header_done {
            if self.buf.len() < 9 {
                return tags;
            }
            if &self.buf[..3] != b"FLV" {
                self.error = Some(format!("not an FLV header: {:02x?}", &self.buf[..9]));
                return tags;
            }
            let offset =
                u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) as usize;
            if self.buf.len() < offset + 4 {
                return tags;
            }
            self.header_flags = Some(self.buf[4]);
            self.buf.drain(..offset + 4); // header + PreviousTagSize0
            self.header_done = true;
        }
        loop {
            if self.buf.len() < 11 {
                break;
            }
            let tag_type = self.buf[0] & 0x1f;
            let size = u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize;
            let ts = u32::from_be_bytes([self.buf[7], self.buf[4], self.buf[5], self.buf[6]]);
            if self.buf.len() < 11 + size + 4 {
                break;
            }
            let body = self.buf[11..11 + size].to_vec();
            self.buf.drain(..11 + size + 4);
            tags.push(FlvTag {
                tag_type,
                timestamp: ts,
                body,
            });
        }
        tags
    }
}

/// Parses a complete FLV byte string (e.g. an rtmpdump output file).
pub fn parse_flv(data: &[u8]) -> (FlvParser, Vec<FlvTag>) {
    let mut p = FlvParser::new();
    let tags = p.feed(data);
    (p, tags)
}

/// Tags of a live HTTP-FLV body read for `dur`, with per-tag arrival times.
pub struct TimedTags {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub requested_at: Instant,
    pub tags: Vec<(Instant, FlvTag)>,
    pub header_flags: Option<u8>,
    pub parse_error: Option<String>,
    pub end: Option<StreamEnd>,
}

/// Opens `url` and collects FLV tags for `dur` (or until `stop` says so).
pub fn read_flv_tags(
    url: &str,
    dur: Duration,
    mut stop: impl FnMut(&[(Instant, FlvTag)]) -> bool,
) -> io::Result<TimedTags> {
    let mut s = HttpStream::open(url, Duration::from_secs(5))?;
    let mut out = TimedTags {
        status: s.status,
        headers: s.headers.clone(),
        requested_at: s.requested_at,
        tags: Vec::new(),
        header_flags: None,
        parse_error: None,
        end: None,
    };
    if s.status != 200 {
        return Ok(out);
    }
    let deadline = Instant::now() + dur;
    let mut p = FlvParser::new();
    loop {
        match s.next(deadline) {
            HttpEvent::Data(d) => {
                let now = Instant::now();
                for t in p.feed(&d) {
                    out.tags.push((now, t));
                }
                if p.error.is_some() || stop(&out.tags) {
                    break;
                }
            }
            HttpEvent::End(e) => {
                out.end = Some(e);
                break;
            }
            HttpEvent::Timeout => break,
        }
    }
    out.header_flags = p.header_flags;
    out.parse_error = p.error.clone();
    s.close();
    Ok(out)
}

// ---------------------------------------------------------------------------
// Minimal RTMP client (for exact status codes and protocol-level tests)
// ---------------------------------------------------------------------------

/// AMF0 values (the subset RTMP commands use).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf {
    Num(f64),
    Bool(bool),
    Str(String),
    Obj(Vec<(String, Amf)>),
    Null,
    Undefined,
    Array(Vec<Amf>),
}

impl Amf {
    pub fn get(&self, key: &str) -> Option<&Amf> {
        match self {
            Amf::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Amf::Num(n) => Some(*n),
            _ => None,
        }
    }
}

pub fn amf_obj(kv: &[(&str, Amf)]) -> Amf {
    Amf::Obj(kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

pub fn amf_encode(v: &Amf, out: &mut Vec<u8>) {
    fn key(s: &str, out: &mut Vec<u8>) {
        out.extend((s.len() as u16).to_be_bytes());
        out.extend(s.as_bytes());
    }
    match v {
        Amf::Num(n) => {
            out.push(0);
            out.extend(n.to_be_bytes());
        }
        Amf::Bool(b) => {
            out.push(1);
            out.push(*b as u8);
        }
        Amf::Str(s) => {
            out.push(2);
            key(s, out);
        }
        Amf::Obj(kv) => {
            out.push(3);
            for (k, v) in kv {
                key(k, out);
                amf_encode(v, out);
            }
            out.extend([0, 0, 9]);
        }
        Amf::Null => out.push(5),
        Amf::Undefined => out.push(6),
        Amf::Array(items) => {
            out.push(10);
            out.extend((items.len() as u32).to_be_bytes());
            for i in items {
                amf_encode(i, out);
            }
        }
    }
}

/// Decodes a sequence of AMF0 values; stops at the first thing it can't read.
pub fn amf_decode_all(mut data: &[u8]) -> Vec<Amf> {
    fn u16be(d: &[u8]) -> Option<usize> {
        Some(u16::from_be_bytes([*d.first()?, *d.get(1)?]) as usize)
    }
    fn u32be(d: &[u8]) -> Option<usize> {
        Some(u32::from_be_bytes(d.get(..4)?.try_into().ok()?) as usize)
    }
    fn string(d: &mut &[u8], long: bool) -> Option<String> {
        let (n, h) = if long { (u32be(d)?, 4) } else { (u16be(d)?, 2) };
        let s = String::from_utf8_lossy(d.get(h..h + n)?).into_owned();
        *d = &d[h + n..];
        Some(s)
    }
    fn props(d: &mut &[u8]) -> Option<Vec<(String, Amf)>> {
        let mut kv = Vec::new();
        loop {
            if d.len() >= 3 && d[..3] == [0, 0, 9] {
                *d = &d[3..];
                return Some(kv);
            }
            let k = string(d, false)?;
            let v = one(d)?;
            kv.push((k, v));
        }
    }
    fn one(d: &mut &[u8]) -> Option<Amf> {
        let t = *d.first()?;
        *d = &d[1..];
        Some(match t {
            0 => {
                let n = f64::from_be_bytes(d.get(..8)?.try_into().ok()?);
                *d = &d[8..];
                Amf::Num(n)
            }
            1 => {
                let b = *d.first()? != 0;
                *d = &d[1..];
                Amf::Bool(b)
            }
            2 => Amf::Str(string(d, false)?),
            3 => Amf::Obj(props(d)?),
            5 => Amf::Null,
            6 => Amf::Undefined,
            8 => {
                *d = d.get(4..)?;
                Amf::Obj(props(d)?)
            }
            10 => {
                let n = u32be(d)?;
                *d = &d[4..];
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(one(d)?);
                }
                Amf::Array(items)
            }
            11 => {
                *d = d.get(10..)?;
                Amf::Num(0.0)
            }
            12 => Amf::Str(string(d, true)?),
            _ => return None,
        })
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        match one(&mut data) {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct RtmpMessage {
    pub type_id: u8,
    pub stream_id: u32,
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

impl RtmpMessage {
    /// AMF0 (20) or AMF3-wrapped (17) command → decoded values.
    pub fn command(&self) -> Option<Vec<Amf>> {
        match self.type_id {
            20 => Some(amf_decode_all(&self.payload)),
            17 if !self.payload.is_empty() => Some(amf_decode_all(&self.payload[1..])),
            _ => None,
        }
    }
}

/// A command reply: name (`_result`, `_error`, `onStatus`) and all values.
#[derive(Debug, Clone)]
pub struct CommandReply {
    pub name: String,
    pub values: Vec<Amf>,
}

impl CommandReply {
    /// The first `code` field of any object in the reply.
    pub fn code(&self) -> Option<String> {
        self.values
            .iter()
            .find_map(|v| v.get("code").and_then(Amf::as_str).map(str::to_string))
    }
    pub fn level(&self) -> Option<String> {
        self.values
            .iter()
            .find_map(|v| v.get("level").and_then(Amf::as_str).map(str::to_string))
    }
}

#[derive(Default, Clone)]
struct ChunkState {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    buf: Vec<u8>,
}

/// A bare-bones RTMP client: simple handshake, AMF0 commands, chunk
/// (de)framing. Enough to read exact status codes and to hold idle sessions.
pub struct RtmpClient {
    pub sock: TcpStream,
    in_chunk_size: usize,
    out_chunk_size: usize,
    chunks: std::collections::HashMap<u32, ChunkState>,
    /// Every message received so far (commands and media).
    pub received: Vec<RtmpMessage>,
    pub app: String,
    pub tc_url: String,
}

fn io_err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

impl RtmpClient {
    /// TCP connect only.
    pub fn connect_tcp(port: u16) -> io::Result<RtmpClient> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(RtmpClient {
            sock,
            in_chunk_size: 128,
            out_chunk_size: 128,
            chunks: Default::default(),
            received: Vec::new(),
            app: String::new(),
            tc_url: String::new(),
        })
    }

    /// Simple (version-0) handshake: C0+C1, read S0+S1+S2, send C2 (= S1).
    pub fn handshake(&mut self) -> io::Result<()> {
        let mut c0c1 = vec![3u8];
        c0c1.extend([0u8; 8]); // time 0, zero field (=> simple handshake)
        c0c1.extend(pseudo_random_bytes(1528));
        self.sock.write_all(&c0c1)?;
        let mut s = vec![0u8; 1 + 1536 * 2];
        self.sock.read_exact(&mut s)?;
        if s[0] != 3 {
            return Err(io_err(format!("S0 version {}", s[0])));
        }
        self.sock.write_all(&s[1..1537])?; // C2 echoes S1
        Ok(())
    }

    /// TCP connect + handshake.
    pub fn open(port: u16) -> io::Result<RtmpClient> {
        let mut c = RtmpClient::connect_tcp(port)?;
        c.handshake()?;
        Ok(c)
    }

    pub fn send_message(
        &mut self,
        csid: u8,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        assert!((2..64).contains(&csid));
        let mut out = Vec::with_capacity(payload.len() + 32);
        out.push(csid); // fmt 0
        out.extend([0, 0, 0]); // timestamp
        out.extend(&(payload.len() as u32).to_be_bytes()[1..]);
        out.push(type_id);
        out.extend(stream_id.to_le_bytes());
        for (i, part) in payload.chunks(self.out_chunk_size).enumerate() {
            if i > 0 {
                out.push(0xC0 | csid); // fmt 3
            }
            out.extend(part);
        }
        self.sock.write_all(&out)
    }

    pub fn send_command(&mut self, csid: u8, stream_id: u32, values: &[Amf]) -> io::Result<()> {
        let mut p = Vec::new();
        for v in values {
            amf_encode(v, &mut p);
        }
        self.send_message(csid, 20, stream_id, &p)
    }

    fn read_exact_buf(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut b = vec![0u8; n];
        self.sock.read_exact(&mut b)?;
        Ok(b)
    }

    /// Reads chunks until one whole message is assembled.
    pub fn read_message(&mut self) -> io::Result<RtmpMessage> {
        loop {
            let b0 = self.read_exact_buf(1)?[0];
            let fmt = b0 >> 6;
            let csid = match b0 & 0x3f {
                0 => 64 + self.read_exact_buf(1)?[0] as u32,
                1 => {
                    let b = self.read_exact_buf(2)?;
                    64 + b[0] as u32 + 256 * b[1] as u32
                }
                n => n as u32,
            };
            let mut st = self.chunks.remove(&csid).unwrap_or_default();
            let starting = st.buf.is_empty();
            match fmt {
                0 => {
                    let h = self.read_exact_buf(11)?;
                    let ts = u32::from_be_bytes([0, h[0], h[1], h[2]]);
                    st.length = u32::from_be_bytes([0, h[3], h[4], h[5]]) as usize;
                    st.type_id = h[6];
                    st.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
                    st.extended = ts == 0xFF_FFFF;
                    st.timestamp = if st.extended {
                        let e = self.read_exact_buf(4)?;
                        u32::from_be_bytes([e[0], e[1], e[2], e[3]])
                    } else {
                        ts
                    };
                    st.delta = 0;
                }
                1 | 2 => {
                    let h = self.read_exact_buf(if fmt == 1 { 7 } else { 3 })?;
                    let d = u32::from_be_bytes([0, h[0], h[1], h[2]]);
                    if fmt == 1 {
                        st.length = u32::from_be_bytes([0, h[3], h[4], h[5]]) as usize;
                        st.type_id = h[6];
                    }
                    st.extended = d == 0xFF_FFFF;
                    st.delta = if st.extended {
                        let e = self.read_exact_buf(4)?;
                        u32::from_be_bytes([e[0], e[1], e[2], e[3]])
                    } else {
                        d
                    };
                    st.timestamp = st.timestamp.wrapping_add(st.delta);
                }
                _ => {
                    if st.extended {
                        self.read_exact_buf(4)?;
                    }
                    if starting {
                        st.timestamp = st.timestamp.wrapping_add(st.delta);
                    }
                }
            }
            let want = (st.length - st.buf.len()).min(self.in_chunk_size);
            let data = self.read_exact_buf(want)?;
            st.buf.extend(data);
            if st.buf.len() >= st.length {
                let payload = std::mem::take(&mut st.buf);
                let msg = RtmpMessage {
                    type_id: st.type_id,
                    stream_id: st.stream_id,
                    timestamp: st.timestamp,
                    payload,
                };
                self.chunks.insert(csid, st);
                if msg.type_id == 1 && msg.payload.len() >= 4 {
                    let n = u32::from_be_bytes([
                        msg.payload[0],
                        msg.payload[1],
                        msg.payload[2],
                        msg.payload[3],
                    ]) & 0x7fff_ffff;
                    self.in_chunk_size = n.max(1) as usize;
                }
                self.received.push(msg.clone());
                return Ok(msg);
            }
            self.chunks.insert(csid, st);
        }
    }

    /// Reads messages until a command named one of `names` (and, if given,
    /// with transaction id `txn`) arrives.
    pub fn wait_command(&mut self, names: &[&str], txn: Option<f64>) -> io::Result<CommandReply> {
        loop {
            let m = self.read_message()?;
            let Some(vals) = m.command() else { continue };
            let Some(name) = vals.first().and_then(Amf::as_str) else {
                continue;
            };
            if !names.contains(&name) {
                continue;
            }
            if let Some(t) = txn {
                if vals.get(1).and_then(Amf::as_num) != Some(t) {
                    continue;
                }
            }
            return Ok(CommandReply {
                name: name.to_string(),
                values: vals,
            });
        }
    }

    /// `connect` to `app`; returns the `_result` / `_error` reply.
    pub fn connect_app(&mut self, app: &str) -> io::Result<CommandReply> {
        let port = self.sock.peer_addr()?.port();
        self.app = app.to_string();
        self.tc_url = format!("rtmp://127.0.0.1:{port}/{app}");
        let cmd = [
            Amf::Str("connect".into()),
            Amf::Num(1.0),
            amf_obj(&[
                ("app", Amf::Str(app.into())),
                ("type", Amf::Str("nonprivate".into())),
                (
                    "flashVer",
                    Amf::Str("FMLE/3.0 (compatible; switchboard-tests)".into()),
                ),
                ("tcUrl", Amf::Str(self.tc_url.clone())),
                ("fpad", Amf::Bool(false)),
                ("capabilities", Amf::Num(15.0)),
                ("audioCodecs", Amf::Num(3191.0)),
                ("videoCodecs", Amf::Num(252.0)),
                ("videoFunction", Amf::Num(1.0)),
            ]),
        ];
        self.send_command(3, 0, &cmd)?;
        self.wait_command(&["_result", "_error"], Some(1.0))
    }

    /// `createStream`; returns the stream id.
    pub fn create_stream(&mut self) -> io::Result<u32> {
        self.send_command(
            3,
            0,
            &[Amf::Str("createStream".into()), Amf::Num(2.0), Amf::Null],
        )?;
        let r = self.wait_command(&["_result", "_error"], Some(2.0))?;
        if r.name != "_result" {
            return Err(io_err(format!("createStream failed: {r:?}")));
        }
        r.values
            .iter()
            .skip(2)
            .find_map(Amf::as_num)
            .map(|n| n as u32)
            .ok_or_else(|| io_err(format!("createStream: no stream id in {r:?}")))
    }

    /// `publish(name, "live")`; returns the first `onStatus` (or `_error`).
    pub fn publish(&mut self, stream_id: u32, name: &str) -> io::Result<CommandReply> {
        self.send_command(
            4,
            stream_id,
            &[
                Amf::Str("publish".into()),
                Amf::Num(3.0),
                Amf::Null,
                Amf::Str(name.into()),
                Amf::Str("live".into()),
            ],
        )?;
        self.wait_command(&["onStatus", "_error"], None)
    }

    /// `play(name)`; returns the first `onStatus` (or `_error`).
    pub fn play(&mut self, stream_id: u32, name: &str) -> io::Result<CommandReply> {
        self.send_command(
            4,
            stream_id,
            &[
                Amf::Str("play".into()),
                Amf::Num(4.0),
                Amf::Null,
                Amf::Str(name.into()),
                Amf::Num(-2.0),
            ],
        )?;
        self.wait_command(&["onStatus", "_error"], None)
    }

    /// connect + createStream + publish; returns the publish onStatus.
    pub fn start_publish(
        port: u16,
        app: &str,
        name: &str,
    ) -> io::Result<(RtmpClient, CommandReply)> {
        let mut c = RtmpClient::open(port)?;
        let r = c.connect_app(app)?;
        if r.name != "_result" {
            return Ok((c, r));
        }
        let sid = c.create_stream()?;
        let r = c.publish(sid, name)?;
        Ok((c, r))
    }

    /// Blocks until the server closes the connection (EOF or error);
    /// returns when, or `None` if still open after `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let _ = self
                .sock
                .set_read_timeout(Some((deadline - now).min(Duration::from_millis(200))));
            match self.sock.read(&mut buf) {
                Ok(0) => return Some(Instant::now()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return Some(Instant::now()),
            }
        }
    }
}

/// All `code`s from onStatus/_error commands received so far.
pub fn status_codes(c: &RtmpClient) -> Vec<String> {
    c.received
        .iter()
        .filter_map(|m| m.command())
        .filter_map(|v| {
            v.iter()
                .find_map(|x| x.get("code").and_then(Amf::as_str).map(str::to_string))
        })
        .collect()
}
