//! Brute-force counters: failures per (tenant, hashed key) within a window,
//! and lockouts. Kept in the database so every node counts the same failures.
//!
//! A failure is counted in one write transaction per call (`BEGIN IMMEDIATE`
//! on SQLite; on MySQL/PostgreSQL the increment's row lock serializes
//! concurrent callers), so concurrent failures are never lost and exactly
//! one caller turns a key's last allowed failure into a lockout.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::conn::{is_unique_violation, query_error, write_tx};
use super::{q, schema, Store, StoreError, TokenHash};

/// One key to count a failure under, and the failures it may have in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleKey {
    /// Hash of what is counted (it should include the tenant, e.g. `tenant\0user\0alice`).
    pub key: TokenHash,
    pub max_failures: u32,
}

/// How failures are counted: seconds in a window, seconds of lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    pub window: i64,
    pub lockout: i64,
}

impl Store {
    /// The latest lockout end (unix seconds) among `keys` that is still in the future.
    pub async fn find_lockout(
        &self,
        tenant_id: &str,
        keys: Vec<TokenHash>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        use schema::throttles::dsl as t;
        if keys.is_empty() {
            return Ok(None);
        }
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            let until: Vec<i64> = q(t::throttles
                .filter(t::tenant_id.eq(&tenant))
                .filter(t::key_hash.eq_any(&keys))
                .filter(t::locked_until.gt(now))
                .select(t::locked_until)
                .load(conn))?;
            Ok(until.into_iter().max())
        })
        .await
    }

    /// Count one failure under every key. A key whose window has passed starts
    /// a new one; a key that reaches its `max_failures` is locked until
    /// `now + lockout` (and its count starts over). Returns the latest lockout
    /// end among the keys if any of them is locked now.
    pub async fn record_failure(
        &self,
        tenant_id: &str,
        keys: Vec<ThrottleKey>,
        window: ThrottleWindow,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        use schema::throttles::dsl as t;
        if keys.is_empty() {
            return Ok(None);
        }
        let tenant = tenant_id.to_string();
        let expires = now
            .saturating_add(window.window)
            .saturating_add(window.lockout);
        self.write(move |conn| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let result = write_tx(conn, |conn| {
                    let mut locked: Option<i64> = None;
                    for k in &keys {
                        let hash = k.key;
                        let row = || {
                            t::throttles
                                .filter(t::tenant_id.eq(&tenant))
                                .filter(t::key_hash.eq(hash))
                        };
                        let n = diesel::update(row())
                            .set((t::failures.eq(t::failures + 1), t::expires_at.eq(expires)))
                            .execute(conn)?;
                        let (mut failures, window_start, mut locked_until) = if n == 0 {
                            diesel::insert_into(t::throttles)
                                .values((
                                    t::tenant_id.eq(&tenant),
                                    t::key_hash.eq(hash),
                                    t::failures.eq(1i64),
                                    t::window_start.eq(now),
                                    t::locked_until.eq(0i64),
                                    t::expires_at.eq(expires),
                                ))
                                .execute(conn)?;
                            (1, now, 0)
                        } else {
                            row()
                                .select((t::failures, t::window_start, t::locked_until))
                                .first::<(i64, i64, i64)>(conn)?
                        };
                        if locked_until <= now && window_start.saturating_add(window.window) <= now
                        {
                            // The window has passed: this failure opens a new one.
                            failures = 1;
                            diesel::update(row())
                                .set((t::failures.eq(1i64), t::window_start.eq(now)))
                                .execute(conn)?;
                        }
                        if locked_until <= now && failures >= i64::from(k.max_failures) {
                            locked_until = now.saturating_add(window.lockout);
                            diesel::update(row())
                                .set((
                                    t::failures.eq(0i64),
                                    t::window_start.eq(now),
                                    t::locked_until.eq(locked_until),
                                ))
                                .execute(conn)?;
                        }
                        if locked_until > now {
                            locked = Some(locked.map_or(locked_until, |l| l.max(locked_until)));
                        }
                    }
                    Ok(locked)
                });
                match result {
                    // Another node inserted the same key first: count again on its row.
                    Err(e) if attempt < 3 && retryable(&e) => continue,
                    other => return other.map_err(query_error),
                }
            }
        })
        .await
    }

    /// Forget the failures of `key` (after a success), unless it is locked.
    pub async fn clear_failures(
        &self,
        tenant_id: &str,
        key: TokenHash,
        now: i64,
    ) -> Result<(), StoreError> {
        use schema::throttles::dsl as t;
        let tenant = tenant_id.to_string();
        self.write(move |conn| {
            q(diesel::delete(
                t::throttles
                    .filter(t::tenant_id.eq(&tenant))
                    .filter(t::key_hash.eq(key))
                    .filter(t::locked_until.le(now)),
            )
            .execute(conn))
            .map(|_| ())
        })
        .await
    }
}

fn retryable(e: &DieselError) -> bool {
    is_unique_violation(e)
        || matches!(
            e,
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
        )
        || matches!(e, DieselError::DatabaseError(_, info) if info.message().contains("Deadlock"))
}
