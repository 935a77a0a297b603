//! Signed request objects (RFC 9101) over real HTTP: a request signed with
//! the client's key (or, HMAC, its secret) is the request, whatever the
//! query says; unsigned (`alg: none`) objects, objects signed by another
//! client, for another audience or expired are refused on sesame's page,
//! never redirected; a client that must sign its requests can't send a
//! plain one. Objects are made with `jsonwebtoken`, not sesame's code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use common::flow::{exchange, query_param, Flow};
use common::jose::{es256_key, now};
use common::{browser, Server, ALICE_HASH};

const CB: &str = "http://app.test/cb";
const SECRET: &str = "a-client-secret-long-enough-for-hs256-0123456789";

fn es256(pem: &[u8], claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("rp-1".into());
    encode(&h, claims, &EncodingKey::from_ec_pem(pem).unwrap()).unwrap()
}

fn authorize_url(s: &Server, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&s.url("/demo/authorize")).unwrap();
    u.query_pairs_mut().append_pair("client_id", client_id);
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

#[test]
fn signed_request_objects_and_their_bad_cases() {
    let (pem, jwk) = {
        let k = es256_key("rp-1");
        (k.pem, k.jwk)
    };
    let other_pem = es256_key("rp-1").pem;
    let jwks = json!({ "keys": [jwk] });
    let yaml = format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    users: [{{ username: alice, password_hash: "{ALICE_HASH}" }}]
    clients:
      - {{ id: signer, token_endpoint_auth_method: private_key_jwt, jwks: {jwks}, require_signed_request_object: true, skip_consent: true, redirect_uris: ["{CB}", "http://app.test/other"] }}
      - {{ id: hmac, secret: "{SECRET}", skip_consent: true, redirect_uris: ["{CB}"] }}
"#
    );
    let running = common::start_sqlite(&yaml);
    let s = &running.server;
    let issuer = s.url("/demo");
    let claims = |extra: Value| {
        let mut c = json!({
            "iss": "signer", "aud": issuer, "exp": now() + 300, "nbf": now() - 5,
            "response_type": "code", "client_id": "signer", "redirect_uri": CB,
            "scope": "openid", "state": "from-the-object", "nonce": "n-1", "max_age": 3600
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };

    // A signed request: its parameters win over the query's.
    let request = es256(&pem, &claims(json!({})));
    let url = authorize_url(
        s,
        "signer",
        &[
            ("request", &request),
            ("redirect_uri", "http://app.test/other"),
            ("state", "from-the-query"),
        ],
    );
    let flow = Flow {
        scope: "openid",
        ..Flow::new(s, "signer", CB)
    };
    let b = browser();
    let back = flow.run_from(&b, &url);
    assert!(back.starts_with(CB), "the object's redirect_uri: {back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some("from-the-object")
    );
    assert!(query_param(&back, "code").is_some());

    // HMAC with the client's secret, for a client that may send plain requests too.
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &json!({ "iss": "hmac", "aud": issuer, "response_type": "code", "redirect_uri": CB, "scope": "openid", "state": "hs" }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let hmac_flow = Flow {
        scope: "openid",
        ..Flow::new(s, "hmac", CB)
    };
    let back = hmac_flow.run_from(&browser(), &authorize_url(s, "hmac", &[("request", &hs)]));
    let code = query_param(&back, "code").unwrap();
    let t = exchange(s, "demo", "hmac", SECRET, &code, CB);
    assert!(t["id_token"].is_string(), "{t}");

    // Refused, on sesame's page (never a redirect, whatever redirect_uri says).
    let refused = |request: String, what: &str| {
        let r = browser()
            .get(authorize_url(
                s,
                "signer",
                &[("request", &request), ("redirect_uri", CB)],
            ))
            .send()
            .unwrap();
        assert!(r.headers().get("location").is_none(), "{what}: redirected");
        assert_eq!(r.status(), 400, "{what}");
        let html = r.text().unwrap();
        assert!(
            html.contains("invalid_request_object") || html.contains("request"),
            "{what}: {html}"
        );
    };
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    refused(none, "alg none");
    refused(
        es256(&other_pem, &claims(json!({}))),
        "signed by another key",
    );
    refused(
        encode(
            &Header::new(Algorithm::HS256),
            &claims(json!({ "iss": "hmac" })),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap(),
        "signed by another client (its secret)",
    );
    refused(
        es256(&pem, &claims(json!({ "aud": "https://elsewhere.example" }))),
        "another audience",
    );
    refused(
        es256(&pem, &claims(json!({ "exp": now() - 10 }))),
        "expired",
    );
    refused(
        es256(&pem, &claims(json!({ "nbf": now() + 3600 }))),
        "not valid yet",
    );
    refused(
        es256(&pem, &claims(json!({ "client_id": "hmac" }))),
        "another client_id inside",
    );
    refused(
        es256(
            &pem,
            &claims(json!({ "request_uri": "https://x.example/r" })),
        ),
        "nested",
    );

    // A client that must sign can't send a plain request.
    let r = browser().get(flow.authorize_url()).send().unwrap();
    assert_eq!(
        r.status(),
        400,
        "a plain request from a client that must sign"
    );
    assert!(r.text().unwrap().contains("signed request object"));

    // A request_uri to fetch stays unsupported.
    let r = browser()
        .get(authorize_url(
            s,
            "hmac",
            &[
                ("request_uri", "https://rp.example/req.jwt"),
                ("response_type", "code"),
                ("scope", "openid"),
                ("redirect_uri", CB),
            ],
        ))
        .send()
        .unwrap();
    // Refused on sesame's page: nothing is fetched, nothing redirected.
    assert_eq!(r.status(), 400, "request_uri by reference");
    assert!(r.headers().get("location").is_none());
    assert!(r.text().unwrap().contains("request_uri_not_supported"));

    let d: Value = browser()
        .get(s.url("/demo/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(d["request_parameter_supported"], true);
    assert_eq!(d["request_uri_parameter_supported"], false);
    assert!(d["request_object_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("ES256")));
}
