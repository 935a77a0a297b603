//! Token introspection (RFC 7662).

use serde_json::{json, Value};

use super::access_token::{self, ValidToken, MAX_TOKEN_LEN};
use super::client_auth;
use super::hook;
use super::scope::Scopes;
use super::{Credentials, Ctx, OAuthError, Params};
use crate::plugin::{Claims, Hook, REGISTERED_CLAIMS};
use crate::store::{AccessTokenRow, TokenHash};
use crate::tenant::Client;

/// `POST /introspect`: `{"active": false}` for anything unknown, expired,
/// revoked or of another tenant, and for tokens the caller may not see, with
/// no other detail. A client sees its own tokens; a declared resource server
/// (`resource_servers`) also sees the access tokens carrying one of its
/// scopes. Refresh tokens are shown to their own client only.
pub async fn introspect(
    ctx: &Ctx<'_>,
    params: &Params,
    credentials: Credentials,
) -> Result<Value, OAuthError> {
    let client = client_auth::authenticate(ctx, credentials).await?;
    if client.is_public() {
        // Only confidential clients (resource servers) may introspect.
        return Err(OAuthError::invalid_client());
    }
    let token = params.require("token")?;
    let inactive = json!({ "active": false });
    if token.len() > MAX_TOKEN_LEN {
        return Ok(inactive);
    }
    let hint = params.get("token_type_hint");
    let access_first = hint != Some("refresh_token");
    for kind in if access_first { [0, 1] } else { [1, 0] } {
        let found = if kind == 0 {
            access_token_info(ctx, &client, token).await?
        } else {
            refresh_token_info(ctx, &client, token).await?
        };
        if let Some(v) = found {
            return Ok(v);
        }
    }
    Ok(inactive)
}

async fn access_token_info(
    ctx: &Ctx<'_>,
    caller: &Client,
    token: &str,
) -> Result<Option<Value>, OAuthError> {
    let valid = match access_token::validate(ctx, token).await {
        Ok(v) => v,
        Err(e) if e.code == super::ErrorCode::InvalidToken => return Ok(None),
        Err(e) => return Err(e),
    };
    let row = &valid.row;
    // A token issued for a resource (RFC 8707) is that resource's alone;
    // any other is seen by the resource servers that accept its scopes.
    let for_caller = row.client_id == caller.id
        || ctx
            .tenant
            .resource_server(&caller.id)
            .is_some_and(|rs| match &row.audience {
                Some(aud) => *aud == rs.identifier,
                None => rs.accepts(&row.scope),
            });
    if !for_caller {
        return Ok(None);
    }
    // The configuration generation that issued it, for its own client only.
    let generation =
        (row.client_id == caller.id && !row.generation.is_empty()).then(|| row.generation.clone());
    let mut answer = access_token_answer(ctx, valid).await?;
    if let Some(g) = generation {
        answer["generation"] = json!(g);
    }
    Ok(Some(answer))
}

/// The answer about a valid access token, for a caller allowed to see it.
pub async fn access_token_answer(ctx: &Ctx<'_>, valid: ValidToken) -> Result<Value, OAuthError> {
    let row = valid.row;
    let mut out = json!({
        "active": true,
        "token_type": if row.jkt.is_some() { "DPoP" } else { "Bearer" },
        "scope": row.scope,
        "client_id": row.client_id,
        "sub": row.user_sub.clone().unwrap_or_else(|| row.client_id.clone()),
        "iss": ctx.tenant.issuer,
        "aud": row.audience.as_deref().unwrap_or(&ctx.tenant.issuer),
        "iat": row.created_at,
        "exp": row.expires_at,
    });
    // RFC 9449 §6.2: the key the resource must see a proof of.
    if let Some(jkt) = &row.jkt {
        out["cnf"] = json!({ "jkt": jkt });
    }
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
            plugin_claims(ctx, &row)
                .await?
                .apply(map, INTROSPECTION_FIELDS);
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
    Ok(out)
}

/// Introspection members no script claim may replace.
const INTROSPECTION_FIELDS: &[&str] = &["active", "token_type", "username", "generation"];

/// The `access_token_claims` of an opaque token's grant, computed at introspection.
async fn plugin_claims(ctx: &Ctx<'_>, row: &AccessTokenRow) -> Result<Claims, OAuthError> {
    let Some(client) = ctx.tenant.client(&row.client_id) else {
        return Ok(Claims::default());
    };
    let user = row
        .user_sub
        .as_deref()
        .and_then(|s| ctx.tenant.user_by_sub(s));
    let scopes = Scopes::parse(&row.scope).unwrap_or_default();
    let hook_ctx = ctx.hooks(client, user.map(|u| &**u), &scopes, &scopes, None);
    hook::claims(ctx, Hook::AccessTokenClaims, &hook_ctx)
        .await
        .map_err(|e| OAuthError::from_plugin(e, None))
}

async fn refresh_token_info(
    ctx: &Ctx<'_>,
    caller: &Client,
    token: &str,
) -> Result<Option<Value>, OAuthError> {
    let Some(row) = ctx
        .store
        .find_refresh_token(&ctx.tenant.id, TokenHash::of(token))
        .await?
    else {
        return Ok(None);
    };
    if row.client_id != caller.id
        || row.used_at.is_some()
        || row.revoked_at.is_some()
        || row.expires_at <= ctx.now
    {
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
