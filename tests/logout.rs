//! Applications learn when users sign out: OpenID Connect Back-Channel
//! Logout 1.0 (logout tokens POSTed from the durable outbox, at least once,
//! across restarts and nodes) and Front-Channel Logout 1.0 (iframes on the
//! signed-out page, within a CSP that frames exactly their origins).
//!
//! The receivers are small HTTP servers in the test on loopback ports; the
//! logout tokens are verified with `jsonwebtoken` against the JWKS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::db::server_databases;
use common::flow::{exchange, Flow};
use common::{browser, client, free_port, jwt_claims, sesame, Server, ALICE_HASH};
use serde_json::Value;

/// Generous: deliveries are polled for, never timed.
const DEADLINE: Duration = Duration::from_secs(90);
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One logout token as it arrived, and when the request was open.
#[derive(Debug, Clone)]
struct Arrival {
    token: String,
    opened: Instant,
    closed: Instant,
}

/// A back-channel logout receiver: records every POST, answers 200 after
/// holding the request `hold` (so overlapping deliveries would show).
#[derive(Clone)]
struct Receiver {
    port: u16,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl Receiver {
    fn start(hold: Duration) -> Receiver {
        Receiver::on(free_port(), hold)
    }

    /// Listening on `port` (one that was free).
    fn on(port: u16, hold: Duration) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("receiver port");
        let r = Receiver {
            port,
            arrivals: Arc::default(),
        };
        let arrivals = r.arrivals.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let arrivals = arrivals.clone();
                std::thread::spawn(move || answer(conn, hold, &arrivals));
            }
        });
        r
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/backchannel", self.port)
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }

    /// The tokens received, once there are at least `n`.
    fn wait_for(&self, n: usize) -> Vec<String> {
        let until = Instant::now() + DEADLINE;
        loop {
            let got: Vec<String> = self.arrivals().into_iter().map(|a| a.token).collect();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < until, "receiver {} got {got:?}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Read one request, record its `logout_token`, answer 200.
fn answer(mut conn: TcpStream, hold: Duration, arrivals: &Mutex<Vec<Arrival>>) {
    let opened = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body = loop {
        let Ok(n) = conn.read(&mut chunk) else { return };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
            }
        }
    };
    assert!(
        String::from_utf8_lossy(&buf).starts_with("POST /backchannel "),
        "a POST to the registered URI"
    );
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    std::thread::sleep(hold);
    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    arrivals.lock().unwrap().push(Arrival {
        token,
        opened,
        closed: Instant::now(),
    });
}

/// The tenant: `clients` are `(id, backchannel URI, frontchannel URI)`, each
/// with its own redirect URI; `logout` is the tenant's `logout:` block.
fn config(clients: &[(&str, Option<String>, Option<&str>)], logout: &str, issuer: &str) -> String {
    let mut yaml = format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}", pool_size: 6 }}
tenants:
  - id: demo
    issuer: http://{issuer}/demo
    logout: {logout}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
    clients:
"#
    );
    for (id, back, front) in clients {
        yaml.push_str(&format!(
            "      - id: {id}\n        secret: {id}-secret\n        skip_consent: true\n        \
             redirect_uris: [http://app.test/cb-{id}]\n        \
             post_logout_redirect_uris: [http://app.test/bye-{id}]\n        scopes: [openid, profile]\n"
        ));
        if let Some(uri) = back {
            yaml.push_str(&format!(
                "        backchannel_logout_uri: {uri}\n        backchannel_logout_session_required: true\n"
            ));
        }
        if let Some(uri) = front {
            // The first client's frames need the session; the others' not.
            let required = *id == clients[0].0;
            yaml.push_str(&format!(
                "        frontchannel_logout_uri: {uri}\n        frontchannel_logout_session_required: {required}\n"
            ));
        }
    }
    yaml
}

/// Sign in to `client` in browser `b` (one session for all) and exchange
/// the code: the ID token.
fn sign_in(s: &Server, b: &reqwest::blocking::Client, id: &str) -> String {
    let cb = format!("http://app.test/cb-{id}");
    let flow = Flow {
        scope: "openid profile",
        ..Flow::new(s, id, &cb)
    };
    let code = flow.code(b);
    let t = exchange(s, "demo", id, &format!("{id}-secret"), &code, &cb);
    t["id_token"].as_str().unwrap().to_string()
}

/// Verify a logout token as a relying party would (Back-Channel Logout 1.0
/// §2.6), with `jsonwebtoken` against the tenant's JWKS; its claims.
fn verify_logout_token(s: &Server, token: &str, audience: &str) -> Value {
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: JwkSet = client()
        .get(s.url("/demo/jwks"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the token's key is published");
    let mut v = Validation::new(header.alg);
    v.set_audience(&[audience]);
    v.set_issuer(&[s.url("/demo")]);
    v.set_required_spec_claims(&["iss", "aud", "exp", "iat", "jti"]);
    let claims = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap_or_else(|e| panic!("logout token does not verify: {e}"))
        .claims;
    assert!(claims.get("nonce").is_none(), "never a nonce: {claims}");
    assert_eq!(claims["events"], serde_json::json!({ EVENT: {} }));
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["sub"].as_str().is_some());
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(exp > iat && exp - iat <= 300, "a short life: {claims}");
    claims
}

/// `sesame revoke --user alice --sessions` on `s`'s configuration.
fn end_alices_sessions(s: &Server) -> common::Ran {
    let config = s.config_path();
    let args = [
        "revoke",
        "-c",
        config.to_str().unwrap(),
        "--user",
        "alice",
        "--sessions",
    ];
    let ran = sesame(&args);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    ran
}

/// How many of the log's lines say `needle`.
fn count(s: &Server, needle: &str) -> usize {
    s.logs().matches(needle).count()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn signing_out_of_three_clients_sends_each_one_valid_logout_token_and_frames_their_pages() {
    for db in common::db::test_databases() {
        let backend = db.backend;
        let receivers: Vec<Receiver> = (0..4).map(|_| Receiver::start(Duration::ZERO)).collect();
        let clients = [
            (
                "a",
                Some(receivers[0].uri()),
                Some("http://localhost:7101/fc"),
            ),
            (
                "b",
                Some(receivers[1].uri()),
                Some("http://localhost:7102/fc?x=1"),
            ),
            ("c", Some(receivers[2].uri()), None),
            // Never signed in to: told nothing.
            (
                "d",
                Some(receivers[3].uri()),
                Some("http://localhost:7104/fc"),
            ),
        ];
        let s = Server::start(&config(&clients, "{}", "127.0.0.1:{port}"), &db.url);
        let meta: Value = client()
            .get(s.url("/demo/.well-known/openid-configuration"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        for flag in [
            "backchannel_logout_supported",
            "backchannel_logout_session_supported",
            "frontchannel_logout_supported",
            "frontchannel_logout_session_supported",
        ] {
            assert_eq!(meta[flag], true, "{backend}: {flag}");
        }
        let b = browser();
        let id_tokens: Vec<String> = ["a", "b", "c"].iter().map(|c| sign_in(&s, &b, c)).collect();
        let sid = jwt_claims(&id_tokens[0])["sid"]
            .as_str()
            .unwrap_or_else(|| panic!("{backend}: the ID token names the session"))
            .to_string();
        for t in &id_tokens {
            assert_eq!(jwt_claims(t)["sid"], sid.as_str(), "{backend}: one session");
        }
        let r = b
            .get(s.url("/demo/logout"))
            .query(&[
                ("id_token_hint", id_tokens[0].as_str()),
                ("post_logout_redirect_uri", "http://app.test/bye-a"),
                ("state", "s1"),
            ])
            .send()
            .unwrap();
        // Frames to load first: the page, going on to the client from there.
        assert_eq!(r.status(), 200, "{backend}");
        // Front-channel: frames for exactly the session's clients with a URI,
        // the CSP framing exactly their origins, on this page only.
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("; frame-src http://localhost:7101 http://localhost:7102; ")
                && csp.matches("frame-src").count() == 1,
            "{backend}: {csp}"
        );
        let html = r.text().unwrap();
        let frames: Vec<&str> = html
            .split("<iframe")
            .skip(1)
            .map(|f| f.split("src=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        let iss =
            url::form_urlencoded::byte_serialize(s.url("/demo").as_bytes()).collect::<String>();
        assert_eq!(
            frames,
            [
                format!("http://localhost:7101/fc?iss={iss}&amp;sid={sid}"),
                "http://localhost:7102/fc?x=1".to_string()
            ],
            "{backend}: {html}"
        );
        assert!(
            html.contains("href=\"http://app.test/bye-a?state=s1\""),
            "{backend}: {html}"
        );
        // Signed out with no session: no frames, the tenant's CSP.
        let plain = client().get(s.url("/demo/logout")).send().unwrap();
        assert!(!plain.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-src"));
        // Back-channel: one verified token each for a, b, c; nothing for d.
        wait_until("three deliveries", || {
            count(&s, "back-channel logout delivered") >= 3
        });
        let mut jtis = Vec::new();
        for (r, id) in receivers.iter().zip(["a", "b", "c"]) {
            let got = r.wait_for(1);
            assert_eq!(got.len(), 1, "{backend}: exactly one token for {id}");
            let claims = verify_logout_token(&s, &got[0], id);
            assert_eq!(claims["sid"], sid.as_str(), "{backend}");
            assert_eq!(claims["sub"], jwt_claims(&id_tokens[0])["sub"], "{backend}");
            jtis.push(claims["jti"].as_str().unwrap().to_string());
        }
        jtis.sort();
        jtis.dedup();
        assert_eq!(jtis.len(), 3, "{backend}: a jti per message");
        assert!(
            receivers[3].arrivals().is_empty(),
            "{backend}: d never signed in"
        );
        let metrics = client().get(s.url("/metrics")).send();
        let metrics = metrics.unwrap().text().unwrap();
        assert!(
            metrics.contains(
                r#"sesame_backchannel_logouts_total{tenant="demo",outcome="delivered"} 3"#
            ),
            "{backend}: {metrics}"
        );
        assert!(
            !s.logs().contains(&receivers[0].wait_for(1)[0]),
            "no token in the log"
        );
    }
}

#[test]
fn a_receiver_that_is_down_gets_its_logout_token_after_it_comes_back_across_a_restart() {
    let db = common::db::sqlite();
    let port = free_port();
    let uri = format!("http://127.0.0.1:{port}/backchannel");
    let clients = [("a", Some(uri), None)];
    let logout =
        "{ backchannel: { timeout: 2s, backoff: 1s, max_backoff: 2s, max_attempts: 1000 } }";
    let s = Server::start(&config(&clients, logout, "127.0.0.1:{port}"), &db.url);
    let id_token = sign_in(&s, &browser(), "a");
    // The operator ends alice's sessions; the receiver is down.
    let ran = end_alices_sessions(&s);
    assert!(
        ran.stdout
            .contains("queued 1 back-channel logout message(s)"),
        "{}",
        ran.stdout
    );
    wait_until("a failed attempt", || {
        count(&s, "back-channel logout failed") >= 2
    });
    let (dir, sesame_port) = (s.dir.clone(), s.port);
    s.stop();
    let receiver = Receiver::on(port, Duration::ZERO);
    let s = Server::restart(&dir, sesame_port);
    let got = receiver.wait_for(1);
    let claims = verify_logout_token(&s, &got[0], "a");
    assert_eq!(claims["sid"], jwt_claims(&id_token)["sid"]);
    s.wait_for_log("back-channel logout delivered");
    assert_eq!(receiver.arrivals().len(), 1);
}

#[test]
#[cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    ignore = "needs --features mysql/postgres and SESAME_TEST_MYSQL_URL/SESAME_TEST_POSTGRES_URL"
)]
fn two_nodes_deliver_each_logout_token_and_never_the_same_one_at_once() {
    for db in server_databases() {
        let backend = db.backend;
        // Each delivery is held open a while, so two at once would overlap.
        let receivers: Vec<Receiver> = (0..2)
            .map(|_| Receiver::start(Duration::from_millis(300)))
            .collect();
        let clients = [
            ("a", Some(receivers[0].uri()), None),
            ("b", Some(receivers[1].uri()), None),
        ];
        let a = Server::start(&config(&clients, "{}", "127.0.0.1:{port}"), &db.url);
        let issuer = format!("127.0.0.1:{}", a.port);
        let b = Server::start(&config(&clients, "{}", &issuer), &db.url);
        // Six sessions, each signed in to both clients, over both nodes.
        let sessions = 6;
        for i in 0..sessions {
            let node = if i % 2 == 0 { &a } else { &b };
            let browser = browser();
            sign_in(node, &browser, "a");
            sign_in(node, &browser, "b");
        }
        end_alices_sessions(&a);
        let mut by_jti: BTreeMap<String, Vec<Arrival>> = BTreeMap::new();
        let mut per_client: HashMap<&str, usize> = HashMap::new();
        for (r, id) in receivers.iter().zip(["a", "b"]) {
            let got = r.wait_for(sessions);
            for arrival in r.arrivals() {
                let claims = verify_logout_token(&a, &arrival.token, id);
                by_jti
                    .entry(claims["jti"].as_str().unwrap().to_string())
                    .or_default()
                    .push(arrival);
            }
            per_client.insert(id, got.len());
        }
        assert_eq!(
            by_jti.len(),
            2 * sessions,
            "{backend}: every message delivered"
        );
        for (jti, mut arrivals) in by_jti {
            arrivals.sort_by_key(|x| x.opened);
            for pair in arrivals.windows(2) {
                assert!(
                    pair[0].closed <= pair[1].opened,
                    "{backend}: {jti} was being delivered twice at once"
                );
            }
        }
        let delivered =
            count(&a, "back-channel logout delivered") + count(&b, "back-channel logout delivered");
        assert!(delivered >= 2 * sessions, "{backend}: {delivered}");
    }
}
