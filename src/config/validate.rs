//! Semantic validation of a parsed [`Config`]: many small checks that all
//! run, each naming the YAML path of the problem and the rule it breaks.
//! Errors come in document order.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::{
    AuthMethod, ClientConfig, Config, ConfigError, DatabaseConfig, GrantType, LifetimesConfig,
    ServerConfig, TenantConfig, UserConfig, BUILTIN_SCOPES,
};
use crate::jose::SigningKey;

/// Database URL schemes sesame knows.
pub const DATABASE_SCHEMES: &[&str] = &["sqlite", "mysql", "postgres", "postgresql"];

/// Claims a user's `claims:` may not set: sesame owns them.
pub const REGISTERED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "auth_time",
    "at_hash",
    "c_hash",
    "azp",
    "scope",
    "client_id",
];

/// Check every rule on `config` (whose `base_dir` is set: key files and
/// plugin scripts are looked up on disk) and return every problem found.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut c = Checker::default();
    server(&mut c, &config.server);
    database(&mut c, &config.database);
    let mut tenant_ids: HashMap<&str, usize> = HashMap::new();
    let mut issuers: Vec<(IssuerKey, usize)> = Vec::new();
    for (ti, t) in config.tenants.iter().enumerate() {
        tenant(&mut c, config, ti, t, &mut tenant_ids, &mut issuers);
    }
    c.errors
}

#[derive(Default)]
struct Checker {
    errors: Vec<ConfigError>,
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }
}

fn server(c: &mut Checker, s: &ServerConfig) {
    for (i, p) in s.trusted_proxies.iter().enumerate() {
        if p.trim().parse::<IpAddr>().is_err() && p.trim().parse::<ipnet::IpNet>().is_err() {
            c.err(
                format!("server.trusted_proxies[{i}]"),
                format!("{p:?} is not an IP address or CIDR block (e.g. 10.0.0.1 or 10.0.0.0/8)"),
            );
        }
    }
}

fn database(c: &mut Checker, d: &DatabaseConfig) {
    // Never echo the URL: it may hold a password.
    match d.url.split_once(':') {
        Some((scheme, _)) if DATABASE_SCHEMES.contains(&scheme) => {}
        Some((scheme, _)) if !scheme.is_empty() && !scheme.contains('/') => c.err(
            "database.url",
            format!("unknown database scheme {scheme:?}: expected sqlite, mysql, postgres or postgresql"),
        ),
        _ => c.err(
            "database.url",
            "not a database URL: expected sqlite://FILE, mysql://USER:PASS@HOST/DB or postgres://USER:PASS@HOST/DB",
        ),
    }
    if d.pool_size == 0 {
        c.err("database.pool_size", "pool_size must be greater than 0");
    }
    if d.connect_timeout.is_zero() {
        c.err(
            "database.connect_timeout",
            "connect_timeout must be greater than 0",
        );
    }
}

/// What two tenants may not share: host, port as written, path without trailing slash.
#[derive(PartialEq, Eq)]
struct IssuerKey {
    host: String,
    port: Option<u16>,
    path: String,
}

fn tenant<'a>(
    c: &mut Checker,
    config: &Config,
    ti: usize,
    t: &'a TenantConfig,
    tenant_ids: &mut HashMap<&'a str, usize>,
    issuers: &mut Vec<(IssuerKey, usize)>,
) {
    let tp = format!("tenants[{ti}]");
    // id
    if t.id.is_empty() {
        c.err(format!("{tp}.id"), "tenant id must not be empty");
    } else if !is_tenant_id(&t.id) {
        c.err(
            format!("{tp}.id"),
            format!("tenant id {:?} may only contain a-z, 0-9 and -", t.id),
        );
    }
    if !t.id.is_empty() {
        // Keep the first occurrence; report the later ones.
        let first = *tenant_ids.entry(t.id.as_str()).or_insert(ti);
        if first != ti {
            c.err(
                format!("{tp}.id"),
                format!("duplicate tenant id {:?} (also tenants[{first}])", t.id),
            );
        }
    }
    // issuer
    if let Some(key) = issuer(c, &format!("{tp}.issuer"), &t.issuer) {
        if let Some((_, other)) = issuers.iter().find(|(k, _)| *k == key) {
            c.err(
                format!("{tp}.issuer"),
                format!(
                    "issuer shares host, port and path with tenants[{other}] ({}): requests could not be routed",
                    config.tenants[*other].issuer
                ),
            );
        } else {
            issuers.push((key, ti));
        }
    }
    // signing
    let mut seen_keys = BTreeSet::new();
    for (ki, key) in t.signing.keys.iter().enumerate() {
        let kp = format!("{tp}.signing.keys[{ki}]");
        let file = config.resolve(key);
        if !seen_keys.insert(file.clone()) {
            c.err(
                kp,
                format!("signing key {} is listed twice", file.display()),
            );
            continue;
        }
        match std::fs::read(&file) {
            Err(e) => c.err(
                kp,
                format!("cannot read signing key {}: {e}", file.display()),
            ),
            Ok(pem) => {
                if let Err(e) = SigningKey::from_pem(&pem, t.signing.alg) {
                    c.err(
                        kp,
                        format!(
                            "signing key {} is not a usable {} key: {e}",
                            file.display(),
                            t.signing.alg
                        ),
                    );
                }
            }
        }
    }
    lifetimes(c, &format!("{tp}.lifetimes"), &t.lifetimes);
    // scopes
    for name in t.scopes.keys() {
        if !is_scope_token(name) {
            c.err(
                format!("{tp}.scopes.{name}"),
                format!("{name:?} is not a valid scope name (printable ASCII, no spaces, quotes or backslashes)"),
            );
        }
    }
    // users
    let mut usernames: HashMap<&str, usize> = HashMap::new();
    let mut subs: HashMap<&str, usize> = HashMap::new();
    for (ui, u) in t.users.iter().enumerate() {
        user(
            c,
            &format!("{tp}.users[{ui}]"),
            ui,
            u,
            &mut usernames,
            &mut subs,
        );
    }
    // plugins
    for (pi, p) in t.plugins.iter().enumerate() {
        plugin(c, config, &format!("{tp}.plugins[{pi}]"), p);
    }
    // clients
    let mut client_ids: HashMap<&str, usize> = HashMap::new();
    for (ci, cl) in t.clients.iter().enumerate() {
        client(
            c,
            config,
            t,
            &format!("{tp}.clients[{ci}]"),
            ci,
            cl,
            &mut client_ids,
        );
    }
}

/// Returns the routing key of a well-formed issuer.
fn issuer(c: &mut Checker, path: &str, issuer: &str) -> Option<IssuerKey> {
    let url = match url::Url::parse(issuer) {
        Ok(u) => u,
        Err(e) => {
            c.err(
                path,
                format!("issuer {issuer:?} is not an absolute URL ({e})"),
            );
            return None;
        }
    };
    let mut ok = true;
    if url.scheme() != "http" && url.scheme() != "https" {
        c.err(
            path,
            format!("issuer must be an http or https URL, not {}:", url.scheme()),
        );
        ok = false;
    }
    if url.query().is_some() {
        c.err(path, "issuer must not have a query (?...)");
        ok = false;
    }
    if url.fragment().is_some() {
        c.err(path, "issuer must not have a fragment (#...)");
        ok = false;
    }
    if !url.username().is_empty() || url.password().is_some() {
        c.err(path, "issuer must not contain a user name or password");
        ok = false;
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if host.is_empty() {
        c.err(path, "issuer must have a host");
        ok = false;
    }
    ok.then(|| IssuerKey {
        host,
        port: url.port(),
        path: url.path().trim_end_matches('/').to_string(),
    })
}

fn lifetimes(c: &mut Checker, path: &str, l: &LifetimesConfig) {
    let all: [(&str, Option<Duration>); 6] = [
        ("authorization_code", l.authorization_code),
        ("access_token", l.access_token),
        ("id_token", l.id_token),
        ("refresh_token", l.refresh_token),
        ("refresh_token_family", l.refresh_token_family),
        ("session", l.session),
    ];
    for (name, d) in all {
        if d.is_some_and(|d| d.is_zero()) {
            c.err(
                format!("{path}.{name}"),
                format!("{name} lifetime must be greater than 0"),
            );
        }
    }
}

fn user<'a>(
    c: &mut Checker,
    up: &str,
    ui: usize,
    u: &'a UserConfig,
    usernames: &mut HashMap<&'a str, usize>,
    subs: &mut HashMap<&'a str, usize>,
) {
    if u.username.is_empty() {
        c.err(format!("{up}.username"), "username must not be empty");
    } else {
        let first = *usernames.entry(u.username.as_str()).or_insert(ui);
        if first != ui {
            c.err(
                format!("{up}.username"),
                format!("duplicate username {:?} (also users[{first}])", u.username),
            );
        }
    }
    if let Err(e) = check_hash(&u.password_hash) {
        c.err(
            format!("{up}.password_hash"),
            format!("invalid password_hash: {e}"),
        );
    }
    if let Some(sub) = &u.sub {
        if sub.is_empty() {
            c.err(
                format!("{up}.sub"),
                "sub must not be empty (leave it out for a derived one)",
            );
        } else {
            let first = *subs.entry(sub.as_str()).or_insert(ui);
            if first != ui {
                c.err(
                    format!("{up}.sub"),
                    format!("duplicate sub {sub:?} (also users[{first}])"),
                );
            }
        }
    }
    for name in u.claims.keys() {
        if REGISTERED_CLAIMS.contains(&name.as_str()) {
            c.err(
                format!("{up}.claims.{name}"),
                format!("{name} is a registered claim that sesame sets itself; it cannot be a user claim"),
            );
        }
    }
}

fn plugin(c: &mut Checker, config: &Config, path: &str, p: &Path) {
    let file = config.plugin_path(p);
    if p.extension().and_then(|e| e.to_str()) != Some("rhai") {
        c.err(
            path,
            format!("plugin script {} must be a .rhai file", p.display()),
        );
    } else if !file.is_file() {
        c.err(
            path,
            format!(
                "plugin script {} not found (plugin paths are relative to plugins_dir, {})",
                file.display(),
                config.plugins_dir_path().display()
            ),
        );
    }
}

fn client<'a>(
    c: &mut Checker,
    config: &Config,
    t: &TenantConfig,
    cp: &str,
    ci: usize,
    cl: &'a ClientConfig,
    client_ids: &mut HashMap<&'a str, usize>,
) {
    // id
    if cl.id.is_empty() {
        c.err(format!("{cp}.id"), "client id must not be empty");
    } else {
        let first = *client_ids.entry(cl.id.as_str()).or_insert(ci);
        if first != ci {
            c.err(
                format!("{cp}.id"),
                format!(
                    "duplicate client id {:?} in this tenant (also clients[{first}])",
                    cl.id
                ),
            );
        }
    }
    // secrets (never echo them)
    if cl.secret.as_deref() == Some("") {
        c.err(format!("{cp}.secret"), "secret must not be empty");
    }
    if let Some(hash) = &cl.secret_hash {
        if cl.secret.is_some() {
            c.err(
                format!("{cp}.secret_hash"),
                "set either secret or secret_hash, not both",
            );
        }
        if let Err(e) = check_hash(hash) {
            c.err(
                format!("{cp}.secret_hash"),
                format!("invalid secret_hash: {e}"),
            );
        }
    }
    let public = cl.is_public();
    // redirect URIs
    if cl.has_grant(GrantType::AuthorizationCode) && cl.redirect_uris.is_empty() {
        c.err(
            format!("{cp}.redirect_uris"),
            "the authorization_code grant needs at least one redirect URI",
        );
    }
    for (i, u) in cl.redirect_uris.iter().enumerate() {
        if let Err(e) = check_redirect_uri(u) {
            c.err(format!("{cp}.redirect_uris[{i}]"), e);
        }
    }
    for (i, u) in cl.post_logout_redirect_uris.iter().enumerate() {
        if let Err(e) = check_redirect_uri(u) {
            c.err(format!("{cp}.post_logout_redirect_uris[{i}]"), e);
        }
    }
    // grant types
    if cl.grant_types.is_empty() {
        c.err(
            format!("{cp}.grant_types"),
            "at least one grant type is required",
        );
    }
    for (gi, g) in cl.grant_types.iter().enumerate() {
        let gp = format!("{cp}.grant_types[{gi}]");
        if cl.grant_types[..gi].contains(g) {
            c.err(gp, format!("grant type {} is listed twice", g.as_str()));
            continue;
        }
        match g {
            GrantType::ClientCredentials if public => c.err(
                gp,
                "client_credentials needs a confidential client (a secret or secret_hash)",
            ),
            GrantType::RefreshToken if !cl.has_grant(GrantType::AuthorizationCode) => c.err(
                gp,
                "the refresh_token grant requires the authorization_code grant",
            ),
            _ => {}
        }
    }
    // scopes
    for (si, s) in cl.scopes.iter().enumerate() {
        let sp = format!("{cp}.scopes[{si}]");
        if !is_scope_token(s) {
            c.err(
                sp,
                format!("{s:?} is not a valid scope name (printable ASCII, no spaces, quotes or backslashes)"),
            );
        } else if !t.scopes.contains_key(s) && !BUILTIN_SCOPES.iter().any(|(b, _)| b == s) {
            c.err(
                sp,
                format!(
                    "unknown scope {s:?}: neither built in nor declared in the tenant's scopes"
                ),
            );
        }
    }
    // auth method
    match cl.token_endpoint_auth_method {
        Some(AuthMethod::None) if !public => c.err(
            format!("{cp}.token_endpoint_auth_method"),
            "none is only for public clients, but this client has a secret",
        ),
        Some(m @ (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)) if public => c
            .err(
                format!("{cp}.token_endpoint_auth_method"),
                format!("{} needs a secret or secret_hash", m.as_str()),
            ),
        _ => {}
    }
    lifetimes(c, &format!("{cp}.lifetimes"), &cl.lifetimes);
    for (pi, p) in cl.plugins.iter().enumerate() {
        plugin(c, config, &format!("{cp}.plugins[{pi}]"), p);
    }
}

fn check_redirect_uri(u: &str) -> Result<(), String> {
    let url = url::Url::parse(u).map_err(|e| format!("{u:?} is not an absolute URL ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("{u:?} must not contain a fragment (#...)"));
    }
    Ok(())
}

fn is_tenant_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// A password or secret hash sesame can verify: an argon2 PHC string
/// (`$argon2id$`, `$argon2i$`, `$argon2d$`) or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`).
pub fn check_hash(hash: &str) -> Result<(), String> {
    if hash.is_empty() {
        return Err("empty; make one with `sesame hash`".into());
    }
    if hash.starts_with("$argon2") {
        let parsed = argon2::PasswordHash::new(hash)
            .map_err(|e| format!("not a valid argon2 PHC string: {e}"))?;
        match parsed.algorithm.as_str() {
            "argon2id" | "argon2i" | "argon2d" => {}
            other => return Err(format!("unknown argon2 variant {other:?}")),
        }
        argon2::Params::try_from(&parsed).map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err("argon2 PHC string lacks its salt or hash".into());
        }
        return Ok(());
    }
    if hash.starts_with("$2") {
        return check_bcrypt(hash);
    }
    Err(
        "not an argon2 ($argon2id$...) or bcrypt ($2b$...) hash; make one with `sesame hash`"
            .into(),
    )
}

fn check_bcrypt(hash: &str) -> Result<(), String> {
    let b = hash.as_bytes();
    let shape = "bcrypt hashes look like $2b$12$ followed by 53 characters of [./A-Za-z0-9]";
    if b.len() != 60 || !matches!(&b[..4], b"$2a$" | b"$2b$" | b"$2y$") || b[6] != b'$' {
        return Err(format!("malformed bcrypt hash: {shape}"));
    }
    let cost = std::str::from_utf8(&b[4..6])
        .ok()
        .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| format!("malformed bcrypt cost: {shape}"))?;
    if !(4..=31).contains(&cost) {
        return Err(format!("bcrypt cost {cost} is outside 4..=31"));
    }
    if !b[7..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
    {
        return Err(format!("malformed bcrypt salt or hash: {shape}"));
    }
    Ok(())
}
