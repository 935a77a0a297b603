//! The protocol core. Nothing here names a warp or diesel type: functions take
//! parsed inputs, the tenant, the store and `now`, and return `Result<_, OAuthError>`.

pub mod authorize;
pub mod client_auth;
pub mod cpu;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod logout;
pub mod params;
pub mod password;
pub mod pkce;
pub mod scope;
pub mod throttle;
pub mod token;
pub mod userinfo;

pub use error::{ErrorCode, OAuthError};
pub use params::Params;

use base64::Engine;

/// A fresh 256-bit random value, base64url: codes, tokens, session and request ids.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
