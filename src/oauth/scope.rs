//! Scopes (RFC 6749 §3.3) and the default grant decision.

use super::hook;
use super::Ctx;
use crate::config::GrantType;
use crate::plugin::{Hook, PluginError, Policy, Shortened};
use crate::tenant::{Client, Tenant, User};

/// Most scopes a request may name.
pub const MAX_SCOPES: usize = 64;

/// A set of scope tokens in request order, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parse a space-delimited `scope` value. `None` on a malformed token or too many.
    pub fn parse(s: &str) -> Option<Scopes> {
        let mut out: Vec<String> = Vec::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !is_scope_token(token) {
                return None;
            }
            if !out.iter().any(|t| t == token) {
                out.push(token.to_string());
            }
        }
        (out.len() <= MAX_SCOPES).then_some(Scopes(out))
    }

    pub fn from_vec(v: Vec<String>) -> Scopes {
        let mut out: Vec<String> = Vec::new();
        for s in v {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Scopes(out)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether every scope here is also in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.iter().all(|s| other.contains(s))
    }

    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> Scopes {
        Scopes(self.0.iter().filter(|s| keep(s)).cloned().collect())
    }

    pub fn union(&self, other: &Scopes) -> Scopes {
        let mut out = self.0.clone();
        for s in other.iter() {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
        Scopes(out)
    }

    pub fn as_vec(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// What a request is granted without a policy script, and whether a refresh token goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Lifetimes a scope policy shortened (none by default).
    pub shortened: Shortened,
    pub granted: Scopes,
    pub refresh_token: bool,
}

/// The default decision: requested ∩ client's scopes ∩ tenant's scopes; a
/// refresh token when `offline_access` is granted in the code flow and the
/// client has the `refresh_token` grant. `offline_access` is only granted
/// with `openid` (OIDC Core §11).
pub fn default_decision(
    tenant: &Tenant,
    client: &Client,
    requested: &Scopes,
    grant: GrantType,
) -> Decision {
    let granted = grant_rules(
        requested.filter(|s| client.allows_scope(s) && tenant.scopes.contains_key(s)),
        grant,
    );
    let refresh_token = granted.contains("offline_access")
        && client.allows_grant(GrantType::RefreshToken)
        && grant != GrantType::ClientCredentials;
    Decision {
        granted,
        refresh_token,
        shortened: Shortened::default(),
    }
}

/// What no decision may break: `client_credentials` gets nothing OIDC (no
/// user), and `offline_access` needs `openid`.
fn grant_rules(granted: Scopes, grant: GrantType) -> Scopes {
    if grant == GrantType::ClientCredentials {
        granted.filter(|s| {
            !matches!(
                s,
                "openid" | "profile" | "email" | "address" | "phone" | "offline_access"
            )
        })
    } else if !granted.contains("openid") {
        granted.filter(|s| s != "offline_access")
    } else {
        granted
    }
}

/// The decision after the request's `scope_policy` scripts, starting from
/// `default`. What they return is kept only where the client and tenant
/// have the scope (and, with a `ceiling`, where it holds it: the original
/// grant at a code exchange or refresh). A refresh token needs a user and the
/// client's `refresh_token` grant whatever a script says.
pub async fn decide(
    ctx: &Ctx<'_>,
    client: &Client,
    user: Option<&User>,
    requested: &Scopes,
    grant: GrantType,
    default: Decision,
    ceiling: Option<&Scopes>,
) -> Result<Decision, PluginError> {
    let hook_ctx = ctx.hooks(client, user, requested, &default.granted, Some(grant));
    if !hook_ctx.wants(Hook::ScopePolicy) {
        return Ok(default);
    }
    let allowed = |s: &str| {
        client.allows_scope(s)
            && ctx.tenant.scopes.contains_key(s)
            && ceiling.is_none_or(|c| c.contains(s))
    };
    let start = Policy {
        granted: default.granted.as_vec().to_vec(),
        refresh_token: default.refresh_token,
        shortened: default.shortened,
    };
    let policy = hook::policy(ctx, &hook_ctx, start, allowed).await?;
    Ok(Decision {
        granted: grant_rules(Scopes::from_vec(policy.granted), grant),
        refresh_token: policy.refresh_token
            && user.is_some()
            && grant != GrantType::ClientCredentials
            && client.allows_grant(GrantType::RefreshToken),
        shortened: policy.shortened,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_dedupes_and_keeps_order() {
        let s = Scopes::parse("openid  email openid profile").unwrap();
        assert_eq!(s.to_string(), "openid email profile");
    }

    #[test]
    fn parse_rejects_bad_tokens() {
        assert!(Scopes::parse("openid \"x\"").is_none());
        assert!(Scopes::parse("a\\b").is_none());
        assert!(Scopes::parse("é").is_none());
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert!(Scopes::parse(&many.join(" ")).is_none());
    }

    #[test]
    fn subset_and_union() {
        let a = Scopes::parse("openid email").unwrap();
        let b = Scopes::parse("email openid profile").unwrap();
        assert!(a.is_subset(&b));
        assert!(!b.is_subset(&a));
        assert_eq!(a.union(&b).to_string(), "openid email profile");
    }
}
