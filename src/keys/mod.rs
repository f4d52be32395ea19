//! Room-key store backends. The trait is `switchboard_actors::key_store::KeyStore`.

pub mod memory;

use rand::distributions::Alphanumeric;
use rand::Rng;

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
