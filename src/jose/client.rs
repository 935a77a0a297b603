//! JWS made by clients: their assertions (`private_key_jwt`,
//! `client_secret_jwt`) and request objects, verified against the client's
//! public keys (a JWK Set) or its secret (HMAC).
//!
//! Verification is ring's: RSA PKCS#1 v1.5 and PSS (2048 to 8192 bits),
//! ECDSA P-256 with fixed-size signatures, Ed25519, HMAC-SHA-2. A JWK with
//! a private member is refused: a client publishes public keys only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::JwtError;

/// A JWS algorithm a client may sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAlg {
    RS256,
    PS256,
    ES256,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl ClientAlg {
    pub const ASYMMETRIC: [ClientAlg; 4] = [
        ClientAlg::RS256,
        ClientAlg::PS256,
        ClientAlg::ES256,
        ClientAlg::EdDSA,
    ];
    pub const SYMMETRIC: [ClientAlg; 3] = [ClientAlg::HS256, ClientAlg::HS384, ClientAlg::HS512];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientAlg::RS256 => "RS256",
            ClientAlg::PS256 => "PS256",
            ClientAlg::ES256 => "ES256",
            ClientAlg::EdDSA => "EdDSA",
            ClientAlg::HS256 => "HS256",
            ClientAlg::HS384 => "HS384",
            ClientAlg::HS512 => "HS512",
        }
    }

    pub fn parse(s: &str) -> Option<ClientAlg> {
        Self::ASYMMETRIC
            .into_iter()
            .chain(Self::SYMMETRIC)
            .find(|a| a.as_str() == s)
    }

    pub fn is_symmetric(self) -> bool {
        Self::SYMMETRIC.contains(&self)
    }
}

/// One public key of a client.
#[derive(Debug, Clone)]
struct ClientKey {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one: the key signs with that only.
    alg: Option<ClientAlg>,
    material: Material,
}

#[derive(Debug, Clone)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed P-256 point (0x04 ‖ x ‖ y).
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl Material {
    fn fits(&self, alg: ClientAlg) -> bool {
        matches!(
            (self, alg),
            (Material::Rsa { .. }, ClientAlg::RS256 | ClientAlg::PS256)
                | (Material::P256(_), ClientAlg::ES256)
                | (Material::Ed25519(_), ClientAlg::EdDSA)
        )
    }
}

/// A client's JWK Set, parsed.
#[derive(Debug, Clone, Default)]
pub struct ClientJwks {
    keys: Vec<ClientKey>,
}

/// JWK members that only a private key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl ClientJwks {
    /// Parse a JWK Set. Keys of a type sesame can't use for signatures
    /// (`use: enc`, other curves) are skipped; a private member anywhere,
    /// or a malformed key, is an error.
    pub fn parse(set: &Value) -> Result<ClientJwks, String> {
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("a JWK Set is an object with a `keys` array")?;
        let mut out = Vec::new();
        for (i, jwk) in keys.iter().enumerate() {
            let jwk = jwk
                .as_object()
                .ok_or_else(|| format!("keys[{i}] is not an object"))?;
            if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
                return Err(format!(
                    "keys[{i}] has the private member `{m}`: publish public keys only"
                ));
            }
            if jwk.get("use").and_then(Value::as_str) == Some("enc") {
                continue;
            }
            let text = |name: &str| jwk.get(name).and_then(Value::as_str);
            let bytes = |name: &str| -> Result<Vec<u8>, String> {
                let v = text(name).ok_or_else(|| format!("keys[{i}] has no `{name}`"))?;
                URL_SAFE_NO_PAD
                    .decode(v)
                    .map_err(|_| format!("keys[{i}].{name} is not base64url"))
            };
            let material = match (text("kty"), text("crv")) {
                (Some("RSA"), _) => {
                    let n = bytes("n")?;
                    if n.len() < 256 {
                        return Err(format!("keys[{i}]: RSA keys need at least 2048 bits"));
                    }
                    Material::Rsa { n, e: bytes("e")? }
                }
                (Some("EC"), Some("P-256")) => {
                    let (x, y) = (bytes("x")?, bytes("y")?);
                    if x.len() != 32 || y.len() != 32 {
                        return Err(format!("keys[{i}]: a P-256 point has 32-byte coordinates"));
                    }
                    let mut point = vec![4u8];
                    point.extend(x);
                    point.extend(y);
                    Material::P256(point)
                }
                (Some("OKP"), Some("Ed25519")) => {
                    let x = bytes("x")?;
                    if x.len() != 32 {
                        return Err(format!("keys[{i}]: an Ed25519 key is 32 bytes"));
                    }
                    Material::Ed25519(x)
                }
                // Other curves and types: not for us.
                _ => continue,
            };
            let alg = match text("alg") {
                None => None,
                Some(a) => match ClientAlg::parse(a).filter(|a| material.fits(*a)) {
                    Some(a) => Some(a),
                    None => continue,
                },
            };
            out.push(ClientKey {
                kid: text("kid").map(str::to_string),
                alg,
                material,
            });
        }
        if out.is_empty() {
            return Err("the JWK Set has no RSA, P-256 or Ed25519 signature key".to_string());
        }
        Ok(ClientJwks { keys: out })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys that may have signed with `alg` under `kid`: the one named,
    /// or with no `kid`, every key that fits the algorithm.
    fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: ClientAlg,
    ) -> impl Iterator<Item = &'a ClientKey> + 'a {
        self.keys.iter().filter(move |k| {
            k.material.fits(alg)
                && k.alg.is_none_or(|a| a == alg)
                && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid))
        })
    }
}

/// What a client's JWS is checked against.
pub enum ClientVerifier<'a> {
    Keys(&'a ClientJwks),
    /// The client secret (HMAC).
    Secret(&'a [u8]),
}

/// A compact JWS of a client, parsed but not verified yet.
pub struct ClientJws<'a> {
    pub alg: ClientAlg,
    pub kid: Option<String>,
    /// The protected header, as sent.
    pub header: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
    /// The payload, unverified until [`ClientJws::verify`] says so.
    claims: Map<String, Value>,
}

/// Longest client JWS looked at.
pub const MAX_CLIENT_JWS: usize = 16 * 1024;

impl<'a> ClientJws<'a> {
    /// Split and decode `token`; `Malformed` for anything but a three-part
    /// JWS with JSON object header and payload, an algorithm sesame knows
    /// (never `none`) and no `crit`.
    pub fn parse(token: &'a str) -> Result<ClientJws<'a>, JwtError> {
        if token.len() > MAX_CLIENT_JWS {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header = object(h)?;
        if header.contains_key("crit") {
            return Err(JwtError::Malformed);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(ClientAlg::parse)
            .ok_or(JwtError::BadSignature)?;
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_string);
        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
        Ok(ClientJws {
            alg,
            kid,
            header,
            signing_input: &token[..h.len() + 1 + p.len()],
            signature,
            claims: object(p)?,
        })
    }

    /// The claims as sent, before any verification: only to find out which
    /// client claims to have signed.
    pub fn unverified_claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The claims, if the signature verifies with `verifier` and `alg` is
    /// one the caller allows.
    pub fn verify(
        self,
        verifier: ClientVerifier<'_>,
        allowed: &[ClientAlg],
    ) -> Result<Map<String, Value>, JwtError> {
        if !allowed.contains(&self.alg) {
            return Err(JwtError::BadSignature);
        }
        let data = self.signing_input.as_bytes();
        let ok = match verifier {
            ClientVerifier::Secret(secret) => {
                let algorithm = match self.alg {
                    ClientAlg::HS256 => ring::hmac::HMAC_SHA256,
                    ClientAlg::HS384 => ring::hmac::HMAC_SHA384,
                    ClientAlg::HS512 => ring::hmac::HMAC_SHA512,
                    _ => return Err(JwtError::BadSignature),
                };
                let key = ring::hmac::Key::new(algorithm, secret);
                // Constant time.
                ring::hmac::verify(&key, data, &self.signature).is_ok()
            }
            ClientVerifier::Keys(jwks) => {
                let mut candidates = jwks.candidates(self.kid.as_deref(), self.alg).peekable();
                if candidates.peek().is_none() {
                    return Err(JwtError::UnknownKey);
                }
                candidates.any(|k| verify_with(&k.material, self.alg, data, &self.signature))
            }
        };
        if ok {
            Ok(self.claims)
        } else {
            Err(JwtError::BadSignature)
        }
    }
}

fn verify_with(material: &Material, alg: ClientAlg, data: &[u8], sig: &[u8]) -> bool {
    match (material, alg) {
        (Material::Rsa { n, e }, ClientAlg::RS256 | ClientAlg::PS256) => {
            let params = if alg == ClientAlg::RS256 {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, data, sig)
                .is_ok()
        }
        (Material::P256(point), ClientAlg::ES256) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(data, sig)
                .is_ok()
        }
        (Material::Ed25519(x), ClientAlg::EdDSA) => UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(data, sig)
            .is_ok(),
        _ => false,
    }
}

fn object(part: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}
