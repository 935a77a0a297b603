//! `sesame explain`: what sesame would issue for one request, and how the
//! scope decision was reached, step by step.
//!
//! The decision and the tokens are `oauth::dry_run`'s, so the server's own.
//! To show what each scope policy returned, the policies are also run one
//! at a time, each on a copy of the tenant holding that script alone,
//! starting from what the previous one left: the same `ctx` the server's
//! chain gives it. What the client's registration, the tenant, the code's
//! scopes and the grant's rules then keep is worked out alongside, with the
//! reason for each scope that goes.

use std::fmt::Write;
use std::net::IpAddr;

use serde_json::Value;

use crate::config::{GrantType, TenantConfig};
use crate::oauth::dry_run::{rehearse, Rehearsal, Request, Stage, Step, Tokens};
use crate::oauth::scope::{Decision, Scopes};
use crate::oauth::RequestFacts;
use crate::offline::{client_of, user_of, Offline};
use crate::plugin::{run_scope_policy, Consent, Hook, PluginError, Policy};
use crate::tenant::{Client, Tenant, User};

/// The request to explain.
#[derive(Debug, Clone)]
pub struct Query {
    pub tenant: Option<String>,
    pub client: String,
    pub user: Option<String>,
    /// Space-separated; `None` only for `client_credentials` (the client's scopes).
    pub scope: Option<String>,
    pub grant: GrantType,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub now: i64,
}

/// The explanation, as text; an error names what the query got wrong.
pub async fn explain(offline: &Offline, q: &Query) -> Result<String, String> {
    let (tenant, cfg) = offline.tenant(q.tenant.as_deref())?;
    let client = client_of(tenant, &q.client)?;
    match (q.grant, &q.user) {
        (GrantType::ClientCredentials, Some(_)) => {
            return Err("client_credentials has no user: leave --user out".into())
        }
        (GrantType::ClientCredentials, None) | (_, Some(_)) => {}
        (_, None) => return Err(format!("{} needs --user", q.grant.as_str())),
    }
    let user = match &q.user {
        Some(u) => Some(user_of(tenant, u)?),
        None => None,
    };
    let scopes = match &q.scope {
        Some(s) => Some(
            Scopes::parse(s)
                .ok_or_else(|| format!("--scope {s:?} is not a list of scope tokens"))?,
        ),
        None => None,
    };
    let url = tenant.endpoint("/token");
    let facts = RequestFacts {
        method: "POST",
        url: &url,
        ip: q.ip,
        user_agent: q.user_agent.as_deref(),
        dpop: crate::oauth::dpop::Header::Absent,
    };
    let ctx = offline.ctx(tenant, q.now, facts);
    let user = user.map(|u| &**u);
    let rehearsal = rehearse(
        &ctx,
        Request {
            client,
            user,
            scopes: scopes.as_ref(),
            grant: q.grant,
            remembered: &[],
        },
    )
    .await;
    let world = World {
        offline,
        tenant,
        cfg,
        client,
        user,
        q,
        facts,
    };
    Ok(world.render(&rehearsal))
}

/// What the explanation is about.
struct World<'a> {
    offline: &'a Offline,
    tenant: &'a Tenant,
    cfg: &'a TenantConfig,
    client: &'a Client,
    user: Option<&'a User>,
    q: &'a Query,
    facts: RequestFacts<'a>,
}

/// One policy as it ran on its own.
struct Traced {
    script: String,
    /// `tenant` or `client <id>`.
    owner: String,
    given: Policy,
    returned: Result<Policy, PluginError>,
    /// What of `returned` the next one is given.
    kept: Option<Policy>,
}

impl World<'_> {
    fn render(&self, r: &Rehearsal) -> String {
        let mut out = String::new();
        let who = match self.user {
            Some(u) => format!("user {}", u.username),
            None => "no user".to_string(),
        };
        let _ = writeln!(
            out,
            "tenant {}, client {}, {who}, grant {}",
            self.tenant.id,
            self.client.id,
            self.q.grant.as_str()
        );
        let requested = r
            .steps
            .first()
            .map(|s| s.requested.to_string())
            .or_else(|| self.q.scope.clone())
            .unwrap_or_default();
        let _ = writeln!(out, "requested: {}", or_none(&requested));
        let _ = writeln!(
            out,
            "client {} may ask for: {}",
            self.client.id,
            or_none(&self.client.scopes.join(" "))
        );
        for step in &r.steps {
            out.push('\n');
            self.step(&mut out, step);
        }
        out.push('\n');
        match &r.outcome {
            Ok(t) => self.tokens(&mut out, t),
            Err(refusal) => {
                let _ = writeln!(
                    out,
                    "refused: {} ({})",
                    refusal.error.code.as_str(),
                    refusal.error.description
                );
                if let Some(e @ PluginError::Failed { .. }) = &refusal.script {
                    let _ = writeln!(out, "  the script failed: {e}");
                }
            }
        }
        out
    }

    fn step(&self, out: &mut String, step: &Step) {
        let grant = self.q.grant;
        let (title, start) = match (step.stage, grant) {
            (Stage::Authorize, _) => ("At /authorize", "default decision (requested ∩ client's scopes ∩ tenant's scopes)"),
            (Stage::Token, GrantType::AuthorizationCode) => (
                "At the token endpoint (code exchange): the policies run again, within the code's scopes",
                "starting from the code's decision",
            ),
            (Stage::Token, GrantType::RefreshToken) => (
                "At the token endpoint (refresh): within the scopes of the grant",
                "default decision (requested ∩ client's scopes ∩ tenant's scopes; a refresh rotates by default)",
            ),
            (Stage::Token, GrantType::ClientCredentials) => (
                "At the token endpoint (client_credentials)",
                "default decision (requested ∩ client's scopes ∩ tenant's scopes, no OIDC scope without a user)",
            ),
        };
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "  {start}:");
        let _ = writeln!(
            out,
            "    granted: {}",
            or_none(&step.default.granted.to_string())
        );
        if !(step.stage == Stage::Token && grant == GrantType::AuthorizationCode) {
            for s in step
                .requested
                .iter()
                .filter(|s| !step.default.granted.contains(s))
            {
                let _ = writeln!(
                    out,
                    "    dropped {s}: {}",
                    self.why_not_default(s, &step.default)
                );
            }
        }
        let _ = writeln!(out, "    refresh token: {}", self.refresh_default(step));
        let traced = self.trace(step);
        let last = match traced.as_slice() {
            [] => {
                let _ = writeln!(out, "  no scope policy: the default stands");
                Some(policy_of(&step.default))
            }
            traced => {
                let _ = writeln!(out, "  scope policies, in order:");
                for (i, t) in traced.iter().enumerate() {
                    self.traced(out, i + 1, t, step);
                }
                traced.last().and_then(|t| t.kept.clone())
            }
        };
        match (&step.decision, last) {
            (Some(d), Some(last)) => {
                let after: Vec<String> = last
                    .granted
                    .iter()
                    .filter(|s| !d.granted.contains(s))
                    .map(|s| format!("    dropped {s}: {}", self.grant_rule(s)))
                    .collect();
                if !after.is_empty() || (last.refresh_token && !d.refresh_token) {
                    let _ = writeln!(out, "  then the grant's rules:");
                    for line in after {
                        let _ = writeln!(out, "{line}");
                    }
                    if last.refresh_token && !d.refresh_token {
                        let _ = writeln!(out, "    no refresh token: {}", self.no_refresh_token());
                    }
                }
                let _ = writeln!(out, "  decision: {}", summary(&d.granted, d.refresh_token));
            }
            (Some(d), None) => {
                let _ = writeln!(out, "  decision: {}", or_none(&d.granted.to_string()));
            }
            (None, _) => {
                let _ = writeln!(out, "  the request is refused here");
            }
        }
    }

    fn traced(&self, out: &mut String, n: usize, t: &Traced, step: &Step) {
        let _ = write!(out, "    {n}. {} ({}): ", t.script, t.owner);
        match &t.returned {
            Err(PluginError::Denied { reason, .. }) => {
                let _ = writeln!(out, "deny({})", Value::String(reason.clone()));
            }
            Err(e) => {
                let _ = writeln!(out, "failed: {e}");
            }
            Ok(p) if *p == t.given => {
                let _ = writeln!(out, "no change");
            }
            Ok(p) => {
                let _ = write!(
                    out,
                    "scopes {}, refresh_token: {}",
                    or_none(&p.granted.join(" ")),
                    p.refresh_token
                );
                let cut = &p.shortened;
                for (name, d) in [
                    ("access_token_lifetime", cut.access_token),
                    ("id_token_lifetime", cut.id_token),
                    ("refresh_token_lifetime", cut.refresh_token),
                ] {
                    if let Some(d) = d {
                        let _ = write!(out, ", {name}: {}", crate::config::duration::format(d));
                    }
                }
                let _ = writeln!(out);
                for s in t.given.granted.iter().filter(|s| !p.granted.contains(s)) {
                    let _ = writeln!(out, "         took away {s}");
                }
                if let Some(kept) = &t.kept {
                    for s in p.granted.iter().filter(|s| !kept.granted.contains(s)) {
                        let _ = writeln!(
                            out,
                            "         {s} not kept: {}",
                            self.why_not_allowed(s, step)
                        );
                    }
                }
            }
        }
    }

    /// The policy scripts of the request, one at a time (see the module comment).
    fn trace(&self, step: &Step) -> Vec<Traced> {
        let client_cfg = self.cfg.clients.iter().find(|c| c.id == self.client.id);
        let own: Vec<(&std::path::PathBuf, String)> = self
            .cfg
            .plugins
            .iter()
            .map(|p| (p, "tenant".to_string()))
            .chain(
                client_cfg
                    .into_iter()
                    .flat_map(|c| c.plugins.iter())
                    .map(|p| (p, format!("client {}", self.client.id))),
            )
            .filter(|(p, _)| {
                self.offline
                    .scripts
                    .resolve(std::slice::from_ref(*p))
                    .iter()
                    .any(|s| s.has(Hook::ScopePolicy))
            })
            .collect();
        let mut current = policy_of(&step.default);
        let mut out = Vec::new();
        for (path, owner) in own {
            let mut cfg = self.cfg.clone();
            let tenant_script = owner == "tenant";
            cfg.plugins = if tenant_script {
                vec![path.clone()]
            } else {
                Vec::new()
            };
            for c in cfg.clients.iter_mut() {
                c.plugins = if !tenant_script && c.id == self.client.id {
                    vec![path.clone()]
                } else {
                    Vec::new()
                };
            }
            let alone = self.offline.rebuild(self.tenant, &cfg);
            let Some(client) = alone.client(&self.client.id) else {
                break;
            };
            let ctx = self.offline.ctx(&alone, self.q.now, self.facts);
            let granted = Scopes::from_vec(current.granted.clone());
            let hooks = ctx.hooks(
                client,
                self.user,
                &step.requested,
                &granted,
                Some(self.q.grant),
            );
            let returned = run_scope_policy(&hooks, current.clone(), |_| true);
            let kept = returned.as_ref().ok().map(|p| Policy {
                granted: p
                    .granted
                    .iter()
                    .filter(|s| self.allowed(s, step))
                    .cloned()
                    .collect(),
                refresh_token: p.refresh_token,
                shortened: p.shortened,
            });
            out.push(Traced {
                script: path.display().to_string(),
                owner,
                given: current.clone(),
                returned,
                kept: kept.clone(),
            });
            match kept {
                Some(k) => current = k,
                None => break,
            }
        }
        out
    }

    /// What `scope::decide` keeps of a policy's scopes.
    fn allowed(&self, s: &str, step: &Step) -> bool {
        self.client.allows_scope(s)
            && self.tenant.scopes.contains_key(s)
            && step.ceiling.as_ref().is_none_or(|c| c.contains(s))
    }

    fn why_not_allowed(&self, s: &str, step: &Step) -> String {
        if !self.client.allows_scope(s) {
            format!("client {} is not registered for it", self.client.id)
        } else if !self.tenant.scopes.contains_key(s) {
            format!("tenant {} does not know it", self.tenant.id)
        } else if step.ceiling.as_ref().is_some_and(|c| !c.contains(s)) {
            match self.q.grant {
                GrantType::AuthorizationCode => "the code was not issued for it".to_string(),
                _ => "the grant being refreshed does not have it".to_string(),
            }
        } else {
            "kept".to_string()
        }
    }

    /// Why the default decision leaves out `s` (see `scope::default_decision`).
    fn why_not_default(&self, s: &str, default: &Decision) -> String {
        let oidc = matches!(
            s,
            "openid" | "profile" | "email" | "address" | "phone" | "offline_access"
        );
        let mut why = Vec::new();
        if !self.client.allows_scope(s) {
            why.push(format!("not in client {}'s scopes", self.client.id));
        }
        if !self.tenant.scopes.contains_key(s) {
            why.push(format!(
                "tenant {} does not know it (neither built in nor declared)",
                self.tenant.id
            ));
        }
        if !why.is_empty() {
            return why.join("; ");
        }
        if self.q.grant == GrantType::ClientCredentials && oidc {
            "client_credentials gets no OIDC scope: there is no user".to_string()
        } else if s == "offline_access" && !default.granted.contains("openid") {
            "offline_access needs openid (OIDC Core §11)".to_string()
        } else {
            "left out".to_string()
        }
    }

    /// What the grant's rules drop after the policies (`scope::decide`).
    fn grant_rule(&self, s: &str) -> String {
        if self.q.grant == GrantType::ClientCredentials {
            "client_credentials gets no OIDC scope: there is no user".to_string()
        } else if s == "offline_access" {
            "offline_access needs openid (OIDC Core §11)".to_string()
        } else {
            "left out by the grant's rules".to_string()
        }
    }

    fn no_refresh_token(&self) -> String {
        if self.user.is_none() || self.q.grant == GrantType::ClientCredentials {
            "a refresh token needs a user".to_string()
        } else if !self.client.allows_grant(GrantType::RefreshToken) {
            format!(
                "client {} does not have the refresh_token grant",
                self.client.id
            )
        } else {
            "the grant's rules".to_string()
        }
    }

    fn refresh_default(&self, step: &Step) -> String {
        let d = &step.default;
        match (step.stage, self.q.grant) {
            (Stage::Token, GrantType::AuthorizationCode) => {
                yes_no(d.refresh_token, "as decided at /authorize")
            }
            (Stage::Token, GrantType::RefreshToken) => yes_no(
                d.refresh_token,
                "a refresh rotates: a new refresh token replaces the one used",
            ),
            (_, GrantType::ClientCredentials) => yes_no(false, "a refresh token needs a user"),
            _ if d.refresh_token => yes_no(
                true,
                "offline_access granted, and the client has the refresh_token grant",
            ),
            _ if !d.granted.contains("offline_access") => {
                yes_no(false, "offline_access not granted")
            }
            _ => yes_no(
                false,
                &format!(
                    "client {} does not have the refresh_token grant",
                    self.client.id
                ),
            ),
        }
    }

    fn tokens(&self, out: &mut String, t: &Tokens) {
        if let Some(c) = t.consent {
            let why = match (c, self.client.skip_consent) {
                (Consent::Skip, true) => "the client has skip_consent",
                (Consent::Remember, false) => "the default: asked once for new scopes",
                _ => "a consent_policy script decided",
            };
            let _ = writeln!(out, "consent: {} ({why})", c.as_str());
        }
        let _ = writeln!(out, "issued: {}", summary(&t.granted, t.refresh_token));
        let (l, configured) = (&t.lifetimes, &self.client.lifetimes);
        let life = |now: std::time::Duration, was: std::time::Duration| {
            let text = crate::config::duration::format(now);
            if now < was {
                format!(
                    "{text} (shortened by a scope policy from {})",
                    crate::config::duration::format(was)
                )
            } else {
                text
            }
        };
        let _ = writeln!(
            out,
            "lifetimes: access token {}, ID token {}, refresh token {}",
            life(l.access_token, configured.access_token),
            life(l.id_token, configured.id_token),
            life(l.refresh_token, configured.refresh_token),
        );
        let block = |out: &mut String, title: &str, v: &Value| {
            let _ = writeln!(out, "\n{title}:");
            let text = serde_json::to_string_pretty(v).unwrap_or_default();
            for line in text.lines() {
                let _ = writeln!(out, "  {line}");
            }
        };
        match &t.id_token {
            Some(c) => block(out, "ID token", &Value::Object(c.clone())),
            None => {
                let _ = writeln!(out, "\nID token: none (it needs openid and a user)");
            }
        }
        match &t.access_token {
            Some(c) => block(out, "access token (JWT)", &Value::Object(c.clone())),
            None => {
                let _ = writeln!(
                    out,
                    "\naccess token: opaque (its claims are in the introspection answer)"
                );
            }
        }
        let answers = [
            ("userinfo", &t.userinfo),
            (
                "introspection (asked by the client itself)",
                &t.introspection,
            ),
        ];
        for (title, answer) in answers {
            match answer {
                Ok(v) => block(out, title, v),
                Err(r) => {
                    let (code, why) = (r.error.code.as_str(), &r.error.description);
                    let _ = writeln!(out, "\n{title}: {code} ({why})");
                }
            }
        }
    }
}

/// `openid profile, no refresh token`.
fn summary(granted: &Scopes, refresh_token: bool) -> String {
    format!(
        "{}, {}",
        or_none(&granted.to_string()),
        if refresh_token {
            "a refresh token"
        } else {
            "no refresh token"
        }
    )
}

fn policy_of(d: &Decision) -> Policy {
    Policy {
        granted: d.granted.as_vec().to_vec(),
        refresh_token: d.refresh_token,
        shortened: d.shortened,
    }
}

fn yes_no(yes: bool, why: &str) -> String {
    format!("{} ({why})", if yes { "yes" } else { "no" })
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "(none)"
    } else {
        s
    }
}
