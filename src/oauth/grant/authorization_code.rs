//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6): a code
//! is spent once, by its client, with its redirect URI and verifier.

use super::{decision, target};
use crate::config::GrantType;
use crate::oauth::issue::{issue, new_refresh_token, Family, Issuance, Subject, TokenResponse};
use crate::oauth::scope::{Decision, Scopes};
use crate::oauth::{pkce, Ctx, ErrorCode, OAuthError, Params};
use crate::plugin::Shortened;
use crate::store::{CodeConsumption, CodeRow, TokenHash};
use crate::tenant::Client;

/// `grant_type=authorization_code`: spend the code, issue its tokens.
pub async fn exchange(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let code = params.require("code")?;
    let redirect_uri = params.get("redirect_uri");
    if redirect_uri.is_none() && client.redirect_uris.len() != 1 {
        return Err(OAuthError::invalid_request("redirect_uri is required"));
    }
    let hash = TokenHash::of(code);
    let row = match ctx.store.find_code(&ctx.tenant.id, hash).await? {
        Some(row) if row.consumed_at.is_some() => return Err(code_replayed(ctx, &row).await),
        Some(row) => row,
        None => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is invalid",
            ))
        }
    };
    if row.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if row.expires_at <= ctx.now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if redirect_uri.is_none() && row.redirect_uri_sent {
        return Err(OAuthError::invalid_request(
            "redirect_uri is required: the authorization request sent one",
        ));
    }
    if redirect_uri.is_some_and(|r| r != row.redirect_uri) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&row.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify(challenge, verifier) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but the authorization request had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    let user = ctx
        .tenant
        .user_by_sub(&row.user_sub)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
    if row.dpop_jkt.is_some() && row.dpop_jkt.as_deref() != jkt {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "the code is bound to a DPoP key (dpop_jkt): send a proof made with that key",
        ));
    }
    let resource = target(ctx.tenant, params.get("resource"), row.resource.as_deref())?;
    let scopes = Scopes::parse(&row.scope).unwrap_or_default();
    let grant = GrantType::AuthorizationCode;
    let default = Decision {
        granted: scopes.clone(),
        refresh_token: row.refresh_token,
        shortened: Shortened::default(),
    };
    let decision = decision(ctx, client, Some(&user), &scopes, grant, default, true).await?;
    let family = Family {
        grant_id: &row.grant_id,
        user_sub: &row.user_sub,
        auth_time: row.auth_time,
        expires_at: ctx.now + client.lifetimes.refresh_token_family.as_secs() as i64,
        // A public client's refresh tokens are bound to its DPoP key (RFC
        // 9449 §5): nothing else proves who presents them.
        jkt: jkt.filter(|_| client.is_public()),
        resource: row.resource.as_deref(),
        sid: row.sid.as_deref(),
    };
    let refresh = decision.refresh_token.then(|| {
        new_refresh_token(
            ctx,
            client,
            &decision.shortened,
            &family,
            &decision.granted.to_string(),
            None,
        )
    });
    let (response, issued) = issue(
        ctx,
        Issuance {
            client,
            subject: Subject::User(&user),
            grant,
            requested: &scopes,
            granted: &decision.granted,
            grant_id: &row.grant_id,
            auth_time: row.auth_time,
            nonce: row.nonce.as_deref(),
            sid: row.sid.as_deref(),
            refresh,
            shortened: decision.shortened,
            jkt,
            resource,
        },
    )
    .await?;
    // The code is spent and the tokens written in one transaction; a request
    // that loses a race for the code is a replay.
    match ctx
        .store
        .consume_code(&ctx.tenant.id, hash, ctx.now, issued)
        .await?
    {
        CodeConsumption::Consumed => Ok(response),
        CodeConsumption::AlreadyUsed(row) => Err(code_replayed(ctx, &row).await),
        CodeConsumption::NotFound => Err(OAuthError::invalid_grant(
            "the authorization code is invalid",
        )),
    }
}

/// RFC 6749 §4.1.2: a code presented again revokes what it produced.
async fn code_replayed(ctx: &Ctx<'_>, row: &CodeRow) -> OAuthError {
    tracing::warn!(event = "code.replay_detected", tenant = %ctx.tenant.id, client_id = %row.client_id, sub = %row.user_sub, "authorization code replayed; revoking its grant");
    match ctx
        .store
        .revoke_grant(&ctx.tenant.id, &row.grant_id, ctx.now)
        .await
    {
        Ok(()) => OAuthError::invalid_grant("the authorization code was already used"),
        Err(e) => e.into(),
    }
}
