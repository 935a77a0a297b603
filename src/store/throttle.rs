//! Brute-force counters: attempts per (tenant, hashed key) within a window,
//! and lockouts. Kept in the database so every node counts the same attempts.
//!
//! An expensive verification (a password, a hashed client secret) first
//! *reserves* a place under each of its keys ([`Store::reserve_attempt`]).
//! A key's window has `max_failures` places, held by the failures counted in
//! it and by the attempts still being verified, so no more than that many
//! verifications of a key run in a window, however many requests arrive at
//! once and on whichever nodes. The attempt is then settled: a failure keeps
//! its place as a counted failure, and the one that reaches the limit locks
//! the key ([`Store::record_failure`]); a success gives its place back and
//! reports a lockout that landed meanwhile ([`Store::release_attempt`]).
//!
//! Each call is one write transaction (`BEGIN IMMEDIATE` on SQLite; on
//! MySQL/PostgreSQL each row is locked by an `UPDATE` before it is read, in
//! the order of the key hashes), so concurrent callers never lose a count,
//! never share a place, and exactly one of them turns a key's last allowed
//! failure into a lockout.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::conn::{is_unique_violation, query_error, write_tx};
use super::{q, schema, Db, Store, StoreError, TokenHash};

/// One key to count attempts under, and the failures it may have in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleKey {
    /// Hash of what is counted (it should include the tenant, e.g. `tenant\0user\0alice`).
    pub key: TokenHash,
    pub max_failures: u32,
}

/// How attempts are counted: seconds in a window, seconds of lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleWindow {
    pub window: i64,
    pub lockout: i64,
}

/// Keys locked after a failure ([`Store::record_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    /// The latest end of their lockouts (unix seconds).
    pub until: i64,
    /// Which of the request's keys are locked.
    pub keys: Vec<TokenHash>,
}

/// What [`Store::reserve_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleAttempt {
    /// The attempt holds a place under every key: verify it, then settle it
    /// with [`Store::record_failure`] or [`Store::release_attempt`].
    Reserved,
    /// Refused, until then (unix seconds): a key is locked, or every place
    /// of its window is taken — by attempts being verified (`now + 1`: they
    /// are settled within a second or so) or by failures (the window's end).
    Locked(i64),
}

/// A key's row, read under its row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    key: TokenHash,
    /// Failures counted in the window that started at `window_start`.
    failures: i64,
    /// Places taken by attempts not settled yet.
    pending: i64,
    window_start: i64,
    locked_until: i64,
}

impl Counter {
    fn fresh(key: TokenHash, now: i64) -> Counter {
        Counter {
            key,
            failures: 0,
            pending: 0,
            window_start: now,
            locked_until: 0,
        }
    }

    fn locked(&self, now: i64) -> Option<i64> {
        (self.locked_until > now).then_some(self.locked_until)
    }

    fn window_passed(&self, window: ThrottleWindow, now: i64) -> bool {
        self.locked_until <= now && self.window_start.saturating_add(window.window) <= now
    }

    /// Give back one place (never below none: a place may have been
    /// forgotten with its window).
    fn unreserve(&mut self) {
        self.pending = (self.pending - 1).max(0);
    }
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

    /// Take a place under every key for an attempt about to be verified; or
    /// refuse it, taking none, while a key is locked or has no place left in
    /// its window. A key whose window has passed starts a new one (and
    /// forgets the places its old one held).
    pub async fn reserve_attempt(
        &self,
        tenant_id: &str,
        keys: Vec<ThrottleKey>,
        window: ThrottleWindow,
        now: i64,
    ) -> Result<ThrottleAttempt, StoreError> {
        let keys = ordered(keys);
        let hashes = keys.iter().map(|k| k.key).collect();
        self.counting(tenant_id, hashes, window, now, move |counters| {
            if let Some(until) = counters.iter().filter_map(|c| c.locked(now)).max() {
                return ThrottleAttempt::Locked(until);
            }
            for c in counters.iter_mut().filter(|c| c.window_passed(window, now)) {
                *c = Counter::fresh(c.key, now);
            }
            // `counters` holds a row for every key, in the order of `keys`.
            let full = keys
                .iter()
                .zip(counters.iter())
                .filter(|(k, c)| c.failures + c.pending >= i64::from(k.max_failures))
                .map(|(k, c)| {
                    if c.failures >= i64::from(k.max_failures) {
                        // Only after the limit was lowered: no lockout, no place either.
                        c.window_start.saturating_add(window.window)
                    } else {
                        now.saturating_add(1)
                    }
                })
                .max();
            if let Some(until) = full {
                return ThrottleAttempt::Locked(until);
            }
            for c in counters.iter_mut() {
                c.pending += 1;
            }
            ThrottleAttempt::Reserved
        })
        .await
    }

    /// A reserved attempt failed: its place becomes a counted failure. A key
    /// that reaches its `max_failures` is locked until `now + lockout` (and
    /// its count starts over). Returns the latest lockout end among the keys
    /// if any of them is locked now (by this failure or before it).
    pub async fn record_failure(
        &self,
        tenant_id: &str,
        keys: Vec<ThrottleKey>,
        window: ThrottleWindow,
        now: i64,
    ) -> Result<Option<Lockout>, StoreError> {
        let keys = ordered(keys);
        let hashes = keys.iter().map(|k| k.key).collect();
        self.counting(tenant_id, hashes, window, now, move |counters| {
            let mut locked: Option<Lockout> = None;
            for (k, c) in keys.iter().zip(counters.iter_mut()) {
                c.unreserve();
                if c.locked(now).is_none() {
                    if c.window_passed(window, now) {
                        // Reserved in a window that has passed: the first failure of a new one.
                        c.failures = 0;
                        c.window_start = now;
                    }
                    c.failures += 1;
                    if c.failures >= i64::from(k.max_failures) {
                        c.failures = 0;
                        c.window_start = now;
                        c.locked_until = now.saturating_add(window.lockout);
                    }
                }
                if let Some(until) = c.locked(now) {
                    let l = locked.get_or_insert(Lockout {
                        until,
                        keys: Vec::new(),
                    });
                    l.until = l.until.max(until);
                    l.keys.push(k.key);
                }
            }
            locked
        })
        .await
    }

    /// A reserved attempt succeeded: give its places back, and forget the
    /// failures of `clear` (the user who signed in). Unless a key got locked
    /// while the attempt was verified: then nothing is forgotten, and the
    /// latest lockout end is returned — the success must not be accepted.
    pub async fn release_attempt(
        &self,
        tenant_id: &str,
        keys: Vec<TokenHash>,
        clear: Option<TokenHash>,
        window: ThrottleWindow,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut keys = keys;
        keys.sort_by_key(|k| k.0);
        keys.dedup();
        self.counting(tenant_id, keys, window, now, move |counters| {
            let locked = counters.iter().filter_map(|c| c.locked(now)).max();
            for c in counters.iter_mut() {
                c.unreserve();
                if locked.is_none() && Some(c.key) == clear {
                    c.failures = 0;
                }
            }
            locked
        })
        .await
    }

    /// One write transaction over the rows of `keys` (created where
    /// missing): each is locked and read, `f` decides on them (in the order
    /// of `keys`) and the rows it changed are written back. Runs again when
    /// another node created one of the rows first.
    async fn counting<T, F>(
        &self,
        tenant_id: &str,
        keys: Vec<TokenHash>,
        window: ThrottleWindow,
        now: i64,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut [Counter]) -> T + Send + 'static,
    {
        if keys.is_empty() {
            return Ok(f(&mut []));
        }
        let tenant = tenant_id.to_string();
        // Long enough to outlive the window and a lockout started in it.
        let expires = now
            .saturating_add(window.window)
            .saturating_add(window.lockout);
        self.write(move |conn| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let result = write_tx(conn, |conn| {
                    let mut counters = Vec::with_capacity(keys.len());
                    for &key in &keys {
                        counters.push(lock_row(conn, &tenant, key, expires, now)?);
                    }
                    let read = counters.clone();
                    let out = f(&mut counters);
                    for (c, _) in counters.iter().zip(&read).filter(|(c, r)| c != r) {
                        save(conn, &tenant, c)?;
                    }
                    Ok(out)
                });
                match result {
                    // Another node inserted the same key first: go again on its row.
                    Err(e) if attempt < 3 && retryable(&e) => continue,
                    other => return other.map_err(query_error),
                }
            }
        })
        .await
    }
}

/// Keys in the order their rows are locked (by hash), each once.
fn ordered(mut keys: Vec<ThrottleKey>) -> Vec<ThrottleKey> {
    keys.sort_by_key(|k| k.key.0);
    keys.dedup_by_key(|k| k.key);
    keys
}

/// Lock the row of `key` (its `UPDATE` takes the row lock) and read it;
/// insert it first if there is none.
fn lock_row(
    conn: &mut Db,
    tenant: &str,
    key: TokenHash,
    expires: i64,
    now: i64,
) -> Result<Counter, DieselError> {
    use schema::throttles::dsl as t;
    let row = || {
        t::throttles
            .filter(t::tenant_id.eq(tenant))
            .filter(t::key_hash.eq(key))
    };
    // Affected rows are matched rows on every backend (diesel asks MySQL for
    // CLIENT_FOUND_ROWS), even where `expires_at` does not change.
    let n = diesel::update(row())
        .set(t::expires_at.eq(expires))
        .execute(conn)?;
    if n == 0 {
        let c = Counter::fresh(key, now);
        diesel::insert_into(t::throttles)
            .values((
                t::tenant_id.eq(tenant),
                t::key_hash.eq(key),
                t::failures.eq(c.failures),
                t::pending.eq(c.pending),
                t::window_start.eq(c.window_start),
                t::locked_until.eq(c.locked_until),
                t::expires_at.eq(expires),
            ))
            .execute(conn)?;
        return Ok(c);
    }
    let (failures, pending, window_start, locked_until) = row()
        .select((t::failures, t::pending, t::window_start, t::locked_until))
        .first::<(i64, i64, i64, i64)>(conn)?;
    Ok(Counter {
        key,
        failures,
        pending,
        window_start,
        locked_until,
    })
}

fn save(conn: &mut Db, tenant: &str, c: &Counter) -> Result<(), DieselError> {
    use schema::throttles::dsl as t;
    diesel::update(
        t::throttles
            .filter(t::tenant_id.eq(tenant))
            .filter(t::key_hash.eq(c.key)),
    )
    .set((
        t::failures.eq(c.failures),
        t::pending.eq(c.pending),
        t::window_start.eq(c.window_start),
        t::locked_until.eq(c.locked_until),
    ))
    .execute(conn)
    .map(|_| ())
}

fn retryable(e: &DieselError) -> bool {
    is_unique_violation(e)
        || matches!(
            e,
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)
        )
        || matches!(e, DieselError::DatabaseError(_, info) if info.message().contains("Deadlock"))
}
