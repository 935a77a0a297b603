//! Connections: the multi-backend connection type, URL parsing, the r2d2
//! manager, SQLite pragmas, migrations, transactions and error mapping.

use std::path::{Path, PathBuf};

use diesel::connection::{Connection, SimpleConnection, TransactionManager};
use diesel::r2d2::{CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};

use super::{Backend, StoreError};

#[cfg(not(any(feature = "sqlite", feature = "mysql", feature = "postgres")))]
compile_error!("sesame needs at least one database feature: `sqlite`, `mysql` or `postgres`");

/// One connection of whichever backend the URL named. Every query in the
/// store is written once against this type.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    #[cfg(feature = "sqlite")]
    Sqlite(diesel::SqliteConnection),
    #[cfg(feature = "mysql")]
    Mysql(diesel::MysqlConnection),
    #[cfg(feature = "postgres")]
    Postgres(diesel::PgConnection),
}

/// Pick the backend from the URL scheme and turn the URL into what that
/// backend's driver expects (for SQLite: a file path, resolved against `base_dir`).
pub(crate) fn parse_url(url: &str, base_dir: &Path) -> Result<(Backend, String), StoreError> {
    let url = url.trim();
    let (scheme, rest) = url.split_once(':').ok_or_else(|| {
        StoreError::Config(format!(
            "database url `{}` has no scheme (sqlite:, mysql://, postgres://)",
            redact(url)
        ))
    })?;
    let backend = match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Backend::Sqlite,
        "mysql" | "mariadb" => Backend::Mysql,
        "postgres" | "postgresql" => Backend::Postgres,
        other => {
            return Err(StoreError::Config(format!(
                "unsupported database url scheme `{other}:` (expected sqlite:, mysql:// or postgres://)"
            )))
        }
    };
    require_feature(backend)?;
    match backend {
        Backend::Sqlite => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::Config("sqlite url names no file".into()));
            }
            if path == ":memory:" || path.contains("mode=memory") {
                return Err(StoreError::Config(
                    "in-memory SQLite is not supported (every pooled connection would see its own database)".into(),
                ));
            }
            let path = Path::new(path);
            let path: PathBuf = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base_dir.join(path)
            };
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Config(format!(
                            "cannot create the folder {} of the SQLite database: {e}",
                            parent.display()
                        ))
                    })?;
                }
            }
            let path = path.to_str().ok_or_else(|| {
                StoreError::Config(format!("SQLite path {} is not valid UTF-8", path.display()))
            })?;
            Ok((Backend::Sqlite, path.to_string()))
        }
        Backend::Mysql => Ok((Backend::Mysql, format!("mysql:{rest}"))),
        Backend::Postgres => Ok((Backend::Postgres, url.to_string())),
    }
}

fn require_feature(backend: Backend) -> Result<(), StoreError> {
    let (compiled, feature) = match backend {
        Backend::Sqlite => (cfg!(feature = "sqlite"), "sqlite"),
        Backend::Mysql => (cfg!(feature = "mysql"), "mysql"),
        Backend::Postgres => (cfg!(feature = "postgres"), "postgres"),
    };
    if compiled {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "the database url is for {backend:?}, but sesame was built without the `{feature}` feature (rebuild with `--features {feature}`)"
        )))
    }
}

/// `user:password@` → `user:***@`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Opens connections of the backend chosen from the URL. (diesel's
/// `ConnectionManager<DbConnection>` would try every compiled-in backend in
/// turn and hide why the right one failed.)
pub(crate) struct Manager {
    pub backend: Backend,
    pub url: String,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        if self.url.is_empty() {
            // `Store::offline`: a URL always names something.
            return Err(diesel::r2d2::Error::ConnectionError(
                ConnectionError::BadConnection("no database (an offline store)".into()),
            ));
        }
        let conn: Result<DbConnection, ConnectionError> = match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                diesel::SqliteConnection::establish(&self.url).map(DbConnection::Sqlite)
            }
            #[cfg(feature = "mysql")]
            Backend::Mysql => {
                diesel::MysqlConnection::establish(&self.url).map(DbConnection::Mysql)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                diesel::PgConnection::establish(&self.url).map(DbConnection::Postgres)
            }
            #[allow(unreachable_patterns)]
            other => Err(ConnectionError::BadConnection(format!(
                "{other:?} support is not compiled in"
            ))),
        };
        conn.map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        R2D2Connection::ping(conn).map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || R2D2Connection::is_broken(conn)
    }
}

/// SQLite settings, applied to every new connection.
#[derive(Debug)]
pub(crate) struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        #[cfg(feature = "sqlite")]
        #[allow(irrefutable_let_patterns)]
        if let DbConnection::Sqlite(c) = conn {
            // busy_timeout first: switching to WAL may itself wait for a lock.
            c.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA wal_autocheckpoint = 8000;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        let _ = conn;
        Ok(())
    }
}

/// Run `f` in a write transaction. On SQLite it starts with `BEGIN IMMEDIATE`
/// so the write lock is taken up front (no deadlock between readers that
/// want to upgrade); within a group commit's transaction it is a savepoint.
/// A deadlock / serialization failure is retried a few times.
pub(crate) fn write_tx<T>(
    conn: &mut DbConnection,
    mut f: impl FnMut(&mut DbConnection) -> Result<T, DieselError>,
) -> Result<T, DieselError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transaction_once(conn, &mut f) {
            Err(e) if attempt < 5 && is_retryable(&e) => {
                std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
            }
            other => return other,
        }
    }
}

/// Open a write transaction: on SQLite `BEGIN IMMEDIATE`, elsewhere `BEGIN`.
/// Inside a transaction already (a write run in a group commit, see
/// `writer.rs`), a savepoint instead, so what follows can be rolled back alone.
pub(crate) fn begin_write(conn: &mut DbConnection) -> Result<(), DieselError> {
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    let nested =
        <DbConnection as TransactionManager<DbConnection>>::transaction_manager_status_mut(conn)
            .transaction_depth()?
            .is_some();
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(c) if !nested => {
            diesel::connection::AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        _ => <DbConnection as TransactionManager<DbConnection>>::begin_transaction(conn),
    }
}

/// A serialization failure or deadlock: the transaction was rolled back and
/// may simply be run again. (diesel reports PostgreSQL's 40P01
/// `deadlock detected` as `Unknown`.)
fn is_retryable(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().to_ascii_lowercase().contains("deadlock")
        }
        _ => false,
    }
}

fn transaction_once<T>(
    conn: &mut DbConnection,
    f: &mut impl FnMut(&mut DbConnection) -> Result<T, DieselError>,
) -> Result<T, DieselError> {
    begin_write(conn)?;
    match f(conn) {
        Ok(value) => {
            <DbConnection as TransactionManager<DbConnection>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            // A failed rollback leaves the transaction manager broken, and
            // r2d2 then drops the connection instead of reusing it.
            let _ = <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn);
            Err(e)
        }
    }
}

/// A diesel error as a store error: a lost connection is `Unavailable`,
/// anything else `Query`.
pub(crate) fn query_error(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => StoreError::Unavailable(e.to_string()),
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)
            if is_connection_lost(info.message()) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Query(e.to_string()),
    }
}

/// Whether a driver message says the connection is gone. diesel reports
/// MySQL/MariaDB client errors (2002 can't connect, 2006 gone away, 2013 lost
/// connection, 2055) and PostgreSQL administrator shutdowns as `Unknown`, with
/// only the message to go by.
fn is_connection_lost(message: &str) -> bool {
    const SIGNS: &[&str] = &[
        "gone away",
        "lost connection",
        "can't connect",
        "connection refused",
        "connection reset",
        "broken pipe",
        "server closed the connection",
        "no connection to the server",
        "terminating connection",
        "the database system is shutting down",
        "the database system is starting up",
        "connection timed out",
        "read timeout",
    ];
    let message = message.to_ascii_lowercase();
    SIGNS.iter().any(|sign| message.contains(sign))
}

/// libpq options that keep a PostgreSQL connection from waiting forever on a
/// database that went away: a connect timeout, TCP keepalives (an idle or
/// waiting connection notices a dead peer in about 10 s) and a TCP user
/// timeout (unacknowledged writes give up after 10 s). Options already in the
/// URL win.
pub(crate) fn with_pg_timeouts(url: &str, connect_timeout: std::time::Duration) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let present: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    // libpq counts whole seconds and treats anything below 2 as 2.
    let connect = connect_timeout.as_secs_f64().ceil().max(2.0) as u64;
    let defaults = [
        ("connect_timeout", connect.to_string()),
        ("keepalives", "1".to_string()),
        ("keepalives_idle", "5".to_string()),
        ("keepalives_interval", "2".to_string()),
        ("keepalives_count", "3".to_string()),
        ("tcp_user_timeout", "10000".to_string()),
    ];
    let missing: Vec<_> = defaults
        .iter()
        .filter(|(k, _)| !present.iter().any(|p| p == k))
        .collect();
    if !missing.is_empty() {
        let mut q = parsed.query_pairs_mut();
        for (k, v) in missing {
            q.append_pair(k, v);
        }
    }
    parsed.to_string()
}

pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

pub(crate) mod migrations {
    use diesel::connection::SimpleConnection;
    use diesel_migrations::MigrationHarness;

    use super::DbConnection;
    use crate::store::StoreError;

    #[cfg(feature = "sqlite")]
    const SQLITE: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/sqlite");
    #[cfg(feature = "mysql")]
    const MYSQL: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/mysql");
    #[cfg(feature = "postgres")]
    const POSTGRES: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/postgres");

    /// Apply the pending migrations of the connection's backend; returns their versions.
    /// On MySQL/MariaDB and PostgreSQL a database-wide lock is held meanwhile,
    /// so nodes starting at once on a fresh database migrate one after the other.
    pub(crate) fn run(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
        lock(conn)?;
        let applied = apply(conn);
        let unlocked = unlock(conn);
        let applied = applied?;
        unlocked?;
        Ok(applied)
    }

    // The advisory lock: on MySQL named after the database (locks are
    // server-wide there), on PostgreSQL a fixed key (locks are per database).
    #[cfg(feature = "mysql")]
    const LOCK_NAME: &str = "LEFT(CONCAT('sesame_migrations:', DATABASE()), 64)";
    #[cfg(feature = "postgres")]
    const LOCK_KEY: i64 = 0x5e5a_4d45_6d69_6772;

    fn lock(conn: &mut DbConnection) -> Result<(), StoreError> {
        let sql: Option<String> = match conn {
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(_) => Some(format!("SELECT GET_LOCK({LOCK_NAME}, 300)")),
            #[cfg(feature = "postgres")]
            DbConnection::Postgres(_) => Some(format!("SELECT pg_advisory_lock({LOCK_KEY})")),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let Some(sql) = sql else { return Ok(()) };
        conn.batch_execute(&sql)
            .map_err(|e| StoreError::Migration(format!("cannot take the migration lock: {e}")))
    }

    fn unlock(conn: &mut DbConnection) -> Result<(), StoreError> {
        let sql: Option<String> = match conn {
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(_) => Some(format!("SELECT RELEASE_LOCK({LOCK_NAME})")),
            #[cfg(feature = "postgres")]
            DbConnection::Postgres(_) => Some(format!("SELECT pg_advisory_unlock({LOCK_KEY})")),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let Some(sql) = sql else { return Ok(()) };
        conn.batch_execute(&sql)
            .map_err(|e| StoreError::Migration(format!("cannot release the migration lock: {e}")))
    }

    fn apply(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
        let applied = match conn {
            #[cfg(feature = "sqlite")]
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE),
            #[cfg(feature = "mysql")]
            DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL),
            #[cfg(feature = "postgres")]
            DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES),
        };
        applied
            .map(|versions| versions.iter().map(|v| v.to_string()).collect())
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn names(dir: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn migration_folders_match() {
        let sqlite = names("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names("mysql"));
        assert_eq!(sqlite, names("postgres"));
        for backend in ["sqlite", "mysql", "postgres"] {
            for name in &sqlite {
                for file in ["up.sql", "down.sql"] {
                    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("migrations")
                        .join(backend)
                        .join(name)
                        .join(file);
                    assert!(p.is_file(), "missing {}", p.display());
                }
            }
        }
    }

    #[test]
    fn urls() {
        let base = Path::new("/nonexistent-base");
        let e = parse_url("redis://x", base).unwrap_err();
        assert!(matches!(e, StoreError::Config(_)));
        assert!(matches!(
            parse_url("nothing", base),
            Err(StoreError::Config(_))
        ));
        #[cfg(feature = "mysql")]
        assert_eq!(
            parse_url("mysql://root@h/db", base).unwrap(),
            (Backend::Mysql, "mysql://root@h/db".to_string())
        );
        #[cfg(not(feature = "mysql"))]
        match parse_url("mysql://root@h/db", base) {
            Err(StoreError::Config(m)) => {
                assert!(m.contains("built without the `mysql` feature"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        #[cfg(feature = "postgres")]
        assert_eq!(
            parse_url("postgresql://u@h/db", base).unwrap().0,
            Backend::Postgres
        );
        #[cfg(not(feature = "postgres"))]
        match parse_url("postgres://u@h/db", base) {
            Err(StoreError::Config(m)) => {
                assert!(m.contains("built without the `postgres` feature"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        #[cfg(feature = "sqlite")]
        {
            let dir = tempfile::tempdir().unwrap();
            let (_, p) = parse_url("sqlite://a/b/c.db", dir.path()).unwrap();
            assert_eq!(Path::new(&p), dir.path().join("a/b/c.db"));
            assert!(dir.path().join("a/b").is_dir());
            let (_, p) = parse_url(
                &format!("sqlite://{}/d.db", dir.path().display()),
                Path::new("/elsewhere"),
            )
            .unwrap();
            assert_eq!(Path::new(&p), dir.path().join("d.db"));
            assert!(parse_url("sqlite::memory:", dir.path()).is_err());
        }
    }

    #[test]
    fn lost_connections_are_unavailable() {
        for message in [
            "MySQL server has gone away",
            "Lost connection to server during query",
            "Can't connect to server on '127.0.0.1' (111)",
            "server closed the connection unexpectedly",
            "terminating connection due to administrator command",
        ] {
            let e = DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(message.to_string()),
            );
            assert!(
                matches!(query_error(e), StoreError::Unavailable(_)),
                "{message}"
            );
        }
        let e = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("Table 'x' doesn't exist".to_string()),
        );
        assert!(matches!(query_error(e), StoreError::Query(_)));
        assert!(matches!(
            query_error(DieselError::NotFound),
            StoreError::Query(_)
        ));
    }

    #[test]
    fn deadlocks_are_retried() {
        let e = |kind, m: &str| DieselError::DatabaseError(kind, Box::new(m.to_string()));
        assert!(is_retryable(&e(
            DatabaseErrorKind::Unknown,
            "deadlock detected"
        )));
        assert!(is_retryable(&e(
            DatabaseErrorKind::SerializationFailure,
            "x"
        )));
        assert!(!is_retryable(&e(
            DatabaseErrorKind::Unknown,
            "syntax error"
        )));
        assert!(!is_retryable(&e(
            DatabaseErrorKind::UniqueViolation,
            "deadlock"
        )));
    }

    #[test]
    fn postgres_urls_get_timeouts_unless_given() {
        let url = with_pg_timeouts(
            "postgres://u:p@db/sesame?keepalives_idle=30",
            std::time::Duration::from_millis(500),
        );
        let u = url::Url::parse(&url).unwrap();
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["connect_timeout"], "2");
        assert_eq!(q["keepalives_idle"], "30");
        assert_eq!(q["tcp_user_timeout"], "10000");
        assert_eq!(u.password(), Some("p"));
        assert_eq!(u.path(), "/sesame");
        let url = with_pg_timeouts("postgres://db/s", std::time::Duration::from_secs(7));
        assert!(url.contains("connect_timeout=7"), "{url}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}

/// What `PRAGMA wal_checkpoint` reports: whether it was kept from finishing
/// (another checkpoint ran, or readers or the writer held frames back), the
/// frames in the WAL and how many of them are now in the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub busy: bool,
    pub log: i64,
    pub checkpointed: i64,
}

/// Checkpoint the WAL of a SQLite connection (`mode`: `PASSIVE` or
/// `TRUNCATE`). `None` on other backends, which have no WAL of SQLite's.
pub(crate) fn checkpoint(
    conn: &mut DbConnection,
    mode: CheckpointMode,
) -> Result<Option<Checkpoint>, DieselError> {
    #[cfg(feature = "sqlite")]
    #[allow(irrefutable_let_patterns)]
    if let DbConnection::Sqlite(c) = conn {
        use diesel::sql_types::BigInt;
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            busy: i64,
            #[diesel(sql_type = BigInt)]
            log: i64,
            #[diesel(sql_type = BigInt)]
            checkpointed: i64,
        }
        let sql = match mode {
            CheckpointMode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            CheckpointMode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        let rows: Vec<Row> = diesel::sql_query(sql).load(c)?;
        return Ok(rows.first().map(|r| Checkpoint {
            busy: r.busy != 0,
            log: r.log,
            checkpointed: r.checkpointed,
        }));
    }
    let _ = (conn, mode);
    Ok(None)
}

/// How much a checkpoint may wait for: `Passive` never waits (and never
/// blocks the writer), `Truncate` waits for the writer and readers (within
/// `busy_timeout`) and empties the WAL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckpointMode {
    Passive,
    Truncate,
}
