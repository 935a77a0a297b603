//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6) and token issuance.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::authorize::Ctx;
use super::client_auth::{self, Presented};
use super::cpu::Pool;
use super::scope::{decide, default_decision, Decision, Scopes};
use super::{pkce, random_token, ErrorCode, OAuthError, Params};
use crate::config::{AccessTokenFormat, GrantType};
use crate::jose::{at_hash, JoseError, SigningKey};
use crate::plugin::{run_claims, Claims, Hook, HookContext};
use crate::store::{
    AccessTokenRow, CodeConsumption, CodeRow, Issued, RefreshTokenRow, Rotation, TokenHash,
};
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
}

/// Longest code, token or verifier accepted.
const MAX_TOKEN_LEN: usize = 4096;

/// `POST /token`.
pub async fn token(
    ctx: &Ctx<'_>,
    params: &Params,
    presented: Presented,
) -> Result<TokenResponse, OAuthError> {
    let grant = params.require("grant_type")?;
    let grant = match grant {
        "authorization_code" => GrantType::AuthorizationCode,
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "grant_type must be authorization_code, refresh_token or client_credentials",
            ))
        }
    };
    let client = client_auth::authenticate(ctx.tenant, presented).await?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the {} grant", grant.as_str()),
        ));
    }
    for name in [
        "code",
        "refresh_token",
        "code_verifier",
        "redirect_uri",
        "scope",
    ] {
        if params.get(name).is_some_and(|v| v.len() > MAX_TOKEN_LEN) {
            return Err(OAuthError::invalid_request(format!("{name} is too long")));
        }
    }
    match grant {
        GrantType::AuthorizationCode => authorization_code(ctx, &client, params).await,
        GrantType::RefreshToken => refresh_token(ctx, &client, params).await,
        GrantType::ClientCredentials => client_credentials(ctx, &client, params).await,
    }
}

async fn authorization_code(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
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
    let scopes = Scopes::parse(&row.scope).unwrap_or_default();
    let grant = GrantType::AuthorizationCode;
    let default = Decision {
        granted: scopes.clone(),
        refresh_token: row.refresh_token,
    };
    let decision = token_decision(ctx, client, Some(&user), &scopes, grant, default, true)?;
    let family = Family {
        grant_id: &row.grant_id,
        user_sub: &row.user_sub,
        auth_time: row.auth_time,
        expires_at: ctx.now + client.lifetimes.refresh_token_family.as_secs() as i64,
    };
    let refresh = decision
        .refresh_token
        .then(|| new_refresh_token(ctx, client, &family, &decision.granted.to_string(), None));
    let (response, issued) = issue(
        ctx,
        client,
        Subject::User(&user),
        Grant {
            kind: grant,
            requested: &scopes,
        },
        &decision.granted,
        &row.grant_id,
        row.auth_time,
        row.nonce.as_deref(),
        refresh,
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
    tracing::warn!(tenant = %ctx.tenant.id, client = %row.client_id, "authorization code replayed; revoking its grant");
    match ctx
        .store
        .revoke_grant(&ctx.tenant.id, &row.grant_id, ctx.now)
        .await
    {
        Ok(()) => OAuthError::invalid_grant("the authorization code was already used"),
        Err(e) => e.into(),
    }
}

/// The refresh-token family of a grant.
struct Family<'a> {
    grant_id: &'a str,
    user_sub: &'a str,
    auth_time: i64,
    /// No token of the family outlives this.
    expires_at: i64,
}

/// A new refresh token of `family` with `scope`, the successor of `parent`.
fn new_refresh_token(
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

/// A grant's decision at the token endpoint: `default`, then the scope
/// policies (held under `requested` when `ceiling`); a `deny(reason)` is
/// `invalid_grant`, a policy that leaves nothing is `invalid_scope`.
fn token_decision(
    ctx: &Ctx<'_>,
    client: &Client,
    user: Option<&User>,
    requested: &Scopes,
    grant: GrantType,
    default: Decision,
    ceiling: bool,
) -> Result<Decision, OAuthError> {
    let had_scopes = !default.granted.is_empty();
    let ceiling = ceiling.then_some(requested);
    let decision = decide(ctx, client, user, requested, grant, default, ceiling)
        .map_err(|e| OAuthError::from_plugin(e, Some(ErrorCode::InvalidGrant)))?;
    if had_scopes && decision.granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "no scope can be granted",
        ));
    }
    Ok(decision)
}

async fn refresh_token(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
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
        tracing::warn!(tenant = %ctx.tenant.id, client = %client.id, "refresh token replayed; revoking its family");
        ctx.store
            .revoke_grant(&ctx.tenant.id, &row.grant_id, ctx.now)
            .await?;
        return Err(invalid());
    }
    if row.revoked_at.is_some() || row.expires_at <= ctx.now || row.family_expires_at <= ctx.now {
        return Err(invalid());
    }
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
    let decision = token_decision(ctx, client, Some(&user), &requested, grant, default, true)?;
    // The successor keeps the family's original scope, so a narrower refresh
    // does not shrink what later refreshes may ask for.
    let family = Family {
        grant_id: &row.grant_id,
        user_sub: &row.user_sub,
        auth_time: row.auth_time,
        expires_at: row.family_expires_at,
    };
    let successor = decision
        .refresh_token
        .then(|| new_refresh_token(ctx, client, &family, &row.scope, Some(hash)));
    let (response, issued) = issue(
        ctx,
        client,
        Subject::User(&user),
        Grant {
            kind: grant,
            requested: &requested,
        },
        &decision.granted,
        &row.grant_id,
        row.auth_time,
        None,
        successor,
    )
    .await?;
    match ctx
        .store
        .rotate_refresh_token(&ctx.tenant.id, hash, issued, ctx.now)
        .await?
    {
        Rotation::Rotated => Ok(response),
        Rotation::AlreadyUsed => {
            tracing::warn!(tenant = %ctx.tenant.id, client = %client.id, "refresh token used twice; revoking its family");
            ctx.store
                .revoke_grant(&ctx.tenant.id, &row.grant_id, ctx.now)
                .await?;
            Err(invalid())
        }
        Rotation::NotFound => Err(invalid()),
    }
}

async fn client_credentials(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let requested = match params.get("scope") {
        Some(s) => Scopes::parse(s)
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))?,
        None => Scopes::from_vec(client.scopes.clone()),
    };
    let grant = GrantType::ClientCredentials;
    let default = default_decision(ctx.tenant, client, &requested, grant);
    if params.get("scope").is_some() && default.granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "none of the requested scopes is available",
        ));
    }
    let decision = token_decision(ctx, client, None, &requested, grant, default, false)?;
    let grant_id = random_token();
    let (response, issued) = issue(
        ctx,
        client,
        Subject::Client,
        Grant {
            kind: grant,
            requested: &requested,
        },
        &decision.granted,
        &grant_id,
        ctx.now,
        None,
        None,
    )
    .await?;
    ctx.store.insert_issued(issued).await?;
    Ok(response)
}

/// The grant a token is issued for, as plugin scripts see it.
pub struct Grant<'a> {
    pub kind: GrantType,
    pub requested: &'a Scopes,
}

/// Who a token is about.
pub enum Subject<'a> {
    User(&'a User),
    /// client_credentials: `sub` is the client id (RFC 9068 §2.2).
    Client,
}

/// Issue an access token (and an ID token with `openid`, and `refresh`'s
/// token) for one grant: the response, and the rows the caller writes.
#[allow(clippy::too_many_arguments)]
async fn issue(
    ctx: &Ctx<'_>,
    client: &Client,
    subject: Subject<'_>,
    grant: Grant<'_>,
    scopes: &Scopes,
    grant_id: &str,
    auth_time: i64,
    nonce: Option<&str>,
    refresh: Option<(String, RefreshTokenRow)>,
) -> Result<(TokenResponse, Issued), OAuthError> {
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
    let hook_ctx = HookContext {
        tenant,
        client,
        user,
        requested: grant.requested.as_vec(),
        granted: scopes.as_vec(),
        grant_type: Some(grant.kind.as_str()),
        ip: ctx.request.ip,
        user_agent: ctx.request.user_agent,
        now,
    };
    let plugin_failed = |e| OAuthError::from_plugin(e, None);
    let id_token_extra = match user {
        Some(_) if scopes.contains("openid") => {
            run_claims(Hook::IdTokenClaims, &hook_ctx).map_err(plugin_failed)?
        }
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
            let extra = run_claims(Hook::AccessTokenClaims, &hook_ctx).map_err(plugin_failed)?;
            if let Value::Object(map) = &mut claims {
                extra.apply(map, &[]);
            }
            let token = sign(tenant.keys.signing(), "at+jwt", claims).await?;
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
                tenant,
                client,
                u,
                scopes,
                auth_time,
                nonce,
                &access_token,
                now,
                id_token_extra,
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
        },
        Issued {
            access_token: access_row,
            refresh_token: refresh_row,
        },
    ))
}

/// OIDC Core §2 ID token, with the user's claims for the granted scopes.
#[allow(clippy::too_many_arguments)]
async fn id_token(
    tenant: &Tenant,
    client: &Client,
    user: &User,
    scopes: &Scopes,
    auth_time: i64,
    nonce: Option<&str>,
    access_token: &str,
    now: i64,
    extra: Claims,
) -> Result<String, OAuthError> {
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
    sign(key, "JWT", Value::Object(claims)).await
}

/// RSA signatures (≈ 0.25 ms each) are made on the signing pool, off the
/// async workers; ES256 and EdDSA ones (tens of µs) in place.
static SIGNING: Pool = Pool::new("sesame-sign", || {});

async fn sign(key: &SigningKey, typ: &'static str, claims: Value) -> Result<String, OAuthError> {
    let signed = if key.alg().is_rsa() {
        let key = key.clone();
        SIGNING
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
