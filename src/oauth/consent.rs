//! The consent decision for a pending authorization request (`POST /consent`):
//! allow → remember the scopes and go on to the code, deny → `access_denied`.

use super::authorize::{back_to_client, go_to_login, policy_decision, proceed, Interaction, Stage};
use super::outcome::Outcome;
use super::pending;
use super::scope::Scopes;
use super::session::{self, BrowserCookies};
use super::{Ctx, ErrorCode, OAuthError, Params};

/// `POST /consent`.
pub async fn consent_submit(ctx: &Ctx<'_>, form: &Params, cookies: &BrowserCookies) -> Outcome {
    // The consent form was made for one session: it answers for that one only.
    let session = match session::current(ctx, cookies).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return match pending::load(ctx, form.get("rid"), cookies).await {
                Ok(_) => go_to_login(ctx, form.get("rid").unwrap_or_default()),
                Err(e) => Outcome::error_page(e),
            }
        }
        Err(e) => return Outcome::error_page(e),
    };
    let (rid, pending, client) = match pending::submitted(ctx, form, cookies, Some(&session)).await
    {
        Ok(p) => p,
        Err(e) => return Outcome::error_page(e),
    };
    let deny = |e: OAuthError| back_to_client(ctx, &pending.reply_to(), e);
    match form.get("decision") {
        Some("allow") => {}
        Some("deny") => {
            pending::finish(ctx, &rid).await;
            tracing::info!(event = "consent.denied", tenant = %ctx.tenant.id, client_id = %client.id, sub = %session.user_sub, "consent denied");
            return deny(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            ));
        }
        _ => {
            return Outcome::error_page(OAuthError::invalid_request(
                "decision must be allow or deny",
            ))
        }
    }
    let requested = Scopes::parse(&pending.requested).unwrap_or_default();
    let user = ctx.tenant.user_by_sub(&session.user_sub);
    let decision = match policy_decision(ctx, &client, user.map(|u| &**u), &requested).await {
        Ok(d) => d,
        Err(e) => return deny(e),
    };
    let previous = match ctx
        .store
        .find_consent(&ctx.tenant.id, &client.id, &session.user_sub)
        .await
    {
        Ok(p) => p.and_then(|s| Scopes::parse(&s)).unwrap_or_default(),
        Err(e) => return deny(e.into()),
    };
    let remembered = previous
        .union(&decision.granted)
        .filter(|s| s != "offline_access");
    if let Err(e) = ctx
        .store
        .save_consent(
            &ctx.tenant.id,
            &client.id,
            &session.user_sub,
            &remembered.to_string(),
            ctx.now,
        )
        .await
    {
        return deny(e.into());
    }
    tracing::info!(event = "consent.granted", tenant = %ctx.tenant.id, client_id = %client.id, sub = %session.user_sub, scope = %decision.granted, "consent granted");
    let step = Interaction {
        client: &client,
        pending,
        rid: Some(rid),
        session: Some(session),
        stage: Stage::Consented,
    };
    proceed(ctx, step).await
}
