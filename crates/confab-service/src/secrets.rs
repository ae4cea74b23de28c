//! Random tokens and the hashes we store instead of them.

use std::sync::Mutex;

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(slot_count()))
}

fn slot_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Argon2 work areas (19 MiB each), one per slot, reused from hash to hash. Left to the
/// allocator, every blocking thread that ever hashed kept its own freed area, so a login storm
/// left hundreds of MiB behind.
fn work_areas() -> &'static Mutex<Vec<Vec<Block>>> {
    static AREAS: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());
    &AREAS
}

/// Runs `f` with a hashing slot and a work area, off the async threads.
async fn with_work_area<T: Send + 'static>(
    f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T> {
    let _slot = hashing_slots().acquire().await.map_err(Error::internal)?;
    let mut area = work_areas()
        .lock()
        .expect("argon2 areas")
        .pop()
        .unwrap_or_default();
    let (out, area) = tokio::task::spawn_blocking(move || {
        let out = f(&mut area);
        (out, area)
    })
    .await
    .map_err(Error::internal)?;
    work_areas().lock().expect("argon2 areas").push(area);
    Ok(out)
}

/// The first `params.block_count()` blocks of `area`, growing it when needed.
fn blocks<'a>(area: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let n = params.block_count();
    if area.len() < n {
        area.resize(n, Block::default());
    }
    &mut area[..n]
}

fn argon2_error(e: impl std::fmt::Display) -> Error {
    Error::internal(std::io::Error::other(e.to_string()))
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes), as a PHC string.
pub async fn hash_password(password: String) -> Result<String> {
    with_work_area(move |area| {
        let params = Params::default();
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt
            .as_salt()
            .decode_b64(&mut salt_buf)
            .map_err(argon2_error)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut out,
                blocks(area, &params),
            )
            .map_err(argon2_error)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(argon2_error)?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(argon2_error)?),
        };
        Ok(phc.to_string())
    })
    .await?
}

/// Checks `password` against a stored PHC string (any Argon2 variant and parameters).
pub async fn verify_password(password: String, hash: String) -> bool {
    with_work_area(move |area| verify_with(area, password.as_bytes(), &hash))
        .await
        .unwrap_or(false)
}

fn verify_with(area: &mut Vec<Block>, password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt_bytes,
        &mut out,
        blocks(area, &params),
    );
    // Output's equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_of_the_crates_own_hasher_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let h = Argon2::default()
            .hash_password(b"older-hash", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("older-hash".into(), h.clone()).await);
        assert!(!verify_password("older-hasH".into(), h).await);
        assert!(!verify_password("x".into(), "not a phc string".into()).await);
    }

    #[tokio::test]
    async fn work_areas_are_reused_not_multiplied() {
        let slots = slot_count();
        let checks: Vec<_> = (0..4 * slots)
            .map(|i| tokio::spawn(hash_password(format!("password-{i}"))))
            .collect();
        for c in checks {
            c.await.unwrap().unwrap();
        }
        // An area exists only while a slot is held, then waits for the next hash.
        let areas = work_areas().lock().unwrap().len();
        assert!(
            (1..=slots).contains(&areas),
            "{areas} areas for {slots} slots"
        );
    }

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
