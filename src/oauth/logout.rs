//! RP-Initiated Logout 1.0: end the browser session, then go back to the
//! client (a registered `post_logout_redirect_uri` only) or say goodbye.
//!
//! Front-Channel Logout 1.0: the clients of the ended session with a
//! `frontchannel_logout_uri` are loaded in iframes of the signed-out page
//! (which, when the client asked to go back, then links on to its
//! post-logout URI instead of redirecting at once). Back-Channel Logout is
//! queued by `session::end` and delivered by `crate::backchannel`.
//!
//! Without a valid `id_token_hint`, anyone's page could send the browser
//! here, so a live session is ended only once the user confirms it on our
//! page (§2 allows asking): a form whose CSRF token is bound to the session.

use serde_json::Value;

use super::outcome::{LogoutView, Outcome, Page, Problem, SignedOutView};
use super::session::{self, BrowserCookies};
use super::{Ctx, OAuthError, Params};
use crate::jose::verify_jwt;

/// `GET|POST /logout`: on to the client's registered post-logout URI, or the
/// signed-out page; a bad request gets an error page and ends nothing.
pub async fn logout(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
    // The hint names the client; it may have expired, but it must be ours.
    let hinted_client = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match verify_jwt(hint, &ctx.tenant.keys.load(), ctx.now) {
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
            _ => return rejected("id_token_hint is not a valid ID token of this issuer"),
        },
    };
    let client_id = match (hinted_client, params.get("client_id")) {
        (Some(h), Some(c)) if h != c => return rejected("client_id does not match id_token_hint"),
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
                return rejected("post_logout_redirect_uri is not registered for this client");
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
    let (cleared, ended) = match session::end(ctx, cookies).await {
        Ok(c) => c,
        Err(e) => return Outcome::error_page(e),
    };
    let frontchannel = ended
        .map(|s| frontchannel_uris(ctx, &s.sid, &s.clients))
        .unwrap_or_default();
    let redirect = match redirect.map(|uri| url::Url::parse(&uri)) {
        Some(Ok(mut u)) => {
            if let Some(state) = params.get("state") {
                u.query_pairs_mut().append_pair("state", state);
            }
            Some(u.to_string())
        }
        _ => None,
    };
    let out = match redirect {
        Some(to) if frontchannel.is_empty() => Outcome::redirect(to),
        continue_to => Outcome::page(Page::SignedOut(SignedOutView {
            client_id: client_id.filter(|id| ctx.tenant.client(id).is_some()),
            frontchannel,
            continue_to,
        })),
    };
    out.with(Some(cleared))
}

/// The front-channel logout URLs of the session's `clients` that have one
/// (Front-Channel Logout 1.0 §2): with `iss` and `sid` when the client
/// requires them.
fn frontchannel_uris(ctx: &Ctx<'_>, sid: &str, clients: &[String]) -> Vec<String> {
    clients
        .iter()
        .filter_map(|id| ctx.tenant.client(id))
        .filter_map(|c| {
            let mut u = url::Url::parse(c.frontchannel_logout_uri.as_deref()?).ok()?;
            if c.frontchannel_logout_session_required {
                u.query_pairs_mut()
                    .append_pair("iss", &ctx.tenant.issuer)
                    .append_pair("sid", sid);
            }
            Some(u.to_string())
        })
        .collect()
}

/// A logout request that can't be honoured: nothing is ended.
fn rejected(why: &str) -> Outcome {
    Outcome::problem(Problem::LogoutRejected, OAuthError::invalid_request(why))
}
