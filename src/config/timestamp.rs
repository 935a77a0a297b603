//! RFC 3339 timestamps in the configuration (`2027-01-01T00:00:00Z`,
//! `2027-01-01T02:00:00+02:00`), held as unix seconds. Use with
//! `#[serde(with = "timestamp::option")]`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serializer};

const EXPECTED: &str = "an RFC 3339 time such as 2027-01-01T00:00:00Z or 2027-01-01T02:00:00+02:00";

/// Parse an RFC 3339 time (`Z` or a `±HH:MM` offset; fractions of a
/// second are dropped) to unix seconds.
pub fn parse(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid time {text:?} (expected {EXPECTED})");
    let t = text.trim();
    let (base, offset) = match t
        .len()
        .checked_sub(6)
        .and_then(|i| t.get(i..).map(|o| (i, o)))
    {
        Some((i, o)) if (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' => {
            let hours: i64 = o[1..3].parse().map_err(|_| bad())?;
            let minutes: i64 = o[4..6].parse().map_err(|_| bad())?;
            if hours > 23 || minutes > 59 {
                return Err(bad());
            }
            let sign = if o.starts_with('-') { -1 } else { 1 };
            (
                format!("{}Z", &t[..i]),
                sign * (hours * 3600 + minutes * 60),
            )
        }
        _ => (t.to_string(), 0),
    };
    let at = humantime::parse_rfc3339(&base).map_err(|_| bad())?;
    let secs = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).map_err(|_| bad())?,
        Err(e) => -i64::try_from(e.duration().as_secs()).map_err(|_| bad())?,
    };
    Ok(secs - offset)
}

/// Unix seconds as RFC 3339 in UTC (`2027-01-01T00:00:00Z`).
pub fn format(secs: i64) -> String {
    let at = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Now, as unix seconds in RFC 3339 (for messages).
pub fn now_text() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(parse("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse("2027-01-01T00:00:00Z").unwrap(), 1_798_761_600);
        assert_eq!(parse("2027-01-01T02:00:00+02:00").unwrap(), 1_798_761_600);
        assert_eq!(parse("2026-12-31T19:30:00-04:30").unwrap(), 1_798_761_600);
        assert_eq!(parse("2027-01-01T00:00:00.750Z").unwrap(), 1_798_761_600);
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "tomorrow",
            "2027-01-01",
            "2027-01-01T00:00:00+25:00",
            "",
            "1798761600",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn format_reads_back() {
        for t in [0, 1_798_761_600, 1_798_761_601] {
            assert_eq!(parse(&format(t)).unwrap(), t);
        }
    }
}
