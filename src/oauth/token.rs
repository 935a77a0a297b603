//! The token endpoint (RFC 6749 §3.2): authenticate the client, then hand
//! the request to its grant (`super::grant`).

use super::client_auth;
use super::dpop;
use super::grant;
pub use super::issue::TokenResponse;
use super::{Credentials, Ctx, ErrorCode, OAuthError, Params};
use crate::config::{AccessTokenFormat, GrantType};

/// Longest code, token or verifier accepted.
const MAX_TOKEN_LEN: usize = 4096;

/// `POST /token`.
pub async fn token(
    ctx: &Ctx<'_>,
    params: &Params,
    credentials: Credentials,
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
    let client = client_auth::authenticate(ctx, credentials).await?;
    let proof = dpop::check(ctx, None).await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    if jkt.is_none() && client.dpop_bound {
        return Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this client's access tokens are DPoP-bound: send a DPoP proof",
        ));
    }
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
        "resource",
    ] {
        if params.get(name).is_some_and(|v| v.len() > MAX_TOKEN_LEN) {
            return Err(OAuthError::invalid_request(format!("{name} is too long")));
        }
    }
    let issued = match grant {
        GrantType::AuthorizationCode => {
            grant::authorization_code::exchange(ctx, &client, params, jkt).await
        }
        GrantType::RefreshToken => grant::refresh_token::exchange(ctx, &client, params, jkt).await,
        GrantType::ClientCredentials => {
            grant::client_credentials::exchange(ctx, &client, params, jkt).await
        }
    }?;
    let jwt = ctx.tenant.access_token_format == AccessTokenFormat::Jwt;
    tracing::info!(
        event = "token.issued",
        tenant = %ctx.tenant.id,
        grant = grant.as_str(),
        client_id = %client.id,
        sub = %issued.sub,
        scope = %issued.scope,
        dpop = jkt.is_some(),
        access_token = %super::log_id(&issued.access_token),
        refresh_token = issued.refresh_token.as_deref().map(super::log_id),
        id_token = issued.id_token.is_some(),
        "token issued"
    );
    ctx.services
        .metrics
        .token_issued(&ctx.tenant.id, grant.as_str(), jwt);
    Ok(issued)
}
