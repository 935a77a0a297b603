//! Several sesame nodes behind one issuer, sharing one MySQL/MariaDB or
//! PostgreSQL database; and what a node does when that database goes away.
//!
//! Runs against the databases named by `SESAME_TEST_MYSQL_URL` and
//! `SESAME_TEST_POSTGRES_URL` with the `mysql` / `postgres` features (SQLite
//! is one node's file); built without either feature, every test here is
//! ignored, and with a feature but without its URL, every test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::db::TestDb;
use common::flow::{exchange, introspect, location, post_basic, Flow};
use common::{browser, burst, client, Server};
use serde_json::Value;

use common::ALICE_HASH;
const CB: &str = "http://app.test/cb";
/// "No hang": far above `connect_timeout` (2 s) and sesame's work timeout.
const NO_HANG: Duration = Duration::from_secs(15);

/// The node configuration; `ISSUER` is the issuer's `host:port`, `{port}`
/// the node's own listen port, `{db}` the database URL.
fn config(issuer: &str, connect_timeout: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}", pool_size: 6, connect_timeout: {connect_timeout} }}
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
        skip_consent: true
        redirect_uris: [{CB}]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access]
      - id: rs
        secret: rs-secret
        grant_types: [client_credentials]
        scopes: []
"#
    )
}

use common::db::server_databases;

/// Node A (the issuer's address) and node B (same YAML but its own port) on one database.
fn two_nodes(db: &TestDb) -> (Server, Server) {
    let a = Server::start(&config("127.0.0.1:{port}", "5s"), &db.url);
    let issuer = format!("127.0.0.1:{}", a.port);
    let b = Server::start(&config(&issuer, "5s"), &db.url);
    (a, b)
}

fn offline_flow<'a>(s: &'a Server) -> Flow<'a> {
    Flow {
        scope: "openid email offline_access",
        ..Flow::new(s, "web", CB)
    }
}

fn refresh(s: &Server, token: &str) -> reqwest::blocking::Response {
    post_basic(
        s,
        "/demo/token",
        "web",
        "web-secret",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
}

/// Whether `token` (the `web` client's) is active, as introspection tells its client.
fn active(s: &Server, token: &str) -> bool {
    introspect(s, "demo", "web", "web-secret", token)["active"] == true
}

#[test]
#[cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    ignore = "needs --features mysql/postgres and SESAME_TEST_MYSQL_URL/SESAME_TEST_POSTGRES_URL"
)]
fn nodes_share_codes_sessions_and_refresh_families() {
    for db in server_databases() {
        let backend = db.backend;
        let (a, b) = two_nodes(&db);
        let browser = browser();

        // A code issued by node A is redeemed at node B.
        let code = offline_flow(&a).code(&browser);
        let t = exchange(&b, "demo", "web", "web-secret", &code, CB);
        assert!(t["refresh_token"].is_string(), "{backend}: {t}");
        assert!(active(&a, t["access_token"].as_str().unwrap()), "{backend}");

        // The session made at A is recognised at B: no login page (cookies ignore ports).
        let next = offline_flow(&b).run(&browser);
        assert!(
            next.starts_with(CB) && next.contains("code="),
            "{backend}: B should know A's session, got {next}"
        );

        // A refresh token rotated at A and replayed at B revokes the family.
        let first = t["refresh_token"].as_str().unwrap();
        let r = refresh(&a, first);
        assert_eq!(r.status(), 200, "{backend}");
        let t2: Value = r.json().unwrap();
        let second_access = t2["access_token"].as_str().unwrap();
        let second_refresh = t2["refresh_token"].as_str().unwrap();
        assert!(active(&b, second_access), "{backend}");
        let r = refresh(&b, first);
        assert_eq!(r.status(), 400, "{backend}");
        assert_eq!(r.json::<Value>().unwrap()["error"], "invalid_grant");
        assert!(
            !active(&b, second_access),
            "{backend}: successor's access token revoked"
        );
        assert!(!active(&a, second_access), "{backend}");
        assert_eq!(refresh(&a, second_refresh).status(), 400, "{backend}");
    }
}

#[test]
#[cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    ignore = "needs --features mysql/postgres and SESAME_TEST_MYSQL_URL/SESAME_TEST_POSTGRES_URL"
)]
fn concurrent_refreshes_over_two_nodes_have_one_winner() {
    for db in server_databases() {
        let backend = db.backend;
        let (a, b) = two_nodes(&db);
        let code = offline_flow(&a).code(&browser());
        let t = exchange(&a, "demo", "web", "web-secret", &code, CB);
        let token = t["refresh_token"].as_str().unwrap().to_string();

        let nodes = [&a, &b];
        let start = std::sync::Barrier::new(50);
        let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..50)
                .map(|i| {
                    let node = nodes[i % 2];
                    let (token, start) = (&token, &start);
                    scope.spawn(move || {
                        start.wait();
                        let r = refresh(node, token);
                        let status = r.status().as_u16();
                        (status, r.json::<Value>().unwrap_or(Value::Null))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners = answers.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(winners, 1, "{backend}: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(*status, 400, "{backend}: {body}");
            assert_eq!(body["error"], "invalid_grant", "{backend}: {body}");
        }
    }
}

#[test]
#[cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    ignore = "needs --features mysql/postgres and SESAME_TEST_MYSQL_URL/SESAME_TEST_POSTGRES_URL"
)]
fn nodes_starting_together_on_a_fresh_database_share_one_key() {
    for db in server_databases() {
        let backend = db.backend;
        // Neither node's host:port is the issuer's: requests route by path.
        let yaml = config("sesame.test", "5s");
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| Server::start(&yaml, &db.url));
            let b = scope.spawn(|| Server::start(&yaml, &db.url));
            (a.join().unwrap(), b.join().unwrap())
        });
        let kids = |s: &Server| -> Vec<String> {
            let jwks: Value = client()
                .get(s.url("/demo/jwks"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect()
        };
        let (ka, kb) = (kids(&a), kids(&b));
        assert_eq!(ka.len(), 1, "{backend}: {ka:?}");
        assert_eq!(ka, kb, "{backend}: both nodes sign with the stored key");
    }
}

#[test]
#[cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    ignore = "needs --features mysql/postgres and SESAME_TEST_MYSQL_URL/SESAME_TEST_POSTGRES_URL"
)]
fn parallel_wrong_passwords_over_two_nodes_are_verified_at_most_max_failures_times() {
    for db in server_databases() {
        let (a, b) = burst::two_nodes(&db.url);
        burst::assert_login_burst_is_bounded(&[&a, &b], db.backend);
    }
}

#[test]
#[cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    ignore = "needs --features mysql/postgres and SESAME_TEST_MYSQL_URL/SESAME_TEST_POSTGRES_URL"
)]
fn parallel_wrong_client_secrets_over_two_nodes_are_verified_at_most_the_limit() {
    for db in server_databases() {
        let (a, b) = burst::two_nodes(&db.url);
        burst::assert_client_burst_is_bounded(&[&a, &b], db.backend);
    }
}

/// A TCP forwarder in front of the database that can be frozen (bytes held,
/// like a silently dropped network), cut (connections closed, new ones
/// refused) and restored on the same port.
struct Forwarder {
    port: u16,
    upstream: SocketAddr,
    frozen: Arc<AtomicBool>,
    running: Option<Running>,
}

struct Running {
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Forwarder {
    fn start(upstream: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        Forwarder {
            port,
            upstream,
            running: Some(Forwarder::run(listener, upstream, frozen.clone())),
            frozen,
        }
    }

    fn run(listener: TcpListener, upstream: SocketAddr, frozen: Arc<AtomicBool>) -> Running {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (stop2, open2) = (stop.clone(), open.clone());
        let acceptor = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((down, _)) => {
                        let _ = down.set_nonblocking(false);
                        let Ok(up) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        let mut open = open2.lock().unwrap();
                        open.push(down.try_clone().unwrap());
                        open.push(up.try_clone().unwrap());
                        pipe(
                            down.try_clone().unwrap(),
                            up.try_clone().unwrap(),
                            frozen.clone(),
                        );
                        pipe(up, down, frozen.clone());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener is dropped here: new connections are refused.
        });
        Running {
            stop,
            acceptor,
            open,
        }
    }

    /// Hold every byte until [`Forwarder::thaw`]: the database seems to hang.
    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }

    /// Refuse new connections and cut the open ones.
    fn cut(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop.store(true, Ordering::SeqCst);
            r.acceptor.join().unwrap();
            for s in r.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Listen again on the same port.
    fn restore(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("forwarder: rebinding {}: {e}", self.port);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.port),
            }
        };
        self.running = Some(Forwarder::run(listener, self.upstream, self.frozen.clone()));
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.cut();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            while frozen.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// The database URL with its host and port replaced by the forwarder's; and the real server's address.
fn through_forwarder(url: &str) -> (SocketAddr, impl Fn(u16) -> String + '_) {
    let u = url::Url::parse(url).unwrap();
    let default_port = if u.scheme().starts_with("postgres") {
        5432
    } else {
        3306
    };
    let host = u.host_str().unwrap().to_string();
    let port = u.port().unwrap_or(default_port);
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .unwrap()
        .next()
        .unwrap();
    let rewrite = move |p: u16| {
        let mut u = url::Url::parse(url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(p)).unwrap();
        u.to_string()
    };
    (upstream, rewrite)
}

/// Sign in, exchange the code and refresh once: the whole path through the database.
fn full_flow_works(s: &Server, backend: &str) {
    let code = offline_flow(s).code(&browser());
    let t = exchange(s, "demo", "web", "web-secret", &code, CB);
    let r = refresh(s, t["refresh_token"].as_str().unwrap());
    assert_eq!(r.status(), 200, "{backend}: refresh after recovery");
}

fn wait_ready(s: &Server, backend: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client().get(s.url("/readyz")).send().unwrap().status();
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{backend}: not ready 30 s after the database came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `f()` answers within [`NO_HANG`]; its answer.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    eprintln!("{what}: answered in {took:?}");
    assert!(took < NO_HANG, "{what} took {took:?}");
    out
}

#[test]
#[cfg_attr(
    not(any(feature = "mysql", feature = "postgres")),
    ignore = "needs --features mysql/postgres and SESAME_TEST_MYSQL_URL/SESAME_TEST_POSTGRES_URL"
)]
fn database_outage_answers_503_and_service_resumes() {
    for db in server_databases() {
        let backend = db.backend;
        let (upstream, rewrite) = through_forwarder(&db.url);
        let mut forwarder = Forwarder::start(upstream);
        let s = Server::start(&config("127.0.0.1:{port}", "2s"), &rewrite(forwarder.port));
        assert_eq!(client().get(s.url("/readyz")).send().unwrap().status(), 200);
        full_flow_works(&s, backend);

        // A database that stops answering (connections open, nothing comes back).
        forwarder.freeze();
        let (ready, token) = std::thread::scope(|scope| {
            let ready = scope.spawn(|| {
                timed("readyz (frozen)", || {
                    client().get(s.url("/readyz")).send().unwrap()
                })
            });
            let token = scope.spawn(|| timed("token (frozen)", || refresh(&s, "no-such-token")));
            (ready.join().unwrap(), token.join().unwrap())
        });
        assert_eq!(
            ready.status(),
            503,
            "{backend}: readyz while the database hangs"
        );
        assert_eq!(
            token.status(),
            503,
            "{backend}: token while the database hangs"
        );
        assert_eq!(
            token.json::<Value>().unwrap()["error"],
            "temporarily_unavailable"
        );
        forwarder.thaw();
        wait_ready(&s, backend);

        // A database that is gone (connections closed, new ones refused).
        forwarder.cut();

        let r = timed("readyz", || client().get(s.url("/readyz")).send().unwrap());
        assert_eq!(
            r.status(),
            503,
            "{backend}: readyz while the database is away"
        );
        assert_eq!(
            client().get(s.url("/healthz")).send().unwrap().status(),
            200
        );

        for _ in 0..2 {
            let r = timed("token", || refresh(&s, "no-such-token"));
            assert_eq!(r.status(), 503, "{backend}");
            assert_eq!(r.headers()["content-type"], "application/json");
            let body: Value = r.json().unwrap();
            assert_eq!(
                body["error"], "temporarily_unavailable",
                "{backend}: {body}"
            );
        }

        let flow = offline_flow(&s);
        let r = timed("authorize", || {
            browser().get(flow.authorize_url()).send().unwrap()
        });
        assert_eq!(r.status(), 503, "{backend}: authorize shows our error page");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.text().unwrap().contains("temporarily_unavailable"));

        forwarder.restore();
        wait_ready(&s, backend);
        full_flow_works(&s, backend);
        let r = browser()
            .get(offline_flow(&s).authorize_url())
            .send()
            .unwrap();
        assert_eq!(r.status(), 303, "{backend}");
        assert!(location(&r).contains("/login?"));
        drop(s);
    }
}
