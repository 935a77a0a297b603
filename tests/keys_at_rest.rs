//! Generated signing keys at rest: sealed under the operator's
//! `key_encryption` key, over real HTTP, on every database under test
//! (SQLite always; MariaDB and PostgreSQL with their features and
//! `SESAME_TEST_*_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::db::TestDb;
use common::{client, free_port, jwt_claims, Server};
use serde_json::Value;
use sesame::store::{Store, StoredKey};

/// Two key-encryption keys: 32 bytes of 0x11 and of 0x22, base64.
const KEK_A: &str = "ERERERERERERERERERERERERERERERERERERERERERE=";
const KEK_B: &str = "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=";

/// Three tenants with generated keys (two of them RS256, so a sealed key
/// can be moved from one to the other), and `key_encryption` as given
/// (a whole YAML line, or nothing).
fn config(key_encryption: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
{key_encryption}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    clients:
      - id: batch
        secret: batch-secret
        grant_types: [client_credentials]
        scopes: []
  - id: other
    issuer: http://127.0.0.1:{{port}}/other
  - id: edge
    issuer: http://127.0.0.1:{{port}}/edge
    signing: {{ alg: EdDSA }}
"#
    )
}

fn with_key(kek: &str) -> String {
    config(&format!("key_encryption: {{ key: '{kek}' }}"))
}

const TENANTS: [(&str, &str); 3] = [("demo", "RS256"), ("other", "RS256"), ("edge", "EdDSA")];
/// The generated keys stored, in the order `kids` lists them: an EdDSA
/// tenant also has an RS256 key (OIDC Core §15.1).
const STORED: [(&str, &str); 4] = [
    ("demo", "RS256"),
    ("other", "RS256"),
    ("edge", "EdDSA"),
    ("edge", "RS256"),
];

/// The `kid`s a server publishes, tenant by tenant.
fn kids(s: &Server) -> Vec<String> {
    TENANTS
        .iter()
        .flat_map(|(tenant, _)| {
            let jwks: Value = client()
                .get(s.url(&format!("/{tenant}/jwks")))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let keys = jwks["keys"].as_array().unwrap();
            let want = STORED.iter().filter(|(t, _)| t == tenant).count();
            assert_eq!(keys.len(), want, "{tenant}: {jwks}");
            keys.iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The demo tenant signs with its key: a client-credentials JWT names it.
fn signs_with(s: &Server, kid: &str) {
    let r = client()
        .post(s.url("/demo/token"))
        .basic_auth("batch", Some("batch-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().unwrap();
    let jwt = token["access_token"].as_str().unwrap();
    let header = jwt_claims(&format!("x.{}", jwt.split('.').next().unwrap()));
    assert_eq!(header["kid"], kid);
    assert_eq!(jwt_claims(jwt)["client_id"], "batch");
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn store(db: &TestDb) -> Store {
    let store = Store::connect(&db.url, 4, Duration::from_secs(30), &db.base_dir())
        .unwrap_or_else(|e| panic!("{db:?}: {e}"));
    store.migrate().unwrap_or_else(|e| panic!("{db:?}: {e}"));
    store
}

/// Every tenant's stored key row, in `TENANTS` order.
fn rows(db: &TestDb) -> Vec<StoredKey> {
    let store = store(db);
    block_on(async {
        let mut rows = Vec::new();
        for (tenant, alg) in STORED {
            let row = store.find_signing_key(tenant, alg).await.unwrap();
            rows.push(row.unwrap_or_else(|| panic!("{db:?}: no key stored for {tenant}")));
        }
        rows
    })
}

#[track_caller]
fn assert_sealed(db: &TestDb, rows: &[StoredKey]) {
    for row in rows {
        assert!(
            row.private_pem.starts_with("enc:v1:") && !row.private_pem.contains("PRIVATE KEY"),
            "{db:?}: {} stored as {:.40}",
            row.tenant_id,
            row.private_pem
        );
    }
    if db.backend == "sqlite" {
        assert_no_pem_in_files(&db.base_dir());
    }
}

/// No file of the SQLite database (main file, WAL, shared memory) holds PEM.
#[track_caller]
fn assert_no_pem_in_files(dir: &Path) {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // A WAL or shared-memory file may go as its last connection closes.
        let bytes = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            read => read.unwrap(),
        };
        seen += 1;
        assert!(
            !bytes.windows(11).any(|w| w == b"PRIVATE KEY"),
            "{} holds a private key in clear",
            path.display()
        );
    }
    assert!(seen > 0, "no database file in {}", dir.display());
}

/// Run `sesame serve` with `yaml` in `dir` on `db`, expecting it to stop by
/// itself: its exit code and stderr.
fn serve_fails(dir: &Path, yaml: &str, db: &TestDb) -> (Option<i32>, String) {
    let text = yaml
        .replace("{port}", &free_port().to_string())
        .replace("{db}", &db.url);
    let cfg = dir.join("sesame.yaml");
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .arg("serve")
        .arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{db:?}: sesame kept running:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn generated_keys_are_stored_encrypted_and_the_same_key_opens_them_after_a_restart() {
    for db in common::db::test_databases() {
        let dir = tempfile::tempdir().unwrap().keep();
        let s = Server::start_in(dir.clone(), &with_key(KEK_A), &db.url);
        let first = kids(&s);
        signs_with(&s, &first[0]);
        s.stop();
        let sealed = rows(&db);
        assert_sealed(&db, &sealed);
        for (row, kid) in sealed.iter().zip(&first) {
            assert_eq!(&row.kid, kid, "{db:?}");
        }

        // The same key from a file (relative to the config), with a newline
        // as `openssl rand -base64 32 > kek` leaves it.
        std::fs::write(dir.join("kek"), format!("{KEK_A}\n")).unwrap();
        let s = Server::start_in(
            dir.clone(),
            &config("key_encryption: { key_file: kek }"),
            &db.url,
        );
        assert_eq!(kids(&s), first, "{db:?}");
        signs_with(&s, &first[0]);
        s.stop();
        assert_eq!(rows(&db), sealed, "{db:?}: an opened key is not rewritten");
    }
}

#[test]
fn a_key_stored_in_clear_is_encrypted_when_a_key_encryption_key_is_configured() {
    for db in common::db::test_databases() {
        let dir = tempfile::tempdir().unwrap().keep();
        // The quickstart way: no key-encryption key.
        let s = Server::start_in(dir.clone(), &config(""), &db.url);
        let first = kids(&s);
        s.stop();
        for row in rows(&db) {
            assert!(
                row.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
                "{db:?}: {:.40}",
                row.private_pem
            );
        }

        let s = Server::start_in(dir.clone(), &with_key(KEK_A), &db.url);
        assert_eq!(kids(&s), first, "{db:?}: the same keys, now encrypted");
        signs_with(&s, &first[0]);
        s.wait_for_log("the stored signing key was in clear");
        s.stop();
        let sealed = rows(&db);
        assert_sealed(&db, &sealed);

        let s = Server::start_in(dir.clone(), &with_key(KEK_A), &db.url);
        assert_eq!(kids(&s), first, "{db:?}");
        assert!(
            !s.logs().contains("the stored signing key was in clear"),
            "{}",
            s.logs()
        );
        s.stop();
        assert_eq!(rows(&db), sealed, "{db:?}");
    }
}

#[test]
fn a_wrong_or_missing_key_encryption_key_stops_the_start_and_changes_nothing() {
    for db in common::db::test_databases() {
        let dir = tempfile::tempdir().unwrap().keep();
        let s = Server::start_in(dir.clone(), &with_key(KEK_A), &db.url);
        let first = kids(&s);
        s.stop();
        let sealed = rows(&db);

        let (code, stderr) = serve_fails(&dir, &with_key(KEK_B), &db);
        assert_eq!(code, Some(1), "{db:?}: {stderr}");
        for (i, (tenant, _)) in TENANTS.iter().enumerate() {
            assert!(
                stderr.contains(&format!(
                    "tenants[{i}].signing: tenant \"{tenant}\": the key-encryption key doesn't decrypt the stored signing key"
                )),
                "{db:?}: {stderr}"
            );
        }
        assert!(
            !stderr.contains(KEK_B) && !stderr.contains(KEK_A),
            "{stderr}"
        );

        let (code, stderr) = serve_fails(&dir, &config(""), &db);
        assert_eq!(code, Some(1), "{db:?}: {stderr}");
        assert!(
            stderr.contains("tenant \"demo\": the stored signing key")
                && stderr.contains("is encrypted, but no key-encryption key is configured"),
            "{db:?}: {stderr}"
        );

        // A sealed key copied to another tenant's row (same alg) does not open there.
        let store = store(&db);
        block_on(store.rewrite_signing_key(
            "other",
            "RS256",
            &sealed[1].private_pem,
            &sealed[0].private_pem,
        ))
        .unwrap();
        let (code, stderr) = serve_fails(&dir, &with_key(KEK_A), &db);
        assert_eq!(code, Some(1), "{db:?}: {stderr}");
        assert!(
            stderr.contains(
                "tenants[1].signing: tenant \"other\": the key-encryption key doesn't decrypt"
            ) && !stderr.contains("tenant \"demo\":")
                && !stderr.contains("tenant \"edge\":"),
            "{db:?}: {stderr}"
        );
        block_on(store.rewrite_signing_key(
            "other",
            "RS256",
            &sealed[0].private_pem,
            &sealed[1].private_pem,
        ))
        .unwrap();

        // Nothing was replaced by a fresh key: the right key still opens them all.
        assert_eq!(rows(&db), sealed, "{db:?}");
        let s = Server::start_in(dir.clone(), &with_key(KEK_A), &db.url);
        assert_eq!(kids(&s), first, "{db:?}");
        s.stop();
    }
}

/// Start `n` servers on `db` at once; their published kids.
fn start_together(n: usize, yaml: &str, db: &TestDb) -> Vec<Vec<String>> {
    let servers: Vec<Server> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| Server::start(yaml, &db.url)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all = servers.iter().map(kids).collect();
    for s in servers {
        s.stop();
    }
    all
}

#[test]
fn nodes_starting_together_agree_on_one_key_and_one_encryption() {
    for db in common::db::test_databases() {
        // A fresh database (migrated first: the race here is the keys'):
        // one key per tenant, sealed.
        store(&db);
        let all = start_together(3, &with_key(KEK_A), &db);
        assert!(all.iter().all(|k| *k == all[0]), "{db:?}: {all:?}");
        assert_sealed(&db, &rows(&db));
    }
    for db in common::db::test_databases() {
        // Keys in clear, then nodes that all want to encrypt them.
        let s = Server::start(&config(""), &db.url);
        let first = kids(&s);
        s.stop();
        let all = start_together(3, &with_key(KEK_A), &db);
        assert!(all.iter().all(|k| *k == first), "{db:?}: {all:?}");
        assert_sealed(&db, &rows(&db));
        let s = Server::start(&with_key(KEK_A), &db.url);
        assert_eq!(kids(&s), first, "{db:?}");
        s.stop();
    }
}

#[test]
fn of_racing_rewrites_of_a_stored_key_exactly_one_wins() {
    for db in common::db::test_databases() {
        let store = store(&db);
        block_on(async {
            let row = |tenant: &str, text: &str| StoredKey {
                tenant_id: tenant.into(),
                alg: "ES256".into(),
                kid: "k".into(),
                private_pem: text.into(),
                created_at: 1_700_000_000,
            };
            for tenant in ["a", "b"] {
                store
                    .find_or_insert_signing_key(row(tenant, "clear"))
                    .await
                    .unwrap();
            }
            let mut set = tokio::task::JoinSet::new();
            for i in 0..12 {
                let store = store.clone();
                set.spawn(async move {
                    let to = format!("enc:{i}");
                    let won = store
                        .rewrite_signing_key("a", "ES256", "clear", &to)
                        .await
                        .unwrap();
                    (won, to)
                });
            }
            let mut winners = Vec::new();
            while let Some(r) = set.join_next().await {
                let (won, to) = r.unwrap();
                if won {
                    winners.push(to);
                }
            }
            assert_eq!(winners.len(), 1, "{db:?}: {winners:?}");
            let stored = store.find_signing_key("a", "ES256").await.unwrap().unwrap();
            assert_eq!(stored, row("a", &winners[0]), "{db:?}");
            // Another tenant's row, and another alg, are untouched.
            let b = store.find_signing_key("b", "ES256").await.unwrap();
            assert_eq!(b, Some(row("b", "clear")), "{db:?}");
            assert_eq!(store.find_signing_key("a", "RS256").await.unwrap(), None);
            assert!(!store
                .rewrite_signing_key("a", "ES256", "clear", "late")
                .await
                .unwrap());
        });
    }
}

/// `sesame check -c` on `yaml`: exit code and stderr.
fn check(dir: &Path, yaml: &str) -> (Option<i32>, String) {
    let cfg = dir.join("check.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_warns_about_generated_keys_in_clear_and_refuses_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let production = |key_encryption: &str| {
        format!(
            "database: {{ url: 'sqlite://x.db' }}\n{key_encryption}\ntenants:\n  - id: prod\n    issuer: https://id.example.com\n"
        )
    };
    let (code, stderr) = check(dir.path(), &production(""));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: tenants[0].signing: tenant \"prod\" has an https issuer and a generated signing key"),
        "{stderr}"
    );

    std::fs::write(dir.path().join("kek"), format!("{KEK_A}\n")).unwrap();
    let (code, stderr) = check(dir.path(), &production("key_encryption: { key_file: kek }"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    let (code, stderr) = check(
        dir.path(),
        &production("key_encryption: { key: 'c2VjcmV0LXNob3J0' }"),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("key_encryption.key: the key must be 32 bytes")
            && !stderr.contains("c2VjcmV0LXNob3J0"),
        "{stderr}"
    );
}
