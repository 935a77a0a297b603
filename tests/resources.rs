//! Resource indicators (RFC 8707) over real HTTP: `resource` at authorize
//! and token sets the access token's audience (RFC 9068 `aud`), its scopes,
//! format and lifetime come from the resource server's declaration, and
//! each resource server sees only its own tokens at introspection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flow::{introspect, post_basic, query_param, Flow};
use common::{browser, jwt_claims, Server, ALICE_HASH};
use reqwest::blocking::Response;
use serde_json::Value;

const API: &str = "https://api.example";
const FILES: &str = "https://files.example";
const ADMIN: &str = "https://admin.example";

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    scopes:
      api.read: { description: Read the API }
      api.write: { description: Change things through the API }
      files.read: { description: Read your files }
      admin: { description: Administer }
    users:
      - username: alice
        password_hash: "$ALICE"
        claims: { name: Alice Martin }
    resource_servers:
      - identifier: https://api.example
        client: api-rs
        scopes: [api.read, api.write]
        access_token: { format: jwt, lifetime: 2m }
      - identifier: https://files.example
        client: files-rs
        scopes: [files.read]
        access_token: { format: opaque }
      - identifier: https://admin.example
        client: admin-rs
        scopes: [admin]
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [http://app.test/cb]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, offline_access, api.read, api.write, files.read, admin]
      - id: svc
        secret: svc-secret
        grant_types: [client_credentials]
        scopes: [api.read, files.read]
      - { id: api-rs, secret: api-secret, grant_types: [client_credentials], scopes: [] }
      - { id: files-rs, secret: files-secret, grant_types: [client_credentials], scopes: [] }
      - { id: admin-rs, secret: admin-secret, grant_types: [client_credentials], scopes: [] }
"#;

fn config() -> String {
    CONFIG.replace("$ALICE", ALICE_HASH)
}

fn token(s: &Server, id: &str, secret: &str, form: &[(&str, &str)]) -> Response {
    post_basic(s, "/demo/token", id, secret, form)
}

fn ok(r: Response) -> Value {
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn error(r: Response) -> String {
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    v["error"].as_str().unwrap().to_string()
}

/// Whether resource server `id` sees `token` as active.
fn seen_by(s: &Server, id: &str, secret: &str, token: &str) -> bool {
    introspect(s, "demo", id, secret, token)["active"] == true
}

#[test]
fn client_credentials_for_a_resource_get_its_audience_scopes_format_and_lifetime() {
    for s in common::start_all(&config()) {
        let cc = |resource: &str, scope: Option<&str>| {
            let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
            form.extend(scope.map(|sc| ("scope", sc)));
            token(&s, "svc", "svc-secret", &form)
        };
        // For the API: a JWT with the API as audience, only its scopes, its lifetime.
        let body = ok(cc(API, None));
        let at = body["access_token"].as_str().unwrap();
        let claims = jwt_claims(at);
        assert_eq!(claims["aud"], API);
        assert_eq!(claims["scope"], "api.read");
        assert_eq!(body["scope"], "api.read");
        assert_eq!(body["expires_in"], 120);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            120
        );
        assert!(seen_by(&s, "api-rs", "api-secret", at));
        // A token for the API is refused by the files server's introspection.
        assert!(!seen_by(&s, "files-rs", "files-secret", at));
        let info = introspect(&s, "demo", "api-rs", "api-secret", at);
        assert_eq!(info["aud"], API);

        // For the files server: opaque, as it declared.
        let body = ok(cc(FILES, None));
        let at = body["access_token"].as_str().unwrap();
        assert_eq!(at.matches('.').count(), 0, "an opaque token");
        assert_eq!(body["scope"], "files.read");
        assert!(seen_by(&s, "files-rs", "files-secret", at));
        assert!(!seen_by(&s, "api-rs", "api-secret", at));
        assert_eq!(
            introspect(&s, "demo", "svc", "svc-secret", at)["aud"],
            FILES
        );

        // Without `resource`: the tenant's audience, as before, and every
        // resource server accepting one of its scopes sees it.
        let body = ok(token(
            &s,
            "svc",
            "svc-secret",
            &[("grant_type", "client_credentials")],
        ));
        let at = body["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(at)["aud"], s.url("/demo"));
        assert!(seen_by(&s, "api-rs", "api-secret", at));
        assert!(seen_by(&s, "files-rs", "files-secret", at));

        // Unknown, several, a fragment, or no granted scope it accepts.
        for bad in [
            "https://unknown.example",
            "https://api.example#frag",
            "api.example",
        ] {
            assert_eq!(error(cc(bad, None)), "invalid_target", "{bad}");
        }
        let r = token(
            &s,
            "svc",
            "svc-secret",
            &[
                ("grant_type", "client_credentials"),
                ("resource", API),
                ("resource", FILES),
            ],
        );
        assert_eq!(error(r), "invalid_target");
        assert_eq!(error(cc(FILES, Some("api.read"))), "invalid_target");
        assert_eq!(error(cc(ADMIN, None)), "invalid_target");
    }
}

/// A code flow asking for `resources`; the token response of its code
/// exchanged for `at_token` (the resource named at the token endpoint).
fn code_flow(s: &Server, resources: &[&'static str], at_token: Option<&str>) -> Response {
    let mut f = Flow::new(s, "web", "http://app.test/cb");
    f.scope = "openid offline_access api.read api.write files.read";
    f.extra.push(("prompt", "consent"));
    for r in resources {
        f.extra.push(("resource", r));
    }
    let url = f.run(&browser());
    let code = query_param(&url, "code").unwrap_or_else(|| panic!("no code in {url}"));
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://app.test/cb"),
    ];
    form.extend(at_token.map(|r| ("resource", r)));
    token(s, "web", "web-secret", &form)
}

fn refresh(s: &Server, rt: &str, extra: &[(&str, &str)]) -> Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    form.extend_from_slice(extra);
    token(s, "web", "web-secret", &form)
}

#[test]
fn a_grant_for_two_resources_gives_each_its_own_token_and_downscopes_on_refresh() {
    for s in common::start_all(&config()) {
        let body = ok(code_flow(&s, &[API, FILES], Some(API)));
        let at = body["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(at)["aud"], API);
        assert_eq!(body["scope"], "api.read api.write");
        // The ID token is the client's, as always.
        assert_eq!(jwt_claims(body["id_token"].as_str().unwrap())["aud"], "web");
        let rt = body["refresh_token"].as_str().unwrap().to_string();

        // The same grant, refreshed for the files server: its token.
        let body = ok(refresh(&s, &rt, &[("resource", FILES)]));
        let files = body["access_token"].as_str().unwrap();
        assert_eq!(body["scope"], "files.read");
        assert!(seen_by(&s, "files-rs", "files-secret", files));
        assert!(!seen_by(&s, "api-rs", "api-secret", files));
        let rt = body["refresh_token"].as_str().unwrap().to_string();

        // Downscoped: the API with one scope.
        let body = ok(refresh(
            &s,
            &rt,
            &[("resource", API), ("scope", "api.read")],
        ));
        assert_eq!(body["scope"], "api.read");
        assert_eq!(
            jwt_claims(body["access_token"].as_str().unwrap())["scope"],
            "api.read"
        );
        let rt = body["refresh_token"].as_str().unwrap().to_string();

        // Not a resource of the grant; none named for a grant of two.
        assert_eq!(
            error(refresh(&s, &rt, &[("resource", ADMIN)])),
            "invalid_target"
        );
        assert_eq!(error(refresh(&s, &rt, &[])), "invalid_target");
        // The refusals spent nothing: the token still refreshes.
        assert_eq!(
            ok(refresh(&s, &rt, &[("resource", API)]))["scope"],
            "api.read api.write"
        );

        // A grant for one resource needs no `resource` at the token endpoint.
        let body = ok(code_flow(&s, &[FILES], None));
        assert_eq!(body["scope"], "files.read");
        // And a token request may not reach beyond the grant's resources.
        assert_eq!(error(code_flow(&s, &[FILES], Some(API))), "invalid_target");
    }
}

#[test]
fn an_authorization_request_for_an_unknown_resource_goes_back_with_invalid_target() {
    let s = common::start_sqlite(&config());
    let mut f = Flow::new(&s, "web", "http://app.test/cb");
    f.extra.push(("resource", "https://unknown.example"));
    let r = browser().get(f.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 303);
    let to = common::flow::location(&r);
    assert!(to.starts_with("http://app.test/cb?"), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_target"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("st-123"));
}
