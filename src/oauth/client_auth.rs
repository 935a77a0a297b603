//! Client authentication at the token, introspection and revocation endpoints.
//!
//! A client assertion (`private_key_jwt`, `client_secret_jwt`) is checked in
//! [`super::assertion`]; a refused one takes the failure path below.
//!
//! Failures look alike: unknown client, wrong secret and wrong method all
//! answer `invalid_client`, and every failure costs one argon2 verification —
//! of the client's own hash, or of a dummy one when the failure is already
//! certain — so they take alike time too. A hashed secret costs one argon2
//! run the first time a (client, secret) pair is seen; after that the pair
//! is remembered as a SHA-256 digest in the client's [`SecretCache`], so the
//! hot path is a hash lookup, not a KDF. Clear secrets are compared in
//! constant time. A success without an argon2 run (a cached or a clear
//! secret, a public client) reads the lockouts and writes nothing; every
//! argon2 run is reserved with the throttle first (see [`super::throttle`]).

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::assertion::{self, Refused};
use super::password::{self, DUMMY_PHC};
use super::throttle::{Attempt, Throttle};
use super::{Credentials, Ctx, OAuthError};
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
    // An assertion decides without a KDF; a refused one costs what a wrong
    // secret costs, below.
    let credentials = match credentials {
        Credentials::Assertion {
            id,
            assertion_type,
            assertion,
        } => match assertion::verify(ctx, id.as_deref(), &assertion_type, &assertion).await {
            Ok(client) => return Ok(client),
            Err(Refused::Store(e)) => return Err(e.into()),
            Err(Refused::Because(why)) => {
                tracing::info!(
                    tenant = %ctx.tenant.id,
                    client_id = id.as_deref(),
                    reason = why,
                    "client assertion refused"
                );
                Credentials::Absent
            }
        },
        other => other,
    };
    let check = match examine(ctx, credentials) {
        Examined::Accepted(client) => return Ok(client),
        Examined::Kdf(check) => check,
    };
    let reservation = match throttle.reserve().await? {
        Attempt::Reserved(r) => r,
        Attempt::Locked(seconds) => return Err(throttle.locked(seconds)),
    };
    let matched = password::verify_bounded(&ctx.services.kdf, check.secret, check.phc).await;
    match check.client.filter(|_| matched) {
        Some((client, cache_key)) => {
            // A lockout that landed while the secret was checked wins.
            if let Some(seconds) = reservation.succeeded().await? {
                return Err(throttle.locked(seconds));
            }
            client.secret_cache.insert(cache_key);
            Ok(client)
        }
        None => {
            // Answered `invalid_client` even if it locked a key: the next request sees the lock.
            reservation.failed().await;
            Err(OAuthError::invalid_client())
        }
    }
}

/// What it takes to answer a client's credentials.
enum Examined {
    /// Right, and known so without a KDF: a cached or clear secret, or a
    /// public client.
    Accepted(Arc<Client>),
    /// One argon2 verification decides (or, for a failure already certain,
    /// makes it cost what a wrong hashed secret costs).
    Kdf(KdfCheck),
}

struct KdfCheck {
    /// The client, and its cache entry should the secret match; `None` when
    /// nothing can match (the hash is the dummy).
    client: Option<(Arc<Client>, [u8; 32])>,
    secret: Vec<u8>,
    phc: String,
}

/// The credentials against the registered client, short of a KDF run.
fn examine(ctx: &Ctx<'_>, credentials: Credentials) -> Examined {
    let failure = |secret: Option<String>| {
        Examined::Kdf(KdfCheck {
            client: None,
            secret: secret.map(String::into_bytes).unwrap_or_default(),
            phc: DUMMY_PHC.to_string(),
        })
    };
    let (method, id, secret) = match credentials {
        Credentials::Basic { id, secret } => (AuthMethod::ClientSecretBasic, id, Some(secret)),
        Credentials::Post { id, secret } => (AuthMethod::ClientSecretPost, id, Some(secret)),
        Credentials::None { id } => (AuthMethod::None, id, None),
        // Assertions were decided before; what is left is a failure.
        Credentials::Assertion { .. } | Credentials::Absent => return failure(None),
    };
    let Some(client) = ctx.tenant.client(&id).cloned() else {
        return failure(secret);
    };
    if client.auth_method != method {
        return failure(secret);
    }
    let (phc, given) = match (&client.secret, secret) {
        (None, None) => return Examined::Accepted(client),
        (Some(ClientSecret::Plain(expected)), Some(given)) => {
            let a = Sha256::digest(expected.as_bytes());
            let b = Sha256::digest(given.as_bytes());
            if bool::from(a.ct_eq(&b)) {
                return Examined::Accepted(client);
            }
            return failure(Some(given));
        }
        (Some(ClientSecret::Hash(phc)), Some(given)) => (phc.clone(), given),
        (_, given) => return failure(given),
    };
    let key = SecretCache::key(&client.id, &given, &phc);
    if client.secret_cache.contains(&key) {
        return Examined::Accepted(client);
    }
    Examined::Kdf(KdfCheck {
        client: Some((client, key)),
        secret: given.into_bytes(),
        phc,
    })
}
