//! What operators see: JSON log lines with audit events, the access line,
//! the metrics and the admin listener — over real HTTP against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flow::{exchange, field, location, Flow};
use common::{browser, client, free_port, Server, ALICE_HASH};
use serde_json::Value;

const CB: &str = "http://app.test/cb";
const SECRET: &str = "web-s3cret-6a1f";

fn config(extra_server: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}", log_format: json{extra_server} }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    throttle: {{ max_failures: 2 }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: {SECRET}
        redirect_uris: [{CB}]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, offline_access]
"#
    )
}

/// Every JSON object the server logged so far.
fn events(s: &Server) -> Vec<Value> {
    s.logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The first logged object with `event`, waiting for it (logs arrive through a pipe).
fn event(s: &Server, name: &str) -> Value {
    s.wait_for_log(&format!("\"event\":\"{name}\""));
    events(s)
        .into_iter()
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event"))
}

fn metric(s: &Server, url: &str, series: &str) -> f64 {
    let text = client().get(url).send().unwrap().text().unwrap();
    let _ = s;
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn audit_events_and_access_lines_in_json_with_no_secret_in_them() {
    let running = common::start_sqlite(&config(""));
    let s = &running.server;
    let metrics_url = s.url("/metrics");
    let signins_ok = r#"sesame_signins_total{tenant="demo",outcome="success"}"#;
    let tokens =
        r#"sesame_tokens_issued_total{tenant="demo",grant="authorization_code",format="jwt"}"#;
    assert_eq!(metric(s, &metrics_url, signins_ok), 0.0);

    let b = browser();
    let flow = Flow {
        scope: "openid offline_access",
        ..Flow::new(s, "web", CB)
    };
    // A failed sign-in, then a good one, then consent.
    let r = b.get(flow.authorize_url()).send().unwrap();
    let html = b.get(location(&r)).send().unwrap().text().unwrap();
    let attempt = |username: &str, password: &str| {
        b.post(s.url("/demo/login"))
            .form(&[
                ("rid", field(&html, "rid")),
                ("csrf", field(&html, "csrf")),
                ("username", username.to_string()),
                ("password", password.to_string()),
            ])
            .send()
            .unwrap()
    };
    assert_eq!(attempt("alice", "wrong-pa55-9b1c").status(), 401);
    assert_eq!(attempt("hunter2-typed-as-name", "x").status(), 401);
    let consent = common::flow::signed_in(&b, attempt("alice", "wonderland"))
        .text()
        .unwrap();
    let r = common::flow::answer_consent(s, &b, &consent, "allow");
    let code = common::flow::query_param(&location(&r), "code").unwrap();
    let t = exchange(s, "demo", "web", SECRET, &code, CB);
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    // Refresh, then replay the spent refresh token, then replay the code.
    let refresh_with = |token: &str| {
        client()
            .post(s.url("/demo/token"))
            .basic_auth("web", Some(SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .send()
            .unwrap()
    };
    assert_eq!(refresh_with(&refresh).status(), 200);
    assert_eq!(refresh_with(&refresh).status(), 400);
    let replay = client()
        .post(s.url("/demo/token"))
        .basic_auth("web", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
        ])
        .send()
        .unwrap();
    assert_eq!(replay.status(), 400);
    // Revoke the (already revoked) access token, a bad client, a logout.
    let r = client()
        .post(s.url("/demo/revoke"))
        .basic_auth("web", Some(SECRET))
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(s.url("/demo/token"))
        .basic_auth("web", Some("not-the-s3cret-77aa"))
        .header("x-request-id", "trace-me-42")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    let r = b
        .get(s.url("/demo/logout"))
        .query(&[("id_token_hint", t["id_token"].as_str().unwrap())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let failed = event(s, "signin.failed");
    assert_eq!(failed["username"], "alice");
    assert_eq!(failed["reason"], "bad_password");
    assert_eq!(failed["client_id"], "web");
    let unknown = events(s)
        .into_iter()
        .find(|e| e["event"] == "signin.failed" && e["reason"] == "unknown_user")
        .expect("an unknown user's failure");
    assert_eq!(unknown["username"], "(unknown)", "never the typed name");
    let ok = event(s, "signin.succeeded");
    assert_eq!(ok["username"], "alice");
    assert!(ok["sub"].is_string());
    assert_eq!(
        event(s, "consent.granted")["scope"],
        "openid offline_access"
    );
    let issued = event(s, "token.issued");
    assert_eq!(issued["grant"], "authorization_code");
    assert_eq!(issued["client_id"], "web");
    assert_eq!(
        issued["access_token"].as_str().unwrap().len(),
        16,
        "a hash prefix"
    );
    assert!(event(s, "refresh.rotated")["successor"].is_string());
    assert_eq!(event(s, "refresh.reuse_detected")["client_id"], "web");
    assert_eq!(event(s, "code.replay_detected")["client_id"], "web");
    assert_eq!(event(s, "token.revoked")["kind"], "access_token");
    assert!(event(s, "logout")["sid"].is_string());
    // The access line of the refused client, with its request id and reason.
    s.wait_for_log("trace-me-42");
    let line = events(s)
        .into_iter()
        .find(|e| e["span"]["request_id"] == "trace-me-42" && e["status"] == 401)
        .expect("the access line");
    assert_eq!(line["tenant"], "demo");
    assert_eq!(line["endpoint"], "/token");
    assert_eq!(line["client_id"], "web");
    assert_eq!(line["peer"], "127.0.0.1");
    assert!(line["reason"].as_str().unwrap().contains("invalid_client"));
    assert!(line["latency_us"].is_u64());
    assert!(line["user_agent"].is_null() || line["user_agent"].is_string());

    // Metrics moved.
    assert_eq!(metric(s, &metrics_url, signins_ok), 1.0);
    assert_eq!(metric(s, &metrics_url, tokens), 1.0);
    let bad_pw = r#"sesame_signins_total{tenant="demo",outcome="bad_password"}"#;
    assert_eq!(metric(s, &metrics_url, bad_pw), 1.0);
    let refreshed =
        r#"sesame_tokens_issued_total{tenant="demo",grant="refresh_token",format="jwt"}"#;
    assert_eq!(metric(s, &metrics_url, refreshed), 1.0);
    let token_401 = r#"sesame_http_requests_total{tenant="demo",endpoint="/token",class="4xx"}"#;
    assert!(metric(s, &metrics_url, token_401) >= 3.0);
    let text = client().get(&metrics_url).send().unwrap().text().unwrap();
    for series in [
        "sesame_http_request_duration_seconds_bucket",
        "sesame_db_pool_connections{state=\"in_use\"}",
        "sesame_db_pool_wait_seconds_count",
        "sesame_queue_depth{pool=\"kdf\"}",
        "sesame_config_generation_info{generation=",
        "sesame_build_info{version=",
    ] {
        assert!(text.contains(series), "{series} in {text}");
    }

    // No secret, code or token in any line.
    let logs = s.logs();
    for (what, value) in [
        ("client secret", SECRET),
        ("wrong secret", "not-the-s3cret-77aa"),
        ("password", "wonderland"),
        ("wrong password", "wrong-pa55-9b1c"),
        ("typed username", "hunter2-typed-as-name"),
        ("code", code.as_str()),
        ("access token", t["access_token"].as_str().unwrap()),
        ("refresh token", refresh.as_str()),
        ("id token", t["id_token"].as_str().unwrap()),
    ] {
        assert!(!logs.contains(value), "the {what} is in the logs:\n{logs}");
    }
}

#[test]
fn a_lockout_and_a_reload_are_audited_and_counted() {
    let running = common::start_sqlite(&config(""));
    let s = &running.server;
    let b = browser();
    let flow = Flow::new(s, "web", CB);
    let r = b.get(flow.authorize_url()).send().unwrap();
    let html = b.get(location(&r)).send().unwrap().text().unwrap();
    for _ in 0..3 {
        b.post(s.url("/demo/login"))
            .form(&[
                ("rid", field(&html, "rid")),
                ("csrf", field(&html, "csrf")),
                ("username", "alice".to_string()),
                ("password", "nope".to_string()),
            ])
            .send()
            .unwrap();
    }
    let lockout = event(s, "lockout");
    assert_eq!(lockout["what"], "user");
    assert!(lockout["until"].is_i64());
    let locked = r#"sesame_lockouts_total{tenant="demo",kind="user"}"#;
    assert_eq!(metric(s, &s.url("/metrics"), locked), 1.0);

    let before = client()
        .get(s.url("/readyz"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let path = s.config_path();
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, yaml.replace("[openid, offline_access]", "[openid]")).unwrap();
    s.hup();
    let reloaded = event(s, "config.reloaded");
    assert_eq!(reloaded["previous"], before["generation"]);
    assert_ne!(reloaded["generation"], before["generation"]);
    assert_eq!(reloaded["summary"], "~client demo/web (scopes)");
    let after = client()
        .get(s.url("/readyz"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(after["generation"], reloaded["generation"]);
    let applied = r#"sesame_config_reloads_total{outcome="applied"}"#;
    assert_eq!(metric(s, &s.url("/metrics"), applied), 1.0);
}

#[test]
fn the_admin_listener_serves_metrics_and_the_public_one_then_does_not() {
    let admin = free_port();
    let running = common::start_sqlite(&config(&format!(", admin_listen: \"127.0.0.1:{admin}\"")));
    let s = &running.server;
    let public = client().get(s.url("/metrics")).send().unwrap();
    assert_eq!(public.status(), 404);
    let r = client()
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("sesame_build_info"));
    let health = client()
        .get(format!("http://127.0.0.1:{admin}/healthz"))
        .send()
        .unwrap();
    assert_eq!(health.status(), 200);
    // The admin listener serves nothing of the tenants.
    let r = client()
        .get(format!(
            "http://127.0.0.1:{admin}/demo/.well-known/openid-configuration"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    // The public one still answers health checks.
    assert_eq!(
        client().get(s.url("/healthz")).send().unwrap().status(),
        200
    );
}

#[test]
fn plugin_calls_errors_and_their_duration_are_counted_by_script_and_hook() {
    let yaml = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    access_token_format: jwt
    scopes: { api:read: { description: Read } }
    clients:
      - { id: good, secret: s, grant_types: [client_credentials], scopes: [api:read], plugins: [tag.rhai] }
      - { id: bad, secret: s, grant_types: [client_credentials], scopes: [api:read], plugins: [boom.rhai] }
"#;
    let running = common::start_with_scripts(
        yaml,
        &[
            (
                "tag.rhai",
                "fn access_token_claims(ctx) { #{ tag: ctx.client.id } }",
            ),
            (
                "boom.rhai",
                "fn access_token_claims(ctx) { throw \"boom\" }",
            ),
        ],
    );
    let s = &running.server;
    let url = s.url("/metrics");
    let series = |name: &str, script: &str| {
        format!(r#"{name}{{script="{script}.rhai",hook="access_token_claims"}}"#)
    };
    let token = |id: &str| {
        common::flow::post_basic(
            s,
            "/demo/token",
            id,
            "s",
            &[("grant_type", "client_credentials")],
        )
        .status()
    };
    assert_eq!(token("good"), 200);
    assert_eq!(token("good"), 200);
    assert_eq!(token("bad"), 500);
    assert_eq!(
        metric(s, &url, &series("sesame_plugin_calls_total", "tag")),
        2.0
    );
    assert_eq!(
        metric(s, &url, &series("sesame_plugin_errors_total", "tag")),
        0.0
    );
    assert_eq!(
        metric(s, &url, &series("sesame_plugin_calls_total", "boom")),
        1.0
    );
    assert_eq!(
        metric(s, &url, &series("sesame_plugin_errors_total", "boom")),
        1.0
    );
    let count = series("sesame_plugin_call_duration_seconds_count", "tag");
    assert_eq!(metric(s, &url, &count), 2.0);
}

#[test]
fn a_lockout_of_an_address_says_so() {
    let yaml = config("").replace(
        "throttle: { max_failures: 2 }",
        "throttle: { max_failures: 5, ip_max_failures: 2 }",
    );
    let running = common::start_sqlite(&yaml);
    let s = &running.server;
    let b = browser();
    let flow = Flow::new(s, "web", CB);
    let r = b.get(flow.authorize_url()).send().unwrap();
    let html = b.get(location(&r)).send().unwrap().text().unwrap();
    for name in ["alice", "mallory"] {
        b.post(s.url("/demo/login"))
            .form(&[
                ("rid", field(&html, "rid")),
                ("csrf", field(&html, "csrf")),
                ("username", name.to_string()),
                ("password", "nope".to_string()),
            ])
            .send()
            .unwrap();
    }
    let lockout = event(s, "lockout");
    assert_eq!(lockout["what"], "address", "{lockout}");
    assert_eq!(lockout["ip"], "127.0.0.1");
    let by_ip = r#"sesame_lockouts_total{tenant="demo",kind="ip"}"#;
    let by_user = r#"sesame_lockouts_total{tenant="demo",kind="user"}"#;
    assert_eq!(metric(s, &s.url("/metrics"), by_ip), 1.0);
    assert_eq!(metric(s, &s.url("/metrics"), by_user), 0.0);
}

#[test]
fn the_file_watch_applies_an_edit_and_refuses_a_broken_one() {
    let running = common::start_sqlite(&config(", watch_config: true"));
    let s = &running.server;
    let path = s.config_path();
    let yaml = std::fs::read_to_string(&path).unwrap();
    // An editor's swap file beside it changes nothing.
    std::fs::write(path.with_extension("yaml.swp"), "garbage").unwrap();
    std::fs::write(&path, yaml.replace("[openid, offline_access]", "[openid]")).unwrap();
    let reloaded = event(s, "config.reloaded");
    assert_eq!(reloaded["summary"], "~client demo/web (scopes)");
    let log = s.logs();
    assert!(
        log.contains("the configuration changed on disk: reloading"),
        "{log}"
    );
    // A broken edit is refused, and the server goes on with the last good one.
    std::fs::write(&path, yaml.replace("grant_types:", "grant_typos:")).unwrap();
    let rejected = event(s, "config.rejected");
    assert!(
        rejected["error"].as_str().unwrap().contains("grant_typos"),
        "{rejected}"
    );
    let r = client()
        .get(s.url("/demo/.well-known/openid-configuration"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let reloads = log.matches("\"event\":\"config.reloaded\"").count();
    assert_eq!(reloads, 1, "one edit, one reload: {log}");
}
