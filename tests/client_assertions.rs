//! Clients that authenticate with keys (RFC 7523, OpenID Connect Core §9):
//! `private_key_jwt` with keys in the YAML or at a `jwks_uri`, and
//! `client_secret_jwt`, over real HTTP, with the bad cases: wrong `aud`,
//! expired, too long-lived or replayed assertions (replayed across two
//! nodes on every backend), a key the client doesn't have, an algorithm it
//! may not use, `alg: none`, and a `jwks_uri` that is slow, huge or down.
//!
//! Assertions are made with `jsonwebtoken`, not with sesame's own code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use common::jose::{es256_key, now, ClientKey};
use common::{client, sesame, Server};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const HS_SECRET: &str = "a-client-secret-long-enough-for-hs256-0123456789";

fn jti() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The claims of a good assertion by `client` for `aud`.
fn claims(client: &str, aud: &str) -> Value {
    json!({ "iss": client, "sub": client, "aud": aud, "jti": jti(), "iat": now(), "exp": now() + 60 })
}

fn signed_es256(key: &ClientKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(&key.pem).unwrap(),
    )
    .unwrap()
}

fn signed_hs(alg: Algorithm, secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A client_credentials request authenticated by `assertion`.
fn token(s: &Server, assertion: &str) -> (u16, Value) {
    let r = client()
        .post(s.url("/demo/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn config(key: &ClientKey, jwks_base: &str) -> String {
    let jwks = json!({ "keys": [key.jwk] });
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://{{issuer}}/demo
    scopes: {{ api: {{ description: The API }} }}
    clients:
      - {{ id: keyed, token_endpoint_auth_method: private_key_jwt, jwks: {jwks}, grant_types: [client_credentials], scopes: [api] }}
      - {{ id: pinned, token_endpoint_auth_method: private_key_jwt, token_endpoint_auth_signing_alg: EdDSA, jwks: {jwks}, grant_types: [client_credentials], scopes: [api] }}
      - {{ id: hmac, secret: "{HS_SECRET}", token_endpoint_auth_method: client_secret_jwt, token_endpoint_auth_signing_alg: HS256, grant_types: [client_credentials], scopes: [api] }}
      - {{ id: fetched, token_endpoint_auth_method: private_key_jwt, jwks_uri: "{jwks_base}/good", grant_types: [client_credentials], scopes: [api] }}
      - {{ id: slow, token_endpoint_auth_method: private_key_jwt, jwks_uri: "{jwks_base}/slow", grant_types: [client_credentials], scopes: [api] }}
      - {{ id: huge, token_endpoint_auth_method: private_key_jwt, jwks_uri: "{jwks_base}/huge", grant_types: [client_credentials], scopes: [api] }}
      - {{ id: down, token_endpoint_auth_method: private_key_jwt, jwks_uri: "http://127.0.0.1:9/jwks", grant_types: [client_credentials], scopes: [api] }}
"#
    )
}

/// A small JWKS server: `/good` serves the current set, `/slow` answers
/// after 20 s, `/huge` sends a megabyte. Counts the requests to `/good`.
struct JwksServer {
    base: String,
    good: Arc<Mutex<String>>,
    fetches: Arc<Mutex<usize>>,
}

fn jwks_server(initial: &Value) -> JwksServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let good = Arc::new(Mutex::new(initial.to_string()));
    let fetches = Arc::new(Mutex::new(0));
    let (g, f) = (good.clone(), fetches.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (g, f) = (g.clone(), f.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if req.starts_with("GET /good") {
                    *f.lock().unwrap() += 1;
                    g.lock().unwrap().clone()
                } else if req.starts_with("GET /slow") {
                    std::thread::sleep(std::time::Duration::from_secs(20));
                    "{\"keys\":[]}".to_string()
                } else {
                    format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(1 << 20))
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    JwksServer {
        base,
        good,
        fetches,
    }
}

fn start(yaml: &str, db: &str, issuer: Option<&str>) -> Server {
    let yaml = match issuer {
        Some(i) => yaml.replace("{issuer}", i),
        None => yaml.replace("{issuer}", "127.0.0.1:{port}"),
    };
    Server::start(&yaml, db)
}

#[test]
fn private_key_jwt_and_client_secret_jwt_and_their_bad_cases() {
    let key = es256_key("k1");
    let other = es256_key("k1");
    let rotated = es256_key("k2");
    let jwks = jwks_server(&json!({ "keys": [key.jwk] }));
    let db = common::db::sqlite();
    let s = start(&config(&key, &jwks.base), &db.url, None);
    let aud = s.url("/demo/token");
    let issuer = s.url("/demo");

    // Keys in the YAML; aud the token endpoint or the issuer.
    let (status, body) = token(&s, &signed_es256(&key, &claims("keyed", &aud)));
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    assert_eq!(
        token(&s, &signed_es256(&key, &claims("keyed", &issuer))).0,
        200
    );

    // Replayed: the same jti twice.
    let once = signed_es256(&key, &claims("keyed", &aud));
    assert_eq!(token(&s, &once).0, 200);
    let (status, body) = token(&s, &once);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let refused = |assertion: String, what: &str| {
        let (status, body) = token(&s, &assertion);
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}");
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("keyed", &aud);
        f(&mut c);
        signed_es256(&key, &c)
    };
    refused(
        with(&|c| c["aud"] = json!("https://elsewhere.example/token")),
        "wrong aud",
    );
    refused(with(&|c| c["exp"] = json!(now() - 5)), "expired");
    refused(with(&|c| c["exp"] = json!(now() + 3600)), "an hour ahead");
    refused(
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        "no exp",
    );
    refused(
        with(&|c| {
            c.as_object_mut().unwrap().remove("jti");
        }),
        "no jti",
    );
    refused(
        with(&|c| c["iat"] = json!(now() + 600)),
        "issued in the future",
    );
    refused(with(&|c| c["sub"] = json!("hmac")), "sub is not iss");
    refused(
        signed_es256(&other, &claims("keyed", &aud)),
        "a key the client doesn't have",
    );
    refused(
        signed_es256(&key, &claims("pinned", &aud)),
        "ES256 for a client pinned to EdDSA",
    );
    // alg none, made by hand.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims("keyed", &aud).to_string())
    );
    refused(none, "alg none");
    // The wrong assertion type.
    let r = client()
        .post(s.url("/demo/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            (
                "client_assertion",
                &signed_es256(&key, &claims("keyed", &aud)),
            ),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    // client_secret_jwt: HS256 with the secret; HS512 is not this client's.
    assert_eq!(
        token(
            &s,
            &signed_hs(Algorithm::HS256, HS_SECRET, &claims("hmac", &aud))
        )
        .0,
        200
    );
    refused(
        signed_hs(Algorithm::HS512, HS_SECRET, &claims("hmac", &aud)),
        "HS512 for an HS256 client",
    );
    refused(
        signed_hs(Algorithm::HS256, "not-the-secret", &claims("hmac", &aud)),
        "the wrong secret",
    );

    // Introspection takes assertions too (aud: its own URL).
    let t = token(&s, &signed_es256(&key, &claims("keyed", &aud))).1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r: Value = client()
        .post(s.url("/demo/introspect"))
        .form(&[
            ("token", t.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            (
                "client_assertion",
                &signed_es256(&key, &claims("keyed", &s.url("/demo/introspect"))),
            ),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["active"], true, "{r}");

    // jwks_uri: fetched once and cached; a new kid makes it fetch again.
    assert_eq!(
        token(&s, &signed_es256(&key, &claims("fetched", &aud))).0,
        200
    );
    assert_eq!(
        token(&s, &signed_es256(&key, &claims("fetched", &aud))).0,
        200
    );
    assert_eq!(*jwks.fetches.lock().unwrap(), 1, "cached");
    *jwks.good.lock().unwrap() = json!({ "keys": [key.jwk, rotated.jwk] }).to_string();
    // Asked again once the last fetch is REFETCH_AFTER (5 s) old: a client
    // can't make sesame hammer its jwks_uri with unknown kids.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let (status, body) = token(&s, &signed_es256(&rotated, &claims("fetched", &aud)));
    assert_eq!(status, 200, "the rotated key is fetched: {body}");
    assert_eq!(*jwks.fetches.lock().unwrap(), 2);
    // Slow, huge or down: refused, and the server answers (no hang, no 500).
    for bad in ["slow", "huge", "down"] {
        let (status, body) = token(&s, &signed_es256(&key, &claims(bad, &aud)));
        assert_eq!(status, 401, "{bad}: {body}");
    }
    assert_eq!(
        token(&s, &signed_es256(&key, &claims("keyed", &aud))).0,
        200
    );

    // Discovery says what works.
    let d: Value = client()
        .get(s.url("/demo/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let methods = d["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        methods.contains(&json!("private_key_jwt"))
            && methods.contains(&json!("client_secret_jwt"))
    );
    let algs = d["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")) && !algs.contains(&json!("none")));
}

/// A jti is single use across nodes: an assertion accepted by one node is a
/// replay at the other, on every backend.
#[test]
fn an_assertion_replayed_at_another_node_is_refused() {
    let key = es256_key("k1");
    for db in common::db::test_databases() {
        let yaml = config(&key, "http://127.0.0.1:9");
        let a = start(&yaml, &db.url, None);
        let b = start(&yaml, &db.url, Some(&format!("127.0.0.1:{}", a.port)));
        let assertion = signed_es256(&key, &claims("keyed", &a.url("/demo/token")));
        assert_eq!(token(&a, &assertion).0, 200, "{}", db.backend);
        let (status, body) = token(&b, &assertion);
        assert_eq!(status, 401, "{}: {body}", db.backend);
        // A fresh one works at b.
        let fresh = signed_es256(&key, &claims("keyed", &a.url("/demo/token")));
        assert_eq!(token(&b, &fresh).0, 200, "{}", db.backend);
    }
}

/// `sesame check` refuses client_secret_jwt without the secret in clear, and
/// private_key_jwt without keys, naming each path.
#[test]
fn check_refuses_assertion_clients_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        r#"
tenants:
  - id: demo
    issuer: https://id.example/demo
    clients:
      - { id: a, secret_hash: "HASH", token_endpoint_auth_method: client_secret_jwt, grant_types: [client_credentials] }
      - { id: b, token_endpoint_auth_method: private_key_jwt, grant_types: [client_credentials] }
      - { id: c, token_endpoint_auth_method: private_key_jwt, jwks_uri: "http://keys.example/jwks", grant_types: [client_credentials] }
      - { id: d, token_endpoint_auth_method: private_key_jwt, jwks: { keys: [ { kty: EC, crv: P-256, x: AA, y: AA, d: AA } ] }, grant_types: [client_credentials] }
"#
        .replace("HASH", common::ALICE_HASH),
    )
    .unwrap();
    let ran = sesame(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(ran.code, Some(1));
    for expected in [
        "tenants[0].clients[0].token_endpoint_auth_method: client_secret_jwt needs the secret in clear",
        "tenants[0].clients[1].token_endpoint_auth_method: private_key_jwt needs the client's public keys",
        "tenants[0].clients[2].jwks_uri: \"http://keys.example/jwks\" must be https",
        "tenants[0].clients[3].jwks: keys[0] has the private member `d`",
    ] {
        assert!(ran.stderr.contains(expected), "missing {expected:?} in:\n{}", ran.stderr);
    }
}
