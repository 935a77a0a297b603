//! One configuration generation, ready to serve: tenants by issuer, keys
//! loaded, scripts compiled, discovery documents serialized — everything
//! derived from one config, in one bundle.
//!
//! A `Runtime` is immutable and shared behind an `Arc`; SIGHUP builds a new
//! one and swaps it in whole, only if it builds cleanly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{Config, ConfigError, ConfigErrors, TenantConfig};
use bytes::Bytes;

use crate::jose::{is_sealed, Alg, KeyEncryptionKey, KeyRow, KeyWindow, Keyset, SigningKey};
use crate::oauth::discovery;
use crate::plugin::Scripts;
use crate::store::{Store, StoredKey};
use crate::tenant::Tenant;

#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    /// This generation's id: a hash of the configuration and its scripts
    /// (12 hex digits), shown in `/readyz`, metrics and the reload log.
    pub generation: String,
    pub tenants: Vec<Arc<Tenant>>,
    /// host → tenants on that host, longest issuer path first.
    by_host: HashMap<String, Vec<usize>>,
    /// Every tenant, longest issuer path first (the host-less fallback).
    by_path: Vec<usize>,
}

/// A tenant matched by a request, and the request path below its issuer.
pub struct Route<'a> {
    pub tenant: &'a Arc<Tenant>,
    pub rest: &'a str,
}

impl Runtime {
    /// Compile every plugin script, load every tenant's keys (configured files,
    /// or the tenant's generated key from the store, created on first use) and
    /// index the tenants. Any error (a broken script, a bad key) fails the build.
    /// `previous` is the generation this one replaces, if any: caches of
    /// clients that did not change carry over.
    pub async fn build(
        config: Config,
        store: &Store,
        previous: Option<&Runtime>,
    ) -> Result<Runtime, ConfigErrors> {
        let mut tenants = Vec::with_capacity(config.tenants.len());
        let (scripts, mut errors) = match Scripts::compile(&config) {
            Ok(s) => (s, Vec::new()),
            Err(e) => (Scripts::default(), e),
        };
        let kek = config.key_encryption_key();
        let generation = generation_id(&config);
        for (i, t) in config.tenants.iter().enumerate() {
            let old = previous.and_then(|p| p.tenant(&t.id)).map(|t| &**t);
            let old_keys = old.map(|o| o.keys.load_full());
            match load_keys(t, kek, store, old_keys.as_deref()).await {
                Ok(keys) => {
                    let mut tenant = Tenant::new(t, keys, &scripts, old);
                    tenant.generation = generation.clone();
                    tenant.discovery = Bytes::from(discovery::document(&tenant).to_string());
                    tenants.push(Arc::new(tenant));
                }
                Err(message) => errors.push(ConfigError {
                    path: format!("tenants[{i}].signing"),
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let mut runtime = Runtime::from_tenants(config, tenants);
        runtime.generation = generation;
        Ok(runtime)
    }

    /// Index already resolved tenants.
    pub fn from_tenants(config: Config, tenants: Vec<Arc<Tenant>>) -> Runtime {
        let mut by_path: Vec<usize> = (0..tenants.len()).collect();
        by_path.sort_by_key(|&i| std::cmp::Reverse(tenants[i].path.len()));
        let mut by_host: HashMap<String, Vec<usize>> = HashMap::new();
        for &i in &by_path {
            by_host.entry(tenants[i].host.clone()).or_default().push(i);
        }
        Runtime {
            generation: String::new(),
            config,
            tenants,
            by_host,
            by_path,
        }
    }

    /// The tenant for a request to `host` (may be absent) and `path`: the issuer on
    /// that host whose path is the longest prefix; with no issuer on that host,
    /// the one issuer whose path matches, if exactly one does.
    pub fn route<'a>(&'a self, host: Option<&str>, path: &'a str) -> Option<Route<'a>> {
        if let Some(candidates) = host.and_then(|h| self.by_host.get(&h.to_ascii_lowercase())) {
            return candidates.iter().find_map(|&i| self.match_path(i, path));
        }
        let mut matches = self
            .by_path
            .iter()
            .filter_map(|&i| self.match_path(i, path));
        let only = matches.next()?;
        matches.next().is_none().then_some(only)
    }

    fn match_path<'a>(&'a self, i: usize, path: &'a str) -> Option<Route<'a>> {
        let tenant = &self.tenants[i];
        let rest = path.strip_prefix(tenant.path.as_str())?;
        if rest.is_empty() || rest.starts_with('/') {
            Some(Route { tenant, rest })
        } else {
            None
        }
    }

    pub fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// Whether forwarded headers from `peer` are believed.
    pub fn trusts_proxy(&self, peer: IpAddr) -> bool {
        self.config.server.trusts_proxy(peer)
    }
}

/// The tenant's configured keys (parsed when the config was validated), or
/// its generated key from the store.
/// A hash of `config` as parsed (secrets included, so a rotated secret is a
/// new generation; only 48 bits of the digest are shown), of the scripts
/// it names, as they are on disk, and of the tenants' page files
/// (templates, stylesheet, logo, favicon) as validation read them.
pub fn generation_id(config: &Config) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(config).unwrap_or_default());
    let scripts = config.tenants.iter().flat_map(|t| {
        t.plugins
            .iter()
            .chain(t.clients.iter().flat_map(|c| c.plugins.iter()))
    });
    for p in scripts {
        h.update(p.to_string_lossy().as_bytes());
        h.update(std::fs::read(config.plugin_path(p)).unwrap_or_default());
    }
    for t in &config.tenants {
        let ui = &t.loaded_ui;
        for (name, source) in &ui.templates {
            h.update(name.as_bytes());
            h.update(source.as_bytes());
        }
        h.update(ui.css.as_deref().unwrap_or_default().as_bytes());
        for image in [&ui.logo, &ui.favicon] {
            if let Some(crate::ui::Image::File { bytes, .. }) = image {
                h.update(bytes);
            }
        }
    }
    h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn load_keys(
    t: &TenantConfig,
    kek: Option<&KeyEncryptionKey>,
    store: &Store,
    previous: Option<&Keyset>,
) -> Result<Keyset, String> {
    let loaded = &t.signing.loaded_keys;
    if loaded.len() != t.signing.keys.len() {
        return Err("signing keys not loaded: the configuration was not validated".to_string());
    }
    let max_lifetime = crate::tenant::max_token_lifetime(t);
    if let Some(rotation) = &t.signing.rotation {
        let now = crate::now();
        return crate::keyring::keyset(
            store,
            &t.id,
            t.signing.alg,
            rotation,
            max_lifetime,
            kek,
            previous,
            now,
        )
        .await;
    }
    // Configured keys sign within their windows, in the order listed, and
    // stay published until what they signed has expired.
    let mut keys = crate::tenant::configured_keys(t);
    if keys.is_empty() {
        let key = generated_key(t, t.signing.alg, kek, store).await?;
        keys.push((key, KeyWindow::ALWAYS));
    }
    let rs256 = keys
        .iter()
        .filter(|(k, _)| k.alg() == Alg::RS256)
        .cloned()
        .collect::<Vec<_>>();
    let rs256 = if rs256.is_empty() {
        // Signing with another algorithm: RS256 is still offered (OIDC Core
        // §15.1), with a key generated and stored like the default one.
        let key = generated_key(t, Alg::RS256, kek, store).await?;
        vec![(key, KeyWindow::ALWAYS)]
    } else {
        rs256
    };
    Ok(Keyset::windowed(t.signing.alg, keys)
        .map_err(|e| e.to_string())?
        .with_rs256(rs256))
}

/// The tenant's generated key: the one in the store, or a fresh one stored
/// now (race-safe: of nodes starting together, one key wins). With a
/// key-encryption key it is stored sealed, and a key stored in clear
/// before is sealed in place (a conditional update: of racing nodes, one
/// rewrites it, the others read what it wrote). A stored key that does not
/// open is an error — never a reason to make another one.
async fn generated_key(
    t: &TenantConfig,
    alg: Alg,
    kek: Option<&KeyEncryptionKey>,
    store: &Store,
) -> Result<SigningKey, String> {
    let fresh = SigningKey::generate(alg).map_err(|e| e.to_string())?;
    let pem = fresh.to_pkcs8_pem().map_err(|e| e.to_string())?;
    let row = KeyRow {
        tenant_id: &t.id,
        alg: alg.as_str(),
        kid: fresh.kid(),
    };
    let private_pem = match kek {
        Some(kek) => kek.seal(row, pem.as_bytes()).map_err(|e| e.to_string())?,
        None => pem,
    };
    let candidate = StoredKey {
        tenant_id: t.id.clone(),
        alg: alg.as_str().to_string(),
        kid: fresh.kid().to_string(),
        private_pem,
        created_at: crate::now(),
    };
    for _ in 0..3 {
        let stored = store
            .find_or_insert_signing_key(candidate.clone())
            .await
            .map_err(|e| format!("generated key: {e}"))?;
        let key = open_stored(kek, &stored)?;
        let Some(kek) = kek.filter(|_| !is_sealed(&stored.private_pem)) else {
            return Ok(key);
        };
        let sealed = kek
            .seal(stored_row(&stored), stored.private_pem.as_bytes())
            .map_err(|e| e.to_string())?;
        let rewritten = store
            .rewrite_signing_key(&t.id, &stored.alg, &stored.private_pem, &sealed)
            .await
            .map_err(|e| format!("generated key: {e}"))?;
        if rewritten {
            // Expected once, after key_encryption is first set; otherwise
            // someone wrote a key in clear into the table.
            tracing::warn!(
                tenant = %t.id,
                kid = %stored.kid,
                "the stored signing key was in clear; encrypted it with the key-encryption key (expected once per tenant, after key_encryption is first set)"
            );
            return Ok(key);
        }
        // Another node sealed it first: read, and open, what it wrote.
    }
    Err(format!(
        "tenant {:?}: the stored signing key kept changing while it was being encrypted",
        t.id
    ))
}

fn stored_row(stored: &StoredKey) -> KeyRow<'_> {
    KeyRow {
        tenant_id: &stored.tenant_id,
        alg: &stored.alg,
        kid: &stored.kid,
    }
}

/// The signing key of a stored row, opened with `kek` if it is sealed.
fn open_stored(kek: Option<&KeyEncryptionKey>, stored: &StoredKey) -> Result<SigningKey, String> {
    crate::keyring::open_pem(kek, stored_row(stored), &stored.private_pem)
}
