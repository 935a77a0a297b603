//! The key ring of tenants with `signing.rotation`: one row per generated
//! key with the time it starts signing. Two nodes creating the same next
//! key collide on the unique (tenant_id, alg, signs_from) slot and one
//! insert wins; promotion needs no write (the key with the greatest
//! `signs_from` that has come signs). Retiring is a conditional `UPDATE`,
//! with the replacement of a signing key inserted in the same transaction.

use diesel::prelude::*;

use super::conn::{is_unique_violation, write_tx};
use super::{q, schema, RingKey, Store, StoreError};

/// What `retire_ring_key` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retired {
    /// The key was retired; `replacement` is the key inserted to sign in its
    /// place (it was the signing key).
    Now {
        key: Box<RingKey>,
        replacement: Option<Box<RingKey>>,
    },
    /// It had been retired already (at that time).
    Already(i64),
    /// The tenant's ring has no key with that kid.
    Unknown,
}

impl Store {
    /// Every ring key of the tenant (all algorithms), by `signs_from`.
    pub async fn ring_keys(&self, tenant_id: &str) -> Result<Vec<RingKey>, StoreError> {
        let tenant = tenant_id.to_string();
        self.run(move |conn| ring_of(conn, &tenant, None)).await
    }

    /// The tenant's ring keys for `alg`, by `signs_from`.
    pub async fn ring_keys_for(
        &self,
        tenant_id: &str,
        alg: &str,
    ) -> Result<Vec<RingKey>, StoreError> {
        let (tenant, alg) = (tenant_id.to_string(), alg.to_string());
        self.run(move |conn| ring_of(conn, &tenant, Some(&alg)))
            .await
    }

    /// Insert `key` into its tenant's ring: true if inserted, false if its
    /// slot (tenant, alg, signs_from) or kid was taken — by another node
    /// that created the same slot first; read the ring again.
    pub async fn insert_ring_key(&self, key: RingKey) -> Result<bool, StoreError> {
        use schema::key_ring::dsl as k;
        self.write(
            move |conn| match diesel::insert_into(k::key_ring).values(&key).execute(conn) {
                Ok(_) => Ok(true),
                Err(e) if is_unique_violation(&e) => Ok(false),
                Err(e) => Err(super::conn::query_error(e)),
            },
        )
        .await
    }

    /// Retire the tenant's ring key `kid` at `now` (only if it is not
    /// retired yet: of racing retirements, one wins). If it was the key
    /// signing at `now` for its algorithm, `replacement` (a fresh key of
    /// that algorithm) is inserted in the same transaction to sign from the
    /// first free second after the retired key's `signs_from` — at once.
    pub async fn retire_ring_key(
        &self,
        tenant_id: &str,
        kid: &str,
        now: i64,
        replacement: Option<RingKey>,
    ) -> Result<Retired, StoreError> {
        use schema::key_ring::dsl as k;
        let (tenant, kid) = (tenant_id.to_string(), kid.to_string());
        self.write(move |conn| {
            q(write_tx(conn, |conn| {
                let Some(key) = k::key_ring
                    .filter(k::tenant_id.eq(&tenant))
                    .filter(k::kid.eq(&kid))
                    .select(RingKey::as_select())
                    .first(conn)
                    .optional()?
                else {
                    return Ok(Retired::Unknown);
                };
                if let Some(at) = key.retired_at {
                    return Ok(Retired::Already(at));
                }
                let ring: Vec<RingKey> = k::key_ring
                    .filter(k::tenant_id.eq(&tenant))
                    .filter(k::alg.eq(&key.alg))
                    .order(k::signs_from.asc())
                    .select(RingKey::as_select())
                    .load(conn)?;
                let updated = diesel::update(
                    k::key_ring
                        .filter(k::tenant_id.eq(&tenant))
                        .filter(k::kid.eq(&kid))
                        .filter(k::retired_at.is_null()),
                )
                .set(k::retired_at.eq(now))
                .execute(conn)?;
                if updated == 0 {
                    return Ok(Retired::Already(now));
                }
                let signing = ring
                    .iter()
                    .filter(|r| r.retired_at.is_none() && r.signs_from <= now)
                    .max_by_key(|r| r.signs_from)
                    .is_some_and(|r| r.kid == key.kid);
                let replacement = match replacement.clone().filter(|_| signing) {
                    Some(mut fresh) => {
                        let mut slot = key.signs_from + 1;
                        while ring.iter().any(|r| r.signs_from == slot) {
                            slot += 1;
                        }
                        fresh.signs_from = slot;
                        diesel::insert_into(k::key_ring)
                            .values(&fresh)
                            .execute(conn)?;
                        Some(Box::new(fresh))
                    }
                    None => None,
                };
                let key = RingKey {
                    retired_at: Some(now),
                    ..key
                };
                Ok(Retired::Now {
                    key: Box::new(key),
                    replacement,
                })
            }))
        })
        .await
    }
}

fn ring_of(
    conn: &mut super::Db,
    tenant_id: &str,
    alg: Option<&str>,
) -> Result<Vec<RingKey>, StoreError> {
    use schema::key_ring::dsl as k;
    let ring = k::key_ring.filter(k::tenant_id.eq(tenant_id));
    let order = (k::alg.asc(), k::signs_from.asc());
    q(match alg {
        Some(alg) => ring
            .filter(k::alg.eq(alg))
            .order(order)
            .select(RingKey::as_select())
            .load(conn),
        None => ring.order(order).select(RingKey::as_select()).load(conn),
    })
}
