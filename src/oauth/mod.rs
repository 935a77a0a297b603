//! The protocol core. Nothing here names a warp, hyper or diesel type, an
//! HTTP status or a cookie name: an endpoint takes a [`Ctx`] (the request's
//! facts, the tenant, the store, `now`) and parsed inputs, and returns an
//! [`Outcome`] or a `Result<_, OAuthError>` (see DESIGN.md).

pub mod access_token;
pub mod assertion;
pub mod authorize;
pub mod client_auth;
pub mod client_keys;
pub mod consent;
pub mod context;
pub mod cpu;
pub mod discovery;
pub mod dpop;
pub mod dry_run;
pub mod error;
pub mod grant;
pub mod hook;
pub mod introspect;
pub mod issue;
pub mod login;
pub mod logout;
pub mod markers;
pub mod outcome;
pub mod par;
pub mod params;
pub mod password;
pub mod pending;
pub mod pkce;
pub mod request_object;
pub mod revoke;
pub mod scope;
pub mod session;
pub mod throttle;
pub mod token;
pub mod userinfo;

pub use context::{Credentials, Ctx, RequestFacts, Services};
pub use error::{ErrorCode, OAuthError};
pub use markers::MARKERS_FRESH;
pub use outcome::{Answer, Cookie, Outcome, Page};
pub use params::Params;

use base64::Engine;

/// How a code, token or session id appears in the log: the first 64 bits of
/// its SHA-256, in hex — enough to correlate lines, useless to an attacker.
pub fn log_id(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh 256-bit random value, base64url: codes, tokens, session and request ids.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
