//! Running plugin hooks where they can't starve other requests: on the hook
//! pool (`Services::hooks`), off the async workers, each call under its
//! script's wall-clock limit (`plugin_time_limit`). A request with no script
//! for a hook never leaves its worker.

use super::Ctx;
use crate::plugin::{Claims, Consent, Hook, HookContext, Observer, PluginError, Policy};

/// The merged claims of `hook` for this request.
pub async fn claims(
    ctx: &Ctx<'_>,
    hook: Hook,
    hooks: &HookContext<'_>,
) -> Result<Claims, PluginError> {
    match hooks.claims_call(hook) {
        None => Ok(Claims::default()),
        Some(call) => on_pool(ctx, hook, move |o| call.run_observed(o)).await,
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
        Some(call) => on_pool(ctx, Hook::ScopePolicy, move |o| call.run_observed(o)).await,
    }
}

/// Whether to ask for consent after the request's consent policies
/// (`ctx.remembered` is what the user consented to before).
pub async fn consent(
    ctx: &Ctx<'_>,
    hooks: &HookContext<'_>,
    start: Consent,
    remembered: &[String],
) -> Result<Consent, PluginError> {
    match hooks.consent_call(start, remembered) {
        None => Ok(start),
        Some(call) => on_pool(ctx, Hook::ConsentPolicy, move |o| call.run_observed(o)).await,
    }
}

/// Run one hook call on the hook pool, each script's call counted in the metrics.
async fn on_pool<T: Send + 'static>(
    ctx: &Ctx<'_>,
    hook: Hook,
    call: impl FnOnce(&dyn Observer) -> Result<T, PluginError> + Send + 'static,
) -> Result<T, PluginError> {
    let metrics = ctx.services.metrics.plugins();
    let call = move || call(&metrics);
    ctx.services.hooks.run(call).await.unwrap_or_else(|| {
        Err(PluginError::Failed {
            script: "(hook pool)".into(),
            hook: hook.name(),
            line: None,
            message: "the hook pool is gone".into(),
        })
    })
}
