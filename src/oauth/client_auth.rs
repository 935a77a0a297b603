//! Client authentication at the token, introspection and revocation endpoints.
//!
//! Failures look alike: unknown client, wrong secret and wrong method all
//! answer `invalid_client`. A hashed secret costs one argon2 run the first
//! time a (client, secret) pair is seen in a configuration generation; after
//! that the pair is remembered as a SHA-256 digest, so the hot path is a hash
//! lookup, not a KDF. Clear secrets are compared in constant time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::throttle::Throttle;
use super::{password, ErrorCode, OAuthError};
use crate::config::AuthMethod;
use crate::store::Store;
use crate::tenant::{Client, ClientSecret, Tenant};

/// Most remembered (client, secret) pairs per generation; the set is
/// cleared when full, which only costs a re-verification.
const CACHE_LIMIT: usize = 10_000;

/// Digests of (client, secret, hash) triples that verified.
#[derive(Debug, Default)]
pub struct SecretCache(Mutex<HashSet<[u8; 32]>>);

impl SecretCache {
    fn key(client_id: &str, secret: &str, phc: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [client_id, secret, phc] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.0.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    fn insert(&self, key: [u8; 32]) {
        if let Ok(mut s) = self.0.lock() {
            if s.len() >= CACHE_LIMIT {
                s.clear();
            }
            s.insert(key);
        }
    }
}

/// The credentials a request presented, before we know whose they are.
#[derive(Debug, Default)]
pub struct Presented {
    /// From `Authorization: Basic`.
    pub basic: Option<(String, String)>,
    /// `client_id` in the body.
    pub client_id: Option<String>,
    /// `client_secret` in the body.
    pub client_secret: Option<String>,
    /// Where failures are counted (see [`super::throttle`]); `None`: not throttled.
    pub guard: Option<Guard>,
}

/// What brute-force protection of client authentication needs of the request.
#[derive(Debug, Clone)]
pub struct Guard {
    pub store: Store,
    /// The client's address.
    pub ip: Option<std::net::IpAddr>,
    pub now: i64,
}

impl Presented {
    fn method(&self) -> AuthMethod {
        if self.basic.is_some() {
            AuthMethod::ClientSecretBasic
        } else if self.client_secret.is_some() {
            AuthMethod::ClientSecretPost
        } else {
            AuthMethod::None
        }
    }
}

/// A hash no secret matches, verified for unknown clients so they cost what known ones do.
pub(crate) const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$ypV4sQCXBiStkZrL0L3GMA$FaJsU5LFYYQVwQBfLjMDNq77qRwxZMzlfLoYnXKUWAs";

/// Authenticate the client; `invalid_client` on any failure, `invalid_request`
/// when the request itself is contradictory (two methods, mismatched ids).
/// With a [`Guard`], failures are counted per (tenant, client_id) and per
/// address, and while either is locked the answer is `slow_down` (429)
/// without looking at the secret.
pub async fn authenticate(tenant: &Tenant, mut p: Presented) -> Result<Arc<Client>, OAuthError> {
    let Some(guard) = p.guard.take() else {
        return verify(tenant, p).await;
    };
    let claimed = p
        .basic
        .as_ref()
        .map(|(id, _)| id.clone())
        .or_else(|| p.client_id.clone());
    let throttle = Throttle::client(
        tenant,
        &guard.store,
        guard.now,
        claimed.as_deref(),
        guard.ip,
    );
    if let Some(seconds) = throttle.check().await? {
        return Err(throttle.locked(seconds));
    }
    let result = verify(tenant, p).await;
    if matches!(&result, Err(e) if e.code == ErrorCode::InvalidClient) {
        // This failure is still answered `invalid_client`; the next request sees the lock.
        throttle.failed().await;
    }
    result
}

/// [`authenticate`] without brute-force protection.
async fn verify(tenant: &Tenant, p: Presented) -> Result<Arc<Client>, OAuthError> {
    if p.basic.is_some() && p.client_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    let method = p.method();
    let (id, secret) = match p.basic {
        Some((id, secret)) => {
            if p.client_id.as_deref().is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the authenticated client",
                ));
            }
            (id, Some(secret))
        }
        None => match p.client_id {
            Some(id) => (id, p.client_secret),
            None => return Err(OAuthError::invalid_client()),
        },
    };
    let Some(client) = tenant.client(&id).cloned() else {
        if let Some(s) = secret {
            // Same cost as a wrong secret for a hashed one.
            let _ = verify_hash_blocking(s, DUMMY_PHC.to_string()).await;
        }
        return Err(OAuthError::invalid_client());
    };
    if client.auth_method != method {
        return Err(OAuthError::invalid_client());
    }
    let ok = match (&client.secret, secret) {
        (None, None) => true,
        (Some(ClientSecret::Plain(expected)), Some(given)) => {
            let a = Sha256::digest(expected.as_bytes());
            let b = Sha256::digest(given.as_bytes());
            bool::from(a.ct_eq(&b))
        }
        (Some(ClientSecret::Hash(phc)), Some(given)) => {
            let key = SecretCache::key(&client.id, &given, phc);
            if tenant.secret_cache.contains(&key) {
                true
            } else if verify_hash_blocking(given, phc.clone()).await {
                tenant.secret_cache.insert(key);
                true
            } else {
                false
            }
        }
        _ => false,
    };
    if ok {
        Ok(client)
    } else {
        Err(OAuthError::invalid_client())
    }
}

async fn verify_hash_blocking(secret: String, phc: String) -> bool {
    password::verify_bounded(secret.into_bytes(), phc).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_separates_fields() {
        assert_ne!(
            SecretCache::key("ab", "c", "h"),
            SecretCache::key("a", "bc", "h")
        );
    }

    #[test]
    fn cache_remembers_and_clears_when_full() {
        let c = SecretCache::default();
        let k = SecretCache::key("client", "secret", "$argon2id$x");
        assert!(!c.contains(&k));
        c.insert(k);
        assert!(c.contains(&k));
    }
}
