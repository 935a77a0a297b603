//! Password sign-in for a pending authorization request (`GET|POST /login`).
//! Failures are throttled (see [`super::throttle`]): every password check is
//! reserved first, and while the username or the client's address is locked
//! (or all its places are taken by checks under way) the form comes back
//! locked, without a look at the password.

use super::authorize::{proceed, Interaction, Stage, MAX_PARAM_LEN};
use super::outcome::{LoginView, Notice, Outcome, Page};
use super::pending::{self, Pending};
use super::session::{self, BrowserCookies};
use super::throttle::{Attempt, Throttle};
use super::{password, Ctx, Params};
use crate::metrics::SignIn;
use crate::tenant::Client;

/// `GET /login?rid=…`: show the form.
pub async fn login_page(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
    let rid = params.get("rid");
    match pending::load(ctx, rid, cookies).await {
        Ok((pending, client)) => {
            let rid = rid.unwrap_or_default();
            let username = pending.login_hint.clone().unwrap_or_default();
            form(ctx, &pending, &client, rid, username, None)
        }
        Err(e) => Outcome::error_page(e),
    }
}

fn form(
    ctx: &Ctx<'_>,
    pending: &Pending,
    client: &Client,
    rid: &str,
    username: String,
    notice: Option<Notice>,
) -> Outcome {
    Outcome::page(Page::Login(LoginView {
        csrf: pending.csrf(&ctx.services.csrf_key, rid, None),
        rid: rid.to_string(),
        client_name: client.name.clone(),
        username,
        notice,
    }))
}

/// `POST /login`: check the CSRF token and the password, start a session, go on.
pub async fn login_submit(
    ctx: &Ctx<'_>,
    form_params: &Params,
    cookies: &BrowserCookies,
) -> Outcome {
    let (rid, pending, client) = match pending::submitted(ctx, form_params, cookies, None).await {
        Ok(p) => p,
        Err(e) => return Outcome::error_page(e),
    };
    let username = form_params.get("username").unwrap_or("");
    let password = form_params.get("password").unwrap_or("");
    let again = |notice: Notice| {
        let shown = username.chars().take(256).collect();
        form(ctx, &pending, &client, &rid, shown, Some(notice))
    };
    // The username is logged only when it names a user: people type
    // passwords into that field.
    let known = ctx.tenant.user(username).is_some();
    let shown_name = if known { username } else { "(unknown)" };
    let failed = |reason: SignIn| {
        ctx.services.metrics.signin(&ctx.tenant.id, reason);
        tracing::info!(
            event = "signin.failed",
            tenant = %ctx.tenant.id,
            client_id = %client.id,
            username = shown_name,
            reason = reason.as_str(),
            ip = ctx.request.ip.map(|ip| ip.to_string()),
            "{}",
            if reason == SignIn::Locked {
                "sign-in refused while locked (password not checked)"
            } else {
                "failed login"
            }
        );
    };
    let locked = |retry_after: u64| {
        failed(SignIn::Locked);
        again(Notice::Locked { retry_after })
    };
    let throttle = Throttle::login(ctx, username);
    let reservation = match throttle.reserve().await {
        Ok(Attempt::Reserved(r)) => r,
        Ok(Attempt::Locked(seconds)) => return locked(seconds),
        Err(e) => return Outcome::error_page(e),
    };
    let user = ctx.tenant.user(username).cloned();
    // Unknown users cost the same as wrong passwords.
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::DUMMY_PHC.to_string());
    let verified =
        password::verify_bounded(&ctx.services.kdf, password.as_bytes().to_vec(), phc).await;
    let user = match user {
        Some(u) if verified && username.len() <= MAX_PARAM_LEN => u,
        _ => {
            let reason = if known {
                SignIn::BadPassword
            } else {
                SignIn::UnknownUser
            };
            failed(reason);
            if let Some(seconds) = reservation.failed().await {
                return locked(seconds);
            }
            return again(Notice::BadCredentials);
        }
    };
    // A lockout that landed while the password was checked wins.
    match reservation.succeeded().await {
        Ok(None) => {}
        Ok(Some(seconds)) => return locked(seconds),
        Err(e) => return Outcome::error_page(e),
    }

    ctx.services.metrics.signin(&ctx.tenant.id, SignIn::Success);
    tracing::info!(
        event = "signin.succeeded",
        tenant = %ctx.tenant.id,
        client_id = %client.id,
        username = %user.username,
        sub = %user.sub,
        ip = ctx.request.ip.map(|ip| ip.to_string()),
        "signed in"
    );
    let (session, cookie) = match session::start(ctx, &user, cookies).await {
        Ok(s) => s,
        Err(e) => return Outcome::error_page(e),
    };
    let step = Interaction {
        client: &client,
        pending,
        rid: Some(rid),
        session: Some(session),
        stage: Stage::SignedIn,
    };
    proceed(ctx, step).await.with(Some(cookie))
}
