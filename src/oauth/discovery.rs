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
    let alg = tenant.keys.signing().alg().as_str();
    json!({
        "issuer": tenant.issuer,
        "authorization_endpoint": tenant.endpoint("/authorize"),
        "token_endpoint": tenant.endpoint("/token"),
        "userinfo_endpoint": tenant.endpoint("/userinfo"),
        "jwks_uri": tenant.endpoint("/jwks"),
        "end_session_endpoint": tenant.endpoint("/logout"),
        "introspection_endpoint": tenant.endpoint("/introspect"),
        "revocation_endpoint": tenant.endpoint("/revoke"),
        "scopes_supported": scopes,
        "claims_supported": claims,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": [alg],
        "subject_types_supported": ["public"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}
