//! Persistence: one diesel code path over SQLite, MySQL/MariaDB and
//! PostgreSQL (`DbConnection`, a `MultiConnection`), pooled with r2d2.
//!
//! Every async method is one `spawn_blocking` that checks a connection out
//! inside the closure and does its whole unit of work there. Every lookup
//! filters on the tenant id. Single use (codes, refresh tokens) is decided
//! by the affected-row count of a conditional `UPDATE`, so under any race
//! exactly one caller wins, on one node or many.
//!
//! Writes to SQLite do not take a pooled connection: they are queued to
//! the node's one writer thread, which commits those that queue together
//! in one transaction (group commit, `writer.rs`).

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::Pool;

mod conn;
mod logout;
mod model;
mod nodes;
mod pushed;
mod revoke;
mod ring;
mod schema;
mod sql;
mod throttle;
mod writer;

pub use logout::{Attempt, EndedSession, LogoutMessage, ABANDONED_KEPT_SECS};
pub use model::*;
pub use nodes::NodeRow;
pub use pushed::PushedRequestRow;
pub use revoke::{RevocationMarker, RevokeFilter, Revoked};
pub use ring::Retired;
pub use throttle::{Lockout, ThrottleAttempt, ThrottleKey, ThrottleWindow};

use conn::{is_unique_violation, query_error, write_tx, Manager};

/// How long an expired code is kept so that a late replay is still
/// recognised as one (and its grant revoked) rather than reported unknown.
pub const CODE_REPLAY_GRACE_SECS: i64 = 24 * 60 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
    Postgres,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Bad URL, or a backend not compiled in.
    #[error("{0}")]
    Config(String),
    /// No connection could be had in time: the database is down or overloaded.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// How long one unit of work may take once it has its connection. Past
/// `connect_timeout` + this, the caller gets `Unavailable` even if the
/// driver is still waiting on a dead connection (mysqlclient has no read
/// timeout diesel can set), so no request hangs on the database.
pub const WORK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    backend: Backend,
    /// Upper bound of one request's unit of work, waiting for a connection included.
    deadline: Duration,
    /// Upper bound of a readiness check: a database that can't answer
    /// `SELECT 1` in about `connect_timeout` is not ready.
    ping_deadline: Duration,
    /// SQLite takes one writer at a time, and a writer that finds the lock
    /// taken sleeps in its busy handler (1 ms and up). This node's writes
    /// go to one writer thread instead, which commits the writes that
    /// queued while it was busy together (group commit).
    writer: Option<writer::Writer>,
    /// Time units of work wait for a connection, or SQLite writes for the
    /// writer (seconds), for `/metrics`.
    wait: Histogram,
    /// Writes per SQLite transaction, for `/metrics`.
    batches: Histogram,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

type Db = conn::DbConnection;

/// Checkpoint the whole WAL into the database file and empty it (SQLite),
/// waiting out a checkpoint the checkpointer thread may be running. Best
/// effort: a failure is logged.
fn truncate_wal(conn: &mut Db) {
    for _ in 0..100 {
        match conn::checkpoint(conn, conn::CheckpointMode::Truncate) {
            Ok(Some(c)) if c.busy => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint after a signing key rewrite failed");
                return;
            }
        }
    }
    tracing::warn!("WAL checkpoint after a signing key rewrite: still busy, left to the next one");
}

fn q<T>(r: Result<T, diesel::result::Error>) -> Result<T, StoreError> {
    r.map_err(query_error)
}

impl Store {
    /// Build the pool (no connection is required to succeed yet). Relative
    /// SQLite paths resolve against `base_dir`; the SQLite file's folder is created.
    pub fn connect(
        url: &str,
        pool_size: u32,
        connect_timeout: Duration,
        base_dir: &Path,
    ) -> Result<Store, StoreError> {
        Store::build(url, pool_size, None, connect_timeout, base_dir)
    }

    /// The pool of a one-shot command (`revoke`, `keys`, `plan`, ...): two
    /// connections at most, opened only when asked for. No connection is
    /// being opened in the background when the command returns and the
    /// process exits (libpq's GSSAPI library aborts if its exit handlers
    /// run under a connect in flight).
    pub fn connect_for_command(
        url: &str,
        connect_timeout: Duration,
        base_dir: &Path,
    ) -> Result<Store, StoreError> {
        Store::build(url, 2, Some(0), connect_timeout, base_dir)
    }

    fn build(
        url: &str,
        pool_size: u32,
        min_idle: Option<u32>,
        connect_timeout: Duration,
        base_dir: &Path,
    ) -> Result<Store, StoreError> {
        let (backend, url) = conn::parse_url(url, base_dir)?;
        let mut builder = Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(min_idle)
            .connection_timeout(connect_timeout.max(Duration::from_millis(1)));
        if backend == Backend::Sqlite {
            builder = builder.connection_customizer(Box::new(conn::SqlitePragmas));
        }
        let url = match backend {
            Backend::Postgres => conn::with_pg_timeouts(&url, connect_timeout),
            _ => url,
        };
        let wait = wait_histogram();
        let batches = batch_histogram();
        let writer = match backend {
            Backend::Sqlite => Some(writer::Writer::start(
                url.clone(),
                wait.clone(),
                batches.clone(),
            )?),
            _ => None,
        };
        let pool = builder.build_unchecked(Manager { backend, url });
        Ok(Store {
            pool,
            backend,
            deadline: connect_timeout + WORK_TIMEOUT,
            ping_deadline: connect_timeout + Duration::from_secs(1),
            writer,
            wait,
            batches,
        })
    }

    /// How long units of work waited for a connection, and SQLite writes
    /// for the writer thread (a histogram to export).
    pub fn wait_histogram(&self) -> Histogram {
        self.wait.clone()
    }

    /// How many writes each SQLite transaction committed together (a
    /// histogram to export; nothing is recorded on other backends).
    pub fn batch_histogram(&self) -> Histogram {
        self.batches.clone()
    }

    /// `(connections, idle)` of this node's pool now.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }

    /// A store with no database behind it: every question fails at once
    /// with `Unavailable`, and nothing is ever opened. For the commands that
    /// run the protocol core without a server (`sesame test`, `sesame
    /// explain`), on paths that ask the store nothing.
    pub fn offline() -> Store {
        let pool = Pool::builder()
            .max_size(1)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_millis(1))
            .build_unchecked(Manager {
                backend: Backend::Sqlite,
                url: String::new(),
            });
        Store {
            pool,
            backend: Backend::Sqlite,
            deadline: Duration::from_millis(10),
            ping_deadline: Duration::from_millis(10),
            writer: None,
            wait: wait_histogram(),
            batches: batch_histogram(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Apply pending migrations (blocking); returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn::migrations::run(&mut conn)
    }

    /// One unit of work on a pooled connection, off the async runtime,
    /// answered within the store's deadline.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_within(self.deadline, f).await
    }

    /// [`Store::run`] for work that writes. On SQLite it is queued to the
    /// writer thread and may share its transaction with other writes (each
    /// in its own savepoint: a write that fails fails alone); it is
    /// answered once that transaction has committed. The work must not
    /// open or end a transaction other than through `write_tx`.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_within(self.deadline, f).await
    }

    /// [`Store::write`] with its own deadline.
    async fn write_within<T, F>(&self, deadline: Duration, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(deadline, false, f).await,
            None => self.run_within(deadline, f).await,
        }
    }

    /// [`Store::write`] for work that cannot run inside a transaction
    /// (SQLite's `VACUUM` and WAL checkpoints): on SQLite the writer runs
    /// it on its own, between two transactions.
    async fn write_alone<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(self.deadline, true, f).await,
            None => self.run_within(self.deadline, f).await,
        }
    }

    async fn run_within<T, F>(&self, deadline: Duration, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let wait = self.wait.clone();
        let work = tokio::task::spawn_blocking(move || {
            let asked = std::time::Instant::now();
            let conn = pool.get();
            wait.observe(asked.elapsed().as_secs_f64());
            let mut conn = conn.map_err(|e| StoreError::Unavailable(e.to_string()))?;
            f(&mut conn)
        });
        // On timeout the blocking task runs on until the driver gives up; its
        // connection then fails the check-out test and is replaced.
        match tokio::time::timeout(deadline, work).await {
            Ok(joined) => {
                joined.map_err(|e| StoreError::Query(format!("store task failed: {e}")))?
            }
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer from the database within {deadline:?}"
            ))),
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.as_ref().is_some_and(|w| w.stopped()) {
            return Err(StoreError::Unavailable(
                "the database writer has stopped".into(),
            ));
        }
        self.run_within(self.ping_deadline, |conn| {
            q(diesel::sql_query("SELECT 1").execute(conn)).map(|_| ())
        })
        .await
    }

    /// Store `key` unless the tenant already has one for its alg; return the one that is stored.
    /// Race-safe across nodes: the loser of a concurrent insert hits the
    /// unique (tenant_id, alg) key and returns the winner's key.
    pub async fn find_or_insert_signing_key(
        &self,
        key: StoredKey,
    ) -> Result<StoredKey, StoreError> {
        use schema::signing_keys::dsl as k;
        self.write(move |conn| {
            let find = |conn: &mut Db| find_signing_key(conn, &key.tenant_id, &key.alg);
            if let Some(found) = find(conn)? {
                return Ok(found);
            }
            match diesel::insert_into(k::signing_keys)
                .values(&key)
                .execute(conn)
            {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {}
                Err(e) => return Err(query_error(e)),
            }
            find(conn)?.ok_or_else(|| {
                StoreError::Query("signing key vanished right after its insert".into())
            })
        })
        .await
    }

    /// The deployment's secret named `name`, storing `candidate` if there is
    /// none yet. Race-safe across nodes like [`Store::find_or_insert_signing_key`]:
    /// every node ends up with the first value stored.
    pub async fn find_or_insert_server_secret(
        &self,
        name: &str,
        candidate: [u8; 32],
        now: i64,
    ) -> Result<[u8; 32], StoreError> {
        use schema::server_secrets::dsl as k;
        let name = name.to_string();
        self.write(move |conn| {
            let find = |conn: &mut Db| {
                q(k::server_secrets
                    .filter(k::name.eq(&name))
                    .select(k::secret)
                    .first::<Vec<u8>>(conn)
                    .optional())
            };
            let stored = match find(conn)? {
                Some(s) => s,
                None => {
                    match diesel::insert_into(k::server_secrets)
                        .values((
                            k::name.eq(&name),
                            k::secret.eq(candidate.as_slice()),
                            k::created_at.eq(now),
                        ))
                        .execute(conn)
                    {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => {}
                        Err(e) => return Err(query_error(e)),
                    }
                    find(conn)?.ok_or_else(|| {
                        StoreError::Query("server secret vanished right after its insert".into())
                    })?
                }
            };
            let len = stored.len();
            <[u8; 32]>::try_from(stored)
                .map_err(|_| StoreError::Query(format!("stored secret has {len} bytes, not 32")))
        })
        .await
    }

    /// Record the use of a client assertion's `jti` until `expires_at`:
    /// true the first time, false for a replay (on any node: the insert
    /// of the second hits the primary key).
    pub async fn use_client_assertion(
        &self,
        tenant_id: &str,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        use schema::client_assertions::dsl as a;
        let hash = jti_hash(&[tenant_id, client_id], jti);
        let (tenant, client) = (tenant_id.to_string(), client_id.to_string());
        self.write(move |conn| {
            first_use(
                diesel::insert_into(a::client_assertions)
                    .values((
                        a::tenant_id.eq(&tenant),
                        a::client_id.eq(&client),
                        a::jti_hash.eq(hash),
                        a::expires_at.eq(expires_at),
                    ))
                    .execute(conn),
            )
        })
        .await
    }

    /// Record the use of a DPoP proof's `jti` (RFC 9449 §11.1) under the
    /// key `jkt` that signed it, until `expires_at`: true the first time,
    /// false for a replay on any node.
    pub async fn use_dpop_proof(
        &self,
        tenant_id: &str,
        jkt: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        use schema::dpop_proofs::dsl as d;
        let hash = jti_hash(&[tenant_id, jkt], jti);
        let tenant = tenant_id.to_string();
        self.write(move |conn| {
            first_use(
                diesel::insert_into(d::dpop_proofs)
                    .values((
                        d::tenant_id.eq(&tenant),
                        d::jti_hash.eq(hash),
                        d::expires_at.eq(expires_at),
                    ))
                    .execute(conn),
            )
        })
        .await
    }

    /// The tenant's stored key for `alg`, if there is one.
    pub async fn find_signing_key(
        &self,
        tenant_id: &str,
        alg: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        let (tenant, alg) = (tenant_id.to_string(), alg.to_string());
        self.run(move |conn| find_signing_key(conn, &tenant, &alg))
            .await
    }

    /// Replace the stored text of the tenant's `alg` key with `to`, only if
    /// it is still `from` (a conditional `UPDATE`: of racing rewrites, one
    /// wins). True if this call replaced it. On SQLite the old text is
    /// overwritten in the file (`secure_delete`), the file rebuilt
    /// (`VACUUM`) and the WAL checkpointed and truncated, so no copy of it is
    /// left behind in the database files.
    pub async fn rewrite_signing_key(
        &self,
        tenant_id: &str,
        alg: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        use schema::signing_keys::dsl as k;
        let (tenant, alg, from, to) = (
            tenant_id.to_string(),
            alg.to_string(),
            from.to_string(),
            to.to_string(),
        );
        let sqlite = self.backend == Backend::Sqlite;
        self.write_alone(move |conn| {
            if sqlite {
                q(conn.batch_execute("PRAGMA secure_delete = ON"))?;
            }
            let updated = q(diesel::update(
                k::signing_keys
                    .filter(k::tenant_id.eq(&tenant))
                    .filter(k::alg.eq(&alg))
                    .filter(k::private_pem.eq(&from)),
            )
            .set(k::private_pem.eq(&to))
            .execute(conn));
            if sqlite {
                q(conn.batch_execute("PRAGMA secure_delete = OFF"))?;
                // Best effort: the rewrite itself is committed either way.
                // A page split before it (while the key was still in clear)
                // may have left stale copies of the row in unused space:
                // VACUUM rebuilds the file from live rows only. It runs once
                // per key, when key_encryption is first set.
                if matches!(updated, Ok(1)) {
                    if let Err(e) = conn.batch_execute("VACUUM") {
                        tracing::warn!(error = %e, "VACUUM after a signing key rewrite failed");
                    }
                    truncate_wal(conn);
                }
            }
            updated.map(|n| n == 1)
        })
        .await
    }

    pub async fn insert_auth_request(&self, row: AuthRequestRow) -> Result<(), StoreError> {
        use schema::auth_requests::dsl as a;
        self.write(move |conn| {
            q(diesel::insert_into(a::auth_requests)
                .values(row)
                .execute(conn))
            .map(|_| ())
        })
        .await
    }

    /// Unexpired request, or None.
    pub async fn find_auth_request(
        &self,
        tenant_id: &str,
        hash: TokenHash,
        now: i64,
    ) -> Result<Option<AuthRequestRow>, StoreError> {
        use schema::auth_requests::dsl as a;
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            q(a::auth_requests
                .filter(a::tenant_id.eq(&tenant))
                .filter(a::request_hash.eq(hash))
                .filter(a::expires_at.gt(now))
                .select(AuthRequestRow::as_select())
                .first(conn)
                .optional())
        })
        .await
    }

    /// True if a request was deleted.
    pub async fn delete_auth_request(
        &self,
        tenant_id: &str,
        hash: TokenHash,
    ) -> Result<bool, StoreError> {
        use schema::auth_requests::dsl as a;
        let tenant = tenant_id.to_string();
        self.write(move |conn| {
            q(diesel::delete(
                a::auth_requests
                    .filter(a::tenant_id.eq(&tenant))
                    .filter(a::request_hash.eq(hash)),
            )
            .execute(conn))
            .map(|n| n > 0)
        })
        .await
    }

    pub async fn insert_session(&self, row: SessionRow) -> Result<(), StoreError> {
        use schema::sessions::dsl as s;
        self.write(move |conn| {
            q(diesel::insert_into(s::sessions).values(row).execute(conn)).map(|_| ())
        })
        .await
    }

    /// Unexpired, unrevoked session, or None.
    pub async fn find_session(
        &self,
        tenant_id: &str,
        hash: TokenHash,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        self.find_live_session(tenant_id, SessionKey::Cookie(hash), now)
            .await
    }

    /// Unexpired, unrevoked session with this public id, or None.
    pub async fn find_session_by_sid(
        &self,
        tenant_id: &str,
        sid: &str,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        self.find_live_session(tenant_id, SessionKey::Sid(sid.to_string()), now)
            .await
    }

    async fn find_live_session(
        &self,
        tenant_id: &str,
        key: SessionKey,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        use schema::sessions::dsl as s;
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            let live = s::sessions
                .filter(s::tenant_id.eq(tenant))
                .filter(s::expires_at.gt(now))
                .filter(s::revoked_at.is_null())
                .into_boxed();
            let picked = match key {
                SessionKey::Cookie(hash) => live.filter(s::session_hash.eq(hash)),
                SessionKey::Sid(sid) => live.filter(s::sid.eq(sid)),
            };
            q(picked
                .select(SessionRow::as_select())
                .first(conn)
                .optional())
        })
        .await
    }

    /// Revoke every unexpired, unrevoked session of the user; returns how
    /// many this call revoked.
    pub async fn revoke_sessions_of_user(
        &self,
        tenant_id: &str,
        user_sub: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        use schema::sessions::dsl as s;
        let (tenant, sub) = (tenant_id.to_string(), user_sub.to_string());
        self.write(move |conn| {
            q(diesel::update(
                s::sessions
                    .filter(s::tenant_id.eq(&tenant))
                    .filter(s::user_sub.eq(&sub))
                    .filter(s::expires_at.gt(now))
                    .filter(s::revoked_at.is_null()),
            )
            .set(s::revoked_at.eq(Some(now)))
            .execute(conn))
            .map(|n| n as u64)
        })
        .await
    }

    /// True if this call revoked the session (it existed and was not revoked yet).
    pub async fn revoke_session(
        &self,
        tenant_id: &str,
        hash: TokenHash,
        now: i64,
    ) -> Result<bool, StoreError> {
        use schema::sessions::dsl as s;
        let tenant = tenant_id.to_string();
        self.write(move |conn| {
            q(diesel::update(
                s::sessions
                    .filter(s::tenant_id.eq(&tenant))
                    .filter(s::session_hash.eq(hash))
                    .filter(s::revoked_at.is_null()),
            )
            .set(s::revoked_at.eq(Some(now)))
            .execute(conn))
            .map(|n| n > 0)
        })
        .await
    }

    /// The scopes (space separated) the user already granted the client.
    pub async fn find_consent(
        &self,
        tenant_id: &str,
        client_id: &str,
        user_sub: &str,
    ) -> Result<Option<String>, StoreError> {
        use schema::consents::dsl as c;
        let (tenant, client, sub) = (
            tenant_id.to_string(),
            client_id.to_string(),
            user_sub.to_string(),
        );
        self.run(move |conn| {
            q(c::consents
                .filter(c::tenant_id.eq(&tenant))
                .filter(c::client_id.eq(&client))
                .filter(c::user_sub.eq(&sub))
                .select(c::scope)
                .first::<String>(conn)
                .optional())
        })
        .await
    }

    /// Insert or replace the consent of (tenant, client, user).
    /// (Update, else insert; an insert that loses a race to another insert updates instead.)
    pub async fn save_consent(
        &self,
        tenant_id: &str,
        client_id: &str,
        user_sub: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        use schema::consents::dsl as c;
        let (tenant, client, sub, scope) = (
            tenant_id.to_string(),
            client_id.to_string(),
            user_sub.to_string(),
            scope.to_string(),
        );
        self.write(move |conn| {
            for _ in 0..3 {
                let updated = q(diesel::update(
                    c::consents
                        .filter(c::tenant_id.eq(&tenant))
                        .filter(c::client_id.eq(&client))
                        .filter(c::user_sub.eq(&sub)),
                )
                .set((c::scope.eq(&scope), c::updated_at.eq(now)))
                .execute(conn))?;
                if updated > 0 {
                    return Ok(());
                }
                let row = (
                    c::tenant_id.eq(&tenant),
                    c::client_id.eq(&client),
                    c::user_sub.eq(&sub),
                    c::scope.eq(&scope),
                    c::created_at.eq(now),
                    c::updated_at.eq(now),
                );
                match diesel::insert_into(c::consents).values(row).execute(conn) {
                    Ok(_) => return Ok(()),
                    Err(e) if is_unique_violation(&e) => continue,
                    Err(e) => return Err(query_error(e)),
                }
            }
            Err(StoreError::Query(
                "consent kept changing under concurrent writes".into(),
            ))
        })
        .await
    }

    /// Insert a code; issued in a browser session (`sid`), its client is
    /// recorded as one the session signed in to, in the same transaction.
    pub async fn insert_code(&self, row: CodeRow) -> Result<(), StoreError> {
        use schema::authorization_codes::dsl as c;
        self.write(move |conn| {
            q(write_tx(conn, |conn| {
                diesel::insert_into(c::authorization_codes)
                    .values(&row)
                    .execute(conn)?;
                if let Some(sid) = &row.sid {
                    logout::record_session_client(
                        conn,
                        &row.tenant_id,
                        sid,
                        &row.client_id,
                        row.created_at,
                    )?;
                }
                Ok(())
            }))
        })
        .await
    }

    /// The code with this hash, spent or not.
    pub async fn find_code(
        &self,
        tenant_id: &str,
        hash: TokenHash,
    ) -> Result<Option<CodeRow>, StoreError> {
        use schema::authorization_codes::dsl as c;
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            q(c::authorization_codes
                .filter(c::tenant_id.eq(&tenant))
                .filter(c::code_hash.eq(hash))
                .select(CodeRow::as_select())
                .first(conn)
                .optional())
        })
        .await
    }

    /// Spend a code: in one transaction, mark it consumed unless it already
    /// was (`UPDATE … WHERE consumed_at IS NULL`; the row count decides) and,
    /// if this request won, write the tokens `issued` for it. Expiry is not
    /// checked here: the caller checked the row's `expires_at`.
    pub async fn consume_code(
        &self,
        tenant_id: &str,
        hash: TokenHash,
        now: i64,
        issued: Issued,
    ) -> Result<CodeConsumption, StoreError> {
        use schema::authorization_codes::dsl as c;
        let tenant = tenant_id.to_string();
        let issued = checked(tenant_id, issued)?;
        self.write(move |conn| {
            let spent = q(write_tx(conn, |conn| {
                let won = diesel::update(
                    c::authorization_codes
                        .filter(c::tenant_id.eq(&tenant))
                        .filter(c::code_hash.eq(hash))
                        .filter(c::consumed_at.is_null()),
                )
                .set(c::consumed_at.eq(Some(now)))
                .execute(conn)?
                    == 1;
                if won {
                    issued.insert(conn)?;
                    return Ok(None);
                }
                // Lost: tell a replay (its row, for its grant) from an unknown code.
                c::authorization_codes
                    .filter(c::tenant_id.eq(&tenant))
                    .filter(c::code_hash.eq(hash))
                    .select(CodeRow::as_select())
                    .first(conn)
                    .optional()
                    .map(Some)
            }))?;
            Ok(match spent {
                None => CodeConsumption::Consumed,
                Some(None) => CodeConsumption::NotFound,
                Some(Some(row)) => CodeConsumption::AlreadyUsed(Box::new(row)),
            })
        })
        .await
    }

    /// Write the tokens of a grant that spends nothing (client credentials).
    pub async fn insert_issued(&self, issued: Issued) -> Result<(), StoreError> {
        let Some(tenant) = issued
            .access_token
            .as_ref()
            .map(|t| t.tenant_id.clone())
            .or_else(|| issued.refresh_token.as_ref().map(|t| t.tenant_id.clone()))
        else {
            return Ok(());
        };
        let issued = checked(&tenant, issued)?;
        self.write(move |conn| q(write_tx(conn, |conn| issued.insert(conn))))
            .await
    }

    pub async fn find_refresh_token(
        &self,
        tenant_id: &str,
        hash: TokenHash,
    ) -> Result<Option<RefreshTokenRow>, StoreError> {
        use schema::refresh_tokens::dsl as r;
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            q(r::refresh_tokens
                .filter(r::tenant_id.eq(&tenant))
                .filter(r::token_hash.eq(hash))
                .select(RefreshTokenRow::as_select())
                .first(conn)
                .optional())
        })
        .await
    }

    /// In one transaction: mark `old` used if it is unused and unrevoked (the row
    /// count decides), and if so insert `successor`.
    /// Spend a refresh token: in one transaction, mark it used unless it
    /// already was (or is revoked) and, if this request won, write the
    /// tokens `issued` for it (its successor among them).
    pub async fn rotate_refresh_token(
        &self,
        tenant_id: &str,
        old: TokenHash,
        issued: Issued,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        use schema::refresh_tokens::dsl as r;
        let tenant = tenant_id.to_string();
        let issued = checked(tenant_id, issued)?;
        self.write(move |conn| {
            q(write_tx(conn, |conn| {
                let updated = diesel::update(
                    r::refresh_tokens
                        .filter(r::tenant_id.eq(&tenant))
                        .filter(r::token_hash.eq(old))
                        .filter(r::used_at.is_null())
                        .filter(r::revoked_at.is_null()),
                )
                .set(r::used_at.eq(Some(now)))
                .execute(conn)?;
                if updated == 1 {
                    issued.insert(conn)?;
                    return Ok(Rotation::Rotated);
                }
                let exists = r::refresh_tokens
                    .filter(r::tenant_id.eq(&tenant))
                    .filter(r::token_hash.eq(old))
                    .select(r::created_at)
                    .first::<i64>(conn)
                    .optional()?
                    .is_some();
                Ok(if exists {
                    Rotation::AlreadyUsed
                } else {
                    Rotation::NotFound
                })
            }))
        })
        .await
    }

    /// Record that an access token no row was kept for (a client-credentials
    /// JWT) is revoked. `row` carries `revoked_at`; a row already there wins.
    pub async fn insert_revoked_access_token(&self, row: AccessTokenRow) -> Result<(), StoreError> {
        use schema::access_tokens::dsl as t;
        self.write(move |conn| {
            match diesel::insert_into(t::access_tokens)
                .values(row)
                .execute(conn)
            {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Ok(()),
                Err(e) => Err(query_error(e)),
            }
        })
        .await
    }

    pub async fn find_access_token(
        &self,
        tenant_id: &str,
        hash: TokenHash,
    ) -> Result<Option<AccessTokenRow>, StoreError> {
        use schema::access_tokens::dsl as t;
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            q(t::access_tokens
                .filter(t::tenant_id.eq(&tenant))
                .filter(t::token_hash.eq(hash))
                .select(AccessTokenRow::as_select())
                .first(conn)
                .optional())
        })
        .await
    }

    /// True if this call revoked the token (it existed and was not revoked yet).
    pub async fn revoke_access_token(
        &self,
        tenant_id: &str,
        hash: TokenHash,
        now: i64,
    ) -> Result<bool, StoreError> {
        use schema::access_tokens::dsl as t;
        let tenant = tenant_id.to_string();
        self.write(move |conn| {
            q(diesel::update(
                t::access_tokens
                    .filter(t::tenant_id.eq(&tenant))
                    .filter(t::token_hash.eq(hash))
                    .filter(t::revoked_at.is_null()),
            )
            .set(t::revoked_at.eq(Some(now)))
            .execute(conn))
            .map(|n| n > 0)
        })
        .await
    }

    /// In one transaction: revoke every refresh and access token of the grant (family) and consume its code.
    pub async fn revoke_grant(
        &self,
        tenant_id: &str,
        grant_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        use schema::access_tokens::dsl as t;
        use schema::authorization_codes::dsl as c;
        use schema::refresh_tokens::dsl as r;
        let (tenant, grant) = (tenant_id.to_string(), grant_id.to_string());
        self.write(move |conn| {
            q(write_tx(conn, |conn| {
                diesel::update(
                    r::refresh_tokens
                        .filter(r::tenant_id.eq(&tenant))
                        .filter(r::grant_id.eq(&grant))
                        .filter(r::revoked_at.is_null()),
                )
                .set(r::revoked_at.eq(Some(now)))
                .execute(conn)?;
                diesel::update(
                    t::access_tokens
                        .filter(t::tenant_id.eq(&tenant))
                        .filter(t::grant_id.eq(&grant))
                        .filter(t::revoked_at.is_null()),
                )
                .set(t::revoked_at.eq(Some(now)))
                .execute(conn)?;
                diesel::update(
                    c::authorization_codes
                        .filter(c::tenant_id.eq(&tenant))
                        .filter(c::grant_id.eq(&grant))
                        .filter(c::consumed_at.is_null()),
                )
                .set(c::consumed_at.eq(Some(now)))
                .execute(conn)?;
                Ok(())
            }))
        })
        .await
    }

    /// Delete rows expired before `now` (in batches of `batch`); returns how many went.
    /// Codes are kept [`CODE_REPLAY_GRACE_SECS`] past their expiry. Signing
    /// keys and consents never expire.
    pub async fn purge_expired(&self, now: i64, batch: u32) -> Result<u64, StoreError> {
        let batch = i64::from(batch.max(1));
        // Background work: a big backlog may take a while.
        self.run_within(self.deadline.max(Duration::from_secs(600)), move |conn| {
            // Select up to `batch` primary keys, delete those, until none are left.
            macro_rules! purge {
                ($table:ident, $key:ident, $cutoff:expr) => {{
                    use schema::$table::dsl as d;
                    let mut deleted: u64 = 0;
                    loop {
                        let keys: Vec<Vec<u8>> = q(d::$table
                            .filter(d::expires_at.lt($cutoff))
                            .select(d::$key)
                            .limit(batch)
                            .load(conn))?;
                        if keys.is_empty() {
                            break;
                        }
                        let n =
                            q(diesel::delete(d::$table.filter(d::$key.eq_any(&keys)))
                                .execute(conn))?;
                        deleted += n as u64;
                    }
                    deleted
                }};
            }
            let mut total = 0;
            total += purge!(auth_requests, request_hash, now);
            total += purge!(pushed_authorization_requests, request_hash, now);
            total += purge!(sessions, session_hash, now);
            total += purge!(
                authorization_codes,
                code_hash,
                now.saturating_sub(CODE_REPLAY_GRACE_SECS)
            );
            total += purge!(refresh_tokens, token_hash, now);
            total += purge!(access_tokens, token_hash, now);
            // Throttle key hashes include the tenant, so a hash names one row.
            total += purge!(throttles, key_hash, now);
            // The jti hash covers tenant and client too: unique alone.
            total += purge!(client_assertions, jti_hash, now);
            total += purge!(dpop_proofs, jti_hash, now);
            total += q(logout::purge(conn, now))?;
            Ok(total)
        })
        .await
    }
}

fn wait_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// 1, 2, 4, … 64 writes ([`writer::MAX_BATCH`]).
fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 7))
}

/// The hash a single-use `jti` is kept under: `scope` (tenant, then client
/// or key) length-prefixed, so no two (tenant, issuer, jti) share it.
fn jti_hash(scope: &[&str], jti: &str) -> TokenHash {
    let mut joined = String::new();
    for p in scope {
        joined.push_str(&format!("{}:{p}", p.len()));
    }
    joined.push_str(jti);
    TokenHash::of(&joined)
}

/// An insert of a single-use value: `true` if it went in, `false` if the
/// value was there already.
fn first_use(r: Result<usize, diesel::result::Error>) -> Result<bool, StoreError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(query_error(e)),
    }
}

fn find_signing_key(
    conn: &mut Db,
    tenant_id: &str,
    alg: &str,
) -> Result<Option<StoredKey>, StoreError> {
    use schema::signing_keys::dsl as k;
    q(k::signing_keys
        .filter(k::tenant_id.eq(tenant_id))
        .filter(k::alg.eq(alg))
        .select(StoredKey::as_select())
        .first(conn)
        .optional())
}

/// What picks a session: the hash of its cookie, or its public id.
enum SessionKey {
    Cookie(TokenHash),
    Sid(String),
}

/// `issued`, checked to belong to the tenant whose code or token is spent.
fn checked(tenant_id: &str, issued: Issued) -> Result<Issued, StoreError> {
    let foreign = issued
        .access_token
        .as_ref()
        .is_some_and(|t| t.tenant_id != tenant_id)
        || issued
            .refresh_token
            .as_ref()
            .is_some_and(|t| t.tenant_id != tenant_id);
    if foreign {
        return Err(StoreError::Query(
            "issued tokens belong to another tenant".into(),
        ));
    }
    Ok(issued)
}

impl Issued {
    /// Write the rows (inside the caller's transaction).
    fn insert(&self, conn: &mut Db) -> Result<(), diesel::result::Error> {
        if let Some(row) = &self.access_token {
            diesel::insert_into(schema::access_tokens::table)
                .values(row)
                .execute(conn)?;
        }
        if let Some(row) = &self.refresh_token {
            diesel::insert_into(schema::refresh_tokens::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    }
}
