//! The plugin corpus: scripts written the way operators write them, in
//! every style Rhai offers, each loaded by one real server and checked over
//! real HTTP (issue 14: "any script that stock Rhai runs, sesame runs").
//!
//! Every `tests/plugin_corpus/NN_name.rhai` is run on a client of its own,
//! whose id is the file stem (`07_keycloak_roles`), on one tenant with the
//! users of [`users`]. Adding a script is adding a file: what it must give
//! is written in the script itself, in comment lines at its top.
//!
//! ```text
//! // metadata: {"allowed_groups": ["staff"]}       the client's metadata (optional)
//! // expect: {"user": "bob", "ask": "openid profile",
//! //          "scope": "openid profile", "id_token": {"department": "Sales"}}
//! ```
//!
//! Each `// expect:` line starts one case: a JSON object, which may go on
//! over the following `//` lines until it is complete. A case says what to
//! do — `user` (who signs in, default `alice`; password "wonderland"),
//! `ask` (the scopes requested, default `openid profile email`), `grant`
//! (`authorization_code`, the default, or `client_credentials`) — and what
//! must come back, every key optional:
//!
//! - `scope`: the granted scopes (as a set of words);
//! - `refresh_token`: whether the token response holds a refresh token;
//! - `id_token`, `access_token` (the tenant issues JWTs), `userinfo`,
//!   `introspection` (asked by the client itself): claims, matched as a
//!   subset — the keys named must be there with those values, maps inside
//!   are matched the same way, arrays and other values must be equal, and
//!   `null` means the claim must be absent;
//! - `denied`: the reason given to `deny()` (at `/authorize` for the code
//!   flow, `access_denied`; at `/token` for `client_credentials`, `invalid_grant`);
//! - `refresh`: the same expectations again for a refresh grant with the
//!   refresh token just issued (`scope`, `refresh_token`, claims).
//!
//! Every mismatch of every script is collected and reported together,
//! each naming the script, the case and the claim path that differed.
//!
//! Besides the files, the test generates two scripts at exactly the
//! expression-depth limit inside a hook (found by trying `sesame check`),
//! runs them on the same server, and checks that one level more is refused
//! by `sesame check` with the message that names the limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::flow::{exchange, introspect, post_basic, query_param, userinfo, Flow};
use common::{browser, jwt_claims, sesame, start_with_scripts, Server, ALICE_HASH};
use serde_json::{json, Value};

const CB: &str = "http://app.test/cb";
const SECRET: &str = "corpus-secret";
/// Every scope a corpus client may ask for.
const CLIENT_SCOPES: &str = "[openid, profile, email, offline_access, groups, api:read, api:write, api:admin, reports:read, billing:read, billing:write]";

/// Parentheses `(1 + (1 + ... 1))` nested this deep are the most a hook
/// accepts (Rhai counts a parenthesis and an operator a level each, inside
/// a function's limit of 64); one more is refused.
const MAX_PARENS: usize = 29;
/// Nested `if` expressions (`let v = if a { if b { ... } else { 0 } } else { 0 };`)
/// in a hook: this many compile, one more is refused.
const MAX_IF_EXPRS: usize = 19;

/// One script of the corpus.
struct Script {
    file: String,
    stem: String,
    source: String,
    metadata: Value,
    cases: Vec<Value>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugin_corpus")
}

/// The `// expect:` cases and the `// metadata:` of a script's header.
fn header(file: &str, source: &str) -> (Value, Vec<Value>) {
    let lines: Vec<&str> = source.lines().collect();
    let mut metadata = json!({});
    let mut cases = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        for (key, is_case) in [("// expect:", true), ("// metadata:", false)] {
            let Some(rest) = line.strip_prefix(key) else {
                continue;
            };
            let mut text = rest.to_string();
            let parsed = loop {
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) => break v,
                    Err(e) => {
                        let next = lines.get(i + 1).map(|l| l.trim_start());
                        match next.and_then(|l| l.strip_prefix("//")) {
                            Some(more) if !more.trim_start().starts_with("expect:") => {
                                text.push('\n');
                                text.push_str(more);
                                i += 1;
                            }
                            _ => panic!("{file}: line {}: {key} is not JSON: {e}", i + 1),
                        }
                    }
                }
            };
            if is_case {
                assert!(parsed.is_object(), "{file}: a case is a JSON object");
                cases.push(parsed);
            } else {
                metadata = parsed;
            }
        }
        i += 1;
    }
    (metadata, cases)
}

fn load_corpus() -> Vec<Script> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/plugin_corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let source = std::fs::read_to_string(&p).unwrap();
            let (metadata, cases) = header(&file, &source);
            assert!(!cases.is_empty(), "{file}: no `// expect:` case");
            Script {
                file,
                stem,
                source,
                metadata,
                cases,
            }
        })
        .collect()
}

/// The tenant's users: the claims the scripts feed on. `dave` has 1,000 groups.
fn users() -> String {
    let dave_groups: Vec<String> = (0..1000)
        .map(|i| match i {
            0 => "staff".to_string(),
            1 => "support-l2".to_string(),
            _ => format!("team-{i:04}"),
        })
        .collect();
    let user = |name: &str, claims: Value| {
        format!(
            "      - username: {name}\n        password_hash: \"{ALICE_HASH}\"\n        claims: {claims}\n"
        )
    };
    [
        user(
            "alice",
            json!({
                "name": "Alice Martin", "given_name": "Alice", "family_name": "Martin",
                "email": "Alice.Martin@Example.com", "email_verified": true,
                "department": "Engineering", "cost_center": "CC-100", "title": "Staff Engineer",
                "level": 7, "employee_type": "employee", "country": "FR", "locale": "fr-FR",
                "employee_id": "E-00042", "manager": "dave", "hired": 1420070400,
                "groups": ["staff", "admins", "eng-backend", "wiki-editors", "app-billing-users", "offline", "plan-pro"],
                "roles": ["editor", "reviewer"],
                "realm_roles": ["admin", "user"],
                "client_roles": {"billing": ["invoice-admin"], "wiki": ["editor", "viewer"]},
                "entitlements": ["ent-analytics", "ent-export", "ent-sso"],
                "mfa": true
            }),
        ),
        user(
            "bob",
            json!({
                "given_name": "Bob", "family_name": "Dupont",
                "email": "bob@partner.example", "email_verified": true,
                "department": "Sales", "cost_center": "CC-200", "title": "Account Executive",
                "level": 3, "employee_type": "employee", "country": "DE",
                "employee_id": "E-00107", "hired": 1672531200,
                "groups": ["staff", "sales-emea", "app-billing-users"],
                "roles": ["viewer"],
                "realm_roles": ["user"],
                "entitlements": ["ent-crm"],
                "mfa": false
            }),
        ),
        user(
            "carol",
            json!({
                "name": "Carol Lee", "email": "carol@agency.example", "email_verified": false,
                "department": "Marketing", "cost_center": "CC-999", "title": "Designer",
                "level": 2, "employee_type": "contractor", "country": "US",
                "contract_end": 1893456000,
                "groups": ["contractors", "eng-frontend"],
                "roles": [],
                "mfa": true
            }),
        ),
        user(
            "dave",
            json!({
                "name": "Dave Moreau", "email": "dave@example.com", "email_verified": true,
                "department": "Support", "cost_center": "CC-310", "title": "Support Lead",
                "level": 5, "employee_type": "employee", "country": "FR",
                "employee_id": "E-00007", "hired": 1262304000,
                "groups": dave_groups,
                "roles": ["support"],
                "mfa": true
            }),
        ),
        user(
            "erin",
            json!({
                "name": "Erin Blake", "email": "erin@example.com", "email_verified": true,
                "department": "Legal", "level": 4, "employee_type": "employee",
                "groups": ["staff", "blocked"], "disabled": true
            }),
        ),
    ]
    .concat()
}

fn client_yaml(id: &str, metadata: &Value, plugin: &str) -> String {
    format!(
        "      - id: {id}\n        secret: {SECRET}\n        skip_consent: true\n        \
         redirect_uris: [{CB}]\n        \
         grant_types: [authorization_code, refresh_token, client_credentials]\n        \
         scopes: {CLIENT_SCOPES}\n        metadata: {metadata}\n        plugins: [{plugin}]\n"
    )
}

fn config(clients: &str) -> String {
    format!(
        r#"server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
# The corpus proves what scripts may do, not how fast a debug build on a
# busy machine does it: the operation limits apply, the clock hardly.
plugin_time_limit: 5s
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    access_token_format: jwt
    scopes:
      groups: {{ description: Your groups }}
      api:read: {{ description: Read the API }}
      api:write: {{ description: Write to the API }}
      api:admin: {{ description: Administer the API }}
      reports:read: {{ description: Read reports }}
      billing:read: {{ description: See invoices }}
      billing:write: {{ description: Pay invoices }}
    users:
{users}    clients:
{clients}"#,
        users = users(),
    )
}

/// `(1 + (1 + ... 1))` with `n` pairs of parentheses, worth `n`, in a hook.
fn parens_script(n: usize) -> String {
    let mut e = "1".to_string();
    for _ in 1..n {
        e = format!("(1 + {e})");
    }
    format!("// generated: parentheses {n} deep\nfn access_token_claims(ctx) {{\n    let depth = ({e});\n    #{{ depth: depth }}\n}}\n")
}

/// `n` nested `if` expressions, worth `n` when `ctx.now` is past them all.
fn if_script(n: usize) -> String {
    let mut e = format!("{n}");
    for i in 0..n {
        e = format!("if ctx.now > {i} {{ {e} }} else {{ 0 }}");
    }
    format!("// generated: if expressions {n} deep\nfn access_token_claims(ctx) {{\n    let depth = {e};\n    #{{ depth: depth }}\n}}\n")
}

/// Where `expected` is not a subset of `got`: one line per difference.
fn diff(path: &str, expected: &Value, got: Option<&Value>, out: &mut Vec<String>) {
    match (expected, got) {
        (Value::Null, None) => {}
        (Value::Null, Some(g)) => out.push(format!("{path}: expected absent, got {g}")),
        (_, None) => out.push(format!("{path}: expected {expected}, got nothing")),
        (Value::Object(e), Some(Value::Object(g))) => {
            for (k, v) in e {
                diff(&format!("{path}.{k}"), v, g.get(k), out);
            }
        }
        (e, Some(g)) if e == g => {}
        (e, Some(g)) => out.push(format!("{path}: expected {e}, got {g}")),
    }
}

fn words(s: &str) -> BTreeSet<&str> {
    s.split_whitespace().collect()
}

/// The checks every token response shares: scope, refresh token, claims.
fn check_tokens(s: &Server, client: &str, case: &Value, t: &Value, out: &mut Vec<String>) {
    if let Some(scope) = case.get("scope").and_then(Value::as_str) {
        let got = t["scope"].as_str().unwrap_or_default();
        if words(scope) != words(got) {
            out.push(format!("scope: expected {scope:?}, got {got:?}"));
        }
    }
    if let Some(rt) = case.get("refresh_token").and_then(Value::as_bool) {
        if t["refresh_token"].is_string() != rt {
            out.push(format!("refresh_token: expected {rt}, got {t}"));
        }
    }
    let at = t["access_token"].as_str().unwrap_or_default();
    if let Some(e) = case.get("id_token") {
        match t["id_token"].as_str() {
            Some(id) => diff("id_token", e, Some(&jwt_claims(id)), out),
            None => out.push(format!("id_token: none in {t}")),
        }
    }
    if let Some(e) = case.get("access_token") {
        diff("access_token", e, Some(&jwt_claims(at)), out);
    }
    if let Some(e) = case.get("userinfo") {
        diff("userinfo", e, Some(&userinfo(s, "demo", at)), out);
    }
    if let Some(e) = case.get("introspection") {
        let i = introspect(s, "demo", client, SECRET, at);
        diff("introspection", e, Some(&i), out);
    }
}

/// Run one case of `client`'s script; what differed.
fn run_case(s: &Server, client: &str, case: &Value, browsers: &mut Browsers) -> Vec<String> {
    let mut out = Vec::new();
    let ask = case["ask"].as_str().unwrap_or("openid profile email");
    let denied = case.get("denied").and_then(Value::as_str);
    if case["grant"].as_str() == Some("client_credentials") {
        let r = post_basic(
            s,
            "/demo/token",
            client,
            SECRET,
            &[("grant_type", "client_credentials"), ("scope", ask)],
        );
        let status = r.status();
        let t: Value = r.json().unwrap_or(Value::Null);
        match denied {
            Some(reason) => {
                let want = json!({"error": "invalid_grant", "error_description": reason});
                diff("token error", &want, Some(&t), &mut out);
            }
            None if status == 200 => check_tokens(s, client, case, &t, &mut out),
            None => out.push(format!("client_credentials: {status} {t}")),
        }
        return out;
    }
    let username = case["user"].as_str().unwrap_or("alice");
    let url = Flow {
        scope: ask,
        username,
        ..Flow::new(s, client, CB)
    }
    .run(browsers.of(username));
    let error = query_param(&url, "error");
    match (denied, error) {
        (Some(reason), Some(e)) => {
            let got = query_param(&url, "error_description").unwrap_or_default();
            if e != "access_denied" || got != reason {
                out.push(format!(
                    "denied: expected access_denied {reason:?}, got {e} {got:?}"
                ));
            }
        }
        (Some(reason), None) => out.push(format!("denied: expected {reason:?}, got {url}")),
        (None, Some(e)) => out.push(format!(
            "/authorize answered {e}: {:?} (the server log says why)",
            query_param(&url, "error_description")
        )),
        (None, None) => {
            let code = query_param(&url, "code").unwrap_or_default();
            let t = exchange(s, "demo", client, SECRET, &code, CB);
            check_tokens(s, client, case, &t, &mut out);
            if let Some(after) = case.get("refresh") {
                let rt = t["refresh_token"].as_str().unwrap_or_default();
                let r = post_basic(
                    s,
                    "/demo/token",
                    client,
                    SECRET,
                    &[("grant_type", "refresh_token"), ("refresh_token", rt)],
                );
                let status = r.status();
                let t2: Value = r.json().unwrap_or(Value::Null);
                if status == 200 {
                    let mut more = Vec::new();
                    check_tokens(s, client, after, &t2, &mut more);
                    out.extend(more.into_iter().map(|m| format!("refresh: {m}")));
                } else {
                    out.push(format!("refresh: {status} {t2}"));
                }
            }
        }
    }
    out
}

/// [`run_case`], with a failed assertion of a helper (an answer other than
/// 200) as a difference, and what the server logged about the script.
fn guarded(
    s: &Server,
    file: &str,
    client: &str,
    case: &Value,
    browsers: &mut Browsers,
) -> Vec<String> {
    let seen = s.logs().len();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_case(s, client, case, browsers)
    }));
    let mut out = ran.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|m| m.to_string()))
            .unwrap_or_default();
        vec![format!("the flow failed: {what}")]
    });
    if !out.is_empty() {
        let logs = s.logs();
        let logged: Vec<String> = logs[seen.min(logs.len())..]
            .lines()
            .filter(|l| l.contains(file))
            .map(|l| format!("server log: {l}"))
            .collect();
        out.extend(logged);
    }
    out
}

/// One signed-in browser per user, so each password is checked once.
#[derive(Default)]
struct Browsers(Vec<(String, reqwest::blocking::Client)>);

impl Browsers {
    fn of(&mut self, user: &str) -> &reqwest::blocking::Client {
        if let Some(i) = self.0.iter().position(|(u, _)| u == user) {
            return &self.0[i].1;
        }
        self.0.push((user.to_string(), browser()));
        &self.0.last().unwrap().1
    }
}

#[test]
fn every_corpus_script_loads_and_gives_its_tokens_over_http() {
    let started = Instant::now();
    let corpus = load_corpus();
    assert!(
        corpus.len() >= 30,
        "the corpus holds {} scripts",
        corpus.len()
    );

    let mut scripts: Vec<(String, String)> = corpus
        .iter()
        .map(|c| (format!("corpus/{}", c.file), c.source.clone()))
        .collect();
    let mut clients: String = corpus
        .iter()
        .map(|c| client_yaml(&c.stem, &c.metadata, &format!("corpus/{}", c.file)))
        .collect();
    for (id, source) in [
        ("depth_parens", parens_script(MAX_PARENS)),
        ("depth_ifs", if_script(MAX_IF_EXPRS)),
    ] {
        let path = format!("generated/{id}.rhai");
        clients.push_str(&client_yaml(id, &json!({}), &path));
        scripts.push((path, source));
    }
    let named: Vec<(&str, &str)> = scripts
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let s = start_with_scripts(&config(&clients), &named);

    let mut browsers = Browsers::default();
    let mut failures = Vec::new();
    let mut cases = 0;
    for script in &corpus {
        for (i, case) in script.cases.iter().enumerate() {
            cases += 1;
            for d in guarded(&s, &script.file, &script.stem, case, &mut browsers) {
                failures.push(format!("{} case {} ({case}):\n    {d}", script.file, i + 1));
            }
        }
    }
    for (id, depth) in [("depth_parens", MAX_PARENS), ("depth_ifs", MAX_IF_EXPRS)] {
        let case = json!({"ask": "openid api:read", "access_token": {"depth": depth}});
        for d in guarded(&s, &format!("{id}.rhai"), id, &case, &mut browsers) {
            failures.push(format!("generated/{id}.rhai:\n    {d}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} difference(s) in the corpus:\n{}",
        failures.len(),
        failures.join("\n"),
    );
    eprintln!(
        "{} scripts, {cases} cases, over HTTP in {:.1?}",
        corpus.len(),
        started.elapsed()
    );
}

/// `sesame check` on a config whose only client runs `source`.
fn check_script(source: &str) -> common::Ran {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::write(dir.path().join("plugins/deep.rhai"), source).unwrap();
    let cfg = dir.path().join("sesame.yaml");
    let yaml = config(&client_yaml("deep", &json!({}), "deep.rhai"))
        .replace("{port}", "8080")
        .replace("{db}", "sqlite://never-opened.db");
    std::fs::write(&cfg, yaml).unwrap();
    sesame(&["check", "-c", cfg.to_str().unwrap()])
}

#[test]
fn one_level_past_the_expression_depth_limit_is_refused_with_a_lesson() {
    for (what, at_limit, past) in [
        (
            "parentheses",
            parens_script(MAX_PARENS),
            parens_script(MAX_PARENS + 1),
        ),
        (
            "if expressions",
            if_script(MAX_IF_EXPRS),
            if_script(MAX_IF_EXPRS + 1),
        ),
    ] {
        let ok = check_script(&at_limit);
        assert_eq!(
            ok.code,
            Some(0),
            "{what} at the limit: {}{}",
            ok.stdout,
            ok.stderr
        );
        let refused = check_script(&past);
        let said = format!("{}{}", refused.stdout, refused.stderr);
        assert_eq!(refused.code, Some(1), "{what} past the limit: {said}");
        assert!(
            said.contains("deep.rhai: line 3, column ")
                && said.contains("expression nested past the depth limit")
                && said.contains("64 inside a function"),
            "{what}: {said}"
        );
        assert!(
            !said.contains("overflow") && !said.contains("panicked"),
            "{said}"
        );
    }
}
