//! Keys for the tests' own JWTs (client assertions, request objects): made
//! with openssl, signed by `jsonwebtoken`, never by sesame's code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde_json::{json, Value};

/// A P-256 key pair: PKCS#8 PEM for signing, the public JWK for the YAML.
pub struct ClientKey {
    pub pem: Vec<u8>,
    pub kid: String,
    pub jwk: Value,
}

pub fn es256_key(kid: &str) -> ClientKey {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = EcKey::generate(&group).unwrap();
    let mut ctx = BigNumContext::new().unwrap();
    let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
    key.public_key()
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
        .unwrap();
    let b64 = |n: &BigNum| URL_SAFE_NO_PAD.encode(n.to_vec_padded(32).unwrap());
    let jwk = json!({ "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": b64(&x), "y": b64(&y) });
    ClientKey {
        pem: PKey::from_ec_key(key)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap(),
        kid: kid.to_string(),
        jwk,
    }
}

/// Now, in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The private JWK of `key` (with `d`): what a careless client might put
/// in a proof's header.
pub fn private_jwk(key: &ClientKey) -> Value {
    let ec = PKey::private_key_from_pem(&key.pem)
        .unwrap()
        .ec_key()
        .unwrap();
    let mut jwk = key.jwk.clone();
    jwk["d"] = json!(URL_SAFE_NO_PAD.encode(ec.private_key().to_vec_padded(32).unwrap()));
    jwk
}

/// The RFC 7638 thumbprint of a P-256 public JWK, computed here from the
/// RFC's rule (not sesame's code).
pub fn ec_thumbprint(jwk: &Value) -> String {
    use sha2::Digest as _;
    let canonical = format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap(),
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// A compact JWS over `header` and `claims`, signed ES256 by
/// `jsonwebtoken` with `key`: any header, as a client could send it.
pub fn es256_jws(key: &ClientKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signing = jsonwebtoken::EncodingKey::from_ec_pem(&key.pem).unwrap();
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &signing, jsonwebtoken::Algorithm::ES256)
            .unwrap();
    format!("{input}.{sig}")
}

/// A DPoP proof (RFC 9449 §4.2) by `key` for `htm` `htu`, with `extra`
/// claims (`ath`, `nonce`, or ones that replace the defaults).
pub fn dpop_proof(key: &ClientKey, htm: &str, htu: &str, extra: Value) -> String {
    let mut jwk = key.jwk.clone();
    if let Some(o) = jwk.as_object_mut() {
        o.remove("kid");
        o.remove("use");
    }
    let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk });
    let mut claims = json!({
        "jti": format!("{:032x}", rand_u128()),
        "htm": htm,
        "htu": htu,
        "iat": now(),
    });
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    es256_jws(key, &header, &claims)
}

/// `ath` of an access token: base64url SHA-256.
pub fn ath(token: &str) -> String {
    use sha2::Digest as _;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes()))
}

fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).unwrap();
    u128::from_le_bytes(b)
}
