//! Logout across applications (OpenID Connect Back-Channel and Front-Channel
//! Logout 1.0), as rows:
//!
//! - `session_clients`: which clients each browser session signed in to,
//!   written with the code issued in that session ([`Store::insert_code`]);
//! - `logout_outbox`: the back-channel messages owed to those clients once
//!   the session ends, written in the transaction that ends it, so a message
//!   is never lost between the two. Delivery (`crate::backchannel`) claims a
//!   row with a lease — a conditional `UPDATE` moving `leased_until` from
//!   the value it read, so of nodes claiming one row at once exactly one
//!   wins — and reports how the attempt went, under that lease only.

use diesel::prelude::*;

use super::conn::{write_tx, DbConnection};
use super::{q, schema, Store, StoreError, TokenHash};

/// A session that was just ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub sid: String,
    pub user_sub: String,
    /// The clients it signed in to, by id (sorted).
    pub clients: Vec<String>,
}

/// A back-channel logout message, as claimed for one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = schema::logout_outbox)]
pub struct LogoutMessage {
    /// The logout token's `jti`: the same at every attempt.
    pub jti: String,
    pub tenant_id: String,
    pub client_id: String,
    pub sid: String,
    pub user_sub: String,
    pub created_at: i64,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// The lease this attempt holds, until `leased_until`.
    pub lease_id: String,
    pub leased_until: i64,
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    /// Failed (`error`, no token in it); try again at `retry_at`.
    Retry {
        retry_at: i64,
        error: String,
    },
    /// Failed for the last time.
    Abandon {
        error: String,
    },
}

/// Delivered rows are deleted at once by the purge; abandoned ones are kept
/// this long for an operator to look at.
pub const ABANDONED_KEPT_SECS: i64 = 7 * 24 * 60 * 60;

/// A fresh message id (256 random bits, base64url): the logout token's `jti`.
fn message_id() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Record that the session `sid` signed in to `client_id` (once; the row
/// lives as long as the session).
pub(super) fn record_session_client(
    conn: &mut DbConnection,
    tenant_id: &str,
    sid: &str,
    client_id: &str,
    now: i64,
) -> Result<(), diesel::result::Error> {
    use schema::session_clients::dsl as sc;
    use schema::sessions::dsl as s;
    let expires_at: Option<i64> = s::sessions
        .filter(s::tenant_id.eq(tenant_id))
        .filter(s::sid.eq(sid))
        .select(s::expires_at)
        .first(conn)
        .optional()?;
    let row = (
        sc::tenant_id.eq(tenant_id),
        sc::sid.eq(sid),
        sc::client_id.eq(client_id),
        sc::created_at.eq(now),
        sc::expires_at.eq(expires_at.unwrap_or(now)),
    );
    // One statement that leaves a known pair as it is: no count first, no
    // savepoint, and no unique violation (which on PostgreSQL would abort
    // the caller's whole transaction, and with it the code) when two codes
    // of one session race.
    let insert = diesel::insert_into(sc::session_clients).values(row);
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(c) => insert.on_conflict_do_nothing().execute(c),
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(c) => insert.on_conflict_do_nothing().execute(c),
        #[cfg(feature = "mysql")]
        DbConnection::Mysql(c) => insert
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            .set(sc::created_at.eq(sc::created_at))
            .execute(c),
    }
    .map(|_| ())
}

/// For each ended session `(sid, user_sub)`: its clients, and one outbox
/// row for each of them listed in `notify` (the clients with a
/// `backchannel_logout_uri`). In the caller's transaction.
pub(super) fn enqueue_logouts(
    conn: &mut DbConnection,
    tenant_id: &str,
    ended: &[(String, String)],
    notify: &[String],
    now: i64,
) -> Result<Vec<EndedSession>, diesel::result::Error> {
    use schema::logout_outbox::dsl as o;
    use schema::session_clients::dsl as sc;
    let mut out = Vec::with_capacity(ended.len());
    for (sid, user_sub) in ended {
        let mut clients: Vec<String> = sc::session_clients
            .filter(sc::tenant_id.eq(tenant_id))
            .filter(sc::sid.eq(sid))
            .select(sc::client_id)
            .load(conn)?;
        clients.sort();
        for client in clients.iter().filter(|c| notify.contains(c)) {
            diesel::insert_into(o::logout_outbox)
                .values((
                    o::jti.eq(message_id()),
                    o::tenant_id.eq(tenant_id),
                    o::client_id.eq(client),
                    o::sid.eq(sid),
                    o::user_sub.eq(user_sub),
                    o::created_at.eq(now),
                    o::attempts.eq(0i64),
                    o::next_attempt_at.eq(now),
                    o::leased_until.eq(0i64),
                    o::lease_id.eq(""),
                ))
                .execute(conn)?;
        }
        out.push(EndedSession {
            sid: sid.clone(),
            user_sub: user_sub.clone(),
            clients,
        });
    }
    Ok(out)
}

impl Store {
    /// End the session whose cookie hashes to `hash` (if it was not ended
    /// yet), queueing a back-channel logout for each of its clients listed
    /// in `notify`, in one transaction. `None`: no such live session (or
    /// another request ended it first).
    pub async fn end_session(
        &self,
        tenant_id: &str,
        hash: TokenHash,
        now: i64,
        notify: Vec<String>,
    ) -> Result<Option<EndedSession>, StoreError> {
        use schema::sessions::dsl as s;
        let tenant = tenant_id.to_string();
        self.write(move |conn| {
            q(write_tx(conn, |conn| {
                let found: Option<(String, String)> = s::sessions
                    .filter(s::tenant_id.eq(&tenant))
                    .filter(s::session_hash.eq(hash))
                    .filter(s::revoked_at.is_null())
                    .select((s::sid, s::user_sub))
                    .first(conn)
                    .optional()?;
                let Some(found) = found else {
                    return Ok(None);
                };
                let ended = diesel::update(
                    s::sessions
                        .filter(s::tenant_id.eq(&tenant))
                        .filter(s::session_hash.eq(hash))
                        .filter(s::revoked_at.is_null()),
                )
                .set(s::revoked_at.eq(Some(now)))
                .execute(conn)?;
                if ended == 0 {
                    return Ok(None);
                }
                Ok(enqueue_logouts(conn, &tenant, &[found], &notify, now)?
                    .into_iter()
                    .next())
            }))
        })
        .await
    }

    /// The clients the session `sid` signed in to (sorted).
    pub async fn session_clients(
        &self,
        tenant_id: &str,
        sid: &str,
    ) -> Result<Vec<String>, StoreError> {
        use schema::session_clients::dsl as sc;
        let (tenant, sid) = (tenant_id.to_string(), sid.to_string());
        self.run(move |conn| {
            q(sc::session_clients
                .filter(sc::tenant_id.eq(&tenant))
                .filter(sc::sid.eq(&sid))
                .order(sc::client_id.asc())
                .select(sc::client_id)
                .load(conn))
        })
        .await
    }

    /// Claim up to `limit` messages due at `now`, of every tenant, for one
    /// attempt each until `leased_until`: a row is this caller's only if
    /// its conditional update moved the lease it read (another node's
    /// claim of the same row then finds the lease moved and skips it).
    pub async fn claim_logouts(
        &self,
        now: i64,
        leased_until: i64,
        limit: i64,
    ) -> Result<Vec<LogoutMessage>, StoreError> {
        use schema::logout_outbox::dsl as o;
        self.write(move |conn| {
            let due: Vec<(String, i64)> = q(o::logout_outbox
                .filter(o::delivered_at.is_null())
                .filter(o::abandoned_at.is_null())
                .filter(o::next_attempt_at.le(now))
                .filter(o::leased_until.le(now))
                .order(o::next_attempt_at.asc())
                .limit(limit.max(1))
                .select((o::jti, o::leased_until))
                .load(conn))?;
            let mut claimed = Vec::with_capacity(due.len());
            for (jti, seen) in due {
                let lease = message_id();
                let won = q(diesel::update(
                    o::logout_outbox
                        .filter(o::jti.eq(&jti))
                        .filter(o::leased_until.eq(seen))
                        .filter(o::delivered_at.is_null())
                        .filter(o::abandoned_at.is_null()),
                )
                .set((
                    o::leased_until.eq(leased_until),
                    o::lease_id.eq(&lease),
                    o::attempts.eq(o::attempts + 1),
                ))
                .execute(conn))?;
                if won == 1 {
                    let row = q(o::logout_outbox
                        .filter(o::jti.eq(&jti))
                        .filter(o::lease_id.eq(&lease))
                        .select(LogoutMessage::as_select())
                        .first(conn)
                        .optional())?;
                    claimed.extend(row);
                }
            }
            Ok(claimed)
        })
        .await
    }

    /// Record how the attempt under `message`'s lease went: true if the
    /// lease was still this attempt's (false: it had run out and another
    /// node claimed the row; nothing is changed).
    pub async fn finish_logout(
        &self,
        message: &LogoutMessage,
        now: i64,
        attempt: Attempt,
    ) -> Result<bool, StoreError> {
        use schema::logout_outbox::dsl as o;
        let (jti, lease) = (message.jti.clone(), message.lease_id.clone());
        self.write(move |conn| {
            let row = o::logout_outbox
                .filter(o::jti.eq(&jti))
                .filter(o::lease_id.eq(&lease));
            let n = match attempt {
                Attempt::Delivered => diesel::update(row)
                    .set((o::delivered_at.eq(Some(now)), o::leased_until.eq(0i64)))
                    .execute(conn),
                Attempt::Retry { retry_at, error } => diesel::update(row)
                    .set((
                        o::next_attempt_at.eq(retry_at),
                        o::leased_until.eq(0i64),
                        o::last_error.eq(Some(error)),
                    ))
                    .execute(conn),
                Attempt::Abandon { error } => diesel::update(row)
                    .set((
                        o::abandoned_at.eq(Some(now)),
                        o::leased_until.eq(0i64),
                        o::last_error.eq(Some(error)),
                    ))
                    .execute(conn),
            };
            q(n).map(|n| n == 1)
        })
        .await
    }

    /// Messages not delivered yet nor abandoned, of every tenant.
    pub async fn pending_logouts(&self) -> Result<i64, StoreError> {
        use schema::logout_outbox::dsl as o;
        self.run(move |conn| {
            q(o::logout_outbox
                .filter(o::delivered_at.is_null())
                .filter(o::abandoned_at.is_null())
                .count()
                .get_result(conn))
        })
        .await
    }
}

/// The purge's part: session records of expired sessions, delivered
/// messages, messages abandoned more than [`ABANDONED_KEPT_SECS`] ago.
pub(super) fn purge(conn: &mut DbConnection, now: i64) -> Result<u64, diesel::result::Error> {
    use schema::logout_outbox::dsl as o;
    use schema::session_clients::dsl as sc;
    let mut n = diesel::delete(sc::session_clients.filter(sc::expires_at.lt(now))).execute(conn)?;
    n += diesel::delete(o::logout_outbox.filter(o::delivered_at.is_not_null())).execute(conn)?;
    n += diesel::delete(
        o::logout_outbox.filter(o::abandoned_at.lt(now.saturating_sub(ABANDONED_KEPT_SECS))),
    )
    .execute(conn)?;
    Ok(n as u64)
}
