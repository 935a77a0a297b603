//! Running plugin hooks where they can't starve other requests: on the hook
//! pool (`Services::hooks`), off the async workers, each call under its
//! script's wall-clock limit (`plugin_time_limit`). A request with no script
//! for a hook never leaves its worker.

use super::Ctx;
use crate::plugin::{Claims, Hook, HookContext, PluginError, Policy};

/// Stack of each hook thread: deep expressions recurse in the engine.
pub const STACK_SIZE: usize = 8 * 1024 * 1024;

/// The merged claims of `hook` for this request.
pub async fn claims(
    ctx: &Ctx<'_>,
    hook: Hook,
    hooks: &HookContext<'_>,
) -> Result<Claims, PluginError> {
    match hooks.claims_call(hook) {
        None => Ok(Claims::default()),
        Some(call) => ctx
            .services
            .hooks
            .run(move || call.run())
            .await
            .unwrap_or_else(|| Err(pool_gone(hook))),
    }
}

/// The decision after the request's scope policies (see `plugin::run_scope_policy`).
pub async fn policy(
    ctx: &Ctx<'_>,
    hooks: &HookContext<'_>,
    start: Policy,
    allowed: impl Fn(&str) -> bool,
) -> Result<Policy, PluginError> {
    match hooks.policy_call(start.clone(), allowed) {
        None => Ok(start),
        Some(call) => ctx
            .services
            .hooks
            .run(move || call.run())
            .await
            .unwrap_or_else(|| Err(pool_gone(Hook::ScopePolicy))),
    }
}

fn pool_gone(hook: Hook) -> PluginError {
    PluginError::Failed {
        script: "(hook pool)".into(),
        hook: hook.name(),
        line: None,
        message: "the hook pool is gone".into(),
    }
}
