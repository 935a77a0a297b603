//! Semantic validation of a parsed [`Config`]: many small checks that all
//! run, each naming the YAML path of the problem and the rule it breaks.
//! Errors come in document order.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::{
    AuthMethod, ClientConfig, Config, ConfigError, DatabaseConfig, GrantType, KeyEncryptionConfig,
    LifetimesConfig, LoadedUi, Profile, ServerConfig, TenantConfig, ThrottleConfig, UserConfig,
    BUILTIN_SCOPES,
};
use crate::jose::{Alg, KeyEncryptionKey, SigningKey};

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
    "cnf",
    "sid",
];

/// Longest lifetime or throttle duration accepted (100 years): longer ones
/// would overflow expiry arithmetic on unix seconds.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86400);

/// Things that are valid but unwise, for `sesame check` to mention (it
/// still exits 0). In a tenant with an https issuer (a production one): a
/// plain-text client `secret` (it should be a `secret_hash`), and a
/// generated signing key without a `key_encryption` key (it is stored in
/// the database in clear). Anywhere: a plain-http redirect URI on a host
/// other than loopback (codes would cross the network unencrypted).
pub fn warnings(config: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    for (ti, t) in config.tenants.iter().enumerate() {
        let production = t.issuer.trim().to_ascii_lowercase().starts_with("https://");
        if production && t.signing.keys.is_empty() && config.key_encryption.is_none() {
            out.push(ConfigError::new(
                format!("tenants[{ti}].signing"),
                format!(
                    "tenant {:?} has an https issuer and a generated signing key, which is stored \
                     in the database in clear: set key_encryption (a key from \
                     `openssl rand -base64 32`) to store it encrypted, or list PEM files in signing.keys",
                    t.id
                ),
            ));
        }
        if let Some(w) = key_window_gap(t, crate::now()) {
            out.push(ConfigError::new(format!("tenants[{ti}].signing.keys"), w));
        }
        for (ci, cl) in t.clients.iter().enumerate() {
            if production && cl.secret.is_some() {
                out.push(ConfigError::new(
                    format!("tenants[{ti}].clients[{ci}].secret"),
                    format!(
                        "client {:?} has a plain-text secret in a tenant with an https issuer; \
                         store its argon2 hash instead (secret_hash, from `sesame hash`)",
                        cl.id
                    ),
                ));
            }
            for (i, u) in cl.redirect_uris.iter().enumerate() {
                if is_plain_http_off_loopback(u) {
                    out.push(ConfigError::new(
                        format!("tenants[{ti}].clients[{ci}].redirect_uris[{i}]"),
                        format!(
                            "{u:?} is plain http on a host other than loopback: authorization \
                             codes would cross the network unencrypted; use https (plain http \
                             is for 127.0.0.1, [::1] and localhost)"
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// How far ahead configured key windows must reach for `sesame check` to be quiet.
const KEY_WINDOW_HORIZON: i64 = 7 * 86400;

/// A warning when the tenant's configured keys leave a time within the next
/// seven days (from `now`) that no key's window holds.
fn key_window_gap(t: &TenantConfig, now: i64) -> Option<String> {
    let keys = &t.signing.keys;
    if keys.is_empty()
        || keys
            .iter()
            .all(|k| k.not_before.is_none() && k.not_after.is_none())
    {
        return None;
    }
    let holds = |at: i64| {
        keys.iter().any(|k| {
            k.not_before.is_none_or(|from| from <= at) && k.not_after.is_none_or(|until| at < until)
        })
    };
    // The windows' edges are the only places coverage changes.
    let mut probes = vec![now];
    probes.extend(keys.iter().filter_map(|k| k.not_after));
    probes.extend(keys.iter().filter_map(|k| k.not_before.map(|f| f - 1)));
    let gap = probes
        .into_iter()
        .filter(|&at| (now..=now + KEY_WINDOW_HORIZON).contains(&at))
        .filter(|&at| !holds(at))
        .min()?;
    let first = if gap == now {
        "now".to_string()
    } else {
        super::timestamp::format(gap)
    };
    Some(format!(
        "no configured key's not_before/not_after window holds {first} (the next 7 days must be \
         covered): the first listed key would sign outside its window; add a key whose window \
         covers it"
    ))
}

/// Check every rule on `config` (whose `base_dir` is set: key files and
/// plugin scripts are looked up on disk) and return every problem found.
/// What the checks parse is kept in `config`, so nothing is parsed again:
/// `server.trusted_networks` and each tenant's `signing.loaded_keys`.
pub fn validate(config: &mut Config) -> Vec<ConfigError> {
    let mut c = Checker::default();
    let networks = server(&mut c, &config.server);
    database(&mut c, &config.database);
    let limit = config.plugin_time_limit;
    if limit.is_zero() || limit > std::time::Duration::from_secs(10) {
        c.err(
            "plugin_time_limit",
            "must be more than 0 and at most 10s (a hook runs while its request waits)",
        );
    }
    let kek = config
        .key_encryption
        .as_ref()
        .and_then(|k| key_encryption(&mut c, config, k));
    let mut tenant_ids: HashMap<&str, usize> = HashMap::new();
    let mut issuers: Vec<(IssuerKey, usize)> = Vec::new();
    let loaded: Vec<(Vec<SigningKey>, LoadedUi)> = config
        .tenants
        .iter()
        .enumerate()
        .map(|(ti, t)| {
            let keys = tenant(&mut c, config, ti, t, &mut tenant_ids, &mut issuers);
            (
                keys,
                super::ui::tenant(&mut c, config, &format!("tenants[{ti}]"), t),
            )
        })
        .collect();
    config.server.trusted_networks = networks;
    if let Some(k) = config.key_encryption.as_mut() {
        k.loaded = kek;
    }
    for (t, (keys, ui)) in config.tenants.iter_mut().zip(loaded) {
        t.signing.loaded_keys = keys;
        t.loaded_ui = ui;
    }
    for (ti, t) in config.tenants.iter_mut().enumerate() {
        for (ci, cl) in t.clients.iter_mut().enumerate() {
            cl.loaded_jwks = client_keys(&mut c, &format!("tenants[{ti}].clients[{ci}]"), cl);
        }
    }
    c.errors
}

/// A client's keys and assertion settings: `jwks` (parsed here) or
/// `jwks_uri` for `private_key_jwt`, the secret in clear for
/// `client_secret_jwt`, an assertion algorithm that fits the method.
fn client_keys(
    c: &mut Checker,
    cp: &str,
    cl: &ClientConfig,
) -> Option<std::sync::Arc<crate::jose::ClientJwks>> {
    use crate::jose::{ClientAlg, ClientJwks};
    let method = cl.auth_method();
    let at = |key: &str| format!("{cp}.{key}");
    match method {
        AuthMethod::PrivateKeyJwt if cl.jwks.is_none() && cl.jwks_uri.is_none() => c.err(
            at("token_endpoint_auth_method"),
            "private_key_jwt needs the client's public keys: set jwks (a JWK Set) or jwks_uri",
        ),
        AuthMethod::ClientSecretJwt if cl.secret.is_none() && cl.secret_hash.is_some() => c.err(
            at("token_endpoint_auth_method"),
            "client_secret_jwt needs the secret in clear (sesame checks an HMAC made with it), \
             and this client has only secret_hash: set secret, or use private_key_jwt",
        ),
        _ => {}
    }
    if cl.jwks.is_some() && cl.jwks_uri.is_some() {
        c.err(at("jwks_uri"), "set either jwks or jwks_uri, not both");
    }
    if let Some(uri) = &cl.jwks_uri {
        server_to_server_uri(c, at("jwks_uri"), uri);
    }
    if let Some(alg) = &cl.token_endpoint_auth_signing_alg {
        match (ClientAlg::parse(alg), method) {
            (Some(a), AuthMethod::ClientSecretJwt) if a.is_symmetric() => {}
            (Some(a), AuthMethod::PrivateKeyJwt) if !a.is_symmetric() => {}
            (Some(_), AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt) => c.err(
                at("token_endpoint_auth_signing_alg"),
                format!(
                    "{alg} doesn't fit {}: HS256, HS384 or HS512 sign client_secret_jwt; \
                     RS256, PS256, ES256 or EdDSA sign private_key_jwt",
                    method.as_str()
                ),
            ),
            (Some(_), _) => c.err(
                at("token_endpoint_auth_signing_alg"),
                "only for private_key_jwt or client_secret_jwt clients",
            ),
            (None, _) => c.err(
                at("token_endpoint_auth_signing_alg"),
                format!(
                    "unknown algorithm {alg:?} (RS256, PS256, ES256, EdDSA, HS256, HS384, HS512)"
                ),
            ),
        }
    }
    let has_keys = cl.jwks.is_some() || cl.jwks_uri.is_some();
    if let Some(alg) = &cl.request_object_signing_alg {
        match ClientAlg::parse(alg) {
            Some(a) if a.is_symmetric() && cl.secret.is_none() => c.err(
                at("request_object_signing_alg"),
                format!("{alg} request objects are checked with the secret in clear: set secret"),
            ),
            Some(a) if !a.is_symmetric() && !has_keys => c.err(
                at("request_object_signing_alg"),
                format!("{alg} request objects are checked with the client's keys: set jwks or jwks_uri"),
            ),
            Some(_) => {}
            None => c.err(
                at("request_object_signing_alg"),
                format!("unknown algorithm {alg:?} (RS256, PS256, ES256, EdDSA, HS256, HS384, HS512)"),
            ),
        }
    }
    if cl.require_signed_request_object && !has_keys && cl.secret.is_none() {
        c.err(
            at("require_signed_request_object"),
            "the client can't sign request objects: give it jwks or jwks_uri (or a secret in clear, for HMAC)",
        );
    }
    let jwks = cl.jwks.as_ref()?;
    match ClientJwks::parse(jwks) {
        Ok(keys) => Some(std::sync::Arc::new(keys)),
        Err(e) => {
            c.err(at("jwks"), e);
            None
        }
    }
}

/// Whether a URL's host is the loopback interface.
/// A URL sesame itself calls or has the browser load for a client
/// (`jwks_uri`, the logout URIs): absolute, https (http only on loopback),
/// no fragment.
fn server_to_server_uri(c: &mut Checker, path: String, uri: &str) {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_some() => {
            c.err(path, format!("{uri:?} must not contain a fragment (#...)"))
        }
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback_url(&u)) => {}
        Ok(_) => c.err(
            path,
            format!("{uri:?} must be https (http only on loopback)"),
        ),
        Err(e) => c.err(path, format!("{uri:?} is not an absolute URL ({e})")),
    }
}

/// The client's logout URIs (back- and front-channel) and their flags.
fn client_logout(c: &mut Checker, cp: &str, cl: &ClientConfig) {
    for (key, uri, required) in [
        (
            "backchannel_logout",
            &cl.backchannel_logout_uri,
            cl.backchannel_logout_session_required,
        ),
        (
            "frontchannel_logout",
            &cl.frontchannel_logout_uri,
            cl.frontchannel_logout_session_required,
        ),
    ] {
        match uri {
            Some(uri) => server_to_server_uri(c, format!("{cp}.{key}_uri"), uri),
            None if required => c.err(
                format!("{cp}.{key}_session_required"),
                format!("{key}_session_required needs {key}_uri"),
            ),
            None => {}
        }
    }
}

/// `logout.backchannel`: a timeout and back-off of at least a second, at
/// least one attempt.
fn logout(c: &mut Checker, path: &str, l: &crate::config::LogoutConfig) {
    let b = &l.backchannel;
    if b.max_attempts == 0 {
        c.err(
            format!("{path}.backchannel.max_attempts"),
            "max_attempts must be at least 1",
        );
    }
    for (name, d) in [
        ("timeout", b.timeout),
        ("backoff", b.backoff),
        ("max_backoff", b.max_backoff),
    ] {
        if d.as_secs() == 0 {
            c.err(
                format!("{path}.backchannel.{name}"),
                format!("{name} must be at least 1s"),
            );
        } else if d > Duration::from_secs(86400) {
            c.err(
                format!("{path}.backchannel.{name}"),
                format!("{name} must be at most 1 day"),
            );
        }
    }
    if b.timeout > Duration::from_secs(60) {
        c.err(
            format!("{path}.backchannel.timeout"),
            "timeout must be at most 60s",
        );
    }
    if b.max_backoff < b.backoff {
        c.err(
            format!("{path}.backchannel.max_backoff"),
            "max_backoff must not be shorter than backoff",
        );
    }
}

fn is_loopback_url(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

#[derive(Default)]
pub(super) struct Checker {
    errors: Vec<ConfigError>,
}

impl Checker {
    pub(super) fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }
}

/// The trusted proxy networks that parse.
fn server(c: &mut Checker, s: &ServerConfig) -> Vec<IpNet> {
    let mut networks = Vec::with_capacity(s.trusted_proxies.len());
    for (i, p) in s.trusted_proxies.iter().enumerate() {
        match parse_network(p) {
            Some(n) => networks.push(n),
            None => c.err(
                format!("server.trusted_proxies[{i}]"),
                format!("{p:?} is not an IP address or CIDR block (e.g. 10.0.0.1 or 10.0.0.0/8)"),
            ),
        }
    }
    networks
}

/// A CIDR block (`10.0.0.0/8`), or a bare address as a /32 or /128 network.
fn parse_network(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
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

/// The key-encryption key: exactly one of `key` and `key_file`, 32 bytes
/// in base64. The key itself is never repeated in a message.
fn key_encryption(
    c: &mut Checker,
    config: &Config,
    k: &KeyEncryptionConfig,
) -> Option<KeyEncryptionKey> {
    match (&k.key, &k.key_file) {
        (None, None) => {
            c.err(
                "key_encryption",
                "set key (32 random bytes in base64, e.g. ${SESAME_KEY_ENCRYPTION_KEY}) or key_file",
            );
            None
        }
        (Some(_), Some(_)) => {
            c.err(
                "key_encryption.key_file",
                "set either key or key_file, not both",
            );
            None
        }
        (Some(key), None) => match KeyEncryptionKey::parse(key) {
            Ok(kek) => Some(kek),
            Err(e) => {
                c.err("key_encryption.key", e);
                None
            }
        },
        (None, Some(file)) => {
            let file = config.resolve(file);
            let parsed = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read key file {}: {e}", file.display()))
                .and_then(|text| {
                    KeyEncryptionKey::parse(&text).map_err(|e| format!("{}: {e}", file.display()))
                });
            match parsed {
                Ok(kek) => Some(kek),
                Err(e) => {
                    c.err("key_encryption.key_file", e);
                    None
                }
            }
        }
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
) -> Vec<SigningKey> {
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
    let keys = signing_keys(c, config, &tp, t);
    rotation(c, &format!("{tp}.signing"), t);
    lifetimes(c, &format!("{tp}.lifetimes"), &t.lifetimes);
    throttle(c, &format!("{tp}.throttle"), &t.throttle);
    logout(c, &format!("{tp}.logout"), &t.logout);
    pushed_requests(
        c,
        &format!("{tp}.pushed_authorization_requests"),
        &t.pushed_authorization_requests,
    );
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
    // ID tokens are signed with the tenant's algorithm or RS256, nothing else.
    let own = keys.first().map_or(t.signing.alg, |k| k.alg());
    for (ci, cl) in t.clients.iter().enumerate() {
        if let Some(alg) = cl.id_token_signed_response_alg {
            if alg != own && alg != Alg::RS256 {
                c.err(
                    format!("{tp}.clients[{ci}].id_token_signed_response_alg"),
                    format!(
                        "the tenant signs ID tokens with {} or RS256, not {}",
                        own.as_str(),
                        alg.as_str()
                    ),
                );
            }
        }
    }
    resource_servers(c, &tp, t);
    fapi2(c, &tp, t, own);
    keys
}

/// The JWS algorithms the FAPI 2.0 Security Profile allows (§5.4).
const FAPI2_ALGS: &[&str] = &["PS256", "ES256", "EdDSA"];

/// What the FAPI 2.0 Security Profile asks of a client that follows it
/// (`profile: fapi2`, its own or the tenant's) and the configuration does
/// not give: each thing missing, at its path. (PAR, PKCE and DPoP-bound
/// tokens the profile turns on by itself; codes it keeps to 60 s.)
fn fapi2(c: &mut Checker, tp: &str, t: &TenantConfig, own: Alg) {
    let rule = |what: &str| format!("{what} (profile fapi2: FAPI 2.0 Security Profile)");
    let mut tenant_alg_reported = false;
    for (ci, cl) in t.clients.iter().enumerate() {
        if t.profile_of(cl) != Some(Profile::Fapi2) {
            continue;
        }
        let cp = format!("{tp}.clients[{ci}]");
        if cl.auth_method() != AuthMethod::PrivateKeyJwt {
            c.err(
                format!("{cp}.token_endpoint_auth_method"),
                rule("a FAPI 2.0 client authenticates with private_key_jwt"),
            );
        }
        for (name, alg) in [
            (
                "token_endpoint_auth_signing_alg",
                cl.token_endpoint_auth_signing_alg.as_deref(),
            ),
            (
                "request_object_signing_alg",
                cl.request_object_signing_alg.as_deref(),
            ),
            (
                "id_token_signed_response_alg",
                cl.id_token_signed_response_alg.map(Alg::as_str),
            ),
        ] {
            if let Some(a) = alg.filter(|a| !FAPI2_ALGS.contains(a)) {
                c.err(
                    format!("{cp}.{name}"),
                    rule(&format!("{a} is not allowed: use PS256, ES256 or EdDSA")),
                );
            }
        }
        if own == Alg::RS256 && !tenant_alg_reported {
            tenant_alg_reported = true;
            c.err(
                format!("{tp}.signing.alg"),
                rule(&format!(
                    "{cp} follows fapi2, whose ID tokens are never RS256: sign with PS256, ES256 or EdDSA"
                )),
            );
        }
        for (path, lifetime) in [
            (format!("{cp}.lifetimes"), cl.lifetimes.authorization_code),
            (format!("{tp}.lifetimes"), t.lifetimes.authorization_code),
        ] {
            if let Some(l) = lifetime.filter(|l| *l > crate::tenant::FAPI2_CODE_LIFETIME) {
                c.err(
                    format!("{path}.authorization_code"),
                    rule(&format!(
                        "{}s is too long for {cp}: FAPI 2.0 codes live at most 60s",
                        l.as_secs()
                    )),
                );
                break;
            }
        }
    }
}

fn resource_servers(c: &mut Checker, tp: &str, t: &TenantConfig) {
    let mut identifiers: HashMap<&str, usize> = HashMap::new();
    let mut clients: HashMap<&str, usize> = HashMap::new();
    for (ri, rs) in t.resource_servers.iter().enumerate() {
        let rp = format!("{tp}.resource_servers[{ri}]");
        match url::Url::parse(&rs.identifier) {
            Err(e) => c.err(
                format!("{rp}.identifier"),
                format!("{:?} is not an absolute URI ({e})", rs.identifier),
            ),
            Ok(u) if u.fragment().is_some() => c.err(
                format!("{rp}.identifier"),
                format!(
                    "{:?} must not contain a fragment (RFC 8707 §2)",
                    rs.identifier
                ),
            ),
            Ok(_) => {}
        }
        if let Some(first) = identifiers.insert(rs.identifier.as_str(), ri) {
            c.err(
                format!("{rp}.identifier"),
                format!("duplicate identifier (also {tp}.resource_servers[{first}])"),
            );
        }
        match t.clients.iter().find(|cl| cl.id == rs.client) {
            None => c.err(
                format!("{rp}.client"),
                format!("no client {:?} in this tenant", rs.client),
            ),
            Some(cl) if cl.is_public() => c.err(
                format!("{rp}.client"),
                format!(
                    "client {:?} is public: a resource server authenticates with a secret",
                    rs.client
                ),
            ),
            Some(_) => {}
        }
        if let Some(first) = clients.insert(rs.client.as_str(), ri) {
            c.err(
                format!("{rp}.client"),
                format!("client already used by {tp}.resource_servers[{first}]"),
            );
        }
        if rs.scopes.is_empty() {
            c.err(
                format!("{rp}.scopes"),
                "a resource server accepts at least one scope",
            );
        }
        if let Some(l) = rs.access_token.lifetime {
            if l.is_zero() || l > MAX_DURATION {
                c.err(
                    format!("{rp}.access_token.lifetime"),
                    "must be longer than 0s and at most 100 years",
                );
            }
        }
        for (si, s) in rs.scopes.iter().enumerate() {
            if !t.scopes.contains_key(s) && !BUILTIN_SCOPES.iter().any(|(b, _)| b == s) {
                c.err(
                    format!("{rp}.scopes[{si}]"),
                    format!(
                        "unknown scope {s:?}: neither built in nor declared in the tenant's scopes"
                    ),
                );
            }
        }
    }
}

/// Read and parse the tenant's key files; returns the keys that parse.
fn signing_keys(c: &mut Checker, config: &Config, tp: &str, t: &TenantConfig) -> Vec<SigningKey> {
    let mut keys = Vec::with_capacity(t.signing.keys.len());
    let mut seen_keys = BTreeSet::new();
    for (ki, key) in t.signing.keys.iter().enumerate() {
        let kp = format!("{tp}.signing.keys[{ki}]");
        let file = config.resolve(&key.path);
        if let (Some(from), Some(until)) = (key.not_before, key.not_after) {
            if from >= until {
                c.err(
                    format!("{kp}.not_after"),
                    "not_after must be later than not_before",
                );
            }
        }
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
            Ok(pem) => match SigningKey::from_pem(&pem, t.signing.alg) {
                Ok(k) => keys.push(k),
                Err(e) => c.err(
                    kp,
                    format!(
                        "signing key {} is not a usable {} key: {e}",
                        file.display(),
                        t.signing.alg
                    ),
                ),
            },
        }
    }
    keys
}

/// `signing.rotation`: for generated keys only; `every` > `lead` +
/// `jwks_cache`, `lead` ≥ `jwks_cache` ≥ 1s, whole seconds.
fn rotation(c: &mut Checker, sp: &str, t: &TenantConfig) {
    let Some(r) = &t.signing.rotation else {
        return;
    };
    let rp = format!("{sp}.rotation");
    if !t.signing.keys.is_empty() {
        c.err(
            rp.clone(),
            "rotation is for generated keys and cannot be combined with signing.keys: \
             give each configured key a not_before/not_after window instead",
        );
    }
    let mut whole = true;
    for (name, d) in [
        ("every", r.every),
        ("lead", r.lead),
        ("jwks_cache", r.jwks_cache),
    ] {
        if d.subsec_nanos() != 0 {
            c.err(format!("{rp}.{name}"), "must be whole seconds");
            whole = false;
        } else if d > MAX_DURATION {
            c.err(format!("{rp}.{name}"), "must be at most 100 years");
            whole = false;
        }
    }
    if !whole {
        return;
    }
    if r.jwks_cache.is_zero() {
        c.err(
            format!("{rp}.jwks_cache"),
            "must be at least 1s (it is the JWKS max-age relying parties cache for)",
        );
    }
    if r.lead < r.jwks_cache {
        c.err(
            format!("{rp}.lead"),
            format!(
                "lead ({}) must be at least jwks_cache ({}): a relying party caching the JWKS \
                 must see the next key before it signs",
                super::duration::format(r.lead),
                super::duration::format(r.jwks_cache)
            ),
        );
    }
    if r.every <= r.lead + r.jwks_cache {
        c.err(
            format!("{rp}.every"),
            format!(
                "every ({}) must be longer than lead + jwks_cache ({}): each key must sign \
                 for a while after every cache has the next one",
                super::duration::format(r.every),
                super::duration::format(r.lead + r.jwks_cache)
            ),
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
        } else if d.is_some_and(|d| d > MAX_DURATION) {
            c.err(
                format!("{path}.{name}"),
                format!("{name} lifetime must be at most 100 years"),
            );
        }
    }
}

fn throttle(c: &mut Checker, path: &str, t: &ThrottleConfig) {
    for (name, n) in [
        ("max_failures", t.max_failures),
        ("client_max_failures", t.client_max_failures),
        ("ip_max_failures", t.ip_max_failures),
    ] {
        if n == 0 {
            c.err(
                format!("{path}.{name}"),
                format!("{name} must be at least 1"),
            );
        }
    }
    for (name, d) in [("window", t.window), ("lockout", t.lockout)] {
        if d.as_secs() == 0 {
            c.err(
                format!("{path}.{name}"),
                format!("{name} must be at least 1s"),
            );
        } else if d > MAX_DURATION {
            c.err(
                format!("{path}.{name}"),
                format!("{name} must be at most 100 years"),
            );
        }
    }
}

/// Longest `pushed_authorization_requests.lifetime`: a `request_uri` is
/// meant to be used at once (RFC 9126 §2.2 suggests 5 to 600 seconds).
const MAX_PUSHED_REQUEST_LIFETIME: Duration = Duration::from_secs(600);

fn pushed_requests(c: &mut Checker, path: &str, p: &super::PushedAuthorizationConfig) {
    if p.lifetime.as_secs() == 0 {
        c.err(format!("{path}.lifetime"), "lifetime must be at least 1s");
    } else if p.lifetime > MAX_PUSHED_REQUEST_LIFETIME {
        c.err(
            format!("{path}.lifetime"),
            "lifetime must be at most 10m (a request_uri is used at once)",
        );
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
    super::ui::client(c, cp, cl);
    client_logout(c, cp, cl);
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
        Some(
            m @ (AuthMethod::ClientSecretBasic
            | AuthMethod::ClientSecretPost
            | AuthMethod::ClientSecretJwt),
        ) if public => c.err(
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

/// Schemes that make no sense as a redirect: they run script, inline
/// content or read local files in the browser. Custom schemes of native
/// apps (`com.example.app:/cb`, RFC 8252 §7.1) are fine.
const REFUSED_REDIRECT_SCHEMES: &[&str] =
    &["javascript", "data", "vbscript", "file", "blob", "about"];

/// A redirect or post-logout redirect URI: absolute, no fragment, and not
/// one of the [`REFUSED_REDIRECT_SCHEMES`].
fn check_redirect_uri(u: &str) -> Result<(), String> {
    let url = url::Url::parse(u).map_err(|e| format!("{u:?} is not an absolute URL ({e})"))?;
    if REFUSED_REDIRECT_SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "{u:?}: {}: URIs can't be redirect URIs (use https, http on loopback, or a native app's own scheme)",
            url.scheme()
        ));
    }
    if url.fragment().is_some() {
        return Err(format!("{u:?} must not contain a fragment (#...)"));
    }
    Ok(())
}

/// An `http:` URL whose host is not loopback (127.0.0.0/8, ::1, localhost).
pub(super) fn is_plain_http_off_loopback(u: &str) -> bool {
    let Ok(url) = url::Url::parse(u) else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
        Some(url::Host::Domain(d)) => !d.eq_ignore_ascii_case("localhost"),
        None => true,
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::load_str;

    pub(crate) const ARGON2: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0R8X5rmJ1RlV3Xj0pGZaKZ+4b6m2JdW7XGJiyq8Ljb0";

    fn bcrypt_hash() -> String {
        bcrypt::hash("pw", 4).unwrap()
    }

    fn indent(text: &str, n: usize) -> String {
        text.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect()
    }

    /// One tenant `demo` with the given extra fields.
    fn tenant(fields: &str) -> String {
        format!(
            "tenants:\n  - id: demo\n    issuer: https://id.example.com/demo\n{}",
            indent(fields, 4)
        )
    }

    /// One tenant with one client `app` with the given fields (and a redirect URI unless given).
    fn client(fields: &str) -> String {
        let mut f = fields.to_string();
        if !f.lines().any(|l| l.starts_with("redirect_uris:")) {
            f.push_str("\nredirect_uris: [https://app.example.com/cb]");
        }
        tenant(&format!("clients:\n  - id: app\n{}", indent(&f, 4)))
    }

    fn errors(yaml: &str) -> Vec<ConfigError> {
        match load_str(yaml, Path::new("/nonexistent-base"), &|_| None) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    /// The config has exactly one problem, at `path`, whose message contains `fragment`.
    #[track_caller]
    fn only_error(yaml: &str, path: &str, fragment: &str) {
        let errs = errors(yaml);
        assert!(
            errs.len() == 1 && errs[0].path == path && errs[0].message.contains(fragment),
            "expected exactly `{path}: ...{fragment}...`, got {errs:#?}\nfor:\n{yaml}"
        );
    }

    fn paths(yaml: &str) -> Vec<String> {
        errors(yaml).into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn rotation_settings_are_checked_with_their_paths() {
        let rotating = |r: &str| tenant(&format!("signing: {{ alg: ES256, rotation: {r} }}"));
        assert_eq!(
            errors(&rotating("{ every: 30d, lead: 2d, jwks_cache: 1d }")),
            vec![]
        );
        assert_eq!(
            errors(&rotating("{ every: 4s, lead: 2s, jwks_cache: 1s }")),
            vec![]
        );
        assert_eq!(errors(&rotating("{ every: 30d }")), vec![]);
        only_error(
            &rotating("{ every: 30d, lead: 1h, jwks_cache: 1d }"),
            "tenants[0].signing.rotation.lead",
            "must be at least jwks_cache",
        );
        only_error(
            &rotating("{ every: 3s, lead: 2s, jwks_cache: 1s }"),
            "tenants[0].signing.rotation.every",
            "longer than lead + jwks_cache",
        );
        only_error(
            &rotating("{ every: 30d, lead: 0s, jwks_cache: 0s }"),
            "tenants[0].signing.rotation.jwks_cache",
            "at least 1s",
        );
        only_error(
            &rotating("{ every: 30d, lead: 1500ms, jwks_cache: 1s }"),
            "tenants[0].signing.rotation.lead",
            "whole seconds",
        );
        let p = paths(&rotating("{ every: 30d, lead: 2d, cache: 1d }"));
        assert!(
            p.iter()
                .any(|p| p.starts_with("tenants[0].signing.rotation")),
            "{p:?}"
        );
        let p = paths(&rotating("{ lead: 2d }"));
        assert!(
            p.iter()
                .any(|p| p.starts_with("tenants[0].signing.rotation")),
            "{p:?}"
        );
        let e = errors(&tenant(
            "signing: { keys: [a.pem], rotation: { every: 30d } }",
        ));
        assert!(
            e.iter().any(|e| e.path == "tenants[0].signing.rotation"
                && e.message.contains("cannot be combined with signing.keys")),
            "{e:#?}"
        );
    }

    #[test]
    fn key_windows_are_parsed_and_checked() {
        let p = paths(&tenant(
            "signing: { keys: [{ path: a.pem, not_before: '2027-01-01T00:00:00Z', not_after: '2026-01-01T00:00:00Z' }] }",
        ));
        assert_eq!(
            p,
            [
                "tenants[0].signing.keys[0].not_after",
                "tenants[0].signing.keys[0]"
            ]
        );
        let e = errors(&tenant(
            "signing: { keys: [{ path: a.pem, not_before: next tuesday }] }",
        ));
        assert!(
            e.iter()
                .any(|e| e.path.starts_with("tenants[0].signing.keys[0]")
                    && e.message.contains("RFC 3339")),
            "{e:#?}"
        );
        let e = errors(&tenant("signing: { keys: [{ path: a.pem, until: x }] }"));
        assert!(
            e.iter()
                .any(|e| e.path.starts_with("tenants[0].signing.keys[0]")),
            "{e:#?}"
        );
    }

    #[test]
    fn a_gap_in_configured_key_windows_is_warned_about() {
        let t = |keys: &str| -> TenantConfig {
            serde_yaml::from_str(&format!(
                "id: demo\nissuer: https://id.example.com\nsigning: {{ keys: {keys} }}"
            ))
            .unwrap()
        };
        let now = 1_800_000_000;
        let at = |s: i64| super::super::timestamp::format(now + s);
        // No windows: nothing to say.
        assert_eq!(key_window_gap(&t("[a.pem, b.pem]"), now), None);
        // Covered now and for the next week by two windows that meet.
        let covered = t(&format!(
            "[{{ path: a.pem, not_after: '{}' }}, {{ path: b.pem, not_before: '{}' }}]",
            at(86400),
            at(86400)
        ));
        assert_eq!(key_window_gap(&covered, now), None);
        // Not yet begun.
        let w = key_window_gap(
            &t(&format!("[{{ path: a.pem, not_before: '{}' }}]", at(60))),
            now,
        )
        .unwrap();
        assert!(w.contains("holds now"), "{w}");
        // Ends in three days with nothing after it.
        let w = key_window_gap(
            &t(&format!(
                "[{{ path: a.pem, not_after: '{}' }}]",
                at(3 * 86400)
            )),
            now,
        )
        .unwrap();
        assert!(w.contains(&at(3 * 86400)), "{w}");
        // Ends in eight days: fine for now.
        let later = t(&format!(
            "[{{ path: a.pem, not_after: '{}' }}]",
            at(8 * 86400)
        ));
        assert_eq!(key_window_gap(&later, now), None);
    }

    #[test]
    fn base_configs_are_valid() {
        assert_eq!(errors(&tenant("")), vec![]);
        assert_eq!(errors(&client("")), vec![]);
        assert_eq!(errors(""), vec![]);
    }

    #[test]
    fn trusted_proxies_are_ips_or_cidrs() {
        let ok = "server:\n  trusted_proxies: [10.0.0.1, 10.0.0.0/8, '::1', 'fd00::/8']";
        assert_eq!(errors(ok), vec![]);
        only_error(
            "server:\n  trusted_proxies: [10.0.0.1, proxy.local]",
            "server.trusted_proxies[1]",
            "not an IP address or CIDR",
        );
        only_error(
            "server:\n  trusted_proxies: [10.0.0.0/40]",
            "server.trusted_proxies[0]",
            "CIDR",
        );
    }

    #[test]
    fn trusted_proxies_match_peers_in_their_networks() {
        let yaml = "server:\n  trusted_proxies: [10.1.0.0/16, '::1', ' 192.0.2.7 ']";
        let c = load_str(yaml, Path::new("/x"), &|_| None).unwrap();
        let trusts = |ip: &str| c.server.trusts_proxy(ip.parse().unwrap());
        assert!(trusts("10.1.2.3"));
        assert!(!trusts("10.2.0.1"));
        // An IPv4 client as a dual-stack socket reports it.
        assert!(trusts("::ffff:10.1.9.9"));
        // A bare address is a /128 (or /32) network.
        assert!(trusts("::1"));
        assert!(!trusts("::2"));
        assert!(trusts("192.0.2.7"));
        assert!(!trusts("192.0.2.8"));
        let all = load_str(
            "server:\n  trusted_proxies: [0.0.0.0/0]",
            Path::new("/x"),
            &|_| None,
        )
        .unwrap();
        assert!(all.server.trusts_proxy("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense"] {
            let yaml = format!("server:\n  trusted_proxies: ['{bad}']");
            only_error(&yaml, "server.trusted_proxies[0]", "not an IP address");
        }
    }

    #[test]
    fn database_url_scheme_must_be_known() {
        for url in [
            "sqlite://x.db",
            "mysql://u:p@h/db",
            "postgres://h/db",
            "postgresql://h/db",
        ] {
            assert_eq!(
                errors(&format!("database:\n  url: '{url}'")),
                vec![],
                "{url}"
            );
        }
        only_error(
            "database:\n  url: mongodb://h/db",
            "database.url",
            "unknown database scheme \"mongodb\"",
        );
        only_error(
            "database:\n  url: data/sesame.db",
            "database.url",
            "not a database URL",
        );
    }

    #[test]
    fn database_url_errors_do_not_leak_the_password() {
        let errs = errors("database:\n  url: mongo://user:hunter2@h/db");
        assert!(!errs[0].message.contains("hunter2"), "{errs:?}");
    }

    #[test]
    fn pool_size_and_connect_timeout_must_be_positive() {
        only_error(
            "database:\n  pool_size: 0",
            "database.pool_size",
            "greater than 0",
        );
        only_error(
            "database:\n  connect_timeout: 0s",
            "database.connect_timeout",
            "greater than 0",
        );
    }

    #[test]
    fn tenant_id_charset_and_emptiness() {
        let t =
            |id: &str| format!("tenants:\n  - id: '{id}'\n    issuer: https://id.example.com/x");
        only_error(&t(""), "tenants[0].id", "must not be empty");
        only_error(&t("Demo"), "tenants[0].id", "a-z, 0-9 and -");
        only_error(&t("de mo"), "tenants[0].id", "a-z, 0-9 and -");
        assert_eq!(errors(&t("demo-2")), vec![]);
    }

    #[test]
    fn tenant_ids_are_unique() {
        let yaml = "tenants:\n  - id: a\n    issuer: https://a.example.com\n  - id: a\n    issuer: https://b.example.com";
        only_error(
            yaml,
            "tenants[1].id",
            "duplicate tenant id \"a\" (also tenants[0])",
        );
    }

    #[test]
    fn issuer_must_be_absolute_http_without_query_or_fragment() {
        let t = |iss: &str| format!("tenants:\n  - id: a\n    issuer: '{iss}'");
        only_error(&t("/demo"), "tenants[0].issuer", "not an absolute URL");
        only_error(
            &t("ftp://id.example.com"),
            "tenants[0].issuer",
            "http or https",
        );
        only_error(
            &t("https://id.example.com/?x=1"),
            "tenants[0].issuer",
            "query",
        );
        only_error(
            &t("https://id.example.com/#x"),
            "tenants[0].issuer",
            "fragment",
        );
        only_error(
            &t("https://u:p@id.example.com/"),
            "tenants[0].issuer",
            "user name or password",
        );
        assert_eq!(errors(&t("http://127.0.0.1:8080/demo")), vec![]);
    }

    #[test]
    fn issuers_may_not_share_host_port_and_path() {
        let two = |a: &str, b: &str| {
            format!("tenants:\n  - id: a\n    issuer: '{a}'\n  - id: b\n    issuer: '{b}'")
        };
        only_error(
            &two(
                "https://id.example.com/acme",
                "https://id.example.com/acme/",
            ),
            "tenants[1].issuer",
            "shares host, port and path with tenants[0]",
        );
        only_error(
            &two("https://id.example.com/x", "https://id.example.com/x"),
            "tenants[1].issuer",
            "tenants[0]",
        );
        only_error(
            &two("https://ID.example.com", "http://id.example.com/"),
            "tenants[1].issuer",
            "shares",
        );
        // Different path, host or port: fine.
        assert_eq!(
            errors(&two(
                "https://id.example.com/acme",
                "https://id.example.com/globex"
            )),
            vec![]
        );
        assert_eq!(
            errors(&two(
                "https://id.example.com/",
                "https://id.example.com/acme"
            )),
            vec![]
        );
        assert_eq!(
            errors(&two("https://login.acme.com", "https://login.globex.com")),
            vec![]
        );
        assert_eq!(
            errors(&two("http://127.0.0.1:8080/", "http://127.0.0.1:8081/")),
            vec![]
        );
    }

    #[test]
    fn tenant_lifetimes_must_be_positive() {
        only_error(
            &tenant("lifetimes: { access_token: 0s }"),
            "tenants[0].lifetimes.access_token",
            "greater than 0",
        );
        assert_eq!(
            errors(&tenant("lifetimes: { access_token: 5m, session: 12h }")),
            vec![]
        );
    }

    #[test]
    fn lifetimes_are_at_most_100_years() {
        // 4·10^11 years (more seconds than an i64 holds) would overflow `now + lifetime` in unix seconds.
        only_error(
            &tenant("lifetimes: { refresh_token: 400000000000y }"),
            "tenants[0].lifetimes.refresh_token",
            "at most 100 years",
        );
        assert_eq!(errors(&tenant("lifetimes: { refresh_token: 99y }")), vec![]);
    }

    #[test]
    fn throttle_defaults_and_overrides() {
        let c = load_str(&tenant(""), Path::new("/x"), &|_| None).unwrap();
        let t = c.tenants[0].throttle;
        assert_eq!(t, ThrottleConfig::default());
        assert_eq!(
            (t.max_failures, t.client_max_failures, t.ip_max_failures),
            (5, 20, 20)
        );
        assert_eq!(t.window, Duration::from_secs(900));
        assert_eq!(t.lockout, Duration::from_secs(900));
        let c = load_str(
            &tenant("throttle: { max_failures: 3, window: 1m, lockout: 2s }"),
            Path::new("/x"),
            &|_| None,
        )
        .unwrap();
        let t = c.tenants[0].throttle;
        assert_eq!((t.max_failures, t.ip_max_failures), (3, 20));
        assert_eq!(t.lockout, Duration::from_secs(2));
    }

    #[test]
    fn pushed_request_lifetime_defaults_to_a_minute_and_is_bounded() {
        let c = load_str(&tenant(""), Path::new("/x"), &|_| None).unwrap();
        let p = c.tenants[0].pushed_authorization_requests;
        assert_eq!(p.lifetime, Duration::from_secs(60));
        assert!(!c.tenants[0].require_pushed_authorization_requests);
        let path = "tenants[0].pushed_authorization_requests.lifetime";
        only_error(
            &tenant("pushed_authorization_requests: { lifetime: 500ms }"),
            path,
            "at least 1s",
        );
        only_error(
            &tenant("pushed_authorization_requests: { lifetime: 11m }"),
            path,
            "at most 10m",
        );
        assert_eq!(
            errors(&tenant(
                "pushed_authorization_requests: { lifetime: 10m }\nrequire_pushed_authorization_requests: true"
            )),
            vec![]
        );
    }

    #[test]
    fn throttle_limits_are_positive_and_durations_at_least_a_second() {
        for name in ["max_failures", "client_max_failures", "ip_max_failures"] {
            only_error(
                &tenant(&format!("throttle: {{ {name}: 0 }}")),
                &format!("tenants[0].throttle.{name}"),
                "at least 1",
            );
        }
        for name in ["window", "lockout"] {
            only_error(
                &tenant(&format!("throttle: {{ {name}: 500ms }}")),
                &format!("tenants[0].throttle.{name}"),
                "at least 1s",
            );
            only_error(
                &tenant(&format!("throttle: {{ {name}: 200y }}")),
                &format!("tenants[0].throttle.{name}"),
                "at most 100 years",
            );
        }
        let errs = errors(&tenant("throttle: { max_failure: 3 }"));
        assert!(
            errs.len() == 1 && errs[0].path.starts_with("tenants[0].throttle"),
            "{errs:?}"
        );
    }

    #[test]
    fn plain_secrets_with_https_issuers_are_warned_about() {
        let yaml = format!(
            "{}
  - id: dev
    issuer: http://127.0.0.1:8080/dev
    clients:
      - id: app
        secret: s3cret
        redirect_uris: [http://localhost:9000/cb]
",
            client("secret: s3cret")
        );
        let c = load_str(&yaml, Path::new("/x"), &|_| None).unwrap();
        let w: Vec<ConfigError> = warnings(&c)
            .into_iter()
            .filter(|w| w.path.ends_with(".secret"))
            .collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "tenants[0].clients[0].secret");
        assert!(w[0].message.contains("secret_hash"));
        assert!(!w[0].message.contains("s3cret"));
        let hashed = load_str(
            &format!("{KEK_SET}{}", client(&format!("secret_hash: \"{ARGON2}\""))),
            Path::new("/x"),
            &|_| None,
        )
        .unwrap();
        assert_eq!(warnings(&hashed), vec![]);
    }

    /// A valid `key_encryption` block (32 bytes of 0x2a, base64).
    const KEK_SET: &str =
        "key_encryption: { key: 'KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=' }\n";

    #[test]
    fn generated_keys_of_https_tenants_without_key_encryption_are_warned_about() {
        let warned = |yaml: &str| -> Vec<String> {
            let c = load_str(yaml, Path::new("/x"), &|_| None).unwrap();
            warnings(&c).into_iter().map(|w| w.to_string()).collect()
        };
        let w = warned(&tenant(""));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("tenants[0].signing: tenant \"demo\"")
                && w[0].contains("in clear")
                && w[0].contains("key_encryption")
                && w[0].contains("openssl rand -base64 32"),
            "{w:?}"
        );
        assert_eq!(
            warned(&format!("{KEK_SET}{}", tenant(""))),
            Vec::<String>::new()
        );
        let http = "tenants:\n  - id: dev\n    issuer: http://127.0.0.1:8080/dev\n";
        assert_eq!(warned(http), Vec::<String>::new());

        let dir = tempfile::tempdir().unwrap();
        let pem = crate::jose::keygen_pem(crate::jose::Alg::EdDSA).unwrap();
        std::fs::write(dir.path().join("k.pem"), pem).unwrap();
        let c = load_str(
            &tenant("signing: { alg: EdDSA, keys: [k.pem] }"),
            dir.path(),
            &|_| None,
        )
        .unwrap();
        assert_eq!(warnings(&c), vec![]);
    }

    #[test]
    fn key_encryption_key_is_32_bytes_of_base64() {
        let c = load_str(KEK_SET, Path::new("/x"), &|_| None).unwrap();
        assert_eq!(
            c.key_encryption_key(),
            Some(&KeyEncryptionKey::from_bytes([0x2a; 32]))
        );
        assert_eq!(
            load_str("", Path::new("/x"), &|_| None)
                .unwrap()
                .key_encryption_key(),
            None
        );
        // From the environment, as documented.
        let env = |n: &str| {
            (n == "KEK").then(|| "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio".to_string())
        };
        let c = load_str("key_encryption: { key: '${KEK}' }", Path::new("/x"), &env).unwrap();
        assert!(c.key_encryption_key().is_some());

        only_error(
            "key_encryption: { key: 'c2hvcnQ=' }",
            "key_encryption.key",
            "decodes to 5 bytes",
        );
        only_error("key_encryption: { key: '' }", "key_encryption.key", "empty");
        only_error("key_encryption: {}", "key_encryption", "set key");
        only_error(
            "key_encryption: { key: 'KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=', key_file: k }",
            "key_encryption.key_file",
            "not both",
        );
        let errs = errors("key_encryption: { key: 'hunter2 hunter2' }");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(!errs[0].message.contains("hunter2"), "{errs:?}");
        // A missing variable is reported once, by the expansion.
        let errs = errors("key_encryption: { key: '${NOPE}' }");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("NOPE"), "{errs:?}");
        // A misspelt key, and so no key at all: both are said.
        let errs = errors("key_encryption: { kye: x }");
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["key_encryption.kye", "key_encryption"], "{errs:?}");
    }

    #[test]
    fn key_encryption_key_file_resolves_against_the_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        // As `openssl rand -base64 32 > secrets/kek` writes it.
        std::fs::write(
            dir.path().join("secrets/kek"),
            "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("secrets/bad"), "hunter2\n").unwrap();
        let c = load_str(
            "key_encryption: { key_file: secrets/kek }",
            dir.path(),
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            c.key_encryption_key(),
            Some(&KeyEncryptionKey::from_bytes([0x2a; 32]))
        );
        // The one error, at key_encryption.key_file, for `file`.
        let error_for = |file: &str| {
            let yaml = format!("key_encryption: {{ key_file: {file} }}");
            let errs = load_str(&yaml, dir.path(), &|_| None).unwrap_err().0;
            assert!(
                errs.len() == 1 && errs[0].path == "key_encryption.key_file",
                "{errs:?}"
            );
            assert!(errs[0].message.contains(file), "{errs:?}");
            errs[0].message.clone()
        };
        assert!(error_for("secrets/none").contains("cannot read key file"));
        let bad = error_for("secrets/bad");
        assert!(bad.contains("base64") && !bad.contains("hunter2"), "{bad}");
    }

    #[test]
    fn key_encryption_key_is_never_in_debug_output() {
        let c = load_str(KEK_SET, Path::new("/x"), &|_| None).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("KioqKioq"), "{debug}");
        assert!(debug.contains("KeyEncryptionConfig"), "{debug}");
    }

    #[test]
    fn client_lifetimes_must_be_positive() {
        only_error(
            &client("lifetimes: { refresh_token_family: 0d }"),
            "tenants[0].clients[0].lifetimes.refresh_token_family",
            "greater than 0",
        );
    }

    #[test]
    fn tenant_scope_names_are_scope_tokens() {
        assert_eq!(
            errors(&tenant("scopes: { 'api:read': { description: Read } }")),
            vec![]
        );
        only_error(
            &tenant("scopes: { 'api read': {} }"),
            "tenants[0].scopes.api read",
            "not a valid scope name",
        );
        only_error(
            &tenant("scopes: { 'a\"b': {} }"),
            "tenants[0].scopes.a\"b",
            "not a valid scope name",
        );
        only_error(
            &tenant("scopes: { 'caf\u{e9}': {} }"),
            "tenants[0].scopes.caf\u{e9}",
            "not a valid scope name",
        );
        only_error(
            &tenant("scopes: { '': {} }"),
            "tenants[0].scopes.",
            "not a valid scope name",
        );
    }

    fn users(list: &str) -> String {
        tenant(&format!("users:\n{}", indent(list, 2)))
    }

    #[test]
    fn usernames_are_non_empty_and_unique() {
        let u = |name: &str| format!("- {{ username: '{name}', password_hash: '{ARGON2}' }}\n");
        assert_eq!(errors(&users(&(u("alice") + u("bob").as_str()))), vec![]);
        only_error(
            &users(&u("")),
            "tenants[0].users[0].username",
            "must not be empty",
        );
        only_error(
            &users(&(u("alice") + u("bob").as_str() + u("alice").as_str())),
            "tenants[0].users[2].username",
            "duplicate username \"alice\" (also users[0])",
        );
    }

    #[test]
    fn explicit_subs_are_unique_and_non_empty() {
        let u = |name: &str, sub: &str| {
            format!("- {{ username: {name}, password_hash: '{ARGON2}', sub: '{sub}' }}\n")
        };
        only_error(
            &users(&(u("a", "s1") + u("b", "s1").as_str())),
            "tenants[0].users[1].sub",
            "duplicate sub \"s1\"",
        );
        only_error(
            &users(&u("a", "")),
            "tenants[0].users[0].sub",
            "must not be empty",
        );
    }

    #[test]
    fn password_hashes_are_argon2_or_bcrypt() {
        let u = |hash: &str| format!("- {{ username: a, password_hash: '{hash}' }}");
        assert_eq!(errors(&users(&u(ARGON2))), vec![]);
        assert_eq!(errors(&users(&u(&bcrypt_hash()))), vec![]);
        assert_eq!(
            errors(&users(&u(&ARGON2.replace("argon2id", "argon2i")))),
            vec![]
        );
        let p = "tenants[0].users[0].password_hash";
        only_error(
            &users(&u("hunter2")),
            p,
            "not an argon2 ($argon2id$...) or bcrypt",
        );
        only_error(&users(&u("")), p, "empty");
        only_error(&users(&u("$argon2id$v=19$m=19456")), p, "argon2");
        only_error(
            &users(&u(&ARGON2.replace("argon2id", "argon2x"))),
            p,
            "argon2",
        );
        only_error(
            &users(&u(&ARGON2.replace("t=2", "t=0"))),
            p,
            "argon2 parameters",
        );
        let b = bcrypt_hash();
        only_error(
            &users(&u(&b.replace("$2b$", "$2x$"))),
            p,
            "malformed bcrypt hash",
        );
        only_error(&users(&u(&b[..50])), p, "malformed bcrypt hash");
        only_error(
            &users(&u(&b.replacen("$04$", "$99$", 1))),
            p,
            "bcrypt cost 99",
        );
        only_error(
            &users(&u(&format!("{}!", &b[..59]))),
            p,
            "malformed bcrypt salt or hash",
        );
    }

    #[test]
    fn user_claims_may_not_set_registered_claims() {
        only_error(
            &users(&format!(
                "- {{ username: a, password_hash: '{ARGON2}', claims: {{ name: A, sub: x }} }}"
            )),
            "tenants[0].users[0].claims.sub",
            "registered claim",
        );
    }

    #[test]
    fn plugin_scripts_must_exist_relative_to_plugins_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("scripts/claims")).unwrap();
        std::fs::write(dir.path().join("scripts/claims/groups.rhai"), "").unwrap();
        let yaml = format!(
            "plugins_dir: scripts\n{}",
            tenant("plugins: [claims/groups.rhai, claims/missing.rhai, claims/groups.js]\nclients:\n  - id: app\n    redirect_uris: [https://a.example/cb]\n    plugins: [nope.rhai]")
        );
        let errs = load_str(&yaml, dir.path(), &|_| None).unwrap_err().0;
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "tenants[0].plugins[1]",
                "tenants[0].plugins[2]",
                "tenants[0].clients[0].plugins[0]"
            ],
            "{errs:#?}"
        );
        assert!(
            errs[0].message.contains("claims/missing.rhai not found"),
            "{errs:#?}"
        );
        assert!(
            errs[0].message.contains("relative to plugins_dir"),
            "{errs:#?}"
        );
        assert!(
            errs[1].message.contains("must be a .rhai file"),
            "{errs:#?}"
        );
        assert!(
            errs[2].message.contains("scripts/nope.rhai not found"),
            "{errs:#?}"
        );
    }

    #[test]
    fn client_ids_are_non_empty_and_unique_per_tenant() {
        let c = "  - id: app\n    redirect_uris: [https://a.example/cb]\n";
        only_error(
            &tenant(&format!("clients:\n{c}{c}")),
            "tenants[0].clients[1].id",
            "duplicate client id \"app\" in this tenant (also clients[0])",
        );
        only_error(
            &tenant("clients:\n  - id: ''\n    redirect_uris: [https://a.example/cb]"),
            "tenants[0].clients[0].id",
            "must not be empty",
        );
        // The same id in two tenants is fine.
        let t = |id: &str, host: &str| {
            format!(
                "  - id: {id}\n    issuer: https://{host}\n    clients:\n{}",
                indent(c, 4)
            )
        };
        assert_eq!(
            errors(&format!(
                "tenants:\n{}{}",
                t("a", "a.example"),
                t("b", "b.example")
            )),
            vec![]
        );
    }

    #[test]
    fn redirect_uris_are_absolute_without_fragment() {
        let p = "tenants[0].clients[0].redirect_uris[1]";
        only_error(
            &client("redirect_uris: [https://a.example/cb, /cb]"),
            p,
            "not an absolute URL",
        );
        only_error(
            &client("redirect_uris: [https://a.example/cb, 'https://a.example/cb#x']"),
            p,
            "fragment",
        );
        assert_eq!(
            errors(&client(
                "redirect_uris: ['com.example.app:/oauth2redirect', 'http://127.0.0.1:9000/cb']"
            )),
            vec![]
        );
    }

    #[test]
    fn post_logout_redirect_uris_are_absolute_without_fragment() {
        only_error(
            &client("post_logout_redirect_uris: [bye]"),
            "tenants[0].clients[0].post_logout_redirect_uris[0]",
            "not an absolute URL",
        );
        only_error(
            &client("post_logout_redirect_uris: ['https://a.example/#bye']"),
            "tenants[0].clients[0].post_logout_redirect_uris[0]",
            "fragment",
        );
    }

    #[test]
    fn logout_uris_are_https_or_loopback_without_fragment() {
        let cp = "tenants[0].clients[0]";
        for (field, value, fragment) in [
            ("backchannel_logout_uri", "/bc", "not an absolute URL"),
            (
                "backchannel_logout_uri",
                "http://rp.example/bc",
                "must be https",
            ),
            (
                "frontchannel_logout_uri",
                "https://rp.example/fc#x",
                "fragment",
            ),
        ] {
            only_error(
                &client(&format!("{field}: '{value}'")),
                &format!("{cp}.{field}"),
                fragment,
            );
        }
        only_error(
            &client("frontchannel_logout_session_required: true"),
            &format!("{cp}.frontchannel_logout_session_required"),
            "needs frontchannel_logout_uri",
        );
        let ok = client(
            &[
                "backchannel_logout_uri: http://127.0.0.1:9000/bc",
                "backchannel_logout_session_required: true",
                "frontchannel_logout_uri: https://rp.example/fc?x=1",
                "frontchannel_logout_session_required: true",
            ]
            .join("\n"),
        );
        assert!(errors(&ok).is_empty(), "{:#?}", errors(&ok));
    }

    #[test]
    fn backchannel_delivery_settings_are_bounded() {
        only_error(
            &tenant("logout: { backchannel: { max_attempts: 0 } }"),
            "tenants[0].logout.backchannel.max_attempts",
            "at least 1",
        );
        only_error(
            &tenant("logout: { backchannel: { timeout: 2m } }"),
            "tenants[0].logout.backchannel.timeout",
            "at most 60s",
        );
        only_error(
            &tenant("logout: { backchannel: { backoff: 10m, max_backoff: 1m } }"),
            "tenants[0].logout.backchannel.max_backoff",
            "not be shorter",
        );
        only_error(
            &tenant("logout: { backchannel: { backoff: 500ms } }"),
            "tenants[0].logout.backchannel.backoff",
            "at least 1s",
        );
    }

    #[test]
    fn script_data_and_local_schemes_are_refused_as_redirect_uris() {
        let yaml = client(
            "redirect_uris:
  - https://a.example/cb
  - 'javascript:alert(document.domain)'
  - 'JavaScript://a.example/%0Aalert(1)'
  - 'data:text/html,<script>alert(1)</script>'
  - relative/cb
  - 'com.example.app:/oauth2redirect'
  - 'https://a.example/cb#frag'
  - 'vbscript:msgbox(1)'
post_logout_redirect_uris:
  - https://a.example/bye
  - 'file:///etc/passwd'
  - 'blob:https://a.example/0b7c6f0e'
  - 'about:blank'
  - 'myapp:/signed-out'",
        );
        let errs = errors(&yaml);
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect();
        let cp = "tenants[0].clients[0]";
        let want = [
            (
                format!("{cp}.redirect_uris[1]"),
                "javascript: URIs can't be redirect URIs",
            ),
            (format!("{cp}.redirect_uris[2]"), "javascript: URIs"),
            (format!("{cp}.redirect_uris[3]"), "data: URIs"),
            (format!("{cp}.redirect_uris[4]"), "not an absolute URL"),
            (format!("{cp}.redirect_uris[6]"), "fragment"),
            (format!("{cp}.redirect_uris[7]"), "vbscript: URIs"),
            (format!("{cp}.post_logout_redirect_uris[1]"), "file: URIs"),
            (format!("{cp}.post_logout_redirect_uris[2]"), "blob: URIs"),
            (format!("{cp}.post_logout_redirect_uris[3]"), "about: URIs"),
        ];
        assert_eq!(got.len(), want.len(), "{errs:#?}");
        for ((path, message), (want_path, want_message)) in got.iter().zip(&want) {
            assert_eq!(path, want_path, "{errs:#?}");
            assert!(message.contains(want_message), "{path}: {message}");
        }
    }

    #[test]
    fn plain_http_redirect_uris_off_loopback_are_warned_about() {
        let yaml = format!(
            "{KEK_SET}{}",
            client(
                "redirect_uris:
  - http://localhost:9000/cb
  - http://LocalHost/cb
  - http://127.0.0.1/cb
  - http://127.0.0.2:8080/cb
  - 'http://[::1]:8080/cb'
  - https://app.example.com/cb
  - 'com.example.app:/cb'
  - http://app.example.com/cb
  - http://192.168.1.10/cb
  - 'http://[2001:db8::1]/cb'
  - http://localhost.evil.example/cb
post_logout_redirect_uris: [http://app.example.com/bye]"
            )
        );
        let c = load_str(&yaml, Path::new("/x"), &|_| None).unwrap();
        let w = warnings(&c);
        let paths: Vec<&str> = w.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [7, 8, 9, 10].map(|i| format!("tenants[0].clients[0].redirect_uris[{i}]")),
            "{w:#?}"
        );
        assert!(
            w[0].message.contains("plain http") && w[0].message.contains("https"),
            "{w:#?}"
        );
    }

    #[test]
    fn authorization_code_needs_a_redirect_uri() {
        only_error(
            &client("redirect_uris: []"),
            "tenants[0].clients[0].redirect_uris",
            "authorization_code grant needs at least one redirect URI",
        );
        assert_eq!(
            errors(&client(
                "secret: s\nredirect_uris: []\ngrant_types: [client_credentials]"
            )),
            vec![]
        );
    }

    #[test]
    fn grant_types_are_non_empty_and_listed_once() {
        only_error(
            &client("grant_types: []"),
            "tenants[0].clients[0].grant_types",
            "at least one grant type",
        );
        only_error(
            &client("grant_types: [authorization_code, authorization_code]"),
            "tenants[0].clients[0].grant_types[1]",
            "listed twice",
        );
    }

    #[test]
    fn refresh_token_grant_requires_authorization_code() {
        only_error(
            &client("secret: s\ngrant_types: [client_credentials, refresh_token]"),
            "tenants[0].clients[0].grant_types[1]",
            "refresh_token grant requires the authorization_code grant",
        );
        assert_eq!(
            errors(&client("grant_types: [authorization_code, refresh_token]")),
            vec![]
        );
    }

    #[test]
    fn public_clients_cannot_use_client_credentials() {
        only_error(
            &client("grant_types: [authorization_code, client_credentials]"),
            "tenants[0].clients[0].grant_types[1]",
            "client_credentials needs a confidential client",
        );
    }

    #[test]
    fn auth_method_none_only_without_secret() {
        only_error(
            &client("secret: s\ntoken_endpoint_auth_method: none"),
            "tenants[0].clients[0].token_endpoint_auth_method",
            "none is only for public clients",
        );
        assert_eq!(errors(&client("token_endpoint_auth_method: none")), vec![]);
    }

    #[test]
    fn auth_method_client_secret_needs_a_secret() {
        only_error(
            &client("token_endpoint_auth_method: client_secret_post"),
            "tenants[0].clients[0].token_endpoint_auth_method",
            "client_secret_post needs a secret or secret_hash",
        );
        assert_eq!(
            errors(&client(&format!(
                "secret_hash: '{ARGON2}'\ntoken_endpoint_auth_method: client_secret_basic"
            ))),
            vec![]
        );
    }

    #[test]
    fn secret_and_secret_hash_are_exclusive() {
        only_error(
            &client(&format!("secret: s\nsecret_hash: '{ARGON2}'")),
            "tenants[0].clients[0].secret_hash",
            "either secret or secret_hash, not both",
        );
    }

    #[test]
    fn secrets_must_not_be_empty_and_hashes_must_parse() {
        only_error(
            &client("secret: ''"),
            "tenants[0].clients[0].secret",
            "must not be empty",
        );
        only_error(
            &client("secret_hash: plain"),
            "tenants[0].clients[0].secret_hash",
            "invalid secret_hash",
        );
        assert_eq!(
            errors(&client(&format!("secret_hash: '{}'", bcrypt_hash()))),
            vec![]
        );
    }

    #[test]
    fn secrets_are_never_echoed() {
        let errs = errors(&client("secret: hunter2\ntoken_endpoint_auth_method: none"));
        assert!(
            errs.iter().all(|e| !e.message.contains("hunter2")),
            "{errs:?}"
        );
    }

    #[test]
    fn client_scopes_exist_in_the_tenant() {
        assert_eq!(
            errors(&tenant(
                "scopes: { 'api:read': {} }\nclients:\n  - id: app\n    redirect_uris: [https://a.example/cb]\n    scopes: [openid, profile, email, address, phone, offline_access, 'api:read']"
            )),
            vec![]
        );
        only_error(
            &client("scopes: [openid, 'api:write']"),
            "tenants[0].clients[0].scopes[1]",
            "unknown scope \"api:write\"",
        );
        only_error(
            &client("scopes: ['open id']"),
            "tenants[0].clients[0].scopes[0]",
            "not a valid scope name",
        );
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("api:read"));
        assert!(is_scope_token("https://api.example.com/read"));
        assert!(is_scope_token("!#[]~"));
        for bad in ["", "a b", "a\"b", "a\\b", "a\tb", "\u{e9}", "a\u{7f}"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn errors_follow_document_order() {
        let yaml = "server:\n  trusted_proxies: [x]\ndatabase:\n  pool_size: 0\ntenants:\n  - id: A\n    issuer: nope\n    clients:\n      - id: c\n        redirect_uris: [rel]\n        scopes: [nope]\n  - id: b\n    issuer: https://b.example\n    lifetimes: { session: 0s }";
        let paths: Vec<String> = errors(yaml).into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "server.trusted_proxies[0]",
                "database.pool_size",
                "tenants[0].id",
                "tenants[0].issuer",
                "tenants[0].clients[0].redirect_uris[0]",
                "tenants[0].clients[0].scopes[0]",
                "tenants[1].lifetimes.session",
            ]
        );
    }
}
