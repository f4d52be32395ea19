//! Server configuration.
//!
//! Keys, flag spellings and environment variables follow livego so that existing livego
//! deployments can switch without rewriting their scripts; the file format is TOML instead of
//! livego's YAML. Precedence is flag > environment > file > built-in default, applied per key.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::{ArgAction, Parser};
use serde::Deserialize;

/// Relative to the working directory, like livego's `livego.yaml`.
pub const DEFAULT_CONFIG_FILE: &str = "config.toml";
/// livego's upper bound; more GOPs per stream multiplies memory per stream with little gain.
pub const MAX_GOP_NUM: usize = 16;
const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Top-level keys the file understands; anything else is warned about and ignored, as livego does.
const FILE_KEYS: [&str; 26] = [
    "rtmp_addr",
    "httpflv_addr",
    "hls_addr",
    "api_addr",
    "level",
    "gop_num",
    "write_timeout",
    "read_timeout",
    "rtmp_noauth",
    "flv_archive",
    "flv_dir",
    "hls_keep_after_end",
    "hls_fragment",
    "hls_window",
    "redis_addr",
    "redis_pwd",
    "jwt",
    "server",
    "publish_conflict",
    "api_cors_origins",
    "relay_allow",
    "gop_max_frames",
    "gop_max_bytes",
    "viewer_queue",
    "relay_backoff_min_ms",
    "relay_backoff_max_ms",
];
const JWT_KEYS: [&str; 2] = ["secret", "algorithm"];
const APP_KEYS: [&str; 6] = ["appname", "live", "hls", "flv", "api", "static_push"];

#[derive(Clone, PartialEq)]
pub struct Config {
    pub rtmp_addr: String,
    /// Empty disables HTTP-FLV.
    pub httpflv_addr: String,
    /// Empty disables HLS.
    pub hls_addr: String,
    /// Empty disables the HTTP API.
    pub api_addr: String,
    /// Always one of error/warn/info/debug/trace, lower case.
    pub level: String,
    pub gop_num: usize,
    /// Seconds.
    pub write_timeout: u64,
    /// Seconds.
    pub read_timeout: u64,
    pub rtmp_noauth: bool,
    pub flv_archive: bool,
    pub flv_dir: PathBuf,
    pub hls_keep_after_end: bool,
    /// Seconds.
    pub hls_fragment: f64,
    pub hls_window: usize,
    pub redis_addr: String,
    pub redis_pwd: String,
    pub jwt: JwtConfig,
    pub server: Vec<AppConfig>,
    pub publish_conflict: PublishConflict,
    pub api_cors_origins: String,
    /// Empty allows every relay target.
    pub relay_allow: Vec<String>,
    pub gop_max_frames: usize,
    pub gop_max_bytes: usize,
    /// Frames queued per viewer beyond the GOP replay.
    pub viewer_queue: usize,
    /// First relay reconnect delay, milliseconds; doubles per failure up to the max.
    pub relay_backoff_min_ms: u64,
    pub relay_backoff_max_ms: u64,
    /// The file that was (or would have been) read.
    pub config_file: PathBuf,
}

#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
pub struct AppConfig {
    pub appname: String,
    #[serde(default = "yes")]
    pub live: bool,
    #[serde(default = "yes")]
    pub hls: bool,
    #[serde(default = "yes")]
    pub flv: bool,
    #[serde(default = "yes")]
    pub api: bool,
    #[serde(default)]
    pub static_push: Vec<String>,
}

impl AppConfig {
    /// An app with every output enabled and no static pushes, as a missing key in the file means.
    pub fn new(appname: impl Into<String>) -> AppConfig {
        AppConfig {
            appname: appname.into(),
            live: true,
            hls: true,
            flv: true,
            api: true,
            static_push: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Empty disables JWT checks on the API.
    pub secret: String,
    pub algorithm: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            secret: String::new(),
            algorithm: "HS256".to_owned(),
        }
    }
}

// Hand-written so that logging the configuration at startup cannot leak credentials.
impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &redact(&self.secret))
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// What to do when a publisher arrives for a stream that is already being published.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishConflict {
    /// The newcomer replaces the current publisher (livego behaviour; lets an encoder reconnect
    /// before the server has noticed the old connection is dead).
    #[default]
    Takeover,
    /// The newcomer is refused while the stream is live.
    Reject,
}

impl FromStr for PublishConflict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "takeover" => Ok(PublishConflict::Takeover),
            "reject" => Ok(PublishConflict::Reject),
            _ => Err(format!("expected \"takeover\" or \"reject\", got {s:?}")),
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// A bad command line, or `--help` / `--version`. Call `e.exit()` on the inner error so clap
    /// prints to the right stream and exits with the right status (0 for help and version).
    #[error("{0}")]
    Clap(#[from] clap::Error),
    #[error("config file {} not found", .path.display())]
    FileNotFound { path: PathBuf },
    #[error("cannot read config file {}: {error}", .path.display())]
    FileRead {
        path: PathBuf,
        error: std::io::Error,
    },
    /// `message` is toml's report, which names the line and column.
    #[error("malformed config file {}: {message}", .path.display())]
    FileParse { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid {key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("invalid address {addr:?}: {reason}")]
    Addr { addr: String, reason: String },
}

impl ConfigError {
    /// The process exit status for this error: clap's own for command-line problems (0 for
    /// `--help`/`--version`, 2 for usage errors), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Clap(e) => e.exit_code(),
            _ => 1,
        }
    }

    /// Report the error and end the process with [`ConfigError::exit_code`].
    pub fn exit(&self) -> ! {
        match self {
            ConfigError::Clap(e) => e.exit(),
            other => {
                eprintln!("error: {other}");
                std::process::exit(other.exit_code())
            }
        }
    }

    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rtmp_addr: ":1935".to_owned(),
            httpflv_addr: ":7001".to_owned(),
            hls_addr: ":7002".to_owned(),
            api_addr: ":8090".to_owned(),
            level: "info".to_owned(),
            gop_num: 1,
            write_timeout: 10,
            read_timeout: 10,
            rtmp_noauth: false,
            flv_archive: false,
            flv_dir: PathBuf::from("tmp"),
            hls_keep_after_end: false,
            hls_fragment: 2.0,
            hls_window: 6,
            redis_addr: String::new(),
            redis_pwd: String::new(),
            jwt: JwtConfig::default(),
            server: vec![AppConfig::new("live")],
            publish_conflict: PublishConflict::Takeover,
            api_cors_origins: "*".to_owned(),
            relay_allow: Vec::new(),
            gop_max_frames: 2500,
            gop_max_bytes: 64 * 1024 * 1024,
            viewer_queue: 512,
            relay_backoff_min_ms: 1000,
            relay_backoff_max_ms: 30_000,
            config_file: PathBuf::from(DEFAULT_CONFIG_FILE),
        }
    }
}

// Hand-written so that logging the configuration at startup cannot leak credentials.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("rtmp_addr", &self.rtmp_addr)
            .field("httpflv_addr", &self.httpflv_addr)
            .field("hls_addr", &self.hls_addr)
            .field("api_addr", &self.api_addr)
            .field("level", &self.level)
            .field("gop_num", &self.gop_num)
            .field("write_timeout", &self.write_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("rtmp_noauth", &self.rtmp_noauth)
            .field("flv_archive", &self.flv_archive)
            .field("flv_dir", &self.flv_dir)
            .field("hls_keep_after_end", &self.hls_keep_after_end)
            .field("hls_fragment", &self.hls_fragment)
            .field("hls_window", &self.hls_window)
            .field("redis_addr", &self.redis_addr)
            .field("redis_pwd", &redact(&self.redis_pwd))
            .field("jwt", &self.jwt)
            .field("server", &self.server)
            .field("publish_conflict", &self.publish_conflict)
            .field("api_cors_origins", &self.api_cors_origins)
            .field("relay_allow", &self.relay_allow)
            .field("gop_max_frames", &self.gop_max_frames)
            .field("gop_max_bytes", &self.gop_max_bytes)
            .field("viewer_queue", &self.viewer_queue)
            .field("relay_backoff_min_ms", &self.relay_backoff_min_ms)
            .field("relay_backoff_max_ms", &self.relay_backoff_max_ms)
            .field("config_file", &self.config_file)
            .finish()
    }
}

fn redact(secret: &str) -> &str {
    if secret.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

/// Every field is optional so that "not given" can fall through to the next source.
#[derive(Parser, Debug)]
// A repeated flag overrides the earlier one, as with livego's pflag.
#[command(name = "switchboard", version, about, args_override_self = true)]
struct Cli {
    /// Configuration file (TOML) [default: config.toml] [env: CONFIG_FILE]
    #[arg(long = "config_file", visible_alias = "config", value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// RTMP listen address, e.g. ":1935" or "127.0.0.1:1935" [default: :1935] [env: RTMP_ADDR]
    #[arg(long = "rtmp_addr", value_name = "ADDR")]
    rtmp_addr: Option<String>,
    /// HTTP-FLV listen address, "" disables [default: :7001] [env: HTTPFLV_ADDR]
    #[arg(long = "httpflv_addr", value_name = "ADDR")]
    httpflv_addr: Option<String>,
    /// HLS listen address, "" disables [default: :7002] [env: HLS_ADDR]
    #[arg(long = "hls_addr", value_name = "ADDR")]
    hls_addr: Option<String>,
    /// HTTP API listen address, "" disables [default: :8090] [env: API_ADDR]
    #[arg(long = "api_addr", value_name = "ADDR")]
    api_addr: Option<String>,
    /// Log level: error, warn, info, debug, trace [default: info] [env: LEVEL]
    #[arg(long = "level", value_name = "LEVEL")]
    level: Option<String>,
    /// GOPs cached per stream for fast start, 0-16 [default: 1] [env: GOP_NUM]
    #[arg(long = "gop_num", value_name = "N")]
    gop_num: Option<usize>,
    /// Write timeout in seconds [default: 10] [env: WRITE_TIMEOUT]
    #[arg(long = "write_timeout", value_name = "SECS")]
    write_timeout: Option<u64>,
    /// Read timeout in seconds [default: 10] [env: READ_TIMEOUT]
    #[arg(long = "read_timeout", value_name = "SECS")]
    read_timeout: Option<u64>,
    /// Publish with the stream name instead of a channel key [default: false] [env: RTMP_NOAUTH]
    #[arg(long = "rtmp_noauth", value_name = "BOOL", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_bool)]
    rtmp_noauth: Option<bool>,
    /// Record published streams as FLV files [default: false] [env: FLV_ARCHIVE]
    #[arg(long = "flv_archive", value_name = "BOOL", action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_parser = parse_bool)]
    flv_archive: Option<bool>,
    /// Directory for FLV archives [default: tmp] [env: FLV_DIR]
    #[arg(long = "flv_dir", value_name = "DIR")]
    flv_dir: Option<PathBuf>,
    /// Keep serving HLS after the publisher leaves [default: false] [env: HLS_KEEP_AFTER_END]
    #[arg(long = "hls_keep_after_end", value_name = "BOOL", action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_parser = parse_bool)]
    hls_keep_after_end: Option<bool>,
    /// HLS segment duration in seconds [default: 2] [env: HLS_FRAGMENT]
    #[arg(long = "hls_fragment", value_name = "SECS")]
    hls_fragment: Option<f64>,
    /// Segments listed in an HLS playlist [default: 6] [env: HLS_WINDOW]
    #[arg(long = "hls_window", value_name = "N")]
    hls_window: Option<usize>,
    /// Redis address for channel keys, "" keeps them in memory [default: ""] [env: REDIS_ADDR]
    #[arg(long = "redis_addr", value_name = "ADDR")]
    redis_addr: Option<String>,
    /// Redis password [default: ""] [env: REDIS_PWD]
    #[arg(long = "redis_pwd", value_name = "PASSWORD")]
    redis_pwd: Option<String>,
    /// JWT secret for the API, "" disables JWT [default: ""] [env: JWT_SECRET]
    #[arg(long = "jwt_secret", value_name = "SECRET")]
    jwt_secret: Option<String>,
    /// JWT signing algorithm [default: HS256] [env: JWT_ALGORITHM]
    #[arg(long = "jwt_algorithm", value_name = "ALG")]
    jwt_algorithm: Option<String>,
    /// A second publisher on a live stream takes over or is rejected [default: takeover] [env: PUBLISH_CONFLICT]
    #[arg(long = "publish_conflict", value_name = "MODE", value_parser = PublishConflict::from_str)]
    publish_conflict: Option<PublishConflict>,
    /// Access-Control-Allow-Origin for the API [default: *] [env: API_CORS_ORIGINS]
    #[arg(long = "api_cors_origins", value_name = "ORIGINS")]
    api_cors_origins: Option<String>,
}

/// Accepts Go's `strconv.ParseBool` spellings (livego's) plus yes/no/on/off.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "y" | "yes" | "on" => Ok(true),
        "0" | "f" | "false" | "n" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

fn parse_from_str<T>(s: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    s.trim().parse().map_err(|e: T::Err| e.to_string())
}

/// The file's view of the configuration: every key optional so absent keys fall through.
#[derive(Deserialize, Default, Debug)]
struct FileConfig {
    rtmp_addr: Option<String>,
    httpflv_addr: Option<String>,
    hls_addr: Option<String>,
    api_addr: Option<String>,
    level: Option<String>,
    gop_num: Option<usize>,
    write_timeout: Option<u64>,
    read_timeout: Option<u64>,
    rtmp_noauth: Option<bool>,
    flv_archive: Option<bool>,
    flv_dir: Option<PathBuf>,
    hls_keep_after_end: Option<bool>,
    hls_fragment: Option<f64>,
    hls_window: Option<usize>,
    redis_addr: Option<String>,
    redis_pwd: Option<String>,
    #[serde(default)]
    jwt: FileJwt,
    server: Option<Vec<AppConfig>>,
    publish_conflict: Option<PublishConflict>,
    api_cors_origins: Option<String>,
    relay_allow: Option<Vec<String>>,
    gop_max_frames: Option<usize>,
    gop_max_bytes: Option<usize>,
    viewer_queue: Option<usize>,
    relay_backoff_min_ms: Option<u64>,
    relay_backoff_max_ms: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
struct FileJwt {
    secret: Option<String>,
    algorithm: Option<String>,
}

/// Reads the file, or yields an empty one when the default path is absent: running without any
/// file must work, but a path the operator named must exist.
fn read_file(path: &Path, explicit: bool) -> Result<FileConfig, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_file(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            log::warn!("config file {} not found, using defaults", path.display());
            Ok(FileConfig::default())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::FileNotFound {
            path: path.to_owned(),
        }),
        Err(error) => Err(ConfigError::FileRead {
            path: path.to_owned(),
            error,
        }),
    }
}

fn parse_file(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    let malformed = |e: toml::de::Error| ConfigError::FileParse {
        path: path.to_owned(),
        message: e.to_string(),
    };
    // Deserialising the typed struct straight from the text keeps toml's line/column in type
    // errors; going through an intermediate Table (or serde's flatten) would lose the spans.
    let file: FileConfig = toml::from_str(text).map_err(malformed)?;
    let table: toml::Table = toml::from_str(text).map_err(malformed)?;
    warn_unknown_keys(&table, path);
    Ok(file)
}

/// livego silently ignores unknown keys; a warning keeps that tolerance but surfaces typos.
fn warn_unknown_keys(table: &toml::Table, path: &Path) {
    let warn = |key: &str| {
        log::warn!(
            "config file {}: unknown key `{key}` ignored",
            path.display()
        )
    };
    for key in table.keys() {
        if !FILE_KEYS.contains(&key.as_str()) {
            warn(key);
        }
    }
    if let Some(toml::Value::Table(jwt)) = table.get("jwt") {
        for key in jwt.keys() {
            if !JWT_KEYS.contains(&key.as_str()) {
                warn(&format!("jwt.{key}"));
            }
        }
    }
    if let Some(toml::Value::Array(apps)) = table.get("server") {
        for (i, app) in apps.iter().enumerate() {
            if let toml::Value::Table(app) = app {
                for key in app.keys() {
                    if !APP_KEYS.contains(&key.as_str()) {
                        warn(&format!("server[{i}].{key}"));
                    }
                }
            }
        }
    }
}

/// Reads environment variables through the injected lookup so tests need not touch the real
/// process environment.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn string(&self, var: &'static str) -> Option<String> {
        (self.0)(var)
    }

    fn parsed<T>(
        &self,
        var: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match (self.0)(var) {
            None => Ok(None),
            Some(value) => match parse(&value) {
                Ok(v) => Ok(Some(v)),
                Err(reason) => Err(ConfigError::Env { var, value, reason }),
            },
        }
    }

    fn bool(&self, var: &'static str) -> Result<Option<bool>, ConfigError> {
        self.parsed(var, parse_bool)
    }

    fn number<T>(&self, var: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.parsed(var, parse_from_str::<T>)
    }
}

/// First source that has the key wins; sources are passed highest precedence first.
fn pick<T>(flag: Option<T>, env: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(env).or(file).unwrap_or(default)
}

impl Config {
    /// Parse argv (clap), environment and the config file, with precedence
    /// flag > env > file > default.
    pub fn load() -> Result<Config, ConfigError> {
        // Lossy rather than std::env::args, which panics on a non-UTF-8 argument.
        let args = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Config::load_from(args, &|var| std::env::var(var).ok())
    }

    /// [`Config::load`] with the command line (including the program name) and the environment
    /// lookup supplied by the caller.
    pub fn load_from(
        args: Vec<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(args)?;
        let env = Env(env);
        let named = cli
            .config_file
            .clone()
            .or_else(|| env.string("CONFIG_FILE").map(PathBuf::from));
        let explicit = named.is_some();
        let config_file = named.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        let file = read_file(&config_file, explicit)?;
        Config::merge(cli, &env, file, config_file)
    }

    fn merge(
        cli: Cli,
        env: &Env<'_>,
        file: FileConfig,
        config_file: PathBuf,
    ) -> Result<Config, ConfigError> {
        let d = Config::default();
        let config = Config {
            rtmp_addr: pick(
                cli.rtmp_addr,
                env.string("RTMP_ADDR"),
                file.rtmp_addr,
                d.rtmp_addr,
            ),
            httpflv_addr: pick(
                cli.httpflv_addr,
                env.string("HTTPFLV_ADDR"),
                file.httpflv_addr,
                d.httpflv_addr,
            ),
            hls_addr: pick(
                cli.hls_addr,
                env.string("HLS_ADDR"),
                file.hls_addr,
                d.hls_addr,
            ),
            api_addr: pick(
                cli.api_addr,
                env.string("API_ADDR"),
                file.api_addr,
                d.api_addr,
            ),
            level: pick(cli.level, env.string("LEVEL"), file.level, d.level),
            gop_num: pick(cli.gop_num, env.number("GOP_NUM")?, file.gop_num, d.gop_num),
            write_timeout: pick(
                cli.write_timeout,
                env.number("WRITE_TIMEOUT")?,
                file.write_timeout,
                d.write_timeout,
            ),
            read_timeout: pick(
                cli.read_timeout,
                env.number("READ_TIMEOUT")?,
                file.read_timeout,
                d.read_timeout,
            ),
            rtmp_noauth: pick(
                cli.rtmp_noauth,
                env.bool("RTMP_NOAUTH")?,
                file.rtmp_noauth,
                d.rtmp_noauth,
            ),
            flv_archive: pick(
                cli.flv_archive,
                env.bool("FLV_ARCHIVE")?,
                file.flv_archive,
                d.flv_archive,
            ),
            flv_dir: pick(
                cli.flv_dir,
                env.string("FLV_DIR").map(PathBuf::from),
                file.flv_dir,
                d.flv_dir,
            ),
            hls_keep_after_end: pick(
                cli.hls_keep_after_end,
                env.bool("HLS_KEEP_AFTER_END")?,
                file.hls_keep_after_end,
                d.hls_keep_after_end,
            ),
            hls_fragment: pick(
                cli.hls_fragment,
                env.number("HLS_FRAGMENT")?,
                file.hls_fragment,
                d.hls_fragment,
            ),
            hls_window: pick(
                cli.hls_window,
                env.number("HLS_WINDOW")?,
                file.hls_window,
                d.hls_window,
            ),
            redis_addr: pick(
                cli.redis_addr,
                env.string("REDIS_ADDR"),
                file.redis_addr,
                d.redis_addr,
            ),
            redis_pwd: pick(
                cli.redis_pwd,
                env.string("REDIS_PWD"),
                file.redis_pwd,
                d.redis_pwd,
            ),
            jwt: JwtConfig {
                secret: pick(
                    cli.jwt_secret,
                    env.string("JWT_SECRET"),
                    file.jwt.secret,
                    d.jwt.secret,
                ),
                algorithm: pick(
                    cli.jwt_algorithm,
                    env.string("JWT_ALGORITHM"),
                    file.jwt.algorithm,
                    d.jwt.algorithm,
                ),
            },
            server: file.server.unwrap_or(d.server),
            publish_conflict: pick(
                cli.publish_conflict,
                env.parsed("PUBLISH_CONFLICT", PublishConflict::from_str)?,
                file.publish_conflict,
                d.publish_conflict,
            ),
            api_cors_origins: pick(
                cli.api_cors_origins,
                env.string("API_CORS_ORIGINS"),
                file.api_cors_origins,
                d.api_cors_origins,
            ),
            relay_allow: file.relay_allow.unwrap_or(d.relay_allow),
            gop_max_frames: file.gop_max_frames.unwrap_or(d.gop_max_frames),
            gop_max_bytes: file.gop_max_bytes.unwrap_or(d.gop_max_bytes),
            viewer_queue: file.viewer_queue.unwrap_or(d.viewer_queue),
            relay_backoff_min_ms: pick(
                None,
                env.number("RELAY_BACKOFF_MIN_MS")?,
                file.relay_backoff_min_ms,
                d.relay_backoff_min_ms,
            ),
            relay_backoff_max_ms: pick(
                None,
                env.number("RELAY_BACKOFF_MAX_MS")?,
                file.relay_backoff_max_ms,
                d.relay_backoff_max_ms,
            ),
            config_file,
        };
        config.validated()
    }

    /// Normalises and checks the merged values; each error names the offending key.
    fn validated(mut self) -> Result<Config, ConfigError> {
        self.level = self.level.trim().to_ascii_lowercase();
        // logrus (livego) spells it "warning"; accept it so livego configs keep working.
        if self.level == "warning" {
            self.level = "warn".to_owned();
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks value ranges and address syntax without resolving any host name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_addr("rtmp_addr", &self.rtmp_addr, false)?;
        check_addr("httpflv_addr", &self.httpflv_addr, true)?;
        check_addr("hls_addr", &self.hls_addr, true)?;
        check_addr("api_addr", &self.api_addr, true)?;
        if !LOG_LEVELS.contains(&self.level.as_str()) {
            return Err(ConfigError::invalid(
                "level",
                format!(
                    "expected one of {}, got {:?}",
                    LOG_LEVELS.join(", "),
                    self.level
                ),
            ));
        }
        // The secret is shared, so only the HMAC algorithms make sense; anything else would
        // refuse every API request at run time instead of failing here.
        if !["HS256", "HS384", "HS512"].contains(&self.jwt.algorithm.as_str()) {
            return Err(ConfigError::invalid(
                "jwt.algorithm",
                format!(
                    "expected HS256, HS384 or HS512, got {:?}",
                    self.jwt.algorithm
                ),
            ));
        }
        if self.gop_num > MAX_GOP_NUM {
            return Err(ConfigError::invalid(
                "gop_num",
                format!("must be at most {MAX_GOP_NUM}, got {}", self.gop_num),
            ));
        }
        for (key, secs) in [
            ("write_timeout", self.write_timeout),
            ("read_timeout", self.read_timeout),
        ] {
            if secs < 1 {
                return Err(ConfigError::invalid(key, "must be at least 1 second"));
            }
        }
        if !(self.hls_fragment.is_finite() && self.hls_fragment > 0.0) {
            return Err(ConfigError::invalid(
                "hls_fragment",
                format!(
                    "must be a positive number of seconds, got {}",
                    self.hls_fragment
                ),
            ));
        }
        // Zero would make every stream or viewer unusable rather than "unlimited".
        for (key, n) in [
            ("hls_window", self.hls_window),
            ("gop_max_frames", self.gop_max_frames),
            ("gop_max_bytes", self.gop_max_bytes),
            ("viewer_queue", self.viewer_queue),
        ] {
            if n < 1 {
                return Err(ConfigError::invalid(key, "must be at least 1"));
            }
        }
        if self.relay_backoff_min_ms < 1 {
            return Err(ConfigError::invalid(
                "relay_backoff_min_ms",
                "must be at least 1 millisecond",
            ));
        }
        if self.relay_backoff_max_ms < self.relay_backoff_min_ms {
            return Err(ConfigError::invalid(
                "relay_backoff_max_ms",
                format!(
                    "must be at least relay_backoff_min_ms ({}), got {}",
                    self.relay_backoff_min_ms, self.relay_backoff_max_ms
                ),
            ));
        }
        for (i, app) in self.server.iter().enumerate() {
            let key = format!("server[{i}].appname");
            if app.appname.trim().is_empty() {
                return Err(ConfigError::invalid(key, "must not be empty"));
            }
            // The app is the first path segment of rtmp://host/app/stream and of the HTTP URLs.
            if app.appname.contains('/') {
                return Err(ConfigError::invalid(
                    key,
                    format!("must not contain '/', got {:?}", app.appname),
                ));
            }
            for url in &app.static_push {
                if let Err(e) = switchboard_actors::relay_session::RtmpUrl::parse_base(url) {
                    return Err(ConfigError::invalid(
                        format!("server[{i}].static_push"),
                        format!("{url:?}: {e}"),
                    ));
                }
            }
            if self.server[..i].iter().any(|a| a.appname == app.appname) {
                return Err(ConfigError::invalid(
                    key,
                    format!("duplicate app name {:?}", app.appname),
                ));
            }
        }
        Ok(())
    }

    /// The configured app called `name`, if it accepts live streams.
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.server.iter().find(|a| a.appname == name && a.live)
    }
}

/// Syntax only, so that a typo fails at startup without waiting on DNS.
fn check_addr(key: &str, addr: &str, may_be_empty: bool) -> Result<(), ConfigError> {
    if addr.is_empty() {
        return if may_be_empty {
            Ok(())
        } else {
            Err(ConfigError::invalid(key, "must not be empty"))
        };
    }
    let Some((_, port)) = addr.rsplit_once(':') else {
        return Err(ConfigError::invalid(
            key,
            format!("expected \"host:port\" or \":port\", got {addr:?}"),
        ));
    };
    if port.parse::<u16>().is_err() {
        return Err(ConfigError::invalid(
            key,
            format!("port {port:?} in {addr:?} is not a number from 0 to 65535"),
        ));
    }
    Ok(())
}

/// Turns a livego-style listen address into a socket address. ":1935" means every IPv4
/// interface, as Go's net.Listen does for an empty host; host names are resolved and the first
/// result is used.
pub fn socket_addr(addr: &str) -> Result<SocketAddr, ConfigError> {
    let bad = |reason: String| ConfigError::Addr {
        addr: addr.to_owned(),
        reason,
    };
    if addr.is_empty() {
        return Err(bad("empty address".to_owned()));
    }
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    };
    let mut resolved = full.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    resolved
        .next()
        .ok_or_else(|| bad("resolved to no addresses".to_owned()))
}

/// Like [`socket_addr`], but an empty address means the listener is disabled.
pub fn listen_addr(addr: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if addr.is_empty() {
        Ok(None)
    } else {
        socket_addr(addr).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file under the system temp dir that is removed when the test ends, pass or fail.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> TempFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "switchboard-config-test-{}-{}.toml",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, contents).expect("write temp config");
            TempFile(path)
        }

        fn path(&self) -> String {
            self.0.to_string_lossy().into_owned()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        std::iter::once("switchboard")
            .chain(list.iter().copied())
            .map(str::to_owned)
            .collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(list: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(args(list), &move |k| env.get(k).cloned())
    }

    /// Loads with `file` as an explicit config file, so the repo's config.toml never interferes.
    fn load_with_file(
        file: &str,
        list: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let file = TempFile::new(file);
        let path = file.path();
        let mut all = vec!["--config_file", path.as_str()];
        all.extend_from_slice(list);
        load(&all, env)
    }

    fn invalid_key(result: Result<Config, ConfigError>) -> String {
        match result {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_livego_and_the_brief() {
        let c = Config::default();
        assert_eq!(c.rtmp_addr, ":1935");
        assert_eq!(c.httpflv_addr, ":7001");
        assert_eq!(c.hls_addr, ":7002");
        assert_eq!(c.api_addr, ":8090");
        assert_eq!(c.level, "info");
        assert_eq!(c.gop_num, 1);
        assert_eq!((c.write_timeout, c.read_timeout), (10, 10));
        assert!(!c.rtmp_noauth && !c.flv_archive && !c.hls_keep_after_end);
        assert_eq!(c.flv_dir, PathBuf::from("tmp"));
        assert_eq!(c.hls_fragment, 2.0);
        assert_eq!(c.hls_window, 6);
        assert_eq!((c.redis_addr.as_str(), c.redis_pwd.as_str()), ("", ""));
        assert_eq!(c.jwt.secret, "");
        assert_eq!(c.jwt.algorithm, "HS256");
        assert_eq!(c.server, vec![AppConfig::new("live")]);
        assert_eq!(c.publish_conflict, PublishConflict::Takeover);
        assert_eq!(c.api_cors_origins, "*");
        assert!(c.relay_allow.is_empty());
        assert_eq!(c.gop_max_frames, 2500);
        assert_eq!(c.gop_max_bytes, 64 * 1024 * 1024);
        assert_eq!(c.viewer_queue, 512);
        assert_eq!(c.config_file, PathBuf::from("config.toml"));
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn the_shipped_config_toml_loads_to_exactly_the_defaults() {
        let file = parse_file(include_str!("../config.toml"), Path::new("config.toml"))
            .expect("config.toml parses");
        let cli = Cli::try_parse_from(args(&[])).expect("empty command line");
        let config = Config::merge(cli, &Env(&no_env), file, PathBuf::from(DEFAULT_CONFIG_FILE))
            .expect("config.toml is valid");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn the_shipped_config_toml_lists_every_key() {
        let table: toml::Table = toml::from_str(include_str!("../config.toml")).expect("parses");
        for key in FILE_KEYS {
            assert!(table.contains_key(key), "config.toml lacks {key}");
        }
    }

    #[test]
    fn an_empty_file_and_no_flags_give_the_defaults() {
        let file = TempFile::new("");
        let config = load(&["--config_file", &file.path()], &[]).expect("loads");
        assert_eq!(
            config,
            Config {
                config_file: file.0.clone(),
                ..Config::default()
            }
        );
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default_for_each_type() {
        // (file line, env var and value, flag, check of the loaded value per level)
        struct Case {
            file: &'static str,
            env: (&'static str, &'static str),
            flag: &'static str,
            value: fn(&Config) -> String,
            expect: [&'static str; 4], // default, file, env, flag
        }
        let cases = [
            Case {
                file: "rtmp_addr = \":1001\"",
                env: ("RTMP_ADDR", ":1002"),
                flag: "--rtmp_addr=:1003",
                value: |c| c.rtmp_addr.clone(),
                expect: [":1935", ":1001", ":1002", ":1003"],
            },
            Case {
                file: "gop_num = 2",
                env: ("GOP_NUM", "3"),
                flag: "--gop_num=4",
                value: |c| c.gop_num.to_string(),
                expect: ["1", "2", "3", "4"],
            },
            Case {
                file: "read_timeout = 20",
                env: ("READ_TIMEOUT", "30"),
                flag: "--read_timeout=40",
                value: |c| c.read_timeout.to_string(),
                expect: ["10", "20", "30", "40"],
            },
            Case {
                file: "flv_archive = true",
                env: ("FLV_ARCHIVE", "false"),
                flag: "--flv_archive",
                value: |c| c.flv_archive.to_string(),
                expect: ["false", "true", "false", "true"],
            },
            Case {
                file: "hls_fragment = 3.5",
                env: ("HLS_FRAGMENT", "4.5"),
                flag: "--hls_fragment=5.5",
                value: |c| c.hls_fragment.to_string(),
                expect: ["2", "3.5", "4.5", "5.5"],
            },
            Case {
                file: "flv_dir = \"/from/file\"",
                env: ("FLV_DIR", "/from/env"),
                flag: "--flv_dir=/from/flag",
                value: |c| c.flv_dir.display().to_string(),
                expect: ["tmp", "/from/file", "/from/env", "/from/flag"],
            },
            Case {
                file: "publish_conflict = \"reject\"",
                env: ("PUBLISH_CONFLICT", "takeover"),
                flag: "--publish_conflict=reject",
                value: |c| format!("{:?}", c.publish_conflict),
                expect: ["Takeover", "Reject", "Takeover", "Reject"],
            },
            Case {
                file: "[jwt]\nsecret = \"file\"",
                env: ("JWT_SECRET", "env"),
                flag: "--jwt_secret=flag",
                value: |c| c.jwt.secret.clone(),
                expect: ["", "file", "env", "flag"],
            },
        ];
        for case in cases {
            let levels = [
                load_with_file("", &[], &[]),
                load_with_file(case.file, &[], &[]),
                load_with_file(case.file, &[], &[case.env]),
                load_with_file(case.file, &[case.flag], &[case.env]),
            ];
            for (level, (result, expected)) in levels.into_iter().zip(case.expect).enumerate() {
                let config = result.unwrap_or_else(|e| panic!("{}: {e}", case.flag));
                assert_eq!(
                    (case.value)(&config),
                    expected,
                    "{} at precedence level {level}",
                    case.flag
                );
            }
        }
    }

    #[test]
    fn the_livego_seed_command_line_works() {
        let config =
            load_with_file("", &["--flv_dir=./data", "--level=debug"], &[]).expect("loads");
        assert_eq!(config.flv_dir, PathBuf::from("./data"));
        assert_eq!(config.level, "debug");
        let spaced =
            load_with_file("", &["--flv_dir", "./data", "--level", "debug"], &[]).expect("loads");
        assert_eq!(
            Config {
                config_file: config.config_file.clone(),
                ..spaced
            },
            config
        );
    }

    #[test]
    fn config_is_an_alias_for_config_file() {
        let file = TempFile::new("gop_num = 7");
        let config = load(&["--config", &file.path()], &[]).expect("loads");
        assert_eq!(config.gop_num, 7);
        assert_eq!(config.config_file, file.0);
    }

    #[test]
    fn config_file_env_names_the_file() {
        let file = TempFile::new("gop_num = 5");
        let config = load(&[], &[("CONFIG_FILE", &file.path())]).expect("loads");
        assert_eq!(config.gop_num, 5);
    }

    #[test]
    fn a_missing_default_file_means_defaults() {
        let missing = std::env::temp_dir().join("switchboard-config-test-never-created.toml");
        let file = read_file(&missing, false).expect("missing default file is fine");
        let cli = Cli::try_parse_from(args(&[])).expect("empty command line");
        let config = Config::merge(cli, &Env(&no_env), file, missing.clone()).expect("valid");
        assert_eq!(
            config,
            Config {
                config_file: missing,
                ..Config::default()
            }
        );
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let missing = std::env::temp_dir().join("switchboard-config-test-never-created.toml");
        let missing = missing.to_string_lossy().into_owned();
        for result in [
            load(&["--config_file", &missing], &[]),
            load(&[], &[("CONFIG_FILE", &missing)]),
        ] {
            match result {
                Err(e @ ConfigError::FileNotFound { .. }) => {
                    assert!(e.to_string().contains(&missing), "{e}")
                }
                other => panic!("expected FileNotFound, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_malformed_file_error_names_the_file_and_line() {
        for text in [
            "level = \"info\"\ngop_num = \n",
            "level = \"info\"\ngop_num = \"many\"\n",
            "[[server]]\nappname = \"live\"\nlive = \"yes\"\n",
            "publish_conflict = \"sometimes\"\n",
        ] {
            let file = TempFile::new(text);
            let err = load(&["--config_file", &file.path()], &[]).expect_err(text);
            let message = err.to_string();
            assert!(matches!(err, ConfigError::FileParse { .. }), "{message}");
            assert!(message.contains(&file.path()), "{message}");
            assert!(message.contains("line"), "{message}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let config = load_with_file(
            "gop_num = 3\nnot_a_key = 1\n[jwt]\nissuer = \"x\"\n[[server]]\nappname = \"a\"\ncolour = 1\n",
            &[],
            &[],
        )
        .expect("unknown keys only warn");
        assert_eq!(config.gop_num, 3);
        assert_eq!(config.server, vec![AppConfig::new("a")]);
    }

    #[test]
    fn server_entries_default_missing_keys() {
        let config = load_with_file(
            "[[server]]\nappname = \"live\"\nhls = false\n\n[[server]]\nappname = \"vod\"\nlive = false\nstatic_push = [\"rtmp://a/b\"]\n",
            &[],
            &[],
        )
        .expect("loads");
        assert_eq!(
            config.server,
            vec![
                AppConfig {
                    hls: false,
                    ..AppConfig::new("live")
                },
                AppConfig {
                    live: false,
                    static_push: vec!["rtmp://a/b".to_owned()],
                    ..AppConfig::new("vod")
                },
            ]
        );
        assert_eq!(config.app("live").map(|a| a.hls), Some(false));
        assert!(config.app("vod").is_none(), "live = false hides the app");
        assert!(config.app("other").is_none());
    }

    #[test]
    fn boolean_flags_accept_bare_and_explicit_forms() {
        let cases: [(&[&str], bool); 5] = [
            (&[], false),
            (&["--flv_archive"], true),
            (&["--flv_archive=true"], true),
            (&["--flv_archive=false"], false),
            (&["--flv_archive", "--level=debug"], true),
        ];
        for (flags, expected) in cases {
            let config = load_with_file("flv_archive = false", flags, &[]).expect("loads");
            assert_eq!(config.flv_archive, expected, "{flags:?}");
        }
        let off =
            load_with_file("flv_archive = true", &["--flv_archive=false"], &[]).expect("loads");
        assert!(
            !off.flv_archive,
            "an explicit false flag overrides the file"
        );
        assert!(matches!(
            load_with_file("", &["--flv_archive=maybe"], &[]),
            Err(ConfigError::Clap(_))
        ));
    }

    #[test]
    fn a_bad_env_value_names_the_variable() {
        let err = load_with_file("", &[], &[("GOP_NUM", "abc")]).expect_err("GOP_NUM=abc");
        assert!(
            matches!(&err, ConfigError::Env { var: "GOP_NUM", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("GOP_NUM"), "{err}");
        let err = load_with_file("", &[], &[("RTMP_NOAUTH", "perhaps")]).expect_err("bad bool");
        assert!(err.to_string().contains("RTMP_NOAUTH"), "{err}");
        let err = load_with_file("", &[], &[("PUBLISH_CONFLICT", "share")]).expect_err("bad mode");
        assert!(err.to_string().contains("PUBLISH_CONFLICT"), "{err}");
    }

    #[test]
    fn env_booleans_accept_go_spellings() {
        for (value, expected) in [
            ("1", true),
            ("TRUE", true),
            ("yes", true),
            ("0", false),
            ("F", false),
        ] {
            let config = load_with_file("", &[], &[("RTMP_NOAUTH", value)]).expect(value);
            assert_eq!(config.rtmp_noauth, expected, "{value}");
        }
    }

    #[test]
    fn an_empty_env_address_disables_a_listener() {
        let config = load_with_file("", &[], &[("API_ADDR", "")]).expect("loads");
        assert_eq!(config.api_addr, "");
        assert_eq!(listen_addr(&config.api_addr).expect("empty is fine"), None);
    }

    #[test]
    fn help_and_version_surface_as_clap_errors_with_status_zero() {
        for flag in ["--help", "-h", "--version"] {
            match load(&[flag], &[]) {
                Err(e @ ConfigError::Clap(_)) => assert_eq!(e.exit_code(), 0, "{flag}"),
                other => panic!("{flag}: expected a clap error, got {other:?}"),
            }
        }
        let usage = load(&["--no_such_flag"], &[]).expect_err("unknown flag");
        assert_eq!(usage.exit_code(), 2);
    }

    #[test]
    fn socket_addr_maps_a_bare_port_to_every_interface() {
        let expected: SocketAddr = "0.0.0.0:1935".parse().expect("literal");
        assert_eq!(socket_addr(":1935").expect(":1935"), expected);
        let v4: SocketAddr = "127.0.0.1:8090".parse().expect("literal");
        assert_eq!(socket_addr("127.0.0.1:8090").expect("v4"), v4);
        let v6: SocketAddr = "[::1]:8090".parse().expect("literal");
        assert_eq!(socket_addr("[::1]:8090").expect("v6"), v6);
        let local = socket_addr("localhost:7001").expect("localhost resolves");
        assert!(local.ip().is_loopback());
        assert_eq!(local.port(), 7001);
        assert!(socket_addr("").is_err());
        assert!(socket_addr("1935").is_err());
        assert_eq!(
            listen_addr(":7002").expect("valid"),
            Some("0.0.0.0:7002".parse().expect("literal"))
        );
    }

    #[test]
    fn validation_errors_name_the_key() {
        let cases: [(&str, &[&str], &str); 13] = [
            ("", &["--gop_num=17"], "gop_num"),
            ("", &["--write_timeout=0"], "write_timeout"),
            ("", &["--read_timeout=0"], "read_timeout"),
            ("", &["--hls_fragment=0"], "hls_fragment"),
            ("", &["--hls_fragment=-1"], "hls_fragment"),
            ("", &["--hls_window=0"], "hls_window"),
            ("", &["--level=loud"], "level"),
            ("viewer_queue = 0", &[], "viewer_queue"),
            ("", &["--rtmp_addr="], "rtmp_addr"),
            ("", &["--api_addr=:http"], "api_addr"),
            ("[[server]]\nappname = \"\"", &[], "server[0].appname"),
            ("[[server]]\nappname = \"a/b\"", &[], "server[0].appname"),
            (
                "[[server]]\nappname = \"live\"\n[[server]]\nappname = \"live\"",
                &[],
                "server[1].appname",
            ),
        ];
        for (file, flags, key) in cases {
            let result = load_with_file(file, flags, &[]);
            if let Err(e) = &result {
                assert!(e.to_string().contains(key), "{e}");
            }
            assert_eq!(invalid_key(result), key, "{file} {flags:?}");
        }
        let err =
            load_with_file("", &[], &[("PUBLISH_CONFLICT", "REJECT")]).expect("case-insensitive");
        assert_eq!(err.publish_conflict, PublishConflict::Reject);
        assert!(matches!(
            load_with_file("", &["--publish_conflict=share"], &[]),
            Err(ConfigError::Clap(_))
        ));
    }

    #[test]
    fn level_is_normalised() {
        let config = load_with_file("level = \"WARNING\"", &[], &[]).expect("loads");
        assert_eq!(config.level, "warn");
    }

    #[test]
    fn relay_keys_come_from_file_or_env_and_are_checked() {
        let config = load_with_file(
            "relay_backoff_min_ms = 250\nrelay_backoff_max_ms = 4000",
            &[],
            &[("RELAY_BACKOFF_MAX_MS", "5000")],
        )
        .expect("loads");
        assert_eq!(
            (config.relay_backoff_min_ms, config.relay_backoff_max_ms),
            (250, 5000)
        );
        for (file, key) in [
            ("relay_backoff_min_ms = 0", "relay_backoff_min_ms"),
            (
                "relay_backoff_min_ms = 5000\nrelay_backoff_max_ms = 1000",
                "relay_backoff_max_ms",
            ),
            (
                "[[server]]\nappname = \"live\"\nstatic_push = [\"http://cdn/live\"]",
                "server[0].static_push",
            ),
        ] {
            assert_eq!(invalid_key(load_with_file(file, &[], &[])), key, "{file}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = load_with_file("", &["--jwt_secret=s3cret", "--redis_pwd=hunter2"], &[])
            .expect("loads");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn a_non_hmac_jwt_algorithm_is_refused_at_startup() {
        let err = Config::load_from(
            vec!["switchboard".into(), "--jwt_algorithm=RS256".into()],
            &|_| None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("jwt.algorithm"), "{err}");
    }
}
