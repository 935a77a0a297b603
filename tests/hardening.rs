//! Hardening over real HTTP: brute-force throttles (per user, per client,
//! per address, across two nodes), request limits, browser security headers,
//! `__Host-` cookies, and no secret in the logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::flow::{exchange, field, introspect, location, post_basic, query_param, Flow};
use common::{browser, burst, client, Server};
use reqwest::blocking::{Client, Response};
use serde_json::Value;

use common::ALICE_HASH;
const PASSWORD: &str = "wonderland";
/// The lockout of [`short_lockout`] servers. Long enough for a loaded
/// 2-core CI machine to run a debug-build argon2 between two requests.
const LOCKOUT: Duration = Duration::from_secs(8);

fn config() -> String {
    config_with("1m")
}

fn config_with(lockout: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}", trusted_proxies: [127.0.0.1] }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    throttle: {{ max_failures: 3, client_max_failures: 3, ip_max_failures: 5, window: 1m, lockout: {lockout} }}
    scopes: {{ api: {{ description: The API }} }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
      - username: bob
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: web-secret-7f3a9c
        redirect_uris: [http://app.test/cb]
        post_logout_redirect_uris: [http://app.test/bye]
        grant_types: [authorization_code, refresh_token, client_credentials]
        scopes: [openid, profile, offline_access, api]
      - id: other
        secret: other-secret
        grant_types: [client_credentials]
        scopes: [api]
  - id: root
    issuer: https://127.0.0.1:{{port}}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: root-secret
        redirect_uris: [https://app.test/cb]
"#
    )
}

fn server() -> common::Running {
    common::start_sqlite(&config())
}

fn short_lockout() -> common::Running {
    common::start_sqlite(&config_with("8s"))
}

/// A browser at the demo tenant's login form: (browser, rid, csrf).
fn login_form(s: &Server) -> (Client, String, String) {
    let b = browser();
    let flow = Flow::new(s, "web", "http://app.test/cb");
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 303);
    let html = b.get(location(&r)).send().unwrap().text().unwrap();
    let (rid, csrf) = (field(&html, "rid"), field(&html, "csrf"));
    (b, rid, csrf)
}

/// Post the login form from address `ip` (forwarded by the trusted proxy 127.0.0.1).
fn attempt(
    s: &Server,
    form: &(Client, String, String),
    user: &str,
    pw: &str,
    ip: &str,
) -> Response {
    form.0
        .post(s.url("/demo/login"))
        .header("x-forwarded-for", ip)
        .form(&[
            ("rid", form.1.as_str()),
            ("csrf", form.2.as_str()),
            ("username", user),
            ("password", pw),
        ])
        .send()
        .unwrap()
}

fn retry_after(r: &Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A successful sign-in: the consent page or a redirect onwards.
#[track_caller]
fn assert_signed_in(r: Response) {
    let status = r.status().as_u16();
    let html = r.text().unwrap();
    assert!(
        status == 303 || (status == 200 && html.contains("decision")),
        "{status}: {html}"
    );
}

#[track_caller]
fn assert_locked_page(r: Response) {
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_browser_headers(&r);
    let html = r.text().unwrap();
    assert!(html.contains("Too many failed sign-in attempts."), "{html}");
    assert!(
        html.contains("name=\"password\""),
        "the form is shown again"
    );
}

#[test]
fn login_lockout_is_per_user_and_expires() {
    let s = short_lockout();
    let form = login_form(&s);
    for _ in 0..2 {
        assert_eq!(
            attempt(&s, &form, "alice", "nope", "10.0.0.1").status(),
            401
        );
    }
    // The third failure locks alice.
    assert_locked_page(attempt(&s, &form, "alice", "nope", "10.0.0.1"));
    // Even with the right password, from another address.
    assert_locked_page(attempt(&s, &login_form(&s), "alice", PASSWORD, "10.0.0.2"));
    // Bob signs in from the same address at once: other users are not slowed.
    assert_signed_in(attempt(&s, &login_form(&s), "bob", PASSWORD, "10.0.0.1"));
    // The lockout ends.
    std::thread::sleep(LOCKOUT + Duration::from_millis(1100));
    assert_signed_in(attempt(&s, &form, "alice", PASSWORD, "10.0.0.1"));
}

#[test]
fn login_lockout_is_per_address() {
    let s = server();
    let form = login_form(&s);
    // Five failures from one address, one per (unknown) user name.
    for i in 0..4 {
        let r = attempt(&s, &form, &format!("nobody{i}"), "x", "10.0.1.1");
        assert_eq!(r.status(), 401);
    }
    assert_locked_page(attempt(&s, &form, "nobody4", "x", "10.0.1.1"));
    // That address is locked for everyone, bob included ...
    assert_locked_page(attempt(&s, &login_form(&s), "bob", PASSWORD, "10.0.1.1"));
    // ... but bob from elsewhere is not. IPv6 addresses count per /64.
    assert_signed_in(attempt(&s, &login_form(&s), "bob", PASSWORD, "2001:db8::1"));
}

#[test]
fn successful_login_resets_the_user_counter() {
    let s = server();
    let form = login_form(&s);
    for _ in 0..2 {
        assert_eq!(
            attempt(&s, &form, "alice", "nope", "10.0.2.1").status(),
            401
        );
    }
    assert_signed_in(attempt(&s, &form, "alice", PASSWORD, "10.0.2.1"));
    let form = login_form(&s);
    for _ in 0..2 {
        let r = attempt(&s, &form, "alice", "nope", "10.0.2.2");
        assert_eq!(r.status(), 401, "the counter started over");
    }
    assert_locked_page(attempt(&s, &form, "alice", "nope", "10.0.2.2"));
}

fn token_cc(s: &Server, id: &str, secret: &str, ip: &str) -> Response {
    client()
        .post(s.url("/demo/token"))
        .basic_auth(id, Some(secret))
        .header("x-forwarded-for", ip)
        .form(&[("grant_type", "client_credentials"), ("scope", "api")])
        .send()
        .unwrap()
}

#[track_caller]
fn assert_slow_down(r: Response) {
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], "slow_down");
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("retry after"));
}

#[test]
fn client_lockout_counts_token_introspect_and_revoke_failures() {
    let s = short_lockout();
    let ip = "10.0.3.1";
    for path in ["/demo/token", "/demo/introspect", "/demo/revoke"] {
        let r = client()
            .post(s.url(path))
            .basic_auth("web", Some("wrong"))
            .header("x-forwarded-for", ip)
            .form(&[("grant_type", "client_credentials"), ("token", "t")])
            .send()
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_client");
    }
    // Locked: even the right secret, from anywhere, until the lockout ends.
    assert_slow_down(token_cc(&s, "web", "web-secret-7f3a9c", ip));
    assert_slow_down(token_cc(&s, "web", "web-secret-7f3a9c", "10.0.3.2"));
    // Another client is not affected.
    assert_eq!(
        token_cc(&s, "other", "other-secret", "10.0.3.2").status(),
        200
    );
    std::thread::sleep(LOCKOUT + Duration::from_millis(1100));
    assert_eq!(token_cc(&s, "web", "web-secret-7f3a9c", ip).status(), 200);
}

#[test]
fn client_lockout_is_per_address() {
    let s = server();
    for i in 0..5 {
        let r = token_cc(&s, &format!("guess{i}"), "x", "10.0.4.1");
        assert_eq!(r.status(), 401);
    }
    assert_slow_down(token_cc(&s, "web", "web-secret-7f3a9c", "10.0.4.1"));
    assert_eq!(
        token_cc(&s, "web", "web-secret-7f3a9c", "10.0.4.2").status(),
        200
    );
}

#[test]
fn lockouts_hold_across_two_nodes_on_one_database() {
    let db = common::db::sqlite();
    let a = Server::start(&config(), &db.url);
    let b = Server::start(&config(), &db.url);
    let form = login_form(&a);
    for _ in 0..3 {
        attempt(&a, &form, "alice", "nope", "10.0.5.1");
    }
    assert_locked_page(attempt(&b, &login_form(&b), "alice", PASSWORD, "10.0.5.2"));
    for _ in 0..3 {
        token_cc(&b, "web", "wrong", "10.0.5.3");
    }
    assert_slow_down(token_cc(&a, "web", "web-secret-7f3a9c", "10.0.5.4"));
}

#[test]
fn parallel_wrong_passwords_are_verified_at_most_max_failures_times() {
    let s = common::start_sqlite(&burst::config("127.0.0.1:{port}"));
    burst::assert_login_burst_is_bounded(&[&s], "sqlite");
}

#[test]
fn parallel_wrong_client_secrets_are_verified_at_most_client_max_failures_times() {
    let s = common::start_sqlite(&burst::config("127.0.0.1:{port}"));
    burst::assert_client_burst_is_bounded(&[&s], "sqlite");
}

#[test]
fn parallel_guesses_over_two_nodes_on_one_sqlite_file_are_bounded() {
    let db = common::db::sqlite();
    let (a, b) = burst::two_nodes(&db.url);
    burst::assert_login_burst_is_bounded(&[&a, &b], "sqlite, two nodes");
    burst::assert_client_burst_is_bounded(&[&a, &b], "sqlite, two nodes");
}

// ---- limits ----

#[track_caller]
fn assert_json_error(r: Response, status: u16, error: &str) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"], error, "{v}");
    v
}

#[test]
fn oversized_bodies_are_413_whatever_the_framing() {
    let s = server();
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "x".repeat(70 * 1024)
    );
    let r = client()
        .post(s.url("/demo/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .unwrap();
    assert_json_error(r, 413, "invalid_request");
    // Chunked, without a Content-Length.
    let chunked = reqwest::blocking::Body::new(std::io::Cursor::new(big.into_bytes()));
    let r = client()
        .post(s.url("/demo/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(chunked)
        .send()
        .unwrap();
    assert_json_error(r, 413, "invalid_request");
    // 64 KiB exactly is read (and refused for what it says, not its size).
    let exact = format!("a={}", "x".repeat(64 * 1024 - 2));
    let r = client()
        .post(s.url("/demo/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(exact)
        .send()
        .unwrap();
    assert_json_error(r, 400, "invalid_request");
}

#[test]
fn oversized_headers_are_431_and_long_uris_414() {
    let s = server();
    let discovery = s.url("/demo/.well-known/openid-configuration");
    let r = client()
        .get(&discovery)
        .header("x-padding", "p".repeat(12 * 1024))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(&discovery)
        .header("x-padding", "p".repeat(17 * 1024))
        .send()
        .unwrap();
    assert_json_error(r, 431, "invalid_request");
    // Many small headers add up.
    let mut req = client().get(&discovery);
    for i in 0..60 {
        req = req.header(format!("x-h{i}"), "v".repeat(300));
    }
    assert_json_error(req.send().unwrap(), 431, "invalid_request");
    let r = client()
        .get(format!("{discovery}?q={}", "a".repeat(17 * 1024)))
        .send()
        .unwrap();
    assert_json_error(r, 414, "invalid_request");
}

#[test]
fn repeated_and_overlong_parameters_are_invalid_request() {
    let s = server();
    let r = client()
        .post(s.url("/demo/token"))
        .basic_auth("web", Some("web-secret-7f3a9c"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .unwrap();
    let v = assert_json_error(r, 400, "invalid_request");
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("repeated"));
    // At the authorization endpoint, before the client is trusted: our own error page.
    let r = browser()
        .get(s.url("/demo/authorize?client_id=web&client_id=web&response_type=code"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_browser_headers(&r);
    assert!(r.text().unwrap().contains("repeated"));
    // Overlong values.
    let long_code = "c".repeat(300);
    let r = post_basic(
        &s,
        "/demo/token",
        "web",
        "web-secret-7f3a9c",
        &[("grant_type", "authorization_code"), ("code", &long_code)],
    );
    let v = assert_json_error(r, 400, "invalid_request");
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("too long"));
    let flow = Flow {
        extra: vec![("state", &*"s".repeat(2049).leak())],
        ..Flow::new(&s, "web", "http://app.test/cb")
    };
    let r = browser().get(flow.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("too long"));
    // Too many scopes: an error redirect to the (trusted) client.
    let scopes: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
    let scopes = scopes.join(" ");
    let flow = Flow {
        scope: &scopes,
        ..Flow::new(&s, "web", "http://app.test/cb")
    };
    let r = browser().get(flow.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("invalid_scope"),
        "{to}"
    );
}

#[test]
fn a_body_that_never_arrives_times_out_with_408() {
    let s = server();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        tcp,
        "POST /demo/token HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type",
        s.port
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(9));
}

#[test]
fn headers_that_never_finish_are_cut_off() {
    let s = server();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = std::time::Instant::now();
    write!(tcp, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
    let mut buf = vec![0u8; 4096];
    // hyper answers 408 (or just closes) once the head is overdue.
    let n = tcp.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "{waited:?}"
    );
}

// ---- browser headers and cookies ----

#[track_caller]
fn assert_browser_headers(r: &Response) {
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store, no-cache");
}

#[test]
fn every_html_page_and_redirect_carries_the_security_headers() {
    let s = server();
    let b = browser();
    let flow = Flow {
        scope: "openid profile",
        ..Flow::new(&s, "web", "http://app.test/cb")
    };
    // Redirect to the login page.
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 303);
    assert_browser_headers(&r);
    // Login page.
    let r = b.get(location(&r)).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_browser_headers(&r);
    let html = r.text().unwrap();
    let (rid, csrf) = (field(&html, "rid"), field(&html, "csrf"));
    let post = |user: &str, pw: &str| {
        b.post(s.url("/demo/login"))
            .form(&[
                ("rid", rid.as_str()),
                ("csrf", csrf.as_str()),
                ("username", user),
                ("password", pw),
            ])
            .send()
            .unwrap()
    };
    // Failed login page (401).
    let r = post("alice", "nope");
    assert_eq!(r.status(), 401);
    assert_browser_headers(&r);
    // Sign-in: 303 to the consent page (post/redirect/get).
    let r = post("alice", PASSWORD);
    assert_eq!(r.status(), 303);
    assert_browser_headers(&r);
    // Consent page.
    let r = common::flow::signed_in(&b, r);
    assert_eq!(r.status(), 200);
    assert_browser_headers(&r);
    let html = r.text().unwrap();
    // Consent answer: the redirect with the code.
    let r = b
        .post(s.url("/demo/consent"))
        .form(&[
            ("rid", field(&html, "rid")),
            ("csrf", field(&html, "csrf")),
            ("decision", "allow".to_string()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_browser_headers(&r);
    // Error page.
    let r = b.get(s.url("/demo/authorize")).send().unwrap();
    assert_eq!(r.status(), 400);
    assert_browser_headers(&r);
    // The logout confirmation (no id_token_hint), the signed-out page, and
    // the logout redirect.
    let r = b.get(s.url("/demo/logout")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_browser_headers(&r);
    let confirm = r.text().unwrap();
    assert!(confirm.contains("Sign out?"));
    let r = b
        .post(s.url("/demo/logout"))
        .form(&[("csrf", field(&confirm, "csrf"))])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_browser_headers(&r);
    assert!(r.text().unwrap().contains("signed out"));
    let r =
        b.get(s.url(
            "/demo/logout?client_id=web&post_logout_redirect_uri=http%3A%2F%2Fapp.test%2Fbye",
        ))
        .send()
        .unwrap();
    assert_browser_headers(&r);
    // The lockout page (429).
    let form = login_form(&s);
    for _ in 0..3 {
        attempt(&s, &form, "bob", "nope", "10.0.6.1");
    }
    let r = attempt(&s, &form, "bob", "nope", "10.0.6.1");
    assert_locked_page(r);
}

#[test]
fn cookies_are_host_prefixed_for_https_issuers_at_the_root() {
    let s = server();
    // https issuer at `/` (behind a TLS-terminating proxy).
    let authorize = format!(
        "{}?response_type=code&client_id=web&scope=openid&redirect_uri=https%3A%2F%2Fapp.test%2Fcb",
        s.url("/authorize")
    );
    let r = client().get(&authorize).send().unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-sesame_b_root="), "{cookie}");
    assert!(
        cookie.contains("; Path=/;") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    // The prefixed cookie is the one read back.
    let binding = cookie.split(';').next().unwrap().to_string();
    // The issuer says https; the test server speaks plain HTTP behind the "proxy".
    let login = location(&r).replacen("https://", "http://", 1);
    let r = client()
        .get(&login)
        .header("cookie", &binding)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "the binding cookie is recognised");
    let unprefixed = binding.replacen("__Host-", "", 1);
    let r = client()
        .get(&login)
        .header("cookie", &unprefixed)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400, "an unprefixed cookie is not");
    // An http issuer under a path keeps the plain name and its path.
    let r = client()
        .get(Flow::new(&s, "web", "http://app.test/cb").authorize_url())
        .send()
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("sesame_b_demo="), "{cookie}");
    assert!(
        cookie.contains("; Path=/demo;") && !cookie.contains("Secure"),
        "{cookie}"
    );
}

// ---- secrets and logs ----

#[test]
fn no_secret_reaches_the_logs() {
    let s = server();
    let secret = "web-secret-7f3a9c";
    let b = browser();
    let flow = Flow {
        scope: "openid profile offline_access",
        ..Flow::new(&s, "web", "http://app.test/cb")
    };
    // A failed login with a recognisable wrong password first.
    let form = login_form(&s);
    attempt(&s, &form, "alice", "Wr0ng-pa55word-e1c2", "10.0.7.1");
    let url = flow.run(&b);
    let code = query_param(&url, "code").unwrap();
    let t = exchange(&s, "demo", "web", secret, &code, "http://app.test/cb");
    let access = t["access_token"].as_str().unwrap().to_string();
    let id_token = t["id_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        introspect(&s, "demo", "web", secret, &access)["active"],
        true
    );
    let r = post_basic(
        &s,
        "/demo/token",
        "web",
        "Wr0ng-s3cret-b9d8",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(r.status(), 401);
    let r = post_basic(
        &s,
        "/demo/token",
        "web",
        secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().unwrap();
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_string();
    // A code replay (it revokes the grant), and more error paths.
    let r = post_basic(
        &s,
        "/demo/token",
        "web",
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://app.test/cb"),
        ],
    );
    assert_eq!(r.status(), 400);
    client()
        .get(s.url("/demo/userinfo"))
        .bearer_auth(&access)
        .send()
        .unwrap();
    client()
        .get(s.url("/demo/userinfo"))
        .bearer_auth("garbage-bearer-4c4c")
        .send()
        .unwrap();
    client()
        .post(s.url("/demo/token"))
        .header("authorization", "Basic !!not-base64-5e5e!!")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    post_basic(&s, "/demo/revoke", "web", secret, &[("token", &refresh2)]);
    b.get(s.url(&format!("/demo/logout?id_token_hint={id_token}")))
        .send()
        .unwrap();
    // The last request's line: everything before it is in the log too.
    let logs = s.wait_for_log("endpoint=\"/logout\"");
    assert!(logs.contains("status="), "the access log is there: {logs}");
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("web:{secret}"),
    );
    for (what, value) in [
        ("client secret", secret),
        ("basic credentials", basic.as_str()),
        ("password", PASSWORD),
        ("wrong password", "Wr0ng-pa55word-e1c2"),
        ("wrong secret", "Wr0ng-s3cret-b9d8"),
        ("code", code.as_str()),
        ("access token", access.as_str()),
        ("id token", id_token.as_str()),
        ("refresh token", refresh.as_str()),
        ("rotated refresh token", refresh2.as_str()),
        ("bearer garbage", "garbage-bearer-4c4c"),
        ("bad basic", "not-base64-5e5e"),
        ("id token signature", id_token.rsplit('.').next().unwrap()),
    ] {
        assert!(!logs.contains(value), "the {what} is in the logs:\n{logs}");
    }
    // Request lines carry the path only, never the query.
    assert!(!logs.contains("id_token_hint"), "{logs}");
    assert!(!logs.contains("st-123"), "{logs}");
}

#[test]
fn check_warns_about_plain_secrets_with_https_issuers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sesame.yaml");
    std::fs::write(
        &cfg,
        "database: { url: 'sqlite://x.db' }\ntenants:\n  - id: prod\n    issuer: https://id.example.com\n    clients:\n      - id: app\n        secret: pl41n-s3cret\n        redirect_uris: [https://app.example.com/cb]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: tenants[0].clients[0].secret"),
        "{stderr}"
    );
    assert!(stderr.contains("secret_hash"), "{stderr}");
    assert!(!stderr.contains("pl41n-s3cret"), "{stderr}");
}
