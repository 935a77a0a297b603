//! The authorization code flow over real HTTP: a browser signs in at sesame
//! and applications exchange the code at the token endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::flow::{field, location, query_param, userinfo, Flow};
use common::{browser, client, Server};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::flow::{CHALLENGE, VERIFIER};
use common::ALICE_HASH;

fn config() -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    lifetimes: {{ authorization_code: 2s }}
    scopes:
      api:read: {{ description: Read the API }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin, email: alice@example.com, email_verified: true }}
    clients:
      - id: web
        secret: web-secret
        name: Web App
        redirect_uris: [http://app.test/cb, http://app.test/other]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access, api:read]
      - id: poster
        secret: poster-secret
        token_endpoint_auth_method: client_secret_post
        redirect_uris: [http://poster.test/cb]
        scopes: [openid, email]
      - id: spa
        redirect_uris: [http://spa.test/cb]
        scopes: [openid, profile]
      - id: trusted
        secret: trusted-secret
        skip_consent: true
        redirect_uris: [http://trusted.test/cb]
        scopes: [openid, profile]
  - id: other
    issuer: http://127.0.0.1:{{port}}/other
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: web-secret
        redirect_uris: [http://app.test/cb]
        scopes: [openid]
"#
    )
}

fn servers() -> Vec<common::Running> {
    common::start_all(&config())
}

fn server() -> common::Running {
    common::start_sqlite(&config())
}

fn token_basic(
    s: &Server,
    tenant: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> reqwest::blocking::Response {
    client()
        .post(s.url(&format!("/{tenant}/token")))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// Verify an RS256 JWS with openssl directly from the JWKS's n and e —
/// independent of sesame's own JOSE code.
fn verify_rs256(s: &Server, tenant: &str, jwt: &str) -> Value {
    let jwks: Value = client()
        .get(s.url(&format!("/{tenant}/jwks")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    assert_eq!(header["alg"], "RS256");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in jwks");
    let n = BigNum::from_slice(&b64(key["n"].as_str().unwrap())).unwrap();
    let e = BigNum::from_slice(&b64(key["e"].as_str().unwrap())).unwrap();
    let pkey = PKey::from_rsa(Rsa::from_public_components(n, e).unwrap()).unwrap();
    let mut v = Verifier::new(MessageDigest::sha256(), &pkey).unwrap();
    v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    assert!(v.verify(&b64(parts[2])).unwrap(), "signature must verify");
    serde_json::from_slice(&b64(parts[1])).unwrap()
}

fn at_hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

#[test]
fn browser_login_consent_code_token_userinfo() {
    for s in servers() {
        let b = browser();
        let flow = Flow::new(&s, "web", "http://app.test/cb");
        let url = flow.run(&b);
        assert!(url.starts_with("http://app.test/cb?"), "{url}");
        assert_eq!(query_param(&url, "state").as_deref(), Some("st-123"));
        let issuer = s.url("/demo");
        assert_eq!(query_param(&url, "iss").as_deref(), Some(issuer.as_str()));
        let code = query_param(&url, "code").unwrap();

        let r = token_basic(
            &s,
            "demo",
            "web",
            "web-secret",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://app.test/cb"),
            ],
        );
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
        assert_eq!(r.headers()["pragma"], "no-cache");
        let t: Value = r.json().unwrap();
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["scope"], "openid profile email");
        assert!(t["expires_in"].as_u64().unwrap() > 0);
        assert!(
            t.get("refresh_token").is_none(),
            "no offline_access, no refresh token"
        );
        let access = t["access_token"].as_str().unwrap();

        let claims = verify_rs256(&s, "demo", t["id_token"].as_str().unwrap());
        assert_eq!(claims["iss"], issuer);
        assert_eq!(claims["aud"], "web");
        assert_eq!(claims["azp"], "web");
        assert_eq!(claims["nonce"], "n-456");
        assert_eq!(claims["at_hash"], at_hash(access));
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["name"], "Alice Martin");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(claims["exp"].as_i64().unwrap() > now);
        assert!((claims["auth_time"].as_i64().unwrap() - now).abs() < 120);

        // The access token is an RFC 9068 JWT.
        let at = verify_rs256(&s, "demo", access);
        assert_eq!(at["client_id"], "web");
        assert_eq!(at["sub"], claims["sub"]);
        let header: Value =
            serde_json::from_slice(&b64(access.split('.').next().unwrap())).unwrap();
        assert_eq!(header["typ"], "at+jwt");

        let info = userinfo(&s, "demo", access);
        assert_eq!(info["sub"], claims["sub"]);
        assert_eq!(info["email"], "alice@example.com");
        assert_eq!(info["email_verified"], true);

        // Same browser, second authorization: SSO and remembered consent, straight to the code.
        let r = b.get(flow.authorize_url()).send().unwrap();
        assert_eq!(r.status(), 303);
        let again = location(&r);
        assert!(again.starts_with("http://app.test/cb?code="), "{again}");
    }
}

#[test]
fn client_secret_post_client_gets_tokens() {
    let s = server();
    let code = Flow {
        scope: "openid email",
        ..Flow::new(&s, "poster", "http://poster.test/cb")
    }
    .code(&browser());
    let r = client()
        .post(s.url("/demo/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://poster.test/cb"),
            ("client_id", "poster"),
            ("client_secret", "poster-secret"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    assert!(t["id_token"].is_string());
}

#[test]
fn public_client_with_pkce_gets_tokens() {
    let s = server();
    let mut flow = Flow::new(&s, "spa", "http://spa.test/cb");
    flow.extra.push(("code_challenge", CHALLENGE));
    flow.extra.push(("code_challenge_method", "S256"));
    let code = flow.code(&browser());
    let r = client()
        .post(s.url("/demo/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://spa.test/cb"),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    verify_rs256(&s, "demo", t["id_token"].as_str().unwrap());
}

#[test]
fn public_client_without_pkce_is_refused() {
    let s = server();
    let r = browser()
        .get(Flow::new(&s, "spa", "http://spa.test/cb").authorize_url())
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let url = location(&r);
    assert!(url.starts_with("http://spa.test/cb?"));
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&url, "state").as_deref(), Some("st-123"));
}

#[test]
fn wrong_or_missing_pkce_verifier_is_invalid_grant() {
    let s = server();
    for verifier in [Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"), None] {
        let mut flow = Flow::new(&s, "spa", "http://spa.test/cb");
        flow.extra.push(("code_challenge", CHALLENGE));
        flow.extra.push(("code_challenge_method", "S256"));
        let code = flow.code(&browser());
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://spa.test/cb"),
            ("client_id", "spa"),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let r = client()
            .post(s.url("/demo/token"))
            .form(&form)
            .send()
            .unwrap();
        assert_eq!(r.status(), 400);
        let e: Value = r.json().unwrap();
        assert_eq!(e["error"], "invalid_grant");
    }
}

#[test]
fn wrong_secret_is_invalid_client_with_www_authenticate() {
    let s = server();
    let r = token_basic(
        &s,
        "demo",
        "web",
        "nope",
        &[("grant_type", "authorization_code"), ("code", "x")],
    );
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"], "invalid_client");
    assert!(e["error_description"].is_string());
    // An unknown client looks the same.
    let r = token_basic(
        &s,
        "demo",
        "ghost",
        "nope",
        &[("grant_type", "authorization_code"), ("code", "x")],
    );
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_client");
}

#[test]
fn wrong_method_on_token_endpoint_is_405_json() {
    let s = server();
    let r = client().get(s.url("/demo/token")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"], "method_not_allowed");
}

#[test]
fn wrong_redirect_uri_at_token_is_invalid_grant() {
    let s = server();
    let code = Flow::new(&s, "web", "http://app.test/cb").code(&browser());
    let r = token_basic(
        &s,
        "demo",
        "web",
        "web-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/other"),
        ],
    );
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
}

#[test]
fn expired_code_is_invalid_grant() {
    let s = server();
    let code = Flow::new(&s, "web", "http://app.test/cb").code(&browser());
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let r = token_basic(
        &s,
        "demo",
        "web",
        "web-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/cb"),
        ],
    );
    assert_eq!(r.status(), 400);
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert!(e["error_description"].as_str().unwrap().contains("expired"));
}

#[test]
fn code_of_another_client_is_invalid_grant() {
    let s = server();
    let code = Flow::new(&s, "trusted", "http://trusted.test/cb").code(&browser());
    let r = token_basic(
        &s,
        "demo",
        "web",
        "web-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://trusted.test/cb"),
        ],
    );
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
    // Another client cannot spend the code: its own client still can.
    let r = token_basic(
        &s,
        "demo",
        "trusted",
        "trusted-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://trusted.test/cb"),
        ],
    );
    assert_eq!(r.status(), 200);
}

#[test]
fn code_of_another_tenant_is_invalid_grant() {
    let s = server();
    let code = Flow::new(&s, "web", "http://app.test/cb").code(&browser());
    // Tenant "other" has a client with the same id, secret and redirect URI.
    let r = token_basic(
        &s,
        "other",
        "web",
        "web-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/cb"),
        ],
    );
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
}

#[test]
fn unregistered_redirect_uri_shows_an_error_page_not_a_redirect() {
    let s = server();
    let r = browser()
        .get(Flow::new(&s, "web", "http://evil.test/cb").authorize_url())
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.text().unwrap().contains("redirect_uri"));
}

#[test]
fn prompt_none_without_session_is_login_required() {
    let s = server();
    let mut flow = Flow::new(&s, "web", "http://app.test/cb");
    flow.extra.push(("prompt", "none"));
    let r = browser().get(flow.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 303);
    let url = location(&r);
    assert!(url.starts_with("http://app.test/cb?"));
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(query_param(&url, "state").as_deref(), Some("st-123"));
    assert!(query_param(&url, "iss").is_some());
}

#[test]
fn login_post_without_csrf_token_is_refused() {
    let s = server();
    let b = browser();
    let r = b
        .get(Flow::new(&s, "web", "http://app.test/cb").authorize_url())
        .send()
        .unwrap();
    let page = b.get(location(&r)).send().unwrap().text().unwrap();
    let r = b
        .post(s.url("/demo/login"))
        .form(&[
            ("rid", field(&page, "rid")),
            ("username", "alice".into()),
            ("password", "wonderland".into()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no session without CSRF token"
    );
    assert!(r.text().unwrap().contains("CSRF"));
}

#[test]
fn wrong_password_shows_the_form_again() {
    let s = server();
    let b = browser();
    let r = b
        .get(Flow::new(&s, "web", "http://app.test/cb").authorize_url())
        .send()
        .unwrap();
    let page = b.get(location(&r)).send().unwrap().text().unwrap();
    for user in ["alice", "mallory"] {
        let r = b
            .post(s.url("/demo/login"))
            .form(&[
                ("rid", field(&page, "rid")),
                ("csrf", field(&page, "csrf")),
                ("username", user.into()),
                ("password", "guess".into()),
            ])
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
        let html = r.text().unwrap();
        assert!(html.contains("Incorrect username or password"));
        assert!(html.contains("name=\"password\""));
    }
}

#[test]
fn offline_access_yields_a_refresh_token() {
    let s = server();
    let code = Flow {
        scope: "openid offline_access",
        ..Flow::new(&s, "web", "http://app.test/cb")
    }
    .code(&browser());
    let r = token_basic(
        &s,
        "demo",
        "web",
        "web-secret",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/cb"),
        ],
    );
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    assert!(t["refresh_token"].is_string());
    assert_eq!(t["scope"], "openid offline_access");
}

#[test]
fn consent_deny_redirects_access_denied() {
    let s = server();
    let b = browser();
    let flow = Flow::new(&s, "web", "http://app.test/cb");
    let r = b.get(flow.authorize_url()).send().unwrap();
    let page = b.get(location(&r)).send().unwrap().text().unwrap();
    let r = b
        .post(s.url("/demo/login"))
        .form(&[
            ("rid", field(&page, "rid")),
            ("csrf", field(&page, "csrf")),
            ("username", "alice".into()),
            ("password", "wonderland".into()),
        ])
        .send()
        .unwrap();
    let r = common::flow::signed_in(&b, r);
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert!(
        html.contains("Read") || html.contains("email"),
        "consent lists scopes"
    );
    let r = b
        .post(s.url("/demo/consent"))
        .form(&[
            ("rid", field(&html, "rid")),
            ("csrf", field(&html, "csrf")),
            ("decision", "deny".into()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let url = location(&r);
    assert_eq!(query_param(&url, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&url, "state").as_deref(), Some("st-123"));
}

#[test]
fn prompt_login_shows_the_form_again_despite_a_session() {
    let s = server();
    let b = browser();
    Flow::new(&s, "trusted", "http://trusted.test/cb").code(&b);
    let mut flow = Flow::new(&s, "trusted", "http://trusted.test/cb");
    flow.extra.push(("prompt", "login"));
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert!(location(&r).contains("/demo/login?rid="));
    let mut flow = Flow::new(&s, "trusted", "http://trusted.test/cb");
    flow.extra.push(("max_age", "0"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert!(location(&r).contains("/demo/login?rid="));
}

#[test]
fn userinfo_rejects_bad_tokens_with_www_authenticate() {
    let s = server();
    for token in ["garbage", "a.b.c"] {
        let r = client()
            .get(s.url("/demo/userinfo"))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
}

#[test]
fn each_client_gets_id_tokens_in_the_algorithm_it_chose() {
    const CB: &str = "http://app.test/cb";
    let yaml = format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    signing: {{ alg: ES256 }}
    users:
      - {{ username: alice, password_hash: "{hash}" }}
    clients:
      - {{ id: modern, secret: s, skip_consent: true, redirect_uris: ["{CB}"], scopes: [openid] }}
      - {{ id: legacy, secret: s, skip_consent: true, redirect_uris: ["{CB}"], scopes: [openid], id_token_signed_response_alg: RS256 }}
"#,
        hash = common::ALICE_HASH
    );
    let running = common::start_sqlite(&yaml);
    let s = &running.server;
    let id_token = |client_id: &str| {
        let code = Flow {
            scope: "openid",
            ..Flow::new(s, client_id, CB)
        }
        .code(&browser());
        let t = common::flow::exchange(s, "demo", client_id, "s", &code, CB);
        t["id_token"].as_str().unwrap().to_string()
    };
    let header = |jwt: &str| -> Value {
        serde_json::from_slice(&b64(jwt.split('.').next().unwrap())).unwrap()
    };
    let modern = id_token("modern");
    assert_eq!(header(&modern)["alg"], "ES256");
    let legacy = id_token("legacy");
    let claims = verify_rs256(s, "demo", &legacy);
    assert_eq!(claims["aud"], "legacy");

    // An algorithm the tenant has no key for is a configuration error, named.
    let bad = yaml.replace(
        "id_token_signed_response_alg: RS256",
        "id_token_signed_response_alg: PS256",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        bad.replace("{port}", "9")
            .replace("{db}", "sqlite::memory:"),
    )
    .unwrap();
    let ran = common::sesame(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(ran.code, Some(1));
    let said = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        said.contains("tenants[0].clients[1].id_token_signed_response_alg")
            && said.contains("ES256 or RS256, not PS256"),
        "{said}"
    );
}
