//! A small HTTP/1.1 client for the API tests: any method, extra headers, a body, and livego's
//! envelope checked on the way (the harness's client only does GET).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The envelope's `data`, after checking `status` equals the HTTP status and the reply is
    /// JSON.
    pub fn data(&self) -> Value {
        let v: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()));
        assert_eq!(
            v["status"].as_u64(),
            Some(u64::from(self.status)),
            "envelope status differs from HTTP status: {v}"
        );
        assert!(
            self.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "content-type {:?} for {v}",
            self.header("content-type")
        );
        assert_eq!(
            v.as_object().map(|o| o.len()),
            Some(2),
            "envelope fields: {v}"
        );
        assert!(
            self.text().starts_with(r#"{"status":"#),
            "livego clients expect status first: {}",
            self.text()
        );
        v["data"].clone()
    }

    /// `data` as a string (error messages, keys).
    pub fn message(&self) -> String {
        let data = self.data();
        data.as_str()
            .unwrap_or_else(|| panic!("data is not a string: {data}"))
            .to_string()
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end (10 s limit).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Reply {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> std::io::Result<Reply> {
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let started = Instant::now();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    match body {
        Some((content_type, bytes)) => {
            req.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            ));
            sock.write_all(req.as_bytes())?;
            sock.write_all(bytes)?;
        }
        None => {
            req.push_str("\r\n");
            sock.write_all(req.as_bytes())?;
        }
    }
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw)?;
    let elapsed = started.elapsed();
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response head in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[head_end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Reply {
        status,
        headers,
        body,
        elapsed,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&data[..i]);
        let Ok(size) = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        data = &data[i + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

pub fn get(url: &str) -> Reply {
    request("GET", url, &[], None)
}

/// POST an urlencoded form.
pub fn post_form(url: &str, form: &str) -> Reply {
    request(
        "POST",
        url,
        &[],
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    )
}

pub fn delete(url: &str) -> Reply {
    request("DELETE", url, &[], None)
}

/// A 48-character alphanumeric publish key.
pub fn assert_key_shape(key: &str) {
    assert_eq!(key.len(), 48, "{key:?}");
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "{key:?}");
}
