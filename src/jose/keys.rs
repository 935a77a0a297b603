//! Signing keys: key material with openssl (generate, PEM in and out, public
//! parameters), signing through biscuit/ring (RS256, PS256, ES256) or openssl
//! (EdDSA), public JWKs through biscuit's JWK types.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use biscuit::jwa::SignatureAlgorithm;
use biscuit::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    OctetKeyPairParameters, PublicKeyUse, RSAKeyParameters, JWK,
};
use biscuit::jws::Secret;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use ring::signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use super::Alg;

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("{0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Smallest RSA modulus accepted (bits).
const RSA_MIN_BITS: u32 = 2048;
/// Largest RSA modulus ring signs with (bits).
const RSA_MAX_BITS: u32 = 4096;
/// Size of a generated RSA key (bits).
const RSA_GENERATED_BITS: u32 = 2048;

fn key_err(msg: impl Into<String>) -> JoseError {
    JoseError::Key(msg.into())
}

/// A private signing key with its public JWK and RFC 7638 `kid`.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

/// Everything derived from the key once, at load.
struct Inner {
    alg: Alg,
    pkey: PKey<Private>,
    signer: SignState,
    verifier: VerifyState,
    kid: String,
    jwk: serde_json::Value,
}

/// Prepared signing state.
enum SignState {
    /// biscuit over a parsed ring key pair (RS256, PS256, ES256).
    Biscuit(SignatureAlgorithm, Secret),
    /// openssl one-shot Ed25519 over `Inner::pkey`.
    Ed25519,
    /// openssl RSA over `Inner::pkey` (PKCS#1 v1.5, or PSS with a digest-sized
    /// salt): the same signature biscuit/ring produce, about 3.5× faster here,
    /// and RSA signing is the floor of every token response.
    Rsa { pss: bool },
}

/// Prepared verification state (public part only).
enum VerifyState {
    /// biscuit with `Secret::PublicKey`: PKCS#1 RSAPublicKey DER for RSA,
    /// the uncompressed SEC1 point for P-256.
    Biscuit(SignatureAlgorithm, Secret),
    /// openssl Ed25519 public key.
    Ed25519(PKey<Public>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// JWS protected header as sesame writes it (field order kept).
#[derive(serde::Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

impl SigningKey {
    /// Generate a fresh key for `alg` (RSA 2048, P-256 or Ed25519).
    pub fn generate(alg: Alg) -> Result<SigningKey, JoseError> {
        let gen_err =
            |e: openssl::error::ErrorStack| key_err(format!("key generation failed: {e}"));
        let pkey = match alg {
            Alg::RS256 | Alg::PS256 => {
                PKey::from_rsa(Rsa::generate(RSA_GENERATED_BITS).map_err(gen_err)?)
            }
            Alg::ES256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(gen_err)?;
                PKey::from_ec_key(EcKey::generate(&group).map_err(gen_err)?)
            }
            Alg::EdDSA => PKey::generate_ed25519(),
        }
        .map_err(gen_err)?;
        Self::from_pkey(pkey, alg)
    }

    /// Parse a PEM private key (PKCS#8, or PKCS#1/SEC1 as openssl reads them); the key type and size must suit `alg`.
    pub fn from_pem(pem: &[u8], alg: Alg) -> Result<SigningKey, JoseError> {
        check_pem_label(pem)?;
        // The callback refuses to supply a passphrase, so openssl never prompts
        // on a terminal; encrypted keys were already refused above.
        let pkey = PKey::private_key_from_pem_callback(pem, |_| Ok(0))
            .map_err(|e| key_err(format!("cannot parse the PEM private key: {e}")))?;
        Self::from_pkey(pkey, alg)
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<String, JoseError> {
        let pem = self
            .inner
            .pkey
            .private_key_to_pem_pkcs8()
            .map_err(|e| key_err(format!("cannot encode the key as PKCS#8: {e}")))?;
        String::from_utf8(pem).map_err(|_| key_err("PKCS#8 PEM is not UTF-8"))
    }

    pub fn alg(&self) -> Alg {
        self.inner.alg
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// Public JWK with `kty`, key parameters, `use: sig`, `alg` and `kid`.
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.inner.jwk
    }

    /// Compact JWS of `claims` with header `{alg, typ, kid}`.
    pub fn sign_jwt(&self, typ: &str, claims: &serde_json::Value) -> Result<String, JoseError> {
        if !claims.is_object() {
            return Err(JoseError::Sign("claims must be a JSON object".into()));
        }
        let header = Header {
            alg: self.inner.alg.as_str(),
            typ,
            kid: &self.inner.kid,
        };
        let header = serde_json::to_vec(&header).map_err(|e| JoseError::Sign(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| JoseError::Sign(e.to_string()))?;

        let mut token = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// Raw JWS signature of `data` (ES256: the 64-byte r||s form).
    pub(super) fn sign_bytes(&self, data: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.inner.signer {
            SignState::Biscuit(alg, secret) => alg
                .sign(data, secret)
                .map_err(|e| JoseError::Sign(e.to_string())),
            SignState::Ed25519 => Signer::new_without_digest(&self.inner.pkey)
                .and_then(|mut signer| signer.sign_oneshot_to_vec(data))
                .map_err(|e| JoseError::Sign(e.to_string())),
            SignState::Rsa { pss } => self.with_thread_copy(|pkey| {
                let mut signer = Signer::new(openssl::hash::MessageDigest::sha256(), pkey)
                    .map_err(|e| JoseError::Sign(e.to_string()))?;
                if *pss {
                    signer
                        .set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
                        .and_then(|_| {
                            signer.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH)
                        })
                        .and_then(|_| {
                            signer.set_rsa_mgf1_md(openssl::hash::MessageDigest::sha256())
                        })
                        .map_err(|e| JoseError::Sign(e.to_string()))?;
                }
                signer
                    .sign_oneshot_to_vec(data)
                    .map_err(|e| JoseError::Sign(e.to_string()))
            })?,
        }
    }

    /// Run `f` with this thread's own copy of the key. openssl keeps RSA
    /// blinding state per key for the thread that made it; every other
    /// thread signing with the same key goes through a shared, locked one.
    fn with_thread_copy<T>(
        &self,
        f: impl FnOnce(&PKey<Private>) -> Result<T, JoseError>,
    ) -> Result<Result<T, JoseError>, JoseError> {
        thread_local! {
            static COPIES: std::cell::RefCell<HashMap<String, PKey<Private>>> =
                std::cell::RefCell::new(HashMap::new());
        }
        COPIES.with(|cell| {
            let mut copies = cell.borrow_mut();
            if !copies.contains_key(&self.inner.kid) {
                let copy = self
                    .inner
                    .pkey
                    .private_key_to_der()
                    .and_then(|der| PKey::private_key_from_der(&der))
                    .map_err(|e| JoseError::Sign(e.to_string()))?;
                copies.insert(self.inner.kid.clone(), copy);
            }
            match copies.get(&self.inner.kid) {
                Some(pkey) => Ok(f(pkey)),
                None => Err(JoseError::Sign("no copy of the key".into())),
            }
        })
    }

    /// Whether `signature` is this key's valid JWS signature over `data`.
    pub(super) fn verify_signature(&self, data: &[u8], signature: &[u8]) -> bool {
        match &self.inner.verifier {
            VerifyState::Biscuit(alg, secret) => alg.verify(signature, data, secret).is_ok(),
            VerifyState::Ed25519(public) => Verifier::new_without_digest(public)
                .and_then(|mut verifier| verifier.verify_oneshot(signature, data))
                .unwrap_or(false),
        }
    }

    /// Validate `pkey` against `alg` and prepare everything once.
    fn from_pkey(pkey: PKey<Private>, alg: Alg) -> Result<SigningKey, JoseError> {
        let ossl = |what: &str| {
            let what = what.to_owned();
            move |e: openssl::error::ErrorStack| key_err(format!("{what}: {e}"))
        };
        let (params, signer, verifier) = match alg {
            Alg::RS256 | Alg::PS256 => {
                require_type(&pkey, Id::RSA, alg)?;
                let bits = pkey.bits();
                if bits < RSA_MIN_BITS {
                    return Err(key_err(format!(
                        "{alg} needs an RSA key of at least {RSA_MIN_BITS} bits, this one has {bits}"
                    )));
                }
                if bits > RSA_MAX_BITS {
                    return Err(key_err(format!(
                        "{alg} keys larger than {RSA_MAX_BITS} bits are not supported, this one has {bits}"
                    )));
                }
                let rsa = pkey.rsa().map_err(ossl("cannot read the RSA key"))?;
                let min_e = BigNum::from_u32(65537).map_err(ossl("openssl"))?;
                if rsa.e() < &*min_e {
                    return Err(key_err(format!(
                        "{alg} needs an RSA public exponent of at least 65537, this key has {}",
                        rsa.e()
                    )));
                }
                let params = rsa_params(rsa.n().to_vec(), rsa.e().to_vec())?;
                let der = pkey
                    .private_key_to_pkcs8()
                    .map_err(ossl("cannot encode the RSA key"))?;
                // ring must accept the key too: it verifies with it.
                RsaKeyPair::from_pkcs8(&der)
                    .map_err(|e| key_err(format!("RSA key rejected: {e}")))?;
                let public_der = rsa
                    .public_key_to_der_pkcs1()
                    .map_err(ossl("cannot encode the RSA public key"))?;
                let jwa = if alg == Alg::RS256 {
                    SignatureAlgorithm::RS256
                } else {
                    SignatureAlgorithm::PS256
                };
                (
                    params,
                    SignState::Rsa {
                        pss: alg == Alg::PS256,
                    },
                    VerifyState::Biscuit(jwa, Secret::PublicKey(public_der)),
                )
            }
            Alg::ES256 => {
                require_type(&pkey, Id::EC, alg)?;
                let ec = pkey.ec_key().map_err(ossl("cannot read the EC key"))?;
                if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                    let curve = ec
                        .group()
                        .curve_name()
                        .and_then(|nid| nid.short_name().ok())
                        .unwrap_or("explicit parameters");
                    return Err(key_err(format!(
                        "ES256 needs an EC key on curve P-256 (prime256v1), this one is on {curve}"
                    )));
                }
                ec.check_key().map_err(ossl("the EC key is inconsistent"))?;
                let mut ctx = BigNumContext::new().map_err(ossl("openssl"))?;
                let point = ec
                    .public_key()
                    .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                    .map_err(ossl("cannot encode the EC public key"))?;
                // 0x04 || x (32 bytes) || y (32 bytes)
                let (x, y) = match point.split_first() {
                    Some((0x04, xy)) if xy.len() == 64 => xy.split_at(32),
                    _ => return Err(key_err("unexpected EC public key encoding")),
                };
                let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: Default::default(),
                    curve: EllipticCurve::P256,
                    x: x.to_vec(),
                    y: y.to_vec(),
                    d: None,
                });
                // openssl's PKCS#8 for a named-curve EC key carries the public
                // key in ECPrivateKey, which ring requires.
                let der = pkey
                    .private_key_to_pkcs8()
                    .map_err(ossl("cannot encode the EC key"))?;
                let pair = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| key_err(format!("EC key rejected: {e}")))?;
                (
                    params,
                    SignState::Biscuit(
                        SignatureAlgorithm::ES256,
                        Secret::EcdsaKeyPair(Arc::new(pair)),
                    ),
                    VerifyState::Biscuit(SignatureAlgorithm::ES256, Secret::PublicKey(point)),
                )
            }
            Alg::EdDSA => {
                require_type(&pkey, Id::ED25519, alg)?;
                let raw = pkey
                    .raw_public_key()
                    .map_err(ossl("cannot read the Ed25519 public key"))?;
                let public = PKey::public_key_from_raw_bytes(&raw, Id::ED25519)
                    .map_err(ossl("cannot read the Ed25519 public key"))?;
                let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: Default::default(),
                    curve: EllipticCurve::Curve25519,
                    x: raw,
                    d: None,
                });
                (params, SignState::Ed25519, VerifyState::Ed25519(public))
            }
        };

        let kid = params
            .thumbprint(&biscuit::digest::SHA256)
            .map_err(|e| key_err(format!("cannot compute the JWK thumbprint: {e}")))?;
        let jwk = public_jwk(params, alg, &kid)?;
        Ok(SigningKey {
            inner: Arc::new(Inner {
                alg,
                pkey,
                signer,
                verifier,
                kid,
                jwk,
            }),
        })
    }
}

/// A new private key for `alg` as PKCS#8 PEM (`sesame keygen`).
pub fn keygen_pem(alg: Alg) -> Result<String, JoseError> {
    SigningKey::generate(alg)?.to_pkcs8_pem()
}

/// RSA public parameters from big-endian `n` and `e`. Built through serde so
/// biscuit's `BigUint` fields need no extra dependency here.
fn rsa_params(n: Vec<u8>, e: Vec<u8>) -> Result<AlgorithmParameters, JoseError> {
    let value = serde_json::json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(n),
        "e": URL_SAFE_NO_PAD.encode(e),
    });
    let params: RSAKeyParameters = serde_json::from_value(value)
        .map_err(|e| key_err(format!("cannot build the RSA JWK: {e}")))?;
    Ok(AlgorithmParameters::RSA(params))
}

/// The published JWK: biscuit's public parameters with `use`, `kid`, and
/// `alg` (inserted as a string: biscuit's `Algorithm` has no EdDSA).
fn public_jwk(
    params: AlgorithmParameters,
    alg: Alg,
    kid: &str,
) -> Result<serde_json::Value, JoseError> {
    let jwk = JWK {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_id: Some(kid.to_owned()),
            ..Default::default()
        },
        algorithm: params,
        additional: biscuit::Empty {},
    };
    let mut value = serde_json::to_value(&jwk)
        .map_err(|e| key_err(format!("cannot serialize the JWK: {e}")))?;
    let map = value
        .as_object_mut()
        .ok_or_else(|| key_err("JWK did not serialize to an object"))?;
    map.insert("alg".into(), alg.as_str().into());
    // Belt and braces: never publish private parameters.
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        map.remove(private);
    }
    Ok(value)
}

fn require_type(pkey: &PKey<Private>, want: Id, alg: Alg) -> Result<(), JoseError> {
    let have = pkey.id();
    if have == want {
        return Ok(());
    }
    let want = type_name(want);
    let have = type_name(have);
    Err(key_err(format!(
        "{alg} needs {want} key, this is {have} key"
    )))
}

fn type_name(id: Id) -> &'static str {
    match id {
        Id::RSA => "an RSA",
        Id::RSA_PSS => "an RSA-PSS-restricted",
        Id::EC => "an EC",
        Id::ED25519 => "an Ed25519",
        Id::ED448 => "an Ed448",
        Id::DSA => "a DSA",
        Id::DH => "a DH",
        Id::X25519 => "an X25519",
        Id::X448 => "an X448",
        _ => "an unsupported",
    }
}

/// Refuse, with a precise message, PEM input that is not an unencrypted
/// private key: no PEM block, a public key, a certificate, an encrypted key.
fn check_pem_label(pem: &[u8]) -> Result<(), JoseError> {
    let text = String::from_utf8_lossy(pem);
    let label = text.lines().find_map(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
    });
    let Some(label) = label else {
        return Err(key_err(
            "not a PEM private key (no -----BEGIN ... PRIVATE KEY----- line)",
        ));
    };
    if label.contains("ENCRYPTED") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(key_err(
            "encrypted PEM keys are not supported; decrypt it first (openssl pkey -in key.pem -out plain.pem)",
        ));
    }
    if label.contains("PUBLIC KEY") {
        return Err(key_err(format!(
            "this PEM holds a public key ({label}); a private key is needed to sign"
        )));
    }
    if !label.ends_with("PRIVATE KEY") {
        return Err(key_err(format!(
            "this PEM holds a {label}, not a private key"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(super) mod tests {
    use super::*;
    use openssl::bn::BigNum;
    use openssl::ecdsa::EcdsaSig;
    use openssl::hash::MessageDigest;
    use openssl::rsa::Padding;
    use openssl::sign::RsaPssSaltlen;
    use serde_json::json;
    use std::sync::OnceLock;

    /// One generated key per alg, shared by the tests (RSA generation is slow in debug).
    pub(crate) fn test_key(alg: Alg) -> SigningKey {
        static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            Alg::ALL
                .iter()
                .map(|&a| SigningKey::generate(a).unwrap())
                .collect()
        });
        keys.iter().find(|k| k.alg() == alg).unwrap().clone()
    }

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn jwk_str<'a>(key: &'a SigningKey, name: &str) -> &'a str {
        key.public_jwk()[name].as_str().unwrap()
    }

    fn split_token(token: &str) -> (String, Vec<u8>) {
        let (input, sig) = token.rsplit_once('.').unwrap();
        (input.to_owned(), b64(sig))
    }

    #[test]
    fn signing_key_is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SigningKey>();
        let key = test_key(Alg::ES256);
        let clone = key.clone();
        assert!(Arc::ptr_eq(&key.inner, &clone.inner));
    }

    #[test]
    fn generate_gives_the_expected_key_types() {
        assert_eq!(test_key(Alg::RS256).inner.pkey.bits(), 2048);
        assert_eq!(test_key(Alg::PS256).inner.pkey.bits(), 2048);
        assert_eq!(test_key(Alg::ES256).public_jwk()["crv"], "P-256");
        assert_eq!(test_key(Alg::EdDSA).public_jwk()["crv"], "Ed25519");
        for alg in Alg::ALL {
            assert_eq!(test_key(alg).alg(), alg);
        }
    }

    #[test]
    fn pkcs8_pem_round_trip_keeps_the_kid() {
        for alg in Alg::ALL {
            let key = test_key(alg);
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(
                pem.starts_with("-----BEGIN PRIVATE KEY-----"),
                "{alg}: {pem}"
            );
            let again = SigningKey::from_pem(pem.as_bytes(), alg).unwrap();
            assert_eq!(again.kid(), key.kid(), "{alg}");
            assert_eq!(again.public_jwk(), key.public_jwk(), "{alg}");
        }
    }

    #[test]
    fn keygen_pem_loads_back_for_every_alg() {
        for alg in [Alg::ES256, Alg::EdDSA] {
            let pem = keygen_pem(alg).unwrap();
            SigningKey::from_pem(pem.as_bytes(), alg).unwrap();
        }
    }

    #[test]
    fn traditional_pkcs1_rsa_pem_loads() {
        let key = test_key(Alg::RS256);
        let pem = key.inner.pkey.rsa().unwrap().private_key_to_pem().unwrap();
        assert!(String::from_utf8_lossy(&pem).contains("BEGIN RSA PRIVATE KEY"));
        for alg in [Alg::RS256, Alg::PS256] {
            let loaded = SigningKey::from_pem(&pem, alg).unwrap();
            assert_eq!(loaded.kid(), key.kid());
        }
    }

    #[test]
    fn traditional_sec1_ec_pem_loads() {
        let key = test_key(Alg::ES256);
        let pem = key
            .inner
            .pkey
            .ec_key()
            .unwrap()
            .private_key_to_pem()
            .unwrap();
        assert!(String::from_utf8_lossy(&pem).contains("BEGIN EC PRIVATE KEY"));
        let loaded = SigningKey::from_pem(&pem, Alg::ES256).unwrap();
        assert_eq!(loaded.kid(), key.kid());
        // And it signs.
        loaded.sign_jwt("JWT", &json!({"sub": "x"})).unwrap();
    }

    fn rejection(pem: &[u8], alg: Alg) -> String {
        match SigningKey::from_pem(pem, alg) {
            Ok(_) => panic!("{alg}: key accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn wrong_key_for_alg_is_rejected_with_a_clear_message() {
        let rsa = test_key(Alg::RS256).to_pkcs8_pem().unwrap();
        let ec = test_key(Alg::ES256).to_pkcs8_pem().unwrap();
        let ed = test_key(Alg::EdDSA).to_pkcs8_pem().unwrap();

        let msg = rejection(rsa.as_bytes(), Alg::ES256);
        assert!(
            msg.contains("ES256 needs an EC key") && msg.contains("RSA"),
            "{msg}"
        );
        let msg = rejection(ed.as_bytes(), Alg::RS256);
        assert!(
            msg.contains("RS256 needs an RSA key") && msg.contains("Ed25519"),
            "{msg}"
        );
        let msg = rejection(ec.as_bytes(), Alg::EdDSA);
        assert!(msg.contains("EdDSA needs an Ed25519 key"), "{msg}");
        let msg = rejection(ec.as_bytes(), Alg::PS256);
        assert!(msg.contains("PS256 needs an RSA key"), "{msg}");
    }

    #[test]
    fn p384_key_is_rejected_for_es256() {
        let group = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let pkey = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let msg = rejection(&pkey.private_key_to_pem_pkcs8().unwrap(), Alg::ES256);
        assert!(msg.contains("P-256") && msg.contains("secp384r1"), "{msg}");
        let sec1 = pkey.ec_key().unwrap().private_key_to_pem().unwrap();
        rejection(&sec1, Alg::ES256);
    }

    #[test]
    fn rsa_1024_is_rejected() {
        let pkey = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        let msg = rejection(&pkey.private_key_to_pem_pkcs8().unwrap(), Alg::RS256);
        assert!(
            msg.contains("at least 2048 bits") && msg.contains("1024"),
            "{msg}"
        );
    }

    #[test]
    fn rsa_with_small_public_exponent_is_rejected() {
        let e = BigNum::from_u32(3).unwrap();
        let pkey = PKey::from_rsa(Rsa::generate_with_e(2048, &e).unwrap()).unwrap();
        let msg = rejection(&pkey.private_key_to_pem_pkcs8().unwrap(), Alg::RS256);
        assert!(msg.contains("exponent"), "{msg}");
    }

    #[test]
    fn garbage_public_keys_and_encrypted_keys_are_rejected() {
        let msg = rejection(b"hello world", Alg::RS256);
        assert!(msg.contains("not a PEM private key"), "{msg}");
        rejection(b"", Alg::EdDSA);
        rejection(&[0xff, 0x00, 0x80, 0x2d], Alg::ES256);
        let msg = rejection(
            b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            Alg::RS256,
        );
        assert!(msg.contains("cannot parse"), "{msg}");

        let ec = test_key(Alg::ES256);
        let public = ec.inner.pkey.public_key_to_pem().unwrap();
        let msg = rejection(&public, Alg::ES256);
        assert!(msg.contains("public key"), "{msg}");
        let rsa_public = test_key(Alg::RS256)
            .inner
            .pkey
            .rsa()
            .unwrap()
            .public_key_to_pem_pkcs1()
            .unwrap();
        let msg = rejection(&rsa_public, Alg::RS256);
        assert!(msg.contains("public key"), "{msg}");

        let encrypted = ec
            .inner
            .pkey
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"pw")
            .unwrap();
        let msg = rejection(&encrypted, Alg::ES256);
        assert!(msg.contains("encrypted"), "{msg}");
    }

    #[test]
    fn public_jwk_has_public_members_only() {
        for alg in Alg::ALL {
            let key = test_key(alg);
            let jwk = key.public_jwk().as_object().unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(!jwk.contains_key(private), "{alg}: {private} published");
            }
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["kid"], key.kid());
            let kty = jwk["kty"].as_str().unwrap();
            let (kty_want, members): (&str, &[&str]) = match alg {
                Alg::RS256 | Alg::PS256 => ("RSA", &["n", "e"]),
                Alg::ES256 => ("EC", &["crv", "x", "y"]),
                Alg::EdDSA => ("OKP", &["crv", "x"]),
            };
            assert_eq!(kty, kty_want);
            let mut expected: Vec<&str> = ["kty", "use", "alg", "kid"].to_vec();
            expected.extend_from_slice(members);
            expected.sort_unstable();
            let mut have: Vec<&str> = jwk.keys().map(String::as_str).collect();
            have.sort_unstable();
            assert_eq!(have, expected, "{alg}");
        }
        let ec = test_key(Alg::ES256);
        assert_eq!(b64(jwk_str(&ec, "x")).len(), 32);
        assert_eq!(b64(jwk_str(&ec, "y")).len(), 32);
        assert_eq!(b64(jwk_str(&test_key(Alg::EdDSA), "x")).len(), 32);
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let params = rsa_params(b64(n), b64("AQAB")).unwrap();
        assert_eq!(
            params.thumbprint(&biscuit::digest::SHA256).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn kid_is_the_thumbprint_of_the_published_members() {
        // Recompute RFC 7638 by hand (openssl SHA-256) from the published JWK.
        for alg in Alg::ALL {
            let key = test_key(alg);
            let jwk = key.public_jwk();
            let canonical = match alg {
                Alg::RS256 | Alg::PS256 => format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    jwk["e"].as_str().unwrap(),
                    jwk["n"].as_str().unwrap()
                ),
                Alg::ES256 => format!(
                    r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                    jwk["x"].as_str().unwrap(),
                    jwk["y"].as_str().unwrap()
                ),
                Alg::EdDSA => format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    jwk["x"].as_str().unwrap()
                ),
            };
            let want = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(canonical.as_bytes()));
            assert_eq!(key.kid(), want, "{alg}");
        }
    }

    #[test]
    fn rs256_and_ps256_tokens_verify_with_openssl_from_jwk_n_e() {
        for alg in [Alg::RS256, Alg::PS256] {
            let key = test_key(alg);
            let n = BigNum::from_slice(&b64(jwk_str(&key, "n"))).unwrap();
            let e = BigNum::from_slice(&b64(jwk_str(&key, "e"))).unwrap();
            let public = PKey::from_rsa(Rsa::from_public_components(n, e).unwrap()).unwrap();
            let token = key.sign_jwt("JWT", &json!({"sub": "alice"})).unwrap();
            let (input, sig) = split_token(&token);
            let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
            if alg == Alg::PS256 {
                verifier.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                verifier
                    .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                    .unwrap();
            }
            verifier.update(input.as_bytes()).unwrap();
            assert!(verifier.verify(&sig).unwrap(), "{alg}");
            // and not over other data
            let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
            if alg == Alg::PS256 {
                verifier.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            }
            verifier.update(b"other").unwrap();
            assert!(!verifier.verify(&sig).unwrap_or(false), "{alg}");
        }
    }

    #[test]
    fn es256_token_verifies_with_openssl_from_jwk_x_y() {
        let key = test_key(Alg::ES256);
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let x = BigNum::from_slice(&b64(jwk_str(&key, "x"))).unwrap();
        let y = BigNum::from_slice(&b64(jwk_str(&key, "y"))).unwrap();
        let ec = EcKey::from_public_key_affine_coordinates(&group, &x, &y).unwrap();
        let public = PKey::from_ec_key(ec).unwrap();
        let token = key.sign_jwt("JWT", &json!({"sub": "alice"})).unwrap();
        let (input, sig) = split_token(&token);
        assert_eq!(sig.len(), 64, "JOSE ES256 signatures are r||s, 64 bytes");
        let (r, s) = sig.split_at(32);
        let der = EcdsaSig::from_private_components(
            BigNum::from_slice(r).unwrap(),
            BigNum::from_slice(s).unwrap(),
        )
        .unwrap()
        .to_der()
        .unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.update(input.as_bytes()).unwrap();
        assert!(verifier.verify(&der).unwrap());
    }

    #[test]
    fn eddsa_token_verifies_with_openssl_from_jwk_x() {
        let key = test_key(Alg::EdDSA);
        let public =
            PKey::public_key_from_raw_bytes(&b64(jwk_str(&key, "x")), Id::ED25519).unwrap();
        let token = key.sign_jwt("JWT", &json!({"sub": "alice"})).unwrap();
        let (input, sig) = split_token(&token);
        assert_eq!(sig.len(), 64);
        let mut verifier = Verifier::new_without_digest(&public).unwrap();
        assert!(verifier.verify_oneshot(&sig, input.as_bytes()).unwrap());
    }

    #[test]
    fn token_header_is_alg_typ_kid() {
        for alg in Alg::ALL {
            let key = test_key(alg);
            let token = key.sign_jwt("at+jwt", &json!({"a": 1})).unwrap();
            let header = token.split('.').next().unwrap();
            let header: serde_json::Value = serde_json::from_slice(&b64(header)).unwrap();
            assert_eq!(
                header,
                json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": key.kid()})
            );
        }
    }

    #[test]
    fn non_object_claims_are_refused() {
        let key = test_key(Alg::ES256);
        assert!(key.sign_jwt("JWT", &json!([1, 2])).is_err());
        assert!(key.sign_jwt("JWT", &json!("x")).is_err());
    }
}
