//! JOSE: signing keys (openssl for key material), JWS/JWT and JWKs (biscuit),
//! and generated keys sealed at rest (openssl AES-256-GCM).

use serde::{Deserialize, Serialize};

mod client;
mod jwt;
mod keys;
mod keyset;
mod sealed;

pub use client::{ClientAlg, ClientJwks, ClientJws, ClientVerifier, MAX_CLIENT_JWS};
pub use jwt::{at_hash, verify_jwt, JwtError};
pub use keys::{keygen_pem, JoseError, SigningKey};
pub use keyset::{KeyWindow, Keyset};
pub use sealed::{is_sealed, KeyEncryptionKey, KeyRow, OpenError};

/// A JWS signing algorithm sesame can use for ID tokens and JWT access tokens.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, clap::ValueEnum,
)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RSA 2048 bits or more).
    #[default]
    #[value(name = "RS256")]
    RS256,
    /// RSASSA-PSS with SHA-256 (RSA 2048 bits or more).
    #[value(name = "PS256")]
    PS256,
    /// ECDSA on P-256 with SHA-256.
    #[value(name = "ES256")]
    ES256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];

    /// RS256 and PS256: signing costs a fraction of a millisecond.
    pub fn is_rsa(self) -> bool {
        matches!(self, Alg::RS256 | Alg::PS256)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
