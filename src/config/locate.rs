//! Line and column of a YAML path in the text it was parsed from.
//!
//! A parsed `serde_yaml::Value` keeps no positions, but serde_yaml's
//! deserializer marks each error with the place it happened. So to find
//! `tenants[0].clients[1].redirect_uris[0]`, the text is walked down that
//! path (everything else skipped) and an error is raised on arrival; its
//! mark is the answer. A path that goes further than the text (a default
//! that was never written) is placed at the deepest node it reaches.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What the walk raises on arrival (never shown).
const ARRIVED: &str = "\u{0}sesame: arrived";

/// Line and column (both from 1) of the node at `path` in `text`, or of its
/// key when `at_key` (where an unknown key is best pointed at).
pub fn locate(text: &str, path: &str, at_key: bool) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(text);
    match (Walk { rest: path, at_key }).deserialize(de) {
        Ok(()) => None,
        Err(e) => e.location().map(|l| (l.line(), l.column())),
    }
}

/// `message (line L column C)`, the format of every located error.
pub fn with_location(message: &str, at: Option<(usize, usize)>) -> String {
    match at {
        Some((line, column)) => format!("{message} (line {line} column {column})"),
        None => message.to_string(),
    }
}

/// Walks to the node at `rest` and raises [`ARRIVED`] there.
struct Walk<'p> {
    rest: &'p str,
    at_key: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

fn arrived<E: de::Error>() -> E {
    E::custom(ARRIVED)
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.rest.is_empty() {
            return Err(arrived());
        }
        while let Some(step) = map.next_key_seed(Key {
            rest: self.rest,
            at_key: self.at_key,
        })? {
            match step {
                Some(rest) => {
                    return map.next_value_seed(Walk {
                        rest,
                        at_key: self.at_key,
                    })
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Err(arrived())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((index, rest)) = self
            .rest
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)))
        else {
            return Err(arrived());
        };
        let rest = rest.strip_prefix('.').unwrap_or(rest);
        for _ in 0..index {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(arrived());
            }
        }
        match seq.next_element_seed(Walk {
            rest,
            at_key: self.at_key,
        })? {
            Some(()) => Ok(()),
            None => Err(arrived()),
        }
    }

    // A scalar is as deep as a path goes.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(arrived())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(arrived())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(arrived())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(arrived())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(arrived())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(arrived())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(arrived())
    }
}

/// A mapping key on the way: `Some(rest of the path)` when the path goes
/// through it, `None` to skip its value; raises [`ARRIVED`] on the key
/// itself when it ends the path and `at_key`.
struct Key<'p> {
    rest: &'p str,
    at_key: bool,
}

impl<'de, 'p> DeserializeSeed<'de> for Key<'p> {
    type Value = Option<&'p str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'p> Key<'p> {
    fn step<E: de::Error>(self, key: &str) -> Result<Option<&'p str>, E> {
        let rest = if self.rest == key {
            ""
        } else if let Some(r) = self.rest.strip_prefix(key) {
            match r.as_bytes().first() {
                Some(b'.') => &r[1..],
                Some(b'[') => r,
                _ => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        if rest.is_empty() && self.at_key {
            return Err(arrived());
        }
        Ok(Some(rest))
    }
}

impl<'de, 'p> Visitor<'de> for Key<'p> {
    type Value = Option<&'p str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.step(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.step(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.step(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.step(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.step(&v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "server:\n  listen: 127.0.0.1:1\ntenants:\n  - id: a\n    scopes:\n      api.read: { description: x }\n    clients:\n      - id: c\n        grant_types: [authorization_code, password]\n";

    #[test]
    fn paths_are_found_at_their_value_or_key() {
        assert_eq!(locate(TEXT, "server.listen", false), Some((2, 11)));
        assert_eq!(locate(TEXT, "server.listen", true), Some((2, 3)));
        assert_eq!(locate(TEXT, "tenants[0].id", false), Some((4, 9)));
        assert_eq!(
            locate(TEXT, "tenants[0].clients[0].grant_types[1]", false),
            Some((9, 43))
        );
        // A key with a dot in it.
        assert_eq!(
            locate(TEXT, "tenants[0].scopes.api.read.description", false),
            Some((6, 32))
        );
    }

    #[test]
    fn a_path_beyond_the_text_stops_at_the_deepest_node_written() {
        assert_eq!(
            locate(TEXT, "tenants[0].clients[0].redirect_uris", false),
            locate(TEXT, "tenants[0].clients[0]", false)
        );
        assert_eq!(locate(TEXT, "tenants[0].clients[0]", false), Some((8, 9)));
        assert_eq!(
            locate(TEXT, "tenants[5]", false),
            locate(TEXT, "tenants", false)
        );
    }
}
