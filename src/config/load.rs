//! Reading a config file: parse YAML, expand `${NAME}`, deserialize with
//! paths, read `users_file`s, validate — collecting every problem. A type
//! error sets aside only the node that failed (`lenient`), so the rest of
//! the file is still deserialized and validated; every error gets the line
//! and column of its path (`locate`).
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::env::expand_value;
use super::lenient::{self, is_under};
use super::locate::{locate, with_location};
use super::validate::validate;
use super::{Config, ConfigError, ConfigErrors, UserConfig, UsersFile};

/// Read, parse, expand `${NAME}` from the process environment, read `users_file`s,
/// and validate (which also reads the signing key files and keeps the parsed
/// keys). `base_dir` of the result is the file's directory.
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
    let mut from_env = Default::default();
    crate::plan::env_paths(&value, "", &mut from_env);
    let mut errors = Vec::new();
    expand_value(&mut value, "", env, &mut errors);
    let expansion_paths: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
    // 3. Types, with paths: every type error; what failed is set aside so
    // that the rest is still read and checked.
    let typed = lenient::deserialize::<Config>(&value);
    let repairs = typed.repairs;
    errors.extend(typed.errors);
    let Some(mut config) = typed.value else {
        return Err(ConfigErrors(located(errors, text)));
    };
    // 4. base_dir and users files.
    config.base_dir = base_dir.to_path_buf();
    config.from_env = from_env;
    let mut file_users: Vec<Option<(usize, PathBuf)>> = Vec::new();
    // Errors about users files, which name their place in the file.
    let mut in_users_files = Vec::new();
    for (ti, t) in config.tenants.iter_mut().enumerate() {
        let Some(f) = &t.users_file else {
            file_users.push(None);
            continue;
        };
        let file = base_dir.join(f);
        file_users.push(Some((t.users.len(), file.clone())));
        match read_users_file(&file, env) {
            Ok(users) => t.users.extend(users),
            Err(problems) => in_users_files.extend(problems.into_iter().map(|m| {
                ConfigError::new(
                    repairs.original(&format!("tenants[{ti}].users_file")),
                    format!("{}: {m}", file.display()),
                )
            })),
        }
    }
    // 5. Semantics. A value whose variable was missing has been reported
    // already, and so has one that failed to deserialize.
    // (Validation counts what deserialized; errors are reported as written.)
    for e in validate(&mut config) {
        match blame_users_file(e, &file_users) {
            Blamed::Config(e) => {
                let Some(e) = repairs.restore(e) else {
                    continue;
                };
                if !expansion_paths.iter().any(|p| is_under(&e.path, p)) {
                    errors.push(e);
                }
            }
            Blamed::UsersFile(mut e) => {
                e.path = repairs.original(&e.path);
                in_users_files.push(e);
            }
        }
    }
    let mut errors = located(errors, text);
    errors.extend(in_users_files);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Most errors given a line and column (each costs a walk through the text).
const MAX_LOCATED: usize = 100;

/// `errors` with the line and column of their path in `text` (an unknown
/// key's at the key, anything else's at its value).
fn located(errors: Vec<ConfigError>, text: &str) -> Vec<ConfigError> {
    errors
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            if i < MAX_LOCATED && !e.path.is_empty() {
                let at_key = e.message.starts_with("unknown field `");
                e.message = with_location(&e.message, locate(text, &e.path, at_key));
            }
            e
        })
        .collect()
}

/// Deepest flow nesting (`[`/`{`) accepted; serde_yaml refuses more than
/// 128 levels anyway, but only after a scan that is quadratic in the depth
/// (16,000 brackets took 8 s, found by `tests/fuzz.rs`).
const MAX_FLOW_DEPTH: usize = 128;

fn parse_yaml(text: &str) -> Result<Value, String> {
    if let Some(line) = too_deep(text) {
        return Err(format!(
            "invalid YAML at line {line}: nested deeper than {MAX_FLOW_DEPTH} levels"
        ));
    }
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

/// The line where flow collections (`[`, `{`) nest deeper than
/// [`MAX_FLOW_DEPTH`], if any. An over-estimate is harmless: brackets in
/// quoted strings or comments are skipped, and what is left over 128 levels
/// deep would be refused by serde_yaml anyway.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth: usize = 0;
    for (n, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') if prev.is_whitespace() => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Some(n + 1);
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    None
}

/// serde_yaml appends ` at line L column C` to its messages; we put it first.
fn strip_location(msg: &str) -> String {
    match msg.split_once(" at line ") {
        // "problem at line L column C, while parsing X at line ..." -> "problem, while parsing X at line ..."
        Some((head, tail)) => match tail.split_once(',') {
            Some((_, rest)) => format!("{head},{rest}"),
            None => head.to_string(),
        },
        None => msg.to_string(),
    }
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
    let typed = lenient::deserialize::<UsersFile>(&value);
    match typed.value {
        Some(f) if typed.errors.is_empty() => Ok(f.users),
        _ => Err(located(typed.errors, &text)
            .into_iter()
            .map(|e| e.to_string())
            .collect()),
    }
}

/// Where a validation error belongs: the config file, or a users file.
enum Blamed {
    Config(ConfigError),
    UsersFile(ConfigError),
}

/// A validation error about a user read from a `users_file` names the file
/// and the user's place in it rather than the merged list.
fn blame_users_file(e: ConfigError, file_users: &[Option<(usize, PathBuf)>]) -> Blamed {
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
        return Blamed::UsersFile(ConfigError::new(
            format!("tenants[{ti}].users_file"),
            format!(
                "{}: users[{}]{tail}: {}",
                file.display(),
                index - inline,
                e.message
            ),
        ));
    }
    Blamed::Config(e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::config::{AccessTokenFormat, AuthMethod, GrantType};
    use crate::jose::Alg;

    const ARGON2: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0R8X5rmJ1RlV3Xj0pGZaKZ+4b6m2JdW7XGJiyq8Ljb0";

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n| map.get(n).cloned()
    }

    fn errors_in(yaml: &str, dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Vec<ConfigError> {
        match load_str(yaml, dir, env) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    fn errors(yaml: &str) -> Vec<ConfigError> {
        errors_in(yaml, Path::new("/nonexistent-base"), &|_| None)
    }

    /// The SPEC's example, with its key file left out (see `key_tests`).
    fn spec_example(keys: &str) -> String {
        format!(
            r#"
server:
  listen: 127.0.0.1:8080
  trusted_proxies: []
database:
  url: sqlite://data/sesame.db
  pool_size: 16
plugins_dir: plugins
tenants:
  - id: demo
    issuer: http://127.0.0.1:8080/demo
    signing:
      alg: RS256
      keys: {keys}
    lifetimes:
      authorization_code: 60s
      access_token: 1h
      id_token: 1h
      refresh_token: 30d
      session: 12h
    access_token_format: jwt
    scopes:
      api:read: {{ description: Read the API }}
    users:
      - username: alice
        password_hash: "{ARGON2}"
        sub: 3f6c0a
        claims: {{ name: Alice Martin, email: alice@example.com, email_verified: true, groups: [staff] }}
    plugins: [claims/groups.rhai, policies/offline_access.rhai]
    clients:
      - id: chemin_openid
        secret: ${{CHEMIN_SECRET}}
        name: Chemin de l'eau
        redirect_uris: [https://chemindeleau.com/callback_openid.php]
        post_logout_redirect_uris: []
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access]
        token_endpoint_auth_method: client_secret_basic
        require_pkce: false
        skip_consent: false
        lifetimes: {{}}
        plugins: []
        metadata: {{}}
"#
        )
    }

    fn plugin_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "plugins/claims/groups.rhai",
            "plugins/policies/offline_access.rhai",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "fn id_token_claims(ctx) { #{} }").unwrap();
        }
        dir
    }

    #[test]
    fn the_spec_example_loads() {
        let dir = plugin_dir();
        let env = vars(&[("CHEMIN_SECRET", "s3cret")]);
        let c = load_str(&spec_example("[]"), dir.path(), &env).unwrap();
        assert_eq!(c.base_dir, dir.path());
        assert_eq!(c.database.pool_size, 16);
        let t = &c.tenants[0];
        assert_eq!(t.signing.alg, Alg::RS256);
        assert_eq!(
            t.lifetimes.refresh_token,
            Some(Duration::from_secs(30 * 86400))
        );
        assert_eq!(
            t.lifetimes.authorization_code,
            Some(Duration::from_secs(60))
        );
        assert_eq!(t.access_token_format, AccessTokenFormat::Jwt);
        assert_eq!(t.scopes["api:read"].description, "Read the API");
        assert_eq!(t.users[0].claims["groups"], serde_json::json!(["staff"]));
        let cl = &t.clients[0];
        assert_eq!(cl.secret.as_deref(), Some("s3cret"));
        assert_eq!(cl.name.as_deref(), Some("Chemin de l'eau"));
        assert_eq!(
            cl.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(cl.auth_method(), AuthMethod::ClientSecretBasic);
        assert_eq!(
            c.plugin_path(&t.plugins[0]),
            dir.path().join("plugins/claims/groups.rhai")
        );
        assert_eq!(c.sqlite_path(), Some(dir.path().join("data/sesame.db")));
    }

    #[test]
    fn five_mistakes_are_all_reported() {
        let dir = plugin_dir();
        let yaml = spec_example("[]")
            .replace("pool_size: 16", "pool_size: 0")
            .replace("id: demo", "id: Demo")
            .replace("api:read: {", "'api read': {")
            .replace(
                "https://chemindeleau.com/callback_openid.php",
                "/callback_openid.php",
            )
            .replace(
                "grant_types: [authorization_code, refresh_token]",
                "grant_types: [refresh_token]",
            );
        let errs = errors_in(&yaml, dir.path(), &vars(&[("CHEMIN_SECRET", "s")]));
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect();
        let want = [
            ("database.pool_size", "greater than 0"),
            ("tenants[0].id", "a-z, 0-9 and -"),
            ("tenants[0].scopes.api read", "not a valid scope name"),
            (
                "tenants[0].clients[0].redirect_uris[0]",
                "not an absolute URL",
            ),
            (
                "tenants[0].clients[0].grant_types[0]",
                "requires the authorization_code grant",
            ),
        ];
        assert_eq!(got.len(), want.len(), "{errs:#?}");
        for ((gp, gm), (wp, wm)) in got.iter().zip(want) {
            assert!(
                *gp == wp && gm.contains(wm),
                "got {gp}: {gm}, want {wp}: ...{wm}..."
            );
        }
    }

    #[test]
    fn yaml_syntax_error_reports_line_and_column() {
        let errs = errors("server:\n  listen: 127.0.0.1:8080\n tenants: [\n");
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].path, "");
        assert!(errs[0].message.contains("line 3 column 2"), "{errs:#?}");
        assert!(errs[0].message.starts_with("invalid YAML"), "{errs:#?}");
    }

    #[test]
    fn unknown_keys_are_errors_with_their_path() {
        let yaml = "tenants:\n  - id: a\n    issuer: https://a.example\n    clients:\n      - id: c\n        redirect_uri: https://a.example/cb\n";
        let errs = errors(yaml);
        // The misspelt key, and what its absence means: both are said.
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert_eq!(errs[0].path, "tenants[0].clients[0].redirect_uri");
        assert_eq!(errs[1].path, "tenants[0].clients[0].redirect_uris");
        assert!(
            errs[0].message.contains("unknown field `redirect_uri`"),
            "{errs:#?}"
        );
        assert!(errs[0].message.contains("line 6 column 9"), "{errs:#?}");
        let errs = errors("colour: blue\n");
        assert_eq!(errs[0].path, "colour");
        assert!(
            errs[0].message.contains("unknown field `colour`"),
            "{errs:#?}"
        );
    }

    #[test]
    fn type_errors_name_their_path() {
        let errs = errors("database:\n  pool_size: many\n");
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].path, "database.pool_size");
        assert!(errs[0].message.contains("invalid type"), "{errs:#?}");
        let errs = errors(
            "tenants:\n  - id: a\n    issuer: https://a.example\n    signing: { alg: HS256 }\n",
        );
        assert_eq!(errs[0].path, "tenants[0].signing.alg");
        assert!(
            errs[0].message.contains("unknown variant `HS256`"),
            "{errs:#?}"
        );
        let errs = errors("tenants:\n  - id: a\n");
        assert_eq!(errs[0].path, "tenants[0]");
        assert!(
            errs[0].message.contains("missing field `issuer`"),
            "{errs:#?}"
        );
    }

    #[test]
    fn humantime_errors_name_their_path() {
        let yaml = "tenants:\n  - id: a\n    issuer: https://a.example\n    lifetimes:\n      access_token: 1 fortnight\n";
        let errs = errors(yaml);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].path, "tenants[0].lifetimes.access_token");
        assert!(
            errs[0].message.contains("invalid duration \"1 fortnight\""),
            "{errs:#?}"
        );
        assert!(errs[0].message.contains("line 5 column"), "{errs:#?}");
        let errs = errors("database:\n  connect_timeout: 5\n");
        assert_eq!(errs[0].path, "database.connect_timeout");
        assert!(errs[0].message.contains("a unit is required"), "{errs:#?}");
    }

    #[test]
    fn type_errors_in_several_sections_are_all_reported() {
        let yaml = "database:\n  pool_size: -1\ntenants:\n  - id: a\n    issuer: https://a.example\n    lifetimes: { session: forever }\n  - id: b\n    issuer: https://b.example\n    clients:\n      - id: c\n        grant_types: [implicit]\nextra: 1\n";
        let paths: Vec<String> = errors(yaml).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "database.pool_size",
                "tenants[0].lifetimes.session",
                "tenants[1].clients[0].grant_types[0]",
                "extra"
            ]
        );
    }

    #[test]
    fn type_errors_hide_nothing_else_in_their_tenant() {
        let yaml = "tenants:
  - id: Bad_Id
    issuer: https://a.example
    colour: blue
    clients:
      - id: c
        redirect_uris: [/callback]
        grant_types: [password, authorization_code]
        scopes: [openid, nosuch]
      - id: d
        redirect_uris: [https://a.example/cb]
        require_pkce: maybe
        token_endpoint_auth_method: none
  - id: b
    issuer: https://b.example
    users:
      - 5
      - { username: '', password_hash: x }
";
        let errs = errors(yaml);
        let got: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let want = [
            "tenants[0].colour: unknown field `colour`",
            "tenants[0].clients[0].grant_types[0]: unknown variant `password`",
            "tenants[0].clients[1].require_pkce: invalid type",
            "tenants[1].users[0]: invalid type: integer `5`",
            "tenants[0].id: tenant id \"Bad_Id\" may only contain",
            "tenants[0].clients[0].redirect_uris[0]: \"/callback\" is not an absolute URL",
            "tenants[0].clients[0].scopes[1]: unknown scope \"nosuch\"",
            "tenants[1].users[1].username:",
            "tenants[1].users[1].password_hash:",
        ];
        let lines = [4, 8, 12, 17, 2, 7, 9, 18, 18];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for ((g, w), line) in got.iter().zip(want).zip(lines) {
            assert!(g.starts_with(w), "got {g:?}, want {w:?}...");
            assert!(
                g.contains(&format!("(line {line} column ")),
                "{g:?}: line {line}"
            );
        }
    }
    #[test]
    fn variables_are_expanded_in_string_values() {
        let yaml = "database:\n  url: ${DB}\ntenants:\n  - id: a\n    issuer: https://${HOST}/a\n";
        let env = vars(&[
            ("DB", "postgres://u:p@db/sesame"),
            ("HOST", "id.example.com"),
        ]);
        let c = load_str(yaml, Path::new("/x"), &env).unwrap();
        assert_eq!(c.database.url, "postgres://u:p@db/sesame");
        assert_eq!(c.tenants[0].issuer, "https://id.example.com/a");
    }

    #[test]
    fn a_variable_can_fill_a_number() {
        let c = load_str(
            "database:\n  pool_size: ${POOL}\n",
            Path::new("/x"),
            &vars(&[("POOL", "4")]),
        );
        // A string is not a number: variables give strings, never YAML.
        let errs = c.unwrap_err().0;
        assert_eq!(errs[0].path, "database.pool_size");
    }

    #[test]
    fn missing_variables_are_reported_with_their_path_and_nothing_else() {
        let yaml = "tenants:\n  - id: a\n    issuer: ${ISSUER}\n    clients:\n      - id: c\n        secret: ${SECRET}\n        redirect_uris: [https://a.example/cb]\n";
        let errs = errors(yaml);
        assert_eq!(
            errs,
            vec![
                ConfigError::new(
                    "tenants[0].issuer",
                    "environment variable ISSUER is not set (line 3 column 13)"
                ),
                ConfigError::new(
                    "tenants[0].clients[0].secret",
                    "environment variable SECRET is not set (line 6 column 17)"
                ),
            ]
        );
    }

    #[test]
    fn double_dollar_brace_escapes_a_literal() {
        let yaml = "tenants:\n  - id: a\n    issuer: https://a.example\n    clients:\n      - id: c\n        name: costs $${PRICE}\n        redirect_uris: [https://a.example/cb]\n";
        let c = load_str(yaml, Path::new("/x"), &|_| None).unwrap();
        assert_eq!(
            c.tenants[0].clients[0].name.as_deref(),
            Some("costs ${PRICE}")
        );
    }

    #[test]
    fn a_variable_holding_yaml_stays_a_plain_string() {
        let yaml = "tenants:\n  - id: a\n    issuer: https://a.example\n    clients:\n      - id: c\n        name: ${NAME}\n        redirect_uris: [https://a.example/cb]\n";
        let env = vars(&[("NAME", "a\nb: c"), ("X", "x")]);
        let c = load_str(yaml, Path::new("/x"), &env).unwrap();
        assert_eq!(c.tenants[0].clients[0].name.as_deref(), Some("a\nb: c"));
        // Nor can it add a list item or key through flow syntax.
        let env = vars(&[("NAME", "x, secret: y}")]);
        let c = load_str(yaml, Path::new("/x"), &env).unwrap();
        assert_eq!(
            c.tenants[0].clients[0].name.as_deref(),
            Some("x, secret: y}")
        );
        assert_eq!(c.tenants[0].clients[0].secret, None);
    }

    fn users_tenant(extra: &str) -> String {
        format!(
            "tenants:\n  - id: a\n    issuer: https://a.example\n    users_file: users.yaml\n    users:\n      - {{ username: alice, password_hash: '{ARGON2}' }}\n{extra}"
        )
    }

    #[test]
    fn users_file_users_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("users.yaml"),
            format!("users:\n  - username: bob\n    password_hash: '{ARGON2}'\n    claims:\n      email: ${{BOB_MAIL}}\n"),
        )
        .unwrap();
        let c = load_str(
            &users_tenant(""),
            dir.path(),
            &vars(&[("BOB_MAIL", "bob@example.com")]),
        )
        .unwrap();
        let names: Vec<&str> = c.tenants[0]
            .users
            .iter()
            .map(|u| u.username.as_str())
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(c.tenants[0].users[1].claims["email"], "bob@example.com");
    }

    #[test]
    fn an_unreadable_users_file_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let errs = errors_in(&users_tenant(""), dir.path(), &|_| None);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].path, "tenants[0].users_file");
        assert!(
            errs[0]
                .message
                .contains("users.yaml: cannot read users file"),
            "{errs:#?}"
        );
    }

    #[test]
    fn users_file_problems_name_the_file_and_the_place_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.yaml");
        // Type error inside the file.
        std::fs::write(
            &file,
            "users:\n  - username: bob\n    password_hash: x\n    age: 3\n",
        )
        .unwrap();
        let errs = errors_in(&users_tenant(""), dir.path(), &|_| None);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].path, "tenants[0].users_file");
        assert!(
            errs[0]
                .message
                .contains("users[0].age: unknown field `age`"),
            "{errs:#?}"
        );
        assert!(errs[0].message.contains("line 4 column 5"), "{errs:#?}");
        // Syntax error inside the file.
        std::fs::write(&file, "users: [\n").unwrap();
        let errs = errors_in(&users_tenant(""), dir.path(), &|_| None);
        assert!(
            errs[0].message.contains("invalid YAML at line"),
            "{errs:#?}"
        );
        // Semantic errors: a bad hash and a username clashing with an inline user.
        std::fs::write(
            &file,
            format!("users:\n  - {{ username: bob, password_hash: '{ARGON2}' }}\n  - {{ username: alice, password_hash: plain }}\n"),
        )
        .unwrap();
        let errs = errors_in(&users_tenant(""), dir.path(), &|_| None);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs.iter().all(|e| e.path == "tenants[0].users_file"),
            "{errs:#?}"
        );
        assert!(
            errs[0]
                .message
                .contains("users[1].username: duplicate username \"alice\""),
            "{errs:#?}"
        );
        assert!(
            errs[1]
                .message
                .contains("users[1].password_hash: invalid password_hash"),
            "{errs:#?}"
        );
        assert!(
            errs[0].message.contains(&file.display().to_string()),
            "{errs:#?}"
        );
    }

    #[test]
    fn load_reads_the_file_and_sets_base_dir() {
        let dir = plugin_dir();
        let path = dir.path().join("sesame.yaml");
        std::fs::write(&path, "tenants:\n  - id: a\n    issuer: https://a.example\n    plugins: [claims/groups.rhai]\n").unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.base_dir, dir.path());
        assert_eq!(
            c.resolve(Path::new("keys/a.pem")),
            dir.path().join("keys/a.pem")
        );
        assert_eq!(c.resolve(Path::new("/etc/k.pem")), Path::new("/etc/k.pem"));
    }

    #[test]
    fn load_names_an_unreadable_file() {
        let errs = load(Path::new("/nonexistent/sesame.yaml")).unwrap_err();
        assert_eq!(errs.0.len(), 1);
        assert!(
            errs.to_string()
                .contains("cannot read config file /nonexistent/sesame.yaml"),
            "{errs}"
        );
    }

    #[test]
    fn sqlite_path_forms() {
        let c = |url: &str| {
            let mut c = load_str("", Path::new("/base"), &|_| None).unwrap();
            c.database.url = url.to_string();
            c.sqlite_path()
        };
        assert_eq!(
            c("sqlite://data/s.db"),
            Some(PathBuf::from("/base/data/s.db"))
        );
        assert_eq!(c("sqlite:///var/s.db"), Some(PathBuf::from("/var/s.db")));
        assert_eq!(c("sqlite:s.db?mode=rwc"), Some(PathBuf::from("/base/s.db")));
        assert_eq!(c("sqlite::memory:"), None);
        assert_eq!(c("postgres://h/db"), None);
    }

    #[test]
    fn errors_display_as_path_colon_message() {
        let errs = load_str("database:\n  pool_size: 0\n", Path::new("/x"), &|_| None).unwrap_err();
        assert_eq!(
            errs.to_string(),
            "database.pool_size: pool_size must be greater than 0 (line 2 column 14)"
        );
    }

    /// Signing key files. Reading errors are config's own; parsing needs
    /// `jose::SigningKey::from_pem` (the tests that reach it are ignored
    /// until the jose module lands: run them with `--ignored`).
    mod key_tests {
        use super::*;
        use crate::jose::SigningKey;
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;

        fn write_keys(dir: &Path) {
            let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
            let ec = PKey::from_ec_key(
                EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
            )
            .unwrap();
            let ed = PKey::generate_ed25519().unwrap();
            std::fs::create_dir_all(dir.join("keys")).unwrap();
            for (name, key) in [("rsa", rsa), ("ec", ec), ("ed", ed)] {
                std::fs::write(
                    dir.join(format!("keys/{name}.pem")),
                    key.private_key_to_pem_pkcs8().unwrap(),
                )
                .unwrap();
            }
        }

        fn tenant_with(alg: &str, keys: &str) -> String {
            format!("tenants:\n  - id: a\n    issuer: https://a.example\n    signing: {{ alg: {alg}, keys: {keys} }}\n")
        }

        #[test]
        fn a_missing_key_file_is_named() {
            let dir = tempfile::tempdir().unwrap();
            let errs = errors_in(
                &tenant_with("RS256", "[keys/none.pem]"),
                dir.path(),
                &|_| None,
            );
            assert_eq!(errs.len(), 1, "{errs:#?}");
            assert_eq!(errs[0].path, "tenants[0].signing.keys[0]");
            assert!(
                errs[0].message.contains("cannot read signing key"),
                "{errs:#?}"
            );
            assert!(errs[0].message.contains("keys/none.pem"), "{errs:#?}");
        }

        #[test]
        fn the_spec_example_with_its_key_loads() {
            let dir = plugin_dir();
            write_keys(dir.path());
            std::fs::rename(
                dir.path().join("keys/rsa.pem"),
                dir.path().join("keys/demo.pem"),
            )
            .unwrap();
            let yaml = spec_example("[keys/demo.pem]");
            let c = load_str(&yaml, dir.path(), &vars(&[("CHEMIN_SECRET", "s")])).unwrap();
            assert_eq!(
                c.tenants[0].signing.keys,
                [crate::config::KeyFile::from(PathBuf::from("keys/demo.pem"))]
            );
            // The parsed key is kept, so the runtime does not read the file again.
            let pem = std::fs::read(dir.path().join("keys/demo.pem")).unwrap();
            let kid = SigningKey::from_pem(&pem, Alg::RS256).unwrap();
            let loaded: Vec<&str> = c.tenants[0]
                .signing
                .loaded_keys
                .iter()
                .map(|k| k.kid())
                .collect();
            assert_eq!(loaded, [kid.kid()]);
        }

        #[test]
        fn keys_that_suit_their_alg_are_accepted() {
            let dir = tempfile::tempdir().unwrap();
            write_keys(dir.path());
            for (alg, keys) in [
                ("RS256", "[keys/rsa.pem]"),
                ("PS256", "[keys/rsa.pem]"),
                ("ES256", "[keys/ec.pem]"),
                ("EdDSA", "[keys/ed.pem]"),
            ] {
                assert_eq!(
                    errors_in(&tenant_with(alg, keys), dir.path(), &|_| None),
                    vec![],
                    "{alg}"
                );
            }
        }

        #[test]
        fn a_key_of_the_wrong_type_is_named_with_the_reason() {
            let dir = tempfile::tempdir().unwrap();
            write_keys(dir.path());
            std::fs::write(dir.path().join("keys/junk.pem"), "not a key").unwrap();
            let errs = errors_in(
                &tenant_with("ES256", "[keys/ec.pem, keys/rsa.pem, keys/junk.pem]"),
                dir.path(),
                &|_| None,
            );
            assert_eq!(errs.len(), 2, "{errs:#?}");
            assert_eq!(errs[0].path, "tenants[0].signing.keys[1]");
            assert!(
                errs[0]
                    .message
                    .contains("keys/rsa.pem is not a usable ES256 key: "),
                "{errs:#?}"
            );
            assert_eq!(errs[1].path, "tenants[0].signing.keys[2]");
            assert!(
                errs[1]
                    .message
                    .contains("keys/junk.pem is not a usable ES256 key: "),
                "{errs:#?}"
            );
        }

        #[test]
        fn a_key_listed_twice_is_an_error() {
            let dir = tempfile::tempdir().unwrap();
            // Listed twice is found before the file is parsed; point both at a missing file
            // so the test does not depend on jose.
            let errs = errors_in(
                &tenant_with("RS256", "[keys/k.pem, ./keys/k.pem, keys/k.pem]"),
                dir.path(),
                &|_| None,
            );
            let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(
                paths,
                [
                    "tenants[0].signing.keys[0]",
                    "tenants[0].signing.keys[1]",
                    "tenants[0].signing.keys[2]"
                ]
            );
            assert!(errs[2].message.contains("listed twice"), "{errs:#?}");
        }
    }
}
