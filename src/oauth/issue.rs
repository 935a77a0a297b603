//! Token issuance, in one place: access tokens (RFC 9068 JWTs or opaque),
//! ID tokens (OIDC Core §2), refresh tokens (new ones and rotated
//! successors), and the user claims they release. Grants decide *what* to
//! issue (`super::grant`); this module makes it.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::hook;
use super::scope::Scopes;
use super::{random_token, Ctx, ErrorCode, OAuthError};
use crate::config::{AccessTokenFormat, GrantType};
use crate::jose::{at_hash, JoseError, SigningKey};
use crate::plugin::{Claims, Hook, Shortened};
use crate::store::{AccessTokenRow, Issued, RefreshTokenRow, TokenHash};
use crate::tenant::{standard_claims, Client, ResourceServer, Tenant, User};

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
    /// The browser session the grant was made in (the ID token's `sid`).
    pub sid: Option<&'a str>,
    /// The refresh token to hand out with the access token, if any.
    pub refresh: Option<(String, RefreshTokenRow)>,
    /// The lifetimes the scope policies shortened for this grant.
    pub shortened: Shortened,
    /// The DPoP key (thumbprint) the access token is bound to.
    pub jkt: Option<&'a str>,
    /// The resource server the access token is for (RFC 8707): its `aud`,
    /// its format and lifetime, and only the granted scopes it accepts.
    pub resource: Option<&'a ResourceServer>,
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
    /// The DPoP key its tokens are bound to (public clients, RFC 9449 §5).
    pub jkt: Option<&'a str>,
    /// The resources the grant is for, space-separated (RFC 8707).
    pub resource: Option<&'a str>,
    /// The browser session the grant was made in.
    pub sid: Option<&'a str>,
}

/// A new refresh token of `family` with `scope`, the successor of `parent`,
/// living as long as the client's refresh tokens unless `shortened`.
pub fn new_refresh_token(
    ctx: &Ctx<'_>,
    client: &Client,
    shortened: &Shortened,
    family: &Family<'_>,
    scope: &str,
    parent: Option<TokenHash>,
) -> (String, RefreshTokenRow) {
    let token = random_token();
    let lifetime = client
        .lifetimes
        .shortened(shortened)
        .refresh_token
        .as_secs() as i64;
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
        generation: ctx.tenant.generation.clone(),
        jkt: family.jkt.map(str::to_string),
        resource: family.resource.map(str::to_string),
        sid: family.sid.map(str::to_string),
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
        sid,
        refresh,
        shortened,
        jkt,
        resource,
    } = what;
    let tenant = ctx.tenant;
    let now = ctx.now;
    let mut lifetimes = client.lifetimes;
    let mut format = tenant.access_token_format;
    // A token for a resource server carries only the scopes it accepts.
    let access_scopes = match resource {
        None => scopes.clone(),
        Some(rs) => {
            let only = scopes.filter(|s| rs.scopes.iter().any(|a| a == s));
            if only.is_empty() {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!(
                        "none of the granted scopes is one that {} accepts",
                        rs.identifier
                    ),
                ));
            }
            lifetimes.access_token = rs.access_token_lifetime.unwrap_or(lifetimes.access_token);
            format = rs.access_token_format.unwrap_or(format);
            only
        }
    };
    let audience = resource.map_or(tenant.issuer.as_str(), |rs| rs.identifier.as_str());
    let lifetimes = lifetimes.shortened(&shortened);
    let expires_in = lifetimes.access_token.as_secs();
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
    let (access_token, hash, jwt) = match format {
        AccessTokenFormat::Opaque => {
            let t = random_token();
            let h = TokenHash::of(&t);
            (t, h, false)
        }
        AccessTokenFormat::Jwt => {
            let mut claims = json!({
                "iss": tenant.issuer,
                "sub": sub,
                "aud": audience,
                "client_id": client.id,
                "scope": access_scopes.to_string(),
                "iat": now,
                "exp": now + expires_in as i64,
                "jti": jti,
            });
            if user.is_some() {
                claims["auth_time"] = json!(auth_time);
            }
            if let Some(jkt) = jkt {
                claims["cnf"] = json!({ "jkt": jkt });
            }
            let extra = hook::claims(ctx, Hook::AccessTokenClaims, &hook_ctx)
                .await
                .map_err(plugin_failed)?;
            if let Value::Object(map) = &mut claims {
                extra.apply(map, &[]);
                if user.is_none() {
                    // Unrecorded (see below): the token itself says which
                    // generation issued it, for `sesame revoke --generation`.
                    map.insert("generation".into(), json!(tenant.generation));
                }
            }
            let key = tenant.keys.load().signing(ctx.now).clone();
            let token = sign(ctx, &key, "at+jwt", claims).await?;
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
        scope: access_scopes.to_string(),
        jwt,
        created_at: now,
        expires_at: now + expires_in as i64,
        revoked_at: None,
        generation: tenant.generation.clone(),
        jkt: jkt.map(str::to_string),
        audience: resource.map(|rs| rs.identifier.clone()),
    });

    let id_token = match user {
        Some(u) if scopes.contains("openid") => Some(
            id_token(
                ctx,
                client,
                u,
                scopes,
                IdTokenFacts {
                    lifetime: lifetimes.id_token.as_secs(),
                    auth_time,
                    nonce,
                    sid,
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
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in,
            scope: access_scopes.to_string(),
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
    /// Seconds until it expires.
    lifetime: u64,
    auth_time: i64,
    nonce: Option<&'a str>,
    /// The session's public id (Back-Channel Logout 1.0 §2.1).
    sid: Option<&'a str>,
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
        lifetime,
        auth_time,
        nonce,
        sid,
        access_token,
        extra,
    } = facts;
    let (tenant, now) = (ctx.tenant, ctx.now);
    let key = client_signing_key(tenant, client, now);
    let mut claims = user_claims(tenant, user, scopes);
    extra.apply(&mut claims, &[]);
    let registered = json!({
        "iss": tenant.issuer,
        "sub": user.sub,
        "aud": client.id,
        "azp": client.id,
        "iat": now,
        "exp": now + lifetime as i64,
        "auth_time": auth_time,
        "at_hash": at_hash(key.alg(), access_token),
    });
    if let Value::Object(r) = registered {
        claims.extend(r);
    }
    if let Some(n) = nonce {
        claims.insert("nonce".into(), json!(n));
    }
    if let Some(sid) = sid {
        claims.insert("sid".into(), json!(sid));
    }
    sign(ctx, &key, "JWT", Value::Object(claims)).await
}

/// The event a logout token announces (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid: it is made for one delivery attempt
/// (each attempt signs a new one, with the message's `jti`).
pub const LOGOUT_TOKEN_LIFETIME: i64 = 120;

/// A logout token for `client` (Back-Channel Logout 1.0 §2.4): the session
/// `sid` of `sub` ended. Signed as the client's ID tokens are, `typ`
/// `logout+jwt`; never a `nonce`.
pub async fn logout_token(
    ctx: &Ctx<'_>,
    client: &Client,
    jti: &str,
    sid: &str,
    sub: &str,
) -> Result<String, OAuthError> {
    let (tenant, now) = (ctx.tenant, ctx.now);
    let key = client_signing_key(tenant, client, now);
    let claims = json!({
        "iss": tenant.issuer,
        "sub": sub,
        "aud": client.id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_LIFETIME,
        "jti": jti,
        "sid": sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    sign(ctx, &key, "logout+jwt", claims).await
}

/// The key of `client`'s ID and logout tokens: its
/// `id_token_signed_response_alg` (validated against the tenant's keys),
/// else the tenant's signing key.
fn client_signing_key(tenant: &Tenant, client: &Client, now: i64) -> SigningKey {
    let keys = tenant.keys.load();
    client
        .id_token_alg
        .and_then(|alg| keys.for_alg(alg, now))
        .unwrap_or(keys.signing(now))
        .clone()
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
