//! `sesame plan` against a running deployment's database: every kind of
//! change and every warning (with counts of live grants), the exit codes a
//! pipeline reads, failing fixtures, two nodes serving two generations
//! during a rollout, and records that keep no secret, password hash or
//! value from the environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::flow::{exchange, post_basic, Flow};
use common::{browser, sesame, sesame_env, Ran, Server, ALICE_HASH};

const CB: &str = "http://app.test/cb";
const CB2: &str = "http://app.test/cb2";
/// A redirect URI and a client secret that come from the environment:
/// neither may reach the database's records in clear.
const ENV_URI: &str = "https://from-env.example/callback-7f3a";
const ENV_SECRET: &str = "svc-secret-from-the-environment-91c2";

const SCRIPT: &str = r#"
fn id_token_claims(ctx) {
    #{ department: "Engineering" }
}
"#;

fn config(db: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{db}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    access_token_format: opaque
    signing: {{ alg: ES256, keys: [k1.pem, k2.pem] }}
    lifetimes: {{ refresh_token: 30d }}
    plugins: [claims.rhai]
    scopes: {{ api: {{ description: The API }} }}
    users:
      - {{ username: alice, password_hash: "{ALICE_HASH}" }}
      - {{ username: bob, password_hash: "{ALICE_HASH}" }}
    clients:
      - {{ id: web, secret: web-secret, skip_consent: true, redirect_uris: ["{CB}", "{CB2}", "${{PLAN_TEST_URI}}"], grant_types: [authorization_code, refresh_token], scopes: [openid, offline_access] }}
      - {{ id: legacy, secret: legacy-secret, skip_consent: true, redirect_uris: ["{CB}"], grant_types: [authorization_code, refresh_token], scopes: [openid, offline_access] }}
      - {{ id: svc, secret: "${{PLAN_TEST_SECRET}}", grant_types: [client_credentials], scopes: [api] }}
"#
    )
}

/// The variables the config reads.
const ENV: &[(&str, &str)] = &[("PLAN_TEST_URI", ENV_URI), ("PLAN_TEST_SECRET", ENV_SECRET)];

fn plan(config: &Path) -> Ran {
    sesame_env(&["plan", "-c", config.to_str().unwrap()], ENV)
}

fn grant(s: &Server, client: &str, secret: &str, user: &str) {
    let code = Flow {
        scope: "openid offline_access",
        username: user,
        ..Flow::new(s, client, CB)
    }
    .code(&browser());
    let t = exchange(s, "demo", client, secret, &code, CB);
    assert!(t["refresh_token"].is_string(), "{t}");
}

/// The database file and its write-ahead log, as bytes.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["sesame.db", "sesame.db-wal"] {
        bytes.extend(std::fs::read(dir.join(name)).unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn plan_reports_each_change_and_each_cutoff_with_live_counts() {
    let dir = tempfile::tempdir().unwrap().keep();
    let db = format!("sqlite://{}", dir.join("sesame.db").display());
    let mut kids = Vec::new();
    for name in ["k1.pem", "k2.pem"] {
        let ran = sesame(&["keygen", "--alg", "ES256"]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        std::fs::write(dir.join(name), &ran.stdout).unwrap();
    }
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::write(dir.join("plugins/claims.rhai"), SCRIPT).unwrap();
    let old = config(&db);
    let s = Server::start_in_env(dir.clone(), &old, &db, ENV);
    let served = std::fs::read_to_string(s.config_path()).unwrap();
    let jwks: serde_json::Value = browser()
        .get(s.url("/demo/jwks"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for k in jwks["keys"].as_array().unwrap() {
        kids.push(k["kid"].as_str().unwrap().to_string());
    }

    // Live grants: alice and bob at web, alice at legacy, and a machine token.
    grant(&s, "web", "web-secret", "alice");
    grant(&s, "web", "web-secret", "bob");
    grant(&s, "legacy", "legacy-secret", "alice");
    let r = post_basic(
        &s,
        "/demo/token",
        "svc",
        ENV_SECRET,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(r.status(), 200);

    // The configuration being served: no change, exit 0, and the node listed.
    let same = plan(&s.config_path());
    assert_eq!(same.code, Some(0), "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.contains("  no change"), "{}", same.stdout);
    assert!(
        same.stdout
            .contains(&format!("/127.0.0.1:{}  serves ", s.port)),
        "{}",
        same.stdout
    );

    // Only additions: exit 2, no warning.
    let added = dir.join("added.yaml");
    std::fs::write(
        &added,
        served.replace(
            "    clients:\n",
            "    clients:\n      - { id: reports, secret: r-secret, grant_types: [client_credentials], scopes: [api] }\n",
        ),
    )
    .unwrap();
    let ran = plan(&added);
    assert_eq!(ran.code, Some(2), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("  + client demo/reports\n"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("1 change(s), 0 warning(s)."),
        "{}",
        ran.stdout
    );

    // Everything at once.
    std::fs::write(
        dir.join("plugins/claims2.rhai"),
        SCRIPT.replace("Engineering", "R&D"),
    )
    .unwrap();
    let new = served
        .replace("description: The API }", "description: The orders API }")
        .replace("keys: [k1.pem, k2.pem]", "keys: [k1.pem]")
        .replace("refresh_token: 30d", "refresh_token: 1d")
        .replace("plugins: [claims.rhai]", "plugins: [claims2.rhai]")
        .replace(&format!("\"{CB}\", \"{CB2}\""), &format!("\"{CB}\""))
        .replace(
            &format!("      - {{ username: bob, password_hash: \"{ALICE_HASH}\" }}\n"),
            "",
        )
        .replace("      - { id: legacy,", "      - { id: reports, secret: r-secret, grant_types: [client_credentials], scopes: [api] }\n      - { id: old-legacy,")
        .replace("id: old-legacy, secret: legacy-secret, skip_consent: true", "id: gone, secret: legacy-secret, skip_consent: true");
    // (the legacy client is replaced by `gone`: legacy is removed, gone and reports added)
    // …and a tenant more.
    let new = format!(
        "{new}  - {{ id: other, issuer: \"http://127.0.0.1:{}/other\" }}\n",
        s.port
    );
    let next = dir.join("next.yaml");
    std::fs::write(&next, &new).unwrap();
    let ran = plan(&next);
    let out = &ran.stdout;
    assert_eq!(ran.code, Some(3), "{out}{}", ran.stderr);
    for line in [
        "  + client demo/reports\n",
        "  + client demo/gone\n",
        "  + tenant other\n",
        "  ~ scope demo/api\n",
        "  - client demo/legacy\n",
        &format!("  ~ client demo/web: redirect_uris [-{CB2}]\n"),
        "  ~ lifetime demo refresh_token: 30d → 1d\n",
        "  - user demo/bob\n",
        "  + script claims2.rhai\n",
        "  - script claims.rhai\n",
        &format!("  - key demo/{}: ES256\n", kids[1]),
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // The lifetime moved with the tenant: not reported again per client.
    assert!(!out.contains("lifetime demo/web"), "{out}");
    for warning in [
        "! client demo/legacy is removed: 1 live grant(s) (0 code(s), 1 refresh token(s), 1 access token(s)) stop working",
        &format!("! redirect URI {CB2} of client demo/web is removed while the client has 2 live grant(s)"),
        "! refresh_token lifetime of tenant demo shortened from 30d to 1d: 4 live grant(s)",
        "! user demo/bob is removed: 1 live grant(s) (0 code(s), 1 refresh token(s), 1 access token(s)) and 1 session(s) stop working",
        &format!("! key demo/{} (ES256) is removed from the JWKS", kids[1]),
    ] {
        assert!(out.contains(warning), "missing {warning:?} in:\n{out}");
    }

    // Fixtures beside the new file that fail make a warning of their own.
    std::fs::create_dir_all(dir.join("tests/next")).unwrap();
    std::fs::write(
        dir.join("tests/next/claims.yaml"),
        "defaults: { tenant: demo, client: web, scopes: openid }\ncases:\n  - name: engineering\n    user: alice\n    expect:\n      id_token: { department: Engineering }\n",
    )
    .unwrap();
    let ran = plan(&next);
    assert_eq!(ran.code, Some(3), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .contains("! 1 of 1 fixture case(s) fail with the new configuration"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("R&D"),
        "the fixture's diff is shown: {}",
        ran.stdout
    );
    // …and passing ones are said to pass.
    std::fs::create_dir_all(dir.join("tests/added")).unwrap();
    std::fs::write(
        dir.join("tests/added/claims.yaml"),
        "defaults: { tenant: demo, client: web, scopes: openid }\ncases:\n  - name: engineering\n    user: alice\n    expect:\n      id_token: { department: Engineering }\n",
    )
    .unwrap();
    let ran = plan(&added);
    assert_eq!(ran.code, Some(2), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("Fixtures: 1 case(s) passed."),
        "{}",
        ran.stdout
    );

    // A second node on the same database serving the next generation: a
    // rollout, each node with what it serves.
    let second_dir = tempfile::tempdir().unwrap().keep();
    for f in ["k1.pem", "k2.pem"] {
        std::fs::copy(dir.join(f), second_dir.join(f)).unwrap();
    }
    std::fs::create_dir_all(second_dir.join("plugins")).unwrap();
    std::fs::copy(
        dir.join("plugins/claims2.rhai"),
        second_dir.join("plugins/claims2.rhai"),
    )
    .unwrap();
    let issuer_port = s.port.to_string();
    let second = Server::start_in_env(
        second_dir,
        &new.replace(&format!("127.0.0.1:{issuer_port}"), "127.0.0.1:{port}"),
        &db,
        ENV,
    );
    let ran = plan(&next);
    assert!(
        ran.stdout
            .contains("A rollout is in progress: the live nodes serve 2 generations."),
        "{}",
        ran.stdout
    );
    assert!(ran
        .stdout
        .contains(&format!("/127.0.0.1:{}  serves ", s.port)));
    assert!(ran
        .stdout
        .contains(&format!("/127.0.0.1:{}  serves ", second.port)));

    // What the nodes recorded holds digests and public fields only.
    drop(second);
    drop(s);
    let bytes = database_bytes(&dir);
    assert!(
        contains(&bytes, "\"redirect_uris\""),
        "records are in this file"
    );
    for secret in [
        ENV_URI,
        ENV_SECRET,
        "web-secret",
        "legacy-secret",
        ALICE_HASH,
    ] {
        assert!(!contains(&bytes, secret), "{secret:?} is in the database");
    }
    assert!(contains(&bytes, "(from the environment: "));
}

/// On every backend: nodes record what they serve, a plan of the same file
/// says so, and one of an edit lists it (exit 2).
#[test]
fn plan_reads_what_nodes_recorded_on_every_backend() {
    let yaml = format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    users: [{{ username: alice, password_hash: "{ALICE_HASH}" }}]
    clients:
      - {{ id: web, secret: web-secret, redirect_uris: ["{CB}"] }}
"#
    );
    for running in common::start_all(&yaml) {
        let s = &running.server;
        let path = s.config_path();
        let ran = sesame(&["plan", "-c", path.to_str().unwrap()]);
        assert_eq!(
            ran.code,
            Some(0),
            "{}: {}{}",
            running.db.backend,
            ran.stdout,
            ran.stderr
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = s.dir.join("edited.yaml");
        std::fs::write(&edited, text.replace("username: alice", "username: alicia")).unwrap();
        let ran = sesame(&["plan", "-c", edited.to_str().unwrap()]);
        assert_eq!(
            ran.code,
            Some(2),
            "{}: {}{}",
            running.db.backend,
            ran.stdout,
            ran.stderr
        );
        assert!(
            ran.stdout
                .contains("  + user demo/alicia\n  - user demo/alice\n"),
            "{}",
            ran.stdout
        );
    }
}
