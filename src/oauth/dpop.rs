//! DPoP (RFC 9449): a client proves, with each request, that it holds the
//! private key its tokens are bound to. Proofs are checked here for the
//! token endpoint and for resource requests (userinfo); tokens carry the
//! key's RFC 7638 thumbprint (`jkt`). Nonces (§8) are ours, stateless: an
//! HMAC over the tenant and a five-minute slot, under the deployment's key,
//! so every node accepts every node's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{Ctx, ErrorCode, OAuthError};
use crate::jose::{ClientAlg, ClientJwks, ClientJws, ClientVerifier};

/// The algorithms a proof may be signed with (discovery's
/// `dpop_signing_alg_values_supported`): asymmetric only.
pub const ALGS: [ClientAlg; 4] = ClientAlg::ASYMMETRIC;
/// How far in the future a proof's `iat` may be (clock skew).
const MAX_FUTURE: i64 = 5;
/// Longest `jti` looked at.
const MAX_JTI_LEN: usize = 256;
/// A nonce is good in the slot it was made in and in the next one.
const NONCE_SLOT: i64 = 300;

/// The DPoP header(s) of a request, as sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Header<'a> {
    #[default]
    Absent,
    One(&'a str),
    /// More than one `DPoP` header: refused (§4.3, check 1).
    Repeated,
}

/// A proof that verified: the thumbprint of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
}

fn invalid(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

/// Check the request's proof (RFC 9449 §4.3), if it sent one. At a
/// resource, `access_token` is the token presented: the proof must carry
/// its hash (`ath`). The proof's `jti` is then used up, on every node.
pub async fn check(ctx: &Ctx<'_>, access_token: Option<&str>) -> Result<Option<Proof>, OAuthError> {
    let proof = match ctx.request.dpop {
        Header::Absent => return Ok(None),
        Header::Repeated => return Err(invalid("send one DPoP proof, not several")),
        Header::One(p) => p,
    };
    let (proof, jti, iat) = verify(ctx, proof, access_token)?;
    let settings = ctx.tenant.dpop;
    // Kept until no clock could still take it: its `iat` was at most
    // MAX_FUTURE ahead, and it is refused `max_age` after that.
    let keep_until = iat.max(ctx.now) + settings.max_age.as_secs() as i64 + MAX_FUTURE;
    if !ctx
        .store
        .use_dpop_proof(&ctx.tenant.id, &proof.jkt, &jti, keep_until)
        .await?
    {
        return Err(invalid(
            "this DPoP proof was used already: make one per request",
        ));
    }
    Ok(Some(proof))
}

/// Everything but the single use: the proof, its `jti` and its `iat`.
fn verify(
    ctx: &Ctx<'_>,
    proof: &str,
    access_token: Option<&str>,
) -> Result<(Proof, String, i64), OAuthError> {
    let jws = ClientJws::parse(proof).map_err(|_| invalid("the DPoP proof is not a JWS"))?;
    let typ = jws.header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(invalid("a DPoP proof has `typ: dpop+jwt`"));
    }
    if !ALGS.contains(&jws.alg) {
        return Err(invalid(
            "a DPoP proof is signed with RS256, PS256, ES256 or EdDSA",
        ));
    }
    let jwk = jws
        .header
        .get("jwk")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| invalid("a DPoP proof carries its public key as `jwk`"))?;
    let keys =
        ClientJwks::parse(&json!({ "keys": [Value::Object(jwk.clone())] })).map_err(|_| {
            invalid("the DPoP proof's `jwk` must be a public RSA, P-256 or Ed25519 key")
        })?;
    let jkt = thumbprint(&jwk).ok_or_else(|| invalid("the DPoP proof's `jwk` is malformed"))?;
    let alg = jws.alg;
    let claims = jws
        .verify(ClientVerifier::Keys(&keys), &[alg])
        .map_err(|_| invalid("the DPoP proof's signature does not verify with its `jwk`"))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);

    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or_else(|| invalid("a DPoP proof has a `jti`"))?;
    if text("htm") != Some(ctx.request.method) {
        return Err(invalid(
            "the DPoP proof's `htm` is not this request's method",
        ));
    }
    if !text("htu").is_some_and(|u| same_uri(u, ctx.request.url)) {
        return Err(invalid("the DPoP proof's `htu` is not this endpoint's URL"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("a DPoP proof has a numeric `iat`"))?;
    let max_age = ctx.tenant.dpop.max_age.as_secs() as i64;
    if iat > ctx.now + MAX_FUTURE || iat < ctx.now - max_age {
        return Err(invalid(&format!(
            "the DPoP proof's `iat` is not within {max_age} s of the server's clock"
        )));
    }
    if ctx.tenant.dpop.require_nonce && !nonce_is_good(ctx, text("nonce")) {
        return Err(OAuthError::new(
            ErrorCode::UseDpopNonce,
            "a DPoP proof must carry the nonce of the DPoP-Nonce header",
        ));
    }
    if let Some(token) = access_token {
        if text("ath") != Some(ath(token).as_str()) {
            return Err(invalid(
                "the DPoP proof's `ath` is not the hash of the access token",
            ));
        }
    }
    Ok((Proof { jkt }, jti.to_string(), iat))
}

/// `ath`: the base64url SHA-256 of an access token (§4.2).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required
/// members in lexicographic order, base64url.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, m) in members.iter().enumerate() {
        let v = jwk.get(*m)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&format!("{}:{}", json!(m), json!(v)));
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// Whether `s` has the shape of a SHA-256 thumbprint: 43 base64url characters.
pub fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `htu` against the endpoint's URL: the same scheme, host, port and path
/// (§4.3 check 9: query and fragment aside; RFC 3986 §6.2.2-3 normalised).
fn same_uri(htu: &str, endpoint: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(endpoint)) else {
        return false;
    };
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// The nonce to hand out now (`DPoP-Nonce`), for a tenant that requires them.
pub fn nonce(ctx: &Ctx<'_>) -> Option<String> {
    ctx.tenant
        .dpop
        .require_nonce
        .then(|| nonce_for(ctx, ctx.now.div_euclid(NONCE_SLOT)))
}

fn nonce_for(ctx: &Ctx<'_>, slot: i64) -> String {
    let slot = slot.to_string();
    let mac = ctx
        .services
        .csrf_key
        .token(&["dpop-nonce", &ctx.tenant.id, &slot]);
    format!("{slot}.{mac}")
}

/// Whether `given` is a nonce of this slot or the one before (constant time
/// in the MAC).
fn nonce_is_good(ctx: &Ctx<'_>, given: Option<&str>) -> bool {
    let Some((slot, mac)) = given.and_then(|g| g.split_once('.')) else {
        return false;
    };
    let Ok(slot) = slot.parse::<i64>() else {
        return false;
    };
    let now = ctx.now.div_euclid(NONCE_SLOT);
    if slot != now && slot != now - 1 {
        return false;
    }
    let slot = slot.to_string();
    ctx.services
        .csrf_key
        .verify(&["dpop-nonce", &ctx.tenant.id, &slot], Some(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_is_rfc_7638s_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn htu_ignores_query_fragment_and_default_port() {
        let at = "https://id.example/t/token";
        assert!(same_uri("https://id.example/t/token", at));
        assert!(same_uri("https://ID.example:443/t/token?x=1#f", at));
        assert!(!same_uri("https://id.example/t/userinfo", at));
        assert!(!same_uri("http://id.example/t/token", at));
        assert!(!same_uri("https://id.example:8443/t/token", at));
        assert!(!same_uri("not a url", at));
    }

    #[test]
    fn ath_is_base64url_sha256() {
        // RFC 9449 §7.1's example token and its `ath`.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
