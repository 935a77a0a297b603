//! The browser session (SSO), end to end: which browser this is (the
//! binding cookie), who is signed in (the session cookie, whose SHA-256 keys
//! the session row), starting a session at sign-in (rotating away any
//! previous one), and ending it at logout. The edge only reads and writes
//! the cookies this module asks for ([`Cookie`]).
//!
//! Every session also has a stable public id, `sid` (random, unrelated to
//! the cookie value): the name other parties may use for it (OpenID
//! back-channel logout, revocation by session) without holding a credential.

use super::outcome::Cookie;
use super::{random_token, Ctx, OAuthError};
use crate::store::{EndedSession, SessionRow, TokenHash};
use crate::tenant::User;

/// Longest cookie value looked up; longer ones are no session of ours.
const MAX_COOKIE_LEN: usize = 128;

/// The browser's sesame cookies for this tenant, as sent.
#[derive(Debug, Default, Clone)]
pub struct BrowserCookies {
    /// Random value binding pending requests to this browser.
    pub binding: Option<String>,
    /// The session cookie.
    pub session: Option<String>,
}

impl BrowserCookies {
    /// This browser's binding value, and the cookie to set if it had none.
    pub fn binding(&self) -> (String, Option<Cookie>) {
        match &self.binding {
            Some(b) => (b.clone(), None),
            None => {
                let b = random_token();
                (b.clone(), Some(Cookie::SetBinding(b)))
            }
        }
    }

    fn session_hash(&self) -> Option<TokenHash> {
        self.session
            .as_deref()
            .filter(|s| s.len() <= MAX_COOKIE_LEN)
            .map(TokenHash::of)
    }
}

/// The live session of this browser, if any.
pub async fn current(
    ctx: &Ctx<'_>,
    cookies: &BrowserCookies,
) -> Result<Option<SessionRow>, OAuthError> {
    match cookies.session_hash() {
        Some(hash) => Ok(ctx
            .store
            .find_session(&ctx.tenant.id, hash, ctx.now)
            .await?),
        None => Ok(None),
    }
}

/// Start a session for `user`, who just signed in: the browser's previous
/// session (if any) ends, so a session cookie never outlives a sign-in.
pub async fn start(
    ctx: &Ctx<'_>,
    user: &User,
    cookies: &BrowserCookies,
) -> Result<(SessionRow, Cookie), OAuthError> {
    if let Some(old) = cookies.session_hash() {
        if let Err(e) = end_by_hash(ctx, old).await {
            tracing::warn!(error = %e, "could not end the previous session");
        }
    }
    let value = random_token();
    let lifetime = ctx.tenant.lifetimes.session.as_secs();
    let row = SessionRow {
        tenant_id: ctx.tenant.id.clone(),
        session_hash: TokenHash::of(&value),
        sid: random_token(),
        user_sub: user.sub.clone(),
        auth_time: ctx.now,
        created_at: ctx.now,
        expires_at: ctx.now + lifetime as i64,
        revoked_at: None,
    };
    ctx.store.insert_session(row.clone()).await?;
    tracing::info!(event = "session.started", tenant = %ctx.tenant.id, sub = %user.sub, sid = %row.sid, "session started");
    let cookie = Cookie::SetSession {
        value,
        max_age: lifetime,
    };
    Ok((row, cookie))
}

/// End this browser's session (logout): the cookie to clear (whether or not
/// a session was live), and the session ended, with the clients it signed
/// in to (each with a `backchannel_logout_uri` is sent a logout token).
pub async fn end(
    ctx: &Ctx<'_>,
    cookies: &BrowserCookies,
) -> Result<(Cookie, Option<EndedSession>), OAuthError> {
    let ended = match cookies.session_hash() {
        Some(hash) => end_by_hash(ctx, hash).await?,
        None => None,
    };
    if let Some(s) = &ended {
        tracing::info!(event = "logout", tenant = %ctx.tenant.id, sub = %s.user_sub, sid = %s.sid, clients = s.clients.len(), "signed out");
    }
    Ok((Cookie::ClearSession, ended))
}

/// End the session with this cookie hash, queueing its back-channel
/// logouts (and waking this node's delivery if there are any).
async fn end_by_hash(ctx: &Ctx<'_>, hash: TokenHash) -> Result<Option<EndedSession>, OAuthError> {
    let notify = ctx.tenant.backchannel_clients();
    let ended = ctx
        .store
        .end_session(&ctx.tenant.id, hash, ctx.now, notify.clone())
        .await?;
    let queued = ended.as_ref().map_or(0, |s| {
        s.clients.iter().filter(|c| notify.contains(c)).count()
    });
    if queued > 0 {
        for _ in 0..queued {
            ctx.services
                .metrics
                .backchannel_logout(&ctx.tenant.id, "queued");
        }
        ctx.services.logout_outbox.notify_one();
    }
    Ok(ended)
}
