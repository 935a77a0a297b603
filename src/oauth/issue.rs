//! Token issuance, in one place: access tokens (RFC 9068 JWTs or opaque),
//! ID tokens (OIDC Core §2), refresh tokens (new ones and rotated
//! successors), and the user claims they release. Grants decide *what* to
//! issue (`super::grant`); this module makes it.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::hook;
use super::scope::Scopes;
use super::{random_token, Ctx, OAuthError};
use crate::config::{AccessTokenFormat, GrantType};
use crate::jose::{at_hash, JoseError, SigningKey};
use crate::plugin::{Claims, Hook};
use crate::store::{AccessTokenRow, Issued, RefreshTokenRow, TokenHash};
use crate::tenant::{standard_claims, Client, Tenant, User};

/// The JSON body of a successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Whom the tokens are about (for the audit log; not sent).
    #[serde(skip)]
    pub sub: String,
}

/// What one grant issues.
pub struct Issuance<'a> {
    pub client: &'a Client,
    pub subject: Subject<'a>,
    pub grant: GrantType,
    /// The scopes asked for (scripts see them as `ctx.scopes`).
    pub requested: &'a Scopes,
    pub granted: &'a Scopes,
    /// Ties everything issued for one authorization together.
    pub grant_id: &'a str,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    /// The refresh token to hand out with the access token, if any.
    pub refresh: Option<(String, RefreshTokenRow)>,
}

/// Who a token is about.
pub enum Subject<'a> {
    User(&'a User),
    /// client_credentials: `sub` is the client id (RFC 9068 §2.2).
    Client,
}

/// The refresh-token family of a grant.
pub struct Family<'a> {
    pub grant_id: &'a str,
    pub user_sub: &'a str,
    pub auth_time: i64,
    /// No token of the family outlives this.
    pub expires_at: i64,
}

/// A new refresh token of `family` with `scope`, the successor of `parent`.
pub fn new_refresh_token(
    ctx: &Ctx<'_>,
    client: &Client,
    family: &Family<'_>,
    scope: &str,
    parent: Option<TokenHash>,
) -> (String, RefreshTokenRow) {
    let token = random_token();
    let lifetime = client.lifetimes.refresh_token.as_secs() as i64;
    let row = RefreshTokenRow {
        tenant_id: ctx.tenant.id.clone(),
        token_hash: TokenHash::of(&token),
        grant_id: family.grant_id.to_string(),
        parent_hash: parent,
        client_id: client.id.clone(),
        user_sub: family.user_sub.to_string(),
        scope: scope.to_string(),
        auth_time: family.auth_time,
        created_at: ctx.now,
        expires_at: (ctx.now + lifetime).min(family.expires_at),
        family_expires_at: family.expires_at,
        used_at: None,
        revoked_at: None,
    };
    (token, row)
}

/// Issue an access token (and an ID token with `openid`, and the refresh
/// token made for it) for one grant: the response, and the rows the caller
/// writes.
pub async fn issue(
    ctx: &Ctx<'_>,
    what: Issuance<'_>,
) -> Result<(TokenResponse, Issued), OAuthError> {
    let Issuance {
        client,
        subject,
        grant,
        requested,
        granted: scopes,
        grant_id,
        auth_time,
        nonce,
        refresh,
    } = what;
    let tenant = ctx.tenant;
    let now = ctx.now;
    let expires_in = client.lifetimes.access_token.as_secs();
    let user = match subject {
        Subject::User(u) => Some(u),
        Subject::Client => None,
    };
    let sub = user
        .map(|u| u.sub.clone())
        .unwrap_or_else(|| client.id.clone());
    let hook_ctx = ctx.hooks(client, user, requested, scopes, Some(grant));
    let plugin_failed = |e| OAuthError::from_plugin(e, None);
    let id_token_extra = match user {
        Some(_) if scopes.contains("openid") => hook::claims(ctx, Hook::IdTokenClaims, &hook_ctx)
            .await
            .map_err(plugin_failed)?,
        _ => Claims::default(),
    };
    let jti = random_token();
    let (access_token, hash, jwt) = match tenant.access_token_format {
        AccessTokenFormat::Opaque => {
            let t = random_token();
            let h = TokenHash::of(&t);
            (t, h, false)
        }
        AccessTokenFormat::Jwt => {
            let mut claims = json!({
                "iss": tenant.issuer,
                "sub": sub,
                "aud": tenant.issuer,
                "client_id": client.id,
                "scope": scopes.to_string(),
                "iat": now,
                "exp": now + expires_in as i64,
                "jti": jti,
            });
            if user.is_some() {
                claims["auth_time"] = json!(auth_time);
            }
            let extra = hook::claims(ctx, Hook::AccessTokenClaims, &hook_ctx)
                .await
                .map_err(plugin_failed)?;
            if let Value::Object(map) = &mut claims {
                extra.apply(map, &[]);
            }
            let token = sign(ctx, tenant.keys.signing(), "at+jwt", claims).await?;
            (token, TokenHash::of(&jti), true)
        }
    };
    // A client-credentials JWT is self-contained and belongs to no grant a
    // replay could revoke: it gets a row only if it is revoked
    // (`userinfo::unrecorded_row`). Everything else is recorded.
    let access_row = (!jwt || user.is_some()).then(|| AccessTokenRow {
        tenant_id: tenant.id.clone(),
        token_hash: hash,
        grant_id: grant_id.to_string(),
        client_id: client.id.clone(),
        user_sub: user.map(|u| u.sub.clone()),
        scope: scopes.to_string(),
        jwt,
        created_at: now,
        expires_at: now + expires_in as i64,
        revoked_at: None,
    });

    let id_token = match user {
        Some(u) if scopes.contains("openid") => Some(
            id_token(
                ctx,
                client,
                u,
                scopes,
                IdTokenFacts {
                    auth_time,
                    nonce,
                    access_token: &access_token,
                    extra: id_token_extra,
                },
            )
            .await?,
        ),
        _ => None,
    };

    let (refresh_token, refresh_row) = refresh.unzip();
    Ok((
        TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            scope: scopes.to_string(),
            id_token,
            refresh_token,
            sub,
        },
        Issued {
            access_token: access_row,
            refresh_token: refresh_row,
        },
    ))
}

/// What an ID token says beyond the user's claims.
struct IdTokenFacts<'a> {
    auth_time: i64,
    nonce: Option<&'a str>,
    /// For `at_hash`.
    access_token: &'a str,
    /// From the `id_token_claims` hooks.
    extra: Claims,
}

/// OIDC Core §2 ID token, with the user's claims for the granted scopes.
async fn id_token(
    ctx: &Ctx<'_>,
    client: &Client,
    user: &User,
    scopes: &Scopes,
    facts: IdTokenFacts<'_>,
) -> Result<String, OAuthError> {
    let IdTokenFacts {
        auth_time,
        nonce,
        access_token,
        extra,
    } = facts;
    let (tenant, now) = (ctx.tenant, ctx.now);
    let key = tenant.keys.signing();
    let mut claims = user_claims(tenant, user, scopes);
    extra.apply(&mut claims, &[]);
    let registered = json!({
        "iss": tenant.issuer,
        "sub": user.sub,
        "aud": client.id,
        "azp": client.id,
        "iat": now,
        "exp": now + client.lifetimes.id_token.as_secs() as i64,
        "auth_time": auth_time,
        "at_hash": at_hash(key.alg(), access_token),
    });
    if let Value::Object(r) = registered {
        claims.extend(r);
    }
    if let Some(n) = nonce {
        claims.insert("nonce".into(), json!(n));
    }
    sign(ctx, key, "JWT", Value::Object(claims)).await
}

/// Sign `claims`. RSA signatures (≈ 0.25 ms each) are made on the signing
/// pool, off the async workers; ES256 and EdDSA ones (tens of µs) in place.
async fn sign(
    ctx: &Ctx<'_>,
    key: &SigningKey,
    typ: &'static str,
    claims: Value,
) -> Result<String, OAuthError> {
    let signed = if key.alg().is_rsa() {
        let key = key.clone();
        ctx.services
            .signer
            .run(move || key.sign_jwt(typ, &claims))
            .await
            .unwrap_or_else(|| Err(JoseError::Sign("the signing pool is gone".into())))
    } else {
        key.sign_jwt(typ, &claims)
    };
    signed.map_err(|e| {
        tracing::error!(error = %e, typ, "signing a token failed");
        OAuthError::server_error()
    })
}

/// The user's claims released by `scopes` (OIDC Core §5.4, plus each tenant
/// scope's `claims`). `sub` is always included.
pub fn user_claims(tenant: &Tenant, user: &User, scopes: &Scopes) -> Map<String, Value> {
    let mut out = Map::new();
    for scope in scopes.iter() {
        let names: Vec<&str> = match tenant.scopes.get(scope) {
            Some(s) if !s.claims.is_empty() => s.claims.iter().map(String::as_str).collect(),
            _ => standard_claims(scope).to_vec(),
        };
        for name in names {
            if let Some(v) = user.claims.get(name) {
                out.insert(name.to_string(), v.clone());
            }
        }
        if scope == "profile" && !out.contains_key("preferred_username") {
            out.insert("preferred_username".into(), json!(user.username));
        }
    }
    out.insert("sub".into(), json!(user.sub));
    out
}
