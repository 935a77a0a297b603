//! Parallel guessing: thirty wrong passwords (or client secrets) and the right
//! one, sent at once and spread over one or more nodes, and what the answers
//! and the logs say about how many of them were verified.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Barrier;

use serde_json::Value;

use super::flow::{field, location, Flow};
use super::{browser, client, Server, ALICE_HASH};

/// `throttle.max_failures` and `client_max_failures` of [`config`].
pub const MAX: usize = 5;
/// Wrong guesses per burst (the right one comes on top).
pub const WRONG: usize = 30;
/// The right password of `alice` and the right secret of `vault`.
pub const RIGHT: &str = "wonderland";

/// A tenant whose user `alice` and `secret_hash` client `vault` are locked
/// after [`MAX`] failures; the per-address limit is out of the way. `issuer`
/// is the issuer's `host:port` (`127.0.0.1:{port}` for the first node).
pub fn config(issuer: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://{issuer}/demo
    throttle: {{ max_failures: {MAX}, client_max_failures: {MAX}, ip_max_failures: 1000, window: 15m, lockout: 15m }}
    scopes: {{ api: {{ description: The API }} }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [http://app.test/cb]
      - id: vault
        secret_hash: "{ALICE_HASH}"
        grant_types: [client_credentials]
        scopes: [api]
"#
    )
}

/// Node A (the issuer's address) and node B (its own port) on one database.
pub fn two_nodes(db_url: &str) -> (Server, Server) {
    let a = Server::start(&config("127.0.0.1:{port}"), db_url);
    let b = Server::start(&config(&format!("127.0.0.1:{}", a.port)), db_url);
    (a, b)
}

/// One answer of a burst.
#[derive(Debug)]
pub struct Answer {
    /// Whether this request carried the right password or secret.
    pub right: bool,
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
}

/// Run `send(node, password, is_right)` [`WRONG`] + 1 times at once, over
/// `nodes` in turn; the right one is somewhere in the middle.
fn burst(
    nodes: &[&Server],
    send: impl Fn(&Server, &str) -> reqwest::blocking::Response + Sync,
) -> Vec<Answer> {
    let start = Barrier::new(WRONG + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..=WRONG)
            .map(|i| {
                let (start, send) = (&start, &send);
                let node = nodes[i % nodes.len()];
                scope.spawn(move || {
                    let right = i == WRONG / 2;
                    let password = if right {
                        RIGHT.to_string()
                    } else {
                        format!("guess-{i}")
                    };
                    start.wait();
                    let r = send(node, &password);
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok());
                    let body = r.text().unwrap();
                    Answer {
                        right,
                        status,
                        retry_after,
                        body,
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// How often `needle` is in the logs of `nodes`, once each node has logged a
/// request made after the burst (the log comes through a pipe, in order).
fn count_in_logs(nodes: &[&Server], needle: &str) -> usize {
    nodes
        .iter()
        .map(|s| {
            let r = client().get(s.url("/demo/jwks")).send().unwrap();
            assert_eq!(r.status(), 200);
            s.wait_for_log("endpoint=\"/jwks\"").matches(needle).count()
        })
        .sum()
}

/// Thirty wrong passwords for `alice` and the right one, posted at once to
/// the login form of one pending request, over `nodes`.
///
/// The guarantee: no more than [`MAX`] passwords are verified between two
/// points where the count starts over, and only a success starts it over
/// within a burst. So if the right password did not sign in, at most `MAX`
/// wrong ones were verified; if it did, it was reserved among the first
/// `MAX` (at most `MAX - 1` wrong ones before it) and at most `MAX` wrong
/// ones were verified after it cleared alice's counter. Every other answer
/// is the locked form (429 with `Retry-After`), its password never looked at.
pub fn assert_login_burst_is_bounded(nodes: &[&Server], backend: &str) {
    let b = browser();
    let flow = Flow {
        scope: "openid",
        ..Flow::new(nodes[0], "web", "http://app.test/cb")
    };
    let r = b.get(flow.authorize_url()).send().unwrap();
    assert_eq!(r.status(), 303, "{backend}");
    let html = b.get(location(&r)).send().unwrap().text().unwrap();
    let (rid, csrf) = (field(&html, "rid"), field(&html, "csrf"));
    let answers = burst(nodes, |node, password| {
        b.post(node.url("/demo/login"))
            .form(&[
                ("rid", rid.as_str()),
                ("csrf", csrf.as_str()),
                ("username", "alice"),
                ("password", password),
            ])
            .send()
            .unwrap()
    });
    let mut signed_in = false;
    for a in &answers {
        match a.status {
            303 => {
                assert!(a.right, "{backend}: a wrong password signed in: {a:?}");
                signed_in = true;
            }
            401 => assert!(
                !a.right && a.body.contains("name=\"password\""),
                "{backend}: {a:?}"
            ),
            429 => {
                assert!(a.retry_after.is_some_and(|s| s >= 1), "{backend}: {a:?}");
                assert!(
                    a.body.contains("Too many failed sign-in attempts."),
                    "{backend}: {a:?}"
                );
            }
            _ => panic!("{backend}: unexpected answer {a:?}"),
        }
    }
    let wrong_verified = count_in_logs(nodes, "failed login");
    let bad_credentials = answers.iter().filter(|a| a.status == 401).count();
    let bound = if signed_in { 2 * MAX - 1 } else { MAX };
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    eprintln!("{backend}: login burst: {wrong_verified} wrong passwords verified: {statuses:?}");
    assert!(
        wrong_verified <= bound,
        "{backend}: {wrong_verified} wrong passwords verified (signed in: {signed_in}), at most \
         {bound} allowed: {statuses:?}"
    );
    assert!(bad_credentials <= wrong_verified, "{backend}: {statuses:?}");
}

/// Thirty wrong secrets for the `secret_hash` client `vault` and the right
/// one, sent at once to `/token`, over `nodes`.
///
/// The guarantee: no more than [`MAX`] wrong secrets are verified per window
/// (a client's counter is never cleared by a success, and each verification
/// holds one of the `MAX` places until it is counted or given back). Each
/// verified wrong secret is answered `invalid_client` (also the one that
/// locks), every other request `slow_down` without its secret being looked
/// at; the right one gets its token only if it was reserved among the first
/// `MAX` and no lock landed before it was verified.
pub fn assert_client_burst_is_bounded(nodes: &[&Server], backend: &str) {
    let answers = burst(nodes, |node, secret| {
        client()
            .post(node.url("/demo/token"))
            .basic_auth("vault", Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "api")])
            .send()
            .unwrap()
    });
    let mut invalid = 0;
    for a in &answers {
        let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        match a.status {
            200 => assert!(a.right && v["access_token"].is_string(), "{backend}: {a:?}"),
            401 => {
                assert!(!a.right, "{backend}: the right secret was refused: {a:?}");
                assert_eq!(v["error"], "invalid_client", "{backend}: {a:?}");
                invalid += 1;
            }
            429 => {
                assert_eq!(v["error"], "slow_down", "{backend}: {a:?}");
                assert!(a.retry_after.is_some_and(|s| s >= 1), "{backend}: {a:?}");
            }
            _ => panic!("{backend}: unexpected answer {a:?}"),
        }
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    eprintln!("{backend}: client burst: {invalid} wrong secrets verified: {statuses:?}");
    assert!(
        invalid <= MAX,
        "{backend}: {invalid} wrong secrets verified, at most {MAX} allowed: {statuses:?}"
    );
}
