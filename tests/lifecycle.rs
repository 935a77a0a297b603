//! What happens to tokens after they are issued: refresh rotation and replay
//! defence, code replay, client credentials, introspection, revocation, logout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flow::{exchange, introspect, location, post_basic, Flow};
use common::{browser, client, Server};
use serde_json::Value;

use common::jwt_claims as decode;
use common::ALICE_HASH;
const CB: &str = "http://app.test/cb";

fn config(format: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    access_token_format: {format}
    scopes:
      api:read: {{ description: Read the API }}
      api:write: {{ description: Change things }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin, email: alice@example.com }}
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [{CB}]
        post_logout_redirect_uris: [http://app.test/bye]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access, api:read]
      - id: noref
        secret: noref-secret
        skip_consent: true
        redirect_uris: [{CB}]
        scopes: [openid, offline_access]
      - id: rs
        secret: rs-secret
        grant_types: [client_credentials]
        scopes: [api:read, api:write, openid]
    resource_servers:
      - {{ identifier: "https://api.test", client: rs, scopes: [api:read, api:write] }}
  - id: other
    issuer: http://127.0.0.1:{{port}}/other
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [{CB}]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, offline_access]
      - id: rs
        secret: rs-secret
        grant_types: [client_credentials]
        scopes: []
"#
    )
}

/// Sign in with offline_access and exchange the code: (access, refresh, id token).
fn offline_tokens(s: &Server) -> Value {
    let code = Flow {
        client_id: "web",
        redirect_uri: CB,
        scope: "openid email offline_access api:read",
        ..Flow::new(s, "web", CB)
    }
    .code(&browser());
    exchange(s, "demo", "web", "web-secret", &code, CB)
}

fn refresh(s: &Server, tenant: &str, token: &str) -> reqwest::blocking::Response {
    post_basic(
        s,
        &format!("/{tenant}/token"),
        "web",
        "web-secret",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
}

/// Whether `token` is active, as introspection tells the client it belongs
/// to (`web` or `rs`).
fn active(s: &Server, token: &str) -> bool {
    [("web", "web-secret"), ("rs", "rs-secret")]
        .iter()
        .any(|(id, secret)| introspect(s, "demo", id, secret, token)["active"] == true)
}

#[test]
fn refresh_rotates_and_replay_revokes_the_family() {
    for format in ["jwt", "opaque"] {
        for s in common::start_all(&config(format)) {
            let t = offline_tokens(&s);
            let first_refresh = t["refresh_token"].as_str().unwrap();
            let first_id: Value = decode(t["id_token"].as_str().unwrap());

            let r = refresh(&s, "demo", first_refresh);
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
            let t2: Value = r.json().unwrap();
            let second_refresh = t2["refresh_token"].as_str().unwrap();
            assert_ne!(second_refresh, first_refresh, "rotated");
            let second_access = t2["access_token"].as_str().unwrap();
            let id2: Value = decode(t2["id_token"].as_str().unwrap());
            assert_eq!(
                id2["auth_time"], first_id["auth_time"],
                "original auth_time"
            );
            assert!(active(&s, second_access));
            assert!(active(&s, second_refresh));
            assert!(
                !active(&s, first_refresh),
                "a used refresh token is inactive"
            );

            // The rotated token comes back: invalid_grant, and the whole family dies.
            let r = refresh(&s, "demo", first_refresh);
            assert_eq!(r.status(), 400);
            assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
            assert!(
                !active(&s, second_access),
                "successor's access token revoked ({format}, {})",
                s.db.backend
            );
            assert!(!active(&s, second_refresh));
            assert_eq!(refresh(&s, "demo", second_refresh).status(), 400);
        }
    }
}

#[test]
fn refresh_may_narrow_but_not_widen_scope() {
    let s = common::start_sqlite(&config("jwt"));
    let t = offline_tokens(&s);
    let r = post_basic(
        &s,
        "/demo/token",
        "web",
        "web-secret",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("scope", "openid api:read"),
        ],
    );
    assert_eq!(r.status(), 200);
    let t2: Value = r.json().unwrap();
    assert_eq!(t2["scope"], "openid api:read");
    let r = post_basic(
        &s,
        "/demo/token",
        "web",
        "web-secret",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t2["refresh_token"].as_str().unwrap()),
            ("scope", "openid profile"),
        ],
    );
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_scope");
}

#[test]
fn no_refresh_token_without_offline_access_or_the_grant() {
    let s = common::start_sqlite(&config("jwt"));
    let code = Flow {
        scope: "openid email",
        ..Flow::new(&s, "web", CB)
    }
    .code(&browser());
    let t = exchange(&s, "demo", "web", "web-secret", &code, CB);
    assert!(t.get("refresh_token").is_none());
    // offline_access granted, but the client lacks the refresh_token grant.
    let code = Flow {
        scope: "openid offline_access",
        ..Flow::new(&s, "noref", CB)
    }
    .code(&browser());
    let t = exchange(&s, "demo", "noref", "noref-secret", &code, CB);
    assert!(t.get("refresh_token").is_none());
}

#[test]
fn code_replay_revokes_the_tokens_it_produced() {
    for s in common::start_all(&config("jwt")) {
        let code = Flow {
            scope: "openid offline_access",
            ..Flow::new(&s, "web", CB)
        }
        .code(&browser());
        let t = exchange(&s, "demo", "web", "web-secret", &code, CB);
        let access = t["access_token"].as_str().unwrap();
        assert!(active(&s, access));
        let r = post_basic(
            &s,
            "/demo/token",
            "web",
            "web-secret",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
            ],
        );
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
        assert!(!active(&s, access), "first access token revoked");
        assert!(!active(&s, t["refresh_token"].as_str().unwrap()));
        let r = client()
            .get(s.url("/demo/userinfo"))
            .bearer_auth(access)
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
    }
}

#[test]
fn refresh_token_of_one_tenant_is_rejected_at_another() {
    let s = common::start_sqlite(&config("jwt"));
    let t = offline_tokens(&s);
    let rt = t["refresh_token"].as_str().unwrap();
    let r = refresh(&s, "other", rt);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
    let other = introspect(&s, "other", "rs", "rs-secret", rt);
    assert_eq!(other, serde_json::json!({ "active": false }));
    let other = introspect(
        &s,
        "other",
        "rs",
        "rs-secret",
        t["access_token"].as_str().unwrap(),
    );
    assert_eq!(other, serde_json::json!({ "active": false }));
    // Still good at home.
    assert_eq!(refresh(&s, "demo", rt).status(), 200);
}

#[test]
fn fifty_simultaneous_refreshes_exactly_one_wins() {
    for s in common::start_all(&config("opaque")) {
        let t = offline_tokens(&s);
        let rt = t["refresh_token"].as_str().unwrap().to_string();
        let url = s.url("/demo/token");
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (url, rt) = (url.clone(), rt.clone());
                std::thread::spawn(move || {
                    let r = client()
                        .post(url)
                        .basic_auth("web", Some("web-secret"))
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", rt.as_str()),
                        ])
                        .send()
                        .unwrap();
                    let status = r.status().as_u16();
                    (status, r.json::<Value>().unwrap())
                })
            })
            .collect();
        let results: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(wins, 1, "{}: {results:?}", s.db.backend);
        for (status, body) in &results {
            if *status != 200 {
                assert_eq!(
                    (*status, body["error"].as_str()),
                    (400, Some("invalid_grant"))
                );
            }
        }
    }
}

#[test]
fn client_credentials_token_has_no_user_and_no_oidc() {
    for format in ["jwt", "opaque"] {
        let s = common::start_sqlite(&config(format));
        let r = post_basic(
            &s,
            "/demo/token",
            "rs",
            "rs-secret",
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api:read openid"),
            ],
        );
        assert_eq!(r.status(), 200);
        let t: Value = r.json().unwrap();
        assert_eq!(t["scope"], "api:read");
        assert!(t.get("id_token").is_none());
        assert!(t.get("refresh_token").is_none());
        let info = introspect(
            &s,
            "demo",
            "rs",
            "rs-secret",
            t["access_token"].as_str().unwrap(),
        );
        assert_eq!(info["active"], true);
        assert_eq!(info["sub"], "rs");
        assert_eq!(info["client_id"], "rs");
        assert!(info.get("username").is_none());
        // A client without the grant may not use it.
        let r = post_basic(
            &s,
            "/demo/token",
            "web",
            "web-secret",
            &[("grant_type", "client_credentials")],
        );
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().unwrap()["error"], "unauthorized_client");
    }
}

#[test]
fn client_credentials_tokens_can_be_revoked_by_their_client_only() {
    for format in ["jwt", "opaque"] {
        for s in common::start_all(&config(format)) {
            let issue = || {
                let r = post_basic(
                    &s,
                    "/demo/token",
                    "rs",
                    "rs-secret",
                    &[("grant_type", "client_credentials")],
                );
                assert_eq!(r.status(), 200);
                let t: Value = r.json().unwrap();
                t["access_token"].as_str().unwrap().to_string()
            };
            let (one, two) = (issue(), issue());
            let revoke = |id: &str, secret: &str| {
                let r = post_basic(&s, "/demo/revoke", id, secret, &[("token", one.as_str())]);
                assert_eq!(r.status(), 200);
            };
            revoke("web", "web-secret");
            assert!(
                active(&s, &one),
                "another client cannot revoke it ({format})"
            );
            revoke("rs", "rs-secret");
            assert!(!active(&s, &one), "its client can ({format})");
            revoke("rs", "rs-secret");
            assert!(
                !active(&s, &one),
                "a second revocation changes nothing ({format})"
            );
            assert!(active(&s, &two), "other tokens stay active ({format})");
        }
    }
}

#[test]
fn introspection_requires_client_auth_and_hides_unknown_tokens() {
    let s = common::start_sqlite(&config("jwt"));
    let t = offline_tokens(&s);
    let info = introspect(
        &s,
        "demo",
        "rs",
        "rs-secret",
        t["access_token"].as_str().unwrap(),
    );
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "web");
    assert_eq!(info["username"], "alice");
    assert_eq!(info["scope"], "openid email offline_access api:read");
    let refresh_token = t["refresh_token"].as_str().unwrap();
    let info = introspect(&s, "demo", "web", "web-secret", refresh_token);
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    // A refresh token is its client's business only, even for a resource server.
    let info = introspect(&s, "demo", "rs", "rs-secret", refresh_token);
    assert_eq!(info, serde_json::json!({ "active": false }));
    for junk in ["nope", "a.b.c", t["id_token"].as_str().unwrap()] {
        assert_eq!(
            introspect(&s, "demo", "rs", "rs-secret", junk),
            serde_json::json!({ "active": false })
        );
    }
    let r = post_basic(&s, "/demo/introspect", "rs", "wrong", &[("token", "x")]);
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_client");
}

#[test]
fn revoking_a_refresh_token_revokes_its_family() {
    let s = common::start_sqlite(&config("jwt"));
    let t = offline_tokens(&s);
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let r = post_basic(
        &s,
        "/demo/revoke",
        "web",
        "web-secret",
        &[("token", rt), ("token_type_hint", "refresh_token")],
    );
    assert_eq!(r.status(), 200);
    assert!(!active(&s, rt));
    assert!(!active(&s, access), "family access token revoked");
    assert_eq!(refresh(&s, "demo", rt).status(), 400);
    // Unknown tokens are fine.
    let r = post_basic(
        &s,
        "/demo/revoke",
        "web",
        "web-secret",
        &[("token", "never-issued")],
    );
    assert_eq!(r.status(), 200);
}

#[test]
fn revocation_by_another_client_has_no_effect() {
    let s = common::start_sqlite(&config("opaque"));
    let t = offline_tokens(&s);
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    for token in [access, rt] {
        let r = post_basic(&s, "/demo/revoke", "rs", "rs-secret", &[("token", token)]);
        assert_eq!(r.status(), 200);
    }
    assert!(active(&s, access));
    assert!(active(&s, rt));
    // The owner can.
    let r = post_basic(
        &s,
        "/demo/revoke",
        "web",
        "web-secret",
        &[("token", access)],
    );
    assert_eq!(r.status(), 200);
    assert!(!active(&s, access));
    assert!(
        active(&s, rt),
        "revoking an access token leaves the refresh token"
    );
}

#[test]
fn logout_ends_the_session_and_the_next_authorize_asks_to_sign_in() {
    let s = common::start_sqlite(&config("jwt"));
    let b = browser();
    let flow = Flow {
        scope: "openid",
        ..Flow::new(&s, "web", CB)
    };
    let code = flow.code(&b);
    let t = exchange(&s, "demo", "web", "web-secret", &code, CB);
    // SSO: straight back with a code.
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert!(location(&r).starts_with(CB));

    // An unregistered post-logout URI is refused and ends nothing.
    let r = b
        .get(s.url("/demo/logout"))
        .query(&[
            ("id_token_hint", t["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", "http://evil.test/"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert!(location(&r).starts_with(CB), "session still alive");

    let r = b
        .get(s.url("/demo/logout"))
        .query(&[
            ("id_token_hint", t["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", "http://app.test/bye"),
            ("state", "bye-1"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "http://app.test/bye?state=bye-1");

    let r = b.get(flow.authorize_url()).send().unwrap();
    assert!(
        location(&r).contains("/demo/login?rid="),
        "login form again"
    );

    // Without a redirect: a signed-out page.
    let r = b
        .post(s.url("/demo/logout"))
        .form(&[("client_id", "web")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[test]
fn discovery_lists_what_works() {
    let s = common::start_sqlite(&config("jwt"));
    let d: Value = client()
        .get(s.url("/demo/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none"
        ])
    );
    for ep in [
        "introspection_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
        "userinfo_endpoint",
    ] {
        let url = d[ep].as_str().unwrap();
        // Every advertised endpoint exists: a bodiless POST gets an OAuth error, never a 404.
        let r = client().post(url).send().unwrap();
        assert_ne!(r.status(), 404, "{ep}");
    }
}

#[test]
fn a_reload_that_changes_a_restart_only_setting_is_refused_by_name() {
    let s = common::start_sqlite(&config("jwt"));
    let path = s.config_path();
    let served = std::fs::read_to_string(&path).unwrap();
    let cc = |id: &str, secret: &str| {
        client()
            .post(s.url("/demo/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap()
            .status()
    };
    let new_client = "    clients:\n      - { id: late, secret: late-secret, grant_types: [client_credentials], scopes: [api:read] }\n";
    let with_client = served.replacen("    clients:\n", new_client, 1);

    // A new listen address and a new database URL, with a new client in the same edit.
    let port = common::free_port();
    let moved = with_client
        .replacen(
            &format!("127.0.0.1:{}\"", s.port),
            &format!("127.0.0.1:{port}\""),
            1,
        )
        .replacen("sesame.db", "elsewhere.db", 1);
    assert_ne!(
        moved, with_client,
        "the edit changes listen and the database"
    );
    std::fs::write(&path, &moved).unwrap();
    s.hup();
    let logs = s.wait_for_log("database.url: changing it needs a restart");
    assert!(
        logs.contains("server.listen: changing it needs a restart"),
        "{logs}"
    );
    assert_eq!(
        cc("late", "late-secret"),
        401,
        "nothing of the edit was applied"
    );
    assert_eq!(
        cc("rs", "rs-secret"),
        200,
        "the old configuration still serves"
    );

    // The same edit without the restart-only changes goes through.
    std::fs::write(&path, &with_client).unwrap();
    s.hup();
    s.wait_for_log("configuration reloaded");
    assert_eq!(cc("late", "late-secret"), 200);
}
