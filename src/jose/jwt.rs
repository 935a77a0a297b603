//! Compact JWS verification and the OIDC left-half hashes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};

use super::{Alg, Keyset};

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
}

/// Longest token accepted; ours are a few kilobytes at most.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Verify a compact JWS made by one of `keys` (header alg must equal the key's alg,
/// `kid` must name a key of the set) and return its claims. Expiry is the caller's job.
///
/// Errors: `Malformed` for anything that is not a three-part base64url JWS with a
/// JSON object header and payload (or that carries `crit`); `UnknownKey` when `kid`
/// is missing or names no key of the set; `BadSignature` when the header `alg`
/// differs from the key's (including `none`) or the signature does not verify.
pub fn verify_jwt(token: &str, keys: &Keyset) -> Result<serde_json::Value, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };

    let header = decode_object(header_b64)?;
    // We understand no extension header, so any `crit` must be refused (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(JwtError::Malformed);
    }
    let alg = header
        .get("alg")
        .and_then(|v| v.as_str())
        .ok_or(JwtError::Malformed)?;
    let kid = header
        .get("kid")
        .and_then(|v| v.as_str())
        .ok_or(JwtError::UnknownKey)?;
    let key = keys.find(kid).ok_or(JwtError::UnknownKey)?;
    if alg != key.alg().as_str() {
        return Err(JwtError::BadSignature);
    }

    let signature = decode(signature_b64)?;
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(JwtError::Malformed)?;
    if !key.verify_signature(signing_input.as_bytes(), &signature) {
        return Err(JwtError::BadSignature);
    }

    Ok(serde_json::Value::Object(decode_object(payload_b64)?))
}

fn decode(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)
}

fn decode_object(part: &str) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    match serde_json::from_slice(&decode(part)?) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// OIDC `at_hash`/`c_hash`: base64url of the left half of the hash of `value`
/// (SHA-256 for RS256/PS256/ES256, SHA-512 for EdDSA with Ed25519).
pub fn at_hash(alg: Alg, value: &str) -> String {
    match alg {
        Alg::RS256 | Alg::PS256 | Alg::ES256 => left_half(&Sha256::digest(value.as_bytes())),
        Alg::EdDSA => left_half(&Sha512::digest(value.as_bytes())),
    }
}

fn left_half(digest: &[u8]) -> String {
    let (left, _) = digest.split_at(digest.len() / 2);
    URL_SAFE_NO_PAD.encode(left)
}
