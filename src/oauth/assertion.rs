//! Client assertions (RFC 7523 §2.2 and §3, OpenID Connect Core §9): a
//! client authenticates with a JWT it signed with one of its keys
//! (`private_key_jwt`) or with its secret (`client_secret_jwt`).
//!
//! Checked: the assertion type; the signature, with an algorithm the client
//! may use (never `none`); `iss` and `sub` both the client; `aud` the
//! issuer or one of the tenant's endpoints that authenticate clients; `exp`
//! present, not passed and at most [`MAX_LIFETIME`] away; `iat`/`nbf` not
//! in the future; `jti` present and used once, on every node.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Ctx;
use crate::config::AuthMethod;
use crate::jose::{ClientAlg, ClientJws, ClientVerifier};
use crate::store::StoreError;
use crate::tenant::{Client, ClientSecret};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Latest `exp` accepted, from now (an assertion is made for one request).
pub const MAX_LIFETIME: i64 = 600;
/// Clock skew allowed for `iat` and `nbf`.
pub const LEEWAY: i64 = 60;

/// Why an assertion was refused (logged, never sent: the client only
/// learns `invalid_client`).
#[derive(Debug)]
pub enum Refused {
    Because(&'static str),
    Store(StoreError),
}

impl From<&'static str> for Refused {
    fn from(why: &'static str) -> Refused {
        Refused::Because(why)
    }
}

/// The client an assertion authenticates.
pub async fn verify(
    ctx: &Ctx<'_>,
    claimed_id: Option<&str>,
    assertion_type: &str,
    assertion: &str,
) -> Result<Arc<Client>, Refused> {
    if assertion_type != ASSERTION_TYPE {
        return Err("unsupported client_assertion_type".into());
    }
    let jws = ClientJws::parse(assertion).map_err(|_| "malformed assertion")?;
    let text = |c: &Map<String, Value>, name: &str| {
        c.get(name).and_then(Value::as_str).map(str::to_string)
    };
    let (iss, sub) = (
        text(jws.unverified_claims(), "iss"),
        text(jws.unverified_claims(), "sub"),
    );
    let Some(id) = sub.filter(|s| iss.as_deref() == Some(s.as_str())) else {
        return Err("iss and sub must both be the client_id".into());
    };
    if claimed_id.is_some_and(|c| c != id) {
        return Err("client_id differs from the assertion's".into());
    }
    let client = ctx.tenant.client(&id).cloned().ok_or("unknown client")?;
    let allowed = client.assertion_algs();
    let kid = jws.kid.clone();
    let claims = match (client.auth_method, &client.secret) {
        (AuthMethod::ClientSecretJwt, Some(ClientSecret::Plain(secret))) => jws
            .verify(ClientVerifier::Secret(secret.as_bytes()), &allowed)
            .map_err(|_| "bad signature or algorithm")?,
        (AuthMethod::PrivateKeyJwt, _) => {
            let keys = client_jwks(ctx, &client, kid.as_deref()).await?;
            jws.verify(ClientVerifier::Keys(&keys), &allowed)
                .map_err(|_| "bad signature, unknown key or algorithm")?
        }
        _ => return Err("the client does not authenticate with assertions".into()),
    };
    check_claims(ctx, &claims)?;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("jti is required")?;
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(ctx.now);
    let first = ctx
        .store
        .use_client_assertion(&ctx.tenant.id, &client.id, jti, exp)
        .await
        .map_err(Refused::Store)?;
    if !first {
        return Err("assertion replayed (jti already used)".into());
    }
    Ok(client)
}

/// The client's public keys: written in the YAML, or from its `jwks_uri`
/// (fetched again when `kid` is one the cached set lacks).
pub(super) async fn client_jwks(
    ctx: &Ctx<'_>,
    client: &Client,
    kid: Option<&str>,
) -> Result<Arc<crate::jose::ClientJwks>, &'static str> {
    match (&client.jwks, &client.jwks_uri) {
        (Some(keys), _) => Ok(keys.clone()),
        (None, Some(uri)) => ctx
            .services
            .client_keys
            .keys(uri, kid)
            .await
            .map_err(|_| "the client's jwks_uri gave no keys"),
        (None, None) => Err("the client has no keys"),
    }
}

/// `aud`, `exp`, `iat`, `nbf`.
fn check_claims(ctx: &Ctx<'_>, claims: &Map<String, Value>) -> Result<(), Refused> {
    let t = ctx.tenant;
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Err("aud is required".into()),
    };
    let ours = [
        t.issuer.clone(),
        t.endpoint("/token"),
        t.endpoint("/introspect"),
        t.endpoint("/revoke"),
        t.endpoint("/par"),
    ];
    if !audiences.iter().any(|a| ours.iter().any(|o| o == a)) {
        return Err("aud is neither the issuer nor an endpoint of it".into());
    }
    let now = ctx.now;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("exp is required")?;
    if exp <= now {
        return Err("the assertion has expired".into());
    }
    if exp > now + MAX_LIFETIME {
        return Err("exp is too far ahead (at most 10 minutes)".into());
    }
    for name in ["iat", "nbf"] {
        match claims.get(name) {
            None => {}
            Some(v) => match v.as_i64() {
                Some(at) if at <= now + LEEWAY => {}
                _ => return Err("iat or nbf is in the future, or not a number".into()),
            },
        }
    }
    Ok(())
}

impl Client {
    /// The algorithms its assertions may use.
    pub fn assertion_algs(&self) -> Vec<ClientAlg> {
        if let Some(alg) = self.assertion_alg {
            return vec![alg];
        }
        let algs = match self.auth_method {
            AuthMethod::ClientSecretJwt => ClientAlg::SYMMETRIC.to_vec(),
            AuthMethod::PrivateKeyJwt => ClientAlg::ASYMMETRIC.to_vec(),
            _ => Vec::new(),
        };
        self.profile_allows(algs)
    }

    /// `algs` without those the client's profile forbids (FAPI 2.0: PS256,
    /// ES256 and EdDSA only).
    pub fn profile_allows(&self, mut algs: Vec<ClientAlg>) -> Vec<ClientAlg> {
        if self.profile == Some(crate::config::Profile::Fapi2) {
            algs.retain(|a| matches!(a, ClientAlg::PS256 | ClientAlg::ES256 | ClientAlg::EdDSA));
        }
        algs
    }
}
