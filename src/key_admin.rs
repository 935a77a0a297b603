//! `sesame keys list` and `sesame keys retire`: the tenants' signing keys
//! as the database and the configuration hold them, and retiring a ring
//! key (`signing.rotation`) at once, for every node.

use crate::config::{duration, timestamp, Config, TenantConfig};
use crate::jose::Alg;
use crate::keyring;
use crate::store::{Retired, RingKey, Store};

/// The tenant named `id`, or the only one.
fn tenant<'a>(config: &'a Config, id: Option<&str>) -> Result<&'a TenantConfig, String> {
    let ids = || {
        config
            .tenants
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match id {
        Some(id) => config
            .tenants
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| format!("no tenant {id:?} (there are: {})", ids())),
        None if config.tenants.len() == 1 => Ok(&config.tenants[0]),
        None => Err(format!(
            "name the tenant with --tenant (there are: {})",
            ids()
        )),
    }
}

/// The state of a ring key at `now`, in words.
fn ring_state(ring: &[RingKey], row: &RingKey, now: i64, max_lifetime: i64) -> String {
    if let Some(at) = row.retired_at {
        return format!("retired at {}", timestamp::format(at));
    }
    let window = keyring::windows(ring, now, max_lifetime)
        .into_iter()
        .find(|(r, _)| r.kid == row.kid)
        .map(|(_, w)| w);
    match window {
        None => "expired (no longer published)".to_string(),
        Some(w) if w.signs_at(now) => "signing".to_string(),
        Some(_) if row.signs_from > now => {
            format!("next (signs from {})", timestamp::format(row.signs_from))
        }
        Some(w) => match w.published_until {
            Some(until) => format!("rotated out (published until {})", timestamp::format(until)),
            None => "published".to_string(),
        },
    }
}

/// Every key of the named tenant (or of all of them) with its state.
pub async fn list(
    config: &Config,
    store: &Store,
    tenant_id: Option<&str>,
    now: i64,
) -> Result<String, String> {
    let tenants: Vec<&TenantConfig> = match tenant_id {
        Some(_) => vec![tenant(config, tenant_id)?],
        None => config.tenants.iter().collect(),
    };
    let mut out = String::new();
    for t in tenants {
        let max_lifetime = crate::tenant::max_token_lifetime(t);
        match &t.signing.rotation {
            Some(r) => {
                out.push_str(&format!(
                    "tenant {} ({}, rotation every {}, lead {}, jwks_cache {}):\n",
                    t.id,
                    t.signing.alg,
                    duration::format(r.every),
                    duration::format(r.lead),
                    duration::format(r.jwks_cache)
                ));
                let ring = store
                    .ring_keys(&t.id)
                    .await
                    .map_err(|e| format!("key ring: {e}"))?;
                if ring.is_empty() {
                    out.push_str("  no key yet (a node creates the first when it starts)\n");
                }
                for row in &ring {
                    let same_alg: Vec<RingKey> =
                        ring.iter().filter(|r| r.alg == row.alg).cloned().collect();
                    // A first key (slot 0) or a replacement signs from when
                    // it was made; a next key from its slot.
                    let from = timestamp::format(row.signs_from.max(row.created_at));
                    out.push_str(&format!(
                        "  {}  {:<5}  from {}  {}\n",
                        row.kid,
                        row.alg,
                        from,
                        ring_state(&same_alg, row, now, max_lifetime)
                    ));
                }
            }
            None if !t.signing.keys.is_empty() => {
                out.push_str(&format!(
                    "tenant {} ({}, configured keys):\n",
                    t.id, t.signing.alg
                ));
                let mut signing_found = false;
                for (file, key) in t.signing.keys.iter().zip(&t.signing.loaded_keys) {
                    let holds = file.not_before.is_none_or(|f| f <= now)
                        && file.not_after.is_none_or(|u| now < u);
                    let state = if holds && !signing_found {
                        signing_found = true;
                        "signing".to_string()
                    } else if file
                        .not_after
                        .is_some_and(|u| u.saturating_add(max_lifetime) <= now)
                    {
                        "expired (no longer published)".to_string()
                    } else {
                        "published".to_string()
                    };
                    let edge = |t: Option<i64>| t.map_or("-".to_string(), timestamp::format);
                    out.push_str(&format!(
                        "  {}  {:<5}  {}  not_before {}  not_after {}  {}\n",
                        key.kid(),
                        key.alg(),
                        file.path.display(),
                        edge(file.not_before),
                        edge(file.not_after),
                        state
                    ));
                }
            }
            None => {
                out.push_str(&format!(
                    "tenant {} ({}, generated key):\n",
                    t.id, t.signing.alg
                ));
                for alg in keyring::ring_algs(t.signing.alg) {
                    let stored = store
                        .find_signing_key(&t.id, alg.as_str())
                        .await
                        .map_err(|e| format!("generated key: {e}"))?;
                    match stored {
                        Some(k) => out.push_str(&format!(
                            "  {}  {:<5}  created {}  signing\n",
                            k.kid,
                            k.alg,
                            timestamp::format(k.created_at)
                        )),
                        None => out.push_str(&format!(
                            "  no {alg} key yet (a node creates it when it starts)\n"
                        )),
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Retire the ring key `kid` of the tenant at `now`: it stops signing and
/// leaves JWKS at once (every node on its next ring check); if it was
/// signing, a fresh key signs in its place from now.
pub async fn retire(
    config: &Config,
    store: &Store,
    tenant_id: Option<&str>,
    kid: &str,
    now: i64,
) -> Result<Retired, String> {
    let t = tenant(config, tenant_id)?;
    if t.signing.rotation.is_none() {
        let how = if t.signing.keys.is_empty() {
            "set signing.rotation (the generated key then joins the tenant's key ring and can be retired)"
        } else {
            "remove the key from signing.keys (or end its not_after) and reload"
        };
        return Err(format!(
            "tenant {:?} has no signing.rotation, so it has no key ring to retire a key from: {how}",
            t.id
        ));
    }
    let ring = store
        .ring_keys(&t.id)
        .await
        .map_err(|e| format!("key ring: {e}"))?;
    let Some(row) = ring.iter().find(|r| r.kid == kid) else {
        return Err(format!(
            "tenant {:?} has no key {kid:?} in its key ring (see `sesame keys list`)",
            t.id
        ));
    };
    let alg = Alg::ALL
        .into_iter()
        .find(|a| a.as_str() == row.alg)
        .ok_or_else(|| format!("key {kid}: unknown alg {}", row.alg))?;
    let kek = config.key_encryption_key();
    let replacement = keyring::fresh_row(&t.id, alg, kek, 0, now)?;
    match store
        .retire_ring_key(&t.id, kid, now, Some(replacement))
        .await
        .map_err(|e| format!("key ring: {e}"))?
    {
        Retired::Now { key, replacement } => {
            tracing::warn!(
                event = "key.retired",
                tenant = %t.id,
                kid = %key.kid,
                alg = %key.alg,
                replacement = replacement.as_ref().map(|r| r.kid.as_str()),
                "signing key retired by an operator"
            );
            Ok(Retired::Now { key, replacement })
        }
        Retired::Already(at) => Ok(Retired::Already(at)),
        Retired::Unknown => Err(format!(
            "tenant {:?} has no key {kid:?} in its key ring",
            t.id
        )),
    }
}

/// What `retire` did, as a sentence.
pub fn describe(outcome: &Retired) -> String {
    match outcome {
        Retired::Now { key, replacement } => {
            let instead = match replacement {
                Some(r) => format!("; {} ({}) signs in its place", r.kid, r.alg),
                None => String::new(),
            };
            format!(
                "retired {} ({}) of tenant {}{instead}. Every node stops signing with it and \
                 drops it from JWKS within its next key ring check",
                key.kid, key.alg, key.tenant_id
            )
        }
        Retired::Already(at) => format!("already retired at {}", timestamp::format(*at)),
        Retired::Unknown => "no such key".to_string(),
    }
}
