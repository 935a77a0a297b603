//! One module per grant the token endpoint serves, and what they share.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use super::scope::{decide, Decision, Scopes};
use super::{Ctx, ErrorCode, OAuthError};
use crate::config::GrantType;
use crate::tenant::{Client, User};

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
