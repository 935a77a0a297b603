//! `sesame test` and `sesame explain`, run as the real binary: fixtures
//! pass and fail with a readable diff (and JUnit XML), what they predict
//! is what the running server issues, and `explain` walks through the
//! decision.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::flow::{exchange, introspect, userinfo, Flow};
use common::{browser, jwt_claims, sesame, ALICE_HASH};
use serde_json::{Map, Value};

const CB: &str = "http://app.test/cb";

/// The config: one claims script and one policy, both in the tenant.
fn config_yaml(port: &str, db: &str) -> String {
    format!(
        r#"server: {{ listen: "127.0.0.1:{port}" }}
database: {{ url: "{db}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    scopes:
      api:write: {{ description: Write }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice, groups: [staff, admins] }}
      - username: bob
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Bob, groups: [staff] }}
    plugins: [groups.rhai, no_write.rhai]
    clients:
      - id: web
        secret: s
        skip_consent: true
        redirect_uris: [{CB}]
        scopes: [openid, profile, api:write]
"#
    )
}

/// A temp dir holding the scripts (under `plugins/`) and, unless `served`,
/// the config `sesame.yaml`; the dir and the config's path.
fn project(served: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(
        plugins.join("groups.rhai"),
        "fn id_token_claims(ctx) {\n    let groups = ctx.user.claims.groups ?? [];\n    #{ groups: groups, is_admin: \"admins\" in groups }\n}\n",
    )
    .unwrap();
    std::fs::write(
        plugins.join("no_write.rhai"),
        "fn scope_policy(ctx) {\n    let groups = ctx.user?.claims?.groups ?? [];\n    if \"admins\" in groups { return (); }\n    let keep = [];\n    for s in ctx.granted { if s != \"api:write\" { keep.push(s); } }\n    #{ scopes: keep }\n}\n",
    )
    .unwrap();
    let cfg = dir.path().join("sesame.yaml");
    if !served {
        std::fs::write(&cfg, config_yaml("8080", "sqlite://never-opened.db")).unwrap();
    }
    (dir, cfg)
}

fn fixtures(dir: &Path, files: &[(&str, &str)]) {
    let tests = dir.join("tests").join("sesame");
    std::fs::create_dir_all(&tests).unwrap();
    for (name, text) in files {
        std::fs::write(tests.join(name), text).unwrap();
    }
}

const PASSING: &str = r#"defaults: { client: web, scopes: openid profile api:write }
cases:
  - name: admins keep api:write
    user: alice
    expect:
      granted: [openid, profile, api:write]
      id_token: { groups: [staff, admins], is_admin: true, name: Alice }
  - name: others lose it
    user: bob
    expect: { granted: [openid, profile], refresh_token: false }
"#;

/// Deliberately wrong: bob is no admin and does not keep api:write.
const FAILING: &str = r#"cases:
  - name: bob is an admin (he is not)
    client: web
    user: bob
    scopes: openid api:write
    expect:
      granted: [openid, api:write]
      id_token: { is_admin: true, groups: [staff], email: null }
      userinfo: { name: Bob }
"#;

#[test]
fn passing_fixtures_exit_0() {
    let (dir, cfg) = project(false);
    fixtures(dir.path(), &[("passing.yaml", PASSING)]);
    let out = sesame(&["test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("  ok     admins keep api:write\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("2 case(s): 2 passed, 0 failed\n"),
        "{}",
        out.stdout
    );
    // Nothing was stored: the database named in the config was never opened.
    assert!(!dir.path().join("never-opened.db").exists());
}

#[test]
fn a_failing_fixture_shows_each_difference_and_exits_1() {
    let (dir, cfg) = project(false);
    fixtures(
        dir.path(),
        &[("passing.yaml", PASSING), ("wrong.yaml", FAILING)],
    );
    let junit = dir.path().join("report.xml");
    let out = sesame(&[
        "test",
        "-c",
        cfg.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let wrong = dir.path().join("tests/sesame/wrong.yaml");
    let diff = format!(
        "{}
  FAIL   bob is an admin (he is not)
           granted
             expected: [openid, api:write]
             got:      [openid]
           id_token.is_admin
             expected: true
             got:      false
           userinfo.name
             expected: \"Bob\"
             got:      (absent)
",
        wrong.display()
    );
    assert!(out.stdout.contains(&diff), "{}", out.stdout);
    assert!(
        out.stdout.ends_with("3 case(s): 2 passed, 1 failed\n"),
        "{}",
        out.stdout
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites name=\"sesame test\" tests=\"3\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    assert!(xml.contains("<failure message=\"3 difference(s)\">granted: expected [openid, api:write], got [openid]\nid_token.is_admin: expected true, got false\nuserinfo.name: expected &quot;Bob&quot;, got (absent)</failure>"), "{xml}");
}

#[test]
fn fixture_and_setup_mistakes_are_named() {
    let (dir, cfg) = project(false);
    fixtures(
        dir.path(),
        &[(
            "broken.yaml",
            "cases:\n  - name: typo\n    client: web\n    expct: {}\n  - name: fine\n    client: web\n    user: bob\n    scopes: openid\n    expect: {}\n",
        )],
    );
    std::fs::write(
        dir.path().join("setup.yaml"),
        "cases:\n  - { name: no such client, client: nope, user: bob, scopes: openid, expect: {} }\n  - { name: no such user, client: web, user: zed, scopes: openid, expect: {} }\n",
    )
    .unwrap();
    let out = sesame(&["test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stdout
            .contains("  error  cases[0].expct: unknown field `expct`"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(line 4 column 5)"), "{}", out.stdout);
    let setup = dir.path().join("setup.yaml");
    let out = sesame(&["test", "-c", cfg.to_str().unwrap(), setup.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.contains("  ERROR  no such client: client: no client \"nope\" in tenant \"demo\" (there are: web)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("  ERROR  no such user: user: no user \"zed\" in tenant \"demo\""),
        "{}",
        out.stdout
    );
    // No fixture folder at all.
    std::fs::remove_dir_all(dir.path().join("tests")).unwrap();
    let out = sesame(&["test", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("tests/sesame is not a folder"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_cookbook_passes_its_own_tests() {
    let cookbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cookbook.yaml");
    let out = sesame(&["test", "-c", cookbook.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(" passed, 0 failed"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
}

/// The claims a test can pin: everything but times, random ids and the
/// request's nonce (a fixture sends none).
fn stable(claims: &Value) -> Map<String, Value> {
    let mut m = claims.as_object().unwrap().clone();
    // `generation` names the configuration a server serves (sesame test
    // serves none); `sid` the browser session it was issued in (a dry run
    // has none).
    for volatile in [
        "iat",
        "exp",
        "auth_time",
        "at_hash",
        "jti",
        "nonce",
        "generation",
        "sid",
    ] {
        m.remove(volatile);
    }
    m
}

#[test]
fn what_test_predicts_is_what_the_server_issues() {
    // The same config, served: sign bob in, read everything back.
    let (dir, _) = project(true);
    let s = common::Server::start_in(
        dir.path().to_path_buf(),
        &config_yaml("{port}", "{db}"),
        "sqlite://served.db",
    );
    let scope = "openid profile api:write";
    let code = Flow {
        scope,
        username: "bob",
        ..Flow::new(&s, "web", CB)
    }
    .code(&browser());
    let t = exchange(&s, "demo", "web", "s", &code, CB);
    let access = t["access_token"].as_str().unwrap();
    let userinfo = userinfo(&s, "demo", access);
    let introspection = introspect(&s, "demo", "web", "s", access);
    let granted: Vec<&str> = t["scope"].as_str().unwrap().split(' ').collect();
    let case = serde_json::json!({
        "cases": [{
            "name": "as served",
            "client": "web",
            "user": "bob",
            "scopes": scope,
            "expect": {
                "granted": granted,
                "refresh_token": t.get("refresh_token").is_some(),
                "id_token": stable(&jwt_claims(t["id_token"].as_str().unwrap())),
                "access_token": stable(&jwt_claims(access)),
                "userinfo": stable(&userinfo),
                "introspection": stable(&introspection),
            }
        }]
    });
    let served = dir.path().join("served.yaml");
    std::fs::write(&served, serde_json::to_string_pretty(&case).unwrap()).unwrap();
    let out = sesame(&[
        "test",
        "-c",
        s.config_path().to_str().unwrap(),
        served.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}{}\n{case:#}", out.stdout, out.stderr);
    // And the prediction is not empty: the scripts' claims are in it.
    assert_eq!(granted, ["openid", "profile"]);
    assert_eq!(
        jwt_claims(t["id_token"].as_str().unwrap())["is_admin"],
        false
    );
}

#[test]
fn explain_walks_through_the_decision_and_shows_the_tokens() {
    let (_dir, cfg) = project(false);
    let explain = |client: &str, scope: &str| {
        sesame(&[
            "explain",
            "-c",
            cfg.to_str().unwrap(),
            "--client",
            client,
            "--user",
            "bob",
            "--scope",
            scope,
            "--now",
            "2026-01-01T00:00:00Z",
        ])
    };
    let out = explain("web", "openid profile email api:write");
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let text = out.stdout;
    for line in [
        "tenant demo, client web, user bob, grant authorization_code\n",
        "requested: openid profile email api:write\n",
        "At /authorize\n",
        "    granted: openid profile api:write\n",
        "    dropped email: not in client web's scopes\n",
        "    1. no_write.rhai (tenant): scopes openid profile, refresh_token: false\n",
        "         took away api:write\n",
        "  decision: openid profile, no refresh token\n",
        "At the token endpoint (code exchange)",
        "issued: openid profile, no refresh token\n",
        "ID token:\n",
        "    \"is_admin\": false,\n",
        "    \"iat\": 1767225600,\n",
        "userinfo:\n",
        "introspection (asked by the client itself):\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // A refusal is explained too, and a wrong name is an error.
    let out = explain("web", "email");
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains(
            "refused: invalid_scope (none of the requested scopes is available to this client)"
        ),
        "{}",
        out.stdout
    );
    let out = explain("nope", "openid");
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no client \"nope\""), "{}", out.stderr);
}
