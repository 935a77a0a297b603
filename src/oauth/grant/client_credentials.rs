//! The client credentials grant (RFC 6749 §4.4): a token about the client
//! itself, no user, nothing OpenID.

use super::{decision, target};
use crate::config::GrantType;
use crate::oauth::issue::{issue, Issuance, Subject, TokenResponse};
use crate::oauth::scope::{default_decision, Scopes};
use crate::oauth::{random_token, Ctx, ErrorCode, OAuthError, Params};
use crate::tenant::Client;

/// `grant_type=client_credentials`: a token for the client itself.
pub async fn exchange(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let resource = target(ctx.tenant, params.get("resource"), None)?;
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
    let decision = decision(ctx, client, None, &requested, grant, default, false).await?;
    let grant_id = random_token();
    let (response, issued) = issue(
        ctx,
        Issuance {
            client,
            subject: Subject::Client,
            grant,
            requested: &requested,
            granted: &decision.granted,
            grant_id: &grant_id,
            auth_time: ctx.now,
            nonce: None,
            sid: None,
            refresh: None,
            shortened: decision.shortened,
            jkt,
            resource,
        },
    )
    .await?;
    ctx.store.insert_issued(issued).await?;
    Ok(response)
}
