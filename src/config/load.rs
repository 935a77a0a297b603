//! Reading a config file: parse YAML, expand `${NAME}`, deserialize with
//! paths, read `users_file`s, validate — collecting every problem.
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::env::{child_path, expand_value};
use super::validate::validate;
use super::{
    Config, ConfigError, ConfigErrors, DatabaseConfig, ServerConfig, TenantConfig, UserConfig,
    UsersFile,
};

/// Read, parse, expand `${NAME}` from the process environment, read `users_file`s,
/// and validate. `base_dir` of the result is the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::new(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )])
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // An absolute base keeps relative paths right whatever the working directory later is.
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    load_str(&text, &dir, &|n| std::env::var(n).ok())
}

/// As [`load`], from text, with relative paths against `base_dir` and
/// variables from `env` (for tests).
pub fn load_str(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    // 1. YAML syntax.
    let mut value = parse_yaml(text).map_err(|e| ConfigErrors(vec![ConfigError::new("", e)]))?;
    if value.is_null() {
        value = Value::Mapping(Default::default());
    }
    // 2. ${NAME} in string values.
    let mut errors = Vec::new();
    expand_value(&mut value, "", env, &mut errors);
    let expansion_paths: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
    // 3. Types, with paths.
    let mut config: Config = match deserialize(&value) {
        Ok(c) => c,
        Err(first) => {
            let first = with_location(first, text);
            let mut more = Vec::new();
            deserialize_sections(&value, &mut more);
            // `more` repeats `first` when it finds it; keep `first` (it may have a location).
            more.retain(|e| e.path != first.path);
            errors.push(first);
            errors.extend(more);
            return Err(ConfigErrors(errors));
        }
    };
    // 4. base_dir and users files.
    config.base_dir = base_dir.to_path_buf();
    let mut file_users: Vec<Option<(usize, PathBuf)>> = Vec::new();
    for (ti, t) in config.tenants.iter_mut().enumerate() {
        let Some(f) = &t.users_file else {
            file_users.push(None);
            continue;
        };
        let file = base_dir.join(f);
        file_users.push(Some((t.users.len(), file.clone())));
        match read_users_file(&file, env) {
            Ok(users) => t.users.extend(users),
            Err(problems) => errors.extend(problems.into_iter().map(|m| {
                ConfigError::new(
                    format!("tenants[{ti}].users_file"),
                    format!("{}: {m}", file.display()),
                )
            })),
        }
    }
    // 5. Semantics. A value whose variable was missing has been reported already.
    for e in validate(&config) {
        if expansion_paths.iter().any(|p| is_under(&e.path, p)) {
            continue;
        }
        errors.push(blame_users_file(e, &file_users));
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_yaml::from_str(text).map_err(|e| match e.location() {
        Some(l) => format!(
            "invalid YAML at line {} column {}: {}",
            l.line(),
            l.column(),
            strip_location(&e.to_string())
        ),
        None => format!("invalid YAML: {e}"),
    })
}

/// serde_yaml appends ` at line L column C` to its messages; we put it first.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => {
            msg[..i].to_string()
                + &msg[i..]
                    .splitn(2, ',')
                    .nth(1)
                    .map(|r| format!(",{r}"))
                    .unwrap_or_default()
        }
        None => msg.to_string(),
    }
}

fn deserialize<T: DeserializeOwned>(value: &Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| ConfigError::new(spec_path(e.path()), e.inner().to_string()))
}

/// serde_path_to_error writes the document root as `.`; the SPEC writes it empty.
fn spec_path(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." {
        String::new()
    } else {
        s
    }
}

/// Add line and column to a type error by deserializing the original text,
/// which knows positions, when that finds the same problem at the same path.
fn with_location(mut err: ConfigError, text: &str) -> ConfigError {
    let de = serde_yaml::Deserializer::from_str(text);
    if let Err(e) = serde_path_to_error::deserialize::<_, Config>(de) {
        if spec_path(e.path()) == err.path {
            if let Some(l) = e.inner().location() {
                err.message = format!("{} (line {} column {})", err.message, l.line(), l.column());
            }
        }
    }
    err
}

/// After the whole document failed to deserialize (serde stops at the first
/// error), try its sections one by one to report the errors of the others.
fn deserialize_sections(value: &Value, errors: &mut Vec<ConfigError>) {
    let Value::Mapping(map) = value else { return };
    for (key, v) in map {
        let path = child_path("", key);
        let found = match key.as_str() {
            Some("server") => deserialize::<ServerConfig>(v).err(),
            Some("database") => deserialize::<DatabaseConfig>(v).err(),
            Some("plugins_dir") => deserialize::<PathBuf>(v).err(),
            Some("tenants") => {
                if let Value::Sequence(items) = v {
                    for (i, item) in items.iter().enumerate() {
                        if let Err(e) = deserialize::<TenantConfig>(item) {
                            errors.push(prefixed(&format!("tenants[{i}]"), e));
                        }
                    }
                    None
                } else {
                    deserialize::<Vec<TenantConfig>>(v).err()
                }
            }
            _ => {
                errors.push(ConfigError::new(
                    path.clone(),
                    format!("unknown field `{path}`, expected one of `server`, `database`, `plugins_dir`, `tenants`"),
                ));
                None
            }
        };
        if let Some(e) = found {
            errors.push(prefixed(&path, e));
        }
    }
}

fn prefixed(prefix: &str, e: ConfigError) -> ConfigError {
    let path = if e.path.is_empty() {
        prefix.to_string()
    } else if e.path.starts_with('[') {
        format!("{prefix}{}", e.path)
    } else {
        format!("{prefix}.{}", e.path)
    };
    ConfigError::new(path, e.message)
}

/// Is `path` the same as `prefix` or inside it?
fn is_under(path: &str, prefix: &str) -> bool {
    path == prefix
        || (path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), Some(b'.') | Some(b'[')))
}

/// Read one `users_file`: every problem is a message that names its place in the file.
fn read_users_file(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<UserConfig>, Vec<String>> {
    let text =
        std::fs::read_to_string(file).map_err(|e| vec![format!("cannot read users file: {e}")])?;
    let mut value = parse_yaml(&text).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    expand_value(&mut value, "", env, &mut errors);
    if !errors.is_empty() {
        return Err(errors.into_iter().map(|e| e.to_string()).collect());
    }
    deserialize::<UsersFile>(&value)
        .map(|f| f.users)
        .map_err(|e| vec![with_users_location(e, &text).to_string()])
}

fn with_users_location(mut err: ConfigError, text: &str) -> ConfigError {
    let de = serde_yaml::Deserializer::from_str(text);
    if let Err(e) = serde_path_to_error::deserialize::<_, UsersFile>(de) {
        if spec_path(e.path()) == err.path {
            if let Some(l) = e.inner().location() {
                err.message = format!("{} (line {} column {})", err.message, l.line(), l.column());
            }
        }
    }
    err
}

/// A validation error about a user read from a `users_file` names the file
/// and the user's place in it rather than the merged list.
fn blame_users_file(e: ConfigError, file_users: &[Option<(usize, PathBuf)>]) -> ConfigError {
    for (ti, fu) in file_users.iter().enumerate() {
        let Some((inline, file)) = fu else { continue };
        let prefix = format!("tenants[{ti}].users[");
        let Some(rest) = e.path.strip_prefix(&prefix) else {
            continue;
        };
        let Some((index, tail)) = rest.split_once(']') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if index < *inline {
            continue;
        }
        return ConfigError::new(
            format!("tenants[{ti}].users_file"),
            format!(
                "{}: users[{}]{tail}: {}",
                file.display(),
                index - inline,
                e.message
            ),
        );
    }
    e
}
