//! OIDC Discovery 1.0 / RFC 8414 metadata: exactly what this tenant supports.

use serde_json::{json, Value};

use crate::config::GrantType;
use crate::tenant::Tenant;

/// The metadata document served at both well-known paths.
pub fn document(tenant: &Tenant) -> Value {
    let scopes: Vec<&str> = tenant.scopes.keys().map(String::as_str).collect();
    let mut claims: Vec<&str> = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "azp",
        "sid",
    ];
    for scope in tenant.scopes.values() {
        for c in &scope.claims {
            if !claims.contains(&c.as_str()) {
                claims.push(c);
            }
        }
    }
    let mut grants: Vec<&str> = Vec::new();
    for g in [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ] {
        if tenant.clients.values().any(|c| c.allows_grant(g)) || g == GrantType::AuthorizationCode {
            grants.push(g.as_str());
        }
    }
    json!({
        "issuer": tenant.issuer,
        "authorization_endpoint": tenant.endpoint("/authorize"),
        "token_endpoint": tenant.endpoint("/token"),
        "userinfo_endpoint": tenant.endpoint("/userinfo"),
        "jwks_uri": tenant.endpoint("/jwks"),
        "end_session_endpoint": tenant.endpoint("/logout"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "introspection_endpoint": tenant.endpoint("/introspect"),
        "revocation_endpoint": tenant.endpoint("/revoke"),
        "pushed_authorization_request_endpoint": tenant.endpoint("/par"),
        "require_pushed_authorization_requests": tenant.require_pushed_authorization_requests,
        "scopes_supported": scopes,
        "claims_supported": claims,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": tenant.keys.load().signing_algs().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "subject_types_supported": ["public"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": crate::ui::locale::supported(),
        "claims_parameter_supported": false,
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": ASSERTION_ALGS,
        // Request objects by value, or pushed (PAR); never fetched from a URI.
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "dpop_signing_alg_values_supported": super::dpop::ALGS.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    })
}

/// What client assertions and request objects may be signed with (`none` never).
const ASSERTION_ALGS: [&str; 7] = [
    "RS256", "PS256", "ES256", "EdDSA", "HS256", "HS384", "HS512",
];
