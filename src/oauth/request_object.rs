//! Signed request objects (RFC 9101, OpenID Connect Core §6.1): the
//! authorization request as a JWT the client signed, so nothing on its way
//! through the browser can change it.
//!
//! The object is verified with the client's keys (`jwks`, `jwks_uri`) or,
//! HMAC, its secret in clear; `alg: none` is refused. Its parameters are the
//! request (RFC 9101 §5: those outside it, but `client_id`, are ignored).
//! `iss`, when present, must be the client, `aud` the issuer, `exp` in the
//! future, `nbf` not ahead. A `request_uri` to fetch is not supported.

use serde_json::Value;

use super::assertion::{client_jwks, LEEWAY};
use super::{Ctx, ErrorCode, OAuthError, Params};
use crate::jose::{ClientAlg, ClientJws, ClientVerifier};
use crate::tenant::{Client, ClientSecret};

/// Claims of the JWT itself, not parameters of the request.
const JWT_CLAIMS: &[&str] = &["iss", "aud", "exp", "nbf", "iat", "jti"];

fn invalid(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequestObject, description)
}

/// The request `params` carries for `client`: the request object's
/// parameters when it sent one, `None` to use `params` as they are.
/// Refused when the client must sign its requests and didn't.
pub async fn unpack(
    ctx: &Ctx<'_>,
    client: &Client,
    params: &Params,
) -> Result<Option<Params>, OAuthError> {
    let Some(request) = params.get("request") else {
        if client.require_signed_request_object {
            return Err(OAuthError::invalid_request(
                "this client must send its authorization request as a signed request object",
            ));
        }
        return Ok(None);
    };
    let jws = ClientJws::parse(request)
        .map_err(|_| invalid("the request object must be a signed JWT (alg none is refused)"))?;
    let allowed = request_object_algs(client);
    let kid = jws.kid.clone();
    let claims = if jws.alg.is_symmetric() {
        let Some(ClientSecret::Plain(secret)) = &client.secret else {
            return Err(invalid(
                "the request object's algorithm is not allowed for this client",
            ));
        };
        jws.verify(ClientVerifier::Secret(secret.as_bytes()), &allowed)
    } else {
        let keys = client_jwks(ctx, client, kid.as_deref())
            .await
            .map_err(|_| invalid("the client has no keys to verify its request object"))?;
        jws.verify(ClientVerifier::Keys(&keys), &allowed)
    }
    .map_err(|_| invalid("the request object's signature does not verify"))?;

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if claims.contains_key("iss") && text("iss") != Some(client.id.as_str()) {
        return Err(invalid("the request object's iss is not the client"));
    }
    if claims.contains_key("client_id") && text("client_id") != Some(client.id.as_str()) {
        return Err(invalid("the request object's client_id differs"));
    }
    match claims.get("aud") {
        None => {}
        Some(Value::String(a)) if *a == ctx.tenant.issuer => {}
        Some(Value::Array(items))
            if items.iter().any(|a| a.as_str() == Some(&ctx.tenant.issuer)) => {}
        Some(_) => return Err(invalid("the request object's aud is not this issuer")),
    }
    if let Some(exp) = claims.get("exp") {
        if exp.as_i64().is_none_or(|exp| exp <= ctx.now) {
            return Err(invalid("the request object has expired"));
        }
    }
    if let Some(nbf) = claims.get("nbf") {
        if nbf.as_i64().is_none_or(|nbf| nbf > ctx.now + LEEWAY) {
            return Err(invalid("the request object is not valid yet"));
        }
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err(invalid("a request object can't hold another one"));
    }
    let mut pairs = vec![("client_id".to_string(), client.id.clone())];
    for (name, value) in &claims {
        if JWT_CLAIMS.contains(&name.as_str()) || name == "client_id" {
            continue;
        }
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            // `resource` may be several (RFC 8707 §2): one space-separated list.
            Value::Array(items) if name == "resource" && items.iter().all(Value::is_string) => {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            // `max_age` as a number, `claims` as an object: as their JSON text.
            other => other.to_string(),
        };
        pairs.push((name.clone(), value));
    }
    Params::from_pairs(pairs)
        .map(Some)
        .map_err(|_| invalid("the request object's parameters are too many or too long"))
}

/// The algorithms a client's request objects may use: the one it named,
/// or any its keys (asymmetric) or clear secret (HMAC) can verify.
fn request_object_algs(client: &Client) -> Vec<ClientAlg> {
    if let Some(alg) = client.request_object_alg {
        return vec![alg];
    }
    let mut algs = Vec::new();
    if client.jwks.is_some() || client.jwks_uri.is_some() {
        algs.extend(ClientAlg::ASYMMETRIC);
    }
    if matches!(client.secret, Some(ClientSecret::Plain(_))) {
        algs.extend(ClientAlg::SYMMETRIC);
    }
    client.profile_allows(algs)
}
