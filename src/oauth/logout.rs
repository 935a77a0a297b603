//! RP-Initiated Logout 1.0: end the browser session, then go back to the
//! client (a registered `post_logout_redirect_uri` only) or say goodbye.

use serde_json::Value;

use super::authorize::{BrowserCookies, Ctx};
use super::{OAuthError, Params};
use crate::jose::verify_jwt;
use crate::store::TokenHash;

#[derive(Debug)]
pub enum LogoutStep {
    /// 303 to the client's registered post-logout URI.
    Redirect(String),
    /// Show the signed-out page.
    SignedOut,
    /// Bad request: an error page, nothing ended.
    ErrorPage(OAuthError),
}

/// `GET|POST /logout`. Returns the next step and whether the session cookie must be cleared.
pub async fn logout(
    ctx: &Ctx<'_>,
    params: &Params,
    cookies: &BrowserCookies,
) -> (LogoutStep, bool) {
    // The hint names the client; it may have expired, but it must be ours.
    let hinted_client = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match verify_jwt(hint, &ctx.tenant.keys) {
            Ok(claims)
                if claims.get("iss").and_then(Value::as_str)
                    == Some(ctx.tenant.issuer.as_str()) =>
            {
                claims.get("aud").and_then(|a| match a {
                    Value::String(s) => Some(s.clone()),
                    Value::Array(v) => v.first().and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
            }
            _ => {
                return (
                    LogoutStep::ErrorPage(OAuthError::invalid_request(
                        "id_token_hint is not a valid ID token of this issuer",
                    )),
                    false,
                )
            }
        },
    };
    let client_id = match (hinted_client, params.get("client_id")) {
        (Some(h), Some(c)) if h != c => {
            return (
                LogoutStep::ErrorPage(OAuthError::invalid_request(
                    "client_id does not match id_token_hint",
                )),
                false,
            )
        }
        (Some(h), _) => Some(h),
        (None, c) => c.map(str::to_string),
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_deref()
                .and_then(|id| ctx.tenant.client(id))
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return (
                    LogoutStep::ErrorPage(OAuthError::invalid_request(
                        "post_logout_redirect_uri is not registered for this client",
                    )),
                    false,
                );
            }
            Some(uri.to_string())
        }
    };
    if let Some(sid) = cookies.session.as_deref().filter(|s| s.len() <= 128) {
        if let Err(e) = ctx
            .store
            .revoke_session(&ctx.tenant.id, TokenHash::of(sid), ctx.now)
            .await
        {
            return (LogoutStep::ErrorPage(e.into()), false);
        }
        tracing::info!(tenant = %ctx.tenant.id, "signed out");
    }
    let step = match redirect {
        Some(uri) => match url::Url::parse(&uri) {
            Ok(mut u) => {
                if let Some(state) = params.get("state") {
                    u.query_pairs_mut().append_pair("state", state);
                }
                LogoutStep::Redirect(u.to_string())
            }
            Err(_) => LogoutStep::SignedOut,
        },
        None => LogoutStep::SignedOut,
    };
    (step, true)
}
