//! Findings of a security audit, each closed and kept closed: over real HTTP
//! against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::flow::{exchange, field, introspect, location, query_param, Flow};
use common::{browser, client, start_with_scripts, Server, ALICE_HASH};
use serde_json::Value;

const CB: &str = "http://app.test/cb";

fn config() -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
# Long enough that, on a loaded machine, a request needing no script is
# answered while the slow ones still run (no timing is asserted).
plugin_time_limit: 1500ms
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    scopes: {{ api: {{ description: The API }} }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin, email: alice@example.com }}
      - username: bob
        password_hash: "{ALICE_HASH}"
    clients:
      - id: asks
        secret: asks-secret
        redirect_uris: [{CB}]
        scopes: [openid, profile]
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [{CB}]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access]
      - id: rs
        secret: rs-secret
        grant_types: [client_credentials]
        scopes: [api]
      - id: slow
        secret: slow-secret
        grant_types: [client_credentials]
        scopes: [api]
        plugins: [slow.rhai]
      - id: denier
        secret: denier-secret
        grant_types: [client_credentials]
        scopes: [api]
        plugins: [deny.rhai]
  - id: secure
    issuer: https://secure.test
    clients:
      - id: app
        secret: app-secret
        redirect_uris: [https://app.test/cb]
        scopes: [openid]
"#
    )
}

/// Stays well under the operation limit, but each operation of its loop
/// sorts a copy of 4,000 strings: it runs for many seconds unless the
/// wall-clock limit stops it.
const SLOW: &str = r#"
fn access_token_claims(ctx) {
    print("slow script started");
    let a = [];
    for i in 0..4000 { a.push(`${i * 7919 % 4001}`); }
    let n = 0;
    loop {
        let b = a;
        b.sort();
        n += 1;
    }
    #{ n: n }
}
"#;

const DENY: &str = r#"
fn access_token_claims(ctx) {
    deny("not in a claims hook")
}
"#;

fn start() -> common::Running {
    start_with_scripts(&config(), &[("slow.rhai", SLOW), ("deny.rhai", DENY)])
}

fn client_credentials(s: &Server, id: &str, secret: &str) -> reqwest::blocking::Response {
    client()
        .post(s.url("/demo/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap()
}

#[test]
fn a_jwt_access_tokens_jti_is_no_bearer_token() {
    let s = start();
    let code = Flow::new(&s, "web", CB).code(&browser());
    let t = exchange(&s, "demo", "web", "web-secret", &code, CB);
    let access = t["access_token"].as_str().unwrap();
    let jti = common::jwt_claims(access)["jti"]
        .as_str()
        .unwrap()
        .to_string();

    let userinfo = |token: &str| {
        client()
            .get(s.url("/demo/userinfo"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(userinfo(access), 200);
    assert_eq!(
        userinfo(&jti),
        401,
        "a jti is an identifier, not a credential"
    );
    assert_eq!(
        introspect(&s, "demo", "web", "web-secret", access)["active"],
        true
    );
    assert_eq!(
        introspect(&s, "demo", "web", "web-secret", &jti)["active"],
        false
    );
    // Revoking "the jti" as if it were an opaque token does nothing either.
    let r = client()
        .post(s.url("/demo/revoke"))
        .basic_auth("web", Some("web-secret"))
        .form(&[("token", jti.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(userinfo(access), 200);
}

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E`.
fn fits_the_charset(s: &str) -> bool {
    s.chars()
        .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
}

#[test]
fn errors_never_echo_the_request() {
    let s = start();
    let evil = "<script>alert(1)</script>";
    let flow = Flow {
        extra: vec![("state", "st"), ("prompt", evil)],
        ..Flow::new(&s, "web", CB)
    };
    let r = browser().get(flow.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 303);
    let url = location(&r);
    assert!(url.starts_with(CB), "{url}");
    assert_eq!(query_param(&url, "error").unwrap(), "invalid_request");
    let description = query_param(&url, "error_description").unwrap();
    assert!(!description.contains("script"), "{description}");
    assert!(fits_the_charset(&description), "{description}");

    // A repeated parameter of the attacker's naming is not named back.
    let r = client()
        .post(s.url("/demo/token"))
        .basic_auth("rs", Some("rs-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&%3Cb%3Ex%22=1&%3Cb%3Ex%22=2")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    let description = v["error_description"].as_str().unwrap();
    assert_eq!(description, "a parameter is repeated");
}

#[test]
fn http2_is_not_spoken() {
    let s = start();
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // h2c with prior knowledge: the connection preface, then an empty SETTINGS frame.
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    // An HTTP/2 server would answer with its own SETTINGS frame (type 4).
    let h2_settings = got.len() >= 9 && got[3] == 0x04;
    assert!(!h2_settings, "the server spoke HTTP/2: {got:?}");
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn a_script_past_its_time_limit_answers_server_error_and_others_are_served_meanwhile() {
    let s = start();
    let finished = Arc::new(AtomicUsize::new(0));
    let server = Arc::new(s);
    // More slow calls than the server has async workers (two cores).
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (server, finished) = (server.clone(), finished.clone());
            std::thread::spawn(move || {
                let r = client_credentials(&server, "slow", "slow-secret");
                finished.fetch_add(1, Ordering::SeqCst);
                let status = r.status().as_u16();
                let v: Value = r.json().unwrap();
                (status, v)
            })
        })
        .collect();
    // Once scripts are running, a request that needs no script is answered
    // before any of them finishes: scripts don't hold the async workers.
    server.wait_for_log("slow script started");
    let health = client().get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status(), 200);
    let token = client_credentials(&server, "rs", "rs-secret");
    assert_eq!(token.status(), 200);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "a request started after the slow scripts was answered first"
    );
    for c in calls {
        let (status, v) = c.join().unwrap();
        assert_eq!(status, 500, "{v}");
        assert_eq!(v["error"], "server_error");
    }
    let logs = server.wait_for_log("time limit");
    assert!(logs.contains("slow.rhai"), "{logs}");
}

#[test]
fn deny_in_a_claims_hook_is_logged_for_what_it_is() {
    let s = start();
    let r = client_credentials(&s, "denier", "denier-secret");
    assert_eq!(r.status(), 500);
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "server_error");
    let logs = s.wait_for_log("deny() called outside scope_policy");
    assert!(
        logs.contains("deny.rhai") && logs.contains("access_token_claims"),
        "{logs}"
    );
}

#[test]
fn pages_of_https_issuers_carry_hsts() {
    let s = start();
    let page = |host: &str, path: &str| {
        client()
            .get(s.url(path))
            .header("host", host)
            .send()
            .unwrap()
    };
    let r = page("secure.test", "/authorize?client_id=nobody");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let r = page(
        &format!("127.0.0.1:{}", s.port),
        "/demo/authorize?client_id=nobody",
    );
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[test]
fn cors_preflight_only_where_browser_applications_call() {
    let s = start();
    let preflight = |path: &str| {
        client()
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("origin", "https://evil.test")
            .header("access-control-request-method", "POST")
            .send()
            .unwrap()
    };
    for path in [
        "/demo/token",
        "/demo/userinfo",
        "/demo/revoke",
        "/demo/jwks",
        "/demo/.well-known/openid-configuration",
    ] {
        let r = preflight(path);
        assert_eq!(r.status(), 204, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
    }
    for path in [
        "/demo/login",
        "/demo/consent",
        "/demo/authorize",
        "/demo/logout",
        "/demo/introspect",
    ] {
        let r = preflight(path);
        assert_eq!(r.status(), 405, "{path}");
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
}

/// Sign in through `flow` in `b` and return the consent page's HTML.
fn consent_page(s: &Server, b: &reqwest::blocking::Client, flow: &Flow) -> String {
    let r = b.get(flow.authorize_url()).send().unwrap();
    let login = location(&r);
    assert!(login.contains("/demo/login?"), "{login}");
    let html = b.get(&login).send().unwrap().text().unwrap();
    let r = b
        .post(s.url("/demo/login"))
        .form(&[
            ("rid", field(&html, "rid")),
            ("csrf", field(&html, "csrf")),
            ("username", flow.username.to_string()),
            ("password", "wonderland".to_string()),
        ])
        .send()
        .unwrap();
    let r = common::flow::signed_in(b, r);
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert!(html.contains("decision"), "{html}");
    html
}

#[test]
fn consent_answers_only_for_the_session_it_was_asked_of() {
    let s = start();
    let b = browser();
    let alice = Flow {
        scope: "openid profile",
        ..Flow::new(&s, "asks", CB)
    };
    let asked_alice = consent_page(&s, &b, &alice);
    // Someone else signs in in the same browser (a new session)...
    let bob = Flow {
        username: "bob",
        extra: vec![("state", "st-bob"), ("prompt", "login")],
        ..alice.clone()
    };
    let _ = consent_page(&s, &b, &bob);
    // ...and alice's consent form no longer decides anything.
    let r = common::flow::answer_consent(&s, &b, &asked_alice, "allow");
    assert_eq!(r.status(), 400, "no code for bob from alice's consent");
    assert!(r.headers().get("location").is_none());
}

#[test]
fn logout_without_a_hint_asks_first_and_a_valid_hint_does_not() {
    let s = start();
    let b = browser();
    let flow = Flow::new(&s, "web", CB);
    let code = flow.code(&b);
    let t = exchange(&s, "demo", "web", "web-secret", &code, CB);
    let signed_in = || {
        let r = b.get(flow.authorize_url()).send().unwrap();
        location(&r).starts_with(CB)
    };
    assert!(signed_in());

    // A drive-by logout (any page can send the browser here) only asks.
    let r = b.get(s.url("/demo/logout")).send().unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().unwrap();
    assert!(page.contains("Sign out?"), "{page}");
    assert!(signed_in(), "nothing ended yet");
    // A cross-site POST without the page's token only asks too.
    let r = b
        .post(s.url("/demo/logout"))
        .form(&[("client_id", "web")])
        .send()
        .unwrap();
    assert!(r.text().unwrap().contains("Sign out?"));
    assert!(signed_in());
    // The user confirms.
    let r = b
        .post(s.url("/demo/logout"))
        .form(&[("csrf", field(&page, "csrf"))])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("You are signed out"));
    assert!(!signed_in());

    // With a valid id_token_hint, the application vouches: no question.
    let code = flow.code(&b);
    assert!(!code.is_empty());
    assert!(signed_in());
    let r = b
        .get(s.url("/demo/logout"))
        .query(&[("id_token_hint", t["id_token"].as_str().unwrap())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("You are signed out"));
    assert!(!signed_in());
}

#[test]
fn csrf_tokens_outlive_a_restart_because_the_key_is_the_deployments() {
    let common::Running { server, db: _db } = start();
    let b = browser();
    let flow = Flow::new(&server, "web", CB);
    let r = b.get(flow.authorize_url()).send().unwrap();
    let html = b.get(location(&r)).send().unwrap().text().unwrap();
    // Restart on the same database and port: the form still works.
    let (dir, port) = (server.dir.clone(), server.port);
    drop(server);
    let again = Server::restart(&dir, port);
    let r = b
        .post(again.url("/demo/login"))
        .form(&[
            ("rid", field(&html, "rid")),
            ("csrf", field(&html, "csrf")),
            ("username", "alice".to_string()),
            ("password", "wonderland".to_string()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
}

#[test]
fn a_redirect_uri_sent_at_authorize_is_required_at_the_token_endpoint() {
    let s = start();
    let b = browser();
    // `web` has a single redirect URI, so it may leave it out at both ends,
    // but once the authorization request named it, the token request must too.
    let exchange_without = |code: &str| {
        client()
            .post(s.url("/demo/token"))
            .basic_auth("web", Some("web-secret"))
            .form(&[("grant_type", "authorization_code"), ("code", code)])
            .send()
            .unwrap()
    };
    let code = Flow::new(&s, "web", CB).code(&b);
    let r = exchange_without(&code);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_request");
    let t = exchange(&s, "demo", "web", "web-secret", &code, CB);
    assert!(
        t["access_token"].is_string(),
        "the failed try did not burn the code"
    );
    // Left out at authorize (SSO session now): not needed at the token endpoint.
    let r = b
        .get(s.url("/demo/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("scope", "openid"),
        ])
        .send()
        .unwrap();
    let code = query_param(&location(&r), "code").expect("a code");
    assert_eq!(exchange_without(&code).status(), 200);
}
