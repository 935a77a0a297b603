//! The catalogues (one YAML file per language in `locales/`, embedded) and
//! the choice of a page's language: `ui_locales`, then `Accept-Language`,
//! then the tenant's `default_locale`.

use std::collections::HashMap;
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/locales.rs"));

/// The language every catalogue falls back to, key by key.
pub const FALLBACK: &str = "en";

/// Most `Accept-Language` entries looked at.
const MAX_RANGES: usize = 32;

struct Catalogue {
    tag: &'static str,
    messages: HashMap<String, String>,
}

fn catalogues() -> &'static [Catalogue] {
    static ALL: OnceLock<Vec<Catalogue>> = OnceLock::new();
    ALL.get_or_init(|| {
        EMBEDDED
            .iter()
            .map(|(tag, text)| Catalogue {
                tag,
                messages: serde_yaml::from_str(text).unwrap_or_else(|e| {
                    // A unit test parses every catalogue: this is not reached.
                    tracing::error!(locale = tag, error = %e, "unreadable catalogue");
                    HashMap::new()
                }),
            })
            .collect()
    })
}

/// The language tags there are catalogues for, in file-name order.
pub fn supported() -> Vec<&'static str> {
    catalogues().iter().map(|c| c.tag).collect()
}

/// The catalogue tag for a requested language tag: the same tag (any
/// case), else the same primary language (`fr-CA` → `fr`).
pub fn find(requested: &str) -> Option<&'static str> {
    let requested = requested.trim();
    if requested.is_empty() || requested == "*" {
        return None;
    }
    let all = catalogues();
    let primary = |t: &str| {
        t.split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    all.iter()
        .find(|c| c.tag.eq_ignore_ascii_case(requested))
        .or_else(|| all.iter().find(|c| primary(c.tag) == primary(requested)))
        .map(|c| c.tag)
}

/// The message `key` in `lang`, else in English, else the key itself (so a
/// mistyped key in a template shows on the page).
pub fn text<'a>(lang: &str, key: &'a str) -> &'a str {
    let all = catalogues();
    let lookup = |tag: &str| {
        all.iter()
            .find(|c| c.tag == tag)
            .and_then(|c| c.messages.get(key))
    };
    match lookup(lang).or_else(|| lookup(FALLBACK)) {
        Some(s) => s.as_str(),
        None => key,
    }
}

/// Whether `key` is in the English catalogue.
pub fn has(key: &str) -> bool {
    text(FALLBACK, key) != key
}

/// A page's language: the first of `ui_locales` (space-separated, in order
/// of preference) that has a catalogue, else the best of `Accept-Language`
/// by q-value, else `default`.
pub fn negotiate(
    ui_locales: Option<&str>,
    accept_language: Option<&str>,
    default: &'static str,
) -> &'static str {
    if let Some(tag) = ui_locales.and_then(|u| u.split(' ').take(MAX_RANGES).find_map(find)) {
        return tag;
    }
    accept_language.and_then(best_accepted).unwrap_or(default)
}

/// The `Accept-Language` range with the highest q (the first of equals)
/// that has a catalogue.
fn best_accepted(header: &str) -> Option<&'static str> {
    let mut ranges: Vec<(u16, &str)> = header
        .split(',')
        .take(MAX_RANGES)
        .filter_map(|part| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .map(quality)
                .unwrap_or(1000);
            (q > 0).then_some((q, tag))
        })
        .collect();
    ranges.sort_by_key(|&(q, _)| std::cmp::Reverse(q));
    ranges.into_iter().find_map(|(_, tag)| find(tag))
}

/// An RFC 9110 qvalue in thousandths; garbage counts as 0.
fn quality(q: &str) -> u16 {
    let q = q.trim();
    match q.split_once('.') {
        None => match q {
            "1" => 1000,
            _ => 0,
        },
        Some(("1", _)) => 1000,
        Some(("0", frac)) if frac.len() <= 3 && frac.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{frac:0<3}").parse().unwrap_or(0)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_parses_and_has_every_english_key() {
        let all = catalogues();
        assert!(all.len() >= 2, "en and fr at least");
        let en = all.iter().find(|c| c.tag == FALLBACK).unwrap();
        assert!(en.messages.len() > 50);
        for c in all {
            for key in en.messages.keys() {
                assert!(c.messages.contains_key(key), "{}: missing {key}", c.tag);
            }
            for key in c.messages.keys() {
                assert!(
                    en.messages.contains_key(key),
                    "{}: unknown key {key}",
                    c.tag
                );
            }
        }
    }

    #[test]
    fn ui_locales_win_then_accept_language_by_q_then_the_default() {
        assert_eq!(negotiate(Some("fr"), Some("en"), "en"), "fr");
        assert_eq!(negotiate(Some("de fr-CA"), None, "en"), "fr");
        assert_eq!(negotiate(Some("de"), Some("fr"), "en"), "fr");
        assert_eq!(negotiate(None, Some("de, en;q=0.5, fr;q=0.8"), "en"), "fr");
        assert_eq!(negotiate(None, Some("fr-FR,fr;q=0.9,en;q=0.8"), "en"), "fr");
        assert_eq!(negotiate(None, Some("fr;q=0, en;q=0.1"), "fr"), "en");
        assert_eq!(negotiate(None, Some("*"), "fr"), "fr");
        assert_eq!(negotiate(None, Some(";;,,q=,x;q=2"), "fr"), "fr");
        assert_eq!(negotiate(None, None, "fr"), "fr");
    }

    #[test]
    fn a_missing_key_falls_back_to_english_then_to_itself() {
        assert_eq!(text("fr", "signin.title"), "Connexion");
        assert_eq!(text("xx", "signin.title"), "Sign in");
        assert_eq!(text("fr", "no.such.key"), "no.such.key");
        assert!(has("scope.openid.title") && !has("scope.api.title"));
    }

    #[test]
    fn qvalues() {
        assert_eq!(quality("0.8"), 800);
        assert_eq!(quality("0.05"), 50);
        assert_eq!(quality("1.000"), 1000);
        assert_eq!(quality("0.1234"), 0);
        assert_eq!(quality("abc"), 0);
    }
}
