//! Password and secret hashes: argon2id for new ones, argon2 and bcrypt accepted.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

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
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(secret, &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Password hashing is deliberately expensive (argon2id: ~19 MiB and tens of
/// milliseconds each). It runs on a small fixed pool of threads, one per
/// core, never on the async workers: a login burst queues here instead of
/// starving token requests, and memory stays bounded by the pool size (each
/// thread reuses its own allocation arena rather than a new blocking thread
/// growing a new one).
struct Pool {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        for i in 0..n {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("sesame-kdf-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Pool {
            jobs: std::sync::Mutex::new(tx),
        }
    })
}

/// [`verify`] on the password-hashing pool. A pool failure never matches.
pub async fn verify_bounded(secret: Vec<u8>, phc: String) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(verify(&secret, &phc));
    });
    let sent = match pool().jobs.lock() {
        Ok(jobs) => jobs.send(job).is_ok(),
        Err(_) => false,
    };
    sent && rx.await.unwrap_or(false)
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
