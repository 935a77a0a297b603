//! Password and secret hashes: argon2id for new ones, argon2 and bcrypt accepted.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;

use super::cpu::Pool;

/// A hash no secret matches, verified for unknown users and clients so they
/// cost what known ones do.
pub(crate) const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$ypV4sQCXBiStkZrL0L3GMA$FaJsU5LFYYQVwQBfLjMDNq77qRwxZMzlfLoYnXKUWAs";

/// An argon2id PHC string for `secret` with the default (OWASP) parameters.
pub fn hash(secret: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `secret` matches `phc` (argon2 PHC or bcrypt). Malformed hashes never match.
pub fn verify(secret: &[u8], phc: &str) -> bool {
    if phc.starts_with("$2") {
        return std::str::from_utf8(secret)
            .ok()
            .and_then(|s| bcrypt::verify(s, phc).ok())
            .unwrap_or(false);
    }
    verify_argon2(secret, phc).unwrap_or(false)
}

thread_local! {
    /// Argon2 working memory, kept per thread and reused while logins queue
    /// (a fresh 19 MiB allocation per verification is not given back to the
    /// system reliably), released when the queue runs dry.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Give this thread's argon2 working memory back.
pub(crate) fn release_blocks() {
    BLOCKS.with(|cell| {
        if let Ok(mut blocks) = cell.try_borrow_mut() {
            *blocks = Vec::new();
        }
    });
}

/// Blocks (1 KiB each) reserved at least for the working memory: 33 MiB.
const MAPPED_BLOCKS: usize = 33 * 1024;

/// Largest argon2 memory cost accepted from a configured hash (256 MiB).
const MAX_M_COST_KIB: u32 = 256 * 1024;

fn verify_argon2(secret: &[u8], phc: &str) -> Option<bool> {
    use subtle::ConstantTimeEq;
    let hash = PasswordHash::new(phc).ok()?;
    let algorithm = argon2::Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => argon2::Version::try_from(v).ok()?,
        None => argon2::Version::default(),
    };
    let params = argon2::Params::try_from(&hash).ok()?;
    if params.m_cost() > MAX_M_COST_KIB {
        return None;
    }
    let expected = hash.hash?;
    let mut salt_buf = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt_buf).ok()?;
    let blocks_needed = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    BLOCKS.with(|cell| {
        let mut blocks = cell.try_borrow_mut().ok()?;
        if blocks.len() < blocks_needed {
            if blocks.capacity() < blocks_needed {
                // Reserve past glibc's largest mmap threshold (32 MiB) so the
                // buffer is its own mapping, returned to the system when it is
                // released; only the blocks used are ever touched.
                *blocks = Vec::with_capacity(blocks_needed.max(MAPPED_BLOCKS));
            }
            blocks.resize(blocks_needed, argon2::Block::default());
        }
        argon
            .hash_password_into_with_memory(secret, salt, &mut out, &mut blocks[..blocks_needed])
            .ok()
    })?;
    Some(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

/// [`verify`] on the password-hashing pool (`Services::kdf`). Password
/// hashing is deliberately expensive (argon2id: ~19 MiB and tens of
/// milliseconds each), so it never runs on the async workers: a login burst
/// queues there instead of starving token requests, and memory stays bounded
/// by the pool size (each thread reuses its working memory while logins
/// queue, and frees it when idle). A pool failure never matches.
pub async fn verify_bounded(pool: &Pool, secret: Vec<u8>, phc: String) -> bool {
    pool.run(move || verify(&secret, &phc))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hash_verifies_and_rejects() {
        let phc = hash(b"s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(b"s3cret", &phc));
        assert!(!verify(b"s3cret!", &phc));
    }

    #[test]
    fn bcrypt_hashes_are_accepted() {
        let h = bcrypt::hash("hunter2", 4).unwrap();
        assert!(verify(b"hunter2", &h));
        assert!(!verify(b"hunter3", &h));
    }

    #[test]
    fn malformed_hash_never_matches() {
        assert!(!verify(b"x", "not a hash"));
        assert!(!verify(b"x", "$2b$garbage"));
    }
}
