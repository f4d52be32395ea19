//! FLV recording (`flv_archive`, `flv_dir`).

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "flv"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `ffprobe -show_format -show_streams` on a file.
fn probe_file(path: &Path) -> Value {
    let mut p = run_with_timeout(
        "ffprobe recording",
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_format",
                "-show_streams",
                "-of",
                "json",
            ])
            .arg(path),
        Duration::from_secs(20),
    );
    assert!(
        p.try_status().is_some_and(|s| s.success()),
        "ffprobe {}: {}",
        path.display(),
        p.describe()
    );
    serde_json::from_str(&p.stdout()).expect("ffprobe JSON")
}

/// Ten seconds from ffmpeg become `flv_dir/live/<room>_<unix>.flv`: H.264 + AAC, a duration
/// within a second of ten (from the patched metadata), and it decodes without an error.
#[test]
fn records_a_stream_with_patched_duration_and_filesize() {
    let _slot = heavy_slot();
    let media = test_media();
    let out = TempDir::new("recordings");
    let srv = Server::start(&[
        "--flv_archive",
        &format!("--flv_dir={}", out.path().display()),
    ]);
    let key = srv.key("movie");
    let mut publisher = ffmpeg_publish_once(&media, &srv.publish_url(&key), 10.0, true);
    assert!(
        publisher
            .wait_timeout(Duration::from_secs(30))
            .is_some_and(|s| s.success()),
        "{}",
        publisher.describe()
    );
    let finished = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        srv.log().contains("recording finished").then_some(())
    });
    assert!(
        finished.is_some(),
        "no 'recording finished' in the log:\n{}",
        tail_lines(&srv.log(), 40)
    );

    let dir = out.join("live");
    let files = recordings(&dir);
    assert_eq!(files.len(), 1, "recordings in {}: {files:?}", dir.display());
    let file = &files[0];
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let unix = name
        .strip_prefix("movie_")
        .and_then(|rest| rest.strip_suffix(".flv"))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(unix.is_some(), "file name {name:?} is not movie_<unix>.flv");

    let probe = probe_file(file);
    let summary = probe_summary(&probe);
    assert_eq!(summary.video_codec.as_deref(), Some("h264"), "{probe}");
    assert_eq!(summary.audio_codec.as_deref(), Some("aac"), "{probe}");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration: {probe}"));
    assert!(
        (duration - 10.0).abs() <= 1.0,
        "duration {duration} is not within 1 s of 10 s"
    );
    // The metadata was patched: duration and filesize as players read them.
    let tags = probe["format"]["tags"].clone();
    let size = fs::metadata(file).expect("stat").len();
    let raw = fs::read(file).expect("read recording");
    let (_, parsed) = parse_flv(&raw);
    let meta = amf_decode_all(&parsed[0].body);
    let fields = meta.get(1).cloned().unwrap_or(Amf::Null);
    let meta_duration = fields.get("duration").and_then(Amf::as_num).unwrap_or(0.0);
    let meta_size = fields.get("filesize").and_then(Amf::as_num).unwrap_or(0.0);
    assert!(
        (meta_duration - 10.0).abs() <= 1.0,
        "onMetaData duration {meta_duration}; {fields:?} {tags}"
    );
    assert_eq!(meta_size as u64, size, "onMetaData filesize");

    let path = file.to_string_lossy();
    let decode =
        Decoder::spawn(&path, None, Duration::from_secs(10)).finish(Duration::from_secs(60));
    assert!(
        decode.ok() && decode.stderr.trim().is_empty(),
        "{}",
        decode.summary()
    );
}

/// With an `flv_dir` that cannot be created the recording fails with a logged error, and the
/// stream plays as if nothing happened.
#[test]
fn unwritable_flv_dir_logs_an_error_and_streaming_goes_on() {
    let _slot = heavy_slot();
    let media = test_media();
    let tmp = TempDir::new("unwritable");
    // A directory below a regular file cannot be created, not even by root.
    let blocker = tmp.join("not-a-directory");
    fs::write(&blocker, b"x").expect("write blocker file");
    let srv = Server::start(&[
        "--flv_archive",
        &format!("--flv_dir={}", blocker.join("recordings").display()),
    ]);
    let key = srv.key("cam");
    let _publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("cam", Duration::from_secs(10));
    let logged = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let log = srv.log();
        log.lines()
            .find(|l| l.contains("ERROR") && l.contains("recording failed"))
            .map(str::to_string)
    });
    assert!(
        logged.is_some(),
        "no recording error logged:\n{}",
        tail_lines(&srv.log(), 40)
    );
    let decode = decode_frames(&srv.flv_url("cam"), 3.0);
    assert!(decode.ok() && decode.frames >= 60, "{}", decode.summary());
    let mut srv = srv;
    srv.assert_alive();
}

/// SIGTERM ends streams before the process exits: the publisher is told, an HTTP-FLV
/// response ends, and the recording in progress gets its duration and filesize patched.
#[test]
fn sigterm_finishes_recordings_and_ends_viewers() {
    let _slot = heavy_slot();
    let media = test_media();
    let out = TempDir::new("recordings-sigterm");
    let mut srv = Server::start(&[
        "--flv_archive",
        &format!("--flv_dir={}", out.path().display()),
    ]);
    let key = srv.key("live1");
    let mut publisher = ffmpeg_publisher(&media, &srv.publish_url(&key));
    srv.wait_live("live1", Duration::from_secs(10));
    let mut viewer = HttpStream::open(&srv.flv_url("live1"), Duration::from_secs(5)).expect("GET");
    thread::sleep(Duration::from_secs(3));

    let status = srv.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "server must exit cleanly on SIGTERM: {status:?}"
    );
    assert!(
        viewer.wait_end(Duration::from_secs(2)).is_some(),
        "the HTTP-FLV response must have ended"
    );
    assert!(
        publisher.wait_timeout(Duration::from_secs(5)).is_some(),
        "the publisher must have been disconnected: {}",
        publisher.describe()
    );

    let files = recordings(&out.join("live"));
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = fs::read(&files[0]).expect("read recording");
    let (_, parsed) = parse_flv(&raw);
    let meta = amf_decode_all(&parsed[0].body);
    let fields = meta.get(1).cloned().unwrap_or(Amf::Null);
    let duration = fields.get("duration").and_then(Amf::as_num).unwrap_or(0.0);
    let size = fields.get("filesize").and_then(Amf::as_num).unwrap_or(0.0);
    assert!(duration >= 2.0, "duration not patched: {fields:?}");
    assert_eq!(size as u64, raw.len() as u64, "filesize not patched");
}
