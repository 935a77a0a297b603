//! `${NAME}` expansion in the string values of a parsed YAML document.
//!
//! Expansion happens on the parsed tree, never on the raw text, so a
//! variable's value is always one plain string: it cannot add keys or
//! change the document's structure. `$${` stands for a literal `${`.
//! Mapping keys are left as written.

use serde_yaml::Value;

use super::ConfigError;

/// Expand `${NAME}` in every string value of `value` (recursively), reading
/// variables through `env`. Every missing variable or malformed reference
/// is pushed to `errors` with the YAML path of its string; `path` is the
/// path of `value` itself (empty for the document).
pub fn expand_value(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                match expand_str(s, env) {
                    Ok(expanded) => *s = expanded,
                    Err(problems) => {
                        errors.extend(problems.into_iter().map(|message| ConfigError {
                            path: path.to_string(),
                            message,
                        }))
                    }
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), env, errors);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let child = child_path(path, key);
                expand_value(item, &child, env, errors);
            }
        }
        Value::Tagged(tagged) => expand_value(&mut tagged.value, path, env, errors),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `parent.key` in the SPEC's path format (`key` at the top).
pub(crate) fn child_path(parent: &str, key: &Value) -> String {
    let key = match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".to_string(),
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// Expand one string. Returns every problem found in it.
pub fn expand_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    if !is_var_name(name) {
                        problems.push(format!(
                            "invalid environment variable reference ${{{name}}}: names are letters, digits and _ (write $${{ for a literal ${{)"
                        ));
                    } else {
                        match env(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                problems.push(format!("environment variable {name} is not set"))
                            }
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    problems.push("unterminated ${ (write $${ for a literal ${)".to_string());
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            "YAML" => Some("a\nb: c".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_anywhere_in_a_string() {
        assert_eq!(expand_str("${SECRET}", &env).unwrap(), "s3cret");
        assert_eq!(
            expand_str("x-${SECRET}-${EMPTY}y", &env).unwrap(),
            "x-s3cret-y"
        );
        assert_eq!(expand_str("no vars", &env).unwrap(), "no vars");
    }

    #[test]
    fn double_dollar_brace_is_a_literal() {
        assert_eq!(expand_str("$${SECRET}", &env).unwrap(), "${SECRET}");
        assert_eq!(
            expand_str("$argon2id$v=19$m=1", &env).unwrap(),
            "$argon2id$v=19$m=1"
        );
        assert_eq!(expand_str("a$$b$", &env).unwrap(), "a$$b$");
    }

    #[test]
    fn reports_missing_and_malformed_references() {
        let e = expand_str("${NOPE} ${ALSO_NOPE}", &env).unwrap_err();
        assert_eq!(
            e,
            vec![
                "environment variable NOPE is not set".to_string(),
                "environment variable ALSO_NOPE is not set".to_string()
            ]
        );
        assert!(expand_str("${1X}", &env).unwrap_err()[0].contains("invalid environment variable"));
        assert!(expand_str("abc ${SECRET", &env).unwrap_err()[0].contains("unterminated"));
    }

    #[test]
    fn walks_the_tree_with_paths() {
        let mut v: Value =
            serde_yaml::from_str("a: [x, '${NOPE}']\nb: { c: '${SECRET}', d: 3 }").unwrap();
        let mut errors = Vec::new();
        expand_value(&mut v, "", &env, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "a[1]");
        assert_eq!(v["b"]["c"], Value::String("s3cret".into()));
    }

    #[test]
    fn a_variable_holding_yaml_stays_one_string() {
        let mut v: Value = serde_yaml::from_str("k: ${YAML}").unwrap();
        expand_value(&mut v, "", &env, &mut Vec::new());
        assert_eq!(v["k"], Value::String("a\nb: c".into()));
        assert!(v.get("b").is_none());
    }
}
