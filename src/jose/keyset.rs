//! The keys of one tenant over time: which key signs, which are published
//! (and verify) at a given moment. A key's [`KeyWindow`] says when; a keyset
//! whose keys all have [`KeyWindow::ALWAYS`] is today's fixed list (the
//! first key signs, all are published).

use bytes::Bytes;

use super::keys::{JoseError, SigningKey};
use super::Alg;

/// When a key signs and until when it is published, in unix seconds
/// (`None`: unbounded). Published from the start: a key is published from
/// the moment it is in the keyset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyWindow {
    /// Signs from this time on (inclusive).
    pub signs_from: Option<i64>,
    /// Signs until this time (exclusive).
    pub signs_until: Option<i64>,
    /// Published in JWKS, and verifies, until this time (exclusive).
    pub published_until: Option<i64>,
}

impl KeyWindow {
    /// Signs and is published at every time.
    pub const ALWAYS: KeyWindow = KeyWindow {
        signs_from: None,
        signs_until: None,
        published_until: None,
    };

    pub fn signs_at(&self, now: i64) -> bool {
        self.signs_from.is_none_or(|from| from <= now)
            && self.signs_until.is_none_or(|until| now < until)
            && self.published_at(now)
    }

    pub fn published_at(&self, now: i64) -> bool {
        self.published_until.is_none_or(|until| now < until)
    }
}

/// The keys of one tenant, each with its window. Never empty. The key that
/// signs at a time is the first of the tenant's algorithm whose window
/// holds that time; with none, the first of that algorithm still published,
/// else the first listed (so a tenant always signs; `sesame check` warns of
/// configured windows that leave a gap). The signing key is always
/// published: what it signs verifies. A tenant whose algorithm is not
/// RS256 also has RS256 keys (OpenID Connect Core §15.1), for the ID tokens
/// of clients that ask for it, chosen the same way.
#[derive(Debug, Clone)]
pub struct Keyset {
    alg: Alg,
    keys: Vec<(SigningKey, KeyWindow)>,
    /// The first listed key: it signs when nothing else can.
    first: SigningKey,
    rs256: bool,
    /// The JWKS document from each time on (sorted; the first from `i64::MIN`).
    jwks: Vec<(i64, Bytes)>,
}

impl Keyset {
    /// A keyset whose first key signs, every key always published. Errors
    /// if `keys` is empty or two keys share a `kid`.
    pub fn new(keys: Vec<SigningKey>) -> Result<Keyset, JoseError> {
        let alg = keys.first().map(SigningKey::alg).unwrap_or_default();
        Keyset::windowed(
            alg,
            keys.into_iter().map(|k| (k, KeyWindow::ALWAYS)).collect(),
        )
    }

    /// A keyset for a tenant signing with `alg`, in order of preference.
    /// Errors if `keys` is empty or two keys share a `kid`.
    pub fn windowed(alg: Alg, keys: Vec<(SigningKey, KeyWindow)>) -> Result<Keyset, JoseError> {
        let Some(first) = keys.first().map(|(k, _)| k.clone()) else {
            return Err(JoseError::Key("a keyset needs at least one key".into()));
        };
        for (i, (key, _)) in keys.iter().enumerate() {
            if keys.iter().take(i).any(|(k, _)| k.kid() == key.kid()) {
                return Err(JoseError::Key(format!(
                    "the same key is listed twice (kid {})",
                    key.kid()
                )));
            }
        }
        let mut set = Keyset {
            alg,
            keys,
            first,
            rs256: false,
            jwks: Vec::new(),
        };
        set.jwks = set.documents();
        Ok(set)
    }

    /// A keyset of one key.
    pub fn single(key: SigningKey) -> Keyset {
        let alg = key.alg();
        let mut set = Keyset {
            alg,
            first: key.clone(),
            keys: vec![(key, KeyWindow::ALWAYS)],
            rs256: false,
            jwks: Vec::new(),
        };
        set.jwks = set.documents();
        set
    }

    /// This keyset, with `keys` (RS256) signing the ID tokens of clients
    /// that ask for RS256 when the tenant's algorithm is another; published.
    pub fn with_rs256(mut self, keys: Vec<(SigningKey, KeyWindow)>) -> Keyset {
        if self.alg == Alg::RS256 {
            return self;
        }
        for (key, window) in keys {
            if key.alg() == Alg::RS256 && self.find_any(key.kid()).is_none() {
                self.keys.push((key, window));
                self.rs256 = true;
            }
        }
        self.jwks = self.documents();
        self
    }

    /// The tenant's algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The key that signs with the tenant's algorithm at `now`.
    pub fn signing(&self, now: i64) -> &SigningKey {
        self.choose(self.alg, now).unwrap_or(&self.first)
    }

    /// The key that signs with `alg` at `now`, if the tenant signs with it.
    pub fn for_alg(&self, alg: Alg, now: i64) -> Option<&SigningKey> {
        if alg == self.alg {
            Some(self.signing(now))
        } else if alg == Alg::RS256 && self.rs256 {
            self.choose(alg, now)
        } else {
            None
        }
    }

    fn choose(&self, alg: Alg, now: i64) -> Option<&SigningKey> {
        let of_alg = || self.keys.iter().filter(move |(k, _)| k.alg() == alg);
        of_alg()
            .find(|(_, w)| w.signs_at(now))
            .or_else(|| of_alg().find(|(_, w)| w.published_at(now)))
            .or_else(|| of_alg().next())
            .map(|(k, _)| k)
    }

    /// The algorithms the tenant signs ID tokens with, its own first.
    pub fn signing_algs(&self) -> Vec<Alg> {
        let mut algs = vec![self.alg];
        if self.rs256 {
            algs.push(Alg::RS256);
        }
        algs
    }

    /// Every key with its window, published or not, in order of preference.
    pub fn keys(&self) -> &[(SigningKey, KeyWindow)] {
        &self.keys
    }

    /// The published key named `kid` at `now` (the one a token must name to verify).
    pub fn find(&self, kid: &str, now: i64) -> Option<&SigningKey> {
        let signing = self.signing(now);
        if signing.kid() == kid {
            return Some(signing);
        }
        self.keys
            .iter()
            .find(|(k, w)| k.kid() == kid && w.published_at(now))
            .map(|(k, _)| k)
    }

    /// The key named `kid`, whatever its window.
    pub fn find_any(&self, kid: &str) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|(k, _)| k.kid() == kid)
            .map(|(k, _)| k)
    }

    /// Whether `other` holds the same keys with the same windows.
    pub fn same_as(&self, other: &Keyset) -> bool {
        self.alg == other.alg
            && self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(&other.keys)
                .all(|((a, wa), (b, wb))| a.kid() == b.kid() && wa == wb)
    }

    /// `{"keys": [...]}` as served at /jwks at `now`: the signing key first,
    /// then every other key published at `now`.
    pub fn jwks(&self, now: i64) -> Bytes {
        let i = self.jwks.partition_point(|(from, _)| *from <= now);
        self.jwks
            .get(i.saturating_sub(1))
            .map(|(_, doc)| doc.clone())
            .unwrap_or_default()
    }

    /// [`Keyset::jwks`] as JSON.
    pub fn jwks_value(&self, now: i64) -> serde_json::Value {
        self.document(now)
    }

    fn document(&self, now: i64) -> serde_json::Value {
        // The signing key is published whatever its window says: what it
        // signs must verify.
        let signing = self.signing(now);
        let others = self
            .keys
            .iter()
            .filter(|(k, w)| w.published_at(now) && k.kid() != signing.kid())
            .map(|(k, _)| k);
        let keys: Vec<serde_json::Value> = std::iter::once(signing)
            .chain(others)
            .map(|k| k.public_jwk().clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The document of every stretch of time between two window edges.
    fn documents(&self) -> Vec<(i64, Bytes)> {
        let mut edges: Vec<i64> = self
            .keys
            .iter()
            .flat_map(|(_, w)| [w.signs_from, w.signs_until, w.published_until])
            .flatten()
            .collect();
        edges.push(i64::MIN);
        edges.sort_unstable();
        edges.dedup();
        edges
            .into_iter()
            .map(|from| (from, Bytes::from(self.document(from).to_string())))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::keys::tests::test_key;
    use super::*;

    fn kids(set: &Keyset, now: i64) -> Vec<String> {
        set.jwks_value(now)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn keyset_is_never_empty_and_first_key_signs() {
        assert!(Keyset::new(vec![]).is_err());
        let a = test_key(Alg::ES256);
        let b = test_key(Alg::EdDSA);
        assert!(Keyset::new(vec![a.clone(), a.clone()]).is_err());
        let set = Keyset::new(vec![b.clone(), a.clone()]).unwrap();
        assert_eq!(set.signing(0).kid(), b.kid());
        assert_eq!(set.keys().len(), 2);
        assert_eq!(set.find(a.kid(), 0).unwrap().kid(), a.kid());
        assert!(set.find("nope", 0).is_none());
        assert_eq!(kids(&set, 0), [b.kid(), a.kid()]);
        assert_eq!(set.jwks(0), set.jwks_value(0).to_string().as_bytes());
        assert_eq!(Keyset::single(a.clone()).signing(0).kid(), a.kid());
    }

    #[test]
    fn windows_choose_the_signing_key_and_the_published_ones() {
        let (old, new) = (test_key(Alg::ES256), test_key(Alg::EdDSA));
        // `old` signs until 100 and is published until 150; `new` from 100.
        let set = Keyset::windowed(
            Alg::ES256,
            vec![
                (
                    new.clone(),
                    KeyWindow {
                        signs_from: Some(100),
                        ..KeyWindow::ALWAYS
                    },
                ),
                (
                    old.clone(),
                    KeyWindow {
                        signs_from: None,
                        signs_until: Some(100),
                        published_until: Some(150),
                    },
                ),
            ],
        )
        .unwrap();
        // Of the tenant's alg (ES256) only `old` exists; `new` (EdDSA) is not
        // chosen to sign ES256, whatever its window.
        assert_eq!(set.signing(50).kid(), old.kid());
        assert_eq!(kids(&set, 50), [old.kid(), new.kid()]);
        assert_eq!(kids(&set, 149), [old.kid(), new.kid()]);
        // Past its window `old` is the only ES256 key, so it still signs,
        // and what signs is published.
        assert_eq!(set.signing(150).kid(), old.kid());
        assert_eq!(kids(&set, 150), [old.kid(), new.kid()]);
        assert!(set.find(old.kid(), 150).is_some());
        assert!(set.find_any(old.kid()).is_some());
    }

    #[test]
    fn the_first_key_whose_window_holds_now_signs() {
        let a = SigningKey::generate(Alg::ES256).unwrap();
        let b = SigningKey::generate(Alg::ES256).unwrap();
        let set = Keyset::windowed(
            Alg::ES256,
            vec![
                (
                    a.clone(),
                    KeyWindow {
                        signs_from: Some(10),
                        signs_until: Some(20),
                        published_until: Some(30),
                    },
                ),
                (
                    b.clone(),
                    KeyWindow {
                        signs_from: Some(20),
                        signs_until: Some(40),
                        published_until: Some(50),
                    },
                ),
            ],
        )
        .unwrap();
        assert_eq!(set.signing(15).kid(), a.kid());
        assert_eq!(kids(&set, 15), [a.kid(), b.kid()]);
        assert_eq!(set.signing(25).kid(), b.kid());
        assert_eq!(kids(&set, 25), [b.kid(), a.kid()]);
        assert_eq!(kids(&set, 30), [b.kid()]);
        // No window holds 5: the first key still published signs.
        assert_eq!(set.signing(5).kid(), a.kid());
        // Past every window: the first listed key signs, and so it is
        // published and verifies (a tenant always signs verifiable tokens).
        assert_eq!(set.signing(60).kid(), a.kid());
        assert_eq!(kids(&set, 60), [a.kid()]);
        assert!(set.find(a.kid(), 60).is_some());
        assert!(set.find(b.kid(), 60).is_none());
    }

    #[test]
    fn rs256_keys_are_offered_beside_another_alg() {
        let (es, rs) = (test_key(Alg::ES256), test_key(Alg::RS256));
        let set = Keyset::single(es.clone()).with_rs256(vec![(rs.clone(), KeyWindow::ALWAYS)]);
        assert_eq!(set.signing_algs(), [Alg::ES256, Alg::RS256]);
        assert_eq!(set.for_alg(Alg::RS256, 0).unwrap().kid(), rs.kid());
        assert_eq!(set.for_alg(Alg::ES256, 0).unwrap().kid(), es.kid());
        assert!(set.for_alg(Alg::EdDSA, 0).is_none());
        let rs_only = Keyset::single(rs.clone()).with_rs256(vec![(rs, KeyWindow::ALWAYS)]);
        assert_eq!(rs_only.signing_algs(), [Alg::RS256]);
        assert_eq!(rs_only.keys().len(), 1);
    }
}
