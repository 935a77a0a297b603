//! Access tokens as presented back to us: where one is recorded, and
//! whether it is valid now (userinfo, introspection, revocation).

use serde_json::{Map, Value};

use super::{Ctx, ErrorCode, OAuthError};
use crate::jose::verify_jwt;
use crate::store::{AccessTokenRow, TokenHash};
use crate::tenant::Tenant;

/// Longest access token looked at.
pub const MAX_TOKEN_LEN: usize = 8192;

/// An access token as a resource request presented it (RFC 6750 §2): in
/// the `Authorization: Bearer` header, in the form body, or both.
#[derive(Debug, Default, Clone)]
pub struct Bearer {
    pub header: Option<String>,
    pub body: Option<String>,
    /// The header's scheme was `DPoP` (RFC 9449 §7.1), not `Bearer`.
    pub dpop: bool,
}

impl Bearer {
    /// The one token presented; `invalid_request` if it came twice,
    /// `invalid_token` if it did not come.
    pub fn token(self) -> Result<String, OAuthError> {
        match (self.header, self.body) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(
                "send the access token once, not in both the header and the body",
            )),
            (Some(t), None) | (None, Some(t)) => Ok(t),
            (None, None) => Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "an access token is required",
            )),
        }
    }
}

/// Where a presented access token is recorded: a JWT of this tenant under
/// the hash of its verified `jti` (with its claims), anything else under its
/// own hash (with no claims). `None` for a JWT that does not verify or has
/// no `jti`, and for anything too long.
pub fn locate(ctx: &Ctx<'_>, token: &str) -> Option<(TokenHash, Map<String, Value>)> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    if token.matches('.').count() != 2 {
        return Some((TokenHash::of(token), Map::new()));
    }
    let Ok(Value::Object(claims)) = verify_jwt(token, &ctx.tenant.keys.load(), ctx.now) else {
        return None;
    };
    let jti = claims.get("jti").and_then(Value::as_str)?;
    Some((TokenHash::of(jti), claims))
}

/// Check that a valid token was presented as it must be: a DPoP-bound one
/// with `Authorization: DPoP` and a proof by its key, for this token (RFC
/// 9449 §7), any other as a bearer token.
pub async fn check_binding(
    ctx: &Ctx<'_>,
    valid: &ValidToken,
    token: &str,
    presented_as_dpop: bool,
) -> Result<(), OAuthError> {
    match (valid.row.jkt.as_deref(), presented_as_dpop) {
        (None, false) => Ok(()),
        (None, true) => Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is not DPoP-bound: present it as a Bearer token",
        )),
        (Some(_), false) => Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is DPoP-bound: present it with `Authorization: DPoP` and a proof",
        )),
        (Some(jkt), true) => {
            let proof = super::dpop::check(ctx, Some(token)).await?.ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "a DPoP-bound access token comes with a DPoP proof",
                )
            })?;
            if proof.jkt != jkt {
                return Err(OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "the DPoP proof is not made with the key the token is bound to",
                ));
            }
            Ok(())
        }
    }
}

/// A presented access token that is valid now.
#[derive(Debug)]
pub struct ValidToken {
    pub row: AccessTokenRow,
    /// The JWT's claims (empty for opaque tokens).
    pub claims: Map<String, Value>,
}

/// Check an access token of this tenant: signature (JWT) or lookup (opaque),
/// expiry, and revocation. Any failure is `invalid_token`, without detail.
pub async fn validate(ctx: &Ctx<'_>, token: &str) -> Result<ValidToken, OAuthError> {
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        )
    };
    if token.is_empty() {
        return Err(invalid());
    }
    let (hash, claims) = locate(ctx, token).ok_or_else(invalid)?;
    if !claims.is_empty() {
        if claims.get("iss").and_then(Value::as_str) != Some(ctx.tenant.issuer.as_str()) {
            return Err(invalid());
        }
        if claims.get("client_id").is_none() {
            // An ID token is not an access token.
            return Err(invalid());
        }
    }
    let row = match ctx.store.find_access_token(&ctx.tenant.id, hash).await? {
        Some(row) => row,
        // A client-credentials JWT is recorded only once revoked, one by
        // one (RFC 7009) or by an operator's marker (`sesame revoke`).
        None => {
            let row = unrecorded_row(ctx.tenant, &claims).ok_or_else(invalid)?;
            if ctx.services.markers.revokes(ctx, &row).await? {
                return Err(invalid());
            }
            row
        }
    };
    // A row answers only for the kind of token it records: the hash of a
    // JWT's `jti` is no opaque token (a `jti` is an identifier, never a
    // credential), and an opaque token's hash is no JWT.
    if row.jwt == claims.is_empty() {
        return Err(invalid());
    }
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
pub fn unrecorded_row(tenant: &Tenant, claims: &Map<String, Value>) -> Option<AccessTokenRow> {
    if claims.contains_key("auth_time") {
        return None;
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let (client_id, jti) = (text("client_id")?, text("jti")?);
    if text("sub")? != client_id {
        return None;
    }
    let audience = text("aud").filter(|a| *a != tenant.issuer);
    let jkt = claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str);
    Some(AccessTokenRow {
        tenant_id: tenant.id.clone(),
        token_hash: TokenHash::of(jti),
        grant_id: jti.to_string(),
        client_id: client_id.to_string(),
        user_sub: None,
        scope: text("scope")?.to_string(),
        jwt: true,
        created_at: claims.get("iat").and_then(Value::as_i64)?,
        expires_at: claims.get("exp").and_then(Value::as_i64)?,
        revoked_at: None,
        generation: text("generation").unwrap_or_default().to_string(),
        jkt: jkt.map(str::to_string),
        audience: audience.map(str::to_string),
    })
}
