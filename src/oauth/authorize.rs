//! The authorization endpoint (RFC 6749 §4.1, OIDC Core §3.1.2, RFC 7636,
//! RFC 9207): validate the request, then move it along — to sign-in
//! ([`super::login`]), to consent ([`super::consent`]), or to the client's
//! redirect URI with a code or an error. A request waiting for the user is a
//! [`Pending`] request ([`super::pending`]).

use super::outcome::{ConsentView, Outcome};
use super::pending::{self, hex_sha256, Pending};
use super::scope::{decide, default_decision, Decision, Scopes};
use super::session::{self, BrowserCookies};
use super::{pkce, random_token, Ctx, ErrorCode, OAuthError, Params};
use crate::config::GrantType;
use crate::store::{CodeRow, SessionRow, TokenHash};
use crate::tenant::{Client, Tenant, User};

/// Longest `state`, `nonce` or `login_hint` accepted.
pub const MAX_PARAM_LEN: usize = 2048;

/// A validated request on its way, and how far the user has come with it.
pub(super) struct Interaction<'c> {
    pub client: &'c Client,
    pub pending: Pending,
    /// Set once the request is stored.
    pub rid: Option<String>,
    pub session: Option<SessionRow>,
    pub stage: Stage,
}

/// How far the user has come with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Just arrived at `/authorize`.
    Arrived,
    /// Signed in for this request (no re-authentication asked again).
    SignedIn,
    /// Signed in and consented.
    Consented,
}

/// `GET|POST /authorize`.
pub async fn authorize(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
    // Until the client and redirect URI are known good, errors stay on our page.
    let client = match params.get("client_id").and_then(|id| ctx.tenant.client(id)) {
        Some(c) => c.clone(),
        None => {
            let e = if params.get("client_id").is_none() {
                OAuthError::invalid_request("client_id is required")
            } else {
                OAuthError::new(ErrorCode::InvalidClient, "unknown client")
            };
            return Outcome::error_page(e);
        }
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_string(),
        Some(_) => {
            return Outcome::error_page(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            ))
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Outcome::error_page(OAuthError::invalid_request("redirect_uri is required"))
        }
    };
    let state = params.get("state").map(str::to_string);
    let fail = |e: OAuthError| back_to_client(ctx, &redirect_uri, state.as_deref(), e);
    if state.as_ref().is_some_and(|s| s.len() > MAX_PARAM_LEN) {
        return Outcome::error_page(OAuthError::invalid_request("state is too long"));
    }

    let (binding, set_binding) = cookies.binding();
    let pending = match validate(ctx.tenant, &client, params, redirect_uri.clone(), &binding) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let session = match session::current(ctx, cookies).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let step = Interaction {
        client: &client,
        pending,
        rid: None,
        session,
        stage: Stage::Arrived,
    };
    proceed(ctx, step).await.with(set_binding)
}

/// Check every parameter of an authorization request from a trusted client.
fn validate(
    tenant: &Tenant,
    client: &Client,
    params: &Params,
    redirect_uri: String,
    binding: &str,
) -> Result<Pending, OAuthError> {
    if params.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if let Some(mode) = params.get("response_mode") {
        if mode != "query" {
            return Err(OAuthError::invalid_request(
                "only response_mode=query is supported",
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    let requested = match params.get("scope") {
        None => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope is required",
            ))
        }
        Some(s) => Scopes::parse(s)
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))?,
    };
    let decision = default_decision(tenant, client, &requested, GrantType::AuthorizationCode);
    if decision.granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "none of the requested scopes is available to this client",
        ));
    }
    for name in ["nonce", "login_hint"] {
        if params.get(name).is_some_and(|v| v.len() > MAX_PARAM_LEN) {
            return Err(OAuthError::invalid_request(format!("{name} is too long")));
        }
    }
    let code_challenge = pkce::validate_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
        client.require_pkce,
    )?;
    let prompt: Vec<String> = params
        .get("prompt")
        .map(|p| {
            p.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for p in &prompt {
        if !matches!(p.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(OAuthError::invalid_request(
                "prompt must be none, login, consent or select_account",
            ));
        }
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age =
        match params.get("max_age") {
            None => None,
            Some(v) => Some(v.parse::<u32>().map(i64::from).map_err(|_| {
                OAuthError::invalid_request("max_age must be a non-negative integer")
            })?),
        };
    Ok(Pending {
        client_id: client.id.clone(),
        redirect_uri_sent: params.get("redirect_uri").is_some(),
        redirect_uri,
        requested: requested.to_string(),
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge_method: code_challenge.as_ref().map(|_| "S256".to_string()),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        browser: hex_sha256(binding),
    })
}

/// Decide the next step for a validated request.
pub(super) async fn proceed(ctx: &Ctx<'_>, step: Interaction<'_>) -> Outcome {
    let Interaction {
        client,
        pending,
        rid,
        session,
        stage,
    } = step;
    let fail =
        |e: OAuthError| back_to_client(ctx, &pending.redirect_uri, pending.state.as_deref(), e);
    let prompt_none = pending.prompts("none");
    let just_logged_in = stage != Stage::Arrived;
    let user = session
        .as_ref()
        .and_then(|s| ctx.tenant.user_by_sub(&s.user_sub).map(|u| (s, u.clone())));
    let reauth = !just_logged_in
        && (pending
            .prompt
            .iter()
            .any(|p| p == "login" || p == "select_account")
            || match (&user, pending.max_age) {
                (Some((s, _)), Some(max_age)) => ctx.now - s.auth_time > max_age,
                _ => false,
            });
    let (session, user) = match user {
        Some((s, u)) if !reauth => (s.clone(), u),
        _ => {
            if prompt_none {
                return fail(OAuthError::new(
                    ErrorCode::LoginRequired,
                    "the user is not signed in",
                ));
            }
            return match pending::store(ctx, &pending, rid).await {
                Ok(rid) => go_to_login(ctx, &rid),
                Err(e) => fail(e),
            };
        }
    };

    let requested = Scopes::parse(&pending.requested).unwrap_or_default();
    let decision = match policy_decision(ctx, client, Some(user.as_ref()), &requested).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if decision.granted.is_empty() {
        return fail(OAuthError::new(
            ErrorCode::InvalidScope,
            "no scope can be granted",
        ));
    }
    if !client.skip_consent && stage != Stage::Consented {
        let previous = match ctx
            .store
            .find_consent(&ctx.tenant.id, &client.id, &user.sub)
            .await
        {
            Ok(p) => p.and_then(|s| Scopes::parse(&s)).unwrap_or_default(),
            Err(e) => return fail(e.into()),
        };
        let needed = pending.prompts("consent")
            || !decision.granted.is_subset(&previous)
            || decision.granted.contains("offline_access");
        if needed {
            if prompt_none {
                return fail(OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "the user has not consented",
                ));
            }
            let rid = match pending::store(ctx, &pending, rid).await {
                Ok(rid) => rid,
                Err(e) => return fail(e),
            };
            let scopes = decision
                .granted
                .iter()
                .map(|s| {
                    let description = ctx
                        .tenant
                        .scopes
                        .get(s)
                        .map(|d| d.description.clone())
                        .unwrap_or_default();
                    (s.to_string(), description)
                })
                .collect();
            return Outcome::page(super::outcome::Page::Consent(ConsentView {
                csrf: pending.csrf(&ctx.services.csrf_key, &rid, Some(&session)),
                rid,
                client_name: client.name.clone(),
                username: user.username.clone(),
                scopes,
            }));
        }
    }

    // Issue the code.
    let code = random_token();
    let row = CodeRow {
        tenant_id: ctx.tenant.id.clone(),
        code_hash: TokenHash::of(&code),
        grant_id: random_token(),
        client_id: client.id.clone(),
        user_sub: user.sub.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_sent: pending.redirect_uri_sent,
        scope: decision.granted.to_string(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.clone(),
        code_challenge_method: pending.code_challenge_method.clone(),
        auth_time: session.auth_time,
        refresh_token: decision.refresh_token,
        created_at: ctx.now,
        expires_at: ctx.now + client.lifetimes.authorization_code.as_secs() as i64,
        consumed_at: None,
    };
    if let Err(e) = ctx.store.insert_code(row).await {
        return fail(e.into());
    }
    if let Some(rid) = rid {
        pending::finish(ctx, &rid).await;
    }
    let mut url = match url::Url::parse(&pending.redirect_uri) {
        Ok(u) => u,
        Err(_) => return Outcome::error_page(OAuthError::server_error()),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = &pending.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &ctx.tenant.issuer);
    }
    Outcome::redirect(url.to_string())
}

/// To the sign-in page of a stored request.
pub(super) fn go_to_login(ctx: &Ctx<'_>, rid: &str) -> Outcome {
    let mut url = ctx.tenant.endpoint("/login");
    url.push_str("?rid=");
    url.push_str(rid);
    Outcome::redirect(url)
}

/// The code flow's decision: the default, then the scope policies; a
/// `deny(reason)` is `access_denied` with that reason.
pub(super) async fn policy_decision(
    ctx: &Ctx<'_>,
    client: &Client,
    user: Option<&User>,
    requested: &Scopes,
) -> Result<Decision, OAuthError> {
    let grant = GrantType::AuthorizationCode;
    let default = default_decision(ctx.tenant, client, requested, grant);
    decide(ctx, client, user, requested, grant, default, None)
        .await
        .map_err(|e| OAuthError::from_plugin(e, Some(ErrorCode::AccessDenied)))
}

/// An error once the client and its redirect URI are trusted: back to the
/// client (RFC 6749 §4.1.2.1), except a database outage, which the user can
/// retry on our own 503 page.
pub(super) fn back_to_client(
    ctx: &Ctx<'_>,
    redirect_uri: &str,
    state: Option<&str>,
    e: OAuthError,
) -> Outcome {
    if e.code == ErrorCode::TemporarilyUnavailable {
        return Outcome::error_page(e);
    }
    Outcome::redirect(error_redirect(redirect_uri, &e, state, &ctx.tenant.issuer))
}

/// RFC 6749 §4.1.2.1 error redirect, with `state` and `iss` (RFC 9207).
pub fn error_redirect(
    redirect_uri: &str,
    e: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                q.append_pair("error", e.code.as_str());
                q.append_pair("error_description", &e.description);
                if let Some(s) = state {
                    q.append_pair("state", s);
                }
                q.append_pair("iss", issuer);
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_redirect_keeps_existing_query_and_adds_state_and_iss() {
        let e = OAuthError::new(ErrorCode::AccessDenied, "no");
        let url = error_redirect(
            "https://app.example/cb?x=1",
            &e,
            Some("s t"),
            "https://id.example/t",
        );
        assert_eq!(
            url,
            "https://app.example/cb?x=1&error=access_denied&error_description=no&state=s+t&iss=https%3A%2F%2Fid.example%2Ft"
        );
    }
}
