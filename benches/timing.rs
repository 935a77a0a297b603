//! Failure timing: how long each kind of failed authentication takes, to see
//! that none tells a registered client id or username from an unknown one.
//! Starts a release sesame (SQLite in a temp dir, a throttle that never
//! locks) and sends, one at a time and in turn, a request of each case;
//! prints the median and p90 of each, and how far apart the medians are.
//!
//!     cargo bench --bench timing                    # 200 requests per case
//!     TIMING_REQUESTS=500 cargo bench --bench timing
//!
//! Under `cargo test --bench timing` (debug build) each case runs a few
//! times: CI checks that the harness works, never the figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Child;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};

#[path = "support/mod.rs"]
mod support;

/// The argon2id hash of "wonderland" (default parameters).
const ALICE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$NsHg1qjI2jqUgdLfsM+dKA$BpKVbbPKfz1wafWi/RkozYWTB0CYgl6+ub/G00BwWoU";
const CB: &str = "http://bench.test/cb";

fn config(port: u16, db: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{port}" }}
database: {{ url: "{db}" }}
tenants:
  - id: t
    issuer: http://127.0.0.1:{port}/t
    throttle: {{ max_failures: 1000000, client_max_failures: 1000000, ip_max_failures: 1000000 }}
    scopes: {{ api: {{ description: The API }} }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
      - {{ id: plain, secret: plain-secret, grant_types: [client_credentials], scopes: [api] }}
      - {{ id: hashed, secret_hash: "{ALICE_HASH}", grant_types: [client_credentials], scopes: [api] }}
      - {{ id: web, secret: web-secret, redirect_uris: ["{CB}"] }}
"#
    )
}

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let db = format!("sqlite://{}", dir.path().join("timing.db").display());
    let cfg = dir.path().join("timing.yaml");
    std::fs::write(&cfg, config(port, &db)).unwrap();
    Server {
        child: support::serve(env!("CARGO_BIN_EXE_sesame"), &cfg),
        base: format!("http://127.0.0.1:{port}/t"),
        _dir: dir,
    }
}

/// The `value` of the input named `name` in a page.
fn field(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\"")).unwrap();
    let start = html[..at].rfind('<').unwrap();
    let tag = &html[start..at + html[at..].find('>').unwrap()];
    let v = tag.find("value=\"").unwrap() + 7;
    tag[v..v + tag[v..].find('"').unwrap()].replace("&amp;", "&")
}

/// One kind of request, built afresh for the `i`th time.
struct Case {
    name: &'static str,
    /// Whether it is one of the failures that must look alike (and which group).
    group: Option<&'static str>,
    request: Box<dyn Fn(usize) -> RequestBuilder>,
    status: u16,
    samples: Vec<Duration>,
}

fn cases(s: &Server) -> Vec<Case> {
    let api = Client::builder().build().unwrap();
    let token = format!("{}/token", s.base);
    let cc = move |id: &'static str,
                   secret: fn(usize) -> String|
          -> Box<dyn Fn(usize) -> RequestBuilder> {
        let (api, token) = (api.clone(), token.clone());
        Box::new(move |i| {
            api.post(&token)
                .basic_auth(id, Some(secret(i)))
                .form(&[("grant_type", "client_credentials"), ("scope", "api")])
        })
    };
    // One pending authorization request, its form posted again and again.
    let browser = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .get(format!(
            "{}/authorize?response_type=code&client_id=web&scope=openid&redirect_uri={}",
            s.base,
            url_encode(CB)
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let login_page = r.headers()["location"].to_str().unwrap().to_string();
    let html = browser.get(login_page).send().unwrap().text().unwrap();
    let (rid, csrf) = (field(&html, "rid"), field(&html, "csrf"));
    let login = format!("{}/login", s.base);
    let post = move |user: &'static str| -> Box<dyn Fn(usize) -> RequestBuilder> {
        let (browser, login, rid, csrf) =
            (browser.clone(), login.clone(), rid.clone(), csrf.clone());
        Box::new(move |i| {
            browser.post(&login).form(&[
                ("rid", rid.as_str()),
                ("csrf", csrf.as_str()),
                ("username", user),
                ("password", &format!("wrong-{i}")),
            ])
        })
    };
    let case = |name, group, request, status| Case {
        name,
        group,
        request,
        status,
        samples: Vec::new(),
    };
    vec![
        case(
            "client: unknown id",
            Some("client"),
            cc("nobody", |i| format!("wrong-{i}")),
            401,
        ),
        case(
            "client: known id, wrong plain secret",
            Some("client"),
            cc("plain", |i| format!("wrong-{i}")),
            401,
        ),
        case(
            "client: known id, wrong hashed secret",
            Some("client"),
            cc("hashed", |i| format!("wrong-{i}")),
            401,
        ),
        case("login: unknown user", Some("login"), post("nobody"), 401),
        case(
            "login: known user, wrong password",
            Some("login"),
            post("alice"),
            401,
        ),
        case(
            "(success) client: right plain secret",
            None,
            cc("plain", |_| "plain-secret".into()),
            200,
        ),
        case(
            "(success) client: right hashed secret, cached",
            None,
            cc("hashed", |_| "wonderland".into()),
            200,
        ),
    ]
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("TIMING_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 5 } else { 200 });
    let server = start();
    let mut cases = cases(&server);
    // Warm up: connections, the hashing threads' memory, the SQLite file.
    for i in 0..3 {
        for c in &cases {
            (c.request)(i).send().unwrap();
        }
    }
    for i in 0..n {
        for c in cases.iter_mut() {
            let request = (c.request)(i);
            let started = Instant::now();
            let r = request.send().unwrap();
            let status = r.status().as_u16();
            let _ = r.bytes().unwrap();
            c.samples.push(started.elapsed());
            assert_eq!(status, c.status, "{}", c.name);
        }
    }
    println!("failure timing, {n} requests per case (median, p90):");
    let mut medians: Vec<(&str, f64)> = Vec::new();
    for c in cases.iter_mut() {
        c.samples.sort();
        let (median, p90) = (percentile(&c.samples, 0.5), percentile(&c.samples, 0.9));
        println!(
            "  {:<48} {:>8.2} ms {:>8.2} ms",
            c.name,
            ms(median),
            ms(p90)
        );
        if let Some(group) = c.group {
            medians.push((group, ms(median)));
        }
    }
    for group in ["client", "login"] {
        let m: Vec<f64> = medians
            .iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, m)| *m)
            .collect();
        let (lo, hi) = m
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        println!(
            "  {group} failures: medians within {:.1}% of each other",
            (hi / lo - 1.0) * 100.0
        );
    }
}
