//! `sesame revoke` against a running server's database, on every backend:
//! by user and by configuration generation it ends exactly the grants it
//! names (introspection, refresh and userinfo refuse them at once) and
//! nothing else; a dry run only counts; `--sessions` signs the user out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flow::{exchange, introspect, location, post_basic, Flow};
use common::{browser, client, sesame, Server, ALICE_HASH};
use serde_json::Value;

const CB: &str = "http://app.test/cb";

fn config() -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    # Opaque: every token is recorded (an unrecorded client_credentials JWT
    # is only seen revoked at expiry; see README).
    access_token_format: opaque
    scopes: {{ api: {{ description: The API }} }}
    users:
      - {{ username: alice, password_hash: "{ALICE_HASH}" }}
      - {{ username: bob, password_hash: "{ALICE_HASH}" }}
    clients:
      - {{ id: web, secret: web-secret, skip_consent: true, redirect_uris: ["{CB}"], grant_types: [authorization_code, refresh_token], scopes: [openid, offline_access] }}
      - {{ id: other, secret: other-secret, skip_consent: true, redirect_uris: ["{CB}"], grant_types: [authorization_code, refresh_token], scopes: [openid, offline_access] }}
      - {{ id: svc, secret: svc-secret, grant_types: [client_credentials], scopes: [api] }}
"#
    )
}

/// A grant's tokens and who holds them.
struct Grant {
    client: &'static str,
    secret: &'static str,
    access: String,
    refresh: Option<String>,
}

fn code_grant(s: &Server, client: &'static str, secret: &'static str, user: &str) -> Grant {
    let code = Flow {
        scope: "openid offline_access",
        username: user,
        ..Flow::new(s, client, CB)
    }
    .code(&browser());
    let t = exchange(s, "demo", client, secret, &code, CB);
    Grant {
        client,
        secret,
        access: t["access_token"].as_str().unwrap().to_string(),
        refresh: t["refresh_token"].as_str().map(str::to_string),
    }
}

fn machine_grant(s: &Server) -> Grant {
    let r = post_basic(
        s,
        "/demo/token",
        "svc",
        "svc-secret",
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    Grant {
        client: "svc",
        secret: "svc-secret",
        access: t["access_token"].as_str().unwrap().to_string(),
        refresh: None,
    }
}

fn active(s: &Server, g: &Grant) -> bool {
    introspect(s, "demo", g.client, g.secret, &g.access)["active"] == true
}

/// Whether the grant's refresh token still refreshes (it then rotates).
fn refreshes(s: &Server, g: &mut Grant) -> bool {
    let Some(token) = g.refresh.clone() else {
        return false;
    };
    let r = post_basic(
        s,
        "/demo/token",
        g.client,
        g.secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &token)],
    );
    if r.status() != 200 {
        return false;
    }
    let t: Value = r.json().unwrap();
    g.access = t["access_token"].as_str().unwrap().to_string();
    g.refresh = t["refresh_token"].as_str().map(str::to_string);
    true
}

fn revoke(s: &Server, args: &[&str]) -> String {
    let cfg = s.config_path();
    let mut all = vec!["revoke", "-c", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    let ran = sesame(&all);
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    ran.stdout
}

fn generation(s: &Server) -> String {
    let r: Value = client()
        .get(s.url("/readyz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    r["generation"].as_str().unwrap().to_string()
}

/// Edit the served config (`from` → `to`), SIGHUP, and wait for the new
/// generation to serve.
fn reload_with(s: &Server, from: &str, to: &str) {
    let old = generation(s);
    let path = s.config_path();
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, yaml.replace(from, to)).unwrap();
    s.hup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while generation(s) == old {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload never came"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn revoke_by_user_and_by_generation_ends_exactly_those_grants() {
    for s in common::start_all(&config()) {
        let s = &s.server;
        let mut alice_web = code_grant(s, "web", "web-secret", "alice");
        let mut alice_other = code_grant(s, "other", "other-secret", "alice");
        let mut bob_web = code_grant(s, "web", "web-secret", "bob");
        let machine = machine_grant(s);
        let old = generation(s);

        // A dry run counts alice's two grants and ends nothing.
        let said = revoke(s, &["--user", "alice", "--dry-run"]);
        assert!(said.starts_with("would end 2 grant(s)"), "{said}");
        assert!(active(s, &alice_web) && active(s, &alice_other));

        let said = revoke(s, &["--user", "alice"]);
        assert!(
            said.starts_with("ended 2 grant(s): 0 code(s), 2 refresh token(s), 2 access token(s)"),
            "{said}"
        );
        assert!(!active(s, &alice_web) && !active(s, &alice_other));
        assert!(
            !refreshes(s, &mut alice_web),
            "alice's refresh token is ended"
        );
        assert!(!refreshes(s, &mut alice_other));
        assert!(active(s, &bob_web) && active(s, &machine), "nobody else");

        // A new generation; bob signs in at the other client under it.
        reload_with(s, "scopes: [api] }", "scopes: [api], name: Service }");
        let bob_other = code_grant(s, "other", "other-secret", "bob");
        // Introspection tells a token's own client which generation issued it.
        let seen =
            |g: &Grant| introspect(s, "demo", g.client, g.secret, &g.access)["generation"].clone();
        assert_eq!(seen(&bob_web), old.as_str());
        assert_eq!(seen(&bob_other), generation(s).as_str());

        // Everything the old generation issued (and only that) ends.
        let said = revoke(s, &["--generation", &old]);
        assert!(said.starts_with("ended 2 grant(s)"), "{said}");
        assert!(!active(s, &bob_web) && !active(s, &machine));
        assert!(!refreshes(s, &mut bob_web));
        assert!(active(s, &bob_other), "the new generation's grant lives");
        assert!(revoke(s, &["--generation", &old]).starts_with("ended 0 grant(s)"));
    }
}

#[test]
fn revoke_sessions_signs_the_user_out_of_the_browser() {
    let running = common::start_sqlite(&config());
    let s = &running.server;
    let b = browser();
    let flow = Flow {
        scope: "openid",
        username: "bob",
        ..Flow::new(s, "web", CB)
    };
    let _ = flow.code(&b);
    // Signed in: the next request goes straight back with a code.
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert!(location(&r).starts_with(CB));
    let said = revoke(s, &["--user", "bob", "--sessions"]);
    assert!(said.ends_with("1 session(s)\n"), "{said}");
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert!(
        location(&r).contains("/login?"),
        "signed out: {}",
        location(&r)
    );
    // Naming nothing is refused, and an unknown client is named.
    let cfg = s.config_path();
    let ran = sesame(&["revoke", "-c", cfg.to_str().unwrap()]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("--all"), "{}", ran.stderr);
    let ran = sesame(&["revoke", "-c", cfg.to_str().unwrap(), "--client", "nope"]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("no client nope"), "{}", ran.stderr);
}

/// Client-credentials JWT access tokens are not recorded when issued: a
/// revocation by client or by generation still ends them (a marker every
/// node reads within a second), and only them.
#[test]
fn revoke_reaches_unrecorded_client_credentials_jwts() {
    let yaml = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    access_token_format: jwt
    scopes: { api: { description: The API } }
    clients:
      - { id: svc, secret: svc-secret, grant_types: [client_credentials], scopes: [api] }
      - { id: batch, secret: batch-secret, grant_types: [client_credentials], scopes: [api] }
"#;
    let token = |s: &Server, client: &'static str, secret: &'static str| {
        let r = post_basic(
            s,
            "/demo/token",
            client,
            secret,
            &[("grant_type", "client_credentials")],
        );
        assert_eq!(r.status(), 200);
        let t: Value = r.json().unwrap();
        let access = t["access_token"].as_str().unwrap().to_string();
        assert_eq!(access.matches('.').count(), 2, "a JWT");
        Grant {
            client,
            secret,
            access,
            refresh: None,
        }
    };
    // Ended within the markers' freshness; polled, never timed.
    let ends = |s: &Server, g: &Grant| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while active(s, g) {
            assert!(std::time::Instant::now() < deadline, "still active");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    for running in common::start_all(yaml) {
        let s = &running.server;
        let svc = token(s, "svc", "svc-secret");
        let batch = token(s, "batch", "batch-secret");
        assert!(active(s, &svc) && active(s, &batch));
        let old = generation(s);

        let said = revoke(s, &["--client", "svc"]);
        assert!(
            said.contains("also ended every unrecorded client_credentials JWT access token of client svc issued until now"),
            "{said}"
        );
        ends(s, &svc);
        assert!(
            active(s, &batch),
            "{}: another client's token lives",
            running.db.backend
        );
        // Issued after the revocation (the next second: markers count in
        // seconds, as iat does), a token of svc is good.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let later = token(s, "svc", "svc-secret");
        assert!(active(s, &later));

        // A new generation; batch gets a token under it.
        reload_with(s, "scopes: [api] }\n", "scopes: [api], name: Batch }\n");
        let fresh = token(s, "batch", "batch-secret");
        revoke(s, &["--generation", &old]);
        ends(s, &batch);
        ends(s, &later);
        assert!(active(s, &fresh), "the new generation's token lives");
    }
}
