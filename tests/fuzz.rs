//! Fuzzing on stable Rust, as `proptest` property tests: the parsers that see
//! hostile input never panic, and accept exactly what they should.
//!
//! Each target runs `SESAME_FUZZ_CASES` cases (default 256) per round, and
//! keeps running rounds with fresh random seeds until `SESAME_FUZZ_SECS`
//! seconds have passed (default 0: one round). CI runs
//! `SESAME_FUZZ_SECS=30 cargo test --test fuzz -- --test-threads=1`, so every
//! target gets at least 30 s. A failure prints the shrunk input; every input
//! that ever failed is kept below as a `regression_*` test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sesame::jose::{verify_jwt, Alg, Keyset, SigningKey};
use sesame::oauth::{pkce, Params};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `test` on values of `strategy`: rounds of `SESAME_FUZZ_CASES` cases
/// until `SESAME_FUZZ_SECS` have passed.
fn fuzz<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let cases = env_u64("SESAME_FUZZ_CASES", 256) as u32;
    let deadline = Instant::now() + Duration::from_secs(env_u64("SESAME_FUZZ_SECS", 0));
    let started = Instant::now();
    let mut total: u64 = 0;
    loop {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("fuzz target {name} failed after {total} cases: {e}");
        }
        total += u64::from(cases);
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!(
        "fuzz {name}: {total} cases in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

// ---- config::load_str ----

const VALID_YAML: &str = r#"
server:
  listen: 127.0.0.1:8080
  trusted_proxies: [10.0.0.0/8]
database:
  url: sqlite://data/sesame.db
  pool_size: 4
  connect_timeout: 5s
tenants:
  - id: demo
    issuer: https://id.example.com/demo
    lifetimes: { access_token: 1h, session: 12h }
    throttle: { max_failures: 5, window: 15m, lockout: 15m }
    access_token_format: opaque
    scopes:
      api:read: { description: Read the API, claims: [groups] }
    users:
      - username: alice
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0R8X5rmJ1RlV3Xj0pGZaKZ+4b6m2JdW7XGJiyq8Ljb0"
        claims: { name: Alice, email: alice@example.com, groups: [staff] }
    clients:
      - id: web
        secret: ${WEB_SECRET}
        redirect_uris: [https://app.example.com/cb]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, api:read, offline_access]
        lifetimes: { refresh_token: 30d }
        metadata: { team: core }
"#;

/// Bits of YAML syntax that make mutations interesting.
const YAML_BITS: &[&str] = &[
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "'",
    "\"",
    "\n",
    "  ",
    "    ",
    "${",
    "${X}",
    "<<: ",
    "~",
    "null",
    "0x1F",
    "1e999",
    "-1",
    "#",
    "|\n",
    ">\n",
    "? ",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "\t",
    "\\u0000",
    "99999999999999999999",
    "1s",
    "0s",
    "400000000000y",
    "https://",
    "sqlite:",
    "mysql://",
    "[::1]",
    "/..",
    "tenants:",
    "clients:",
];

fn load(text: &str) {
    let _ = sesame::config::load_str(text, Path::new("/nonexistent-fuzz-base"), &|n| {
        Some(format!("value-of-{n}"))
    });
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, String),
    DuplicateLine(prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        prop::sample::select(YAML_BITS).prop_map(str::to_string),
        "\\PC{0,12}",
        "[ -~]{0,12}",
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), text).prop_map(|(i, s)| Edit::Insert(i, s)),
        any::<prop::sample::Index>().prop_map(Edit::DuplicateLine),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn mutate(base: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for e in edits {
        match e {
            Edit::Delete(i, n) if !chars.is_empty() => {
                let at = i.index(chars.len());
                let end = (at + n).min(chars.len());
                chars.drain(at..end);
            }
            Edit::Insert(i, s) => {
                let at = i.index(chars.len() + 1);
                chars.splice(at..at, s.chars());
            }
            Edit::DuplicateLine(i) | Edit::SwapLines(i, _) => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let a = i.index(lines.len());
                match e {
                    Edit::SwapLines(_, j) => {
                        let b = j.index(lines.len());
                        lines.swap(a, b);
                    }
                    _ => lines.insert(a, lines[a]),
                }
                chars = lines.join("\n").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[test]
fn fuzz_config_arbitrary_text() {
    fuzz(
        "config::load_str(arbitrary)",
        prop_oneof![
            "\\PC{0,400}",
            any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned())
        ],
        |text| {
            load(&text);
            Ok(())
        },
    );
}

#[test]
fn fuzz_config_mutated_valid_yaml() {
    // The base is valid, so mutations explore the validator, not just the parser.
    assert!(sesame::config::load_str(VALID_YAML, Path::new("/x"), &|_| Some("s".into())).is_ok());
    fuzz(
        "config::load_str(mutated)",
        prop::collection::vec(edit(), 1..6),
        |edits| {
            load(&mutate(VALID_YAML, &edits));
            Ok(())
        },
    );
}

// ---- oauth::Params::parse ----

#[test]
fn fuzz_params_arbitrary_bytes() {
    fuzz("Params::parse(arbitrary)", any::<Vec<u8>>(), |bytes| {
        let _ = Params::parse(&bytes);
        Ok(())
    });
}

#[test]
fn fuzz_params_round_trip_and_duplicates() {
    let pairs = prop::collection::vec(("[a-z_]{1,12}", "\\PC{0,40}"), 0..20);
    fuzz(
        "Params::parse(pairs)",
        (pairs, any::<bool>()),
        |(pairs, dup)| {
            let mut pairs = pairs;
            if dup && !pairs.is_empty() {
                pairs.push(pairs[0].clone());
            }
            let encoded = serde_urlencoded::to_string(&pairs).unwrap();
            let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            let unique = names.windows(2).all(|w| w[0] != w[1]);
            match Params::parse(encoded.as_bytes()) {
                Ok(p) => {
                    prop_assert!(unique, "duplicates accepted: {encoded}");
                    for (k, v) in &pairs {
                        prop_assert_eq!(p.get(k), Some(v.as_str()).filter(|v| !v.is_empty()));
                    }
                }
                Err(e) => {
                    prop_assert_eq!(e.code.as_str(), "invalid_request");
                    prop_assert!(!unique, "rejected a valid request {}: {}", encoded, e);
                }
            }
            Ok(())
        },
    );
}

// ---- http::request::parse_basic ----

#[test]
fn fuzz_basic_header_arbitrary() {
    let header = prop_oneof![
        "\\PC{0,200}",
        "[A-Za-z0-9+/=]{0,80}".prop_map(|b| format!("Basic {b}")),
        any::<Vec<u8>>().prop_map(|b| format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(b)
        )),
    ];
    fuzz("parse_basic(arbitrary)", header, |h| {
        if let Ok(Some((id, _))) = sesame::http::request::parse_basic(&h) {
            prop_assert!(!id.is_empty());
        }
        Ok(())
    });
}

#[test]
fn fuzz_basic_header_round_trip() {
    fuzz(
        "parse_basic(round trip)",
        ("\\PC{1,40}", "\\PC{0,40}"),
        |(id, secret)| {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    enc(&id),
                    enc(&secret)
                ))
            );
            let parsed = sesame::http::request::parse_basic(&value);
            prop_assert_eq!(parsed.ok().flatten(), Some((id, secret)));
            Ok(())
        },
    );
}

// ---- jose::verify_jwt ----

fn keysets() -> &'static Vec<(Keyset, String)> {
    static K: OnceLock<Vec<(Keyset, String)>> = OnceLock::new();
    K.get_or_init(|| {
        [Alg::ES256, Alg::EdDSA, Alg::RS256]
            .into_iter()
            .map(|alg| {
                let key = SigningKey::generate(alg).unwrap();
                let claims = serde_json::json!({
                    "iss": "https://id.example.com", "sub": "alice", "aud": "web",
                    "exp": 2_000_000_000i64, "nonce": "n-1"
                });
                let token = key.sign_jwt("JWT", &claims).unwrap();
                (Keyset::single(key), token)
            })
            .collect()
    })
}

#[test]
fn fuzz_jwt_arbitrary() {
    let b64 = "[A-Za-z0-9_-]{0,60}";
    let token = prop_oneof![
        "\\PC{0,300}",
        (b64, b64, b64).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        (any::<Vec<u8>>(), any::<Vec<u8>>()).prop_map(|(h, p)| {
            let e = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            format!("{}.{}.{}", e(&h), e(&p), e(b"sig"))
        }),
    ];
    fuzz("verify_jwt(arbitrary)", token, |t| {
        for (keys, _) in keysets() {
            prop_assert!(verify_jwt(&t, keys, 0).is_err(), "accepted {t}");
        }
        Ok(())
    });
}

#[test]
fn fuzz_jwt_mutated() {
    let edits = prop::collection::vec(edit(), 1..4);
    fuzz(
        "verify_jwt(mutated)",
        (0usize..3, edits),
        |(which, edits)| {
            let (keys, token) = &keysets()[which];
            prop_assert!(verify_jwt(token, keys, 0).is_ok());
            let mutated = mutate(token, &edits);
            if verify_jwt(&mutated, keys, 0).is_ok() {
                prop_assert_eq!(&mutated, token, "a changed token verified");
            }
            Ok(())
        },
    );
}

// ---- oauth::pkce ----

#[test]
fn fuzz_pkce() {
    let verifier = "[A-Za-z0-9._~-]{43,128}";
    fuzz(
        "pkce",
        (
            verifier,
            verifier,
            "\\PC{0,150}",
            "\\PC{0,150}",
            any::<bool>(),
        ),
        |(a, b, x, y, required)| {
            prop_assert!(pkce::verify(&pkce::s256(&a), &a));
            prop_assert_eq!(pkce::verify(&pkce::s256(&a), &b), a == b);
            // Arbitrary input never panics and never verifies by accident.
            prop_assert!(!pkce::verify(&x, &y) || pkce::s256(&y) == x);
            for method in [None, Some("S256"), Some("plain"), Some(y.as_str())] {
                for challenge in [None, Some(x.as_str()), Some(pkce::s256(&a)).as_deref()] {
                    if let Ok(Some(c)) = pkce::validate_challenge(challenge, method, required) {
                        prop_assert_eq!(c.len(), 43);
                        prop_assert_eq!(method, Some("S256"));
                    }
                }
            }
            Ok(())
        },
    );
}

// ---- regressions: inputs that once broke something, kept forever ----

/// A lifetime longer than an i64 of seconds (found by review, not yet by the
/// fuzzer): `now + lifetime` overflowed. Now refused by validation.
#[test]
fn regression_lifetime_beyond_i64_seconds() {
    let yaml = VALID_YAML.replace("access_token: 1h", "access_token: 400000000000y");
    let errors =
        sesame::config::load_str(&yaml, Path::new("/x"), &|_| Some("s".into())).unwrap_err();
    assert!(errors.to_string().contains("at most 100 years"), "{errors}");
}

#[test]
fn regression_yaml_alias_bomb_and_deep_nesting() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = i - 1
        ));
    }
    bomb.push_str("tenants: *a11\n");
    let started = Instant::now();
    load(&bomb);
    assert!(started.elapsed() < Duration::from_secs(10));
    // Found by fuzz_config_arbitrary_text: deep flow nesting made the YAML
    // scanner quadratic (16,000 `[` took 8 s); now refused before parsing.
    let started = Instant::now();
    let deep = format!("tenants: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let errors = sesame::config::load_str(&deep, Path::new("/x"), &|_| None).unwrap_err();
    assert!(
        errors.to_string().contains("nested deeper than 128"),
        "{errors}"
    );
    load(&format!("a: {}", "{a: ".repeat(50_000)));
    load(&format!("tenants:\n{}", "- ".repeat(50_000)));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn regression_jwt_alg_none_and_swapped_segments() {
    let (keys, token) = &keysets()[0];
    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .unwrap(),
    )
    .unwrap();
    let none = serde_json::json!({"alg": "none", "kid": header["kid"]});
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(none.to_string());
    assert!(verify_jwt(&format!("{none}.{}.", parts[1]), keys, 0).is_err());
    assert!(verify_jwt(&format!("{none}.{}.{}", parts[1], parts[2]), keys, 0).is_err());
    assert!(verify_jwt(&format!("{}.{}.{}", parts[1], parts[0], parts[2]), keys, 0).is_err());
    assert!(verify_jwt(&format!("{token}."), keys, 0).is_err());
}

#[test]
fn regression_params_edge_cases() {
    for raw in [
        &b"%"[..],
        b"=",
        b"&&&",
        b"a",
        b"a=%ZZ",
        b"%FF%FE=1",
        b"a=1&a",
        b"+=+",
    ] {
        let _ = Params::parse(raw);
    }
    assert!(
        Params::parse(b"a&a").is_err(),
        "a bare name twice is a duplicate"
    );
}
