//! Rhai plugins: drop-in claim scripts, scope and consent policies.
//!
//! `engine` builds the sandboxed engine (one per configuration generation);
//! `hooks` compiles scripts, builds the `ctx` they see and offers the typed
//! `run_*` functions the protocol core calls. Nothing outside this module
//! names a rhai type.

pub mod engine;
pub mod hooks;

pub use hooks::{
    run_claims, run_scope_policy, Claims, ClaimsCall, Consent, ConsentCall, CtxPart, Hook,
    HookContext, Observer, PluginError, Policy, PolicyCall, Script, Scripts, Shortened,
    DEFAULT_TIME_LIMIT, REGISTERED_CLAIMS,
};
