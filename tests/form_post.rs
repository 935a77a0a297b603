//! `response_mode=form_post` (OAuth 2.0 Form Post Response Mode) over real
//! HTTP: the authorization response — a code or an error, with `state` and
//! `iss` — comes as a page whose form the browser posts to the registered
//! redirect URI; the page's CSP allows its one script by hash and its form
//! to post there, and nothing unregistered is ever posted to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use common::flow::{answer_consent, exchange, location, query_param, sign_in, unescape};
use common::{browser, db, Server, ALICE_HASH};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CB: &str = "http://app.test/cb";
/// A registered redirect URI with a query of its own (kept, and escaped in the page).
const CB_QUERY: &str = "http://app.test/cb?x=1&y=2";
const QUICK_CB: &str = "https://quick.test:8443/cb";
const QUICK_SECRET: &str = "a-client-secret-long-enough-for-hs256-0123456789";

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:{port}" }
database: { url: "{db}" }
tenants:
  - id: demo
    issuer: http://127.0.0.1:{port}/demo
    users:
      - username: alice
        password_hash: "ALICE"
    clients:
      - id: web
        secret: web-secret
        redirect_uris: ["http://app.test/cb", "http://app.test/cb?x=1&y=2"]
        scopes: [openid, profile, email]
      - id: quick
        secret: "QUICK"
        skip_consent: true
        redirect_uris: ["https://quick.test:8443/cb"]
        scopes: [openid]
  - id: custom
    issuer: http://127.0.0.1:{port}/custom
    templates_dir: custom-templates
    clients:
      - id: web
        secret: web-secret
        redirect_uris: ["http://app.test/cb"]
"#;

/// A tenant's own form post page: still the `script` it is given, and a
/// form with `id="form_post"`.
const OVERRIDE: &str = r#"{% extends "base.html" %}
{% block main %}<p>Custom hop to {{ client.name }}</p>
<form id="form_post" method="post" action="{{ action }}">
{%- for name, value in fields %}<input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor -%}
<button type="submit">Go</button></form>
<script>{{ script }}</script>{% endblock %}
"#;

fn config() -> String {
    CONFIG
        .replace("ALICE", ALICE_HASH)
        .replace("QUICK", QUICK_SECRET)
}

/// A server on `db_url` whose directory holds the custom tenant's template.
fn start_on(db_url: &str) -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::create_dir_all(dir.join("custom-templates")).unwrap();
    std::fs::write(dir.join("custom-templates/form_post.html"), OVERRIDE).unwrap();
    Server::start_in(dir, &config(), db_url)
}

fn start() -> (Server, db::TestDb) {
    let db = db::sqlite();
    (start_on(&db.url), db)
}

fn authorize_url(s: &Server, tenant: &str, query: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&s.url(&format!("/{tenant}/authorize"))).unwrap();
    u.query_pairs_mut().extend_pairs(query);
    u.to_string()
}

/// A form-posted code request of `web` to `redirect_uri`.
fn web_request<'a>(redirect_uri: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile"),
        ("state", "st-<&\"fp\">"),
        ("response_mode", "form_post"),
    ];
    q.extend_from_slice(extra);
    q
}

/// Open `url` in `b` and sign in as alice when asked: the answer after
/// sign-in (the consent step's), or `/authorize`'s own when no sign-in was
/// needed.
fn open_and_sign_in(s: &Server, tenant: &str, b: &Client, url: &str) -> Response {
    let r = b.get(url).send().unwrap();
    if r.status() != 303 || !location(&r).contains("/login?") {
        return r;
    }
    sign_in(s, tenant, b, &location(&r), "alice")
}

/// `query` with `name` set to `value` (or left out when `None`).
fn with<'a>(
    query: &[(&'a str, &'a str)],
    name: &'a str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut q: Vec<_> = query.iter().copied().filter(|(k, _)| *k != name).collect();
    q.extend(value.map(|v| (name, v)));
    q
}

/// `GET /demo/authorize?query` in a new browser.
fn authorize(s: &Server, query: &[(&str, &str)]) -> Response {
    browser()
        .get(authorize_url(s, "demo", query))
        .send()
        .unwrap()
}

/// A form post page as the browser gets it.
struct Posted {
    action: String,
    fields: BTreeMap<String, String>,
    html: String,
    csp: BTreeMap<String, String>,
}

impl Posted {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// The attribute `name` of the tag `tag`, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let at = tag.find(&marker)? + marker.len();
    let len = tag[at..].find('"')?;
    Some(unescape(&tag[at..at + len]))
}

/// The CSP's directives, by name.
fn directives(csp: &str) -> BTreeMap<String, String> {
    csp.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once(' ') {
            Some((name, sources)) => (name.to_string(), sources.to_string()),
            None => (d.to_string(), String::new()),
        })
        .collect()
}

/// The answer is a form post page: 200, not cached, one form posting
/// hidden fields; its action and fields, its HTML and its CSP.
#[track_caller]
fn posted(r: Response) -> Posted {
    assert_eq!(r.status(), 200, "a form post page");
    assert!(r.headers().get("location").is_none());
    let h = r.headers();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-store, no-cache");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csp = directives(h["content-security-policy"].to_str().unwrap());
    let html = r.text().unwrap();
    assert_eq!(html.matches("<form").count(), 1, "{html}");
    let start = html.find("<form").unwrap();
    let form = &html[start..start + html[start..].find("</form>").expect("form end")];
    let open = &form[..form.find('>').unwrap()];
    assert_eq!(attr(open, "method").as_deref(), Some("post"), "{open}");
    let mut fields = BTreeMap::new();
    for (at, _) in form.match_indices("<input") {
        let tag = &form[at..at + form[at..].find('>').unwrap()];
        assert_eq!(attr(tag, "type").as_deref(), Some("hidden"), "{tag}");
        let name = attr(tag, "name").unwrap();
        assert!(fields.insert(name, attr(tag, "value").unwrap()).is_none());
    }
    Posted {
        action: attr(open, "action").unwrap(),
        fields,
        html,
        csp,
    }
}

/// The one inline script's exact text, as served.
fn script(html: &str) -> &str {
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    let start = html.find("<script>").expect("a plain <script>") + "<script>".len();
    &html[start..start + html[start..].find("</script>").unwrap()]
}

/// The page's CSP allows its script by the hash of the served text, its
/// form to post to `origin` only, and nothing else beyond the pages' own.
#[track_caller]
fn assert_csp(p: &Posted, origin: &str) {
    let digest = Sha256::digest(script(&p.html).as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    assert_eq!(
        p.csp["script-src"],
        format!("'sha256-{hash}'"),
        "{:?}",
        p.csp
    );
    assert_eq!(p.csp["form-action"], origin);
    assert_eq!(p.csp["default-src"], "'none'");
    assert_eq!(p.csp["style-src"], "'self'");
    assert_eq!(p.csp["frame-ancestors"], "'none'");
    assert_eq!(p.csp["base-uri"], "'none'");
    assert!(!p.csp.contains_key("frame-src"), "{:?}", p.csp);
    assert!(!p.csp.values().any(|v| v.contains("unsafe")), "{:?}", p.csp);
}

/// The answer is our error page with `code`, posting nowhere, running
/// nothing; its HTML.
#[track_caller]
fn error_page(r: Response, code: &str) -> String {
    assert_eq!(r.status(), 400, "an error page");
    assert!(r.headers().get("location").is_none());
    let csp = directives(r.headers()["content-security-policy"].to_str().unwrap());
    assert!(
        !csp.contains_key("script-src") && !csp.contains_key("form-action"),
        "{csp:?}"
    );
    let html = r.text().unwrap();
    assert!(html.contains(&format!("<code>{code}</code>")), "{html}");
    assert!(
        !html.contains("<form") && !html.contains("<script"),
        "{html}"
    );
    html
}

#[test]
fn form_post_code_flow_posts_code_state_and_iss_and_the_code_exchanges() {
    for db in db::test_databases() {
        let s = start_on(&db.url);
        let b = browser();
        let url = authorize_url(&s, "demo", &web_request(CB, &[]));
        let consent = open_and_sign_in(&s, "demo", &b, &url);
        assert_eq!(consent.status(), 200);
        let p = posted(answer_consent(&s, &b, &consent.text().unwrap(), "allow"));
        assert_eq!(p.action, CB);
        let names: Vec<&str> = p.fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["code", "iss", "state"]);
        assert_eq!(p.get("state"), Some("st-<&\"fp\">"));
        assert_eq!(p.get("iss").unwrap(), s.url("/demo"));
        assert_csp(&p, "http://app.test");
        let tokens = exchange(&s, "demo", "web", "web-secret", p.get("code").unwrap(), CB);
        assert!(tokens["id_token"].is_string() && tokens["access_token"].is_string());

        // Signed in and consented: /authorize answers with the page at once.
        let again = b.get(&url).send().unwrap();
        let p = posted(again);
        assert!(p.get("code").is_some_and(|c| !c.is_empty()));
        assert_eq!(p.action, CB);
    }
}

#[test]
fn the_page_works_without_javascript() {
    let (s, _db) = start();
    let p = posted(authorize(&s, &web_request(CB, &[("prompt", "none")])));
    let start = p.html.find("<form").unwrap();
    let form = &p.html[start..start + p.html[start..].find("</form>").unwrap()];
    // A visible button in the form, and words for a browser without scripts.
    assert!(
        form.contains("<button type=\"submit\">Continue</button>"),
        "{form}"
    );
    let noscript = &form[form.find("<noscript>").expect("noscript")..];
    assert!(noscript.contains("JavaScript is off"), "{noscript}");
    assert!(!p.html.contains("type=\"hidden\" name=\"submit\""));
}

#[test]
fn errors_after_the_redirect_uri_is_checked_are_form_posted_too() {
    let (s, _db) = start();
    // prompt=none without a session.
    let p = posted(authorize(&s, &web_request(CB, &[("prompt", "none")])));
    assert_eq!(p.action, CB);
    assert_eq!(p.get("error"), Some("login_required"));
    assert!(p.get("error_description").is_some());
    assert_eq!(p.get("state"), Some("st-<&\"fp\">"));
    assert_eq!(p.get("iss").unwrap(), s.url("/demo"));
    assert!(p.get("code").is_none());
    assert_csp(&p, "http://app.test");

    // A refused request (no scope) of a trusted client.
    let p = posted(authorize(&s, &with(&web_request(CB, &[]), "scope", None)));
    assert_eq!(p.get("error"), Some("invalid_scope"));

    // Consent denied, to the redirect URI with a query of its own.
    let b = browser();
    let url = authorize_url(&s, "demo", &web_request(CB_QUERY, &[]));
    let consent = open_and_sign_in(&s, "demo", &b, &url).text().unwrap();
    let p = posted(answer_consent(&s, &b, &consent, "deny"));
    assert_eq!(p.action, CB_QUERY);
    assert!(p.html.contains("action=\"http://app.test/cb?x=1&amp;y=2\""));
    assert_eq!(p.get("error"), Some("access_denied"));
    assert_eq!(p.get("state"), Some("st-<&\"fp\">"));
    assert_eq!(p.get("iss").unwrap(), s.url("/demo"));
    assert_csp(&p, "http://app.test");
}

#[test]
fn an_unregistered_redirect_uri_gets_our_error_page_never_a_post() {
    let (s, _db) = start();
    let evil = "https://evil.test/cb";
    for extra in [&[][..], &[("prompt", "none")]] {
        let html = error_page(authorize(&s, &web_request(evil, extra)), "invalid_request");
        assert!(!html.contains(evil), "{html}");
    }
    // No client to trust at all.
    let q = with(&web_request(CB, &[]), "client_id", Some("nobody"));
    error_page(authorize(&s, &q), "invalid_client");
}

#[test]
fn unknown_and_fragment_response_modes_are_invalid_request() {
    let (s, _db) = start();
    for (mode, says) in [("bogus", "query or form_post"), ("fragment", "fragment")] {
        let q = with(&web_request(CB, &[]), "response_mode", Some(mode));
        // A registered redirect URI hears of it, in the query (the default).
        let r = authorize(&s, &q);
        assert_eq!(r.status(), 303, "{mode}");
        let to = location(&r);
        assert!(to.starts_with(CB), "{to}");
        let param = |name| query_param(&to, name).unwrap_or_default();
        assert_eq!(param("error"), "invalid_request");
        assert!(param("error_description").contains(says), "{to}");
        assert_eq!(param("state"), "st-<&\"fp\">");
        assert_eq!(param("iss"), s.url("/demo"));
        // An unregistered one never does.
        let q = with(&q, "redirect_uri", Some("https://evil.test/cb"));
        error_page(authorize(&s, &q), "invalid_request");
    }
}

#[test]
fn a_pushed_request_with_form_post_is_answered_by_form_post() {
    let (s, _db) = start();
    let push = |form: &[(&str, &str)]| {
        common::flow::post_basic(&s, "/demo/par", "quick", QUICK_SECRET, form)
    };
    let form = [
        ("response_type", "code"),
        ("redirect_uri", QUICK_CB),
        ("scope", "openid"),
        ("state", "st-par"),
        ("response_mode", "form_post"),
    ];
    let r = push(&form);
    assert_eq!(r.status(), 201);
    let request_uri = r.json::<Value>().unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let url = authorize_url(
        &s,
        "demo",
        &[("client_id", "quick"), ("request_uri", &request_uri)],
    );
    let p = posted(open_and_sign_in(&s, "demo", &browser(), &url));
    assert_eq!(p.action, QUICK_CB);
    assert_eq!(p.get("state"), Some("st-par"));
    assert_csp(&p, "https://quick.test:8443");
    let tokens = exchange(
        &s,
        "demo",
        "quick",
        QUICK_SECRET,
        p.get("code").unwrap(),
        QUICK_CB,
    );
    assert!(tokens["access_token"].is_string());

    // /par checks the mode as /authorize does.
    let r = push(&with(&form, "response_mode", Some("bogus")));
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_request");
}

#[test]
fn a_request_object_may_ask_for_form_post() {
    let (s, _db) = start();
    let claims = json!({
        "iss": "quick",
        "aud": s.url("/demo"),
        "exp": common::jose::now() + 300,
        "response_type": "code",
        "client_id": "quick",
        "redirect_uri": QUICK_CB,
        "scope": "openid",
        "state": "st-jar",
        "response_mode": "form_post",
    });
    let jwt = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(QUICK_SECRET.as_bytes()),
    )
    .unwrap();
    let url = authorize_url(&s, "demo", &[("client_id", "quick"), ("request", &jwt)]);
    let p = posted(open_and_sign_in(&s, "demo", &browser(), &url));
    assert_eq!(p.action, QUICK_CB);
    assert_eq!(p.get("state"), Some("st-jar"));
    assert!(p.get("code").is_some());
}

#[test]
fn a_tenants_own_form_post_template_is_served_with_its_script_allowed() {
    let (s, _db) = start();
    let q = [
        ("response_type", "code"),
        ("client_id", "web"),
        ("scope", "openid"),
        ("prompt", "none"),
        ("response_mode", "form_post"),
    ];
    let p = posted(
        browser()
            .get(authorize_url(&s, "custom", &q))
            .send()
            .unwrap(),
    );
    assert!(p.html.contains("<p>Custom hop to web</p>"), "{}", p.html);
    assert_eq!(p.action, CB);
    assert_eq!(p.get("error"), Some("login_required"));
    assert_eq!(p.get("iss").unwrap(), s.url("/custom"));
    assert_csp(&p, "http://app.test");
}
