//! The embedded key store: two maps in process memory (keys are lost on restart; use Redis to
//! keep them).

use std::collections::HashMap;
use std::sync::Mutex;

use switchboard_actors::key_store::{BoxFuture, KeyStore, KeyStoreError};

use super::new_key;

#[derive(Default)]
struct Maps {
    key_by_room: HashMap<String, String>,
    room_by_key: HashMap<String, String>,
}

/// Rooms and keys live in separate maps, so a room name is never accepted as a key
/// (livego #213).
#[derive(Default)]
pub struct MemoryKeyStore {
    maps: Mutex<Maps>,
}

impl MemoryKeyStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_maps<T>(&self, f: impl FnOnce(&mut Maps) -> T) -> Result<T, KeyStoreError> {
        // A poisoned lock only means another thread panicked mid-update; the maps are still
        // consistent because every update below is a pair of inserts/removes with no panics.
        let mut maps = match self.maps.lock() {
            Ok(maps) => maps,
            Err(poisoned) => poisoned.into_inner(),
        };
        Ok(f(&mut maps))
    }

    fn assign_new_key(maps: &mut Maps, room: &str) -> String {
        let key = loop {
            let key = new_key();
            if !maps.room_by_key.contains_key(&key) {
                break key;
            }
        };
        if let Some(old) = maps.key_by_room.insert(room.to_string(), key.clone()) {
            maps.room_by_key.remove(&old);
        }
        maps.room_by_key.insert(key.clone(), room.to_string());
        key
    }
}

impl KeyStore for MemoryKeyStore {
    fn room_for_key(&self, key: &str) -> BoxFuture<Result<Option<String>, KeyStoreError>> {
        let result = self.with_maps(|maps| maps.room_by_key.get(key).cloned());
        Box::pin(async move { result })
    }

    fn key_for_room(&self, room: &str) -> BoxFuture<Result<String, KeyStoreError>> {
        let result = self.with_maps(|maps| match maps.key_by_room.get(room) {
            Some(key) => key.clone(),
            None => Self::assign_new_key(maps, room),
        });
        Box::pin(async move { result })
    }

    fn reset_key(&self, room: &str) -> BoxFuture<Result<String, KeyStoreError>> {
        let result = self.with_maps(|maps| Self::assign_new_key(maps, room));
        Box::pin(async move { result })
    }

    fn delete_room(&self, room: &str) -> BoxFuture<Result<bool, KeyStoreError>> {
        let result = self.with_maps(|maps| match maps.key_by_room.remove(room) {
            Some(key) => {
                maps.room_by_key.remove(&key);
                true
            }
            None => false,
        });
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(f: BoxFuture<T>) -> T {
        futures_util::FutureExt::now_or_never(f).expect("memory store futures are ready")
    }

    #[test]
    fn get_is_idempotent_and_maps_back_to_the_room() {
        let store = MemoryKeyStore::new();
        let key = block(store.key_for_room("movie")).unwrap();
        assert_eq!(block(store.key_for_room("movie")).unwrap(), key);
        assert_eq!(
            block(store.room_for_key(&key)).unwrap().as_deref(),
            Some("movie")
        );
    }

    #[test]
    fn a_room_name_is_never_a_key() {
        let store = MemoryKeyStore::new();
        let _ = block(store.key_for_room("movie")).unwrap();
        assert_eq!(block(store.room_for_key("movie")).unwrap(), None);
    }

    #[test]
    fn reset_revokes_the_old_key_at_once() {
        let store = MemoryKeyStore::new();
        let old = block(store.key_for_room("movie")).unwrap();
        let new = block(store.reset_key("movie")).unwrap();
        assert_ne!(old, new);
        assert_eq!(block(store.room_for_key(&old)).unwrap(), None);
        assert_eq!(
            block(store.room_for_key(&new)).unwrap().as_deref(),
            Some("movie")
        );
    }

    #[test]
    fn delete_removes_both_directions_and_reports_unknown_rooms() {
        let store = MemoryKeyStore::new();
        let key = block(store.key_for_room("movie")).unwrap();
        assert!(block(store.delete_room("movie")).unwrap());
        assert_eq!(block(store.room_for_key(&key)).unwrap(), None);
        assert!(!block(store.delete_room("movie")).unwrap());
    }
}
