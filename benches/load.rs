//! Load harness: starts a release sesame with a benchmark config (SQLite in a
//! temp dir) and drives it, scenario by scenario, reporting req/s, mean,
//! p50 and p99 latency, and the server's peak RSS and CPU (1 core = 100%).
//!
//!     cargo bench --bench load                       # 20 s per scenario
//!     LOAD_SECONDS=5 LOAD_CONCURRENCY=64 cargo bench --bench load
//!     LOAD_ONLY=cc_jwt,introspect cargo bench --bench load
//!     LOAD_SESAME_BIN=/path/to/other/sesame cargo bench --bench load
//!     LOAD_DATABASE_URL=postgres://postgres@127.0.0.1/sesame_load cargo bench --bench load
//!     LOAD_POOL_SIZE=32 ...   (the server's database pool; 8 unless set)
//!
//! Request scenarios use `wrk` (Debian package `wrk`) with Lua for POST
//! bodies, and so does the code flow over an SSO session (a Lua script turns
//! each authorize redirect's code into the next token request); refresh
//! rotation and the code flow with a fresh login use the async driver below.
//! Point it at another server with `LOAD_TARGET=<issuer URL>` (JWT access
//! tokens) and optionally `LOAD_TARGET_OPAQUE=<issuer URL>` (opaque ones),
//! `LOAD_TARGET_ES256` and `LOAD_TARGET_EDDSA` (JWTs signed ES256, EdDSA: the
//! `cc_jwt_es256`, `cc_jwt_eddsa` and `flow_sso_es256` scenarios, which on
//! sesame run on its `es256` and `eddsa` tenants):
//! endpoints come from discovery, and the server needs the confidential
//! clients `cc` and `rs` (secrets `cc-secret`, `rs-secret`, grant
//! `client_credentials`) and `web` (`web-secret`, redirect URI
//! `http://bench.test/cb`), whose sign-in ends in a redirect with a code;
//! `rs` must be allowed to introspect `cc`'s tokens (in sesame: a resource
//! server accepting the scope `api`).
//! Against another server the scenarios that need sesame's users and forms
//! (userinfo, refresh, fresh-login flows) are skipped;
//! `benches/load/reference.mjs` is node-oidc-provider set up that way
//! (`LOAD_TARGET_PID=<pid>` samples its memory too).
//! Under `cargo test --bench load` (debug build) every scenario runs for one
//! second: CI checks that the harness works, never how fast.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

#[path = "support/mod.rs"]
mod support;
use support::free_port;

const ALICE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$NsHg1qjI2jqUgdLfsM+dKA$BpKVbbPKfz1wafWi/RkozYWTB0CYgl6+ub/G00BwWoU";
const CB: &str = "http://bench.test/cb";

/// Users the sign-in scenario spreads its browsers over (`signer00`, ...).
const SIGNERS: usize = 64;

fn config(port: u16, db: &str) -> String {
    let signers: String = (0..SIGNERS)
        .map(|i| format!("      - {{ username: signer{i:02}, password_hash: \"{ALICE_HASH}\" }}\n"))
        .collect();
    let tenant = |id: &str, format: &str, alg: &str| {
        format!(
            r#"
  - id: {id}
    issuer: http://127.0.0.1:{port}/{id}
    access_token_format: {format}
    signing: {{ alg: {alg} }}
    scopes:
      api: {{ description: The API }}
    # Every simulated browser comes from 127.0.0.1: the per-address
    # limit on sign-ins verified at once would otherwise be what is measured.
    throttle: {{ ip_max_failures: 100000 }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin, email: alice@example.com, email_verified: true }}
{signers}
    clients:
      - id: cc
        secret: cc-secret
        grant_types: [client_credentials]
        scopes: [api]
      - id: rs
        secret: rs-secret
        grant_types: [client_credentials]
        scopes: [api]
      - id: web
        secret: web-secret
        skip_consent: true
        redirect_uris: [{CB}]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access, api]
    resource_servers:
      - {{ identifier: "https://api.bench.test", client: rs, scopes: [api] }}
"#
        )
    };
    // LOAD_POOL_SIZE: the database pool (8 unless set).
    let pool = std::env::var("LOAD_POOL_SIZE").unwrap_or_else(|_| "8".into());
    format!(
        "server: {{ listen: \"127.0.0.1:{port}\" }}\ndatabase: {{ url: \"{db}\", pool_size: {pool} }}\ntenants:{}{}{}{}",
        tenant("jwt", "jwt", "RS256"),
        tenant("opaque", "opaque", "RS256"),
        // Where the signature stops being the floor: the rest of the path shows.
        tenant("es256", "jwt", "ES256"),
        tenant("eddsa", "jwt", "EdDSA")
    )
}

struct Settings {
    seconds: u64,
    concurrency: usize,
    only: Option<Vec<String>>,
}

fn settings() -> Settings {
    let quick = !std::env::args().any(|a| a == "--bench");
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    Settings {
        seconds: var("LOAD_SECONDS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 1 } else { 20 }),
        concurrency: var("LOAD_CONCURRENCY")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 4 } else { 64 }),
        only: var("LOAD_ONLY").map(|v| v.split(',').map(str::to_string).collect()),
    }
}

/// The server under test: ours (spawned) or another one.
struct Target {
    base: String,
    pid: Option<u32>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start() -> Target {
    if let Ok(base) = std::env::var("LOAD_TARGET") {
        return Target {
            base,
            // Sample the other server's memory too when told its pid.
            pid: std::env::var("LOAD_TARGET_PID")
                .ok()
                .and_then(|p| p.parse().ok()),
            child: None,
            _dir: None,
        };
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // LOAD_DATABASE_URL: a MariaDB or PostgreSQL database instead (emptied
    // by the caller: sesame migrates it at start).
    let db = std::env::var("LOAD_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let cfg = dir.path().join("bench.yaml");
    std::fs::write(&cfg, config(port, &db)).unwrap();
    let child = serve(&cfg);
    Target {
        base: format!("http://127.0.0.1:{port}"),
        pid: Some(child.id()),
        child: Some(child),
        _dir: Some(dir),
    }
}

/// Start `sesame serve -c cfg`; returns once it listens.
fn serve(cfg: &std::path::Path) -> Child {
    // `LOAD_SESAME_BIN` runs another build of sesame (e.g. the previous
    // release, to compare two builds in one session) with the same setup.
    let bin =
        std::env::var("LOAD_SESAME_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_sesame").into());
    support::serve(&bin, cfg)
}

/// A config of `tenants` tenants with `clients` client-credentials clients
/// each (opaque access tokens), all signing with the RSA key in `key`.
fn large_config(
    port: u16,
    db: &str,
    key: &std::path::Path,
    tenants: usize,
    clients: usize,
) -> String {
    let mut y = format!(
        "server: {{ listen: \"127.0.0.1:{port}\" }}\ndatabase: {{ url: \"{db}\" }}\ntenants:\n"
    );
    for t in 0..tenants {
        y.push_str(&format!(
            "  - id: t{t:03}\n    issuer: http://127.0.0.1:{port}/t{t:03}\n    \
             access_token_format: opaque\n    signing: {{ keys: [\"{}\"] }}\n    \
             scopes: {{ api: {{ description: The API }} }}\n    clients:\n",
            key.display()
        ));
        for c in 0..clients {
            y.push_str(&format!(
                "      - {{ id: c{c:03}, secret: s{t:03}-{c:03}, grant_types: [client_credentials], scopes: [api] }}\n"
            ));
        }
    }
    y
}

/// Scale: 100 tenants with 100 clients each. Times `sesame check` and a
/// start until the first discovery answer (keys are loaded, not generated),
/// then measures discovery and client credentials on the last tenant's last
/// client, to compare with the two-tenant figures.
fn scale(s: &Settings, report: &dyn Fn(&str, Figures, Option<Usage>)) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let pem = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["keygen", "--alg", "RS256"])
        .output()
        .unwrap();
    std::fs::write(&key, pem.stdout).unwrap();
    let port = free_port();
    let db = format!("sqlite://{}", dir.path().join("scale.db").display());
    let cfg = dir.path().join("scale.yaml");
    std::fs::write(&cfg, large_config(port, &db, &key, 100, 100)).unwrap();

    let t = Instant::now();
    let check = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let checked = t.elapsed();
    // The first start creates the database; the second is the one timed.
    let mut first = serve(&cfg);
    let _ = first.kill();
    let _ = first.wait();
    let t = Instant::now();
    let mut child = serve(&cfg);
    let issuer = format!("http://127.0.0.1:{port}/t099");
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let answered = reqwest::blocking::get(&discovery)
        .unwrap()
        .status()
        .is_success();
    let ready = t.elapsed();
    assert!(answered);
    println!(
        "scale: 100 tenants x 100 clients: check {:.2} s, serve answering {:.2} s after start",
        checked.as_secs_f64(),
        ready.as_secs_f64()
    );
    let pid = Some(child.id());
    let (f, usage) = with_usage(pid, || wrk(s, &discovery, "GET", "", &[]));
    report("scale discovery", f, usage);
    let headers = [("Authorization", basic("c099", "s099-099"))];
    let (f, usage) = with_usage(pid, || {
        wrk(
            s,
            &format!("{issuer}/token"),
            "POST",
            "grant_type=client_credentials",
            &headers,
        )
    });
    report("scale cc_opaque", f, usage);
    let _ = child.kill();
    let _ = child.wait();
}

/// What the server process used while a scenario ran: its peak resident
/// set size and its CPU time over the wall time (1.0 = one core), from
/// `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
struct Usage {
    peak_mb: f64,
    cores: Option<f64>,
}

/// User + system CPU seconds of `pid` so far (`/proc/<pid>/stat`, fields 14
/// and 15, in clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Peak resident set size of `pid` while `f` runs (sampled every 20 ms),
/// and the CPU it used.
fn with_usage<T>(pid: Option<u32>, f: impl FnOnce() -> T) -> (T, Option<Usage>) {
    let Some(pid) = pid else {
        return (f(), None);
    };
    let (cpu_before, wall) = (cpu_seconds(pid), Instant::now());
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kb) = s
                        .lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        peak.fetch_max(kb, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = f();
    let cores = match (cpu_before, cpu_seconds(pid)) {
        (Some(a), Some(b)) => Some((b - a) / wall.elapsed().as_secs_f64()),
        _ => None,
    };
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak_mb = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    (out, Some(Usage { peak_mb, cores }))
}

#[derive(Debug, Default)]
struct Figures {
    requests: u64,
    rate: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Run wrk with a Lua script that sets method, body and headers.
fn wrk(s: &Settings, url: &str, method: &str, body: &str, headers: &[(&str, String)]) -> Figures {
    let mut lua = format!("wrk.method = \"{method}\"\nwrk.body = \"{body}\"\n");
    if !body.is_empty() {
        lua.push_str("wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n");
    }
    for (k, v) in headers {
        lua.push_str(&format!("wrk.headers[\"{k}\"] = \"{v}\"\n"));
    }
    run_wrk(s, url, &lua, None)
}

/// Run wrk with `lua` plus a `done` that prints the figures. With `unit`, the
/// rate counts that per-thread Lua global (summed over wrk's threads) instead
/// of requests, and the per-thread global `failed` adds to the errors.
fn run_wrk(s: &Settings, url: &str, lua: &str, unit: Option<&str>) -> Figures {
    let unit = unit.map_or("nil".to_string(), |u| format!("\"{u}\""));
    let lua = format!(
        r#"{lua}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local units, failed = summary.requests, 0
  if {unit} then
    units = 0
    for _, t in ipairs(threads) do
      units = units + t:get({unit})
      failed = failed + t:get("failed")
    end
  end
  local e = summary.errors
  io.write(string.format("FIGURES %d %d %f %f %d %f\n", units, summary.duration,
    latency:percentile(50), latency:percentile(99),
    failed + e.status + e.connect + e.read + e.write + e.timeout, latency.mean))
end
"#
    );
    let script = tempfile::Builder::new().suffix(".lua").tempfile().unwrap();
    std::fs::write(script.path(), lua).unwrap();
    let threads = 2.min(s.concurrency);
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &s.concurrency.to_string(),
            "-d",
            &format!("{}s", s.seconds),
            "--latency",
            "-s",
        ])
        .arg(script.path())
        .arg(url)
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("FIGURES"))
        .unwrap_or_else(|| panic!("wrk said: {text} {}", String::from_utf8_lossy(&out.stderr)));
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    Figures {
        requests: f[0] as u64,
        rate: f[0] / (f[1] / 1e6),
        mean_ms: f[5] / 1000.0,
        p50_ms: f[2] / 1000.0,
        p99_ms: f[3] / 1000.0,
        errors: f[4] as u64,
    }
}

/// wrk's Lua for code flows over an existing SSO session: each connection
/// sends `GET /authorize` with the session cookie, and the code from its
/// redirect goes out in the next `POST /token` of the same wrk thread.
/// `flows` counts token responses with an ID token.
fn sso_flow_lua(authorize: &str, token: &str, cookie: &str, basic: &str) -> String {
    format!(
        r#"local authorize
init = function(args)
  -- Formatted here, once wrk knows the Host header.
  authorize = wrk.format("GET", "{authorize}", {{ ["Cookie"] = "{cookie}" }})
end
local codes = {{}}
flows, failed = 0, 0
request = function()
  local code = table.remove(codes)
  if code == nil then return authorize end
  return wrk.format("POST", "{token}", {{
    ["Authorization"] = "{basic}",
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }}, "grant_type=authorization_code&redirect_uri={cb}&code=" .. code)
end
response = function(status, headers, body)
  if status == 200 and body:find('"id_token"', 1, true) then
    flows = flows + 1
    return
  end
  local location = headers["location"] or headers["Location"]
  local code = location and location:match("[?&]code=([^&]+)")
  if code then table.insert(codes, code) else failed = failed + 1 end
end
"#,
        cb = url::form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
    )
}

/// A browser-like async client: no redirects, cookies kept.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

fn field(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\"")).unwrap();
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    let tag = &html[start..end];
    let v = tag.find("value=\"").unwrap() + 7;
    tag[v..v + tag[v..].find('"').unwrap()].to_string()
}

fn code_of(location: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

fn authorize_url(ep: &Endpoints, scope: &str) -> String {
    let mut u = url::Url::parse(&ep.authorization).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "web")
        .append_pair("redirect_uri", CB)
        .append_pair("scope", scope)
        .append_pair("state", "s")
        .append_pair("nonce", "n");
    u.to_string()
}

/// Sign in (no session yet) and return the code: follow the redirects
/// (the sign-in's too), and fill in sesame's sign-in form when it shows up (the reference server
/// signs in without one).
async fn login_flow(b: &reqwest::Client, ep: &Endpoints, scope: &str) -> String {
    login_flow_as(b, ep, scope, "alice").await
}

/// [`login_flow`] signing in as `username`.
async fn login_flow_as(b: &reqwest::Client, ep: &Endpoints, scope: &str, username: &str) -> String {
    let mut at = url::Url::parse(&authorize_url(ep, scope)).unwrap();
    for _ in 0..10 {
        let r = b.get(at.clone()).send().await.unwrap();
        let Some(loc) = r.headers().get("location") else {
            panic!("no redirect from {at}: {}", r.status());
        };
        let loc = at.join(loc.to_str().unwrap()).unwrap();
        if loc.as_str().starts_with(CB) {
            return code_of(loc.as_str());
        }
        if loc.path().ends_with("/login") {
            let html = b
                .get(loc.clone())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let mut action = loc.clone();
            action.set_query(None);
            let r = b
                .post(action)
                .form(&[
                    ("rid", field(&html, "rid")),
                    ("csrf", field(&html, "csrf")),
                    ("username", username.to_string()),
                    ("password", "wonderland".to_string()),
                ])
                .send()
                .await
                .unwrap();
            // Post/redirect/get: on to the consent step, which redirects with the code.
            let Some(next) = r.headers().get("location").cloned() else {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                panic!(
                    "sign-in answered {status}, not a redirect: {}",
                    &body[..body.len().min(400)]
                );
            };
            // (A server before post/redirect/get sends the code at once.)
            at = loc.join(next.to_str().unwrap()).unwrap();
            if at.as_str().starts_with(CB) {
                return code_of(at.as_str());
            }
            continue;
        }
        at = loc;
    }
    panic!("no code after 10 redirects");
}

async fn exchange(c: &reqwest::Client, ep: &Endpoints, code: &str) -> serde_json::Value {
    let r = c
        .post(&ep.token)
        .basic_auth("web", Some("web-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Run `workers` copies of `step` for `seconds`; each step is one timed unit.
async fn drive<S, F, Fut>(s: &Settings, workers: Vec<S>, step: F) -> Figures
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = (S, bool)> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(s.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for state in workers {
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut state = state;
            while Instant::now() < deadline {
                let t = Instant::now();
                let (next, ok) = step(state).await;
                state = next;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Figures {
        requests: all.len() as u64,
        rate: all.len() as f64 / elapsed,
        mean_ms: all.iter().sum::<f64>() / (all.len().max(1) as f64),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

/// The endpoints of an issuer, from its discovery document.
#[derive(Clone)]
struct Endpoints {
    discovery: String,
    authorization: String,
    jwks: String,
    token: String,
    introspection: String,
    userinfo: String,
}

async fn discover(issuer: &str) -> Endpoints {
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let d: serde_json::Value = reqwest::get(&discovery)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let get = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    Endpoints {
        authorization: get("authorization_endpoint"),
        jwks: get("jwks_uri"),
        token: get("token_endpoint"),
        introspection: get("introspection_endpoint"),
        userinfo: get("userinfo_endpoint"),
        discovery,
    }
}

async fn client_credentials(token_endpoint: &str) -> String {
    let t: serde_json::Value = reqwest::Client::new()
        .post(token_endpoint)
        .basic_auth("cc", Some("cc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    t["access_token"].as_str().unwrap().to_string()
}

/// Code flows over one SSO session at `ep`: one sign-in sets the session
/// up; wrk then runs the flows with its cookie: GET authorize (session) →
/// code → POST token.
fn sso_flows(
    s: &Settings,
    rt: &tokio::runtime::Runtime,
    pid: Option<u32>,
    ep: &Endpoints,
) -> (Figures, Option<Usage>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let authorize = url::Url::parse(&authorize_url(ep, "openid profile")).unwrap();
    rt.block_on(async {
        let code = login_flow(&b, ep, "openid profile").await;
        exchange(&b, ep, &code).await;
    });
    let cookie = reqwest::cookie::CookieStore::cookies(&*jar, &authorize)
        .expect("the sign-in set a session cookie");
    let token = url::Url::parse(&ep.token).unwrap();
    let lua = sso_flow_lua(
        &authorize[url::Position::BeforePath..],
        token.path(),
        cookie.to_str().unwrap(),
        &basic("web", "web-secret"),
    );
    with_usage(pid, || run_wrk(s, &ep.token, &lua, Some("flows")))
}

fn main() {
    let s = settings();
    let target = start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let foreign = target.child.is_none();
    let (jwt, opaque) = if foreign {
        (
            target.base.clone(),
            std::env::var("LOAD_TARGET_OPAQUE").ok(),
        )
    } else {
        (
            format!("{}/jwt", target.base),
            Some(format!("{}/opaque", target.base)),
        )
    };
    let wanted = |name: &str| {
        // The reference signs in without a password: flows over a session
        // compare; the scenarios that need sesame's users and forms do not.
        let user_needed = matches!(name, "userinfo" | "refresh" | "flow_login");
        !(foreign && user_needed) && s.only.as_ref().is_none_or(|o| o.iter().any(|x| x == name))
    };
    let ep = rt.block_on(discover(&jwt));
    let ep_opaque = opaque.as_deref().map(|o| rt.block_on(discover(o)));
    // The ES256 and EdDSA issuers (another server's with LOAD_TARGET_ES256,
    // LOAD_TARGET_EDDSA: the reference with ALG=ES256 / ALG=EdDSA).
    let other_alg = |tenant: &str, var: &str| {
        let issuer = if foreign {
            std::env::var(var).ok()
        } else {
            Some(format!("{}/{tenant}", target.base))
        };
        issuer.map(|i| rt.block_on(discover(&i)))
    };
    let ep_es256 = other_alg("es256", "LOAD_TARGET_ES256");
    let ep_eddsa = other_alg("eddsa", "LOAD_TARGET_EDDSA");

    // Tokens the request scenarios need: a client token to introspect (an
    // opaque one when there is an opaque issuer) and, on sesame, a user's.
    let cc_token = rt.block_on(client_credentials(&ep_opaque.as_ref().unwrap_or(&ep).token));
    let user_token = if foreign {
        String::new()
    } else {
        rt.block_on(async {
            let b = browser();
            let code = login_flow(&b, &ep, "openid profile email api").await;
            let t = exchange(&b, &ep, &code).await;
            t["access_token"].as_str().unwrap().to_string()
        })
    };

    println!(
        "sesame load: {} s per scenario, concurrency {}, target {}",
        s.seconds, s.concurrency, target.base
    );
    println!(
        "{:<22} {:>10} {:>10} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7}",
        "scenario",
        "requests",
        "per s",
        "mean ms",
        "p50 ms",
        "p99 ms",
        "errors",
        "peak MB",
        "CPU %"
    );
    let report = |name: &str, f: Figures, usage: Option<Usage>| {
        println!(
            "{:<22} {:>10} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>8} {:>7}",
            name,
            f.requests,
            f.rate,
            f.mean_ms,
            f.p50_ms,
            f.p99_ms,
            f.errors,
            usage
                .map(|u| format!("{:.1}", u.peak_mb))
                .unwrap_or_else(|| "-".into()),
            usage
                .and_then(|u| u.cores)
                .map(|c| format!("{:.0}", c * 100.0))
                .unwrap_or_else(|| "-".into())
        );
    };

    type Scenario<'a> = (&'a str, String, &'a str, String, Vec<(&'a str, String)>);
    let cc_basic = vec![("Authorization", basic("cc", "cc-secret"))];
    let cc_body = "grant_type=client_credentials".to_string();
    let mut simple: Vec<Scenario> = vec![
        (
            "discovery",
            ep.discovery.clone(),
            "GET",
            String::new(),
            vec![],
        ),
        ("jwks", ep.jwks.clone(), "GET", String::new(), vec![]),
        (
            "cc_jwt",
            ep.token.clone(),
            "POST",
            cc_body.clone(),
            cc_basic.clone(),
        ),
    ];
    for (name, other) in [("cc_jwt_es256", &ep_es256), ("cc_jwt_eddsa", &ep_eddsa)] {
        if let Some(o) = other {
            simple.push((
                name,
                o.token.clone(),
                "POST",
                cc_body.clone(),
                cc_basic.clone(),
            ));
        }
    }
    if let Some(o) = &ep_opaque {
        simple.push(("cc_opaque", o.token.clone(), "POST", cc_body, cc_basic));
    }
    let introspection = ep_opaque.as_ref().unwrap_or(&ep).introspection.clone();
    simple.push((
        "introspect",
        introspection,
        "POST",
        format!("token={cc_token}"),
        vec![("Authorization", basic("rs", "rs-secret"))],
    ));
    simple.push((
        "userinfo",
        ep.userinfo.clone(),
        "GET",
        String::new(),
        vec![("Authorization", format!("Bearer {user_token}"))],
    ));
    for (name, url, method, body, headers) in simple {
        if !wanted(name) {
            continue;
        }
        let (f, usage) = with_usage(target.pid, || wrk(&s, &url, method, &body, &headers));
        report(name, f, usage);
    }

    if wanted("mixed") {
        // Discovery on 4 connections while client credentials with an RS256
        // JWT keep 64 busy: does signing hold up the cheap requests?
        let storm = {
            let heavy = Settings {
                seconds: s.seconds,
                concurrency: s.concurrency,
                only: None,
            };
            let url = ep.token.clone();
            let headers = vec![("Authorization", basic("cc", "cc-secret"))];
            std::thread::spawn(move || {
                wrk(
                    &heavy,
                    &url,
                    "POST",
                    "grant_type=client_credentials",
                    &headers,
                )
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        let light = Settings {
            seconds: s.seconds.saturating_sub(1).max(1),
            concurrency: 4.min(s.concurrency),
            only: None,
        };
        let (f, usage) = with_usage(target.pid, || wrk(&light, &ep.discovery, "GET", "", &[]));
        report("mixed: discovery", f, usage);
        report("mixed: cc_jwt", storm.join().unwrap(), None);
    }

    if wanted("refresh") {
        let workers: Vec<(reqwest::Client, String)> = rt.block_on(async {
            let mut v = Vec::new();
            let b = browser();
            for _ in 0..s.concurrency {
                let code = login_flow(&b, &ep, "openid offline_access").await;
                let t = exchange(&b, &ep, &code).await;
                v.push((
                    reqwest::Client::new(),
                    t["refresh_token"].as_str().unwrap().to_string(),
                ));
            }
            v
        });
        let issuer = jwt.clone();
        let (f, usage) = with_usage(target.pid, || {
            rt.block_on(drive(
                &s,
                workers,
                move |(c, token): (reqwest::Client, String)| {
                    let issuer = issuer.clone();
                    async move {
                        let r = c
                            .post(format!("{issuer}/token"))
                            .basic_auth("web", Some("web-secret"))
                            .form(&[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", token.as_str()),
                            ])
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => {
                                let t: serde_json::Value = r.json().await.unwrap_or_default();
                                let next =
                                    t["refresh_token"].as_str().unwrap_or_default().to_string();
                                ((c, next), true)
                            }
                            _ => ((c, token), false),
                        }
                    }
                },
            ))
        });
        report("refresh", f, usage);
    }

    // The flows run on the opaque-token issuer: one RS256 signature (the ID
    // token) per flow, as in the reference's flow figure.
    let flow_ep = ep_opaque.clone().unwrap_or_else(|| ep.clone());
    if wanted("flow_sso") {
        let (f, usage) = sso_flows(&s, &rt, target.pid, &flow_ep);
        report("flow_sso (flows)", f, usage);
    }
    if let Some(es) = ep_es256.as_ref().filter(|_| wanted("flow_sso_es256")) {
        let (f, usage) = sso_flows(&s, &rt, target.pid, es);
        report("flow_sso_es256 (flows)", f, usage);
    }

    if wanted("flow_login") {
        let flow_ep = flow_ep.clone();
        // One user per browser: many people signing in, not one person 64 times at once.
        let workers: Vec<usize> = (0..s.concurrency).collect();
        let (f, usage) = with_usage(target.pid, || {
            rt.block_on(drive(&s, workers, move |i: usize| {
                let ep = flow_ep.clone();
                async move {
                    let b = browser();
                    let user = format!("signer{:02}", i % SIGNERS);
                    let code = login_flow_as(&b, &ep, "openid profile", &user).await;
                    let t = exchange(&b, &ep, &code).await;
                    (i, t["id_token"].is_string())
                }
            }))
        });
        report("flow_login (flows)", f, usage);
    }

    if !foreign && wanted("scale") {
        scale(&s, &report);
    }
}
