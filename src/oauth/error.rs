//! The errors sesame puts on the wire.

use crate::plugin::PluginError;
use crate::store::StoreError;

/// Every protocol error code sesame answers with. Only codes of the OAuth
/// and OpenID Connect registries live here; the edge derives the HTTP
/// status and `WWW-Authenticate` from the code (transport failures such as
/// an oversized body are the edge's own, see `http::reply::Transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 §5.2: missing, repeated or malformed parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (401).
    InvalidClient,
    /// RFC 6749 §5.2: code or refresh token invalid, expired, revoked or misbound.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use this grant.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §5.2 / §4.1.2.1.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the user or a policy said no.
    AccessDenied,
    /// RFC 6749 §4.1.2.1.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1: something broke on our side (500).
    ServerError,
    /// RFC 6749 §4.1.2.1: the database is unreachable (503).
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6: `prompt=none` without a session.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` without consent.
    ConsentRequired,
    /// OIDC Core §3.1.2.6.
    InteractionRequired,
    /// OIDC Core §3.1.2.6: request objects are not supported.
    RequestNotSupported,
    /// OIDC Core §3.1.2.6.
    RequestUriNotSupported,
    /// OIDC Core §3.1.2.6, RFC 9101 §6.3: the request object is invalid.
    InvalidRequestObject,
    /// OIDC Core §3.1.2.6, RFC 9126 §4: a `request_uri` unknown, expired,
    /// used already, or pushed by another client.
    InvalidRequestUri,
    /// RFC 6750 §3.1: bad bearer token (401).
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks the scope (403).
    InsufficientScope,
    /// RFC 9449 §5, §7.1: a DPoP proof that fails its checks.
    InvalidDpopProof,
    /// RFC 9449 §8: a proof without our nonce (the answer carries one).
    UseDpopNonce,
    /// RFC 8707 §2: a `resource` that is not one of the tenant's.
    InvalidTarget,
    /// Too many failures: locked for `retry_after` seconds.
    /// `slow_down` as in RFC 8628 §3.5, the nearest registered OAuth error code.
    SlowDown { retry_after: u64 },
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::SlowDown { .. } => "slow_down",
        }
    }
}

/// An error as the client sees it. `description` is for humans, a fixed
/// text (never an echo of the request), never carries internal detail (that
/// goes to the log), and always fits RFC 6749's `error_description`
/// character set (`%x20-21 / %x23-5B / %x5D-7E`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: fit_description(description.into()),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client() -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    /// Locked out by brute-force protection for `retry_after` seconds.
    pub fn slow_down(retry_after: u64, what: &str) -> OAuthError {
        OAuthError::new(
            ErrorCode::SlowDown { retry_after },
            format!("too many failed {what}; retry after {retry_after} seconds"),
        )
    }

    pub fn server_error() -> OAuthError {
        OAuthError::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    /// A plugin hook's failure as the client sees it. A policy's `deny(reason)`
    /// becomes `denied` with the reason (when the caller is a policy);
    /// everything else is logged with its script and line and answered
    /// `server_error`.
    pub fn from_plugin(e: PluginError, denied: Option<ErrorCode>) -> OAuthError {
        e.log();
        match (e, denied) {
            (PluginError::Denied { reason, .. }, Some(code)) => {
                let reason: String = fit_description(reason).chars().take(256).collect();
                let reason = if reason.trim().is_empty() {
                    "denied by policy".to_string()
                } else {
                    reason
                };
                OAuthError::new(code, reason)
            }
            _ => OAuthError::server_error(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

/// `s` made to fit RFC 6749 §5.2's `error_description` characters: a double
/// quote becomes a single one, a backslash a slash, other characters outside
/// printable ASCII are dropped.
fn fit_description(s: String) -> String {
    let fits = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    if s.chars().all(fits) {
        return s;
    }
    s.chars()
        .filter_map(|c| match c {
            '"' => Some('\''),
            '\\' => Some('/'),
            c if fits(c) => Some(c),
            _ => None,
        })
        .collect()
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> OAuthError {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable, try again shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "database error");
                OAuthError::server_error()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_fit_the_rfc_6749_character_set() {
        let e = OAuthError::invalid_request("say \"no\" \\ to <é>\n\ttabs");
        assert_eq!(e.description, "say 'no' / to <>tabs");
        let plain = "the authorization code is invalid";
        assert_eq!(OAuthError::invalid_grant(plain).description, plain);
    }
}
