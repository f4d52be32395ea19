//! The Redis key store (`redis_addr`, `redis_pwd`): keys survive a server restart and can be
//! shared by several servers.
//!
//! Rooms and keys live in separate namespaces (`switchboard:room:<room>` → key,
//! `switchboard:key:<key>` → room), so a room name is never accepted as a key (livego #213).
//! Every change to both mappings is one Lua script, which Redis runs atomically.
//!
//! Availability: the server starts whether or not Redis is up. Every call is bounded by
//! [`CALL_TIMEOUT`] and answers [`KeyStoreError::Unavailable`] when Redis cannot be reached (the
//! API then says 503, a publisher gets `NetStream.Publish.Failed`). The connection manager
//! reconnects on its own, and a watcher pings Redis so that an outage and the recovery are logged
//! once each and the connection is re-established before the next caller needs it.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_rt::{Arbiter, ArbiterHandle};
use log::{debug, error, info};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError, RedisResult, Script,
};
use switchboard_actors::key_store::{BoxFuture, KeyStore, KeyStoreError};
use tokio::sync::oneshot;

use super::new_key;

/// Redis key prefix of the room → key namespace.
pub const ROOM_PREFIX: &str = "switchboard:room:";
/// Redis key prefix of the key → room namespace.
pub const KEY_PREFIX: &str = "switchboard:key:";
/// The longest any store call may take, so that an API request or a publish never hangs on a
/// Redis that is down or unreachable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_PORT: u16 = 6379;
/// A fresh key colliding with an existing one is astronomically unlikely (48 alphanumerics);
/// a bound keeps a broken Redis from looping us forever.
const NEW_KEY_ATTEMPTS: usize = 3;
/// How often the watcher pings a healthy Redis, and a Redis that is down.
const WATCH_HEALTHY: Duration = Duration::from_secs(5);
const WATCH_DOWN: Duration = Duration::from_secs(1);
/// Reachability as last seen.
const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Returns the room's key, creating it when the room has none.
/// KEYS[1] room mapping, KEYS[2] candidate key mapping; ARGV[1] room, ARGV[2] candidate key.
/// Returns nil when the candidate key is taken (the caller retries with another).
static GET_OR_CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local current = redis.call('GET', KEYS[1])
        if current then return current end
        if redis.call('EXISTS', KEYS[2]) == 1 then return false end
        redis.call('SET', KEYS[2], ARGV[1])
        redis.call('SET', KEYS[1], ARGV[2])
        return ARGV[2]
        ",
    )
});

/// Gives the room a new key and revokes the old one.
/// KEYS as for GET_OR_CREATE; ARGV[3] the key namespace prefix (to delete the old key mapping).
static RESET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[2]) == 1 then return false end
        local old = redis.call('GET', KEYS[1])
        if old then redis.call('DEL', ARGV[3] .. old) end
        redis.call('SET', KEYS[2], ARGV[1])
        redis.call('SET', KEYS[1], ARGV[2])
        return ARGV[2]
        ",
    )
});

/// Forgets the room and its key. KEYS[1] room mapping; ARGV[1] the key namespace prefix.
/// Returns 1 when the room existed, 0 otherwise.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local old = redis.call('GET', KEYS[1])
        if not old then return 0 end
        redis.call('DEL', KEYS[1], ARGV[1] .. old)
        return 1
        ",
    )
});

/// `redis_addr` could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadAddress(String);

pub struct RedisKeyStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// `host:port` (never the password), for messages.
    target: String,
    /// [`UNKNOWN`], [`UP`] or [`DOWN`]: so that each change is logged once, whoever sees it.
    state: AtomicU8,
    /// All Redis I/O runs on this one thread: the connection manager spawns its connection and
    /// reconnection tasks on whichever runtime polls it, and the callers (API workers, RTMP
    /// arbiters) each run their own.
    arbiter: ArbiterHandle,
    manager: ConnectionManager,
}

impl RedisKeyStore {
    /// Set up the store for `addr` (`host:port`, `:port`, `host`, or a `redis://` URL) without
    /// waiting for Redis: it may be down now and come up later.
    pub async fn start(addr: &str, password: &str) -> Result<RedisKeyStore, BadAddress> {
        let info = connection_info(addr, password)?;
        let target = info.addr().to_string();
        let client = redis::Client::open(info)
            .map_err(|e| BadAddress(format!("{addr:?} is not a usable Redis address: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(CALL_TIMEOUT))
            // Reconnection is retried by the next call and by the watcher; long back-off series
            // inside the manager would only hold callers until their timeout.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let arbiter = Arbiter::new().handle();
        let (tx, rx) = oneshot::channel();
        arbiter.spawn(async move {
            let _ = tx.send(client.get_connection_manager_lazy(config));
        });
        let manager = match rx.await {
            Ok(Ok(manager)) => manager,
            Ok(Err(e)) => return Err(BadAddress(format!("Redis at {target}: {e}"))),
            Err(_) => return Err(BadAddress("the Redis thread did not start".to_string())),
        };
        let shared = Arc::new(Shared {
            target,
            state: AtomicU8::new(UNKNOWN),
            arbiter,
            manager,
        });
        let watcher = shared.clone();
        shared.arbiter.spawn(async move { watcher.watch().await });
        Ok(RedisKeyStore { shared })
    }

    /// `host:port` of the Redis server (without credentials).
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// Run `op` on the Redis thread, bounded by [`CALL_TIMEOUT`].
    fn call<T, F, Fut>(&self, op: F) -> BoxFuture<Result<T, KeyStoreError>>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
    {
        let shared = self.shared.clone();
        let (tx, rx) = oneshot::channel();
        let manager = shared.manager.clone();
        let observer = shared.clone();
        let spawned = shared.arbiter.spawn(async move {
            let result = match tokio::time::timeout(CALL_TIMEOUT, op(manager)).await {
                Ok(Ok(value)) => {
                    observer.came_up();
                    Ok(value)
                }
                Ok(Err(e)) => {
                    let why = describe(&e);
                    if is_connectivity(&e) {
                        observer.went_down(&why);
                    }
                    Err(why)
                }
                Err(_) => {
                    let why = format!("no answer within {} s", CALL_TIMEOUT.as_secs());
                    observer.went_down(&why);
                    Err(why)
                }
            };
            let _ = tx.send(result);
        });
        Box::pin(async move {
            let unavailable = |why: &str| {
                KeyStoreError::Unavailable(format!("Redis at {}: {why}", shared.target))
            };
            if !spawned {
                return Err(unavailable("the Redis client thread has stopped"));
            }
            // The margin lets the inner timeout, which observes the outage, fire first.
            match tokio::time::timeout(CALL_TIMEOUT + Duration::from_millis(500), rx).await {
                Ok(Ok(result)) => result.map_err(|why| unavailable(&why)),
                Ok(Err(_)) => Err(unavailable("the Redis client thread has stopped")),
                Err(_) => Err(unavailable(&format!(
                    "no answer within {} s",
                    CALL_TIMEOUT.as_secs()
                ))),
            }
        })
    }

    /// Run a key-creating script with fresh candidate keys until one is not taken.
    fn assign_key(
        &self,
        script: &'static Script,
        room: &str,
    ) -> BoxFuture<Result<String, KeyStoreError>> {
        let room = room.to_string();
        self.call(move |mut conn| async move {
            for _ in 0..NEW_KEY_ATTEMPTS {
                let candidate = new_key();
                let assigned: Option<String> = script
                    .key(format!("{ROOM_PREFIX}{room}"))
                    .key(format!("{KEY_PREFIX}{candidate}"))
                    .arg(&room)
                    .arg(&candidate)
                    .arg(KEY_PREFIX)
                    .invoke_async(&mut conn)
                    .await?;
                if let Some(key) = assigned {
                    return Ok(key);
                }
            }
            Err(RedisError::from((
                ErrorKind::Client,
                "every fresh key collided with an existing one",
            )))
        })
    }
}

impl Shared {
    /// Ping Redis forever: often while it is down, so the connection is back before the next
    /// caller needs it; rarely while it is up, so an idle outage is still noticed.
    async fn watch(self: Arc<Self>) {
        loop {
            let mut conn = self.manager.clone();
            let ping = tokio::time::timeout(
                CALL_TIMEOUT,
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await;
            match ping {
                Ok(Ok(_)) => self.came_up(),
                Ok(Err(e)) => self.went_down(&describe(&e)),
                Err(_) => self.went_down("no answer in time"),
            }
            let pause = if self.state.load(Ordering::Relaxed) == UP {
                WATCH_HEALTHY
            } else {
                WATCH_DOWN
            };
            tokio::time::sleep(pause).await;
        }
    }

    fn came_up(&self) {
        if self.state.swap(UP, Ordering::Relaxed) != UP {
            info!("key store: connected to Redis at {}", self.target);
        }
    }

    fn went_down(&self, why: &str) {
        if self.state.swap(DOWN, Ordering::Relaxed) == DOWN {
            debug!(
                "key store: Redis at {} still unreachable: {why}",
                self.target
            );
        } else {
            error!(
                "key store: Redis at {} is unreachable ({why}); key API calls answer 503 and \
                 publishing with a key is refused until it is back; retrying every {} s",
                self.target,
                WATCH_DOWN.as_secs()
            );
        }
    }
}

impl KeyStore for RedisKeyStore {
    fn room_for_key(&self, key: &str) -> BoxFuture<Result<Option<String>, KeyStoreError>> {
        let name = format!("{KEY_PREFIX}{key}");
        self.call(move |mut conn| async move {
            redis::cmd("GET")
                .arg(name)
                .query_async::<Option<String>>(&mut conn)
                .await
        })
    }

    fn key_for_room(&self, room: &str) -> BoxFuture<Result<String, KeyStoreError>> {
        self.assign_key(&GET_OR_CREATE, room)
    }

    fn reset_key(&self, room: &str) -> BoxFuture<Result<String, KeyStoreError>> {
        self.assign_key(&RESET, room)
    }

    fn delete_room(&self, room: &str) -> BoxFuture<Result<bool, KeyStoreError>> {
        let name = format!("{ROOM_PREFIX}{room}");
        self.call(move |mut conn| async move {
            DELETE
                .key(name)
                .arg(KEY_PREFIX)
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|deleted| deleted == 1)
        })
    }
}

/// Whether `e` means Redis cannot be reached (rather than, say, a refused command).
fn is_connectivity(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn describe(e: &RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        e.to_string()
    }
}

/// livego's `redis_addr` is `host:port`; a `redis://` (or `rediss://`, `unix://`) URL is
/// accepted too. `redis_pwd`, when set, replaces any password in the URL.
fn connection_info(addr: &str, password: &str) -> Result<ConnectionInfo, BadAddress> {
    let addr = addr.trim();
    let info = if addr.contains("://") {
        addr.into_connection_info()
            .map_err(|e| BadAddress(format!("{addr:?} is not a valid Redis URL: {e}")))?
    } else {
        let (host, port) = match addr.rsplit_once(':') {
            // A bare IPv6 address has colons but no port.
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port.parse::<u16>().map_err(|_| {
                    BadAddress(format!(
                        "{addr:?} is not a valid Redis address: bad port {port:?} (expected host:port)"
                    ))
                })?;
                (host, port)
            }
            _ => (addr, DEFAULT_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        ConnectionAddr::Tcp(host.to_string(), port)
            .into_connection_info()
            .map_err(|e| BadAddress(format!("{addr:?} is not a valid Redis address: {e}")))?
    };
    if password.is_empty() {
        return Ok(info);
    }
    let settings = info.redis_settings().clone().set_password(password);
    Ok(info.set_redis_settings(settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str) -> (String, u16) {
        match connection_info(addr, "").expect(addr).addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            other => panic!("{addr}: not TCP: {other:?}"),
        }
    }

    #[test]
    fn livego_style_addresses_are_host_and_port() {
        assert_eq!(tcp("localhost:6380"), ("localhost".to_string(), 6380));
        assert_eq!(tcp("10.0.0.5"), ("10.0.0.5".to_string(), 6379));
        assert_eq!(tcp(":7000"), ("127.0.0.1".to_string(), 7000));
        assert_eq!(tcp("[::1]:7001"), ("::1".to_string(), 7001));
        assert_eq!(tcp("::1"), ("::1".to_string(), 6379));
        assert_eq!(
            tcp("redis://example.org:7002/0"),
            ("example.org".to_string(), 7002)
        );
    }

    #[test]
    fn a_bad_port_is_a_clear_error() {
        let err = connection_info("localhost:http", "").expect_err("bad port");
        assert!(err.to_string().contains("bad port"), "{err}");
        assert!(connection_info("redis://:99999", "").is_err());
    }

    #[test]
    fn the_password_is_used_but_never_shown() {
        let info = connection_info("localhost:6379", "hunter2").expect("valid");
        assert_eq!(info.redis_settings().password(), Some("hunter2"));
        assert_eq!(info.addr().to_string(), "localhost:6379");
        let url = connection_info("redis://:old@localhost:6379", "new").expect("valid");
        assert_eq!(url.redis_settings().password(), Some("new"));
    }
}
