//! Compiled scripts, the `ctx` they see, and the typed `run_*` functions the
//! protocol core calls.
//!
//! A script implements a hook by defining a one-parameter function of that
//! name. Hooks run in order: the tenant's scripts as listed, then the
//! client's. Claims hooks return maps merged in that order (later keys win);
//! registered claims are never taken from a script. `scope_policy` hooks
//! each see the decision the previous one left.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, ImmutableString, Module, Scope, AST};
use serde_json::{Map, Value};

use super::engine::{self, Deadline, Denial, Running, TimeLimit};
use crate::config::{Config, ConfigError};
use crate::tenant::{Client, Tenant, User};

/// Claims a script can never set or remove (the SPEC's registered claims).
pub use crate::config::REGISTERED_CLAIMS;

/// Wall-clock limit of one hook call unless the config says otherwise.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_millis(100);

/// Deepest nesting of arrays and maps a script may return.
const MAX_VALUE_DEPTH: usize = 32;

/// The hooks a script may implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    IdTokenClaims,
    AccessTokenClaims,
    UserinfoClaims,
    ScopePolicy,
    ConsentPolicy,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::IdTokenClaims,
        Hook::AccessTokenClaims,
        Hook::UserinfoClaims,
        Hook::ScopePolicy,
        Hook::ConsentPolicy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hook::IdTokenClaims => "id_token_claims",
            Hook::AccessTokenClaims => "access_token_claims",
            Hook::UserinfoClaims => "userinfo_claims",
            Hook::ScopePolicy => "scope_policy",
            Hook::ConsentPolicy => "consent_policy",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Told of every hook call a script makes: the script, the hook, how long
/// it took, whether it failed (a denial is not a failure). The metrics
/// implement it; calls made without one report nowhere.
pub trait Observer: Send + Sync {
    fn called(&self, script: &str, hook: Hook, took: Duration, failed: bool);
}

/// Reports nowhere.
struct Unobserved;

impl Observer for Unobserved {
    fn called(&self, _: &str, _: Hook, _: Duration, _: bool) {}
}

/// Why a hook did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// A script called `deny(reason)` (only a scope policy may).
    #[error("{script}: {hook}: denied: {reason}")]
    Denied {
        script: String,
        hook: &'static str,
        reason: String,
    },
    /// The script failed: an error it threw, a limit it hit, or a value of the wrong shape.
    #[error("{script}{}: {hook}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Failed {
        script: String,
        hook: &'static str,
        line: Option<usize>,
        message: String,
    },
}

impl PluginError {
    /// Log a failure with its script, line and message (denials are not errors).
    pub fn log(&self) {
        match self {
            PluginError::Denied {
                script,
                hook,
                reason,
            } if *hook == Hook::ScopePolicy.name() => {
                tracing::info!(event = "plugin.denied", script = %script, reason = %reason, "scope policy denied the request")
            }
            PluginError::Denied {
                script,
                hook,
                reason,
            } => tracing::error!(
                event = "plugin.failed",
                script = %script,
                hook = %hook,
                reason = %reason,
                "deny() called outside scope_policy: only a scope policy can deny a request; \
                 answered server_error (throw an error, or move the check into scope_policy)"
            ),
            PluginError::Failed {
                script,
                hook,
                line,
                message,
            } => tracing::error!(
                event = "plugin.failed",
                script = %script,
                hook = %hook,
                line = line.map(|l| l as u64),
                error = %message,
                "plugin script failed"
            ),
        }
    }
}

/// One compiled script.
pub struct Script {
    /// The path as written in the configuration (`claims/groups.rhai`).
    name: String,
    ast: AST,
    engine: Arc<Engine>,
    hooks: u8,
    /// The names its top-level statements define (`global::NAME`).
    settings: Vec<String>,
    /// Wall-clock limit of one call.
    time_limit: Duration,
    /// Registered claims this script tried to set, already logged once.
    warned: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("name", &self.name)
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl Script {
    /// Compile `source`, named `name` in logs and errors, with calls stopped
    /// after `time_limit`. Top-level statements run once, now: what they
    /// define (`const` or `let`) every hook reads as `global::NAME`. The
    /// error names the line and column of a syntax error, the limit a
    /// script went past, the hook defined wrongly, or the top-level
    /// statement that failed.
    pub fn compile(name: &str, source: &str, time_limit: Duration) -> Result<Script, String> {
        engine::on_script_stack(|| Script::compile_here(name, source, time_limit))
    }

    fn compile_here(name: &str, source: &str, time_limit: Duration) -> Result<Script, String> {
        let mut engine = engine::sandboxed();
        let mut ast = engine
            .compile(source)
            .map_err(|e| engine::parse_error(&e))?;
        ast.set_source(name);
        let mut hooks = 0u8;
        let mut wrong = Vec::new();
        for hook in Hook::ALL {
            let arities: Vec<usize> = ast
                .iter_functions()
                .filter(|f| f.name == hook.name())
                .map(|f| f.params.len())
                .collect();
            if arities.contains(&1) {
                hooks |= hook.bit();
            } else if let Some(n) = arities.first() {
                wrong.push(format!(
                    "fn {}: a hook takes exactly one parameter (ctx), this one takes {n}",
                    hook.name()
                ));
            }
        }
        if !wrong.is_empty() {
            return Err(wrong.join("; "));
        }
        if hooks == 0 {
            return Err(format!(
                "defines no hook: expected one of {}",
                Hook::ALL
                    .iter()
                    .map(|h| format!("fn {}(ctx)", h.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let module = top_level(&engine, name, &ast, time_limit)?;
        let settings: Vec<String> = module.iter_var().map(|(n, _)| n.to_string()).collect();
        if !settings.is_empty() {
            engine.register_static_module("global", module.into());
        }
        // Hooks are called with no statements to run first.
        ast.clear_statements();
        Ok(Script {
            name: name.to_string(),
            ast,
            engine: Arc::new(engine),
            hooks,
            settings,
            time_limit,
            warned: Mutex::new(HashSet::new()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn has(&self, hook: Hook) -> bool {
        self.hooks & hook.bit() != 0
    }

    /// Call `hook` with `ctx`. Never panics: a panic inside the engine is a failure.
    #[cfg(test)]
    fn call(&self, hook: Hook, ctx: Dynamic) -> Result<Dynamic, PluginError> {
        self.call_observed(hook, ctx, &Unobserved)
    }

    /// [`Script::call`], reported to `observer`.
    fn call_observed(
        &self,
        hook: Hook,
        ctx: Dynamic,
        observer: &dyn Observer,
    ) -> Result<Dynamic, PluginError> {
        let started = std::time::Instant::now();
        let result = self.call_here(hook, ctx);
        let failed = matches!(result, Err(PluginError::Failed { .. }));
        observer.called(&self.name, hook, started.elapsed(), failed);
        result
    }

    fn call_here(&self, hook: Hook, ctx: Dynamic) -> Result<Dynamic, PluginError> {
        let _running = Running::enter(&self.name);
        let _deadline = Deadline::start(self.time_limit);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut scope = Scope::new();
            let options = CallFnOptions::new().eval_ast(false).rewind_scope(false);
            self.engine.call_fn_with_options::<Dynamic>(
                options,
                &mut scope,
                &self.ast,
                hook.name(),
                (ctx,),
            )
        }));
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failure(hook, *e)),
            Err(_) => Err(self.failed(hook, None, "the script engine panicked".into())),
        }
    }

    fn failure(&self, hook: Hook, e: EvalAltResult) -> PluginError {
        // The innermost error is where the script went wrong.
        let outer_line = e.position().line();
        let mut inner = e;
        while let EvalAltResult::ErrorInFunctionCall(_, _, next, _)
        | EvalAltResult::ErrorInModule(_, next, _) = inner
        {
            inner = *next;
        }
        if let EvalAltResult::ErrorTerminated(v, pos) = &inner {
            if v.is::<TimeLimit>() {
                let message = format!(
                    "stopped after its time limit of {} ms (plugin_time_limit)",
                    self.time_limit.as_millis()
                );
                return self.failed(hook, pos.line().or(outer_line), message);
            }
        }
        if let EvalAltResult::ErrorRuntime(v, _) = &inner {
            if let Some(d) = v.clone().try_cast::<Denial>() {
                return PluginError::Denied {
                    script: self.name.clone(),
                    hook: hook.name(),
                    reason: d.0,
                };
            }
        }
        let line = inner.take_position().line().or(outer_line);
        let message = match &inner {
            EvalAltResult::ErrorVariableNotFound(var, _) if self.settings.contains(var) => {
                format!("{inner}: a top-level setting is read as `global::{var}` inside a function")
            }
            _ => engine::limit_hit(&inner).unwrap_or_else(|| inner.to_string()),
        };
        self.failed(hook, line, message)
    }

    fn failed(&self, hook: Hook, line: Option<usize>, message: String) -> PluginError {
        PluginError::Failed {
            script: self.name.clone(),
            hook: hook.name(),
            line,
            message,
        }
    }

    /// Log once per script and claim that a registered claim was ignored.
    fn warn_registered(&self, hook: Hook, claim: &str) {
        let first = self
            .warned
            .lock()
            .map(|mut w| w.insert(claim.to_string()))
            .unwrap_or(false);
        if first {
            tracing::warn!(
                script = %self.name,
                hook = hook.name(),
                claim,
                "a script may not set a registered claim; ignored"
            );
        }
    }
}

/// Run a script's top-level statements once, under the limits of a call:
/// the variables and constants they leave are its `global::` settings
/// (shared, read-only: a hook reads them without copying).
fn top_level(engine: &Engine, name: &str, ast: &AST, limit: Duration) -> Result<Module, String> {
    let _running = Running::enter(name);
    let _deadline = Deadline::start(limit);
    let mut scope = Scope::new();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.run_ast_with_scope(&mut scope, ast)
    }));
    let explain = |line: Option<usize>, what: String| {
        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        format!(
            "{at}top-level code failed: {what}. Top-level statements run once, when the \
             configuration loads, with no request: they may define settings (`const NAME = ...;`, \
             read in hooks as `global::NAME`); `ctx` exists only inside hook functions"
        )
    };
    match ran {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let outer_line = e.position().line();
            let mut inner = *e;
            while let EvalAltResult::ErrorInFunctionCall(_, _, next, _) = inner {
                inner = *next;
            }
            let line = inner.take_position().line().or(outer_line);
            let what = match &inner {
                EvalAltResult::ErrorTerminated(v, _) if v.is::<TimeLimit>() => format!(
                    "stopped after its time limit of {} ms (plugin_time_limit)",
                    limit.as_millis()
                ),
                EvalAltResult::ErrorRuntime(v, _) if v.is::<Denial>() => {
                    "deny() is for scope_policy, not top-level code".to_string()
                }
                _ => engine::limit_hit(&inner).unwrap_or_else(|| inner.to_string()),
            };
            return Err(explain(line, what));
        }
        Err(_) => return Err(explain(None, "the script engine panicked".into())),
    }
    let mut module = Module::new();
    for (var, _constant, value) in scope.iter_raw() {
        module.set_var(var, value.clone().into_shared());
    }
    module.build_index();
    Ok(module)
}

/// Every script of one configuration generation, compiled once, sharing one engine.
#[derive(Debug, Default)]
pub struct Scripts {
    by_path: HashMap<PathBuf, Arc<Script>>,
}

impl Scripts {
    /// Compile every script the configuration names (tenants' and clients'
    /// `plugins`), each file once. Every error names the YAML path that
    /// names the script, the file, and the line and column.
    pub fn compile(config: &Config) -> Result<Scripts, Vec<ConfigError>> {
        let mut by_path = HashMap::new();
        let mut failed: HashSet<PathBuf> = HashSet::new();
        let mut errors = Vec::new();
        let mut add = |yaml_path: String, p: &Path| {
            if by_path.contains_key(p) || failed.contains(p) {
                return;
            }
            let file = config.plugin_path(p);
            let name = p.display().to_string();
            let compiled = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
                .and_then(|text| {
                    Script::compile(&name, &text, config.plugin_time_limit)
                        .map_err(|e| format!("{}: {e}", file.display()))
                });
            match compiled {
                Ok(s) => {
                    by_path.insert(p.to_path_buf(), Arc::new(s));
                }
                Err(message) => {
                    failed.insert(p.to_path_buf());
                    errors.push(ConfigError::new(yaml_path, message));
                }
            }
        };
        for (ti, t) in config.tenants.iter().enumerate() {
            for (pi, p) in t.plugins.iter().enumerate() {
                add(format!("tenants[{ti}].plugins[{pi}]"), p);
            }
            for (ci, c) in t.clients.iter().enumerate() {
                for (pi, p) in c.plugins.iter().enumerate() {
                    add(format!("tenants[{ti}].clients[{ci}].plugins[{pi}]"), p);
                }
            }
        }
        if errors.is_empty() {
            Ok(Scripts { by_path })
        } else {
            Err(errors)
        }
    }

    /// The compiled scripts for `paths`, in order.
    pub fn resolve(&self, paths: &[PathBuf]) -> Vec<Arc<Script>> {
        paths
            .iter()
            .filter_map(|p| self.by_path.get(p).cloned())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

/// A piece of `ctx` (`ctx.tenant`, `ctx.client`, `ctx.user`) converted once
/// per configuration generation, so a hook call only clones it.
#[derive(Clone, Default)]
pub struct CtxPart(Dynamic);

impl std::fmt::Debug for CtxPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CtxPart")
    }
}

impl CtxPart {
    /// `ctx.tenant`: `#{ id, issuer }`.
    pub fn tenant(id: &str, issuer: &str) -> CtxPart {
        let mut m = rhai::Map::new();
        m.insert("id".into(), str_dyn(id));
        m.insert("issuer".into(), str_dyn(issuer));
        CtxPart(Dynamic::from_map(m))
    }

    /// `ctx.client`: `#{ id, name, metadata }`.
    pub fn client(id: &str, name: &str, metadata: &Map<String, Value>) -> CtxPart {
        let mut m = rhai::Map::new();
        m.insert("id".into(), str_dyn(id));
        m.insert("name".into(), str_dyn(name));
        m.insert("metadata".into(), object_to_dynamic(metadata));
        CtxPart(Dynamic::from_map(m))
    }

    /// `ctx.user`: `#{ sub, username, claims }`.
    pub fn user(sub: &str, username: &str, claims: &Map<String, Value>) -> CtxPart {
        let mut m = rhai::Map::new();
        m.insert("sub".into(), str_dyn(sub));
        m.insert("username".into(), str_dyn(username));
        m.insert("claims".into(), object_to_dynamic(claims));
        CtxPart(Dynamic::from_map(m))
    }

    /// The converted value, or `build()` when none was made ahead.
    fn get(&self, build: impl FnOnce() -> CtxPart) -> Dynamic {
        if self.0.is_unit() {
            build().0
        } else {
            self.0.clone()
        }
    }
}

/// What a hook is told about the request: becomes `ctx`.
pub struct HookContext<'a> {
    pub tenant: &'a Tenant,
    pub client: &'a Client,
    /// Absent for `client_credentials`.
    pub user: Option<&'a User>,
    /// The scopes asked for.
    pub requested: &'a [String],
    /// The scopes granted so far.
    pub granted: &'a [String],
    /// The grant being served; absent at userinfo and introspection.
    pub grant_type: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    pub now: i64,
}

impl HookContext<'_> {
    /// The scripts that run for this request, in order: the tenant's, then the client's.
    fn scripts(&self, hook: Hook) -> impl Iterator<Item = &Arc<Script>> {
        self.tenant
            .plugins
            .iter()
            .chain(self.client.plugins.iter())
            .filter(move |s| s.has(hook))
    }

    /// Whether any script of this request implements `hook`.
    pub fn wants(&self, hook: Hook) -> bool {
        self.scripts(hook).next().is_some()
    }

    /// `ctx` as the script sees it.
    fn to_map(&self) -> rhai::Map {
        let mut ctx = rhai::Map::new();
        let (t, c) = (self.tenant, self.client);
        let tenant = t.plugin_ctx.get(|| CtxPart::tenant(&t.id, &t.issuer));
        ctx.insert("tenant".into(), tenant);
        let client = c
            .plugin_ctx
            .get(|| CtxPart::client(&c.id, &c.name, &c.metadata));
        ctx.insert("client".into(), client);
        if let Some(u) = self.user {
            let user = u
                .plugin_ctx
                .get(|| CtxPart::user(&u.sub, &u.username, &u.claims));
            ctx.insert("user".into(), user);
        }
        ctx.insert("scopes".into(), strings_dyn(self.requested));
        ctx.insert("granted".into(), strings_dyn(self.granted));
        if let Some(g) = self.grant_type {
            ctx.insert("grant_type".into(), str_dyn(g));
        }
        let mut request = rhai::Map::new();
        if let Some(ip) = self.ip {
            request.insert("ip".into(), Dynamic::from(ip.to_string()));
        }
        if let Some(ua) = self.user_agent {
            request.insert("user_agent".into(), str_dyn(ua));
        }
        ctx.insert("request".into(), Dynamic::from_map(request));
        ctx.insert("now".into(), Dynamic::from_int(self.now));
        ctx
    }
}

/// Claims from scripts: set these, drop those (a script returned `()` for them).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Claims {
    pub set: Map<String, Value>,
    pub unset: Vec<String>,
}

impl Claims {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.unset.is_empty()
    }

    /// Merge into `claims`, leaving `protected` names alone (registered claims
    /// are never in a `Claims` to begin with).
    pub fn apply(self, claims: &mut Map<String, Value>, protected: &[&str]) {
        for name in self.unset {
            if !protected.contains(&name.as_str()) {
                claims.remove(&name);
            }
        }
        for (name, v) in self.set {
            if !protected.contains(&name.as_str()) {
                claims.insert(name, v);
            }
        }
    }
}

/// One claims hook of one request, owning all it needs: it can run on any
/// thread (the core runs it on its hook pool, off the async workers).
pub struct ClaimsCall {
    hook: Hook,
    scripts: Vec<Arc<Script>>,
    input: Dynamic,
}

impl HookContext<'_> {
    /// The call of `hook` for this request; `None` when no script implements it.
    pub fn claims_call(&self, hook: Hook) -> Option<ClaimsCall> {
        if !self.wants(hook) {
            return None;
        }
        Some(ClaimsCall {
            hook,
            scripts: self.scripts(hook).cloned().collect(),
            input: Dynamic::from_map(self.to_map()),
        })
    }

    /// The `scope_policy` call for this request starting from `decision`,
    /// keeping only the returned scopes that `allowed` (asked of each scope
    /// the tenant knows); `None` when no script implements it.
    pub fn policy_call(
        &self,
        decision: Policy,
        allowed: impl Fn(&str) -> bool,
    ) -> Option<PolicyCall> {
        let hook = Hook::ScopePolicy;
        if !self.wants(hook) {
            return None;
        }
        let allowed = self
            .tenant
            .scopes
            .keys()
            .filter(|s| allowed(s))
            .cloned()
            .collect();
        Some(PolicyCall {
            scripts: self.scripts(hook).cloned().collect(),
            input: self.to_map(),
            decision,
            allowed,
        })
    }
}

/// Run a claims hook (`id_token_claims`, `access_token_claims`,
/// `userinfo_claims`) of every script of the request, merging the maps.
pub fn run_claims(hook: Hook, ctx: &HookContext) -> Result<Claims, PluginError> {
    match ctx.claims_call(hook) {
        Some(call) => call.run(),
        None => Ok(Claims::default()),
    }
}

impl ClaimsCall {
    /// Run every script's hook in order, merging the maps.
    pub fn run(self) -> Result<Claims, PluginError> {
        self.run_observed(&Unobserved)
    }

    /// [`ClaimsCall::run`], each script's call reported to `observer`.
    pub fn run_observed(self, observer: &dyn Observer) -> Result<Claims, PluginError> {
        let ClaimsCall {
            hook,
            scripts,
            mut input,
        } = self;
        let mut out = Claims::default();
        let mut scripts = scripts.iter().peekable();
        while let Some(script) = scripts.next() {
            // The last script gets `ctx` itself, the others a copy.
            let arg = if scripts.peek().is_some() {
                input.clone()
            } else {
                std::mem::take(&mut input)
            };
            let result = script.call_observed(hook, arg, observer)?;
            if result.is_unit() {
                continue;
            }
            let map = result.as_map_ref().map_err(|t| {
                script.failed(
                    hook,
                    None,
                    format!("must return a map of claims (or ()), not {t}"),
                )
            })?;
            for (name, v) in map.iter() {
                let name = name.as_str();
                if REGISTERED_CLAIMS.contains(&name) {
                    script.warn_registered(hook, name);
                    continue;
                }
                let v = to_json(v, 0)
                    .map_err(|m| script.failed(hook, None, format!("claim `{name}`: {m}")))?;
                match v {
                    Some(v) => {
                        out.unset.retain(|n| n != name);
                        out.set.insert(name.to_string(), v);
                    }
                    None => {
                        out.set.remove(name);
                        if !out.unset.iter().any(|n| n == name) {
                            out.unset.push(name.to_string());
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A scope decision as policies pass it along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub granted: Vec<String>,
    pub refresh_token: bool,
    /// Lifetimes the policies asked to shorten.
    pub shortened: Shortened,
}

/// Token lifetimes a scope policy cut below the client's (`access_token_lifetime`,
/// `id_token_lifetime`, `refresh_token_lifetime`); a policy can shorten, never lengthen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shortened {
    pub access_token: Option<Duration>,
    pub id_token: Option<Duration>,
    pub refresh_token: Option<Duration>,
}

impl Shortened {
    /// The shortest of the two for each token.
    fn cut(&mut self, token: &str, d: Duration) {
        let slot = match token {
            "access_token_lifetime" => &mut self.access_token,
            "id_token_lifetime" => &mut self.id_token,
            _ => &mut self.refresh_token,
        };
        *slot = Some(slot.map_or(d, |s| s.min(d)));
    }
}

/// A lifetime as a script writes it: whole seconds, or a duration such as `"15m"`.
fn lifetime(v: &Dynamic) -> Result<Duration, String> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("must be a positive number of seconds, not {n}"));
    }
    if let Ok(s) = v.as_immutable_string_ref() {
        return crate::config::duration::parse(s.as_str())
            .ok()
            .filter(|d| d.as_secs() > 0)
            .ok_or_else(|| {
                format!(
                    "{:?} is not a duration such as \"15m\" or \"1h\"",
                    s.as_str()
                )
            });
    }
    Err(format!(
        "must be seconds or a duration such as \"15m\", not {}",
        v.type_name()
    ))
}

/// The `scope_policy` hooks of one request, owning all they need (see [`ClaimsCall`]).
pub struct PolicyCall {
    scripts: Vec<Arc<Script>>,
    input: rhai::Map,
    decision: Policy,
    allowed: HashSet<String>,
}

/// Run `scope_policy` of every script of the request. Each starts from the
/// decision the previous one left (`ctx.granted`, `ctx.refresh_token`); the
/// scopes a policy returns are kept only where `allowed` says so.
pub fn run_scope_policy(
    ctx: &HookContext,
    decision: Policy,
    allowed: impl Fn(&str) -> bool,
) -> Result<Policy, PluginError> {
    match ctx.policy_call(decision.clone(), allowed) {
        Some(call) => call.run(),
        None => Ok(decision),
    }
}

impl PolicyCall {
    /// Run every script's policy in order.
    pub fn run(self) -> Result<Policy, PluginError> {
        self.run_observed(&Unobserved)
    }

    /// [`PolicyCall::run`], each script's call reported to `observer`.
    pub fn run_observed(self, observer: &dyn Observer) -> Result<Policy, PluginError> {
        let hook = Hook::ScopePolicy;
        let PolicyCall {
            scripts,
            mut input,
            mut decision,
            allowed,
        } = self;
        for script in scripts.iter() {
            input.insert("granted".into(), strings_dyn(&decision.granted));
            input.insert(
                "refresh_token".into(),
                Dynamic::from_bool(decision.refresh_token),
            );
            let result = script.call_observed(hook, Dynamic::from_map(input.clone()), observer)?;
            if result.is_unit() {
                continue;
            }
            let shape =
                "must return #{ scopes: [...], refresh_token: bool, access_token_lifetime, \
                         id_token_lifetime, refresh_token_lifetime } (every key optional) or ()";
            let map = result
                .as_map_ref()
                .map_err(|t| script.failed(hook, None, format!("{shape}, not {t}")))?;
            for (key, v) in map.iter() {
                match key.as_str() {
                    "scopes" => {
                        let scopes = v.as_array_ref().map_err(|t| {
                            script.failed(hook, None, format!("scopes must be an array, not {t}"))
                        })?;
                        let mut granted: Vec<String> = Vec::with_capacity(scopes.len());
                        for s in scopes.iter() {
                            let s = s.as_immutable_string_ref().map_err(|t| {
                                script.failed(
                                    hook,
                                    None,
                                    format!("scopes must hold strings, not {t}"),
                                )
                            })?;
                            if allowed.contains(s.as_str())
                                && !granted.iter().any(|g| g == s.as_str())
                            {
                                granted.push(s.to_string());
                            }
                        }
                        decision.granted = granted;
                    }
                    "refresh_token" => {
                        decision.refresh_token = v.as_bool().map_err(|t| {
                            script.failed(
                                hook,
                                None,
                                format!("refresh_token must be a bool, not {t}"),
                            )
                        })?;
                    }
                    token @ ("access_token_lifetime"
                    | "id_token_lifetime"
                    | "refresh_token_lifetime") => {
                        let d = lifetime(v)
                            .map_err(|m| script.failed(hook, None, format!("{token} {m}")))?;
                        decision.shortened.cut(token, d);
                    }
                    other => {
                        return Err(script.failed(
                            hook,
                            None,
                            format!("unknown key `{other}`: {shape}"),
                        ))
                    }
                }
            }
        }
        Ok(decision)
    }
}

/// Whether the user is asked to consent, as `consent_policy` hooks decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consent {
    /// Never asked (first-party apps): nothing is remembered either.
    Skip,
    /// Asked every time, whatever was granted before.
    Require,
    /// Asked for scopes not granted before, then remembered (the default).
    Remember,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Skip => "skip",
            Consent::Require => "require",
            Consent::Remember => "remember",
        }
    }

    pub fn parse(s: &str) -> Option<Consent> {
        match s {
            "skip" => Some(Consent::Skip),
            "require" => Some(Consent::Require),
            "remember" => Some(Consent::Remember),
            _ => None,
        }
    }
}

/// The `consent_policy` hooks of one request (see [`ClaimsCall`]).
pub struct ConsentCall {
    scripts: Vec<Arc<Script>>,
    input: rhai::Map,
    consent: Consent,
}

impl HookContext<'_> {
    /// The `consent_policy` call starting from `consent`, telling scripts what
    /// the user `remembered` (consented to before); `None` when no script has it.
    pub fn consent_call(&self, consent: Consent, remembered: &[String]) -> Option<ConsentCall> {
        let hook = Hook::ConsentPolicy;
        if !self.wants(hook) {
            return None;
        }
        let mut input = self.to_map();
        input.insert("remembered".into(), strings_dyn(remembered));
        Some(ConsentCall {
            scripts: self.scripts(hook).cloned().collect(),
            input,
            consent,
        })
    }
}

impl ConsentCall {
    /// Run every script's consent policy in order; each sees the decision
    /// so far as `ctx.consent` and returns `"skip"`, `"require"`,
    /// `"remember"` or `()` (no change).
    pub fn run(self) -> Result<Consent, PluginError> {
        self.run_observed(&Unobserved)
    }

    /// [`ConsentCall::run`], each script's call reported to `observer`.
    pub fn run_observed(self, observer: &dyn Observer) -> Result<Consent, PluginError> {
        let hook = Hook::ConsentPolicy;
        let ConsentCall {
            scripts,
            mut input,
            mut consent,
        } = self;
        for script in scripts.iter() {
            input.insert("consent".into(), str_dyn(consent.as_str()));
            let result = script.call_observed(hook, Dynamic::from_map(input.clone()), observer)?;
            if result.is_unit() {
                continue;
            }
            let shape = "must return \"skip\", \"require\", \"remember\" or ()";
            let text = result
                .as_immutable_string_ref()
                .map_err(|t| script.failed(hook, None, format!("{shape}, not {t}")))?;
            consent = Consent::parse(text.as_str()).ok_or_else(|| {
                script.failed(hook, None, format!("{shape}, not {:?}", text.as_str()))
            })?;
        }
        Ok(consent)
    }
}

fn str_dyn(s: &str) -> Dynamic {
    Dynamic::from(ImmutableString::from(s))
}

fn strings_dyn(v: &[String]) -> Dynamic {
    Dynamic::from_array(v.iter().map(|s| str_dyn(s)).collect())
}

fn object_to_dynamic(m: &Map<String, Value>) -> Dynamic {
    Dynamic::from_map(
        m.iter()
            .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
            .collect(),
    )
}

/// JSON → Rhai: null is `()`, integers stay integers, other numbers are floats.
pub fn json_to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => str_dyn(s),
        Value::Array(a) => Dynamic::from_array(a.iter().map(json_to_dynamic).collect()),
        Value::Object(m) => object_to_dynamic(m),
    }
}

/// Rhai → JSON. `()` is `None` (an absent claim; `null` inside an array),
/// strings, characters, integers, finite floats, bools, arrays and maps
/// convert; anything else is an error.
pub fn to_json(v: &Dynamic, depth: usize) -> Result<Option<Value>, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("nested deeper than {MAX_VALUE_DEPTH} levels"));
    }
    if v.is_unit() {
        return Ok(None);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Some(Value::Bool(b)));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Some(Value::from(i)));
    }
    if let Ok(f) = v.as_float() {
        return serde_json::Number::from_f64(f)
            .map(|n| Some(Value::Number(n)))
            .ok_or_else(|| format!("{f} is not a JSON number"));
    }
    if let Ok(c) = v.as_char() {
        return Ok(Some(Value::String(c.to_string())));
    }
    if let Ok(s) = v.as_immutable_string_ref() {
        return Ok(Some(Value::String(s.to_string())));
    }
    if let Ok(a) = v.as_array_ref() {
        let mut out = Vec::with_capacity(a.len());
        for item in a.iter() {
            out.push(to_json(item, depth + 1)?.unwrap_or(Value::Null));
        }
        return Ok(Some(Value::Array(out)));
    }
    if let Ok(m) = v.as_map_ref() {
        let mut out = Map::new();
        for (k, item) in m.iter() {
            if let Some(item) = to_json(item, depth + 1)? {
                out.insert(k.to_string(), item);
            }
        }
        return Ok(Some(Value::Object(out)));
    }
    Err(format!("a {} cannot become JSON", v.type_name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn script(src: &str) -> Result<Script, String> {
        Script::compile("t.rhai", src, DEFAULT_TIME_LIMIT)
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = script("fn id_token_claims(ctx) {\n  let x = ;\n}").unwrap_err();
        assert!(e.starts_with("line 2, column "), "{e}");
    }

    #[test]
    fn hooks_need_one_parameter_and_a_script_needs_a_hook() {
        let e = script("fn scope_policy() { () }").unwrap_err();
        assert!(e.contains("exactly one parameter"), "{e}");
        let e = script("fn helper(x) { x }").unwrap_err();
        assert!(e.contains("defines no hook"), "{e}");
        let s = script("fn userinfo_claims(ctx) { #{} }").unwrap();
        assert!(s.has(Hook::UserinfoClaims));
        assert!(!s.has(Hook::ScopePolicy));
    }

    #[test]
    fn values_convert_faithfully_both_ways() {
        let v = json!({"s": "x", "i": -3, "f": 1.5, "b": true, "a": [1, "two", null], "m": {"k": [true]}});
        let d = json_to_dynamic(&v);
        let back = to_json(&d, 0).unwrap().unwrap();
        // null inside a map is an absent key; inside an array it stays null
        assert_eq!(back, v);
        let nested = json_to_dynamic(&json!({"n": null}));
        assert_eq!(to_json(&nested, 0).unwrap().unwrap(), json!({}));
        assert!(to_json(&Dynamic::from_float(f64::NAN), 0).is_err());
    }

    #[test]
    fn failures_carry_line_and_denials_are_recognised() {
        let s = script("fn scope_policy(ctx) {\n  throw \"boom\";\n}").unwrap();
        match s.call(Hook::ScopePolicy, Dynamic::UNIT).unwrap_err() {
            PluginError::Failed { line, message, .. } => {
                assert_eq!(line, Some(2));
                assert!(message.contains("boom"), "{message}");
            }
            e => panic!("{e:?}"),
        }
        let s =
            script("fn helper() { deny(\"nope\") }\nfn scope_policy(ctx) { helper() }").unwrap();
        assert_eq!(
            s.call(Hook::ScopePolicy, Dynamic::UNIT).unwrap_err(),
            PluginError::Denied {
                script: "t.rhai".into(),
                hook: "scope_policy",
                reason: "nope".into()
            }
        );
    }

    #[test]
    fn top_level_code_runs_once_and_defines_settings() {
        let s = script(
            "const DOMAINS = [\"a.example\", \"b.example\"];\nlet limit = 2;\n\
             fn userinfo_claims(ctx) { #{ n: global::DOMAINS.len(), limit: global::limit } }",
        )
        .unwrap();
        let v = s.call(Hook::UserinfoClaims, Dynamic::UNIT).unwrap();
        assert_eq!(
            to_json(&v, 0).unwrap().unwrap(),
            json!({"n": 2, "limit": 2})
        );
        // A setting can't be changed by a call: the next call sees it as loaded.
        let s = script(
            "const L = [1];\nfn userinfo_claims(ctx) { let l = global::L; l.push(2); #{ n: global::L.len() } }",
        )
        .unwrap();
        for _ in 0..2 {
            let v = s.call(Hook::UserinfoClaims, Dynamic::UNIT).unwrap();
            assert_eq!(to_json(&v, 0).unwrap().unwrap(), json!({"n": 1}));
        }
    }

    #[test]
    fn top_level_code_that_cannot_run_at_load_is_refused() {
        let e = script("print(\"loaded\");\nloop {}\nfn userinfo_claims(ctx) { #{} }").unwrap_err();
        // Whichever limit comes first: on a loaded machine the debug build
        // may reach the time limit before a million operations.
        assert!(
            e.contains("operation limit") || e.contains("time limit"),
            "{e}"
        );
        let e = script("let who = ctx.user;\nfn userinfo_claims(ctx) { #{} }").unwrap_err();
        assert!(e.starts_with("line 1: top-level code failed"), "{e}");
        assert!(e.contains("`ctx` exists only inside hook functions"), "{e}");
    }

    #[test]
    fn a_setting_read_without_global_is_explained() {
        let s = script("const LIMIT = 3;\nfn userinfo_claims(ctx) {\n  #{ n: LIMIT }\n}").unwrap();
        match s.call(Hook::UserinfoClaims, Dynamic::UNIT).unwrap_err() {
            PluginError::Failed { line, message, .. } => {
                assert_eq!(line, Some(3));
                assert!(message.contains("global::LIMIT"), "{message}");
            }
            e => panic!("{e:?}"),
        }
    }
}
