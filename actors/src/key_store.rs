//! What the actors need from a room-key store. The binary implements it (in memory, Redis);
//! the trait lives here so dependencies point one way: `src/` depends on `actors/`, never back.

use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeyStoreError {
    /// The backend cannot be reached (Redis down); callers answer 503 / `NetStream.Publish.Failed`.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
}

/// Room ↔ publish-key mapping (livego's key model, with separate namespaces for rooms and keys).
pub trait KeyStore: Send + Sync + 'static {
    /// The room a publish key belongs to, or `None` for an unknown or revoked key.
    fn room_for_key(&self, key: &str) -> BoxFuture<Result<Option<String>, KeyStoreError>>;
    /// The room's key, created on first use; the same key on every call until reset or deleted.
    fn key_for_room(&self, room: &str) -> BoxFuture<Result<String, KeyStoreError>>;
    /// A fresh key for the room; the old one stops working at once.
    fn reset_key(&self, room: &str) -> BoxFuture<Result<String, KeyStoreError>>;
    /// Forget the room and its key. `Ok(false)` when the room had no key.
    fn delete_room(&self, room: &str) -> BoxFuture<Result<bool, KeyStoreError>>;
}
