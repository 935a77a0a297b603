//! Micro benchmark: one plugin hook call on the token hot path, with the
//! example scripts of `plugins/` as wired in `examples/plugins.yaml`.
//!
//!     cargo bench --bench hooks
//!
//! Each figure is the mean of N calls after a warm-up, including building
//! `ctx` and converting the result back to JSON (what a request pays).
//! Target: under 20 µs per hook call.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sesame::config::{self, GrantType};
use sesame::jose::{Alg, Keyset, SigningKey};
use sesame::plugin::{run_claims, run_scope_policy, Hook, HookContext, Policy, Script, Scripts};
use sesame::tenant::Tenant;

const N: u32 = 20_000;

fn time(label: &str, hook_calls: u32, mut f: impl FnMut()) {
    for _ in 0..N / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..N {
        f();
    }
    let per_call = started.elapsed().as_nanos() as f64 / f64::from(N);
    println!(
        "{label:<52} {:>9.0} ns/request  {:>9.0} ns/hook call",
        per_call,
        per_call / f64::from(hook_calls.max(1))
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins.yaml");
    let config = config::load(&path).map_err(|e| e.to_string())?;
    let scripts = Scripts::compile(&config).map_err(|e| format!("{e:?}"))?;
    let keys = Keyset::new(vec![SigningKey::generate(Alg::ES256)?])?;
    let tenant = Tenant::new(&config.tenants[0], keys, &scripts, None);
    let web = tenant.client("web").ok_or("no client web")?;
    let alice = tenant.user("alice").ok_or("no user alice")?;
    let bob = tenant.user("bob").ok_or("no user bob")?;

    let requested: Vec<String> = [
        "openid",
        "profile",
        "offline_access",
        "api:read",
        "api:write",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let ctx = |user| HookContext {
        tenant: &tenant,
        client: web,
        user: Some(user),
        requested: &requested,
        granted: &requested,
        grant_type: Some(GrantType::AuthorizationCode.as_str()),
        ip: Some("127.0.0.1".parse().ok()).flatten(),
        user_agent: Some("bench/1"),
        now: 1_700_000_000,
    };
    let alice_ctx = ctx(alice);
    let bob_ctx = ctx(bob);

    println!("{} calls each (after {} warm-up calls)", N, N / 10);
    time("id_token_claims (claims/groups.rhai)", 1, || {
        black_box(run_claims(Hook::IdTokenClaims, black_box(&alice_ctx)).ok());
    });
    time("access_token_claims (claims/tenant_tag.rhai)", 1, || {
        black_box(run_claims(Hook::AccessTokenClaims, black_box(&alice_ctx)).ok());
    });
    let start = Policy {
        granted: requested.clone(),
        refresh_token: true,
        shortened: Default::default(),
    };
    time(
        "scope_policy x2 (scope_by_group + offline_access), bob",
        2,
        || {
            black_box(
                run_scope_policy(black_box(&bob_ctx), start.clone(), |s| web.allows_scope(s)).ok(),
            );
        },
    );
    // The fixed cost: building ctx and calling a hook that does nothing.
    let mut empty = (**web).clone();
    empty.plugins = vec![Arc::new(Script::compile(
        "empty.rhai",
        "fn userinfo_claims(ctx) { () }",
        sesame::plugin::DEFAULT_TIME_LIMIT,
    )?)];
    let empty_ctx = HookContext {
        client: &empty,
        ..ctx(alice)
    };
    time(
        "userinfo_claims (empty hook: ctx + call overhead)",
        1,
        || {
            black_box(run_claims(Hook::UserinfoClaims, black_box(&empty_ctx)).ok());
        },
    );
    time("userinfo_claims (no script has it: fast path)", 0, || {
        black_box(run_claims(Hook::UserinfoClaims, black_box(&alice_ctx)).ok());
    });
    Ok(())
}
