//! Client authentication at the token, introspection and revocation endpoints.
//!
//! Failures look alike: unknown client, wrong secret and wrong method all
//! answer `invalid_client`. A hashed secret costs one argon2 run the first
//! time a (client, secret) pair is seen; after that the pair is remembered
//! as a SHA-256 digest in the client's [`SecretCache`], so the hot path is a
//! hash lookup, not a KDF. Clear secrets are compared in constant time.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::password::{self, DUMMY_PHC};
use super::throttle::Throttle;
use super::{Credentials, Ctx, ErrorCode, OAuthError};
use crate::config::AuthMethod;
use crate::tenant::{Client, ClientSecret, SecretCache};

/// Authenticate the client; `invalid_client` on any failure. Failures are
/// counted per (tenant, client_id) and per address, and while either is
/// locked the answer is `slow_down` without looking at the secret.
pub async fn authenticate(
    ctx: &Ctx<'_>,
    credentials: Credentials,
) -> Result<Arc<Client>, OAuthError> {
    let throttle = Throttle::client(ctx, credentials.claimed_id());
    if let Some(seconds) = throttle.check().await? {
        return Err(throttle.locked(seconds));
    }
    let result = verify(ctx, credentials).await;
    if matches!(&result, Err(e) if e.code == ErrorCode::InvalidClient) {
        // This failure is still answered `invalid_client`; the next request sees the lock.
        throttle.failed().await;
    }
    result
}

/// [`authenticate`] without brute-force protection.
pub async fn verify(ctx: &Ctx<'_>, credentials: Credentials) -> Result<Arc<Client>, OAuthError> {
    let (method, id, secret) = match credentials {
        Credentials::Basic { id, secret } => (AuthMethod::ClientSecretBasic, id, Some(secret)),
        Credentials::Post { id, secret } => (AuthMethod::ClientSecretPost, id, Some(secret)),
        Credentials::None { id } => (AuthMethod::None, id, None),
        // No client is registered for assertions (yet).
        Credentials::Assertion { .. } | Credentials::Absent => {
            return Err(OAuthError::invalid_client())
        }
    };
    let kdf = &ctx.services.kdf;
    let Some(client) = ctx.tenant.client(&id).cloned() else {
        if let Some(s) = secret {
            // Same cost as a wrong secret for a hashed one.
            let _ = password::verify_bounded(kdf, s.into_bytes(), DUMMY_PHC.to_string()).await;
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
            if client.secret_cache.contains(&key) {
                true
            } else if password::verify_bounded(kdf, given.into_bytes(), phc.clone()).await {
                client.secret_cache.insert(key);
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
