//! RP-Initiated Logout 1.0: end the browser session, then go back to the
//! client (a registered `post_logout_redirect_uri` only) or say goodbye.
//!
//! Without a valid `id_token_hint`, anyone's page could send the browser
//! here, so a live session is ended only once the user confirms it on our
//! page (§2 allows asking): a form whose CSRF token is bound to the session.

use serde_json::Value;

use super::outcome::{LogoutView, Outcome, Page};
use super::session::{self, BrowserCookies};
use super::{Ctx, OAuthError, Params};
use crate::jose::verify_jwt;

/// `GET|POST /logout`: on to the client's registered post-logout URI, or the
/// signed-out page; a bad request gets an error page and ends nothing.
pub async fn logout(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
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
                return Outcome::error_page(OAuthError::invalid_request(
                    "id_token_hint is not a valid ID token of this issuer",
                ))
            }
        },
    };
    let client_id = match (hinted_client, params.get("client_id")) {
        (Some(h), Some(c)) if h != c => {
            return Outcome::error_page(OAuthError::invalid_request(
                "client_id does not match id_token_hint",
            ))
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
                return Outcome::error_page(OAuthError::invalid_request(
                    "post_logout_redirect_uri is not registered for this client",
                ));
            }
            Some(uri.to_string())
        }
    };
    let hinted = params.get("id_token_hint").is_some();
    let live = match session::current(ctx, cookies).await {
        Ok(s) => s,
        Err(e) => return Outcome::error_page(e),
    };
    if let Some(live) = live.filter(|_| !hinted) {
        let key = &ctx.services.csrf_key;
        let parts = ["logout", live.sid.as_str()];
        if !key.verify(&parts, params.get("csrf")) {
            let client_name = client_id
                .as_deref()
                .and_then(|id| ctx.tenant.client(id))
                .map(|c| c.name.clone());
            return Outcome::page(Page::LogoutConfirm(LogoutView {
                csrf: key.token(&parts),
                client_name,
                client_id,
                post_logout_redirect_uri: redirect,
                state: params.get("state").map(str::to_string),
            }));
        }
    }
    let cleared = match session::end(ctx, cookies).await {
        Ok(c) => c,
        Err(e) => return Outcome::error_page(e),
    };
    let out = match redirect.map(|uri| url::Url::parse(&uri)) {
        Some(Ok(mut u)) => {
            if let Some(state) = params.get("state") {
                u.query_pairs_mut().append_pair("state", state);
            }
            Outcome::redirect(u.to_string())
        }
        _ => Outcome::page(Page::SignedOut),
    };
    out.with(Some(cleared))
}
