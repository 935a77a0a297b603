//! Rhai plugins over real HTTP: the example scripts of `plugins/` change the
//! tokens as documented; misbehaving scripts answer `server_error` fast and
//! the server goes on; registered claims stay ours; policies deny, narrow and
//! withhold refresh tokens; SIGHUP swaps scripts only when they compile.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::flow::{exchange, introspect, post_basic, query_param, Flow};
use common::{browser, client, start_with_scripts, Server};
use serde_json::{json, Value};

use common::jwt_claims as decode;
use common::ALICE_HASH;
const CB: &str = "http://app.test/cb";

/// Start a server in a fresh directory holding `scripts` (name, source) under `plugins/`.
fn users() -> String {
    format!(
        r#"
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin, groups: [staff, admins, offline], roles: [editor] }}
      - username: bob
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Bob Dupont, groups: [staff] }}
      - username: carol
        password_hash: "{ALICE_HASH}"
        claims: {{ groups: [blocked] }}"#
    )
}

/// The example scripts of `plugins/`, wired as in `examples/plugins.yaml`.
fn examples_config(format: &str) -> String {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
plugins_dir: {plugins}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    access_token_format: {format}
    scopes:
      api:read: {{ description: Read }}
      api:write: {{ description: Write }}
{users}
    plugins: [claims/groups.rhai, policies/scope_by_group.rhai, policies/offline_access.rhai]
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [{CB}]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, offline_access, api:read, api:write]
        metadata: {{ tenant_tag: demo-web }}
        plugins: [claims/tenant_tag.rhai]
      - id: trusted
        secret: trusted-secret
        skip_consent: true
        redirect_uris: [{CB}]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, offline_access, api:read]
        metadata: {{ trusted: true }}
        plugins: [claims/tenant_tag.rhai]
      - id: rs
        secret: rs-secret
        grant_types: [client_credentials]
        scopes: [api:read]
    resource_servers:
      - {{ identifier: "https://api.test", client: rs, scopes: [api:read] }}
"#,
        plugins = plugins.display(),
        users = users(),
    )
}

/// Sign `username` in at `client_id` asking for `scope`; the token response.
fn tokens(s: &Server, client_id: &str, secret: &str, username: &str, scope: &str) -> Value {
    let code = Flow {
        scope,
        username,
        ..Flow::new(s, client_id, CB)
    }
    .code(&browser());
    exchange(s, "demo", client_id, secret, &code, CB)
}

fn client_credentials(s: &Server, id: &str, secret: &str) -> reqwest::blocking::Response {
    post_basic(
        s,
        "/demo/token",
        id,
        secret,
        &[("grant_type", "client_credentials")],
    )
}

#[test]
fn groups_script_puts_groups_and_roles_in_the_id_token() {
    let s = common::start_sqlite(&examples_config("jwt"));
    let t = tokens(&s, "web", "web-secret", "alice", "openid profile");
    let id = decode(t["id_token"].as_str().unwrap());
    assert_eq!(id["groups"], json!(["staff", "admins", "offline"]));
    assert_eq!(id["roles"], json!(["editor"]));
    assert_eq!(id["is_admin"], true);
    assert_eq!(id["name"], "Alice Martin", "user claims are still there");

    let t = tokens(&s, "web", "web-secret", "bob", "openid profile");
    let id = decode(t["id_token"].as_str().unwrap());
    assert_eq!(id["groups"], json!(["staff"]));
    assert_eq!(id["is_admin"], false);
    assert!(id.get("roles").is_none(), "bob has no roles: {id}");
}

#[test]
fn tenant_tag_script_tags_access_tokens_and_their_introspection() {
    for format in ["jwt", "opaque"] {
        let s = common::start_sqlite(&examples_config(format));
        let t = tokens(&s, "web", "web-secret", "alice", "openid api:read");
        let at = t["access_token"].as_str().unwrap();
        if format == "jwt" {
            let claims = decode(at);
            assert_eq!(claims["tenant_tag"], "demo-web");
            assert!(
                decode(t["id_token"].as_str().unwrap())
                    .get("tenant_tag")
                    .is_none(),
                "an access token hook does not touch the ID token"
            );
        }
        let i = introspect(&s, "demo", "rs", "rs-secret", at);
        assert_eq!(i["active"], true);
        assert_eq!(i["tenant_tag"], "demo-web", "{format}: {i}");

        // Without metadata.tenant_tag, the tenant id.
        let t = tokens(&s, "trusted", "trusted-secret", "bob", "openid api:read");
        let i = introspect(
            &s,
            "demo",
            "rs",
            "rs-secret",
            t["access_token"].as_str().unwrap(),
        );
        assert_eq!(i["tenant_tag"], "demo", "{format}: {i}");
    }
}

#[test]
fn offline_access_policy_gives_refresh_tokens_to_the_group_and_trusted_clients() {
    let s = common::start_sqlite(&examples_config("jwt"));
    // alice is in "offline"
    let t = tokens(&s, "web", "web-secret", "alice", "openid offline_access");
    assert!(t["refresh_token"].is_string(), "{t}");
    assert_eq!(t["scope"], "openid offline_access");

    // bob is not: he signs in without offline_access and without a refresh token
    let t = tokens(&s, "web", "web-secret", "bob", "openid offline_access");
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert_eq!(t["scope"], "openid");

    // ... unless the client is trusted
    let t = tokens(
        &s,
        "trusted",
        "trusted-secret",
        "bob",
        "openid offline_access",
    );
    assert!(t["refresh_token"].is_string(), "{t}");
    // and the refresh grant runs the policy too, still yielding a rotated token
    let r = post_basic(
        &s,
        "/demo/token",
        "trusted",
        "trusted-secret",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    );
    assert_eq!(r.status(), 200);
    let t2: Value = r.json().unwrap();
    assert!(t2["refresh_token"].is_string(), "{t2}");
}

#[test]
fn scope_by_group_policy_drops_scopes_and_denies_blocked_users() {
    let s = common::start_sqlite(&examples_config("jwt"));
    let t = tokens(
        &s,
        "web",
        "web-secret",
        "alice",
        "openid api:read api:write",
    );
    assert_eq!(t["scope"], "openid api:read api:write");
    let t = tokens(&s, "web", "web-secret", "bob", "openid api:read api:write");
    assert_eq!(t["scope"], "openid api:read", "bob is not an admin");
    assert_eq!(
        decode(t["access_token"].as_str().unwrap())["scope"],
        "openid api:read"
    );

    // carol is blocked: deny() at /authorize is access_denied with the reason
    let url = Flow {
        scope: "openid api:read",
        username: "carol",
        ..Flow::new(&s, "web", CB)
    }
    .run(&browser());
    assert!(url.starts_with(CB), "{url}");
    assert_eq!(query_param(&url, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        query_param(&url, "error_description").as_deref(),
        Some("your account is blocked")
    );
    assert_eq!(query_param(&url, "state").as_deref(), Some("st-123"));

    // client_credentials (no user) is left alone
    let r = client_credentials(&s, "rs", "rs-secret");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["scope"], "api:read");
}

const GOOD_AND_BAD: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    scopes: { api:read: { description: Read } }
    users:
      - username: alice
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$NsHg1qjI2jqUgdLfsM+dKA$BpKVbbPKfz1wafWi/RkozYWTB0CYgl6+ub/G00BwWoU"
    clients:
      - { id: good, secret: s, grant_types: [client_credentials], scopes: [api:read] }
      - { id: loop, secret: s, grant_types: [client_credentials], scopes: [api:read], plugins: [loop.rhai] }
      - { id: recurse, secret: s, grant_types: [client_credentials], scopes: [api:read], plugins: [recurse.rhai] }
      - { id: huge, secret: s, grant_types: [client_credentials], scopes: [api:read], plugins: [huge.rhai] }
      - { id: throw, secret: s, grant_types: [client_credentials], scopes: [api:read], plugins: [throw.rhai] }
      - { id: wrong-type, secret: s, grant_types: [client_credentials], scopes: [api:read], plugins: [wrong_type.rhai] }
      - { id: bad-policy, secret: s, skip_consent: true, redirect_uris: ["http://app.test/cb"], scopes: [openid], plugins: [bad_policy.rhai] }
"#;

const BAD_SCRIPTS: &[(&str, &str)] = &[
    ("loop.rhai", "fn access_token_claims(ctx) {\n  loop {}\n}\n"),
    (
        "recurse.rhai",
        "fn down(n) { down(n + 1) }\nfn access_token_claims(ctx) { down(0) }\n",
    ),
    (
        "huge.rhai",
        "fn access_token_claims(ctx) {\n  let s = \"x\";\n  loop { s += s; }\n}\n",
    ),
    (
        "throw.rhai",
        "fn access_token_claims(ctx) {\n  throw \"boom\";\n}\n",
    ),
    (
        "wrong_type.rhai",
        "fn access_token_claims(ctx) { \"not a map\" }\n",
    ),
    ("bad_policy.rhai", "fn scope_policy(ctx) { 42 }\n"),
];

#[test]
fn misbehaving_scripts_answer_server_error_fast_and_the_server_goes_on() {
    let s = start_with_scripts(GOOD_AND_BAD, BAD_SCRIPTS);
    assert_eq!(client_credentials(&s, "good", "s").status(), 200);
    for id in ["loop", "recurse", "huge", "throw", "wrong-type"] {
        let started = Instant::now();
        let r = client_credentials(&s, id, "s");
        let took = started.elapsed();
        assert_eq!(r.status(), 500, "{id}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().unwrap();
        assert_eq!(body["error"], "server_error", "{id}: {body}");
        assert!(
            !body["error_description"]
                .as_str()
                .unwrap()
                .contains(".rhai"),
            "no internals on the wire: {body}"
        );
        // Well under a second in release builds; debug builds are slower.
        assert!(took < Duration::from_secs(2), "{id} took {took:?}");
        let next = client_credentials(&s, "good", "s");
        assert_eq!(next.status(), 200, "the next request after {id}");
    }
    let logs = s.wait_for_log("script=wrong_type.rhai");
    for name in [
        "loop.rhai",
        "recurse.rhai",
        "huge.rhai",
        "throw.rhai",
        "wrong_type.rhai",
    ] {
        assert!(
            logs.contains(&format!("script={name}")),
            "{name} failure logged: {logs}"
        );
    }
    assert!(logs.contains("boom") && logs.contains("line=2"), "{logs}");

    // At /authorize a broken policy is a server_error redirect.
    let url = Flow {
        scope: "openid",
        ..Flow::new(&s, "bad-policy", CB)
    }
    .run(&browser());
    assert!(url.starts_with(CB), "{url}");
    assert_eq!(query_param(&url, "error").as_deref(), Some("server_error"));
    assert_eq!(client_credentials(&s, "good", "s").status(), 200);
}

const REGISTERED: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    users:
      - username: alice
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$NsHg1qjI2jqUgdLfsM+dKA$BpKVbbPKfz1wafWi/RkozYWTB0CYgl6+ub/G00BwWoU"
        claims: { name: Alice, email: alice@example.com }
    plugins: [evil.rhai]
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: ["http://app.test/cb"]
        scopes: [openid, profile, email]
        metadata: { tier: gold, limits: { rps: 5 } }
        plugins: [later.rhai]
"#;

const EVIL: &str = r#"
fn id_token_claims(ctx) {
    #{ sub: "evil", iss: "https://evil.example", aud: "evil", nonce: "forged", extra_id: true, email: () }
}
fn access_token_claims(ctx) {
    #{ sub: "evil", iss: "https://evil.example", aud: "evil", client_id: "evil", scope: "admin",
       extra_at: 1, ctx: ctx }
}
fn userinfo_claims(ctx) {
    #{ sub: "evil", extra_ui: [1, 2.5, "three", #{ four: 4 }], tier: "from the tenant" }
}
"#;

const LATER: &str = r#"
// Client scripts run after the tenant's: their keys win.
fn userinfo_claims(ctx) {
    #{ tier: ctx.client.metadata.tier }
}
"#;

#[test]
fn scripts_cannot_override_registered_claims_and_see_the_documented_ctx() {
    let s = start_with_scripts(REGISTERED, &[("evil.rhai", EVIL), ("later.rhai", LATER)]);
    let code = Flow {
        scope: "openid profile email",
        ..Flow::new(&s, "web", CB)
    }
    .code(&browser());
    let r = client()
        .post(s.url("/demo/token"))
        .basic_auth("web", Some("web-secret"))
        .header("user-agent", "plugin-test/1")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    let issuer = s.url("/demo");

    let id = decode(t["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], issuer.as_str());
    assert_eq!(id["aud"], "web");
    assert_ne!(id["sub"], "evil");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["extra_id"], true);
    assert!(id.get("email").is_none(), "() removes a claim: {id}");

    let at = decode(t["access_token"].as_str().unwrap());
    assert_eq!(at["iss"], issuer.as_str());
    assert_eq!(at["aud"], issuer.as_str());
    assert_eq!(at["sub"], id["sub"]);
    assert_eq!(at["client_id"], "web");
    assert_eq!(at["scope"], "openid profile email");
    assert_eq!(at["extra_at"], 1);

    // The ctx the hook saw.
    let ctx = &at["ctx"];
    assert_eq!(ctx["tenant"], json!({"id": "demo", "issuer": issuer}));
    assert_eq!(ctx["client"]["id"], "web");
    assert_eq!(ctx["client"]["name"], "web");
    assert_eq!(
        ctx["client"]["metadata"],
        json!({"tier": "gold", "limits": {"rps": 5}})
    );
    assert_eq!(ctx["user"]["sub"], id["sub"]);
    assert_eq!(ctx["user"]["username"], "alice");
    assert_eq!(ctx["user"]["claims"]["email"], "alice@example.com");
    assert_eq!(ctx["scopes"], json!(["openid", "profile", "email"]));
    assert_eq!(ctx["granted"], json!(["openid", "profile", "email"]));
    assert_eq!(ctx["grant_type"], "authorization_code");
    assert_eq!(ctx["request"]["ip"], "127.0.0.1");
    assert_eq!(ctx["request"]["user_agent"], "plugin-test/1");
    let now = ctx["now"].as_i64().unwrap();
    assert!((now - at["iat"].as_i64().unwrap()).abs() <= 1);

    let r = client()
        .get(s.url("/demo/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let ui: Value = r.json().unwrap();
    assert_eq!(ui["sub"], id["sub"]);
    assert_eq!(ui["extra_ui"], json!([1, 2.5, "three", {"four": 4}]));
    assert_eq!(
        ui["tier"], "gold",
        "the client's script overrides the tenant's"
    );

    // Each ignored claim is logged once per script, however often it is tried.
    let _ = Flow {
        scope: "openid",
        ..Flow::new(&s, "web", CB)
    }
    .code(&browser());
    let logs = s.logs();
    let warnings = logs
        .lines()
        .filter(|l| l.contains("registered claim") && l.contains("claim=\"sub\""))
        .count();
    assert_eq!(warnings, 1, "once per script and claim: {logs}");
}

const POLICY: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    scopes: { api:read: { description: Read } }
    users:
      - username: alice
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$NsHg1qjI2jqUgdLfsM+dKA$BpKVbbPKfz1wafWi/RkozYWTB0CYgl6+ub/G00BwWoU"
    plugins: [policy.rhai]
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: ["http://app.test/cb"]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, offline_access, api:read]
      - { id: denied, secret: s, grant_types: [client_credentials], scopes: [api:read] }
      - { id: narrow, secret: s, grant_types: [client_credentials], scopes: [api:read] }
      - { id: thrower, secret: s, grant_types: [client_credentials], scopes: [api:read] }
      - { id: widen, secret: s, grant_types: [client_credentials], scopes: [api:read] }
"#;

const POLICY_SCRIPT: &str = r#"
fn scope_policy(ctx) {
    switch ctx.client.id {
        "denied" => { deny("not today") }
        "narrow" => { #{ scopes: [] } }
        "thrower" => { throw #{ denied: true }; }
        "widen" => { #{ scopes: ["api:read", "openid", "admin"] } }
        _ => {
            if ctx.grant_type == "refresh_token" {
                #{ refresh_token: false }
            }
        }
    }
}
"#;

#[test]
fn policies_deny_narrow_and_withhold_refresh_tokens_at_the_token_endpoint() {
    let s = start_with_scripts(POLICY, &[("policy.rhai", POLICY_SCRIPT)]);
    let r = client_credentials(&s, "denied", "s");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "not today");

    let r = client_credentials(&s, "narrow", "s");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_scope");

    let r = client_credentials(&s, "thrower", "s");
    assert_eq!(r.status(), 500, "a throw is never a denial");
    assert_eq!(r.json::<Value>().unwrap()["error"], "server_error");

    let r = client_credentials(&s, "widen", "s");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().unwrap()["scope"],
        "api:read",
        "a script narrows, never widens"
    );

    // refresh_token: false at a refresh grant: tokens, but no rotated refresh token
    let t = tokens(&s, "web", "web-secret", "alice", "openid offline_access");
    let first = t["refresh_token"].as_str().unwrap().to_string();
    let refresh = |token: &str| {
        post_basic(
            &s,
            "/demo/token",
            "web",
            "web-secret",
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
    };
    let r = refresh(&first);
    assert_eq!(r.status(), 200);
    let t2: Value = r.json().unwrap();
    assert!(t2["access_token"].is_string());
    assert!(t2.get("refresh_token").is_none(), "{t2}");
    let r = refresh(&first);
    assert_eq!(r.status(), 400, "the presented refresh token was consumed");
}

const VERSIONED: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    scopes: { api:read: { description: Read } }
    plugins: [version.rhai]
    clients:
      - { id: rs, secret: s, grant_types: [client_credentials], scopes: [api:read] }
"#;

fn version_claim(s: &Server) -> Value {
    let r = client_credentials(s, "rs", "s");
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    decode(t["access_token"].as_str().unwrap())["version"].clone()
}

/// Wait until `cond` holds (SIGHUP reloads asynchronously).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_keeps_the_old_scripts_when_one_breaks_and_applies_a_fixed_one() {
    let script = |v: &str| format!("fn access_token_claims(ctx) {{\n  #{{ version: {v} }}\n}}\n");
    let s = start_with_scripts(VERSIONED, &[("version.rhai", &script("1"))]);
    assert_eq!(version_claim(&s), 1);
    let file = s.dir.join("plugins/version.rhai");

    std::fs::write(&file, "fn access_token_claims(ctx) {\n  #{ version: 2 \n").unwrap();
    s.hup();
    let logs = s.wait_for_log("reload rejected");
    assert!(
        logs.contains("version.rhai") && logs.contains(": line "),
        "the error names the file and line: {logs}"
    );
    assert_eq!(version_claim(&s), 1, "the old generation still serves");

    std::fs::write(&file, script("3")).unwrap();
    s.hup();
    eventually("the new script", || version_claim(&s) == 3);
    s.wait_for_log("configuration reloaded");
}

#[test]
fn authorize_redirects_carry_the_policy_decision_into_the_code() {
    // The code's refresh token decision comes from the policy at /authorize
    // (the browser sends no User-Agent here); at the exchange (from the
    // "backend") the policy leaves the code's decision as it is.
    let s = start_with_scripts(
        POLICY,
        &[(
            "policy.rhai",
            r#"fn scope_policy(ctx) {
                if ctx.request.user_agent != "backend" {
                    #{ refresh_token: false }
                }
            }"#,
        )],
    );
    let code = Flow {
        scope: "openid offline_access",
        ..Flow::new(&s, "web", CB)
    }
    .code(&browser());
    let r = client()
        .post(s.url("/demo/token"))
        .basic_auth("web", Some("web-secret"))
        .header("user-agent", "backend")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    assert_eq!(t["scope"], "openid offline_access");
    assert!(t.get("refresh_token").is_none(), "{t}");
}

const CONSENT: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    users:
      - { username: alice, password_hash: "{alice}", claims: { name: Alice } }
    plugins: [first_party_consent.rhai]
    clients:
      - { id: own, secret: s, redirect_uris: ["http://app.test/cb"], scopes: [openid, profile], metadata: { first_party: true } }
      - { id: payroll, secret: s, redirect_uris: ["http://app.test/cb"], scopes: [openid, profile], metadata: { sensitive: true } }
      - { id: other, secret: s, redirect_uris: ["http://app.test/cb"], scopes: [openid, profile] }
"#;

/// Whether `/authorize` for a signed-in browser asks the user something
/// rather than going straight back to the client with a code.
fn asks(s: &Server, b: &reqwest::blocking::Client, client_id: &str) -> bool {
    let url = Flow {
        scope: "openid profile",
        ..Flow::new(s, client_id, CB)
    }
    .authorize_url();
    let r = b.get(url).send().unwrap();
    let back = r.status() == 303 && common::flow::location(&r).starts_with(CB);
    !back
}

#[test]
fn consent_policy_skips_requires_or_remembers() {
    let script = include_str!("../plugins/cookbook/first_party_consent.rhai");
    let yaml = CONSENT.replace("{alice}", ALICE_HASH);
    let s = start_with_scripts(&yaml, &[("first_party_consent.rhai", script)]);
    let b = browser();
    // Signed in through a third-party app, which asks once (and Flow consents)...
    let code = Flow {
        scope: "openid profile",
        ..Flow::new(&s, "other", CB)
    }
    .code(&b);
    assert!(!code.is_empty());
    // ...and then remembers.
    assert!(
        !asks(&s, &b, "other"),
        "remembered consent is not asked again"
    );
    // A first-party app never asks, though the user never consented to it.
    assert!(!asks(&s, &b, "own"), "consent_policy returned skip");
    // A sensitive one asks every time, even after consent.
    assert!(asks(&s, &b, "payroll"), "consent_policy returned require");
    let page = Flow {
        scope: "openid profile",
        ..Flow::new(&s, "payroll", CB)
    }
    .authorize_url();
    let html = b.get(page).send().unwrap().text().unwrap();
    let r = common::flow::answer_consent(&s, &b, &html, "allow");
    assert!(common::flow::location(&r).starts_with(CB), "consented");
    assert!(asks(&s, &b, "payroll"), "and asked again after consenting");
    // prompt=none where the policy requires consent: consent_required.
    let url = Flow {
        scope: "openid profile",
        extra: vec![("state", "st"), ("prompt", "none")],
        ..Flow::new(&s, "payroll", CB)
    }
    .authorize_url();
    let r = b.get(url).send().unwrap();
    let to = common::flow::location(&r);
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("consent_required"),
        "{to}"
    );
}

const LIFETIMES: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    access_token_format: jwt
    users:
      - { username: alice, password_hash: "{alice}", claims: { groups: [contractors] } }
      - { username: bob, password_hash: "{alice}", claims: { groups: [staff] } }
    plugins: [short.rhai]
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: ["http://app.test/cb"]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, offline_access]
        lifetimes: { access_token: 1h, id_token: 1h, refresh_token: 30d }
"#;

const SHORT_SCRIPT: &str = r#"
fn scope_policy(ctx) {
    let groups = ctx.user?.claims?.groups ?? [];
    if "contractors" in groups {
        // Shorter values win; one longer than the client's is ignored.
        return #{ access_token_lifetime: "15m", id_token_lifetime: 600, refresh_token_lifetime: "10y" };
    }
}
"#;

#[test]
fn scope_policy_shortens_token_lifetimes_and_never_lengthens_them() {
    let yaml = LIFETIMES.replace("{alice}", ALICE_HASH);
    let s = start_with_scripts(&yaml, &[("short.rhai", SHORT_SCRIPT)]);
    let lifetime = |t: &Value| {
        let id = decode(t["id_token"].as_str().unwrap());
        let at = decode(t["access_token"].as_str().unwrap());
        let secs = |c: &Value| c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
        (t["expires_in"].as_i64().unwrap(), secs(&at), secs(&id))
    };
    let t = tokens(&s, "web", "web-secret", "alice", "openid offline_access");
    assert_eq!(lifetime(&t), (900, 900, 600), "contractors: {t}");
    // The refresh token keeps the client's 30 days (10y is longer), and a
    // refresh is shortened the same way: the policy runs there too.
    let refresh = t["refresh_token"].as_str().unwrap();
    let info = introspect(&s, "demo", "web", "web-secret", refresh);
    let left = info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap();
    assert_eq!(left, 30 * 86400, "{info}");
    let r = post_basic(
        &s,
        "/demo/token",
        "web",
        "web-secret",
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(r.status(), 200);
    let t: Value = r.json().unwrap();
    assert_eq!(t["expires_in"], 900, "{t}");

    let t = tokens(&s, "web", "web-secret", "bob", "openid offline_access");
    assert_eq!(lifetime(&t), (3600, 3600, 3600), "staff: {t}");
}
