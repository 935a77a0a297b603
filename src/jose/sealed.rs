//! Generated signing keys at rest: AES-256-GCM under the operator's
//! key-encryption key (`key_encryption` in the config).
//!
//! A sealed key is text, so it fits the column that holds plaintext PEM
//! and says what it is: `enc:v1:` + base64url(nonce ‖ ciphertext ‖ tag),
//! with a fresh random 96-bit nonce per seal. The additional authenticated
//! data binds the ciphertext to its row — tenant id, alg and kid — so it
//! opens nowhere else: copied to another tenant's row it is refused like a
//! wrong key.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

use super::JoseError;

/// Length of a key-encryption key (AES-256).
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// What every sealed text starts with, whatever its version.
const SEALED: &str = "enc:";
const V1: &str = "enc:v1:";
/// Domain separation of the additional authenticated data.
const AAD_LABEL: &[u8] = b"sesame signing key v1";

/// The operator's key that encrypts generated signing keys. Its `Debug`
/// shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEncryptionKey([u8; KEY_BYTES]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

/// The row a sealed key belongs to.
#[derive(Debug, Clone, Copy)]
pub struct KeyRow<'a> {
    pub tenant_id: &'a str,
    pub alg: &'a str,
    pub kid: &'a str,
}

impl KeyRow<'_> {
    /// The label, then each field as a 4-byte big-endian length and its
    /// bytes: no two rows give the same AAD, whatever their fields hold.
    fn aad(&self) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        for field in [self.tenant_id, self.alg, self.kid] {
            aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
            aad.extend_from_slice(field.as_bytes());
        }
        aad
    }
}

/// Why a sealed key did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The text is not a sealed key this version can read.
    #[error("{0}")]
    Malformed(String),
    /// Authentication failed: another key-encryption key, another row, or
    /// altered bytes (AES-GCM can't tell which).
    #[error("authentication failed")]
    Mismatch,
}

/// Whether stored key text is sealed (as opposed to plaintext PEM).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED)
}

impl KeyEncryptionKey {
    /// The operator's text: 32 bytes in base64, standard or URL-safe
    /// alphabet, padded or not (`openssl rand -base64 32`); surrounding
    /// whitespace (a file's trailing newline) is ignored. Errors never
    /// repeat the text.
    pub fn parse(text: &str) -> Result<KeyEncryptionKey, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the key is empty; make one with `openssl rand -base64 32`".into());
        }
        let unpadded = text.trim_end_matches('=');
        let decoded = if unpadded.contains(['-', '_']) {
            URL_SAFE_NO_PAD.decode(unpadded)
        } else {
            STANDARD_NO_PAD.decode(unpadded)
        };
        let bytes = decoded.map_err(|_| {
            "the key is not base64; make one with `openssl rand -base64 32`".to_string()
        })?;
        let bytes: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "the key must be {KEY_BYTES} bytes in base64, this one decodes to {} bytes; \
                 make one with `openssl rand -base64 32`",
                bytes.len()
            )
        })?;
        Ok(KeyEncryptionKey(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> KeyEncryptionKey {
        KeyEncryptionKey(bytes)
    }

    /// `plaintext` encrypted for `row`, as `enc:v1:…`.
    pub fn seal(&self, row: KeyRow<'_>, plaintext: &[u8]) -> Result<String, JoseError> {
        let fail =
            |e: openssl::error::ErrorStack| JoseError::Key(format!("encryption failed: {e}"));
        let mut nonce = [0u8; NONCE_BYTES];
        openssl::rand::rand_bytes(&mut nonce).map_err(fail)?;
        let mut tag = [0u8; TAG_BYTES];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0,
            Some(&nonce),
            &row.aad(),
            plaintext,
            &mut tag,
        )
        .map_err(fail)?;
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len() + TAG_BYTES);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed.extend_from_slice(&tag);
        Ok(format!("{V1}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// The plaintext of `sealed`, if this key sealed it for `row`.
    pub fn open(&self, row: KeyRow<'_>, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let Some(body) = sealed.strip_prefix(V1) else {
            let version = sealed
                .strip_prefix(SEALED)
                .and_then(|rest| rest.split(':').next())
                .unwrap_or_default();
            return Err(OpenError::Malformed(format!(
                "unknown encryption format {version:?} (written by a newer sesame?)"
            )));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed("the encrypted key is not base64url".into()))?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::Malformed(
                "the encrypted key is truncated".into(),
            ));
        }
        let (nonce, rest) = bytes.split_at(NONCE_BYTES);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_BYTES);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0,
            Some(nonce),
            &row.aad(),
            ciphertext,
            tag,
        )
        .map_err(|_| OpenError::Mismatch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const PEM: &[u8] = b"-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n";

    fn kek(byte: u8) -> KeyEncryptionKey {
        KeyEncryptionKey::from_bytes([byte; KEY_BYTES])
    }

    fn row() -> KeyRow<'static> {
        KeyRow {
            tenant_id: "acme",
            alg: "RS256",
            kid: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        }
    }

    #[test]
    fn sealed_keys_open_with_the_same_key_and_row() {
        let sealed = kek(1).seal(row(), PEM).unwrap();
        assert!(sealed.starts_with("enc:v1:"), "{sealed}");
        assert!(is_sealed(&sealed));
        assert!(!is_sealed(std::str::from_utf8(PEM).unwrap()));
        assert!(!sealed.contains("PRIVATE KEY"));
        assert_eq!(kek(1).open(row(), &sealed).unwrap(), PEM);
        // nonce ‖ ciphertext ‖ tag
        let body = URL_SAFE_NO_PAD.decode(&sealed[7..]).unwrap();
        assert_eq!(body.len(), NONCE_BYTES + PEM.len() + TAG_BYTES);
    }

    #[test]
    fn every_seal_has_its_own_nonce() {
        let a = kek(1).seal(row(), PEM).unwrap();
        let b = kek(1).seal(row(), PEM).unwrap();
        assert_ne!(a, b);
        assert_ne!(a[7..23], b[7..23]);
    }

    #[test]
    fn a_wrong_key_does_not_open() {
        let sealed = kek(1).seal(row(), PEM).unwrap();
        assert_eq!(kek(2).open(row(), &sealed), Err(OpenError::Mismatch));
    }

    #[test]
    fn a_tampered_nonce_ciphertext_or_tag_does_not_open() {
        let sealed = kek(1).seal(row(), PEM).unwrap();
        let body = URL_SAFE_NO_PAD.decode(&sealed[7..]).unwrap();
        for at in [0, NONCE_BYTES + 3, body.len() - 1] {
            let mut bad = body.clone();
            bad[at] ^= 0x01;
            let bad = format!("enc:v1:{}", URL_SAFE_NO_PAD.encode(&bad));
            assert_eq!(kek(1).open(row(), &bad), Err(OpenError::Mismatch), "{at}");
        }
        // Cut short, or a byte dropped: no plaintext either.
        let short = format!("enc:v1:{}", URL_SAFE_NO_PAD.encode(&body[..body.len() - 1]));
        assert_eq!(kek(1).open(row(), &short), Err(OpenError::Mismatch));
    }

    #[test]
    fn a_key_moved_to_another_row_does_not_open() {
        let sealed = kek(1).seal(row(), PEM).unwrap();
        for moved in [
            KeyRow {
                tenant_id: "globex",
                ..row()
            },
            KeyRow {
                alg: "PS256",
                ..row()
            },
            KeyRow {
                kid: "another-kid",
                ..row()
            },
        ] {
            assert_eq!(
                kek(1).open(moved, &sealed),
                Err(OpenError::Mismatch),
                "{moved:?}"
            );
        }
    }

    #[test]
    fn row_fields_cannot_be_shifted_into_one_another() {
        let a = KeyRow {
            tenant_id: "ab",
            alg: "c",
            kid: "d",
        };
        let b = KeyRow {
            tenant_id: "a",
            alg: "bc",
            kid: "d",
        };
        assert_ne!(a.aad(), b.aad());
        let sealed = kek(1).seal(a, PEM).unwrap();
        assert_eq!(kek(1).open(b, &sealed), Err(OpenError::Mismatch));
    }

    #[test]
    fn malformed_sealed_text_is_told_apart() {
        for (text, says) in [
            ("enc:v2:AAAA", "\"v2\""),
            ("enc:v1:not base64!", "not base64url"),
            ("enc:v1:AAAA", "truncated"),
        ] {
            match kek(1).open(row(), text) {
                Err(OpenError::Malformed(m)) => assert!(m.contains(says), "{text}: {m}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 7 + 250) as u8);
        let want = KeyEncryptionKey::from_bytes(bytes);
        let standard = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(standard.ends_with('=') && standard.contains(['+', '/']));
        for text in [
            standard.clone(),
            standard.trim_end_matches('=').to_string(),
            URL_SAFE_NO_PAD.encode(bytes),
            format!("  {standard}\n"),
        ] {
            assert_eq!(KeyEncryptionKey::parse(&text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_keys_are_refused_without_being_repeated() {
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 16]);
        for (text, says) in [
            ("", "empty"),
            (" \n", "empty"),
            ("s3cr3t passw0rd!", "not base64"),
            (short.as_str(), "decodes to 16 bytes"),
        ] {
            let e = KeyEncryptionKey::parse(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(e.contains("openssl rand -base64 32"), "{e}");
            if !text.trim().is_empty() {
                assert!(!e.contains(text.trim()), "{e}");
            }
        }
    }

    #[test]
    fn debug_shows_nothing_of_the_key() {
        assert_eq!(format!("{:?}", kek(0x41)), "KeyEncryptionKey(..)");
    }
}
