//! DPoP (RFC 9449) over real HTTP: proofs made by `jsonwebtoken` (not
//! sesame's JOSE code), tokens bound to their keys at `/token`, checked at
//! `/userinfo` and shown by introspection, and every way a proof goes bad.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flow::{introspect, pushed_authorize_url, query_param, Flow};
use common::jose::{
    ath, dpop_proof, ec_thumbprint, es256_jws, es256_key, now, private_jwk, ClientKey,
};
use common::{browser, client, jwt_claims, Server, ALICE_HASH};
use reqwest::blocking::Response;
use serde_json::{json, Value};

use common::flow::{CHALLENGE, VERIFIER};

/// `issuer` is the issuer's `host:port`: the node's own, or another node's
/// for a second node of the same issuer.
fn config(issuer: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://{issuer}/demo
    scopes:
      api.read: {{ description: Read the API }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin }}
    clients:
      - id: svc
        secret: svc-secret
        grant_types: [client_credentials]
        scopes: [api.read]
      - id: bound
        secret: bound-secret
        dpop_bound_access_tokens: true
        grant_types: [client_credentials]
        scopes: [api.read]
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [http://app.test/cb]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, offline_access]
      - id: spa
        skip_consent: true
        redirect_uris: [http://spa.test/cb]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, offline_access]
  - id: noncy
    issuer: http://{issuer}/noncy
    access_token_format: opaque
    dpop: {{ require_nonce: true, max_age: 30s }}
    clients:
      - id: svc
        secret: svc-secret
        grant_types: [client_credentials]
        scopes: [openid]
"#
    )
}

fn own_config() -> String {
    config("127.0.0.1:{port}")
}

/// `POST /{tenant}/token` as `id` (Basic) with these proofs (each its own
/// `DPoP` header).
fn token(
    s: &Server,
    tenant: &str,
    (id, secret): (&str, &str),
    form: &[(&str, &str)],
    proofs: &[&str],
) -> Response {
    let mut form = form.to_vec();
    if secret.is_empty() {
        form.push(("client_id", id));
    }
    let mut req = client()
        .post(s.url(&format!("/{tenant}/token")))
        .form(&form);
    if !secret.is_empty() {
        req = req.basic_auth(id, Some(secret));
    }
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    req.send().unwrap()
}

fn cc(s: &Server, tenant: &str, proofs: &[&str]) -> Response {
    token(
        s,
        tenant,
        ("svc", "svc-secret"),
        &[("grant_type", "client_credentials")],
        proofs,
    )
}

/// A proof for `POST /{tenant}/token` of `s`'s issuer.
fn token_proof(s: &Server, tenant: &str, key: &ClientKey, extra: Value) -> String {
    dpop_proof(key, "POST", &s.url(&format!("/{tenant}/token")), extra)
}

/// The status and `error` of an answer.
fn refused(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_proof_at_the_token_endpoint_binds_the_token_to_its_key() {
    let s = common::start_sqlite(&own_config());
    let key = es256_key("k1");
    let jkt = ec_thumbprint(&key.jwk);

    let r = cc(&s, "demo", &[&token_proof(&s, "demo", &key, json!({}))]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    let body: Value = r.json().unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["cnf"]["jkt"], jkt.as_str());
    let info = introspect(&s, "demo", "svc", "svc-secret", at);
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "DPoP");
    assert_eq!(info["cnf"]["jkt"], jkt.as_str());

    // Without a proof: a plain bearer token, no `cnf`.
    let body: Value = cc(&s, "demo", &[]).json().unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let at = body["access_token"].as_str().unwrap();
    assert!(jwt_claims(at).get("cnf").is_none());
    assert!(introspect(&s, "demo", "svc", "svc-secret", at)
        .get("cnf")
        .is_none());

    // A client registered with dpop_bound_access_tokens needs a proof.
    let form = [("grant_type", "client_credentials")];
    let r = token(&s, "demo", ("bound", "bound-secret"), &form, &[]);
    assert_eq!(refused(r), (400, "invalid_dpop_proof".to_string()));
    let proof = token_proof(&s, "demo", &key, json!({}));
    let r = token(&s, "demo", ("bound", "bound-secret"), &form, &[&proof]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["token_type"], "DPoP");

    // Discovery says which algorithms proofs may use.
    let d: Value = client()
        .get(s.url("/demo/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let algs = d["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")) && !algs.contains(&json!("HS256")));
}

#[test]
fn bad_proofs_are_refused_with_invalid_dpop_proof() {
    let s = common::start_sqlite(&own_config());
    let key = es256_key("k1");
    let other = es256_key("k2");
    let url = s.url("/demo/token");
    let t = now();
    let mut public = key.jwk.clone();
    public.as_object_mut().unwrap().remove("kid");
    let header = |typ: &str, alg: &str, jwk: Value| json!({ "typ": typ, "alg": alg, "jwk": jwk });
    let claims = json!({ "jti": "j-1", "htm": "POST", "htu": url, "iat": t });
    let cases: Vec<(&str, String)> = vec![
        (
            "for another URL",
            dpop_proof(&key, "POST", &s.url("/demo/userinfo"), json!({})),
        ),
        (
            "for another tenant",
            dpop_proof(&key, "POST", &s.url("/noncy/token"), json!({})),
        ),
        (
            "for another method",
            dpop_proof(&key, "GET", &url, json!({})),
        ),
        (
            "expired",
            dpop_proof(&key, "POST", &url, json!({ "iat": t - 300 })),
        ),
        (
            "from the future",
            dpop_proof(&key, "POST", &url, json!({ "iat": t + 120 })),
        ),
        (
            "iat as a string",
            dpop_proof(&key, "POST", &url, json!({ "iat": t.to_string() })),
        ),
        (
            "without jti",
            es256_jws(
                &key,
                &header("dpop+jwt", "ES256", public.clone()),
                &json!({ "htm": "POST", "htu": url, "iat": t }),
            ),
        ),
        (
            "typ JWT",
            es256_jws(&key, &header("JWT", "ES256", public.clone()), &claims),
        ),
        (
            "a private key in its jwk",
            es256_jws(
                &key,
                &header("dpop+jwt", "ES256", private_jwk(&key)),
                &claims,
            ),
        ),
        (
            "a symmetric alg",
            es256_jws(&key, &header("dpop+jwt", "HS256", public.clone()), &claims),
        ),
        (
            "alg none",
            es256_jws(&key, &header("dpop+jwt", "none", public.clone()), &claims),
        ),
        (
            "signed by another key than its jwk",
            es256_jws(
                &other,
                &header("dpop+jwt", "ES256", public.clone()),
                &claims,
            ),
        ),
        (
            "no jwk",
            es256_jws(&key, &json!({ "typ": "dpop+jwt", "alg": "ES256" }), &claims),
        ),
        ("not a JWS", "not-a-proof".to_string()),
    ];
    for (what, proof) in &cases {
        let r = cc(&s, "demo", &[proof]);
        assert_eq!(
            refused(r),
            (400, "invalid_dpop_proof".to_string()),
            "a proof {what}"
        );
    }
    // Two proofs in one request.
    let (a, b) = (
        token_proof(&s, "demo", &key, json!({})),
        token_proof(&s, "demo", &key, json!({})),
    );
    assert_eq!(
        refused(cc(&s, "demo", &[&a, &b])),
        (400, "invalid_dpop_proof".to_string())
    );
    // A replayed proof.
    let proof = token_proof(&s, "demo", &key, json!({}));
    assert_eq!(cc(&s, "demo", &[&proof]).status(), 200);
    assert_eq!(
        refused(cc(&s, "demo", &[&proof])),
        (400, "invalid_dpop_proof".to_string())
    );
    // The server kept answering: a good proof still works.
    assert_eq!(
        cc(&s, "demo", &[&token_proof(&s, "demo", &key, json!({}))]).status(),
        200
    );
}

#[test]
fn a_proof_replayed_at_another_node_is_refused() {
    for db in common::db::test_databases() {
        let a = Server::start(&own_config(), &db.url);
        let b = Server::start(&config(&format!("127.0.0.1:{}", a.port)), &db.url);
        let key = es256_key("k1");
        let proof = token_proof(&a, "demo", &key, json!({}));
        assert_eq!(cc(&a, "demo", &[&proof]).status(), 200, "{db:?}");
        // The same proof (same htu: one issuer) at the second node.
        let r = cc(&b, "demo", &[&proof]);
        assert_eq!(
            refused(r),
            (400, "invalid_dpop_proof".to_string()),
            "{db:?}"
        );
        // A fresh proof works at the second node.
        let fresh = token_proof(&a, "demo", &key, json!({}));
        assert_eq!(cc(&b, "demo", &[&fresh]).status(), 200, "{db:?}");
    }
}

/// A code flow of `client` with PKCE; the code.
fn pkce_code(s: &Server, client: &str, redirect_uri: &str) -> String {
    let mut f = Flow::new(s, client, redirect_uri);
    f.scope = "openid profile offline_access";
    f.extra.push(("code_challenge", CHALLENGE));
    f.extra.push(("code_challenge_method", "S256"));
    f.extra.push(("prompt", "consent"));
    let url = f.run(&browser());
    query_param(&url, "code").unwrap_or_else(|| panic!("no code in {url}"))
}

fn exchange(
    s: &Server,
    client: (&str, &str),
    code: &str,
    redirect: &str,
    proofs: &[&str],
) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
    ];
    let r = token(s, "demo", client, &form, proofs);
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

/// The tokens of a code flow of `web`, exchanged with a proof by `key`.
fn web_tokens(s: &Server, key: &ClientKey) -> Value {
    let code = pkce_code(s, "web", "http://app.test/cb");
    let proof = token_proof(s, "demo", key, json!({}));
    exchange(
        s,
        ("web", "web-secret"),
        &code,
        "http://app.test/cb",
        &[&proof],
    )
}

fn userinfo(s: &Server, scheme: &str, token: &str, proof: Option<&str>) -> Response {
    let mut req = client()
        .get(s.url("/demo/userinfo"))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().unwrap()
}

/// The `error` of a `WWW-Authenticate` challenge, and its scheme.
fn challenge(r: &Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn userinfo_takes_a_bound_token_only_with_a_proof_of_its_key() {
    let s = common::start_sqlite(&own_config());
    let key = es256_key("k1");
    let other = es256_key("k2");
    let body = web_tokens(&s, &key);
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap();
    let ui = s.url("/demo/userinfo");
    let good = |k: &ClientKey| dpop_proof(k, "GET", &ui, json!({ "ath": ath(at) }));

    let r = userinfo(&s, "DPoP", at, Some(&good(&key)));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["name"], "Alice Martin");

    // As a plain bearer token: refused.
    let r = userinfo(&s, "Bearer", at, None);
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).starts_with("Bearer error=\"invalid_token\""));
    // Even with a proof beside it.
    let r = userinfo(&s, "Bearer", at, Some(&good(&key)));
    assert_eq!(r.status(), 401);
    // In the form body: refused.
    let r = client()
        .post(&ui)
        .form(&[("access_token", at)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // DPoP scheme without a proof, with one lacking `ath`, for another
    // token, or by another key.
    for (what, proof) in [
        ("no proof", None),
        ("no ath", Some(dpop_proof(&key, "GET", &ui, json!({})))),
        (
            "another token's ath",
            Some(dpop_proof(&key, "GET", &ui, json!({ "ath": ath("other") }))),
        ),
        ("another key", Some(good(&other))),
        (
            "the token endpoint's URL",
            Some(dpop_proof(
                &key,
                "GET",
                &s.url("/demo/token"),
                json!({ "ath": ath(at) }),
            )),
        ),
    ] {
        let r = userinfo(&s, "DPoP", at, proof.as_deref());
        assert_eq!(r.status(), 401, "{what}");
        let c = challenge(&r);
        assert!(
            c.starts_with("DPoP error=\"invalid_dpop_proof\"") && c.contains("algs=\""),
            "{what}: {c}"
        );
    }
    // A replayed resource proof.
    let once = good(&key);
    assert_eq!(userinfo(&s, "DPoP", at, Some(&once)).status(), 200);
    assert_eq!(userinfo(&s, "DPoP", at, Some(&once)).status(), 401);

    // An unbound token presented with the DPoP scheme: refused.
    let code = common::flow::Flow::new(&s, "web", "http://app.test/cb").code(&browser());
    let plain =
        common::flow::exchange(&s, "demo", "web", "web-secret", &code, "http://app.test/cb");
    assert_eq!(plain["token_type"], "Bearer");
    let pt = plain["access_token"].as_str().unwrap();
    let proof = dpop_proof(&key, "GET", &ui, json!({ "ath": ath(pt) }));
    let r = userinfo(&s, "DPoP", pt, Some(&proof));
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).starts_with("DPoP error=\"invalid_token\""));
    assert_eq!(userinfo(&s, "Bearer", pt, None).status(), 200);
}

fn refresh(s: &Server, client: (&str, &str), rt: &str, proofs: &[&str]) -> Response {
    token(
        s,
        "demo",
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        proofs,
    )
}

#[test]
fn a_public_clients_refresh_tokens_are_bound_to_its_key() {
    let s = common::start_sqlite(&own_config());
    let key = es256_key("k1");
    let other = es256_key("k2");
    let spa = ("spa", "");
    let code = pkce_code(&s, "spa", "http://spa.test/cb");
    let proof = token_proof(&s, "demo", &key, json!({}));
    let body = exchange(&s, spa, &code, "http://spa.test/cb", &[&proof]);
    let rt = body["refresh_token"].as_str().expect("a refresh token");

    let r = refresh(&s, spa, rt, &[]);
    assert_eq!(refused(r), (400, "invalid_dpop_proof".to_string()));
    let r = refresh(&s, spa, rt, &[&token_proof(&s, "demo", &other, json!({}))]);
    assert_eq!(refused(r), (400, "invalid_dpop_proof".to_string()));
    // With its key: refreshed, and the successor is bound too.
    let r = refresh(&s, spa, rt, &[&token_proof(&s, "demo", &key, json!({}))]);
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let next = body["refresh_token"].as_str().unwrap();
    assert_eq!(
        refused(refresh(&s, spa, next, &[])),
        (400, "invalid_dpop_proof".to_string())
    );
    let r = refresh(&s, spa, next, &[&token_proof(&s, "demo", &key, json!({}))]);
    assert_eq!(r.status(), 200);

    // A confidential client's refresh token is bound by its authentication,
    // not a key: it refreshes without a proof (into a bearer token).
    let body = web_tokens(&s, &key);
    let rt = body["refresh_token"].as_str().unwrap();
    let r = refresh(&s, ("web", "web-secret"), rt, &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["token_type"], "Bearer");
}

#[test]
fn a_tenant_that_requires_nonces_hands_them_out_and_checks_them() {
    let s = common::start_sqlite(&own_config());
    let key = es256_key("k1");
    // No nonce: `use_dpop_nonce`, with the nonce to use.
    let r = cc(&s, "noncy", &[&token_proof(&s, "noncy", &key, json!({}))]);
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_string();
    assert_eq!(refused(r), (400, "use_dpop_nonce".to_string()));
    // A made-up or stale nonce: the same.
    let slot: i64 = nonce.split('.').next().unwrap().parse().unwrap();
    let mac = nonce.split('.').nth(1).unwrap();
    for bad in [
        "made-up".to_string(),
        format!("{}.{mac}", slot - 2),
        format!("{slot}.{}", "A".repeat(mac.len())),
    ] {
        let proof = token_proof(&s, "noncy", &key, json!({ "nonce": bad }));
        assert_eq!(
            refused(cc(&s, "noncy", &[&proof])),
            (400, "use_dpop_nonce".to_string()),
            "{bad}"
        );
    }
    // With it: a bound opaque token, and a nonce for next time.
    let proof = token_proof(&s, "noncy", &key, json!({ "nonce": nonce }));
    let r = cc(&s, "noncy", &[&proof]);
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("dpop-nonce"));
    let body: Value = r.json().unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let info = introspect(
        &s,
        "noncy",
        "svc",
        "svc-secret",
        body["access_token"].as_str().unwrap(),
    );
    assert_eq!(info["cnf"]["jkt"], ec_thumbprint(&key.jwk).as_str());
    // A tenant without nonces hands none out.
    let r = cc(&s, "demo", &[]);
    assert!(!r.headers().contains_key("dpop-nonce"));
}

#[test]
fn a_code_bound_by_dpop_jkt_or_a_proof_at_par_needs_that_key() {
    let s = common::start_sqlite(&own_config());
    let key = es256_key("k1");
    let other = es256_key("k2");
    let jkt = ec_thumbprint(&key.jwk);
    let web = ("web", "web-secret");
    let redeem = |code: &str, proofs: &[&str]| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://app.test/cb"),
        ];
        token(&s, "demo", web, &form, proofs)
    };
    // Bound by `dpop_jkt` at /authorize.
    let mut f = Flow::new(&s, "web", "http://app.test/cb");
    f.extra.push(("dpop_jkt", &jkt));
    let code = f.code(&browser());
    let bad_proof = (400, "invalid_dpop_proof".to_string());
    assert_eq!(refused(redeem(&code, &[])), bad_proof);
    let by_other = token_proof(&s, "demo", &other, json!({}));
    assert_eq!(refused(redeem(&code, &[&by_other])), bad_proof);
    let r = redeem(&code, &[&token_proof(&s, "demo", &key, json!({}))]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["token_type"], "DPoP");

    // A malformed dpop_jkt goes back to the client.
    let mut f = Flow::new(&s, "web", "http://app.test/cb");
    f.extra.push(("dpop_jkt", "not-a-thumbprint"));
    let r = browser().get(f.authorize_url()).send().unwrap();
    let to = common::flow::location(&r);
    assert_eq!(
        query_param(&to, "error").as_deref(),
        Some("invalid_request")
    );

    // Bound by a proof at /par.
    let push = |proof: &str, extra: &[(&str, &str)]| {
        let mut form = vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", "http://app.test/cb"),
            ("scope", "openid"),
        ];
        form.extend_from_slice(extra);
        client()
            .post(s.url("/demo/par"))
            .basic_auth("web", Some("web-secret"))
            .header("DPoP", proof)
            .form(&form)
            .send()
            .unwrap()
    };
    let par_proof = |k: &ClientKey| dpop_proof(k, "POST", &s.url("/demo/par"), json!({}));
    let r = push(
        &par_proof(&key),
        &[("dpop_jkt", &ec_thumbprint(&other.jwk))],
    );
    assert_eq!(refused(r), (400, "invalid_dpop_proof".to_string()));
    let u = pushed_authorize_url(&s, "demo", "web", push(&par_proof(&key), &[]));
    let back = Flow::new(&s, "web", "http://app.test/cb").run_from(&browser(), &u);
    let code = query_param(&back, "code").unwrap();
    let by_other = token_proof(&s, "demo", &other, json!({}));
    assert_eq!(refused(redeem(&code, &[&by_other])), bad_proof);
    let r = redeem(&code, &[&token_proof(&s, "demo", &key, json!({}))]);
    assert_eq!(r.status(), 200);
}
