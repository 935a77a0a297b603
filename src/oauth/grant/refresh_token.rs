//! The refresh token grant (RFC 6749 §6, OAuth 2.0 Security BCP §4.14):
//! refresh tokens rotate on use, and a used one presented again revokes its
//! whole family.

use super::{decision, target};
use crate::config::GrantType;
use crate::oauth::issue::{issue, new_refresh_token, Family, Issuance, Subject, TokenResponse};
use crate::oauth::scope::{default_decision, Decision, Scopes};
use crate::oauth::{Ctx, ErrorCode, OAuthError, Params};
use crate::store::{Rotation, TokenHash};
use crate::tenant::Client;

/// `grant_type=refresh_token`: rotate the refresh token, issue fresh tokens.
pub async fn exchange(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.require("refresh_token")?;
    let hash = TokenHash::of(presented);
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let row = ctx
        .store
        .find_refresh_token(&ctx.tenant.id, hash)
        .await?
        .ok_or_else(invalid)?;
    if row.client_id != client.id {
        return Err(invalid());
    }
    if row.used_at.is_some() && row.revoked_at.is_none() {
        // A rotated token came back: it was stolen or replayed. Revoke the family.
        tracing::warn!(event = "refresh.reuse_detected", tenant = %ctx.tenant.id, client_id = %client.id, sub = %row.user_sub, "refresh token replayed; revoking its family");
        ctx.store
            .revoke_grant(&ctx.tenant.id, &row.grant_id, ctx.now)
            .await?;
        return Err(invalid());
    }
    if row.revoked_at.is_some() || row.expires_at <= ctx.now || row.family_expires_at <= ctx.now {
        return Err(invalid());
    }
    if row.jkt.is_some() && row.jkt.as_deref() != jkt {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "the refresh token is bound to a DPoP key: send a proof made with that key",
        ));
    }
    // Downscoping (RFC 8707 §2.2): a token for one of the grant's resources.
    let resource = target(ctx.tenant, params.get("resource"), row.resource.as_deref())?;
    let original = Scopes::parse(&row.scope).unwrap_or_default();
    let requested = match params.get("scope") {
        None => original.clone(),
        Some(s) => {
            let s = Scopes::parse(s)
                .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))?;
            if !s.is_subset(&original) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh may not ask for scopes beyond the original grant",
                ));
            }
            s
        }
    };
    let grant = GrantType::RefreshToken;
    let default = default_decision(ctx.tenant, client, &requested, grant);
    if default.granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "no scope can be granted",
        ));
    }
    let user = ctx
        .tenant
        .user_by_sub(&row.user_sub)
        .cloned()
        .ok_or_else(invalid)?;
    // By default a refresh rotates: a successor is issued.
    let default = Decision {
        refresh_token: true,
        ..default
    };
    let decision = decision(ctx, client, Some(&user), &requested, grant, default, true).await?;
    // The successor keeps the family's original scope, so a narrower refresh
    // does not shrink what later refreshes may ask for.
    let family = Family {
        grant_id: &row.grant_id,
        user_sub: &row.user_sub,
        auth_time: row.auth_time,
        expires_at: row.family_expires_at,
        jkt: row.jkt.as_deref(),
        resource: row.resource.as_deref(),
        sid: row.sid.as_deref(),
    };
    let successor = decision.refresh_token.then(|| {
        new_refresh_token(
            ctx,
            client,
            &decision.shortened,
            &family,
            &row.scope,
            Some(hash),
        )
    });
    let (response, issued) = issue(
        ctx,
        Issuance {
            client,
            subject: Subject::User(&user),
            grant,
            requested: &requested,
            granted: &decision.granted,
            grant_id: &row.grant_id,
            auth_time: row.auth_time,
            nonce: None,
            sid: row.sid.as_deref(),
            refresh: successor,
            shortened: decision.shortened,
            jkt,
            resource,
        },
    )
    .await?;
    match ctx
        .store
        .rotate_refresh_token(&ctx.tenant.id, hash, issued, ctx.now)
        .await?
    {
        Rotation::Rotated => {
            tracing::info!(
                event = "refresh.rotated",
                tenant = %ctx.tenant.id,
                client_id = %client.id,
                sub = %row.user_sub,
                spent = %crate::oauth::log_id(presented),
                successor = response.refresh_token.as_deref().map(crate::oauth::log_id),
                "refresh token rotated"
            );
            Ok(response)
        }
        Rotation::AlreadyUsed => {
            tracing::warn!(event = "refresh.reuse_detected", tenant = %ctx.tenant.id, client_id = %client.id, sub = %row.user_sub, "refresh token used twice; revoking its family");
            ctx.store
                .revoke_grant(&ctx.tenant.id, &row.grant_id, ctx.now)
                .await?;
            Err(invalid())
        }
        Rotation::NotFound => Err(invalid()),
    }
}
