//! Pushed authorization requests (RFC 9126): a client posts its
//! authorization request to `/par` (authenticated as at the token endpoint),
//! it is validated as `/authorize` would, and stored under the hash of a
//! `request_uri` the client then sends the browser to `/authorize` with. A
//! `request_uri` is taken once, by the client that pushed it, before it
//! expires ([`take`]).

use serde::Serialize;

use super::{
    authorize, client_auth, random_token, Credentials, Ctx, ErrorCode, OAuthError, Params,
};
use crate::store::{PushedRequestRow, TokenHash};

/// What every `request_uri` of ours starts with (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Longest `request_uri` looked up (ours are 77 characters).
const MAX_REQUEST_URI_LEN: usize = 256;

/// Parameters never stored with a pushed request: the client's credentials.
const CREDENTIALS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

/// Why a `request_uri` of ours was not taken. One text for all causes, so
/// that the answer does not tell a used one from another client's.
const UNKNOWN: &str = "the request_uri is unknown, expired, already used or not this client's";

/// The `/par` answer (RFC 9126 §2.2), sent with `201 Created`.
#[derive(Debug, Serialize)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: u64,
}

/// `POST /par`.
pub async fn push(
    ctx: &Ctx<'_>,
    params: &Params,
    credentials: Credentials,
) -> Result<Pushed, OAuthError> {
    let client = client_auth::authenticate(ctx, credentials).await?;
    if params.get("client_id").is_some_and(|id| id != client.id) {
        return Err(OAuthError::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri must not be sent to the pushed authorization request endpoint",
        ));
    }
    // A pushed request object is checked now and again when it is used.
    let unpacked = super::request_object::unpack(ctx, &client, params).await?;
    let checked = unpacked.as_ref().unwrap_or(params);
    let redirect_uri = authorize::redirect_uri(&client, checked)?;
    authorize::validate(ctx.tenant, &client, checked, redirect_uri, "")?;
    // A DPoP proof here binds the code to its key (RFC 9449 §10.1), as
    // `dpop_jkt` would; both must then name the same key.
    let proof = super::dpop::check(ctx, None).await?;
    if let (Some(p), Some(asked)) = (&proof, checked.get("dpop_jkt")) {
        if p.jkt != asked {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "dpop_jkt is not the thumbprint of the proof's key",
            ));
        }
    }

    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token());
    let lifetime = ctx.tenant.pushed_request_lifetime.as_secs();
    let mut stored = params.without(CREDENTIALS).with("client_id", &client.id);
    if let Some(p) = proof {
        stored = stored.with("dpop_jkt", &p.jkt);
    }
    let stored = serde_json::to_string(&stored).map_err(|_| OAuthError::server_error())?;
    ctx.store
        .insert_pushed_request(PushedRequestRow {
            tenant_id: ctx.tenant.id.clone(),
            request_hash: TokenHash::of(&request_uri),
            client_id: client.id.clone(),
            params: stored,
            created_at: ctx.now,
            expires_at: ctx.now.saturating_add(lifetime as i64),
        })
        .await?;
    tracing::info!(
        event = "par.pushed",
        tenant = %ctx.tenant.id,
        client_id = %client.id,
        request_uri = %super::log_id(&request_uri),
        "authorization request pushed"
    );
    ctx.services
        .metrics
        .pushed_request(&ctx.tenant.id, "pushed");
    Ok(Pushed {
        request_uri,
        expires_in: lifetime,
    })
}

/// The pushed request `request_uri` names, taken for `client_id` (at
/// `/authorize`): its parameters replace the query's (RFC 9126 §4).
/// A `request_uri` that is not ours is `request_uri_not_supported` (sesame
/// fetches nothing); one of ours that can't be taken, `invalid_request_uri`.
pub(super) async fn take(
    ctx: &Ctx<'_>,
    client_id: &str,
    request_uri: &str,
) -> Result<Params, OAuthError> {
    if !request_uri.starts_with(REQUEST_URI_PREFIX) {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "only request_uri values from the pushed authorization request endpoint are supported",
        ));
    }
    let unknown = || OAuthError::new(ErrorCode::InvalidRequestUri, UNKNOWN);
    if request_uri.len() > MAX_REQUEST_URI_LEN {
        return Err(unknown());
    }
    let row = ctx
        .store
        .consume_pushed_request(
            &ctx.tenant.id,
            TokenHash::of(request_uri),
            client_id,
            ctx.now,
        )
        .await?
        .ok_or_else(unknown)?;
    let params: Params = serde_json::from_str(&row.params).map_err(|e| {
        tracing::error!(error = %e, "a stored pushed authorization request does not parse");
        OAuthError::server_error()
    })?;
    ctx.services.metrics.pushed_request(&ctx.tenant.id, "used");
    Ok(params)
}
