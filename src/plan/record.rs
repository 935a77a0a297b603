//! The redacted record of one configuration generation: what `sesame plan`
//! compares a new configuration with, and what every node stores in the
//! database for the generation it serves.
//!
//! A record holds, per tenant, a keyed digest of every setting, client,
//! user, scope and script (HMAC-SHA-256 under a secret the deployment keeps
//! in its database, so a digest says "changed" and nothing else: a weak
//! client secret can't be guessed from it without that secret), and in
//! clear only what is public anyway: the issuer, redirect URIs, the `sub`
//! of users, effective lifetimes, key ids. A value that came from a
//! `${NAME}` reference is never in clear, only its digest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{Config, TenantConfig};
use crate::tenant::{derived_sub, Lifetimes};

/// One generation, redacted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub generation: String,
    pub tenants: BTreeMap<String, TenantRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// The issuer, or `None` when it came from the environment.
    pub issuer: Option<String>,
    /// Every tenant setting but the items below: key → digest.
    pub settings: BTreeMap<String, String>,
    /// Effective lifetimes (defaults filled in), in seconds.
    pub lifetimes: BTreeMap<String, u64>,
    pub clients: BTreeMap<String, ClientRecord>,
    /// By username.
    pub users: BTreeMap<String, UserRecord>,
    /// By scope name: digest.
    pub scopes: BTreeMap<String, String>,
    /// By path as written: digest of the file's content.
    pub scripts: BTreeMap<String, String>,
    pub keys: Vec<KeyRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Every client setting: key → digest.
    pub settings: BTreeMap<String, String>,
    /// In clear, but for those from the environment (shown as their digest).
    pub redirect_uris: Vec<String>,
    pub lifetimes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The user's `sub`, or `None` when it came from the environment.
    pub sub: Option<String>,
    /// Every user setting (password hash, claims…): key → digest.
    pub settings: BTreeMap<String, String>,
}

/// A published key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    /// Whether it signs (the others are published to verify).
    #[serde(default)]
    pub signing: bool,
}

/// Keyed digests: HMAC-SHA-256 under the deployment's record secret,
/// 96 bits shown.
pub struct Digester(ring::hmac::Key);

impl Digester {
    pub fn new(secret: &[u8; 32]) -> Digester {
        Digester(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    fn bytes(&self, label: &str, bytes: &[u8]) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        ctx.update(label.as_bytes());
        ctx.update(&[0]);
        ctx.update(bytes);
        ctx.sign().as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn value(&self, label: &str, v: &serde_json::Value) -> String {
        self.bytes(label, v.to_string().as_bytes())
    }

    /// Each top-level field of `item` (as JSON) → its digest, but `skip`.
    fn fields<T: Serialize>(&self, item: &T, skip: &[&str]) -> BTreeMap<String, String> {
        let serde_json::Value::Object(map) = serde_json::to_value(item).unwrap_or_default() else {
            return BTreeMap::new();
        };
        map.iter()
            .filter(|(k, v)| !skip.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), self.value(k, v)))
            .collect()
    }
}

/// The record of `config` as generation `generation`, with the keys each
/// tenant publishes (`keys[tenant id]`).
pub fn record(
    config: &Config,
    generation: &str,
    keys: &BTreeMap<String, Vec<KeyRecord>>,
    digest: &Digester,
) -> Record {
    let tenants = config
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let keys = keys.get(&t.id).cloned().unwrap_or_default();
            (t.id.clone(), tenant(config, i, t, keys, digest))
        })
        .collect();
    Record {
        generation: generation.to_string(),
        tenants,
    }
}

fn tenant(
    config: &Config,
    i: usize,
    t: &TenantConfig,
    mut keys: Vec<KeyRecord>,
    digest: &Digester,
) -> TenantRecord {
    let env = &config.from_env;
    let at = |rest: &str| format!("tenants[{i}].{rest}");
    let lifetimes = Lifetimes::default().overlay(&t.lifetimes);
    let clients = t
        .clients
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let redirect_uris = c
                .redirect_uris
                .iter()
                .enumerate()
                .map(|(k, uri)| {
                    if env.contains(&at(&format!("clients[{j}].redirect_uris[{k}]"))) {
                        format!(
                            "(from the environment: {})",
                            digest.bytes("uri", uri.as_bytes())
                        )
                    } else {
                        uri.clone()
                    }
                })
                .collect();
            let record = ClientRecord {
                settings: digest.fields(c, &[]),
                redirect_uris,
                lifetimes: seconds(&lifetimes.overlay(&c.lifetimes)),
            };
            (c.id.clone(), record)
        })
        .collect();
    let users = t
        .users
        .iter()
        .enumerate()
        .map(|(k, u)| {
            let sub = if env.contains(&at(&format!("users[{k}].sub"))) {
                None
            } else {
                Some(
                    u.sub
                        .clone()
                        .unwrap_or_else(|| derived_sub(&t.id, &u.username)),
                )
            };
            let record = UserRecord {
                sub,
                settings: digest.fields(u, &["username"]),
            };
            (u.username.clone(), record)
        })
        .collect();
    let scopes = t
        .scopes
        .iter()
        .map(|(name, s)| {
            let v = serde_json::to_value(s).unwrap_or_default();
            (name.clone(), digest.value(name, &v))
        })
        .collect();
    let scripts = t
        .plugins
        .iter()
        .chain(t.clients.iter().flat_map(|c| c.plugins.iter()))
        .map(|p| {
            let text = std::fs::read(config.plugin_path(p)).unwrap_or_default();
            let name = p.display().to_string();
            let d = digest.bytes(&name, &text);
            (name, d)
        })
        .collect();
    keys.sort();
    keys.dedup();
    let issuer = (!env.contains(&at("issuer"))).then(|| t.issuer.clone());
    TenantRecord {
        issuer,
        settings: digest.fields(t, &["id", "issuer", "clients", "users", "scopes"]),
        lifetimes: seconds(&lifetimes),
        clients,
        users,
        scopes,
        scripts,
        keys,
    }
}

/// Lifetimes by their YAML names, in seconds.
fn seconds(l: &Lifetimes) -> BTreeMap<String, u64> {
    l.by_name()
        .into_iter()
        .map(|(k, d)| (k.to_string(), d.as_secs()))
        .collect()
}

/// The YAML paths of the strings in `value` that reference a variable
/// (`${NAME}`, not the escaped `$${`), before expansion.
pub fn env_paths(value: &serde_yaml::Value, path: &str, out: &mut BTreeSet<String>) {
    use serde_yaml::Value;
    match value {
        Value::String(s) if s.replace("$${", "").contains("${") => {
            out.insert(path.to_string());
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                env_paths(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map {
                env_paths(item, &crate::config::child_path(path, key), out);
            }
        }
        Value::Tagged(t) => env_paths(&t.value, path, out),
        _ => {}
    }
}
