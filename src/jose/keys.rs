//! CONTRACT STUB — the jose helper replaces the bodies, keeping the signatures.
#![allow(unused_variables, clippy::unimplemented)]

use super::Alg;

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("{0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A private signing key with its public JWK and RFC 7638 `kid`.
#[derive(Clone)]
pub struct SigningKey {}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Generate a fresh key for `alg` (RSA 2048, P-256 or Ed25519).
    pub fn generate(alg: Alg) -> Result<SigningKey, JoseError> {
        unimplemented!()
    }
    /// Parse a PEM private key (PKCS#8, or PKCS#1/SEC1 as openssl reads them); the key type and size must suit `alg`.
    pub fn from_pem(pem: &[u8], alg: Alg) -> Result<SigningKey, JoseError> {
        unimplemented!()
    }
    /// The private key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<String, JoseError> {
        unimplemented!()
    }
    pub fn alg(&self) -> Alg {
        unimplemented!()
    }
    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn kid(&self) -> &str {
        unimplemented!()
    }
    /// Public JWK with `kty`, key parameters, `use: sig`, `alg` and `kid`.
    pub fn public_jwk(&self) -> &serde_json::Value {
        unimplemented!()
    }
    /// Compact JWS of `claims` with header `{alg, typ, kid}`.
    pub fn sign_jwt(&self, typ: &str, claims: &serde_json::Value) -> Result<String, JoseError> {
        unimplemented!()
    }
}

/// The keys of one tenant: the first signs, all verify and are published.
#[derive(Debug, Clone)]
pub struct Keyset {
    pub keys: Vec<SigningKey>,
}

impl Keyset {
    pub fn signing(&self) -> &SigningKey {
        &self.keys[0]
    }
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid() == kid)
    }
    /// `{"keys": [...]}` as served at /jwks.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.iter().map(|k| k.public_jwk().clone()).collect::<Vec<_>>() })
    }
}

impl Keyset {
    pub fn new(keys: Vec<SigningKey>) -> Result<Keyset, JoseError> {
        unimplemented!()
    }
}

pub fn keygen_pem(alg: Alg) -> Result<String, JoseError> {
    unimplemented!()
}
