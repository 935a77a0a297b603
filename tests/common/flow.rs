//! Playing the browser and the application through the code flow.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use reqwest::blocking::{Client, Response};
use serde_json::Value;

use super::{client, Server};

/// The `value` of the input named `name` in a page.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"));
    let start = html[..at].rfind('<').expect("tag start");
    let end = at + html[at..].find('>').expect("tag end");
    let tag = &html[start..end];
    let v = tag.find("value=\"").expect("value") + 7;
    let len = tag[v..].find('"').expect("value end");
    unescape(&tag[v..v + len])
}

/// An attribute value or text as the page escaped it, unescaped.
pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// After a successful sign-in (303 to the consent step, post/redirect/get):
/// the answer of that `GET` — the consent page, or the redirect onwards.
/// Any other answer is given back as it is.
pub fn signed_in(b: &Client, r: Response) -> Response {
    if r.status() != 303 {
        return r;
    }
    let next = location(&r);
    if !next.contains("/consent?") {
        return r;
    }
    b.get(&next).send().unwrap()
}

/// Sign in as `username` (password "wonderland") on the sign-in page at
/// `login_url` of `/{tenant}`: the answer after sign-in (see [`signed_in`]).
pub fn sign_in(s: &Server, tenant: &str, b: &Client, login_url: &str, username: &str) -> Response {
    let html = b.get(login_url).send().unwrap().text().unwrap();
    let r = b
        .post(s.url(&format!("/{tenant}/login")))
        .form(&[
            ("rid", field(&html, "rid")),
            ("csrf", field(&html, "csrf")),
            ("username", username.into()),
            ("password", "wonderland".into()),
        ])
        .send()
        .unwrap();
    signed_in(b, r)
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let v = u
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    v
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no location, status {}", r.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The `/authorize` URL that brings the `request_uri` of a `201` answer
/// of `/par` for `client_id`.
pub fn pushed_authorize_url(s: &Server, tenant: &str, client_id: &str, pushed: Response) -> String {
    assert_eq!(pushed.status(), 201);
    let body: Value = pushed.json().unwrap();
    let mut u = url::Url::parse(&s.url(&format!("/{tenant}/authorize"))).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", body["request_uri"].as_str().unwrap());
    u.to_string()
}

/// RFC 7636 Appendix B's code verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// One authorization request, driven like a browser would.
#[derive(Clone)]
pub struct Flow<'a> {
    pub s: &'a Server,
    pub tenant: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub extra: Vec<(&'a str, &'a str)>,
    /// Who signs in (password "wonderland").
    pub username: &'a str,
}

impl<'a> Flow<'a> {
    pub fn new(s: &'a Server, client_id: &'a str, redirect_uri: &'a str) -> Flow<'a> {
        Flow {
            s,
            tenant: "demo",
            client_id,
            redirect_uri,
            scope: "openid profile email",
            extra: vec![("state", "st-123"), ("nonce", "n-456")],
            username: "alice",
        }
    }

    pub fn authorize_url(&self) -> String {
        let mut u = url::Url::parse(&self.s.url(&format!("/{}/authorize", self.tenant))).unwrap();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.client_id)
                .append_pair("redirect_uri", self.redirect_uri)
                .append_pair("scope", self.scope);
            for (k, v) in &self.extra {
                q.append_pair(k, v);
            }
        }
        u.to_string()
    }

    /// Sign in as `username` (and consent if asked); return the final redirect.
    pub fn run(&self, b: &Client) -> String {
        self.run_from(b, &self.authorize_url())
    }

    /// [`Flow::run`] from another authorization URL (a request object, a
    /// pushed request).
    pub fn run_from(&self, b: &Client, authorize_url: &str) -> String {
        let r = b.get(authorize_url).send().unwrap();
        assert_eq!(r.status(), 303, "authorize should redirect");
        let mut next = location(&r);
        if next.contains("/login?") {
            let page = b.get(&next).send().unwrap();
            assert_eq!(page.status(), 200);
            let html = page.text().unwrap();
            let r = b
                .post(self.s.url(&format!("/{}/login", self.tenant)))
                .form(&[
                    ("rid", field(&html, "rid")),
                    ("csrf", field(&html, "csrf")),
                    ("username", self.username.into()),
                    ("password", "wonderland".into()),
                ])
                .send()
                .unwrap();
            next = self.after_login(b, r);
        }
        next
    }

    fn after_login(&self, b: &Client, r: Response) -> String {
        assert_eq!(r.status(), 303, "a sign-in answers 303 (post/redirect/get)");
        let r = signed_in(b, r);
        if r.status() == 200 {
            let html = r.text().unwrap();
            assert!(
                html.contains("decision"),
                "expected the consent page: {html}"
            );
            let r = b
                .post(self.s.url(&format!("/{}/consent", self.tenant)))
                .form(&[
                    ("rid", field(&html, "rid")),
                    ("csrf", field(&html, "csrf")),
                    ("decision", "allow".into()),
                ])
                .send()
                .unwrap();
            assert_eq!(r.status(), 303);
            return location(&r);
        }
        assert_eq!(r.status(), 303, "login should redirect");
        location(&r)
    }

    /// The code of a successful flow.
    pub fn code(&self, b: &Client) -> String {
        let url = self.run(b);
        assert!(
            url.starts_with(self.redirect_uri),
            "unexpected redirect {url}"
        );
        query_param(&url, "code").unwrap_or_else(|| panic!("no code in {url}"))
    }
}

/// Answer the consent page `html` of `/demo` with `decision` (`allow` or `deny`).
pub fn answer_consent(s: &Server, b: &Client, html: &str, decision: &str) -> Response {
    b.post(s.url("/demo/consent"))
        .form(&[
            ("rid", field(html, "rid")),
            ("csrf", field(html, "csrf")),
            ("decision", decision.to_string()),
        ])
        .send()
        .unwrap()
}

/// POST to a tenant endpoint with HTTP Basic client authentication.
pub fn post_basic(
    s: &Server,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Response {
    client()
        .post(s.url(path))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .unwrap()
}

/// Exchange a code at `/{tenant}/token` with Basic authentication; the JSON answer.
pub fn exchange(
    s: &Server,
    tenant: &str,
    id: &str,
    secret: &str,
    code: &str,
    redirect_uri: &str,
) -> Value {
    let r = post_basic(
        s,
        &format!("/{tenant}/token"),
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
    );
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

/// Introspect `token` as `id`; the JSON answer.
pub fn introspect(s: &Server, tenant: &str, id: &str, secret: &str, token: &str) -> Value {
    let r = post_basic(
        s,
        &format!("/{tenant}/introspect"),
        id,
        secret,
        &[("token", token)],
    );
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

/// `/userinfo` with `token` as the bearer; the JSON answer.
pub fn userinfo(s: &Server, tenant: &str, token: &str) -> Value {
    let r = client()
        .get(s.url(&format!("/{tenant}/userinfo")))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}
