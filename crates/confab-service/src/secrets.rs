//! Random tokens and the hashes we store instead of them.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use confab_core::{Error, Result};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Session tokens and API keys are high-entropy, so a fast hash is enough to make a leaked
/// database useless while keeping lookups to one indexed read.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// At most this many Argon2 computations at once. Each takes 19 MiB and a core for a while; a
/// burst of logins on the unbounded blocking pool would otherwise grow hundreds of threads and
/// gigabytes of memory, and finish no sooner.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes). Runs off the async threads.
pub async fn hash_password(password: String) -> Result<String> {
    let _slot = hashing_slots().acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(std::io::Error::other(e.to_string())))
    })
    .await
    .map_err(Error::internal)?
}

pub async fn verify_password(password: String, hash: String) -> bool {
    let Ok(_slot) = hashing_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_round_trip() {
        let h = hash_password("s3cret-pw".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret-pw".into(), h.clone()).await);
        assert!(!verify_password("other".into(), h).await);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_hex(20);
        assert_eq!(a.len(), 40);
        assert_ne!(a, random_hex(20));
    }
}
