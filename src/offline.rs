//! The protocol core without a server or a database, for `sesame test` and
//! `sesame explain`: the configuration's tenants resolved with their
//! compiled scripts, as a `Runtime` would hold them, a store that is never
//! asked anything (`Store::offline`), and the core's services.
//!
//! A tenant without configured keys signs with a key made for the run (the
//! server's generated key lives in its database): tokens are only read
//! back here, never handed out.

use std::sync::Arc;

use crate::config::{Config, ConfigError, TenantConfig};
use crate::jose::{KeyWindow, Keyset, SigningKey};
use crate::oauth::{Ctx, RequestFacts, Services};
use crate::plugin::Scripts;
use crate::store::Store;
use crate::tenant::{Client, Tenant, User};

pub struct Offline {
    pub config: Config,
    pub scripts: Scripts,
    tenants: Vec<(Tenant, TenantConfig)>,
    store: Store,
    services: Services,
}

impl Offline {
    /// Compile the scripts and resolve every tenant of a valid `config`.
    pub fn new(config: Config) -> Result<Offline, Vec<ConfigError>> {
        let scripts = Scripts::compile(&config)?;
        let mut tenants = Vec::with_capacity(config.tenants.len());
        let mut errors = Vec::new();
        for (i, t) in config.tenants.iter().enumerate() {
            // Configured keys with their windows (the time of the run
            // chooses the signing key, as on the server).
            let mut keys = crate::tenant::configured_keys(t);
            if keys.is_empty() {
                match SigningKey::generate(t.signing.alg) {
                    Ok(k) => keys.push((k, KeyWindow::ALWAYS)),
                    Err(e) => errors.push(ConfigError::new(
                        format!("tenants[{i}].signing"),
                        e.to_string(),
                    )),
                }
            }
            match Keyset::windowed(t.signing.alg, keys) {
                Ok(keys) => tenants.push((Tenant::new(t, keys, &scripts, None), t.clone())),
                Err(e) => errors.push(ConfigError::new(
                    format!("tenants[{i}].signing"),
                    e.to_string(),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Offline {
            config,
            scripts,
            tenants,
            store: Store::offline(),
            services: Services::new(),
        })
    }

    /// The tenant named `id`, or the only one when `id` is `None`.
    pub fn tenant(&self, id: Option<&str>) -> Result<(&Tenant, &TenantConfig), String> {
        let ids = || {
            self.tenants
                .iter()
                .map(|(t, _)| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match id {
            Some(id) => self
                .tenants
                .iter()
                .find(|(t, _)| t.id == id)
                .map(|(t, c)| (t, c))
                .ok_or_else(|| format!("no tenant {id:?} (there are: {})", ids())),
            None if self.tenants.len() == 1 => Ok((&self.tenants[0].0, &self.tenants[0].1)),
            None => Err(format!("name the tenant (there are: {})", ids())),
        }
    }

    /// `tenant` resolved again from `cfg` (a changed copy of its config: a
    /// user added, scripts left out), with the same keys and scripts.
    pub fn rebuild(&self, tenant: &Tenant, cfg: &TenantConfig) -> Tenant {
        Tenant::new(cfg, (**tenant.keys.load()).clone(), &self.scripts, None)
    }

    /// A request to `tenant`'s token endpoint at `now`.
    pub fn ctx<'a>(&'a self, tenant: &'a Tenant, now: i64, request: RequestFacts<'a>) -> Ctx<'a> {
        Ctx {
            tenant,
            store: &self.store,
            services: &self.services,
            now,
            request,
        }
    }
}

/// The client `id` of `tenant`, or what there is instead.
pub fn client_of<'a>(tenant: &'a Tenant, id: &str) -> Result<&'a Arc<Client>, String> {
    tenant.client(id).ok_or_else(|| {
        let mut ids: Vec<&str> = tenant.clients.keys().map(String::as_str).collect();
        ids.sort_unstable();
        format!(
            "no client {id:?} in tenant {:?} (there are: {})",
            tenant.id,
            ids.join(", ")
        )
    })
}

/// The user `username` of `tenant`.
pub fn user_of<'a>(tenant: &'a Tenant, username: &str) -> Result<&'a Arc<User>, String> {
    tenant
        .user(username)
        .ok_or_else(|| format!("no user {username:?} in tenant {:?}", tenant.id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::oauth::dry_run::{rehearse, Request};
    use crate::store::TokenHash;

    #[tokio::test]
    async fn the_core_runs_with_nothing_stored_and_the_store_is_never_opened() {
        let yaml = "database: { url: 'sqlite://never.db' }\ntenants:\n  - id: t\n    issuer: https://t.example\n    signing: { alg: ES256 }\n    access_token_format: opaque\n    scopes: { api: {} }\n    clients:\n      - { id: job, secret: s, grant_types: [client_credentials], scopes: [api] }\n";
        let dir = tempfile::tempdir().unwrap();
        let offline =
            Offline::new(crate::config::load_str(yaml, dir.path(), &|_| None).unwrap()).unwrap();
        let (tenant, _) = offline.tenant(None).unwrap();
        let ctx = offline.ctx(tenant, 1_000, RequestFacts::default());
        let client = client_of(tenant, "job").unwrap();
        let r = rehearse(
            &ctx,
            Request {
                client,
                user: None,
                scopes: None,
                grant: crate::config::GrantType::ClientCredentials,
                remembered: &[],
            },
        )
        .await;
        let tokens = r.outcome.unwrap();
        assert_eq!(tokens.granted.to_string(), "api");
        assert!(tokens.access_token.is_none(), "opaque");
        let answer = tokens.introspection.unwrap();
        assert_eq!(answer["active"], true);
        assert_eq!(answer["exp"], 1_000 + 3600);
        // Anything that would need the database fails at once.
        let started = std::time::Instant::now();
        assert!(ctx.store.find_code("t", TokenHash::of("x")).await.is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(!dir.path().join("never.db").exists());
    }
}
