//! Clients' public keys published at a `jwks_uri`: fetched with a timeout
//! and a size limit, cached, fetched again when a JWS names a `kid` the
//! cached set doesn't have (at most every [`REFETCH_AFTER`]), one fetch per
//! URI at a time. A failed fetch keeps the keys already known.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::jose::ClientJwks;

/// How long fetched keys are used without asking again.
pub const FRESH_FOR: Duration = Duration::from_secs(300);
/// The soonest a URI is asked again after a fetch (for an unknown `kid`, or
/// after a failure).
pub const REFETCH_AFTER: Duration = Duration::from_secs(5);
/// The whole fetch, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest JWK Set read.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Entry {
    keys: Option<Arc<ClientJwks>>,
    fetched: Option<Instant>,
    tried: Option<Instant>,
}

/// Every `jwks_uri`'s keys, per process (they survive reloads).
#[derive(Default)]
pub struct JwksCache {
    http: OnceLock<Result<reqwest::Client, String>>,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>,
}

impl JwksCache {
    /// The keys at `uri`, fetched again if stale or if `kid` is not among
    /// them (and the last try is old enough).
    pub async fn keys(&self, uri: &str, kid: Option<&str>) -> Result<Arc<ClientJwks>, String> {
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.entry(uri.to_string()).or_default().clone()
        };
        // One fetch per URI at a time: the others wait for its result.
        let mut e = entry.lock().await;
        let fresh = e.fetched.is_some_and(|t| t.elapsed() < FRESH_FOR);
        let knows_kid = |keys: &ClientJwks| kid.is_none_or(|k| keys.has_kid(k));
        if let Some(keys) = e.keys.as_ref().filter(|k| fresh && knows_kid(k)) {
            return Ok(keys.clone());
        }
        if e.tried.is_some_and(|t| t.elapsed() < REFETCH_AFTER) {
            return e
                .keys
                .clone()
                .ok_or_else(|| "the jwks_uri could not be fetched recently".to_string());
        }
        e.tried = Some(Instant::now());
        match self.fetch(uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                e.keys = Some(keys.clone());
                e.fetched = Some(Instant::now());
                Ok(keys)
            }
            Err(why) => {
                tracing::warn!(jwks_uri = %uri, error = %why, "client keys not fetched");
                e.keys.clone().ok_or(why)
            }
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .connect_timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("sesame/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn fetch(&self, uri: &str) -> Result<ClientJwks, String> {
        let work = async {
            let mut resp = self
                .client()?
                .get(uri)
                .header("accept", "application/jwk-set+json, application/json")
                .send()
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("answered {}", resp.status()));
            }
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
            {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| format!("read failed: {e}"))?
            {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_JWKS_BYTES {
                    return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
                }
            }
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|_| "not JSON".to_string())?;
            ClientJwks::parse(&value)
        };
        // reqwest's timeout covers the body too; this bounds a trickling one
        // whatever the client does.
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| format!("no complete answer within {FETCH_TIMEOUT:?}"))?
    }
}
