//! One module per grant the token endpoint serves, and what they share.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use super::scope::{decide, Decision, Scopes};
use super::{Ctx, ErrorCode, OAuthError};
use crate::config::GrantType;
use crate::tenant::{Client, ResourceServer, Tenant, User};

/// A grant's decision at the token endpoint: `default`, then the scope
/// policies (held under `requested` when `ceiling`); a `deny(reason)` is
/// `invalid_grant`, a policy that leaves nothing is `invalid_scope`.
pub(super) async fn decision(
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
        .await
        .map_err(|e| OAuthError::from_plugin(e, Some(ErrorCode::InvalidGrant)))?;
    if had_scopes && decision.granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "no scope can be granted",
        ));
    }
    Ok(decision)
}

/// The `resource` values of an authorization request (RFC 8707 §2), each a
/// declared resource server of the tenant: the list kept with the grant,
/// space-separated. `invalid_target` for any other.
pub(super) fn resources(
    tenant: &Tenant,
    asked: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let mut list: Vec<&str> = Vec::new();
    for uri in asked.split(' ').filter(|u| !u.is_empty()) {
        resource_server(tenant, uri)?;
        if !list.contains(&uri) {
            list.push(uri);
        }
    }
    Ok((!list.is_empty()).then(|| list.join(" ")))
}

/// The resource server a token request's access token is for (RFC 8707
/// §2.2): the one its `resource` names — one of `granted` (the grant's
/// resources) when the grant named any — or, when it names none, the
/// grant's only resource. `None`: a token for the tenant itself.
pub(super) fn target<'t>(
    tenant: &'t Tenant,
    asked: Option<&str>,
    granted: Option<&str>,
) -> Result<Option<&'t ResourceServer>, OAuthError> {
    let granted: Vec<&str> = granted.map_or(Vec::new(), |g| g.split(' ').collect());
    let uri = match asked {
        Some(uri) if uri.contains(' ') => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "name one resource per token request",
            ))
        }
        Some(uri) => {
            if !granted.is_empty() && !granted.contains(&uri) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "the resource is not one the authorization was for",
                ));
            }
            uri
        }
        None => match granted.as_slice() {
            [] => return Ok(None),
            [only] => only,
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "the authorization is for several resources: name one with `resource`",
                ))
            }
        },
    };
    resource_server(tenant, uri).map(Some)
}

fn resource_server<'t>(tenant: &'t Tenant, uri: &str) -> Result<&'t ResourceServer, OAuthError> {
    tenant
        .resource_servers
        .iter()
        .find(|rs| rs.identifier == uri)
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource is not a resource server of this issuer",
            )
        })
}
