//! Deserializing a document that has type errors, reporting all of them.
//!
//! serde stops at the first error. So the document is deserialized again
//! and again, each time after setting aside the node that failed: an
//! unknown key or a value of the wrong type is taken out (its default
//! applies, or a list goes on without the element), a missing required
//! field gets a placeholder. Every error is reported once, with its path in
//! the document as written; what comes out is the document minus what
//! failed, so the semantic checks still run over everything else.
//!
//! [`Repairs`] remembers what was set aside: it maps a path in the repaired
//! document back to the written one (list elements taken out shift the
//! later ones) and says which semantic errors only follow from a repair (a
//! placeholder `id` is empty; a list whose only element failed is empty).

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::env::child_path;
use super::ConfigError;

/// Most type errors reported for one document (each costs a pass over it).
const MAX_TYPE_ERRORS: usize = 200;

/// One step of a path in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The document deserialized, every type error found on the way, and how
/// the document was repaired to get there.
pub(super) struct Lenient<T> {
    /// `None` when the document could not be repaired (its root is not a mapping).
    pub value: Option<T>,
    pub errors: Vec<ConfigError>,
    pub repairs: Repairs,
}

/// What was set aside to deserialize a document (see the module comment).
#[derive(Debug, Default)]
pub(super) struct Repairs {
    /// List elements taken out, in order: the list's path and the element's
    /// index, both as the document was at that moment.
    removed: Vec<(String, usize)>,
    /// Written paths whose semantic errors would only follow from a repair:
    /// these paths and everything under them.
    hidden: Vec<String>,
    /// Written paths of lists an element was taken out of: errors at exactly
    /// these paths (an empty list) are left out.
    shortened: Vec<String>,
}

impl Repairs {
    /// The path in the document as written of `path` in the repaired one.
    pub fn original(&self, path: &str) -> String {
        let mut path = path.to_string();
        for (list, index) in self.removed.iter().rev() {
            let Some(rest) = path.strip_prefix(list.as_str()) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix('[') else {
                continue;
            };
            let Some((n, tail)) = rest.split_once(']') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            if n >= *index {
                path = format!("{list}[{}]{tail}", n + 1);
            }
        }
        path
    }

    /// Whether a semantic error at `path` (as written) only follows from a repair.
    pub fn hides(&self, path: &str) -> bool {
        self.hidden.iter().any(|h| is_under(path, h)) || self.shortened.iter().any(|s| s == path)
    }

    /// `e` with its path as written, or `None` when a repair explains it.
    pub fn restore(&self, mut e: ConfigError) -> Option<ConfigError> {
        e.path = self.original(&e.path);
        (!self.hides(&e.path)).then_some(e)
    }
}

/// Is `path` the same as `prefix` or inside it?
pub(super) fn is_under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), Some(b'.') | Some(b'[')))
}

/// Deserialize `value` as a `T`, reporting every type error (see the module comment).
pub(super) fn deserialize<T: DeserializeOwned>(value: &Value) -> Lenient<T> {
    let mut doc = value.clone();
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut repairs = Repairs::default();
    // Placeholders put in for missing fields (current paths), and how many
    // kinds of value were tried there: "", then [], then {}.
    let mut placeholders: Vec<(String, usize)> = Vec::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(&doc) {
            Ok(v) => {
                return Lenient {
                    value: Some(v),
                    errors,
                    repairs,
                }
            }
            Err(e) => e,
        };
        let message = err.inner().to_string();
        let path = spec_path(err.path());
        let segs = match segments(err.path()) {
            Some(segs) if errors.len() < MAX_TYPE_ERRORS => segs,
            _ => return stop(errors, repairs, &path, message),
        };
        // A placeholder of the wrong kind: try the next one, or set the
        // element holding it aside.
        if let Some(tried) = placeholders.iter_mut().find(|(p, _)| *p == path) {
            tried.1 += 1;
            let kind = tried.1;
            let parent = &segs[..segs.len().saturating_sub(1)];
            let repaired = match placeholder(kind) {
                Some(v) => node_mut(&mut doc, &segs).map(|n| *n = v).is_some(),
                None => !parent.is_empty() && remove(&mut doc, parent, &mut repairs),
            };
            if !repaired {
                return stop(errors, repairs, &path, message);
            }
            continue;
        }
        let written = repairs.original(&path);
        let repaired = if let Some(field) = missing_field(&message) {
            let target = child(&path, field);
            let inserted = match node_mut(&mut doc, &segs) {
                Some(Value::Mapping(m)) => {
                    m.insert(
                        Value::String(field.to_string()),
                        placeholder(0).unwrap_or_default(),
                    );
                    true
                }
                _ => false,
            };
            if inserted {
                repairs.hidden.push(repairs.original(&target));
                placeholders.push((target, 0));
            }
            inserted
        } else {
            // An unknown key carries nothing; a value that failed is left out.
            if !message.starts_with("unknown field `") {
                repairs.hidden.push(written.clone());
            }
            !segs.is_empty() && remove(&mut doc, &segs, &mut repairs)
        };
        if !repaired {
            return stop(errors, repairs, &path, message);
        }
        errors.push(ConfigError::new(written, message));
    }
}

/// The last error could not be set aside: report it and what came before.
fn stop<T>(
    mut errors: Vec<ConfigError>,
    repairs: Repairs,
    path: &str,
    message: String,
) -> Lenient<T> {
    errors.push(ConfigError::new(repairs.original(path), message));
    Lenient {
        value: None,
        errors,
        repairs,
    }
}

/// What stands in for a missing required field, by attempt.
fn placeholder(kind: usize) -> Option<Value> {
    match kind {
        0 => Some(Value::String(String::new())),
        1 => Some(Value::Sequence(Vec::new())),
        2 => Some(Value::Mapping(Default::default())),
        _ => None,
    }
}

/// `missing field `name`` → `name`.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(name, _)| name)
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// serde_path_to_error writes the document root as `.`; the SPEC writes it empty.
pub(super) fn spec_path(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." {
        String::new()
    } else {
        s
    }
}

/// The path as steps; `None` if it has a step that can't be followed.
fn segments(p: &serde_path_to_error::Path) -> Option<Vec<Seg>> {
    p.iter()
        .map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            _ => None,
        })
        .collect()
}

fn render(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
        }
    }
    out
}

/// The mapping key written as `key` in a path.
fn key_matches(key: &Value, name: &str) -> bool {
    child_path("", key) == name
}

fn node_mut<'a>(doc: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    let mut node = doc;
    for s in segs {
        while let Value::Tagged(t) = node {
            node = &mut t.value;
        }
        node = match (s, node) {
            (Seg::Key(k), Value::Mapping(m)) => m
                .iter_mut()
                .find(|(key, _)| key_matches(key, k))
                .map(|(_, v)| v)?,
            (Seg::Index(i), Value::Sequence(items)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    while let Value::Tagged(t) = node {
        node = &mut t.value;
    }
    Some(node)
}

/// Take the node at `segs` out of its mapping or list; false if it isn't there.
fn remove(doc: &mut Value, segs: &[Seg], repairs: &mut Repairs) -> bool {
    let Some((last, parent)) = segs.split_last() else {
        return false;
    };
    let parent_path = render(parent);
    match (last, node_mut(doc, parent)) {
        (Seg::Key(k), Some(Value::Mapping(m))) => {
            let key = m.keys().find(|key| key_matches(key, k)).cloned();
            key.is_some_and(|key| m.remove(&key).is_some())
        }
        (Seg::Index(i), Some(Value::Sequence(items))) if *i < items.len() => {
            items.remove(*i);
            repairs.shortened.push(repairs.original(&parent_path));
            repairs.removed.push((parent_path, *i));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn lenient(yaml: &str) -> Lenient<Config> {
        deserialize(&serde_yaml::from_str::<Value>(yaml).unwrap())
    }

    fn paths(l: &Lenient<Config>) -> Vec<&str> {
        l.errors.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn every_type_error_of_one_element_is_reported_and_the_rest_deserializes() {
        let l = lenient(
            "tenants:\n  - id: a\n    issuer: https://a.example\n    colour: blue\n    clients:\n      - id: c\n        grant_types: [password, authorization_code, implicit]\n        redirect_uri: x\n      - id: d\n",
        );
        assert_eq!(
            paths(&l),
            [
                "tenants[0].colour",
                "tenants[0].clients[0].grant_types[0]",
                "tenants[0].clients[0].grant_types[2]",
                "tenants[0].clients[0].redirect_uri",
            ]
        );
        let c = l.value.unwrap();
        assert_eq!(c.tenants[0].clients.len(), 2);
        assert_eq!(c.tenants[0].clients[0].grant_types.len(), 1);
    }

    #[test]
    fn removed_elements_map_back_to_their_written_index() {
        let l = lenient(
            "tenants:\n  - 5\n  - id: b\n    issuer: x\n  - true\n  - id: d\n    issuer: y\n",
        );
        assert_eq!(paths(&l), ["tenants[0]", "tenants[2]"]);
        let c = l.value.unwrap();
        assert_eq!(c.tenants.len(), 2);
        assert_eq!(l.repairs.original("tenants[0].id"), "tenants[1].id");
        assert_eq!(l.repairs.original("tenants[1].issuer"), "tenants[3].issuer");
        assert!(l.repairs.hides("tenants"));
        assert!(!l.repairs.hides("tenants[1].id"));
    }

    #[test]
    fn a_missing_field_gets_a_placeholder_whose_own_errors_are_hidden() {
        let l = lenient(
            "tenants:\n  - id: a\n    resource_servers:\n      - { identifier: 'https://api' }\n",
        );
        assert_eq!(
            paths(&l),
            [
                "tenants[0].resource_servers[0]",
                "tenants[0].resource_servers[0]",
                "tenants[0]"
            ]
        );
        assert!(l.errors[2].message.contains("missing field `issuer`"));
        let c = l.value.unwrap();
        assert_eq!(c.tenants[0].issuer, "");
        assert!(c.tenants[0].resource_servers[0].scopes.is_empty());
        assert!(l.repairs.hides("tenants[0].issuer"));
        assert!(l.repairs.hides("tenants[0].resource_servers[0].scopes"));
        assert!(!l.repairs.hides("tenants[0].id"));
    }

    #[test]
    fn a_root_that_is_not_a_mapping_is_one_error() {
        let l = lenient("[1, 2]\n");
        assert!(l.value.is_none());
        assert_eq!(paths(&l), [""]);
    }
}
