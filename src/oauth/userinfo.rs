//! The userinfo endpoint (OIDC Core §5.3).

use serde_json::Value;

use super::access_token::{self, Bearer};
use super::hook;
use super::issue::user_claims;
use super::scope::Scopes;
use super::{Ctx, ErrorCode, OAuthError};
use crate::plugin::Hook;
use crate::store::AccessTokenRow;

/// `GET|POST /userinfo`: the user's claims for the token's scopes.
pub async fn userinfo(ctx: &Ctx<'_>, presented: Bearer) -> Result<Value, OAuthError> {
    let dpop = presented.dpop;
    let token = presented.token()?;
    let valid = access_token::validate(ctx, &token).await?;
    access_token::check_binding(ctx, &valid, &token, dpop).await?;
    answer(ctx, &valid.row).await
}

/// The answer for a valid access token, from its row.
pub async fn answer(ctx: &Ctx<'_>, row: &AccessTokenRow) -> Result<Value, OAuthError> {
    let scopes = Scopes::parse(&row.scope).unwrap_or_default();
    if !scopes.contains("openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the token lacks the openid scope",
        ));
    }
    let user = row
        .user_sub
        .as_deref()
        .and_then(|sub| ctx.tenant.user_by_sub(sub))
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "the token is not about a user"))?;
    let mut claims = user_claims(ctx.tenant, user, &scopes);
    if let Some(client) = ctx.tenant.client(&row.client_id) {
        let hook_ctx = ctx.hooks(client, Some(user), &scopes, &scopes, None);
        hook::claims(ctx, Hook::UserinfoClaims, &hook_ctx)
            .await
            .map_err(|e| OAuthError::from_plugin(e, None))?
            .apply(&mut claims, &[]);
    }
    Ok(Value::Object(claims))
}
