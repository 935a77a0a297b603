//! humantime (de)serialization for `Duration` and `Option<Duration>`:
//! `60s`, `10m`, `1h`, `30d`, `1h 30m`. Use with `#[serde(with = "duration")]`
//! or `#[serde(with = "duration::option")]`.
use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

const EXPECTED: &str = "a duration such as 60s, 10m, 1h or 30d";

/// Parse a humantime duration, with a message that says what is expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?}: {e} (expected {EXPECTED})"))
}

/// Format a duration as humantime does (`1h 30m`), which [`parse`] reads back.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "invalid duration {v}: a unit is required (expected {EXPECTED}, e.g. {v}s)"
        )))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "invalid duration {v}: a unit is required (expected {EXPECTED})"
        )))
    }
}

/// A `Duration` that deserializes through [`deserialize`], for `Option`.
struct Human(Duration);

impl<'de> Deserialize<'de> for Human {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(Human)
    }
}

pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&format(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<Human>::deserialize(d)?.map(|h| h.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct T {
        #[serde(with = "super")]
        d: Duration,
        #[serde(default, with = "super::option")]
        o: Option<Duration>,
    }

    fn de(yaml: &str) -> Result<T, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_humantime_units() {
        assert_eq!(de("d: 60s").unwrap().d, Duration::from_secs(60));
        assert_eq!(de("d: 10m").unwrap().d, Duration::from_secs(600));
        assert_eq!(de("d: 1h").unwrap().d, Duration::from_secs(3600));
        assert_eq!(de("d: 30d").unwrap().d, Duration::from_secs(30 * 86400));
        assert_eq!(de("d: 1h 30m").unwrap().d, Duration::from_secs(5400));
    }

    #[test]
    fn option_absent_null_and_present() {
        assert_eq!(de("d: 1s").unwrap().o, None);
        assert_eq!(de("d: 1s\no: null").unwrap().o, None);
        assert_eq!(
            de("d: 1s\no: 2m").unwrap().o,
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn rejects_bad_durations_with_a_clear_message() {
        let e = de("d: soon").unwrap_err();
        assert!(e.contains("invalid duration \"soon\""), "{e}");
        let e = de("d: 60").unwrap_err();
        assert!(e.contains("a unit is required"), "{e}");
        let e = de("d: 1s\no: 5 parsecs").unwrap_err();
        assert!(e.contains("invalid duration"), "{e}");
    }

    #[test]
    fn round_trips_through_humantime_strings() {
        let t = T {
            d: Duration::from_secs(5400),
            o: Some(Duration::from_secs(30 * 86400)),
        };
        let text = serde_yaml::to_string(&t).unwrap();
        assert!(text.contains("d: 1h 30m"), "{text}");
        assert!(text.contains("o: 30days"), "{text}");
        assert_eq!(de(&text).unwrap(), t);
        let none = serde_yaml::to_string(&T {
            d: Duration::ZERO,
            o: None,
        })
        .unwrap();
        assert_eq!(de(&none).unwrap().o, None);
    }
}
