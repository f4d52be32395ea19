//! Room-key store backends. The trait is `switchboard_actors::key_store::KeyStore`.

pub mod memory;
pub mod redis;

use std::sync::Arc;

use log::info;
use rand::distributions::Alphanumeric;
use rand::Rng;
use switchboard_actors::key_store::KeyStore;

use crate::config::{Config, ConfigError};

/// The configured store: Redis when `redis_addr` is set, else the embedded in-memory one.
/// Only a malformed `redis_addr` is an error; an unreachable Redis is not (see [`redis`]).
pub async fn open(config: &Config) -> Result<Arc<dyn KeyStore>, ConfigError> {
    if config.redis_addr.trim().is_empty() {
        if config.rtmp_noauth {
            info!("key store: in memory (unused for publishing: rtmp_noauth is on)");
        } else {
            info!(
                "key store: in memory; stream keys are lost when the server stops \
                 (set redis_addr to keep them)"
            );
        }
        return Ok(Arc::new(memory::MemoryKeyStore::new()));
    }
    let store = redis::RedisKeyStore::start(&config.redis_addr, &config.redis_pwd)
        .await
        .map_err(|e| ConfigError::Invalid {
            key: "redis_addr".to_string(),
            reason: e.to_string(),
        })?;
    info!("key store: Redis at {}", store.target());
    Ok(Arc::new(store))
}

/// Length of a publish key: livego's 48 alphanumerics (~285 bits of entropy).
pub const KEY_LEN: usize = 48;

/// A new publish key from the operating system's CSPRNG (livego used math/rand).
pub fn new_key() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(KEY_LEN)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_48_alphanumerics_and_differ() {
        let a = new_key();
        let b = new_key();
        assert_eq!(a.len(), KEY_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
