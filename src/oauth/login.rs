//! Password sign-in for a pending authorization request (`GET|POST /login`).
//! Failures are throttled (see [`super::throttle`]): every password check is
//! reserved first, and while the username or the client's address is locked
//! (or all its places are taken by checks under way) the form comes back
//! locked, without a look at the password.
//!
//! A successful sign-in answers 303 to `GET /consent?rid=…&t=…`
//! ([`after_sign_in`]), which shows the consent page or goes on to the
//! client: reloading it never posts the password again. `t` vouches that
//! the session was just started (or chosen) for this request.

use super::authorize::{proceed, Interaction, Stage, MAX_PARAM_LEN};
use super::outcome::{ChooserView, LoginView, Notice, Outcome, Page};
use super::pending::{self, Pending};
use super::session::{self, BrowserCookies};
use super::throttle::{Attempt, Throttle};
use super::{password, Ctx, OAuthError, Params};
use crate::metrics::SignIn;
use crate::store::SessionRow;
use crate::tenant::Client;

/// `GET /login?rid=…`: show the form — or, for `prompt=select_account`
/// with a session (and no `other=1`), the account chooser.
pub async fn login_page(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
    let rid = params.get("rid");
    let (pending, client) = match pending::load(ctx, rid, cookies).await {
        Ok(p) => p,
        Err(e) => return Outcome::error_page(e),
    };
    let rid = rid.unwrap_or_default();
    if pending.prompts("select_account") && params.get("other").is_none() {
        let session = match session::current(ctx, cookies).await {
            Ok(s) => s,
            Err(e) => return Outcome::error_page(e),
        };
        let user = session
            .as_ref()
            .and_then(|s| ctx.tenant.user_by_sub(&s.user_sub).map(|u| (s, u)));
        if let Some((session, user)) = user {
            return Outcome::page(Page::AccountChooser(ChooserView {
                csrf: pending.chooser_csrf(&ctx.services.csrf_key, rid, session),
                rid: rid.to_string(),
                client_id: client.id.clone(),
                client_name: client.name.clone(),
                username: user.username.clone(),
                ui_locales: pending.ui_locales.clone(),
            }));
        }
    }
    let username = pending.login_hint.clone().unwrap_or_default();
    form(ctx, &pending, &client, rid, username, None)
}

/// `GET /consent?rid=…&t=…`, where a sign-in sends the browser: the
/// request goes on as signed in when `t` vouches for the session, else as
/// if it had just arrived (sign-in again if it must).
pub async fn after_sign_in(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
    let rid = params.get("rid");
    let (pending, client) = match pending::load(ctx, rid, cookies).await {
        Ok(p) => p,
        Err(e) => return Outcome::error_page(e),
    };
    let rid = rid.unwrap_or_default().to_string();
    let session = match session::current(ctx, cookies).await {
        Ok(s) => s,
        Err(e) => return Outcome::error_page(e),
    };
    let vouched = session.as_ref().is_some_and(|s| {
        let parts = signed_in_parts(&rid, s);
        ctx.services.csrf_key.verify(&parts, params.get("t"))
    });
    let step = Interaction {
        client: &client,
        pending,
        rid: Some(rid),
        session,
        stage: if vouched {
            Stage::SignedIn
        } else {
            Stage::Arrived
        },
    };
    proceed(ctx, step).await
}

fn signed_in_parts<'a>(rid: &'a str, session: &'a SessionRow) -> [&'a str; 3] {
    ["signed-in", rid, &session.sid]
}

/// 303 to [`after_sign_in`] for `session`, just started or chosen.
fn onwards(ctx: &Ctx<'_>, rid: &str, session: &SessionRow) -> Outcome {
    let t = ctx.services.csrf_key.token(&signed_in_parts(rid, session));
    let mut url = ctx.tenant.endpoint("/consent");
    url.push_str("?rid=");
    url.push_str(rid);
    url.push_str("&t=");
    url.push_str(&t);
    Outcome::redirect(url)
}

/// `POST /login` with `account=current`: the chooser's "continue as".
async fn continue_as_current(ctx: &Ctx<'_>, form: &Params, cookies: &BrowserCookies) -> Outcome {
    let session = match session::current(ctx, cookies).await {
        Ok(Some(s)) => s,
        Ok(None) => return Outcome::error_page(OAuthError::invalid_request(pending::EXPIRED)),
        Err(e) => return Outcome::error_page(e),
    };
    match pending::chosen(ctx, form, cookies, &session).await {
        Ok((rid, _, _)) => onwards(ctx, &rid, &session),
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
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        username,
        notice,
        ui_locales: pending.ui_locales.clone(),
    }))
}

/// `POST /login`: check the CSRF token and the password, start a session, go on.
pub async fn login_submit(
    ctx: &Ctx<'_>,
    form_params: &Params,
    cookies: &BrowserCookies,
) -> Outcome {
    if form_params.get("account") == Some("current") {
        return continue_as_current(ctx, form_params, cookies).await;
    }
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
    // passwords into that field. An email address counts as its user's
    // name, for the log and the throttle.
    let user = ctx.tenant.user_for_login(username).cloned();
    let known = user.is_some();
    let account = user
        .as_ref()
        .map_or_else(|| username.to_string(), |u| u.username.clone());
    let account = account.as_str();
    let shown_name = if known { account } else { "(unknown)" };
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
    let throttle = Throttle::login(ctx, account);
    let reservation = match throttle.reserve().await {
        Ok(Attempt::Reserved(r)) => r,
        Ok(Attempt::Locked(seconds)) => return locked(seconds),
        Err(e) => return Outcome::error_page(e),
    };
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
    onwards(ctx, &rid, &session).with(Some(cookie))
}
