//! Token introspection (RFC 7662) and revocation (RFC 7009).

use serde_json::{json, Map, Value};

use super::authorize::Ctx;
use super::client_auth::{self, Presented};
use super::scope::Scopes;
use super::userinfo::{unrecorded_row, validate_access_token};
use super::{OAuthError, Params};
use crate::jose::verify_jwt;
use crate::plugin::{run_claims, Claims, Hook, HookContext, REGISTERED_CLAIMS};
use crate::store::{AccessTokenRow, TokenHash};

/// `POST /introspect`: `{"active": false}` for anything unknown, expired,
/// revoked or of another tenant, with no other detail.
pub async fn introspect(
    ctx: &Ctx<'_>,
    params: &Params,
    presented: Presented,
) -> Result<Value, OAuthError> {
    let client = client_auth::authenticate(ctx.tenant, presented).await?;
    if client.is_public() {
        // Only confidential clients (resource servers) may introspect.
        return Err(OAuthError::invalid_client());
    }
    let token = params.require("token")?;
    let inactive = json!({ "active": false });
    if token.len() > 8192 {
        return Ok(inactive);
    }
    let hint = params.get("token_type_hint");
    let access_first = hint != Some("refresh_token");
    for kind in if access_first { [0, 1] } else { [1, 0] } {
        let found = if kind == 0 {
            access_token_info(ctx, token).await?
        } else {
            refresh_token_info(ctx, token).await?
        };
        if let Some(v) = found {
            return Ok(v);
        }
    }
    Ok(inactive)
}

async fn access_token_info(ctx: &Ctx<'_>, token: &str) -> Result<Option<Value>, OAuthError> {
    let valid = match validate_access_token(ctx, token).await {
        Ok(v) => v,
        Err(e) if e.code == super::ErrorCode::InvalidToken => return Ok(None),
        Err(e) => return Err(e),
    };
    let row = valid.row;
    let mut out = json!({
        "active": true,
        "token_type": "Bearer",
        "scope": row.scope,
        "client_id": row.client_id,
        "sub": row.user_sub.clone().unwrap_or_else(|| row.client_id.clone()),
        "iss": ctx.tenant.issuer,
        "aud": ctx.tenant.issuer,
        "iat": row.created_at,
        "exp": row.expires_at,
    });
    if let Some(user) = row
        .user_sub
        .as_deref()
        .and_then(|s| ctx.tenant.user_by_sub(s))
    {
        out["username"] = json!(user.username);
    }
    if let Some(jti) = valid.claims.get("jti") {
        out["jti"] = jti.clone();
    }
    if let Some(at) = valid.claims.get("auth_time") {
        out["auth_time"] = at.clone();
    }
    if let Value::Object(map) = &mut out {
        if valid.claims.is_empty() {
            // Opaque: the access_token_claims hooks answer now.
            plugin_claims(ctx, &row)?.apply(map, INTROSPECTION_FIELDS);
        } else {
            // JWT: what the hooks put in the token when it was issued.
            for (name, v) in valid.claims {
                if !REGISTERED_CLAIMS.contains(&name.as_str())
                    && !INTROSPECTION_FIELDS.contains(&name.as_str())
                {
                    map.insert(name, v);
                }
            }
        }
    }
    Ok(Some(out))
}

/// Introspection members no script claim may replace.
const INTROSPECTION_FIELDS: &[&str] = &["active", "token_type", "username"];

/// The `access_token_claims` of an opaque token's grant, computed at introspection.
fn plugin_claims(ctx: &Ctx<'_>, row: &AccessTokenRow) -> Result<Claims, OAuthError> {
    let Some(client) = ctx.tenant.client(&row.client_id) else {
        return Ok(Claims::default());
    };
    let user = row
        .user_sub
        .as_deref()
        .and_then(|s| ctx.tenant.user_by_sub(s));
    let scopes = Scopes::parse(&row.scope).unwrap_or_default();
    let hook_ctx = HookContext {
        tenant: ctx.tenant,
        client,
        user: user.map(|u| &**u),
        requested: scopes.as_vec(),
        granted: scopes.as_vec(),
        grant_type: None,
        ip: ctx.request.ip,
        user_agent: ctx.request.user_agent,
        now: ctx.now,
    };
    run_claims(Hook::AccessTokenClaims, &hook_ctx).map_err(|e| OAuthError::from_plugin(e, None))
}

async fn refresh_token_info(ctx: &Ctx<'_>, token: &str) -> Result<Option<Value>, OAuthError> {
    let Some(row) = ctx
        .store
        .find_refresh_token(&ctx.tenant.id, TokenHash::of(token))
        .await?
    else {
        return Ok(None);
    };
    if row.used_at.is_some() || row.revoked_at.is_some() || row.expires_at <= ctx.now {
        return Ok(None);
    }
    let mut out = json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": row.scope,
        "client_id": row.client_id,
        "sub": row.user_sub,
        "iss": ctx.tenant.issuer,
        "iat": row.created_at,
        "exp": row.expires_at,
        "auth_time": row.auth_time,
    });
    if let Some(user) = ctx.tenant.user_by_sub(&row.user_sub) {
        out["username"] = json!(user.username);
    }
    Ok(Some(out))
}

/// `POST /revoke`: revoking a refresh token revokes its whole family (and the
/// access tokens issued from it); revoking an access token revokes it alone.
/// Unknown tokens, and tokens of other clients, are ignored (still 200).
pub async fn revoke(
    ctx: &Ctx<'_>,
    params: &Params,
    presented: Presented,
) -> Result<(), OAuthError> {
    let client = client_auth::authenticate(ctx.tenant, presented).await?;
    let token = params.require("token")?;
    if token.len() > 8192 {
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
            tracing::info!(tenant = %ctx.tenant.id, client = %client.id, "refresh token family revoked");
        }
        return Ok(());
    }
    let (hash, claims) = if token.matches('.').count() == 2 {
        match verify_jwt(token, &ctx.tenant.keys) {
            Ok(Value::Object(claims)) => match claims.get("jti").and_then(Value::as_str) {
                Some(jti) => (TokenHash::of(jti), claims),
                None => return Ok(()),
            },
            _ => return Ok(()),
        }
    } else {
        (TokenHash::of(token), Map::new())
    };
    match ctx.store.find_access_token(&ctx.tenant.id, hash).await? {
        Some(row) if row.client_id == client.id => {
            ctx.store
                .revoke_access_token(&ctx.tenant.id, hash, ctx.now)
                .await?;
        }
        Some(_) => return Ok(()),
        None => match unrecorded_row(&ctx.tenant.id, &claims) {
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
    tracing::info!(tenant = %ctx.tenant.id, client = %client.id, "access token revoked");
    Ok(())
}
