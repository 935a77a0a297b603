//! What a grant would issue, worked out by the steps the server takes, with
//! nothing stored: for `sesame test` and `sesame explain`.
//!
//! The decisions are the server's own (`scope::default_decision`, then
//! `scope::decide` with the scope policies, as `/authorize` and the token
//! endpoint call them, refusals included); the tokens come from
//! `issue::issue` (claims hooks, registered claims protected, signed); the
//! userinfo and introspection answers from those endpoints' own
//! functions, given the issued token's row. Only what the store would do
//! (spend a code, keep the rows) is left out, so a `Ctx` over
//! `Store::offline()` serves.

use serde_json::{Map, Value};

use super::access_token::{unrecorded_row, ValidToken};
use super::issue::{issue, new_refresh_token, Family, Issuance, Subject};
use super::scope::{decide, default_decision, Decision, Scopes};
use super::{hook, introspect, random_token, userinfo, Ctx, ErrorCode, OAuthError};
use crate::config::{AccessTokenFormat, GrantType};
use crate::jose::verify_jwt;
use crate::plugin::{run_claims, Consent, Hook, HookContext, PluginError, Shortened};
use crate::tenant::{Client, Lifetimes, User};

/// One grant to rehearse.
pub struct Request<'a> {
    pub client: &'a Client,
    /// Absent for `client_credentials`.
    pub user: Option<&'a User>,
    /// The scopes asked for: at `/authorize`, of the refreshed grant, or at
    /// `client_credentials` (`None` there: the client's registered scopes).
    pub scopes: Option<&'a Scopes>,
    pub grant: GrantType,
    /// What the user consented to before (`ctx.remembered` of `consent_policy`).
    pub remembered: &'a [String],
}

/// Where a decision is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `/authorize`, once the user is known (the code flow).
    Authorize,
    /// The token endpoint: the code exchange, a refresh, client_credentials.
    Token,
}

/// One decision on the way, as the server takes it.
#[derive(Debug, Clone)]
pub struct Step {
    pub stage: Stage,
    /// The scopes asked for at this step (`ctx.scopes`).
    pub requested: Scopes,
    /// What the policies start from.
    pub default: Decision,
    /// What the policies may not go beyond besides the client and tenant:
    /// the code's scopes at an exchange, the grant's at a refresh.
    pub ceiling: Option<Scopes>,
    /// After the policies; `None` when the step refused the request.
    pub decision: Option<Decision>,
}

/// Why a request was refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// What the client would be answered.
    pub error: OAuthError,
    /// The script behind it, if one was: a `deny(reason)` or a failure.
    pub script: Option<PluginError>,
}

impl Refusal {
    fn new(code: ErrorCode, description: &str) -> Refusal {
        Refusal {
            error: OAuthError::new(code, description),
            script: None,
        }
    }

    /// A policy's failure or denial, answered as `denied` when it is one.
    fn of_policy(e: PluginError, denied: ErrorCode) -> Refusal {
        Refusal {
            error: OAuthError::from_plugin(e.clone(), Some(denied)),
            script: Some(e),
        }
    }

    /// The reason a policy gave to `deny()`, if that is what happened.
    pub fn denial(&self) -> Option<&str> {
        match &self.script {
            Some(PluginError::Denied { reason, .. }) => Some(reason),
            _ => None,
        }
    }
}

/// What the server would hand out.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// Whether the user is asked to consent (the code flow only).
    pub consent: Option<Consent>,
    /// The client's lifetimes, as the scope policies shortened them.
    pub lifetimes: Lifetimes,
    pub granted: Scopes,
    pub refresh_token: bool,
    /// The ID token's claims (with `openid` and a user).
    pub id_token: Option<Map<String, Value>>,
    /// A JWT access token's claims; `None` for an opaque one.
    pub access_token: Option<Map<String, Value>>,
    /// `/userinfo` for the access token: its claims, or the error it gets.
    pub userinfo: Result<Value, Refusal>,
    /// `/introspect` for the access token, asked by its own client.
    pub introspection: Result<Value, Refusal>,
}

/// The whole rehearsal: the decisions in order, then the tokens or the refusal.
#[derive(Debug)]
pub struct Rehearsal {
    pub steps: Vec<Step>,
    pub outcome: Result<Tokens, Refusal>,
}

/// Rehearse `request` at `ctx.now`.
pub async fn rehearse(ctx: &Ctx<'_>, request: Request<'_>) -> Rehearsal {
    let mut steps = Vec::new();
    let outcome = run(ctx, &request, &mut steps).await;
    Rehearsal { steps, outcome }
}

async fn run(ctx: &Ctx<'_>, r: &Request<'_>, steps: &mut Vec<Step>) -> Result<Tokens, Refusal> {
    let (client, user, grant) = (r.client, r.user, r.grant);
    if !client.allows_grant(grant) {
        return Err(Refusal::new(
            ErrorCode::UnauthorizedClient,
            &format!("this client may not use the {} grant", grant.as_str()),
        ));
    }
    let needs_user = grant != GrantType::ClientCredentials;
    if needs_user != user.is_some() {
        return Err(Refusal::new(
            ErrorCode::InvalidRequest,
            if needs_user {
                "this grant needs a user"
            } else {
                "client_credentials has no user"
            },
        ));
    }
    let requested = match r.scopes {
        Some(s) => s.clone(),
        None if grant == GrantType::ClientCredentials => Scopes::from_vec(client.scopes.clone()),
        None => return Err(Refusal::new(ErrorCode::InvalidScope, "scope is required")),
    };
    let default = default_decision(ctx.tenant, client, &requested, grant);
    let (requested, decision) = match grant {
        GrantType::AuthorizationCode => {
            // `authorize::authorize`, then `authorize::policy_decision`.
            if default.granted.is_empty() {
                return Err(Refusal::new(
                    ErrorCode::InvalidScope,
                    "none of the requested scopes is available to this client",
                ));
            }
            let step = Stage::Authorize;
            let at_authorize = policies(
                ctx,
                r,
                step,
                &requested,
                default,
                None,
                ErrorCode::AccessDenied,
                steps,
            )
            .await?;
            if at_authorize.granted.is_empty() {
                return Err(Refusal::new(
                    ErrorCode::InvalidScope,
                    "no scope can be granted",
                ));
            }
            let consent = consent(ctx, r, &requested, &at_authorize).await?;
            // `grant::authorization_code::exchange`: the code's decision, the policies again.
            // The code keeps scopes and the refresh-token decision, not lifetimes.
            let code_scopes = at_authorize.granted.clone();
            let default = Decision {
                shortened: Shortened::default(),
                ..at_authorize
            };
            let decision = token_decision(ctx, r, &code_scopes, default, true, steps).await?;
            let mut tokens = tokens(ctx, r, &code_scopes, decision).await?;
            tokens.consent = Some(consent);
            return Ok(tokens);
        }
        GrantType::RefreshToken => {
            // `grant::refresh_token::exchange`: by default the token rotates.
            if default.granted.is_empty() {
                return Err(Refusal::new(
                    ErrorCode::InvalidScope,
                    "no scope can be granted",
                ));
            }
            let default = Decision {
                refresh_token: true,
                ..default
            };
            let decision = token_decision(ctx, r, &requested, default, true, steps).await?;
            (requested, decision)
        }
        GrantType::ClientCredentials => {
            // `grant::client_credentials::exchange`.
            if r.scopes.is_some() && default.granted.is_empty() {
                return Err(Refusal::new(
                    ErrorCode::InvalidScope,
                    "none of the requested scopes is available",
                ));
            }
            let decision = token_decision(ctx, r, &requested, default, false, steps).await?;
            (requested, decision)
        }
    };
    tokens(ctx, r, &requested, decision).await
}

/// `authorize::consent_decision`, with what the user consented to before
/// given instead of looked up.
async fn consent(
    ctx: &Ctx<'_>,
    r: &Request<'_>,
    requested: &Scopes,
    decision: &Decision,
) -> Result<Consent, Refusal> {
    let grant = Some(GrantType::AuthorizationCode);
    let hooks = ctx.hooks(r.client, r.user, requested, &decision.granted, grant);
    let start = if r.client.skip_consent {
        Consent::Skip
    } else {
        Consent::Remember
    };
    hook::consent(ctx, &hooks, start, r.remembered)
        .await
        .map_err(|e| Refusal {
            error: OAuthError::from_plugin(e.clone(), None),
            script: Some(e),
        })
}

/// `grant::decision`: the token endpoint's policies, held under `requested`
/// when `ceiling`; a policy that leaves nothing is `invalid_scope`.
async fn token_decision(
    ctx: &Ctx<'_>,
    r: &Request<'_>,
    requested: &Scopes,
    default: Decision,
    ceiling: bool,
    steps: &mut Vec<Step>,
) -> Result<Decision, Refusal> {
    let had_scopes = !default.granted.is_empty();
    let ceiling = ceiling.then_some(requested);
    let decision = policies(
        ctx,
        r,
        Stage::Token,
        requested,
        default,
        ceiling,
        ErrorCode::InvalidGrant,
        steps,
    )
    .await?;
    if had_scopes && decision.granted.is_empty() {
        return Err(Refusal::new(
            ErrorCode::InvalidScope,
            "no scope can be granted",
        ));
    }
    Ok(decision)
}

/// `scope::decide` at one step, recorded.
#[allow(clippy::too_many_arguments)]
async fn policies(
    ctx: &Ctx<'_>,
    r: &Request<'_>,
    stage: Stage,
    requested: &Scopes,
    default: Decision,
    ceiling: Option<&Scopes>,
    denied: ErrorCode,
    steps: &mut Vec<Step>,
) -> Result<Decision, Refusal> {
    let result = decide(
        ctx,
        r.client,
        r.user,
        requested,
        r.grant,
        default.clone(),
        ceiling,
    )
    .await;
    steps.push(Step {
        stage,
        requested: requested.clone(),
        default,
        ceiling: ceiling.cloned(),
        decision: result.as_ref().ok().cloned(),
    });
    result.map_err(|e| Refusal::of_policy(e, denied))
}

/// `issue::issue` for the decision, then what userinfo and introspection
/// would answer about its access token.
async fn tokens(
    ctx: &Ctx<'_>,
    r: &Request<'_>,
    requested: &Scopes,
    decision: Decision,
) -> Result<Tokens, Refusal> {
    let (client, grant) = (r.client, r.grant);
    let grant_id = random_token();
    let refresh = match r.user {
        Some(u) if decision.refresh_token => {
            let family = Family {
                grant_id: &grant_id,
                user_sub: &u.sub,
                auth_time: ctx.now,
                expires_at: ctx.now + client.lifetimes.refresh_token_family.as_secs() as i64,
                jkt: None,
                resource: None,
                sid: None,
            };
            let scope = decision.granted.to_string();
            Some(new_refresh_token(
                ctx,
                client,
                &decision.shortened,
                &family,
                &scope,
                None,
            ))
        }
        _ => None,
    };
    let issued = issue(
        ctx,
        Issuance {
            client,
            subject: r.user.map_or(Subject::Client, Subject::User),
            grant,
            requested,
            granted: &decision.granted,
            grant_id: &grant_id,
            auth_time: ctx.now,
            nonce: None,
            sid: None,
            refresh,
            shortened: decision.shortened,
            jkt: None,
            resource: None,
        },
    )
    .await;
    let (response, issued) = match issued {
        Ok(v) => v,
        Err(error) => {
            let script = failed_claims_hook(ctx, r, requested, &decision.granted);
            return Err(Refusal { error, script });
        }
    };
    let claims_of = |jwt: &str| match verify_jwt(jwt, &ctx.tenant.keys.load(), ctx.now) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let id_token = response.id_token.as_deref().and_then(claims_of);
    let access_token = claims_of(&response.access_token);
    let jwt_claims = access_token.clone().unwrap_or_default();
    let row = match issued.access_token {
        Some(row) => row,
        None => unrecorded_row(ctx.tenant, &jwt_claims).ok_or_else(|| Refusal {
            error: OAuthError::server_error(),
            script: None,
        })?,
    };
    // Asked later, at userinfo and introspection: no grant, the token's scopes.
    let later = ctx.hooks(client, r.user, &decision.granted, &decision.granted, None);
    let userinfo = userinfo::answer(ctx, &row).await.map_err(|error| Refusal {
        script: failed(&error, Hook::UserinfoClaims, &later),
        error,
    });
    let valid = ValidToken {
        row,
        claims: jwt_claims,
    };
    let introspection = introspect::access_token_answer(ctx, valid)
        .await
        .map_err(|error| Refusal {
            script: failed(&error, Hook::AccessTokenClaims, &later),
            error,
        });
    Ok(Tokens {
        consent: None,
        lifetimes: client.lifetimes.shortened(&decision.shortened),
        granted: decision.granted,
        refresh_token: response.refresh_token.is_some(),
        id_token,
        access_token,
        userinfo,
        introspection,
    })
}

/// The failure of `hook` behind a `server_error` (the server only logs it).
fn failed(error: &OAuthError, hook: Hook, hooks: &HookContext<'_>) -> Option<PluginError> {
    if error.code != ErrorCode::ServerError {
        return None;
    }
    run_claims(hook, hooks).err()
}

/// Which claims hook made issuing fail (the server only logs it): the
/// hooks of `issue` run again, in its order, until one fails.
fn failed_claims_hook(
    ctx: &Ctx<'_>,
    r: &Request<'_>,
    requested: &Scopes,
    granted: &Scopes,
) -> Option<PluginError> {
    let hook_ctx = ctx.hooks(r.client, r.user, requested, granted, Some(r.grant));
    let id_token = r.user.is_some() && granted.contains("openid");
    let jwt = ctx.tenant.access_token_format == AccessTokenFormat::Jwt;
    [
        (Hook::IdTokenClaims, id_token),
        (Hook::AccessTokenClaims, jwt),
    ]
    .into_iter()
    .filter(|(_, runs)| *runs)
    .find_map(|(hook, _)| run_claims(hook, &hook_ctx).err())
}
