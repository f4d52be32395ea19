//! Switchboard: a live-streaming server. RTMP in; RTMP, HTTP-FLV (and HLS) out; a
//! livego-compatible JSON API.
//!
//! `main` only wires: configuration → key store → registry → listeners and HTTP servers.

/// Every HTTP surface starts alike: `main` owns signals and shutdown, and endless bodies (FLV)
/// must not hold a shutdown for actix-web's default 30 s. Evaluates to the running server and
/// the address it listens on.
macro_rules! start_http_server {
    ($builder:expr, $workers:expr, $addr:expr) => {{
        let server = $builder
            .workers($workers)
            .disable_signals()
            .shutdown_timeout($crate::HTTP_SHUTDOWN_TIMEOUT_SECS)
            .bind($addr)?;
        let local = server.addrs().first().copied().unwrap_or($addr);
        Ok((server.run(), local))
    }};
}

mod api;
mod config;
mod context;
mod envelope;
mod http_flv;
mod http_hls;
mod keys;
mod listener;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Arbiter};
use log::{error, info};
use switchboard_actors::hls_hub::HlsHub;
use switchboard_actors::key_store::KeyStore;
use switchboard_actors::media::gop::GopLimits;
use switchboard_actors::recorder_hub::RecorderHub;
use switchboard_actors::registry::{
    AddPublishObserver, ArbiterPool, ListStreams, Registry, Shutdown,
};
use switchboard_actors::relay_manager::RelayManager;
use switchboard_actors::settings::{
    AppRules, ConflictPolicy, HlsSettings, RelaySettings, StreamSettings,
};

use crate::config::{listen_addr, socket_addr, Config, PublishConflict};
use crate::context::ServerContext;

/// How long HTTP workers get to finish on shutdown; endless FLV bodies would hold them forever.
/// How long a shutdown waits for streams to end, then for their last writes.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(500);

pub const HTTP_SHUTDOWN_TIMEOUT_SECS: u64 = 2;

fn main() {
    // Logging starts before the configuration is read so its warnings are seen; the
    // configured level is applied right after.
    init_logging();
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => e.exit(),
    };
    if std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(config.level.parse().unwrap_or(log::LevelFilter::Info));
    }
    let system = actix_rt::System::new();
    if let Err(e) = system.block_on(run(config)) {
        error!("{e}");
        std::process::exit(1);
    }
}

fn init_logging() {
    // RUST_LOG, when set, replaces the configured level (e.g. per module).
    let mut builder = env_logger::Builder::new();
    builder.parse_filters("warn,switchboard=trace,switchboard_actors=trace");
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder.format_timestamp_millis().init();
}

fn stream_settings(config: &Config) -> StreamSettings {
    StreamSettings {
        apps: config
            .server
            .iter()
            .map(|app| {
                (
                    app.appname.clone(),
                    AppRules {
                        live: app.live,
                        flv: app.flv,
                        hls: app.hls,
                        static_push: app.static_push.clone(),
                    },
                )
            })
            .collect(),
        gop: GopLimits {
            gops: config.gop_num,
            max_frames: config.gop_max_frames,
            max_bytes: config.gop_max_bytes,
        },
        viewer_queue: config.viewer_queue,
        write_timeout: Duration::from_secs(config.write_timeout),
        read_timeout: Duration::from_secs(config.read_timeout),
        conflict: match config.publish_conflict {
            PublishConflict::Takeover => ConflictPolicy::Takeover,
            PublishConflict::Reject => ConflictPolicy::Reject,
        },
        noauth: config.rtmp_noauth,
        hls: HlsSettings {
            // Validated positive and finite; the bounds keep absurd values from turning into
            // one-frame segments or segments longer than any player waits for.
            fragment: Duration::try_from_secs_f64(config.hls_fragment.clamp(0.1, 600.0))
                .unwrap_or(Duration::from_secs(2)),
            window: config.hls_window,
            keep_after_end: config.hls_keep_after_end,
        },
        relays: RelaySettings {
            backoff_min: Duration::from_millis(config.relay_backoff_min_ms),
            backoff_max: Duration::from_millis(config.relay_backoff_max_ms),
            allow: config.relay_allow.clone(),
        },
    }
}

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot listen on {what} address {addr}: {error}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
}

fn bind_error(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> StartError {
    move |error| StartError::Bind { what, addr, error }
}

async fn run(config: Config) -> Result<(), StartError> {
    let settings = Arc::new(stream_settings(&config));
    let keys: Arc<dyn KeyStore> = keys::open(&config).await?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    // Arbiters are threads with their own event loop; the handles keep them alive for the
    // life of the process.
    let pool = ArbiterPool::new((0..workers).map(|_| Arbiter::new().handle()).collect());
    let registry = Registry::new(settings.clone(), pool.clone()).start();
    let hls_pool = pool.clone();

    let rtmp_addr = socket_addr(&config.rtmp_addr)?;
    let rtmp = tokio::net::TcpListener::bind(rtmp_addr)
        .await
        .map_err(bind_error("RTMP", rtmp_addr))?;
    let rtmp_local = rtmp.local_addr().unwrap_or(rtmp_addr);
    actix_rt::spawn(
        listener::RtmpListener {
            listener: rtmp,
            pool,
            registry: registry.clone(),
            keys: keys.clone(),
            settings: settings.clone(),
        }
        .run(),
    );

    let hls = HlsHub::new(registry.clone(), settings.clone(), hls_pool).start();
    // Without an HLS listener nobody could watch what segmenters would produce.
    if listen_addr(&config.hls_addr)?.is_some() {
        registry.do_send(AddPublishObserver(hls.clone().recipient()));
    }
    let relays = RelayManager::new(registry.clone(), settings.clone()).start();
    registry.do_send(AddPublishObserver(relays.clone().recipient()));
    if config.flv_archive {
        let recorders = RecorderHub::new(registry.clone(), config.flv_dir.clone()).start();
        registry.do_send(AddPublishObserver(recorders.recipient()));
        info!("recording every stream to {}", config.flv_dir.display());
    }
    let ctx = ServerContext {
        config: Arc::new(config),
        settings,
        registry,
        keys,
        hls,
        relays,
        workers,
    };
    let config = ctx.config.as_ref();
    let mut servers = Vec::new();
    let mut flv_local = None;
    if let Some(addr) = listen_addr(&config.httpflv_addr)? {
        let (server, local) = http_flv::start(&ctx, addr).map_err(bind_error("HTTP-FLV", addr))?;
        flv_local = Some(local);
        servers.push(server);
    }
    let mut hls_local = None;
    if let Some(addr) = listen_addr(&config.hls_addr)? {
        let (server, local) = http_hls::start(&ctx, addr).map_err(bind_error("HLS", addr))?;
        hls_local = Some(local);
        servers.push(server);
    }
    let mut api_local = None;
    if let Some(addr) = listen_addr(&config.api_addr)? {
        let (server, local) = api::start(&ctx, addr).map_err(bind_error("API", addr))?;
        api_local = Some(local);
        servers.push(server);
    }

    announce(config, rtmp_local, flv_local, hls_local, api_local);

    let handles: Vec<_> = servers.iter().map(|s| s.handle()).collect();
    for server in servers {
        actix_rt::spawn(server);
    }
    wait_for_shutdown_signal().await;
    info!("shutting down: ending every stream");
    end_streams(&ctx.registry).await;
    for handle in handles {
        handle.stop(true).await;
    }
    actix_rt::System::current().stop();
    Ok(())
}

/// Tell every client why it is being disconnected, and let subscribers finish what they
/// write (recordings get their duration patched, playlists their ENDLIST) before the process
/// exits; capped so a stuck client cannot hold the shutdown.
async fn end_streams(registry: &actix::Addr<Registry>) {
    let _ = registry.send(Shutdown).await;
    let deadline = std::time::Instant::now() + SHUTDOWN_DRAIN;
    while std::time::Instant::now() < deadline {
        match registry.send(ListStreams).await {
            Ok(streams) if !streams.is_empty() => {
                actix_rt::time::sleep(Duration::from_millis(100)).await
            }
            _ => break,
        }
    }
    // Sessions flush their last status and recorders close their files on other threads.
    actix_rt::time::sleep(SHUTDOWN_FLUSH).await;
}

/// Log what a user needs to start streaming and watching.
fn announce(
    config: &Config,
    rtmp: SocketAddr,
    flv: Option<SocketAddr>,
    hls: Option<SocketAddr>,
    api: Option<SocketAddr>,
) {
    let host = |addr: SocketAddr| {
        if addr.ip().is_unspecified() {
            format!("localhost:{}", addr.port())
        } else {
            addr.to_string()
        }
    };
    // livego's default app first, else whichever app takes streams.
    let app = config
        .app("live")
        .or_else(|| config.server.iter().find(|a| a.live))
        .map(|a| a.appname.as_str())
        .unwrap_or("live");
    info!("switchboard {} started", env!("CARGO_PKG_VERSION"));
    info!("RTMP listening on {rtmp}");
    if let Some(api) = api {
        if config.rtmp_noauth {
            info!(
                "OBS server: rtmp://{}/{app}  stream key: <room> (rtmp_noauth is on)",
                host(rtmp)
            );
        } else {
            info!(
                "get a stream key:  curl 'http://{}/control/get?room=<room>'",
                host(api)
            );
            info!(
                "OBS server: rtmp://{}/{app}  stream key: <the key>",
                host(rtmp)
            );
        }
    }
    info!("play RTMP:     rtmp://{}/{app}/<room>", host(rtmp));
    if let Some(flv) = flv {
        info!("play HTTP-FLV: http://{}/{app}/<room>.flv", host(flv));
    }
    if let Some(hls) = hls {
        info!("play HLS:      http://{}/{app}/<room>.m3u8", host(hls));
    }
    if let Some(api) = api {
        info!("API + console: http://{}/", host(api));
    }
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use actix_rt::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = actix_rt::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = actix_rt::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = actix_rt::signal::ctrl_c().await;
    }
}
