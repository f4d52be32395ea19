//! nginx with libnginx-mod-rtmp as a foreign RTMP server for relay tests.
//!
//! Each instance writes its own config into a temp dir (no daemon, no master process, pid and
//! logs in the temp dir), listens for RTMP and for its `rtmp_stat` page on free loopback ports,
//! and is killed on drop. `restart` brings it back on the same ports.
//!
//! Include with `#[path = "support/nginx.rs"] mod nginx;` next to `mod common;`.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::{free_port, http_get, poll_until, port_accepts, tail_lines, Proc, TempDir};

/// Where Debian and friends put the module; the modules-enabled snippets are checked too.
const MODULE_CANDIDATES: [&str; 3] = [
    "/usr/lib/nginx/modules/ngx_rtmp_module.so",
    "/usr/share/nginx/modules/ngx_rtmp_module.so",
    "/usr/lib64/nginx/modules/ngx_rtmp_module.so",
];

fn rtmp_module() -> PathBuf {
    for dir in [
        "/etc/nginx/modules-enabled",
        "/usr/share/nginx/modules-available",
    ] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(text) = fs::read_to_string(entry.path()) else {
                continue;
            };
            for line in text.lines() {
                let Some(path) = line.trim().strip_prefix("load_module") else {
                    continue;
                };
                let path = path.trim().trim_end_matches(';').trim();
                if path.contains("rtmp") && PathBuf::from(path).exists() {
                    return PathBuf::from(path);
                }
            }
        }
    }
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("ngx_rtmp_module.so not found: install nginx and libnginx-mod-rtmp (make deps)")
        })
}

pub struct NginxRtmp {
    proc: Option<Proc>,
    pub rtmp_port: u16,
    pub http_port: u16,
    dir: TempDir,
    conf: PathBuf,
}

impl NginxRtmp {
    /// Starts nginx-rtmp with one `live on` application per name in `apps`.
    pub fn start(apps: &[&str]) -> NginxRtmp {
        let dir = TempDir::new("nginx");
        let rtmp_port = free_port();
        let http_port = free_port();
        let d = dir.path().display().to_string();
        let applications: String = apps
            .iter()
            .map(|app| format!("        application {app} {{ live on; idle_streams off; }}\n"))
            .collect();
        let conf = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             load_module {module};\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{\n    server {{\n        listen 127.0.0.1:{rtmp_port};\n        chunk_size 4096;\n{applications}    }}\n}}\n\
             http {{\n    access_log off;\n\
             \x20   client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             \x20   fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             \x20   server {{ listen 127.0.0.1:{http_port}; location /stat {{ rtmp_stat all; }} }}\n}}\n",
            module = rtmp_module().display(),
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut nginx = NginxRtmp {
            proc: None,
            rtmp_port,
            http_port,
            dir,
            conf: conf_path,
        };
        nginx.launch();
        nginx
    }

    fn launch(&mut self) {
        let d = self.dir.path().display().to_string();
        let proc = Proc::spawn(
            "nginx-rtmp",
            Command::new("nginx")
                .arg("-p")
                .arg(format!("{d}/"))
                .arg("-c")
                .arg(&self.conf)
                .arg("-e")
                .arg(format!("{d}/error.log")),
        );
        self.proc = Some(proc);
        let (rtmp, http) = (self.rtmp_port, self.http_port);
        let up = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
            (port_accepts(rtmp) && port_accepts(http)).then_some(())
        });
        if up.is_none() {
            panic!(
                "nginx-rtmp did not listen on {rtmp}/{http}: {}\n--- error.log ---\n{}",
                self.proc.as_ref().map(|p| p.describe()).unwrap_or_default(),
                self.error_log()
            );
        }
    }

    /// SIGKILL, as a crashed or unreachable server looks to its clients.
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// Starts again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "rtmp://127.0.0.1:{}/{}",
            self.rtmp_port,
            path.trim_start_matches('/')
        )
    }

    pub fn error_log(&self) -> String {
        tail_lines(
            &fs::read_to_string(self.dir.join("error.log")).unwrap_or_default(),
            40,
        )
    }

    /// The `rtmp_stat` XML.
    pub fn stat(&self) -> String {
        http_get(&format!("http://127.0.0.1:{}/stat", self.http_port))
            .map(|r| r.text())
            .unwrap_or_default()
    }

    /// Rooms with a publisher in `app`, from the stat page.
    pub fn published(&self, app: &str) -> Vec<String> {
        let stat = self.stat();
        let mut rooms = Vec::new();
        for application in stat.split("<application>").skip(1) {
            let name = between(application, "<name>", "</name>");
            if name != Some(app) {
                continue;
            }
            for stream in application.split("<stream>").skip(1) {
                let stream = stream.split("</stream>").next().unwrap_or_default();
                if stream.contains("<publishing/>") {
                    if let Some(room) = between(stream, "<name>", "</name>") {
                        rooms.push(room.to_string());
                    }
                }
            }
        }
        rooms
    }

    pub fn is_published(&self, app: &str, room: &str) -> bool {
        self.published(app).iter().any(|r| r == room)
    }

    /// Waits until `app/room` has (or, with `want = false`, no longer has) a publisher.
    pub fn wait_published(&self, app: &str, room: &str, want: bool, timeout: Duration) -> bool {
        poll_until(timeout, Duration::from_millis(100), || {
            (self.is_published(app, room) == want).then_some(())
        })
        .is_some()
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        self.kill();
    }
}
