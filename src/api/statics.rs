//! The web console on the API server: `/` (the console page), `/statics/…` (its files) and
//! `/console-config.json` (the ports and apps the page needs to build media URLs).
//!
//! Files come from the `statics` folder relative to the working directory, as livego serves
//! its `statics`. The folder is looked up on every request, so a console rebuilt while the
//! server runs is served without a restart.
//!
//! Path safety: the raw request path is decoded here, segment by segment, instead of trusting
//! the router's decoding, and anything that could name a file outside the folder (`..`, dot
//! segments in any encoding, encoded separators, backslashes, empty segments that would make an
//! absolute path, invalid UTF-8) is refused before the file system is touched; what remains is
//! canonicalized and must still lie inside the canonical folder, which catches symlinks that
//! point outside. Every refusal is a plain 404 envelope that tells nothing about the files.

use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{guard, web, HttpRequest, HttpResponse, Route};
use log::{debug, warn};
use serde::Serialize;

use crate::config::socket_addr;
use crate::context::ServerContext;
use crate::envelope;

/// The console's folder, relative to the working directory.
pub const STATICS_DIR: &str = "statics";
const URL_PREFIX: &str = "/statics/";
const INDEX_FILE: &str = "index.html";
/// The console's files are small; the bound keeps a stray large file from being read into
/// memory whole.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Third-party player libraries change only when `scripts/build-web.sh` copies a new pinned
/// version, so browsers may keep them for a day; the console's own files are revalidated on
/// every load (cheap: a 304 on a matching ETag) so an upgrade is seen at once.
const VENDOR_CACHE: &str = "public, max-age=86400";
const REVALIDATE: &str = "no-cache";
/// hls.js runs its transmuxer in a blob: worker and both players feed the video element a
/// blob: MediaSource URL; media and playlist requests go to the HTTP-FLV and HLS ports, which
/// are other origins.
const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob: http: https:; \
     connect-src 'self' http: https: ws: wss:; worker-src 'self' blob:; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console-config.json", get_or_head().to(console_config))
        .route("/", get_or_head().to(index))
        .route("/statics", get_or_head().to(statics_root))
        .route("/statics/{tail:.*}", get_or_head().to(static_file));
}

/// The paths the console needs before it has a token: its page, its files and
/// `/console-config.json`. The JWT check lets them through so the page can load and ask for a
/// token; none of them carries stream data, statistics or keys. Matched on the raw path,
/// which is also what [`static_file`] checks, so `/statics/../control/get` still cannot reach
/// an API handler (the router does not resolve dot segments) and is refused here.
pub fn is_public_path(path: &str) -> bool {
    path == "/"
        || path == "/console-config.json"
        || path == "/statics"
        || path.starts_with(URL_PREFIX)
}

fn get_or_head() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Why a request path was refused. Only logged: the client always gets the same 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadPath {
    /// A `%` not followed by two hex digits, or bytes that are not UTF-8 once decoded.
    Encoding,
    /// `%2f`, `%5c` or a literal backslash: a separator hidden inside one segment.
    HiddenSeparator,
    /// `//`, which would otherwise let a segment start from the file-system root.
    EmptySegment,
    /// `.`, `..` or any dotfile such as `.git`.
    DotSegment,
    /// NUL, control characters or `:` (a drive or stream name on other systems).
    ForbiddenChar,
}

/// Turns the part of a raw (still percent-encoded) request path after `/statics/` into a path
/// relative to the console folder. An empty path or a trailing slash names the folder's
/// `index.html`.
fn relative_path(raw: &str) -> Result<PathBuf, BadPath> {
    let mut path = PathBuf::new();
    let mut segments = raw.split('/').peekable();
    while let Some(encoded) = segments.next() {
        let is_last = segments.peek().is_none();
        let segment = percent_decode(encoded)?;
        if segment.is_empty() {
            if is_last {
                break;
            }
            return Err(BadPath::EmptySegment);
        }
        if segment.contains(['/', '\\']) {
            return Err(BadPath::HiddenSeparator);
        }
        if segment.starts_with('.') {
            return Err(BadPath::DotSegment);
        }
        if segment.chars().any(|c| c.is_control() || c == ':') {
            return Err(BadPath::ForbiddenChar);
        }
        path.push(segment);
    }
    if raw.is_empty() || raw.ends_with('/') {
        path.push(INDEX_FILE);
    }
    Ok(path)
}

fn percent_decode(encoded: &str) -> Result<String, BadPath> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(BadPath::Encoding)?;
            let (high, low) = (hex_value(hex[0])?, hex_value(hex[1])?);
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| BadPath::Encoding)
}

fn hex_value(digit: u8) -> Result<u8, BadPath> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(BadPath::Encoding),
    }
}

/// The file `relative` names inside `root`, if it exists, is a regular file (a folder means
/// its `index.html`) and, with every symlink resolved, still lies inside `root`.
fn resolve_inside(root: &Path, relative: &Path) -> io::Result<Option<PathBuf>> {
    let root = root.canonicalize()?;
    let mut candidate = match root.join(relative).canonicalize() {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !candidate.starts_with(&root) {
        return Ok(None);
    }
    if candidate.is_dir() {
        candidate = match candidate.join(INDEX_FILE).canonicalize() {
            Ok(path) if path.starts_with(&root) => path,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
    }
    Ok(candidate.is_file().then_some(candidate))
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn cache_control(relative: &Path) -> &'static str {
    if relative.starts_with("vendor") {
        VENDOR_CACHE
    } else {
        REVALIDATE
    }
}

fn is_html(path: &Path) -> bool {
    content_type(path).starts_with("text/html")
}

fn not_found() -> HttpResponse {
    envelope::reply(StatusCode::NOT_FOUND, "not found")
}

/// What a request for one file came to, worked out off the async threads.
enum Lookup {
    Missing,
    NotModified { etag: String },
    Found { body: Vec<u8>, etag: String },
}

/// `relative` was checked by [`relative_path`]; `if_none_match` is the request's header.
fn lookup(relative: &Path, if_none_match: Option<String>) -> io::Result<(Lookup, PathBuf)> {
    let Some(file) = resolve_inside(Path::new(STATICS_DIR), relative)? else {
        return Ok((Lookup::Missing, PathBuf::new()));
    };
    let meta = std::fs::metadata(&file)?;
    if meta.len() > MAX_FILE_BYTES {
        warn!(
            "console file {} is {} bytes, over the {MAX_FILE_BYTES}-byte limit; not served",
            file.display(),
            meta.len()
        );
        return Ok((Lookup::Missing, file));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{:x}-{:x}\"", meta.len(), modified);
    let matches = if_none_match.is_some_and(|h| {
        h.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*")
    });
    if matches {
        return Ok((Lookup::NotModified { etag }, file));
    }
    let body = std::fs::read(&file)?;
    Ok((Lookup::Found { body, etag }, file))
}

async fn serve(req: &HttpRequest, relative: PathBuf) -> HttpResponse {
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let wanted = relative.clone();
    let looked_up = web::block(move || lookup(&wanted, if_none_match)).await;
    let (found, file) = match looked_up {
        Ok(Ok(found)) => found,
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
            debug!(
                "console folder {STATICS_DIR}/ not found in the working directory; \
                 run the server from the repository root"
            );
            return not_found();
        }
        Ok(Err(e)) => {
            warn!(
                "cannot read console file {STATICS_DIR}/{}: {e}",
                relative.display()
            );
            return envelope::reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read console file",
            );
        }
        Err(e) => {
            warn!("console file lookup did not run: {e}");
            return envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server busy");
        }
    };
    let (status, etag, body) = match found {
        Lookup::Missing => return not_found(),
        Lookup::NotModified { etag } => (StatusCode::NOT_MODIFIED, etag, Vec::new()),
        Lookup::Found { body, etag } => (StatusCode::OK, etag, body),
    };
    let mut reply = HttpResponse::build(status);
    reply
        .insert_header((header::CACHE_CONTROL, cache_control(&relative)))
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if is_html(&file) {
        reply
            .insert_header((header::CONTENT_SECURITY_POLICY, CONSOLE_CSP))
            .insert_header((header::REFERRER_POLICY, "no-referrer"));
    }
    if status == StatusCode::NOT_MODIFIED {
        return reply.finish();
    }
    reply
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&file)),
        ))
        .body(body)
}

async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, PathBuf::from(INDEX_FILE)).await
}

/// `/statics` → `/statics/`, keeping the query (`?room=…`), so relative links resolve.
async fn statics_root(req: HttpRequest) -> HttpResponse {
    let location = match req.uri().query() {
        Some(q) => format!("{URL_PREFIX}?{q}"),
        None => URL_PREFIX.to_owned(),
    };
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn static_file(req: HttpRequest) -> HttpResponse {
    // The raw path, not the router's decoded match: decoding is done (and checked) once, here.
    let Some(raw) = req.uri().path().strip_prefix(URL_PREFIX) else {
        return not_found();
    };
    match relative_path(raw) {
        Ok(relative) => serve(&req, relative).await,
        Err(why) => {
            debug!(
                "refused console path {:?} from {:?}: {why:?}",
                req.uri().path(),
                req.peer_addr()
            );
            not_found()
        }
    }
}

/// What the console needs to build media URLs; hostnames come from the page's own location.
#[derive(Serialize)]
struct ConsoleConfig {
    rtmp_port: Option<u16>,
    /// `None` when HTTP-FLV is disabled.
    httpflv_port: Option<u16>,
    /// `None` when HLS is disabled.
    hls_port: Option<u16>,
    /// Whether API calls need a token, so the console can ask for one up front.
    jwt: bool,
    apps: Vec<ConsoleApp>,
}

#[derive(Serialize)]
struct ConsoleApp {
    name: String,
    live: bool,
    flv: bool,
    hls: bool,
}

fn port_of(addr: &str) -> Option<u16> {
    if addr.is_empty() {
        return None;
    }
    socket_addr(addr).ok().map(|a| a.port())
}

async fn console_config(state: web::Data<ServerContext>) -> HttpResponse {
    let config = state.config.clone();
    // socket_addr may resolve a host name, which blocks.
    let ports = web::block(move || {
        (
            port_of(&config.rtmp_addr),
            port_of(&config.httpflv_addr),
            port_of(&config.hls_addr),
        )
    })
    .await;
    let Ok((rtmp_port, httpflv_port, hls_port)) = ports else {
        return envelope::reply(StatusCode::SERVICE_UNAVAILABLE, "server busy");
    };
    let config = &state.config;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, REVALIDATE))
        .json(ConsoleConfig {
            rtmp_port,
            httpflv_port,
            hls_port,
            jwt: !config.jwt.secret.is_empty(),
            apps: config
                .server
                .iter()
                .map(|app| ConsoleApp {
                    name: app.appname.clone(),
                    live: app.live,
                    flv: app.flv,
                    hls: app.hls,
                })
                .collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rel(raw: &str) -> Result<PathBuf, BadPath> {
        relative_path(raw)
    }

    #[test]
    fn plain_paths_map_to_files_and_folders_to_their_index() {
        assert_eq!(rel("app.js"), Ok(PathBuf::from("app.js")));
        assert_eq!(
            rel("vendor/hls.min.js"),
            Ok(PathBuf::from("vendor/hls.min.js"))
        );
        assert_eq!(rel(""), Ok(PathBuf::from("index.html")));
        assert_eq!(rel("vendor/"), Ok(PathBuf::from("vendor/index.html")));
        assert_eq!(rel("a%20b.css"), Ok(PathBuf::from("a b.css")));
        assert_eq!(rel("caf%C3%A9.txt"), Ok(PathBuf::from("café.txt")));
        assert_eq!(rel("hls.min.js"), Ok(PathBuf::from("hls.min.js")));
    }

    #[test]
    fn dot_segments_are_refused_in_every_spelling() {
        for raw in [
            "..",
            "../config.toml",
            "vendor/../../config.toml",
            "./app.js",
            "%2e%2e/config.toml",
            "%2E%2E/config.toml",
            ".%2e/config.toml",
            "%2e./config.toml",
            "vendor/%2e%2e",
            ".git/config",
            ".env",
        ] {
            assert_eq!(rel(raw), Err(BadPath::DotSegment), "{raw}");
        }
    }

    #[test]
    fn hidden_separators_and_backslashes_are_refused() {
        for raw in [
            "..%2fconfig.toml",
            "..%2Fconfig.toml",
            "%2e%2e%2fconfig.toml",
            "vendor%2f..%2f..%2fconfig.toml",
            "..\\config.toml",
            "..%5cconfig.toml",
            "vendor%5C..%5C..%5Cconfig.toml",
            "%2fetc%2fpasswd",
        ] {
            assert_eq!(rel(raw), Err(BadPath::HiddenSeparator), "{raw}");
        }
    }

    #[test]
    fn absolute_paths_and_bad_encodings_are_refused() {
        assert_eq!(rel("/etc/passwd"), Err(BadPath::EmptySegment));
        assert_eq!(rel("vendor//x.js"), Err(BadPath::EmptySegment));
        assert_eq!(rel("%"), Err(BadPath::Encoding));
        assert_eq!(rel("%2"), Err(BadPath::Encoding));
        assert_eq!(rel("%zz"), Err(BadPath::Encoding));
        assert_eq!(rel("%+1"), Err(BadPath::Encoding));
        // Overlong UTF-8 for '.', an old IIS traversal.
        assert_eq!(rel("%c0%ae%c0%ae/config.toml"), Err(BadPath::Encoding));
        assert_eq!(rel("index.html%00.txt"), Err(BadPath::ForbiddenChar));
        assert_eq!(rel("C:%5cWindows"), Err(BadPath::HiddenSeparator));
        assert_eq!(rel("C:"), Err(BadPath::ForbiddenChar));
        // Decoded once only: a double-encoded dot is a literal (harmless) name.
        assert_eq!(
            rel("%252e%252e/config.toml"),
            Ok(PathBuf::from("%2e%2e/config.toml"))
        );
    }

    /// A folder tree under the system temp dir, removed at the end of the test.
    struct Tree(PathBuf);

    impl Tree {
        fn new() -> Tree {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "switchboard-statics-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(dir.join("statics/vendor")).unwrap();
            fs::create_dir_all(dir.join("statics/empty")).unwrap();
            fs::write(dir.join("statics/index.html"), "<html>").unwrap();
            fs::write(dir.join("statics/vendor/lib.js"), "lib").unwrap();
            fs::write(dir.join("secret.txt"), "secret").unwrap();
            std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("statics/leak.txt"))
                .unwrap();
            std::os::unix::fs::symlink(&dir, dir.join("statics/up")).unwrap();
            std::os::unix::fs::symlink(
                dir.join("statics/vendor/lib.js"),
                dir.join("statics/inside.js"),
            )
            .unwrap();
            Tree(dir)
        }

        fn resolve(&self, relative: &str) -> Option<PathBuf> {
            resolve_inside(&self.0.join("statics"), Path::new(relative)).unwrap()
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_inside_the_folder_resolve() {
        let tree = Tree::new();
        let root = tree.0.join("statics").canonicalize().unwrap();
        assert_eq!(tree.resolve("index.html"), Some(root.join("index.html")));
        assert_eq!(
            tree.resolve("vendor/lib.js"),
            Some(root.join("vendor/lib.js"))
        );
        // A folder serves its index.html; one without it is not found.
        assert_eq!(tree.resolve("."), Some(root.join("index.html")));
        assert_eq!(tree.resolve("empty"), None);
        assert_eq!(tree.resolve("missing.js"), None);
        // A symlink that stays inside is fine.
        assert_eq!(tree.resolve("inside.js"), Some(root.join("vendor/lib.js")));
    }

    #[test]
    fn symlinks_out_of_the_folder_are_not_followed() {
        let tree = Tree::new();
        assert_eq!(tree.resolve("leak.txt"), None);
        assert_eq!(tree.resolve("up/secret.txt"), None);
        // Out and back in names a file inside, which is fine.
        assert!(tree.resolve("up/statics/index.html").is_some());
        // Even if a `..` got this far, canonicalization would catch it.
        assert_eq!(tree.resolve("../secret.txt"), None);
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        let missing = std::env::temp_dir().join("switchboard-statics-no-such-folder");
        let err = resolve_inside(&missing, Path::new("index.html")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn content_types_and_cache_policies() {
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("app.JS")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("style.css")),
            "text/css; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("vendor/hls.min.js.map")),
            "application/json"
        );
        assert_eq!(
            content_type(Path::new("LICENSE")),
            "application/octet-stream"
        );
        assert_eq!(cache_control(Path::new("vendor/hls.min.js")), VENDOR_CACHE);
        assert_eq!(cache_control(Path::new("index.html")), REVALIDATE);
        assert_eq!(cache_control(Path::new("app.js")), REVALIDATE);
    }

    #[test]
    fn only_console_paths_are_public() {
        for path in [
            "/",
            "/console-config.json",
            "/statics",
            "/statics/",
            "/statics/app.js",
        ] {
            assert!(is_public_path(path), "{path}");
        }
        for path in [
            "/control/get",
            "/stat/livestat",
            "/api/streams",
            "/staticsx",
            "/statics.json",
            "//statics/",
            "",
        ] {
            assert!(!is_public_path(path), "{path}");
        }
    }

    #[test]
    fn ports_come_from_listen_addresses() {
        assert_eq!(port_of(":1935"), Some(1935));
        assert_eq!(port_of("127.0.0.1:7001"), Some(7001));
        assert_eq!(port_of("[::1]:7002"), Some(7002));
        assert_eq!(port_of(""), None);
        assert_eq!(port_of("nonsense"), None);
    }
}
