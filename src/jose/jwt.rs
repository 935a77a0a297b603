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
/// `kid` must name a key of the set published at `now`) and return its claims. Expiry is the caller's job.
///
/// Errors: `Malformed` for anything that is not a three-part base64url JWS with a
/// JSON object header and payload (or that carries `crit`); `UnknownKey` when `kid`
/// is missing or names no key of the set; `BadSignature` when the header `alg`
/// differs from the key's (including `none`) or the signature does not verify.
pub fn verify_jwt(token: &str, keys: &Keyset, now: i64) -> Result<serde_json::Value, JwtError> {
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
    let key = keys.find(kid, now).ok_or(JwtError::UnknownKey)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::jose::keys::tests::test_key;
    use crate::jose::SigningKey;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    fn enc(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn set(alg: Alg) -> (SigningKey, Keyset) {
        let key = test_key(alg);
        (key.clone(), Keyset::single(key))
    }

    /// A token signed by `key` over arbitrary header and payload bytes.
    fn forge(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", enc(header), enc(payload));
        let sig = key.sign_bytes(input.as_bytes()).unwrap();
        format!("{input}.{}", enc(&sig))
    }

    fn header_for(key: &SigningKey) -> Vec<u8> {
        serde_json::to_vec(&json!({"alg": key.alg().as_str(), "kid": key.kid()})).unwrap()
    }

    fn claims() -> serde_json::Value {
        json!({"iss": "https://id.example.com", "sub": "alice", "aud": "app", "exp": 2_000_000_000u64, "groups": ["staff"]})
    }

    #[test]
    fn every_alg_round_trips() {
        for alg in Alg::ALL {
            let (key, keys) = set(alg);
            let token = key.sign_jwt("JWT", &claims()).unwrap();
            assert_eq!(token.split('.').count(), 3);
            assert_eq!(verify_jwt(&token, &keys, 0).unwrap(), claims(), "{alg}");
        }
    }

    #[test]
    fn any_key_of_the_set_verifies() {
        let (old, _) = set(Alg::RS256);
        let (new, _) = set(Alg::EdDSA);
        let keys = Keyset::new(vec![new.clone(), old.clone()]).unwrap();
        for key in [old, new] {
            let token = key.sign_jwt("JWT", &claims()).unwrap();
            assert_eq!(verify_jwt(&token, &keys, 0).unwrap(), claims());
        }
    }

    #[test]
    fn tampered_payload_is_rejected() {
        for alg in Alg::ALL {
            let (key, keys) = set(alg);
            let token = key.sign_jwt("JWT", &claims()).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            let mut evil = claims();
            evil["sub"] = json!("mallory");
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                enc(&serde_json::to_vec(&evil).unwrap()),
                parts[2]
            );
            assert!(
                matches!(verify_jwt(&forged, &keys, 0), Err(JwtError::BadSignature)),
                "{alg}"
            );
        }
    }

    #[test]
    fn tampered_signature_is_rejected() {
        for alg in Alg::ALL {
            let (key, keys) = set(alg);
            let token = key.sign_jwt("JWT", &claims()).unwrap();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            sig[5] ^= 0x01;
            let forged = format!("{input}.{}", enc(&sig));
            assert!(
                matches!(verify_jwt(&forged, &keys, 0), Err(JwtError::BadSignature)),
                "{alg}"
            );
            let truncated = format!("{input}.{}", enc(&sig[..sig.len() - 1]));
            assert!(verify_jwt(&truncated, &keys, 0).is_err(), "{alg}");
            let empty = format!("{input}.");
            assert!(verify_jwt(&empty, &keys, 0).is_err(), "{alg}");
        }
    }

    #[test]
    fn alg_none_is_rejected() {
        let (key, keys) = set(Alg::RS256);
        let header = serde_json::to_vec(&json!({"alg": "none", "kid": key.kid()})).unwrap();
        let payload = serde_json::to_vec(&claims()).unwrap();
        let token = format!("{}.{}.", enc(&header), enc(&payload));
        assert!(matches!(
            verify_jwt(&token, &keys, 0),
            Err(JwtError::BadSignature)
        ));
        let no_kid = serde_json::to_vec(&json!({"alg": "none"})).unwrap();
        let token = format!("{}.{}.", enc(&no_kid), enc(&payload));
        assert!(verify_jwt(&token, &keys, 0).is_err());
    }

    #[test]
    fn header_alg_must_equal_the_keys_alg() {
        // Signed correctly by the key, but the header claims another alg.
        let (rsa, keys) = set(Alg::RS256);
        for other in ["PS256", "ES256", "EdDSA", "HS256", "RS512", "rs256", ""] {
            let header = serde_json::to_vec(&json!({"alg": other, "kid": rsa.kid()})).unwrap();
            let token = forge(&rsa, &header, b"{}");
            assert!(
                matches!(verify_jwt(&token, &keys, 0), Err(JwtError::BadSignature)),
                "{other}"
            );
        }
        // Classic confusion: HS256 with the public key as the HMAC secret.
        let (es, keys) = set(Alg::ES256);
        let header = serde_json::to_vec(&json!({"alg": "HS256", "kid": es.kid()})).unwrap();
        let input = format!("{}.{}", enc(&header), enc(b"{}"));
        let secret = biscuit::jws::Secret::Bytes(serde_json::to_vec(es.public_jwk()).unwrap());
        let mac = biscuit::jwa::SignatureAlgorithm::HS256
            .sign(input.as_bytes(), &secret)
            .unwrap();
        let token = format!("{input}.{}", enc(&mac));
        assert!(verify_jwt(&token, &keys, 0).is_err());
        // Non-string alg.
        let header = serde_json::to_vec(&json!({"alg": 1, "kid": es.kid()})).unwrap();
        assert!(verify_jwt(&forge(&es, &header, b"{}"), &keys, 0).is_err());
    }

    #[test]
    fn unknown_or_missing_kid_is_rejected() {
        let (key, keys) = set(Alg::ES256);
        let (other, _) = set(Alg::EdDSA);
        let token = other.sign_jwt("JWT", &claims()).unwrap();
        assert!(matches!(
            verify_jwt(&token, &keys, 0),
            Err(JwtError::UnknownKey)
        ));
        let header = serde_json::to_vec(&json!({"alg": "ES256"})).unwrap();
        let token = forge(&key, &header, b"{}");
        assert!(matches!(
            verify_jwt(&token, &keys, 0),
            Err(JwtError::UnknownKey)
        ));
        let header = serde_json::to_vec(&json!({"alg": "ES256", "kid": 7})).unwrap();
        assert!(verify_jwt(&forge(&key, &header, b"{}"), &keys, 0).is_err());
    }

    #[test]
    fn wrong_segment_counts_are_malformed() {
        let (key, keys) = set(Alg::ES256);
        let token = key.sign_jwt("JWT", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            parts[0].to_owned(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{token}.{}", parts[2]),
            format!("{token}."),
            format!(".{token}"),
        ] {
            assert!(
                matches!(verify_jwt(&bad, &keys, 0), Err(JwtError::Malformed)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_base64_is_malformed() {
        let (key, keys) = set(Alg::ES256);
        let token = key.sign_jwt("JWT", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let padded_sig = base64::engine::general_purpose::URL_SAFE
            .encode(URL_SAFE_NO_PAD.decode(parts[2]).unwrap());
        for bad in [
            format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.+{}", parts[0], parts[1], &parts[2][1..]),
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            format!("{}.{}.{padded_sig}", parts[0], parts[1]),
            format!("{}.{}.{}", "é", parts[1], parts[2]),
            "a.b.c".into(),
        ] {
            assert!(verify_jwt(&bad, &keys, 0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn non_json_and_non_object_parts_are_malformed() {
        let (key, keys) = set(Alg::EdDSA);
        let header = header_for(&key);
        for payload in [
            &b"not json"[..],
            b"[1,2]",
            b"\"str\"",
            b"null",
            b"{\"a\":1",
            b"",
        ] {
            let token = forge(&key, &header, payload);
            assert!(
                matches!(verify_jwt(&token, &keys, 0), Err(JwtError::Malformed)),
                "{payload:?}"
            );
        }
        for header in [&b"not json"[..], b"[]", b"\"ES256\"", b""] {
            let token = forge(&key, header, b"{}");
            assert!(
                matches!(verify_jwt(&token, &keys, 0), Err(JwtError::Malformed)),
                "{header:?}"
            );
        }
    }

    #[test]
    fn crit_header_is_refused() {
        let (key, keys) = set(Alg::EdDSA);
        let header = serde_json::to_vec(
            &json!({"alg": "EdDSA", "kid": key.kid(), "crit": ["b64"], "b64": false}),
        )
        .unwrap();
        assert!(verify_jwt(&forge(&key, &header, b"{}"), &keys, 0).is_err());
    }

    #[test]
    fn huge_and_deeply_nested_input_is_rejected_without_panic() {
        let (key, keys) = set(Alg::EdDSA);
        let huge = "A".repeat(10 * 1024 * 1024);
        assert!(matches!(
            verify_jwt(&huge, &keys, 0),
            Err(JwtError::Malformed)
        ));
        let huge = format!("{huge}.{huge}.{huge}");
        assert!(verify_jwt(&huge, &keys, 0).is_err());
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let token = forge(&key, &header_for(&key), deep.as_bytes());
        assert!(verify_jwt(&token, &keys, 0).is_err());
        let token = forge(&key, deep.as_bytes(), b"{}");
        assert!(verify_jwt(&token, &keys, 0).is_err());
    }

    #[test]
    fn random_garbage_and_mutations_never_panic_or_pass() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"ABCxyz019-_.=+/ {}\"\\";
        for alg in Alg::ALL {
            let (key, keys) = set(alg);
            let token = key.sign_jwt("JWT", &claims()).unwrap();
            for _ in 0..300 {
                let len = rng.gen_range(0..200);
                let garbage: String = (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                    .collect();
                assert!(verify_jwt(&garbage, &keys, 0).is_err());

                let mut mutated = token.clone().into_bytes();
                let at = rng.gen_range(0..mutated.len());
                mutated[at] = alphabet[rng.gen_range(0..alphabet.len())];
                let mutated = String::from_utf8(mutated).unwrap();
                if mutated != token {
                    assert!(verify_jwt(&mutated, &keys, 0).is_err(), "{alg}: {mutated}");
                }
            }
        }
    }

    #[test]
    fn at_hash_matches_oidc_core_examples() {
        // OpenID Connect Core 1.0, Appendix A.3 (at_hash of the RS256 example
        // access token) and A.4 (c_hash of the example code).
        assert_eq!(
            at_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(
            at_hash(
                Alg::RS256,
                "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
            ),
            "LDktKdoQak3Pk0cnXxCltA"
        );
        // EdDSA (Ed25519) uses SHA-512 (OpenID Connect issue 1125).
        assert_eq!(
            at_hash(Alg::EdDSA, "dNZX1hEZ9wBCzNL40Upu646bdzQA"),
            "8xltSlOGYrWy8W9yNvRlEth1i_bXW-JROWPLvCv5zog"
        );
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_right_hash() {
        let value = "jHkWEdUXMU1BwAsC4vtUsZwnNwHGlNZxwv3cV6a6kMtc";
        let sha256 = openssl::sha::sha256(value.as_bytes());
        let sha512 = openssl::sha::sha512(value.as_bytes());
        for alg in [Alg::RS256, Alg::PS256, Alg::ES256] {
            assert_eq!(at_hash(alg, value), enc(&sha256[..16]));
        }
        let ed = at_hash(Alg::EdDSA, value);
        assert_eq!(ed, enc(&sha512[..32]));
        assert_eq!(URL_SAFE_NO_PAD.decode(ed).unwrap().len(), 32);
        assert_eq!(
            at_hash(Alg::ES256, ""),
            enc(&openssl::sha::sha256(b"")[..16])
        );
    }
}
