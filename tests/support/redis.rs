//! A real `redis-server` for the key-store tests, on a free port, killed on drop.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use crate::common::{free_port, poll_until, port_accepts, Proc, TempDir};

pub struct RedisServer {
    pub port: u16,
    /// Append-only file with an fsync per write: the data survives a SIGKILL.
    persistent: bool,
    dir: TempDir,
    proc: Option<Proc>,
}

impl RedisServer {
    /// A throwaway Redis: no snapshot, no append-only file.
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port(), false)
    }

    /// A Redis whose data survives being killed and restarted (`restart`).
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_on(free_port(), true)
    }

    /// A throwaway Redis on a given port (one the server was told about before it existed).
    pub fn start_on_port(port: u16) -> RedisServer {
        RedisServer::start_on(port, false)
    }

    fn start_on(port: u16, persistent: bool) -> RedisServer {
        let mut redis = RedisServer {
            port,
            persistent,
            dir: TempDir::new("redis"),
            proc: None,
        };
        redis.launch();
        redis
    }

    fn launch(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path());
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let proc = Proc::spawn(&format!("redis-server :{}", self.port), &mut cmd);
        let port = self.port;
        let up = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
            (port_accepts(port) && self.cli(&["PING"]) == "PONG").then_some(())
        });
        self.proc = Some(proc);
        if up.is_none() {
            panic!(
                "redis-server on {port} did not come up\n{}",
                self.proc.as_ref().map(Proc::describe).unwrap_or_default()
            );
        }
    }

    /// SIGKILL, as a crash or an operator's `kill -9` would.
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
        let port = self.port;
        poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
            (!port_accepts(port)).then_some(())
        });
    }

    /// Start again on the same port (and data directory).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// `redis-cli -p <port> <args>`, trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
