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

/// Password hashing is deliberately expensive: at most this many run at once,
/// on blocking threads, so a login burst can neither exhaust memory nor
/// starve the async workers serving token requests.
fn permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(n)
    })
}

/// [`verify`] off the async workers, with bounded concurrency.
pub async fn verify_bounded(secret: Vec<u8>, phc: String) -> bool {
    let Ok(_permit) = permits().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify(&secret, &phc))
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
