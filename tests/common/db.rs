//! Real databases for tests, one fresh database per call so tests never see
//! each other's rows. Include it with `#[path = "common/db.rs"] mod db;`.
//!
//! - SQLite: always; a file in a new temp dir.
//! - MySQL/MariaDB: when the `mysql` feature is on, on the server named by
//!   `SESAME_TEST_MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306/sesame_test`).
//! - PostgreSQL: when the `postgres` feature is on, on the server named by
//!   `SESAME_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/sesame_test`).
//!
//! A feature compiled in without its URL is a panic, not a backend quietly
//! left out: a test that passes should have run on every compiled-in backend.
//!
//! For a server, a database `sesame_t_<pid>_<n>` is created through a
//! connection to that server and dropped again when the [`TestDb`] is
//! dropped (as is the SQLite temp dir), so keep the `TestDb` alive for the
//! test's duration.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database. Deleted on drop.
pub struct TestDb {
    /// "sqlite", "mysql" or "postgres".
    pub backend: &'static str,
    pub url: String,
    guard: Guard,
}

enum Guard {
    Dir(tempfile::TempDir),
    #[cfg(feature = "mysql")]
    Mysql {
        server: String,
        name: String,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        server: String,
        name: String,
    },
}

impl TestDb {
    /// Where relative SQLite paths should resolve (a temp dir for SQLite,
    /// the system temp dir otherwise).
    pub fn base_dir(&self) -> std::path::PathBuf {
        match &self.guard {
            Guard::Dir(dir) => dir.path().to_path_buf(),
            #[allow(unreachable_patterns)]
            _ => std::env::temp_dir(),
        }
    }
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.backend, self.url)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::Dir(_) => {}
            #[cfg(feature = "mysql")]
            Guard::Mysql { server, name } => {
                use diesel::connection::{Connection, SimpleConnection};
                if let Ok(mut c) = diesel::MysqlConnection::establish(server) {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"));
                }
            }
            #[cfg(feature = "postgres")]
            Guard::Postgres { server, name } => {
                use diesel::connection::{Connection, SimpleConnection};
                if let Ok(mut c) = diesel::PgConnection::establish(server) {
                    let _ = c
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
                }
            }
        }
    }
}

fn unique_name() -> String {
    format!(
        "sesame_t_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh, empty database on every compiled-in backend.
pub fn test_databases() -> Vec<TestDb> {
    let mut dbs = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
    dbs.push(TestDb {
        backend: "sqlite",
        url,
        guard: Guard::Dir(dir),
    });

    #[cfg(feature = "mysql")]
    dbs.push(create_mysql(&env_url("SESAME_TEST_MYSQL_URL", "mysql")));
    #[cfg(feature = "postgres")]
    dbs.push(create_postgres(&env_url(
        "SESAME_TEST_POSTGRES_URL",
        "postgres",
    )));
    dbs
}

/// Same as [`test_databases`], as `(backend, url)` pairs. The databases are
/// leaked (the SQLite temp dir stays in /tmp, server databases are not dropped).
pub fn test_database_urls() -> Vec<(&'static str, String)> {
    test_databases()
        .into_iter()
        .map(|db| {
            let pair = (db.backend, db.url.clone());
            std::mem::forget(db);
            pair
        })
        .collect()
}

/// The server URL in `var`, which a test built with `feature` needs.
fn env_url(var: &str, feature: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{var} is unset or empty: tests built with the `{feature}` feature need it \
             (e.g. as in .ci/run), or build without that feature"
        ),
    }
}

fn with_path(url: &str, path: &str) -> String {
    let mut u = url::Url::parse(url).expect("test database url");
    u.set_path(path);
    u.to_string()
}

#[cfg(feature = "mysql")]
fn create_mysql(url: &str) -> TestDb {
    use diesel::connection::{Connection, SimpleConnection};
    let server = with_path(url, "");
    let name = unique_name();
    let mut conn = diesel::MysqlConnection::establish(&server)
        .unwrap_or_else(|e| panic!("connect to SESAME_TEST_MYSQL_URL server {server}: {e}"));
    conn.batch_execute(&format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    ))
    .unwrap_or_else(|e| panic!("create mysql database {name}: {e}"));
    TestDb {
        backend: "mysql",
        url: with_path(url, &format!("/{name}")),
        guard: Guard::Mysql { server, name },
    }
}

#[cfg(feature = "postgres")]
fn create_postgres(url: &str) -> TestDb {
    use diesel::connection::{Connection, SimpleConnection};
    // The database named in the URL may not exist: fall back to `postgres`.
    let (server, mut conn) = match diesel::PgConnection::establish(url) {
        Ok(c) => (url.to_string(), c),
        Err(_) => {
            let server = with_path(url, "/postgres");
            let c = diesel::PgConnection::establish(&server).unwrap_or_else(|e| {
                panic!("connect to SESAME_TEST_POSTGRES_URL server {server}: {e}")
            });
            (server, c)
        }
    };
    let name = unique_name();
    conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap_or_else(|e| panic!("create postgres database {name}: {e}"));
    TestDb {
        backend: "postgres",
        url: with_path(url, &format!("/{name}")),
        guard: Guard::Postgres { server, name },
    }
}

/// A fresh database on every MariaDB and PostgreSQL server compiled in (at
/// least one: `--ignored` without the features must not pass vacuously).
pub fn server_databases() -> Vec<TestDb> {
    let dbs: Vec<TestDb> = test_databases()
        .into_iter()
        .filter(|db| db.backend != "sqlite")
        .collect();
    assert!(
        !dbs.is_empty(),
        "no MySQL/PostgreSQL test database: build with --features mysql and/or postgres"
    );
    dbs
}

/// A fresh SQLite database only.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
    TestDb {
        backend: "sqlite",
        url,
        guard: Guard::Dir(dir),
    }
}
