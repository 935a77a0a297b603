//! Pending authorization requests: a validated request waiting for the user
//! to sign in or consent.
//!
//! A pending request lives in the store, keyed by the hash of a random id
//! (`rid`) that travels in the login/consent forms; it is bound to the
//! browser that started it by the hash of the browser's binding cookie, and
//! the forms' CSRF token is derived from both, so neither a swapped `rid` nor
//! a cross-site POST can complete someone else's request.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authorize::ResponseMode;
use super::context::CsrfKey;
use super::session::BrowserCookies;
use super::{random_token, Ctx, OAuthError, Params};
use crate::store::{AuthRequestRow, SessionRow, TokenHash};
use crate::tenant::Client;

/// Why a pending request could not be found (also the error page's cue).
pub const EXPIRED: &str =
    "this sign-in request has expired or is unknown; go back to the application and start again";
/// Why a form was refused.
pub const FORM_EXPIRED: &str = "the form has expired (CSRF check failed); start again";

/// How long a started sign-in may take.
pub const AUTH_REQUEST_TTL: i64 = 30 * 60;

/// A validated authorization request, as stored while the user interacts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (requests stored before this
    /// was recorded count as having named it).
    #[serde(default = "named")]
    pub redirect_uri_sent: bool,
    pub requested: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The languages the client asked the pages in.
    #[serde(default)]
    pub ui_locales: Option<String>,
    /// The resources (RFC 8707) asked for, space-separated.
    #[serde(default)]
    pub resource: Option<String>,
    /// The DPoP key the code is bound to (RFC 9449 §10).
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// How the answer goes back (requests stored before this was recorded: query).
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// SHA-256 (hex) of the binding cookie of the browser that started it.
    pub browser: String,
}

fn named() -> bool {
    true
}

impl Pending {
    /// Whether the request asked for `prompt=<value>`.
    pub fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }

    /// The CSRF token of this request's forms: keyed with the deployment's
    /// secret, bound to the request, the browser and (for consent) the
    /// session that is asked.
    pub fn csrf(&self, key: &CsrfKey, rid: &str, session: Option<&SessionRow>) -> String {
        key.token(&csrf_parts(rid, &self.browser, session))
    }

    /// The CSRF token of the account chooser's "continue as" form (bound
    /// like consent's, but not interchangeable with it).
    pub fn chooser_csrf(&self, key: &CsrfKey, rid: &str, session: &SessionRow) -> String {
        key.token(&chooser_parts(rid, &self.browser, session))
    }
}

/// Store the pending request unless it already is; returns its `rid`.
pub async fn store(
    ctx: &Ctx<'_>,
    pending: &Pending,
    rid: Option<String>,
) -> Result<String, OAuthError> {
    if let Some(rid) = rid {
        return Ok(rid);
    }
    let rid = random_token();
    let params = serde_json::to_string(pending).map_err(|_| OAuthError::server_error())?;
    ctx.store
        .insert_auth_request(AuthRequestRow {
            tenant_id: ctx.tenant.id.clone(),
            request_hash: TokenHash::of(&rid),
            client_id: pending.client_id.clone(),
            params,
            created_at: ctx.now,
            expires_at: ctx.now + AUTH_REQUEST_TTL,
        })
        .await?;
    Ok(rid)
}

/// Forget a finished request (best effort: it expires anyway).
pub async fn finish(ctx: &Ctx<'_>, rid: &str) {
    if let Err(e) = ctx
        .store
        .delete_auth_request(&ctx.tenant.id, TokenHash::of(rid))
        .await
    {
        tracing::warn!(error = %e, "could not delete a finished authorization request");
    }
}

/// Load a pending request and check it belongs to this browser.
pub async fn load(
    ctx: &Ctx<'_>,
    rid: Option<&str>,
    cookies: &BrowserCookies,
) -> Result<(Pending, Arc<Client>), OAuthError> {
    let expired = || OAuthError::invalid_request(EXPIRED);
    let rid = rid.ok_or_else(expired)?;
    if rid.len() > 128 {
        return Err(expired());
    }
    let row = ctx
        .store
        .find_auth_request(&ctx.tenant.id, TokenHash::of(rid), ctx.now)
        .await?
        .ok_or_else(expired)?;
    let pending: Pending = serde_json::from_str(&row.params).map_err(|_| expired())?;
    let binding = cookies.binding.as_deref().unwrap_or("");
    let same_browser: bool = hex_sha256(binding)
        .as_bytes()
        .ct_eq(pending.browser.as_bytes())
        .into();
    if !same_browser {
        return Err(expired());
    }
    let client = ctx
        .tenant
        .client(&pending.client_id)
        .cloned()
        .ok_or_else(expired)?;
    // The configuration may have changed since: the redirect URI must still be registered.
    if !client
        .redirect_uris
        .iter()
        .any(|r| r == &pending.redirect_uri)
    {
        return Err(expired());
    }
    Ok((pending, client))
}

/// The pending request a form was submitted for, once its browser binding
/// and CSRF token (made for `session`, see [`Pending::csrf`]) check out:
/// `(rid, request, client)`.
pub async fn submitted(
    ctx: &Ctx<'_>,
    form: &Params,
    cookies: &BrowserCookies,
    session: Option<&SessionRow>,
) -> Result<(String, Pending, Arc<Client>), OAuthError> {
    checked(ctx, form, cookies, session, csrf_parts).await
}

/// As [`submitted`], for the account chooser's form for `session`.
pub async fn chosen(
    ctx: &Ctx<'_>,
    form: &Params,
    cookies: &BrowserCookies,
    session: &SessionRow,
) -> Result<(String, Pending, Arc<Client>), OAuthError> {
    checked(
        ctx,
        form,
        cookies,
        Some(session),
        |rid, browser, s| match s {
            Some(s) => chooser_parts(rid, browser, s),
            None => csrf_parts(rid, browser, None),
        },
    )
    .await
}

async fn checked(
    ctx: &Ctx<'_>,
    form: &Params,
    cookies: &BrowserCookies,
    session: Option<&SessionRow>,
    parts: impl for<'b> Fn(&'b str, &'b str, Option<&'b SessionRow>) -> [&'b str; 4],
) -> Result<(String, Pending, Arc<Client>), OAuthError> {
    let rid = form.get("rid");
    let (pending, client) = load(ctx, rid, cookies).await?;
    let rid = rid.unwrap_or_default().to_string();
    if !ctx
        .services
        .csrf_key
        .verify(&parts(&rid, &pending.browser, session), form.get("csrf"))
    {
        return Err(OAuthError::invalid_request(FORM_EXPIRED));
    }
    Ok((rid, pending, client))
}

fn chooser_parts<'a>(rid: &'a str, browser: &'a str, session: &'a SessionRow) -> [&'a str; 4] {
    ["choose", rid, browser, &session.sid]
}

fn csrf_parts<'a>(rid: &'a str, browser: &'a str, session: Option<&'a SessionRow>) -> [&'a str; 4] {
    match session {
        None => ["sign-in", rid, browser, ""],
        Some(s) => ["consent", rid, browser, &s.sid],
    }
}

/// SHA-256 of a binding cookie, hex: what a pending request stores of it.
pub fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_token_depends_on_key_request_browser_and_session() {
        let key = CsrfKey::new(&[7; 32]);
        let token = |rid, browser, session| key.token(&csrf_parts(rid, browser, session));
        let a = token("rid1", "b1", None);
        assert_ne!(a, token("rid2", "b1", None));
        assert_ne!(a, token("rid1", "b2", None));
        assert_eq!(a, token("rid1", "b1", None));
        let other_key = CsrfKey::new(&[8; 32]);
        assert_ne!(a, other_key.token(&csrf_parts("rid1", "b1", None)));
        let session = |sid: &str| SessionRow {
            tenant_id: "t".into(),
            session_hash: TokenHash::of("cookie"),
            sid: sid.into(),
            user_sub: "u".into(),
            auth_time: 0,
            created_at: 0,
            expires_at: 1,
            revoked_at: None,
        };
        let (s1, s2) = (session("sid-1"), session("sid-2"));
        assert_ne!(a, token("rid1", "b1", Some(&s1)));
        assert_ne!(
            token("rid1", "b1", Some(&s1)),
            token("rid1", "b1", Some(&s2))
        );
    }
}
