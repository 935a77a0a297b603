//! Discovery, JWKS, health and tenant routing over real HTTP, on two tenants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{client, sesame, Server};
use serde_json::Value;

fn config(es256_key: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: acme
    issuer: http://127.0.0.1:{{port}}/acme
    scopes:
      orders:read: {{ description: See orders }}
    clients:
      - id: shop
        secret: s
        redirect_uris: [https://shop.example/cb]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, orders:read]
  - id: globex
    issuer: http://127.0.0.1:{{port}}/globex
    signing: {{ alg: ES256, keys: [{es256_key}] }}
    clients:
      - id: batch
        secret: s
        grant_types: [client_credentials]
        scopes: []
"#
    )
}

fn keygen(alg: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["keygen", "--alg", alg])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn get_json(s: &Server, path: &str) -> (u16, Value) {
    let r = client().get(s.url(path)).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

#[test]
fn discovery_and_jwks_for_two_tenants_and_stable_generated_keys() {
    for db in common::db::test_databases() {
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("globex.pem"), keygen("ES256")).unwrap();
        let yaml = config("globex.pem");
        let s = Server::start_in(dir.clone(), &yaml, &db.url);

        for tenant in ["acme", "globex"] {
            let issuer = s.url(&format!("/{tenant}"));
            for well_known in ["openid-configuration", "oauth-authorization-server"] {
                let (status, d) = get_json(&s, &format!("/{tenant}/.well-known/{well_known}"));
                assert_eq!(status, 200);
                assert_eq!(d["issuer"], issuer.as_str());
                for ep in [
                    "authorization_endpoint",
                    "token_endpoint",
                    "userinfo_endpoint",
                    "jwks_uri",
                ] {
                    assert!(d[ep].as_str().unwrap().starts_with(&issuer), "{ep}");
                }
                assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
                assert_eq!(
                    d["response_modes_supported"],
                    serde_json::json!(["query", "form_post"])
                );
                assert_eq!(
                    d["code_challenge_methods_supported"],
                    serde_json::json!(["S256"])
                );
                assert_eq!(d["request_parameter_supported"], true);
                assert_eq!(d["request_uri_parameter_supported"], false);
                assert_eq!(d["authorization_response_iss_parameter_supported"], true);
                assert_eq!(d["subject_types_supported"], serde_json::json!(["public"]));
            }
        }
        let (_, acme) = get_json(&s, "/acme/.well-known/openid-configuration");
        assert_eq!(
            acme["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
        assert!(acme["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"orders:read".into()));
        let (_, globex) = get_json(&s, "/globex/.well-known/openid-configuration");
        assert_eq!(
            globex["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256", "RS256"]),
            "RS256 is always offered (OIDC Core §15.1)"
        );

        let (status, jwks) = get_json(&s, "/acme/jwks");
        assert_eq!(status, 200);
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none());
        let acme_kid = key["kid"].as_str().unwrap().to_string();
        // The public key is usable: openssl rebuilds a 2048-bit RSA key from n and e.
        let b64 = |v: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v.as_str().unwrap())
                .unwrap()
        };
        let rsa = openssl::rsa::Rsa::from_public_components(
            openssl::bn::BigNum::from_slice(&b64(&key["n"])).unwrap(),
            openssl::bn::BigNum::from_slice(&b64(&key["e"])).unwrap(),
        )
        .unwrap();
        assert_eq!(rsa.size() * 8, 2048);

        let (_, jwks) = get_json(&s, "/globex/jwks");
        assert_eq!(jwks["keys"][0]["kty"], "EC");
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        let globex_kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
        // Beside the configured ES256 key, a generated and stored RS256 one.
        assert_eq!(jwks["keys"][1]["alg"], "RS256");
        let globex_rs256 = jwks["keys"][1]["kid"].as_str().unwrap().to_string();

        // A restart on the same database serves the same generated key.
        s.stop();
        let s = Server::start_in(dir, &yaml, &db.url);
        let (_, jwks) = get_json(&s, "/acme/jwks");
        assert_eq!(jwks["keys"][0]["kid"], acme_kid.as_str(), "{}", db.backend);
        let (_, jwks) = get_json(&s, "/globex/jwks");
        assert_eq!(jwks["keys"][0]["kid"], globex_kid.as_str());
        assert_eq!(
            jwks["keys"][1]["kid"],
            globex_rs256.as_str(),
            "stored, not made again"
        );
    }
}

#[test]
fn health_readiness_metrics_and_unknown_paths() {
    let s = common::start_sqlite(&config("missing.pem").replace(", keys: [missing.pem]", ""));
    let (status, h) = get_json(&s, "/healthz");
    assert_eq!((status, h["status"].as_str()), (200, Some("ok")));
    let (status, r) = get_json(&s, "/readyz");
    assert_eq!((status, r["status"].as_str()), (200, Some("ready")));
    let metrics = client()
        .get(s.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("sesame_http_responses_total"));

    for path in ["/nope", "/acme/nope", "/acmeX/jwks", "/"] {
        let r = client().get(s.url(path)).send().unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert_eq!(r.json::<Value>().unwrap()["error"], "not_found");
    }
    let r = client().post(s.url("/acme/jwks")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().unwrap()["error"], "method_not_allowed");
}

#[test]
fn tenant_is_chosen_by_host_then_path() {
    let s = common::start_sqlite(&config("x").replace(", keys: [x]", ""));
    // A Host that matches no issuer: path alone decides, as only one issuer path matches.
    let r = client()
        .get(s.url("/acme/.well-known/openid-configuration"))
        .header("host", "localhost")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().unwrap();
    assert_eq!(d["issuer"], s.url("/acme").as_str());
}

#[test]
fn check_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        r#"
tenants:
  - id: Bad_Id
    issuer: "http://x/t#frag"
    lifetimes: { access_token: 0s }
    clients:
      - id: c
        redirect_uris: [relative/path, "javascript:alert(1)"]
        post_logout_redirect_uris: ["data:text/html,bye"]
        scopes: [openid, unknown]
"#,
    )
    .unwrap();
    let out = sesame(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    let err = out.stderr;
    for path in [
        "tenants[0].id:",
        "tenants[0].issuer:",
        "tenants[0].lifetimes.access_token:",
        "tenants[0].clients[0].redirect_uris[0]:",
        "tenants[0].clients[0].redirect_uris[1]: \"javascript:alert(1)\": javascript: URIs can't be redirect URIs",
        "tenants[0].clients[0].post_logout_redirect_uris[0]: \"data:text/html,bye\": data: URIs",
        "tenants[0].clients[0].scopes[1]:",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }

    std::fs::write(&cfg, "tenants:\n  - id: x\n   issuer: y\n").unwrap();
    let out = sesame(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    let err = out.stderr;
    assert!(err.contains("line 3 column"), "{err}");
}

#[test]
fn check_reports_type_errors_and_everything_else_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    // One tenant, five kinds of mistake: two that fail to deserialize (an
    // invalid enum value, an unknown key) and three semantic ones they used
    // to hide.
    std::fs::write(
        &cfg,
        r#"tenants:
  - id: Acme Corp
    issuer: https://login.acme.example
    colour: blue
    clients:
      - id: shop
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0R8X5rmJ1RlV3Xj0pGZaKZ+4b6m2JdW7XGJiyq8Ljb0"
        redirect_uris: [/callback]
        grant_types: [authorization_code, password]
        scopes: [openid, orders:read]
"#,
    )
    .unwrap();
    let out = sesame(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    let err = out.stderr;
    for (path, what, line) in [
        ("tenants[0].colour", "unknown field `colour`", 4),
        (
            "tenants[0].clients[0].grant_types[1]",
            "unknown variant `password`",
            9,
        ),
        ("tenants[0].id", "may only contain a-z, 0-9 and -", 2),
        (
            "tenants[0].clients[0].redirect_uris[0]",
            "is not an absolute URL",
            8,
        ),
        (
            "tenants[0].clients[0].scopes[1]",
            "unknown scope \"orders:read\"",
            10,
        ),
    ] {
        let found = err
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{path}: ")))
            .unwrap_or_else(|| panic!("missing {path} in:\n{err}"));
        assert!(found.contains(what), "{found}");
        assert!(
            found.contains(&format!("(line {line} column ")),
            "{found}: want line {line}"
        );
    }
    assert_eq!(err.lines().count(), 6, "{err}");
}

#[test]
fn hash_and_keygen_commands() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .arg("hash")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"wonderland\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    let parsed = argon2::PasswordHash::new(phc.trim()).unwrap();
    use argon2::PasswordVerifier;
    // The trailing newline was stripped: the hash is of "wonderland".
    assert!(argon2::Argon2::default()
        .verify_password(b"wonderland", &parsed)
        .is_ok());

    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let pem = keygen(alg);
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{alg}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["keygen", "--alg", "HS256"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
