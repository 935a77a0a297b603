//! Declared key lifecycle over real HTTP: generated keys rotating on a
//! schedule (`signing.rotation`) on one node and on two nodes sharing a
//! database (every backend under test), a rotated-out key verifying until
//! what it signed has expired, `sesame keys retire` of the signing key,
//! configured keys chosen by their `not_before`/`not_after` windows, and
//! the configuration errors of bad rotation settings.
//!
//! Times are short (a key every 4s, published 2s ahead) and every wait is a
//! polling loop with a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::db::TestDb;
use common::flow::{exchange, introspect, userinfo, Flow};
use common::{browser, client, jwt_claims, sesame, Server, ALICE_HASH};
use serde_json::Value;
use sesame::store::{RingKey, Store};

const CB: &str = "http://app.test/cb";
const EVERY: i64 = 4;

/// A tenant `demo` signing ES256 with `signing` (a YAML flow mapping),
/// tokens living `lifetime`, a machine client and a browser client.
fn config(issuer: &str, signing: &str, lifetime: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://{issuer}/demo
    signing: {signing}
    lifetimes: {{ access_token: {lifetime}, id_token: {lifetime} }}
    users:
      - {{ username: alice, password_hash: "{ALICE_HASH}" }}
    clients:
      - {{ id: batch, secret: batch-secret, grant_types: [client_credentials], scopes: [] }}
      - {{ id: web, secret: web-secret, skip_consent: true, redirect_uris: ["{CB}"], grant_types: [authorization_code], scopes: [openid] }}
"#
    )
}

const ROTATING: &str = "{ alg: ES256, rotation: { every: 4s, lead: 2s, jwks_cache: 1s } }";

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Poll `f` every 100 ms until it gives `Some`, or fail with `what`.
#[track_caller]
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = deadline(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`wait_for`], showing `context()` on failure.
#[track_caller]
fn wait_for_or<T>(
    secs: u64,
    what: &str,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let until = deadline(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `kid`s of `alg` in a node's JWKS, in order.
fn kids(s: &Server, alg: &str) -> Vec<String> {
    let jwks: Value = client()
        .get(s.url("/demo/jwks"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// A client-credentials JWT of `batch` and the kid that signed it.
fn machine_token(s: &Server) -> (String, String) {
    let r = client()
        .post(s.url("/demo/token"))
        .basic_auth("batch", Some("batch-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    let jwt = t["access_token"].as_str().unwrap().to_string();
    let kid = kid_of(&jwt);
    (jwt, kid)
}

fn kid_of(jwt: &str) -> String {
    let header = jwt_claims(&format!("x.{}", jwt.split('.').next().unwrap()));
    header["kid"].as_str().unwrap().to_string()
}

fn active(s: &Server, token: &str) -> bool {
    introspect(s, "demo", "batch", "batch-secret", token)["active"] == true
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn ring(db: &TestDb, alg: &str) -> Vec<RingKey> {
    let store = Store::connect(&db.url, 2, Duration::from_secs(30), &db.base_dir()).unwrap();
    block_on(store.ring_keys_for("demo", alg)).unwrap()
}

#[test]
fn two_nodes_rotating_together_make_one_key_per_slot() {
    for db in common::db::test_databases() {
        let backend = db.backend;
        // Neither node's address is the issuer's: requests route by path.
        let yaml = config("sesame.test", ROTATING, "3s");
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| Server::start(&yaml, &db.url));
            let b = scope.spawn(|| Server::start(&yaml, &db.url));
            (a.join().unwrap(), b.join().unwrap())
        });
        // Watch both nodes through three rotations.
        let mut signers = BTreeSet::new();
        let what = format!("three rotations on {backend}");
        let logs = || format!("{}\n---\n{}", a.logs(), b.logs());
        wait_for_or(30, &what, logs, || {
            for s in [&a, &b] {
                signers.insert(machine_token(s).1);
            }
            (signers.len() >= 4).then_some(())
        });
        // Both nodes publish the same keys (each re-reads the ring every
        // tick; at a given moment one may be a tick behind).
        wait_for(10, "both nodes to publish the same keys", || {
            let (ka, kb) = (kids(&a, "ES256"), kids(&b, "ES256"));
            let same: BTreeSet<_> = ka.iter().collect::<BTreeSet<_>>();
            (same == kb.iter().collect::<BTreeSet<_>>()).then_some(())
        });
        let rows = ring(&db, "ES256");
        let slots: Vec<i64> = rows.iter().map(|r| r.signs_from).collect();
        assert_eq!(slots[0], 0, "{backend}: the first key signs from the start");
        for pair in slots[1..].windows(2) {
            let step = pair[1] - pair[0];
            assert!(
                step > 0 && step % EVERY == 0,
                "{backend}: one key per slot, slots {EVERY}s apart: {slots:?}"
            );
        }
        let kids_stored: BTreeSet<&str> = rows.iter().map(|r| r.kid.as_str()).collect();
        assert_eq!(kids_stored.len(), rows.len(), "{backend}: {slots:?}");
        for kid in &signers {
            assert!(
                kids_stored.contains(kid.as_str()),
                "{backend}: {kid} not in the ring"
            );
        }
        // Every node's token verifies at the other.
        let (token, _) = machine_token(&a);
        assert!(active(&b, &token), "{backend}");
        // The RS256 ring (ES256 tenants also offer RS256) rotates too, one key per slot.
        let rs: Vec<i64> = ring(&db, "RS256").iter().map(|r| r.signs_from).collect();
        assert!(rs.len() >= 2, "{backend}: {rs:?}");
        drop((a, b));
    }
}

#[test]
fn a_rotated_out_key_verifies_until_its_tokens_expire_then_leaves_jwks() {
    let s = common::start_sqlite(&config("127.0.0.1:{port}", ROTATING, "8s"));
    // Start right after a rotation, so the key has a whole period to sign.
    let (_, before) = machine_token(&s);
    wait_for(20, "a rotation", || {
        (machine_token(&s).1 != before).then_some(())
    });
    let (machine, kid) = machine_token(&s);
    let code = Flow {
        scope: "openid",
        ..Flow::new(&s, "web", CB)
    }
    .code(&browser());
    let tokens = exchange(&s, "demo", "web", "web-secret", &code, CB);
    let user = tokens["access_token"].as_str().unwrap().to_string();
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    assert!(kids(&s, "ES256").contains(&kid));

    // The next key takes over.
    wait_for(20, "the next key to sign", || {
        (machine_token(&s).1 != kid).then_some(())
    });
    let exp = jwt_claims(&machine)["exp"].as_i64().unwrap();
    assert!(
        sesame::now() < exp,
        "the machine is too slow for this test's lifetimes"
    );
    // Rotated out, still published and verifying.
    assert!(kids(&s, "ES256").contains(&kid), "{kid} left JWKS early");
    assert!(
        active(&s, &machine),
        "a rotated-out key's token must verify"
    );
    // The user's tokens, when the same key signed them (they may straddle
    // the rotation): the access token still opens userinfo, and the ID
    // token's key is still published for relying parties to verify it.
    if kid_of(&user) == kid {
        assert!(userinfo(&s, "demo", &user)["sub"].is_string());
    }
    if kid_of(&id_token) == kid {
        assert!(kids(&s, "ES256").contains(&kid));
    }

    // Once every token it signed has expired (8s after it stopped
    // signing), the key is gone from JWKS.
    wait_for(30, "the rotated-out key to leave JWKS", || {
        (!kids(&s, "ES256").contains(&kid)).then_some(())
    });
    assert!(sesame::now() >= exp, "left JWKS before its tokens expired");
    assert!(!active(&s, &machine));
}

#[test]
fn retiring_the_signing_key_takes_it_out_at_once() {
    // No scheduled rotation during the test: every 1h.
    let rotating = "{ alg: ES256, rotation: { every: 1h, lead: 2s, jwks_cache: 1s } }";
    let s = common::start_sqlite(&config("127.0.0.1:{port}", rotating, "1h"));
    let r = client().get(s.url("/demo/jwks")).send().unwrap();
    assert_eq!(
        r.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=1",
        "with rotation, JWKS is cached for jwks_cache"
    );
    let (token, kid) = machine_token(&s);
    assert!(active(&s, &token));
    assert!(kids(&s, "ES256").contains(&kid));
    let code = Flow {
        scope: "openid",
        ..Flow::new(&s, "web", CB)
    }
    .code(&browser());
    let user = exchange(&s, "demo", "web", "web-secret", &code, CB)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(kid_of(&user), kid);
    assert!(userinfo(&s, "demo", &user)["sub"].is_string());

    let cfg = s.config_path();
    let listed = sesame(&["keys", "list", "-c", cfg.to_str().unwrap()]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let line = listed.stdout.lines().find(|l| l.contains(&kid)).unwrap();
    assert!(line.contains("signing"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("next (signs from"),
        "{}",
        listed.stdout
    );

    let out = sesame(&[
        "keys",
        "retire",
        "-c",
        cfg.to_str().unwrap(),
        "--tenant",
        "demo",
        "--kid",
        &kid,
    ]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("retired"), "{}", out.stdout);
    assert!(out.stderr.contains("key.retired"), "{}", out.stderr);

    // Gone from JWKS within the node's tick (lead/4 here), and a new key signs.
    wait_for(10, "the retired key to leave JWKS", || {
        (!kids(&s, "ES256").contains(&kid)).then_some(())
    });
    let (fresh, new_kid) = machine_token(&s);
    assert_ne!(new_kid, kid);
    assert!(kids(&s, "ES256").contains(&new_kid));
    assert!(active(&s, &fresh));
    // What the retired key signed no longer verifies.
    assert!(
        !active(&s, &token),
        "a retired key's token must be inactive"
    );
    let r = client()
        .get(s.url("/demo/userinfo"))
        .bearer_auth(&user)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "a retired key's token opens no userinfo");

    let listed = sesame(&[
        "keys",
        "list",
        "-c",
        cfg.to_str().unwrap(),
        "--tenant",
        "demo",
    ]);
    let line = listed.stdout.lines().find(|l| l.contains(&kid)).unwrap();
    assert!(line.contains("retired at"), "{}", listed.stdout);
    let line = listed
        .stdout
        .lines()
        .find(|l| l.contains(&new_kid))
        .unwrap();
    assert!(line.contains("signing"), "{}", listed.stdout);

    // Twice is harmless; an unknown kid is an error.
    let again = sesame(&["keys", "retire", "-c", cfg.to_str().unwrap(), "--kid", &kid]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("already retired"), "{}", again.stdout);
    let unknown = sesame(&[
        "keys",
        "retire",
        "-c",
        cfg.to_str().unwrap(),
        "--kid",
        "nope",
    ]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("no key \"nope\""),
        "{}",
        unknown.stderr
    );
}

#[test]
fn retire_refuses_tenants_without_a_key_ring() {
    let s = common::start_sqlite(&config("127.0.0.1:{port}", "{ alg: ES256 }", "1h"));
    let (_, kid) = machine_token(&s);
    let cfg = s.config_path();
    let out = sesame(&["keys", "retire", "-c", cfg.to_str().unwrap(), "--kid", &kid]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no signing.rotation"), "{}", out.stderr);
    let r = client().get(s.url("/demo/jwks")).send().unwrap();
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
}

/// A new ES256 PEM in `dir`/`name` and its kid.
fn keygen(dir: &std::path::Path, name: &str) -> String {
    let out = sesame(&["keygen", "--alg", "ES256"]);
    assert_eq!(out.code, Some(0));
    std::fs::write(dir.join(name), &out.stdout).unwrap();
    sesame::jose::SigningKey::from_pem(out.stdout.as_bytes(), sesame::jose::Alg::ES256)
        .unwrap()
        .kid()
        .to_string()
}

#[test]
fn configured_key_windows_choose_the_signing_key() {
    let dir = tempfile::tempdir().unwrap().keep();
    let (later, current, next) = (
        keygen(&dir, "later.pem"),
        keygen(&dir, "current.pem"),
        keygen(&dir, "next.pem"),
    );
    let now = sesame::now();
    let at = |s: i64| sesame::config::timestamp::format(now + s);
    // Listed first but not yet valid; then the current key until +5s, and
    // its successor from then on.
    let signing = format!(
        "{{ alg: ES256, keys: [{{ path: later.pem, not_before: '{}' }}, {{ path: current.pem, not_before: '{}', not_after: '{}' }}, {{ path: next.pem, not_before: '{}' }}] }}",
        at(86400),
        at(-3600),
        at(5),
        at(5)
    );
    let db = common::db::sqlite();
    let s = Server::start_in(dir, &config("127.0.0.1:{port}", &signing, "3s"), &db.url);
    let (token, kid) = machine_token(&s);
    assert_eq!(kid, current, "the key whose window holds now signs");
    let published = kids(&s, "ES256");
    assert_eq!(published[0], current, "the signing key comes first");
    for k in [&later, &next] {
        assert!(
            published.contains(k),
            "{k} is published ahead: {published:?}"
        );
    }
    // At not_after the successor signs, without a reload.
    wait_for(20, "the next window", || {
        (machine_token(&s).1 == next).then_some(())
    });
    assert!(kids(&s, "ES256").contains(&current));
    // Published until its tokens have expired (not_after + 3s), then gone.
    wait_for(20, "the expired key to leave JWKS", || {
        (!kids(&s, "ES256").contains(&current)).then_some(())
    });
    assert!(sesame::now() >= now + 5 + 3);
    assert!(!active(&s, &token));
}

#[test]
fn bad_rotation_settings_are_refused_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let check = |signing: &str| {
        let yaml = config("127.0.0.1:8080", signing, "1h")
            .replace("{port}", "8080")
            .replace("{db}", "sqlite://sesame.db");
        let path = dir.path().join("sesame.yaml");
        std::fs::write(&path, yaml).unwrap();
        sesame(&["check", "-c", path.to_str().unwrap()])
    };
    let out = check("{ alg: ES256, rotation: { every: 30d, lead: 1h, jwks_cache: 1d } }");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("tenants[0].signing.rotation.lead")
            && out.stderr.contains("jwks_cache"),
        "{}",
        out.stderr
    );
    let out = check("{ alg: ES256, rotation: { every: 2d, lead: 2d } }");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("tenants[0].signing.rotation.every"),
        "{}",
        out.stderr
    );
    let out = check("{ alg: ES256, rotation: { every: 30d, jwks: 1d } }");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("tenants[0].signing.rotation"),
        "{}",
        out.stderr
    );
    keygen(dir.path(), "a.pem");
    let out = check("{ alg: ES256, keys: [a.pem], rotation: { every: 30d } }");
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("tenants[0].signing.rotation: ")
            && out.stderr.contains("cannot be combined with signing.keys"),
        "{}",
        out.stderr
    );
    let out = check("{ alg: ES256, rotation: { every: 30d, lead: 2d, jwks_cache: 1d } }");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // A configured key whose window ends within the week: a warning, not an error.
    let soon = sesame::config::timestamp::format(sesame::now() + 86400);
    let out = check(&format!(
        "{{ alg: ES256, keys: [{{ path: a.pem, not_after: '{soon}' }}] }}"
    ));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: tenants[0].signing.keys") && out.stderr.contains(&soon),
        "{}",
        out.stderr
    );
}

#[test]
fn turning_rotation_on_keeps_the_generated_key_signing_until_its_slot_ends() {
    let s = common::start_sqlite(&config("127.0.0.1:{port}", "{ alg: ES256 }", "1h"));
    let (token, kid) = machine_token(&s);
    // Rotation set by a reload: the generated key joins the ring as its
    // first key, so it keeps signing and what it signed still verifies.
    let cfg = s.config_path();
    let yaml = std::fs::read_to_string(&cfg).unwrap().replace(
        "signing: { alg: ES256 }",
        "signing: { alg: ES256, rotation: { every: 4s, lead: 2s, jwks_cache: 1s } }",
    );
    std::fs::write(&cfg, yaml).unwrap();
    s.hup();
    s.wait_for_log("config.reloaded");
    assert!(active(&s, &token));
    assert!(kids(&s, "ES256").contains(&kid));
    // Then the schedule takes over.
    wait_for(20, "the first scheduled key to sign", || {
        (machine_token(&s).1 != kid).then_some(())
    });
    assert!(
        active(&s, &token),
        "its tokens still verify after the rotation"
    );
}

#[test]
fn ring_keys_are_sealed_under_the_key_encryption_key() {
    // A tenant whose generated key was stored in clear, before key_encryption
    // and rotation were set.
    let common::Running { server, db } =
        common::start_sqlite(&config("127.0.0.1:{port}", "{ alg: ES256 }", "1h"));
    let (token, kid) = machine_token(&server);
    let (dir, port) = (server.dir.clone(), server.port);
    server.stop();
    let cfg = dir.join("sesame.yaml");
    let yaml = std::fs::read_to_string(&cfg).unwrap().replace(
        "signing: { alg: ES256 }",
        "signing: { alg: ES256, rotation: { every: 1h, lead: 2s, jwks_cache: 1s } }",
    );
    let kek = "key_encryption: { key: 'ERERERERERERERERERERERERERERERERERERERERERE=' }\n";
    std::fs::write(&cfg, format!("{kek}{yaml}")).unwrap();
    let s = Server::restart(&dir, port);
    assert!(active(&s, &token), "the generated key joined the ring");
    assert_eq!(machine_token(&s).1, kid);
    let sealed = |rows: &[RingKey]| {
        rows.iter()
            .all(|r| r.private_pem.starts_with("enc:v1:") && !r.private_pem.contains("PRIVATE"))
    };
    let rows = ring(&db, "ES256");
    assert!(rows.len() >= 2 && sealed(&rows), "{rows:?}");
    assert!(sealed(&ring(&db, "RS256")));
    // The key it came from is sealed where it was, too.
    let store = Store::connect(&db.url, 2, Duration::from_secs(30), &db.base_dir()).unwrap();
    let legacy = block_on(store.find_signing_key("demo", "ES256"))
        .unwrap()
        .unwrap();
    assert!(
        legacy.private_pem.starts_with("enc:v1:"),
        "{:.30}",
        legacy.private_pem
    );
    // A replacement made by `keys retire` is sealed as well.
    let out = sesame(&["keys", "retire", "-c", cfg.to_str().unwrap(), "--kid", &kid]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = ring(&db, "ES256");
    assert!(rows.len() >= 3 && sealed(&rows), "{rows:?}");
    assert!(!out.stderr.contains("PRIVATE KEY") && !out.stdout.contains("enc:v1:"));
}
