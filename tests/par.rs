//! Pushed authorization requests (RFC 9126) over real HTTP: a client pushes
//! its request to `/par`, the browser brings the `request_uri` to
//! `/authorize`, and the request is taken once, by that client, in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier};

use common::flow::{location, post_basic, query_param, Flow};
use common::{browser, client, Server, ALICE_HASH};
use reqwest::blocking::Response;
use serde_json::Value;

use common::flow::{CHALLENGE, VERIFIER};
const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// `issuer` is the issuer's `host:port` (`127.0.0.1:{port}` for a node's own).
fn config(issuer: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://{issuer}/demo
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin, email: alice@example.com }}
    clients:
      - id: web
        secret: web-secret
        redirect_uris: [http://app.test/cb, http://app.test/other]
        scopes: [openid, profile, email]
      - id: poster
        secret: poster-secret
        token_endpoint_auth_method: client_secret_post
        redirect_uris: [http://poster.test/cb]
        scopes: [openid, email]
      - id: spa
        redirect_uris: [http://spa.test/cb]
      - id: strict
        secret: strict-secret
        skip_consent: true
        require_pushed_authorization_requests: true
        redirect_uris: [http://strict.test/cb]
        scopes: [openid]
  - id: brief
    issuer: http://{issuer}/brief
    pushed_authorization_requests: {{ lifetime: 1s }}
    clients:
      - id: web
        secret: web-secret
        redirect_uris: [http://app.test/cb]
  - id: locked
    issuer: http://{issuer}/locked
    require_pushed_authorization_requests: true
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [http://app.test/cb]
"#
    )
}

fn own_config() -> String {
    config("127.0.0.1:{port}")
}

/// Push `form` to `/{tenant}/par` as `id` (HTTP Basic).
fn push(s: &Server, tenant: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> Response {
    post_basic(s, &format!("/{tenant}/par"), id, secret, form)
}

/// Push `form` as `web` of `/demo`; the `request_uri` of the 201 answer.
fn pushed(s: &Server, form: &[(&str, &str)]) -> String {
    let r = push(s, "demo", "web", "web-secret", form);
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    v["request_uri"].as_str().unwrap().to_string()
}

const PLAIN: &[(&str, &str)] = &[
    ("response_type", "code"),
    ("redirect_uri", "http://app.test/cb"),
    ("scope", "openid"),
    ("state", "st-par"),
];

fn authorize_url(s: &Server, tenant: &str, query: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&s.url(&format!("/{tenant}/authorize"))).unwrap();
    u.query_pairs_mut().extend_pairs(query);
    u.to_string()
}

/// Bring `request_uri` to `/demo/authorize` as `client_id`, in a new browser.
fn redeem(s: &Server, client_id: &str, request_uri: &str) -> Response {
    let url = authorize_url(
        s,
        "demo",
        &[("client_id", client_id), ("request_uri", request_uri)],
    );
    browser().get(url).send().unwrap()
}

/// The answer is our error page (not a redirect) carrying `code`.
#[track_caller]
fn error_page(r: Response, code: &str) {
    assert_eq!(r.status(), 400, "an error page, not a redirect");
    assert!(r.headers().get("location").is_none());
    let html = r.text().unwrap();
    assert!(
        html.contains(&format!("<code>{code}</code>")),
        "no {code} in {html}"
    );
}

/// An RFC 6749 §5.2 JSON error with `code`, never cached.
#[track_caller]
fn json_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    let e: Value = r.json().unwrap();
    assert_eq!(e["error"], code, "{e}");
    assert!(e["error_description"].is_string());
    e
}

/// The stored parameters of every pushed request, in a SQLite test database.
fn stored(db: &common::db::TestDb) -> Vec<String> {
    use diesel::{Connection, RunQueryDsl};
    let path = db.url.strip_prefix("sqlite://").expect("a SQLite URL");
    let mut conn = diesel::SqliteConnection::establish(path).unwrap();
    let all: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "(SELECT json_group_array(params) FROM pushed_authorization_requests)",
    ))
    .get_result(&mut conn)
    .unwrap();
    serde_json::from_str(&all).unwrap()
}

#[test]
fn pushed_request_runs_the_code_flow() {
    for s in common::start_all(&own_config()) {
        let r = push(
            &s,
            "demo",
            "web",
            "web-secret",
            &[
                ("response_type", "code"),
                ("client_id", "web"),
                ("redirect_uri", "http://app.test/other"),
                ("scope", "openid email"),
                ("state", "st-pushed"),
                ("nonce", "n-pushed"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        );
        assert_eq!(r.status(), 201, "{:?}", s.db);
        assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
        let v: Value = r.json().unwrap();
        assert_eq!(v["expires_in"], 60);
        let request_uri = v["request_uri"].as_str().unwrap().to_string();
        let reference = request_uri.strip_prefix(PREFIX).expect("our URN");
        // At least 128 bits of base64url.
        assert!(reference.len() >= 22, "{reference}");
        assert!(reference
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));

        // Only client_id and request_uri count: the rest of the query is ignored.
        let url = authorize_url(
            &s,
            "demo",
            &[
                ("client_id", "web"),
                ("request_uri", &request_uri),
                ("redirect_uri", "http://app.test/cb"),
                ("state", "st-query"),
                ("scope", "openid profile"),
            ],
        );
        let b = browser();
        let done = Flow::new(&s, "web", "http://app.test/other").run_from(&b, &url);
        assert!(done.starts_with("http://app.test/other?"), "{done}");
        assert_eq!(query_param(&done, "state").as_deref(), Some("st-pushed"));
        let code = query_param(&done, "code").unwrap();

        let r = post_basic(
            &s,
            "/demo/token",
            "web",
            "web-secret",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://app.test/other"),
                ("code_verifier", VERIFIER),
            ],
        );
        assert_eq!(r.status(), 200, "{:?}", s.db);
        let t: Value = r.json().unwrap();
        assert_eq!(t["scope"], "openid email");
        let claims = common::jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(claims["nonce"], "n-pushed");
        assert_eq!(claims["aud"], "web");

        // The log names the request without its request_uri.
        let logs = s.wait_for_log("par.pushed");
        assert!(!logs.contains(reference), "request_uri in the log");
        let metrics = client()
            .get(s.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(metrics.contains(r#"endpoint="/par""#), "{metrics}");
        assert!(
            metrics.contains(
                r#"sesame_pushed_authorization_requests_total{tenant="demo",outcome="used"} 1"#
            ),
            "{metrics}"
        );
    }
}

#[test]
fn public_and_post_clients_push_too() {
    let s = common::start_sqlite(&own_config());
    // client_secret_post: credentials in the body, never stored.
    let r = client()
        .post(s.url("/demo/par"))
        .form(&[
            ("client_id", "poster"),
            ("client_secret", "poster-secret"),
            ("response_type", "code"),
            ("scope", "openid email"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    let rows = stored(&s.db);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains("openid email"), "{rows:?}");
    assert!(!rows[0].contains("client_secret") && !rows[0].contains("poster-secret"));
    let r = redeem(&s, "poster", v["request_uri"].as_str().unwrap());
    assert_eq!(r.status(), 303);
    assert!(location(&r).contains("/demo/login?"));
    assert_eq!(stored(&s.db).len(), 0, "taken is gone");

    // A public client (`none`) is identified by client_id, and must use PKCE.
    let public = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![
            ("client_id", "spa"),
            ("response_type", "code"),
            ("scope", "openid"),
        ];
        form.extend_from_slice(extra);
        client()
            .post(s.url("/demo/par"))
            .form(&form)
            .send()
            .unwrap()
    };
    json_error(public(&[]), 400, "invalid_request");
    let r = public(&[
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    assert_eq!(r.status(), 201);
}

#[test]
fn request_uri_works_once() {
    for s in common::start_all(&own_config()) {
        let uri = pushed(&s, PLAIN);
        let r = redeem(&s, "web", &uri);
        assert_eq!(r.status(), 303, "{:?}", s.db);
        assert!(location(&r).contains("/demo/login?"));
        error_page(redeem(&s, "web", &uri), "invalid_request_uri");
    }
}

#[test]
fn request_uri_expires() {
    let s = common::start_sqlite(&own_config());
    let r = push(&s, "brief", "web", "web-secret", PLAIN);
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    assert_eq!(v["expires_in"], 1);
    let uri = v["request_uri"].as_str().unwrap();
    // Past the second it was stored in and the next one: expired on any clock tick.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let url = authorize_url(&s, "brief", &[("client_id", "web"), ("request_uri", uri)]);
    error_page(browser().get(url).send().unwrap(), "invalid_request_uri");
}

#[test]
fn request_uri_of_another_client_is_refused_and_stays_its_own() {
    let s = common::start_sqlite(&own_config());
    let uri = pushed(&s, PLAIN);
    error_page(redeem(&s, "poster", &uri), "invalid_request_uri");
    error_page(redeem(&s, "ghost", &uri), "invalid_request_uri");
    let r = redeem(&s, "web", &uri);
    assert_eq!(r.status(), 303);
    assert!(location(&r).contains("/demo/login?"));
}

#[test]
fn request_uri_that_is_not_ours_is_not_fetched() {
    let s = common::start_sqlite(&own_config());
    error_page(
        redeem(&s, "web", "https://attacker.test/request.jwt"),
        "request_uri_not_supported",
    );
    error_page(
        redeem(&s, "web", &format!("{PREFIX}made-up")),
        "invalid_request_uri",
    );
    // Without client_id (RFC 9126 §4 requires it).
    let uri = pushed(&s, PLAIN);
    let url = authorize_url(&s, "demo", &[("request_uri", &uri)]);
    error_page(browser().get(url).send().unwrap(), "invalid_request");
}

#[test]
fn push_with_an_unregistered_redirect_uri_is_refused_and_nothing_is_stored() {
    let s = common::start_sqlite(&own_config());
    let mut form = PLAIN.to_vec();
    form[1] = ("redirect_uri", "http://evil.test/cb");
    let r = push(&s, "demo", "web", "web-secret", &form);
    json_error(r, 400, "invalid_request");
    // web has two redirect URIs: one must be named.
    let r = push(
        &s,
        "demo",
        "web",
        "web-secret",
        &[("response_type", "code"), ("scope", "openid")],
    );
    json_error(r, 400, "invalid_request");
    assert_eq!(stored(&s.db).len(), 0);
    pushed(&s, PLAIN);
    assert_eq!(stored(&s.db).len(), 1);
}

#[test]
fn push_is_validated_as_authorize_validates() {
    let s = common::start_sqlite(&own_config());
    let with = |name: &'static str, value: &'static str| {
        let mut form: Vec<(&str, &str)> =
            PLAIN.iter().filter(|(k, _)| *k != name).copied().collect();
        if !value.is_empty() {
            form.push((name, value));
        }
        form
    };
    for (form, status, code) in [
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            400,
            "invalid_request",
        ),
        (
            with("response_type", "token"),
            400,
            "unsupported_response_type",
        ),
        (with("response_type", ""), 400, "invalid_request"),
        (with("scope", "nothing-known"), 400, "invalid_scope"),
        (
            with("code_challenge_method", "plain"),
            400,
            "invalid_request",
        ),
        (with("prompt", "sometimes"), 400, "invalid_request"),
        (with("request", "eyJ.x.y"), 400, "invalid_request_object"),
        (with("client_id", "poster"), 400, "invalid_request"),
    ] {
        let r = push(&s, "demo", "web", "web-secret", &form);
        json_error(r, status, code);
    }
    assert_eq!(stored(&s.db).len(), 0);
    // PKCE rules: the public rule needs no client here; a bad challenge is refused.
    let mut form = PLAIN.to_vec();
    form.push(("code_challenge", "short"));
    json_error(
        push(&s, "demo", "web", "web-secret", &form),
        400,
        "invalid_request",
    );
}

#[test]
fn unauthenticated_push_is_invalid_client() {
    let s = common::start_sqlite(&own_config());
    let r = client()
        .post(s.url("/demo/par"))
        .form(&[
            ("client_id", "web"),
            ("response_type", "code"),
            ("scope", "openid"),
        ])
        .send()
        .unwrap();
    let _ = json_error(r, 401, "invalid_client");
    let r = push(&s, "demo", "web", "wrong", PLAIN);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    json_error(r, 401, "invalid_client");
    let r = client()
        .post(s.url("/demo/par"))
        .form(PLAIN)
        .send()
        .unwrap();
    json_error(r, 401, "invalid_client");
    assert_eq!(stored(&s.db).len(), 0);
    let r = client().get(s.url("/demo/par")).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
}

#[test]
fn client_that_must_push_is_refused_a_plain_request() {
    let s = common::start_sqlite(&own_config());
    let plain = |tenant, id, redirect_uri| {
        let url = authorize_url(
            &s,
            tenant,
            &[
                ("response_type", "code"),
                ("client_id", id),
                ("redirect_uri", redirect_uri),
                ("scope", "openid"),
                ("state", "st-plain"),
            ],
        );
        browser().get(url).send().unwrap()
    };
    for (tenant, id, cb) in [
        ("demo", "strict", "http://strict.test/cb"),
        ("locked", "web", "http://app.test/cb"),
    ] {
        let r = plain(tenant, id, cb);
        assert_eq!(r.status(), 303);
        let to = location(&r);
        assert!(to.starts_with(&format!("{cb}?")), "{to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some("invalid_request")
        );
        assert!(query_param(&to, "error_description")
            .unwrap()
            .contains("pushed authorization requests"));
        assert_eq!(query_param(&to, "state").as_deref(), Some("st-plain"));
        // Never to a redirect URI that is not registered.
        let r = plain(tenant, id, "http://evil.test/cb");
        error_page(r, "invalid_request");

        // Pushed, the same request goes through.
        let form = [
            ("response_type", "code"),
            ("redirect_uri", cb),
            ("scope", "openid"),
        ];
        let r = push(&s, tenant, id, &format!("{id}-secret"), &form);
        assert_eq!(r.status(), 201);
        let v: Value = r.json().unwrap();
        let url = authorize_url(
            &s,
            tenant,
            &[
                ("client_id", id),
                ("request_uri", v["request_uri"].as_str().unwrap()),
            ],
        );
        let r = browser().get(url).send().unwrap();
        assert_eq!(r.status(), 303);
        assert!(location(&r).contains(&format!("/{tenant}/login?")));
    }
    // Its neighbours in the tenant still may send plain requests.
    let r = plain("demo", "web", "http://app.test/cb");
    assert_eq!(r.status(), 303);
    assert!(location(&r).contains("/demo/login?"));
}

#[test]
fn concurrent_uses_of_one_request_uri_have_one_winner() {
    const RACERS: usize = 8;
    for db in common::db::test_databases() {
        // On MariaDB and PostgreSQL, two nodes of one issuer race.
        let a = Server::start(&own_config(), &db.url);
        let b = (db.backend != "sqlite")
            .then(|| Server::start(&config(&format!("127.0.0.1:{}", a.port)), &db.url));
        let nodes: Vec<&Server> = std::iter::once(&a).chain(b.as_ref()).collect();
        for _round in 0..3 {
            let uri = pushed(&a, PLAIN);
            let start = Arc::new(Barrier::new(RACERS));
            let racers: Vec<_> = (0..RACERS)
                .map(|i| {
                    let url = authorize_url(
                        nodes[i % nodes.len()],
                        "demo",
                        &[("client_id", "web"), ("request_uri", &uri)],
                    );
                    let start = start.clone();
                    std::thread::spawn(move || {
                        let b = browser();
                        start.wait();
                        let r = b.get(url).send().unwrap();
                        r.status().as_u16()
                    })
                })
                .collect();
            let statuses: Vec<u16> = racers.into_iter().map(|t| t.join().unwrap()).collect();
            let won = statuses.iter().filter(|s| **s == 303).count();
            let lost = statuses.iter().filter(|s| **s == 400).count();
            assert_eq!((won, lost), (1, RACERS - 1), "{db:?}: {statuses:?}");
        }
    }
}

#[test]
fn discovery_names_the_par_endpoint() {
    let s = common::start_sqlite(&own_config());
    for (tenant, required) in [("demo", false), ("locked", true)] {
        let d: Value = client()
            .get(s.url(&format!("/{tenant}/.well-known/openid-configuration")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            d["pushed_authorization_request_endpoint"],
            s.url(&format!("/{tenant}/par"))
        );
        assert_eq!(d["require_pushed_authorization_requests"], required);
        // Only our own request_uri values: fetching one stays unsupported.
        assert_eq!(d["request_uri_parameter_supported"], false);
    }
    // No CORS on /par: it is server to server.
    let r = client()
        .request(reqwest::Method::OPTIONS, s.url("/demo/par"))
        .send()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
