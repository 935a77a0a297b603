//! `profile: fapi2` (FAPI 2.0 Security Profile): `sesame check` names what
//! a FAPI client's configuration lacks, and the server holds such a client
//! to PAR, PKCE, `private_key_jwt` and DPoP-bound tokens, over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use common::flow::{location, pushed_authorize_url, query_param, Flow, CHALLENGE, VERIFIER};
use common::jose::{dpop_proof, es256_key, now, ClientKey};
use common::{browser, client, sesame, Server, ALICE_HASH};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[test]
fn check_names_everything_a_fapi_client_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fapi.yaml");
    std::fs::write(
        &path,
        r#"
tenants:
  - id: bank
    issuer: https://id.example/bank
    profile: fapi2
    lifetimes: { authorization_code: 5m }
    scopes: { api: { description: The API } }
    resource_servers:
      - { identifier: "https://api.example", client: api, scopes: [api] }
    clients:
      - id: app
        secret_hash: "HASH"
        redirect_uris: [https://app.example/cb]
      - { id: api, secret_hash: "HASH", grant_types: [client_credentials], scopes: [] }
  - id: shop
    issuer: https://id.example/shop
    signing: { alg: ES256 }
    clients:
      - id: plain
        secret_hash: "HASH"
        redirect_uris: [https://plain.example/cb]
      - id: strict
        profile: fapi2
        token_endpoint_auth_method: private_key_jwt
        token_endpoint_auth_signing_alg: RS256
        request_object_signing_alg: HS256
        id_token_signed_response_alg: RS256
        jwks: { keys: [ { kty: EC, crv: P-256, x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tyfrvAdEAzL1ZvVTpMrvvuJQqLjI" } ] }
        lifetimes: { authorization_code: 2m }
        redirect_uris: [https://strict.example/cb]
"#
        .replace("HASH", ALICE_HASH),
    )
    .unwrap();
    let ran = sesame(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    for expected in [
        "tenants[0].clients[0].token_endpoint_auth_method: a FAPI 2.0 client authenticates with private_key_jwt",
        "tenants[0].signing.alg: tenants[0].clients[0] follows fapi2, whose ID tokens are never RS256",
        "tenants[0].lifetimes.authorization_code: 300s is too long",
        "tenants[1].clients[1].token_endpoint_auth_signing_alg: RS256 is not allowed",
        "tenants[1].clients[1].request_object_signing_alg: HS256 is not allowed",
        "tenants[1].clients[1].id_token_signed_response_alg: RS256 is not allowed",
        "tenants[1].clients[1].lifetimes.authorization_code: 120s is too long",
    ] {
        assert!(
            ran.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            ran.stderr
        );
    }
    // The client without the profile is not held to it, nor a resource
    // server's own client (it only introspects).
    for other in ["tenants[1].clients[0]", "tenants[0].clients[1]"] {
        assert!(!ran.stderr.contains(other), "{other}: {}", ran.stderr);
    }
}

fn config(key: &ClientKey) -> String {
    let jwks = json!({ "keys": [key.jwk] });
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    signing: {{ alg: ES256 }}
    users:
      - {{ username: alice, password_hash: "{ALICE_HASH}" }}
    clients:
      - id: bank
        profile: fapi2
        token_endpoint_auth_method: private_key_jwt
        jwks: {jwks}
        skip_consent: true
        redirect_uris: [http://bank.test/cb]
        scopes: [openid]
"#
    )
}

/// A fresh `private_key_jwt` assertion of `bank` for the issuer.
fn assertion(s: &Server, key: &ClientKey) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    let jti = format!("{:032x}", rand::random::<u128>());
    let claims = json!({ "iss": "bank", "sub": "bank", "aud": s.url("/demo"), "jti": jti, "iat": now(), "exp": now() + 60 });
    encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(&key.pem).unwrap(),
    )
    .unwrap()
}

/// POST `form` to `path` as `bank`, authenticated by an assertion.
fn post(
    s: &Server,
    key: &ClientKey,
    path: &str,
    form: &[(&str, &str)],
    dpop: Option<&str>,
) -> reqwest::blocking::Response {
    let assertion = assertion(s, key);
    let mut form = form.to_vec();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", &assertion));
    let mut req = client().post(s.url(path)).form(&form);
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    req.send().unwrap()
}

#[test]
fn a_fapi_client_is_held_to_the_profile() {
    let key = es256_key("bank-1");
    let s = common::start_sqlite(&config(&key));
    let dpop_key = es256_key("dpop");
    let request = [
        ("response_type", "code"),
        ("client_id", "bank"),
        ("redirect_uri", "http://bank.test/cb"),
        ("scope", "openid"),
        ("state", "st-1"),
    ];

    // A plain authorization request: refused, back to the client.
    let mut f = Flow::new(&s, "bank", "http://bank.test/cb");
    f.scope = "openid";
    f.extra.push(("code_challenge", CHALLENGE));
    f.extra.push(("code_challenge_method", "S256"));
    let r = browser().get(f.authorize_url()).send().unwrap();
    let to = location(&r);
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("invalid_request"),
        "{to}"
    );

    // Pushed without PKCE: refused at the push.
    let r = post(&s, &key, "/demo/par", &request, None);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_request");

    // Pushed with PKCE, authenticated by its key: the flow runs.
    let mut pushed = request.to_vec();
    pushed.push(("code_challenge", CHALLENGE));
    pushed.push(("code_challenge_method", "S256"));
    let u = pushed_authorize_url(
        &s,
        "demo",
        "bank",
        post(&s, &key, "/demo/par", &pushed, None),
    );
    let back = f.run_from(&browser(), &u);
    // `iss` in the response (RFC 9207).
    assert_eq!(query_param(&back, "iss").unwrap(), s.url("/demo"));
    let code = query_param(&back, "code").unwrap();

    // Its tokens must be DPoP-bound: no proof, no token (and the code lives on).
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://bank.test/cb"),
        ("code_verifier", VERIFIER),
    ];
    let r = post(&s, &key, "/demo/token", &exchange, None);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_dpop_proof");
    let proof = dpop_proof(&dpop_key, "POST", &s.url("/demo/token"), json!({}));
    let r = post(&s, &key, "/demo/token", &exchange, Some(&proof));
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["token_type"], "DPoP");
    // Its ID token is signed with the tenant's ES256 key, never RS256.
    let id_token = body["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
}
