//! Micro benchmarks of the token hot path, std only:
//!
//!     cargo bench --bench micro
//!
//! ID token signing per algorithm, client authentication (clear secret, and a
//! hashed secret once it is cached; the lockout read included, which the node
//! trusts for a second), and code insertion + consumption on SQLite.
//! Under `cargo test --bench micro` each runs a handful of iterations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sesame::http::pages::{render, Facts};
use sesame::jose::{Alg, SigningKey};
use sesame::oauth::client_auth::authenticate;
use sesame::oauth::outcome::{LoginView, Notice, Page};
use sesame::oauth::{Credentials, Ctx, RequestFacts, Services};
use sesame::store::{AccessTokenRow, CodeConsumption, CodeRow, Issued, Store, TokenHash};
use sesame::tenant::Tenant;

fn quick() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Run `f` repeatedly for about `budget` (a few times under test); print ns/op.
fn bench(name: &str, mut f: impl FnMut()) {
    let budget = if quick() {
        Duration::from_millis(1)
    } else {
        Duration::from_secs(2)
    };
    f(); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        f();
        n += 1;
    }
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{name:<44} {:>12.1} µs/op {:>10.0} op/s",
        per / 1000.0,
        1e9 / per
    );
}

fn tenant() -> Arc<Tenant> {
    let yaml = r#"
tenants:
  - id: bench
    issuer: http://127.0.0.1:8080/bench
    clients:
      - id: plain
        secret: plain-secret
        grant_types: [client_credentials]
        scopes: []
      - id: hashed
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$FosvPB+gE7WReK8GphJ3/w$SN1ZQgU8nkTIu1qNZL/Yt1z/bu1VpciYJan2vzQkE3g"
        grant_types: [client_credentials]
        scopes: []
"#;
    let cfg = sesame::config::load_str(yaml, std::path::Path::new("."), &|_| None).unwrap();
    let key = SigningKey::generate(Alg::RS256).unwrap();
    let scripts = sesame::plugin::Scripts::compile(&cfg).unwrap();
    Arc::new(Tenant::new(
        &cfg.tenants[0],
        sesame::jose::Keyset::new(vec![key]).unwrap(),
        &scripts,
        None,
    ))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:8080/bench", "sub": "3f6c0a", "aud": "web", "azp": "web",
        "iat": 1_700_000_000, "exp": 1_700_003_600, "auth_time": 1_700_000_000,
        "nonce": "n-0123456789", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "name": "Alice Martin", "email": "alice@example.com", "email_verified": true
    });
    for alg in Alg::ALL {
        let key = SigningKey::generate(alg).unwrap();
        bench(&format!("id token signing {alg}"), || {
            std::hint::black_box(key.sign_jwt("JWT", &claims).unwrap());
        });
    }

    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &format!("sqlite://{}", dir.path().join("bench.db").display()),
        4,
        Duration::from_secs(5),
        dir.path(),
    )
    .unwrap();
    store.migrate().unwrap();

    let t = tenant();
    let services = Services::new();
    let ctx = Ctx {
        tenant: &t,
        store: &store,
        services: &services,
        now: sesame::now(),
        request: RequestFacts::default(),
    };
    let basic = |id: &str, secret: &str| Credentials::Basic {
        id: id.to_string(),
        secret: secret.to_string(),
    };
    bench("client auth, clear secret", || {
        rt.block_on(authenticate(&ctx, basic("plain", "plain-secret")))
            .unwrap();
    });
    bench("client auth, argon2 secret (cached)", || {
        rt.block_on(authenticate(&ctx, basic("hashed", "demo-secret")))
            .unwrap();
    });
    let mut i = 0u64;
    bench(
        "code insert, then find + consume with its access token (SQLite)",
        || {
            i += 1;
            let code = format!("code-{i}");
            let row = CodeRow {
                tenant_id: "bench".into(),
                code_hash: TokenHash::of(&code),
                grant_id: format!("g{i}"),
                client_id: "web".into(),
                user_sub: "3f6c0a".into(),
                redirect_uri: "http://bench.test/cb".into(),
                scope: "openid".into(),
                nonce: None,
                code_challenge: None,
                code_challenge_method: None,
                auth_time: 1,
                refresh_token: false,
                created_at: 1,
                expires_at: i64::MAX / 2,
                consumed_at: None,
                redirect_uri_sent: true,
                generation: String::new(),
                resource: None,
                dpop_jkt: None,
                sid: None,
            };
            rt.block_on(async {
                store.insert_code(row).await.unwrap();
                // As the token endpoint does: read the code, then spend it and
                // write the access token in one transaction.
                let hash = TokenHash::of(&code);
                let row = store.find_code("bench", hash).await.unwrap().unwrap();
                let access = AccessTokenRow {
                    tenant_id: "bench".into(),
                    token_hash: TokenHash::of(&format!("access-{i}")),
                    grant_id: row.grant_id,
                    client_id: row.client_id,
                    user_sub: Some(row.user_sub),
                    scope: row.scope,
                    jwt: false,
                    created_at: 2,
                    expires_at: i64::MAX / 2,
                    revoked_at: None,
                    generation: String::new(),
                    jkt: None,
                    audience: None,
                };
                let issued = Issued {
                    access_token: Some(access),
                    refresh_token: None,
                };
                let c = store.consume_code("bench", hash, 2, issued).await.unwrap();
                assert!(matches!(c, CodeConsumption::Consumed));
            });
        },
    );

    for (name, accept_language) in [("en", "en-GB,en;q=0.9"), ("fr", "fr-FR,fr;q=0.9,en;q=0.5")] {
        let page = Page::Login(LoginView {
            rid: "6F0ecjB-TG7vUIb1N-NjWylaN1efWO3gMJzw0MVRiCE".into(),
            csrf: "ndjtnTtlFjqgLBowcTgiUYIGdRS3M3mRkigb9E2aubE".into(),
            client_id: "plain".into(),
            client_name: "Chemin de l'eau <Photos>".into(),
            username: "alice@example.com".into(),
            notice: Some(Notice::BadCredentials),
            ui_locales: None,
        });
        let facts = Facts {
            ui_locales: None,
            accept_language: Some(accept_language),
            request_id: "d692c1d790b974d1",
            client_id: Some("plain"),
        };
        bench(
            &format!("sign-in page render ({name}, failed sign-in)"),
            || {
                std::hint::black_box(render(&t, &page, &facts));
            },
        );
    }
}
