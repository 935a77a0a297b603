//! Token revocation (RFC 7009).

use super::access_token::{self, MAX_TOKEN_LEN};
use super::client_auth;
use super::{Credentials, Ctx, OAuthError, Params};
use crate::store::{AccessTokenRow, TokenHash};

/// `POST /revoke`: revoking a refresh token revokes its whole family (and the
/// access tokens issued from it); revoking an access token revokes it alone.
/// Unknown tokens, and tokens of other clients, are ignored (still 200).
pub async fn revoke(
    ctx: &Ctx<'_>,
    params: &Params,
    credentials: Credentials,
) -> Result<(), OAuthError> {
    let client = client_auth::authenticate(ctx, credentials).await?;
    let token = params.require("token")?;
    if token.len() > MAX_TOKEN_LEN {
        return Ok(());
    }
    if let Some(row) = ctx
        .store
        .find_refresh_token(&ctx.tenant.id, TokenHash::of(token))
        .await?
    {
        if row.client_id == client.id {
            ctx.store
                .revoke_grant(&ctx.tenant.id, &row.grant_id, ctx.now)
                .await?;
            tracing::info!(event = "token.revoked", tenant = %ctx.tenant.id, client_id = %client.id, token = %super::log_id(token), kind = "refresh_token", "refresh token family revoked");
        }
        return Ok(());
    }
    let Some((hash, claims)) = access_token::locate(ctx, token) else {
        return Ok(());
    };
    match ctx.store.find_access_token(&ctx.tenant.id, hash).await? {
        // Only the kind of token the row records (see `access_token::validate`).
        Some(row) if row.client_id == client.id && row.jwt != claims.is_empty() => {
            ctx.store
                .revoke_access_token(&ctx.tenant.id, hash, ctx.now)
                .await?;
        }
        Some(_) => return Ok(()),
        None => match access_token::unrecorded_row(ctx.tenant, &claims) {
            Some(row) if row.client_id == client.id && row.expires_at > ctx.now => {
                ctx.store
                    .insert_revoked_access_token(AccessTokenRow {
                        revoked_at: Some(ctx.now),
                        ..row
                    })
                    .await?;
            }
            _ => return Ok(()),
        },
    }
    tracing::info!(event = "token.revoked", tenant = %ctx.tenant.id, client_id = %client.id, token = %super::log_id(token), kind = "access_token", "access token revoked");
    Ok(())
}
