//! Bearer access token validation and the userinfo endpoint (OIDC Core §5.3).

use serde_json::{Map, Value};

use super::authorize::Ctx;
use super::scope::Scopes;
use super::token::user_claims;
use super::{ErrorCode, OAuthError};
use crate::jose::verify_jwt;
use crate::plugin::{run_claims, Hook, HookContext};
use crate::store::{AccessTokenRow, TokenHash};

/// A presented access token that is valid now.
#[derive(Debug)]
pub struct ValidToken {
    pub row: AccessTokenRow,
    /// The JWT's claims (empty for opaque tokens).
    pub claims: Map<String, Value>,
}

/// Check an access token of this tenant: signature (JWT) or lookup (opaque),
/// expiry, and revocation. Any failure is `invalid_token`, without detail.
pub async fn validate_access_token(ctx: &Ctx<'_>, token: &str) -> Result<ValidToken, OAuthError> {
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        )
    };
    if token.is_empty() || token.len() > 8192 {
        return Err(invalid());
    }
    let (hash, claims) = if token.matches('.').count() == 2 {
        let claims = verify_jwt(token, &ctx.tenant.keys).map_err(|_| invalid())?;
        let Value::Object(claims) = claims else {
            return Err(invalid());
        };
        if claims.get("iss").and_then(Value::as_str) != Some(ctx.tenant.issuer.as_str()) {
            return Err(invalid());
        }
        if claims.get("client_id").is_none() {
            // An ID token is not an access token.
            return Err(invalid());
        }
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        (TokenHash::of(jti), claims)
    } else {
        (TokenHash::of(token), Map::new())
    };
    let row = match ctx.store.find_access_token(&ctx.tenant.id, hash).await? {
        Some(row) => row,
        // A client-credentials JWT is recorded only once revoked.
        None => unrecorded_row(&ctx.tenant.id, &claims).ok_or_else(invalid)?,
    };
    if row.revoked_at.is_some() || row.expires_at <= ctx.now {
        return Err(invalid());
    }
    Ok(ValidToken { row, claims })
}

/// The row a client-credentials JWT access token would have, from its
/// (verified) claims; `None` for any other token. Such tokens are not
/// recorded when issued: they belong to no grant a replay could revoke, so
/// only their revocation needs a row. User tokens carry `auth_time` (a claim
/// no script can set) and are always recorded.
pub fn unrecorded_row(tenant_id: &str, claims: &Map<String, Value>) -> Option<AccessTokenRow> {
    if claims.contains_key("auth_time") {
        return None;
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let (client_id, jti) = (text("client_id")?, text("jti")?);
    if text("sub")? != client_id {
        return None;
    }
    Some(AccessTokenRow {
        tenant_id: tenant_id.to_string(),
        token_hash: TokenHash::of(jti),
        grant_id: jti.to_string(),
        client_id: client_id.to_string(),
        user_sub: None,
        scope: text("scope")?.to_string(),
        jwt: true,
        created_at: claims.get("iat").and_then(Value::as_i64)?,
        expires_at: claims.get("exp").and_then(Value::as_i64)?,
        revoked_at: None,
    })
}

/// `GET|POST /userinfo`: the user's claims for the token's scopes.
pub async fn userinfo(ctx: &Ctx<'_>, token: &str) -> Result<Value, OAuthError> {
    let valid = validate_access_token(ctx, token).await?;
    let scopes = Scopes::parse(&valid.row.scope).unwrap_or_default();
    if !scopes.contains("openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the token lacks the openid scope",
        ));
    }
    let user = valid
        .row
        .user_sub
        .as_deref()
        .and_then(|sub| ctx.tenant.user_by_sub(sub))
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "the token is not about a user"))?;
    let mut claims = user_claims(ctx.tenant, user, &scopes);
    if let Some(client) = ctx.tenant.client(&valid.row.client_id) {
        let hook_ctx = HookContext {
            tenant: ctx.tenant,
            client,
            user: Some(user),
            requested: scopes.as_vec(),
            granted: scopes.as_vec(),
            grant_type: None,
            ip: ctx.request.ip,
            user_agent: ctx.request.user_agent,
            now: ctx.now,
        };
        run_claims(Hook::UserinfoClaims, &hook_ctx)
            .map_err(|e| OAuthError::from_plugin(e, None))?
            .apply(&mut claims, &[]);
    }
    Ok(Value::Object(claims))
}
