//! The web console's static files on the API server: content types, caching, and refusal of
//! every path-traversal spelling. Requests are written raw over TCP so nothing normalises `..`
//! or decodes `%2e` before the server sees it.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{heavy_slot, Server, Value};

const SECRET: &str = "TOP-SECRET-4f1c9a";
const INDEX: &str = "<!doctype html><title>console-index-marker</title>";

struct Reply {
    status: u16,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `target` sent byte for byte; reads until the server closes.
fn raw(port: u16, method: &str, target: &str, extra_headers: &str) -> Reply {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra_headers}Connection: close\r\n\r\n"
    );
    sock.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    sock.read_to_end(&mut bytes).unwrap();
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head for {target}: {bytes:?}"));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line for {target}: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

fn get(port: u16, target: &str) -> Reply {
    raw(port, "GET", target, "")
}

/// A console folder in the server's working directory, with a secret next to it and
/// symlinks that lead out of it.
fn install_console(dir: &Path) {
    let statics = dir.join("statics");
    fs::create_dir_all(statics.join("vendor")).unwrap();
    fs::write(statics.join("index.html"), INDEX).unwrap();
    fs::write(statics.join("app.js"), "console.log('app');").unwrap();
    fs::write(statics.join("style.css"), "body{}").unwrap();
    fs::write(statics.join("vendor/lib.js"), "var lib;").unwrap();
    fs::write(statics.join(".hidden"), SECRET).unwrap();
    fs::write(dir.join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), statics.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(dir, statics.join("up")).unwrap();
}

#[test]
fn console_files_are_served_with_types_and_cache_headers() {
    let _slot = heavy_slot();
    let server = Server::start(&[]);
    let port = server.api_port;

    // The harness runs the server in a fresh directory: no console installed yet.
    let missing = get(port, "/");
    assert_eq!(missing.status, 404, "{}", missing.text());
    install_console(server.dir());

    for target in ["/", "/statics/", "/statics/index.html", "/?room=x&type=flv"] {
        let page = get(port, target);
        assert_eq!(page.status, 200, "{target}: {}", page.text());
        assert_eq!(page.text(), INDEX, "{target}");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.header("cache-control"), Some("no-cache"));
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert!(page.header("content-security-policy").is_some());
    }

    let redirect = get(port, "/statics?room=x");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/statics/?room=x"));

    let app = get(port, "/statics/app.js");
    assert_eq!(app.status, 200);
    assert_eq!(
        app.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(app.header("cache-control"), Some("no-cache"));
    let css = get(port, "/statics/style.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let lib = get(port, "/statics/vendor/lib.js");
    assert_eq!(lib.status, 200);
    assert_eq!(lib.header("cache-control"), Some("public, max-age=86400"));

    // Revalidation: a matching ETag gets an empty 304.
    let etag = app.header("etag").expect("etag").to_owned();
    let again = raw(
        port,
        "GET",
        "/statics/app.js",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    // HEAD: the headers, no body.
    let head = raw(port, "HEAD", "/statics/app.js", "");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );

    let missing_file = get(port, "/statics/nope.js");
    assert_eq!(missing_file.status, 404);
    let v: Value = serde_json::from_slice(&missing_file.body).unwrap();
    assert_eq!(v["status"], 404);
}

#[test]
fn console_config_reports_the_listening_ports() {
    let _slot = heavy_slot();
    let server = Server::start(&[]);
    let reply = get(server.api_port, "/console-config.json");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["rtmp_port"], server.rtmp_port);
    assert_eq!(v["httpflv_port"], server.flv_port);
    assert_eq!(v["hls_port"], server.hls_port);
    assert_eq!(v["jwt"], false);
    assert_eq!(v["apps"][0]["name"], "live");
    assert_eq!(v["apps"][0]["flv"], true);
    assert_eq!(v["apps"][0]["hls"], true);
}

#[test]
fn path_traversal_attempts_get_404_and_never_file_contents() {
    let _slot = heavy_slot();
    let server = Server::start(&[]);
    let port = server.api_port;
    install_console(server.dir());
    let absolute_secret = server.dir().join("secret.txt").display().to_string();
    let encoded_absolute = absolute_secret.replace('/', "%2f");

    let attempts = [
        "/statics/../secret.txt".to_owned(),
        "/statics/../config.toml".to_owned(),
        "/statics/vendor/../../secret.txt".to_owned(),
        "/statics/%2e%2e/secret.txt".to_owned(),
        "/statics/%2E%2E/secret.txt".to_owned(),
        "/statics/.%2e/secret.txt".to_owned(),
        "/statics/%2e./secret.txt".to_owned(),
        "/statics/..%2fsecret.txt".to_owned(),
        "/statics/..%2Fsecret.txt".to_owned(),
        "/statics/%2e%2e%2fsecret.txt".to_owned(),
        "/statics/vendor%2f..%2f..%2fsecret.txt".to_owned(),
        "/statics/..\\secret.txt".to_owned(),
        "/statics/..%5csecret.txt".to_owned(),
        "/statics/..%5Csecret.txt".to_owned(),
        "/statics/%c0%ae%c0%ae/secret.txt".to_owned(),
        "/statics/%252e%252e/secret.txt".to_owned(),
        "/statics/..;/secret.txt".to_owned(),
        "/statics/secret.txt%00.js".to_owned(),
        format!("/statics/{absolute_secret}"),
        format!("/statics/{encoded_absolute}"),
        "/statics/leak.txt".to_owned(),
        "/statics/up/secret.txt".to_owned(),
        "/statics/up/config.toml".to_owned(),
        "/statics/.hidden".to_owned(),
        "/statics/%2ehidden".to_owned(),
    ];
    for target in &attempts {
        let reply = get(port, target);
        let text = reply.text();
        assert_eq!(reply.status, 404, "{target}: {text}");
        assert!(!text.contains(SECRET), "{target} leaked the secret: {text}");
        assert!(!text.contains("[[server]]"), "{target} leaked config.toml");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{target}: not a JSON envelope ({e}): {text}"));
        assert_eq!(v["status"], 404, "{target}: {text}");
    }

    // Outside /statics/ the console serves nothing, whatever the router makes of it.
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/stat%69cs/../secret.txt",
    ] {
        let reply = get(port, target);
        assert!(
            reply.status == 404 || reply.status == 400,
            "{target}: {} {}",
            reply.status,
            reply.text()
        );
        assert!(!reply.text().contains(SECRET), "{target} leaked the secret");
    }

    // The same server still serves the real files.
    assert_eq!(get(port, "/statics/app.js").status, 200);
}
