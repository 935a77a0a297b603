//! Generated keys on a schedule (`signing.rotation`): each tenant's ring of
//! keys per algorithm, kept in the store (`store/ring.rs`) so every node
//! sees the same ring, and the tenant's keyset made from it.
//!
//! The rules are plain functions of the ring's rows and the time
//! ([`due_slot`], [`windows`]); [`maintain`] applies them over the store,
//! and [`keep_rings`] runs on every node, re-reading the rings and swapping
//! each rotating tenant's keyset in place (no new configuration generation).
//!
//! - The first key of a ring has slot 0 (it signs from the start). A
//!   tenant's key generated before rotation was set becomes that first key,
//!   so what it signed still verifies.
//! - The next key is created once the current one has signed for
//!   `every - lead`, in the slot `current + k·every` (the first at least
//!   `lead` away): published at once, signing from its slot. Nodes that
//!   create it together compute the same slot; one insert wins.
//! - A key stops signing when a later one starts, and stays published
//!   until every token it signed has expired (the tenant's longest access
//!   or ID token lifetime after that).
//! - A retired key is gone at once: it neither signs, nor is published,
//!   nor verifies.

use std::sync::Arc;
use std::time::Duration;

use crate::config::RotationConfig;
use crate::http::App;
use crate::jose::{
    is_sealed, Alg, KeyEncryptionKey, KeyRow, KeyWindow, Keyset, OpenError, SigningKey,
};
use crate::store::{RingKey, Store};
use crate::tenant::Tenant;

/// The rings of a tenant signing with `alg`: its own, and RS256 (OIDC Core
/// §15.1) when that is another.
pub fn ring_algs(alg: Alg) -> Vec<Alg> {
    if alg == Alg::RS256 {
        vec![alg]
    } else {
        vec![alg, Alg::RS256]
    }
}

/// The slot (`signs_from`) of the key to create in `ring` (one algorithm's
/// rows) at `now`, if one is due: the first key (slot 0); a key to sign at
/// once when every key is retired; the next key once the newest has signed
/// for `every - lead`. A slot taken by a retired key moves on by a second.
pub fn due_slot(ring: &[RingKey], now: i64, every: i64, lead: i64) -> Option<i64> {
    let taken = |slot: i64| ring.iter().any(|r| r.signs_from == slot);
    let free_from = |mut slot: i64| {
        while taken(slot) {
            slot += 1;
        }
        slot
    };
    let newest = ring
        .iter()
        .filter(|r| r.retired_at.is_none())
        .map(|r| r.signs_from)
        .max();
    match newest {
        None if ring.is_empty() => Some(0),
        None => {
            let last = ring
                .iter()
                .map(|r| r.signs_from)
                .filter(|&s| s <= now)
                .max()
                .unwrap_or(0);
            Some(free_from(last + 1))
        }
        // The next key exists.
        Some(newest) if newest > now => None,
        Some(newest) if now < newest.saturating_add(every - lead) => None,
        Some(newest) => {
            let steps = (now + lead - newest + every - 1).div_euclid(every).max(1);
            Some(free_from(newest + steps * every))
        }
    }
}

/// The rows of `ring` (one algorithm) that are published at or after `now`,
/// newest first, with their windows: each signs from its slot until a later
/// key that signed takes over, and is published until `max_lifetime` after
/// that. Retired rows are left out.
pub fn windows(ring: &[RingKey], now: i64, max_lifetime: i64) -> Vec<(&RingKey, KeyWindow)> {
    let mut rows: Vec<&RingKey> = ring.iter().collect();
    rows.sort_by_key(|r| r.signs_from);
    let took_over = |r: &RingKey| r.retired_at.is_none_or(|at| at > r.signs_from);
    let mut out: Vec<(&RingKey, KeyWindow)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.retired_at.is_none())
        .map(|(i, r)| {
            let until = rows[i + 1..]
                .iter()
                .find(|later| took_over(later))
                .map(|later| later.signs_from);
            let window = KeyWindow {
                signs_from: Some(r.signs_from),
                signs_until: until,
                published_until: until.map(|u| u.saturating_add(max_lifetime)),
            };
            (*r, window)
        })
        .filter(|(_, w)| w.published_at(now))
        .collect();
    out.reverse();
    out
}

/// A fresh key for `tenant` and `alg` and its PEM as stored: sealed under
/// `kek` (bound to tenant, alg and kid) when there is one, else in clear.
pub fn fresh_key(
    tenant: &str,
    alg: Alg,
    kek: Option<&KeyEncryptionKey>,
) -> Result<(SigningKey, String), String> {
    let key = SigningKey::generate(alg).map_err(|e| e.to_string())?;
    let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
    let stored = match kek {
        Some(kek) => {
            let row = KeyRow {
                tenant_id: tenant,
                alg: alg.as_str(),
                kid: key.kid(),
            };
            kek.seal(row, pem.as_bytes()).map_err(|e| e.to_string())?
        }
        None => pem,
    };
    Ok((key, stored))
}

/// A ring row for a fresh key (its slot set by the caller).
pub fn fresh_row(
    tenant: &str,
    alg: Alg,
    kek: Option<&KeyEncryptionKey>,
    signs_from: i64,
    now: i64,
) -> Result<RingKey, String> {
    let (key, private_pem) = fresh_key(tenant, alg, kek)?;
    Ok(RingKey {
        tenant_id: tenant.to_string(),
        alg: alg.as_str().to_string(),
        kid: key.kid().to_string(),
        private_pem,
        signs_from,
        retired_at: None,
        created_at: now,
    })
}

/// The signing key in a stored row's `private_pem`, opened with `kek` if it
/// is sealed (for the row's tenant, alg and kid). A sealed key without a
/// key-encryption key, or one it doesn't open, is an error — never a reason
/// to make another key.
pub fn open_pem(
    kek: Option<&KeyEncryptionKey>,
    row: KeyRow<'_>,
    private_pem: &str,
) -> Result<SigningKey, String> {
    let (tenant, kid) = (row.tenant_id, row.kid);
    let opened;
    let pem = if is_sealed(private_pem) {
        let Some(kek) = kek else {
            return Err(format!(
                "tenant {tenant:?}: the stored signing key (kid {kid}) is encrypted, but no \
                 key-encryption key is configured: set key_encryption to the key it was encrypted with"
            ));
        };
        opened = kek.open(row, private_pem).map_err(|e| match e {
            OpenError::Mismatch => format!(
                "tenant {tenant:?}: the key-encryption key doesn't decrypt the stored signing \
                 key (kid {kid}): it is not the key that encrypted it, or the row was altered; \
                 configure that key (no new signing key is generated in its place)"
            ),
            OpenError::Malformed(m) => {
                format!("tenant {tenant:?}: the stored signing key (kid {kid}) is unreadable: {m}")
            }
        })?;
        opened.as_slice()
    } else {
        private_pem.as_bytes()
    };
    let alg = Alg::ALL
        .into_iter()
        .find(|a| a.as_str() == row.alg)
        .ok_or_else(|| {
            format!(
                "tenant {tenant:?}: stored key {kid}: unknown alg {}",
                row.alg
            )
        })?;
    let key = SigningKey::from_pem(pem, alg)
        .map_err(|e| format!("tenant {tenant:?}: stored key {kid}: {e}"))?;
    if key.kid() != kid {
        return Err(format!(
            "tenant {tenant:?}: stored key {kid}: the key in the row has kid {}",
            key.kid()
        ));
    }
    Ok(key)
}

fn row_of(r: &RingKey) -> KeyRow<'_> {
    KeyRow {
        tenant_id: &r.tenant_id,
        alg: &r.alg,
        kid: &r.kid,
    }
}

/// The first key of an empty ring: the tenant's key generated before
/// rotation was set (kept, so what it signed verifies), else a fresh one.
async fn first_key(
    store: &Store,
    tenant: &str,
    alg: Alg,
    kek: Option<&KeyEncryptionKey>,
    now: i64,
) -> Result<RingKey, String> {
    let stored = store
        .find_signing_key(tenant, alg.as_str())
        .await
        .map_err(|e| format!("generated key: {e}"))?;
    let Some(stored) = stored else {
        return fresh_row(tenant, alg, kek, 0, now);
    };
    let row = KeyRow {
        tenant_id: tenant,
        alg: &stored.alg,
        kid: &stored.kid,
    };
    let key = open_pem(kek, row, &stored.private_pem)?;
    let private_pem = match kek.filter(|_| !is_sealed(&stored.private_pem)) {
        Some(kek) => {
            let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
            let sealed = kek.seal(row, pem.as_bytes()).map_err(|e| e.to_string())?;
            // Sealed where it was, too, as a start without rotation would
            // have (a conditional update: of racing nodes, one rewrites it).
            let rewritten = store
                .rewrite_signing_key(tenant, &stored.alg, &stored.private_pem, &sealed)
                .await
                .map_err(|e| format!("generated key: {e}"))?;
            if rewritten {
                tracing::warn!(
                    tenant = %tenant,
                    kid = %stored.kid,
                    "the stored signing key was in clear; encrypted it with the key-encryption key (expected once per tenant, after key_encryption is first set)"
                );
            }
            sealed
        }
        None => stored.private_pem.clone(),
    };
    Ok(RingKey {
        tenant_id: tenant.to_string(),
        alg: stored.alg.clone(),
        kid: stored.kid.clone(),
        private_pem,
        signs_from: 0,
        retired_at: None,
        created_at: stored.created_at,
    })
}

/// The ring of `tenant` for `alg` after creating what is due at `now` (the
/// first key, a key to sign at once, the next key). Race-safe across nodes:
/// a slot another node filled first is read back, not filled twice.
pub async fn maintain(
    store: &Store,
    tenant: &str,
    alg: Alg,
    rotation: &RotationConfig,
    kek: Option<&KeyEncryptionKey>,
    now: i64,
) -> Result<Vec<RingKey>, String> {
    let every = secs(rotation.every);
    let lead = secs(rotation.lead);
    for _ in 0..4 {
        let ring = store
            .ring_keys_for(tenant, alg.as_str())
            .await
            .map_err(|e| format!("key ring: {e}"))?;
        let Some(slot) = due_slot(&ring, now, every, lead) else {
            return Ok(ring);
        };
        let row = if ring.is_empty() {
            first_key(store, tenant, alg, kek, now).await?
        } else {
            fresh_row(tenant, alg, kek, slot, now)?
        };
        let (kid, signs_from) = (row.kid.clone(), row.signs_from);
        let inserted = store
            .insert_ring_key(row)
            .await
            .map_err(|e| format!("key ring: {e}"))?;
        if inserted {
            tracing::info!(
                event = "key.created",
                tenant = %tenant,
                alg = %alg,
                kid = %kid,
                signs_from,
                "signing key added to the ring"
            );
        }
        // Inserted or lost to another node: read the ring again.
    }
    Err(format!(
        "tenant {tenant:?}: the {alg} key ring kept changing while a key was being added"
    ))
}

/// The keyset of a rotating tenant at `now`: its rings maintained and
/// opened (keys `previous` already holds are not opened again).
#[allow(clippy::too_many_arguments)]
pub async fn keyset(
    store: &Store,
    tenant: &str,
    alg: Alg,
    rotation: &RotationConfig,
    max_lifetime: i64,
    kek: Option<&KeyEncryptionKey>,
    previous: Option<&Keyset>,
    now: i64,
) -> Result<Keyset, String> {
    let mut per_alg = Vec::new();
    for ring_alg in ring_algs(alg) {
        let ring = maintain(store, tenant, ring_alg, rotation, kek, now).await?;
        let mut keys = Vec::new();
        for (row, window) in windows(&ring, now, max_lifetime) {
            let key = match previous.and_then(|p| p.find_any(&row.kid)) {
                Some(k) => k.clone(),
                None => open_pem(kek, row_of(row), &row.private_pem)?,
            };
            keys.push((key, window));
        }
        per_alg.push(keys);
    }
    let mut per_alg = per_alg.into_iter();
    let own = per_alg.next().unwrap_or_default();
    let set = Keyset::windowed(alg, own).map_err(|e| format!("tenant {tenant:?}: {e}"))?;
    Ok(match per_alg.next() {
        Some(rs256) => set.with_rs256(rs256),
        None => set,
    })
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// How often [`keep_rings`] looks at the rings: a quarter of the shortest
/// `lead`, between 250 ms and 60 s.
pub fn tick(tenants: &[Arc<Tenant>]) -> Duration {
    tenants
        .iter()
        .filter_map(|t| t.rotation)
        .map(|r| r.lead / 4)
        .min()
        .unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// On every node, for the life of the process: each rotating tenant's rings
/// maintained and re-read every [`tick`], and its keyset replaced when they
/// changed (a new key, a retired one, a key whose publication ended).
pub async fn keep_rings(app: Arc<App>) {
    let mut last = tokio::time::Instant::now();
    loop {
        // Wake often (it costs nothing), so that a reload that sets a
        // shorter `lead` is followed at once.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let runtime = app.runtime.load_full();
        if last.elapsed() < tick(&runtime.tenants) {
            continue;
        }
        last = tokio::time::Instant::now();
        let kek = runtime.config.key_encryption_key();
        for tenant in runtime.tenants.iter() {
            let Some(rotation) = tenant.rotation else {
                continue;
            };
            let current = tenant.keys.load_full();
            let now = crate::now();
            let fresh = keyset(
                &app.store,
                &tenant.id,
                current.alg(),
                &rotation,
                tenant.max_token_lifetime,
                kek,
                Some(&current),
                now,
            )
            .await;
            match fresh {
                Ok(fresh) if fresh.same_as(&current) => {}
                Ok(fresh) => {
                    tracing::debug!(tenant = %tenant.id, "keyset updated from the key ring");
                    tenant.keys.store(Arc::new(fresh));
                }
                Err(e) => tracing::warn!(
                    tenant = %tenant.id,
                    error = %e,
                    "key ring not refreshed; the keys read before keep serving"
                ),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn row(kid: &str, signs_from: i64, retired_at: Option<i64>) -> RingKey {
        RingKey {
            tenant_id: "t".into(),
            alg: "ES256".into(),
            kid: kid.into(),
            private_pem: String::new(),
            signs_from,
            retired_at,
            created_at: 0,
        }
    }

    const EVERY: i64 = 100;
    const LEAD: i64 = 20;

    #[test]
    fn an_empty_ring_starts_with_slot_zero() {
        assert_eq!(due_slot(&[], 5000, EVERY, LEAD), Some(0));
    }

    #[test]
    fn the_next_key_is_due_lead_before_its_slot() {
        let ring = [row("a", 1000, None)];
        assert_eq!(due_slot(&ring, 1079, EVERY, LEAD), None);
        assert_eq!(due_slot(&ring, 1080, EVERY, LEAD), Some(1100));
        // Once it exists, nothing more is due until it signs.
        let ring = [row("a", 1000, None), row("b", 1100, None)];
        assert_eq!(due_slot(&ring, 1099, EVERY, LEAD), None);
        assert_eq!(due_slot(&ring, 1180, EVERY, LEAD), Some(1200));
    }

    #[test]
    fn a_late_next_key_still_gets_its_lead() {
        // The first key (slot 0) at t=5000: the next slot on the grid at
        // least LEAD away.
        assert_eq!(
            due_slot(&[row("a", 0, None)], 5000, EVERY, LEAD),
            Some(5100)
        );
        assert_eq!(
            due_slot(&[row("a", 0, None)], 5085, EVERY, LEAD),
            Some(5200)
        );
        // Nodes late by a whole period skip to the next slot.
        assert_eq!(
            due_slot(&[row("a", 1000, None)], 1250, EVERY, LEAD),
            Some(1300)
        );
    }

    #[test]
    fn slots_of_retired_keys_are_not_reused() {
        // The next key (1100) was retired before it signed: a new next key,
        // a second further on.
        let ring = [row("a", 1000, None), row("b", 1100, Some(1050))];
        assert_eq!(due_slot(&ring, 1080, EVERY, LEAD), Some(1101));
        // Every key retired: one to sign at once.
        let ring = [row("a", 1000, Some(1050))];
        assert_eq!(due_slot(&ring, 1060, EVERY, LEAD), Some(1001));
    }

    fn window_of(ring: &[RingKey], now: i64, kid: &str) -> Option<KeyWindow> {
        windows(ring, now, 30)
            .into_iter()
            .find(|(r, _)| r.kid == kid)
            .map(|(_, w)| w)
    }

    #[test]
    fn a_rotated_out_key_is_published_until_its_tokens_expire() {
        let ring = [
            row("a", 0, None),
            row("b", 1100, None),
            row("c", 1200, None),
        ];
        let a = window_of(&ring, 1100, "a").unwrap();
        assert_eq!(a.signs_until, Some(1100));
        assert_eq!(a.published_until, Some(1130));
        assert!(window_of(&ring, 1130, "a").is_none());
        let b = window_of(&ring, 1150, "b").unwrap();
        assert!(b.signs_at(1150) && !b.signs_at(1200));
        let c = window_of(&ring, 1150, "c").unwrap();
        assert_eq!(c.signs_until, None);
        assert!(!c.signs_at(1150) && c.published_at(1150));
        // Newest first.
        let kids: Vec<&str> = windows(&ring, 1110, 30)
            .iter()
            .map(|(r, _)| r.kid.as_str())
            .collect();
        assert_eq!(kids, ["c", "b", "a"]);
    }

    #[test]
    fn retired_keys_are_gone_and_their_signing_ends_where_they_began() {
        // b signed from 1100, was retired at 1150 and replaced by r (1101).
        let ring = [
            row("a", 0, None),
            row("b", 1100, Some(1150)),
            row("r", 1101, None),
        ];
        assert!(window_of(&ring, 1150, "b").is_none());
        assert_eq!(window_of(&ring, 1120, "a").unwrap().signs_until, Some(1100));
        assert!(window_of(&ring, 1150, "r").unwrap().signs_at(1150));
        // A next key retired before it signed does not end the current one.
        let ring = [row("a", 1000, None), row("n", 1100, Some(1090))];
        assert_eq!(window_of(&ring, 1200, "a").unwrap().signs_until, None);
    }
}
