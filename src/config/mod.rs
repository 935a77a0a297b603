//! The YAML configuration as written by the operator.
//!
//! These are the raw `*Config` types: they mirror the file exactly
//! (`deny_unknown_fields` everywhere, no `flatten`). [`load`] parses,
//! expands `${NAME}`, and validates, collecting every problem with its
//! YAML path. The resolved runtime types live in `crate::tenant`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::jose::{Alg, KeyEncryptionKey, SigningKey};

mod duration;
mod env;
mod lenient;
mod load;
mod locate;
mod restart;
mod validate;

pub use load::{load, load_str};
pub use locate::{locate, with_location};
pub use restart::restart_only_changes;
pub use validate::{validate, warnings, REGISTERED_CLAIMS};

/// One configuration problem, named by its YAML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `tenants[0].clients[1].redirect_uris[0]`, or empty for the document.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one configuration, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default = "default_plugins_dir")]
    pub plugins_dir: PathBuf,
    /// Wall-clock limit of one plugin hook call (past it: `server_error`).
    #[serde(default = "default_plugin_time_limit", with = "duration")]
    pub plugin_time_limit: Duration,
    /// The key that encrypts generated signing keys in the database.
    #[serde(default)]
    pub key_encryption: Option<KeyEncryptionConfig>,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Directory of the config file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Config {
    /// `p` against the config file's directory (absolute paths stay as they are).
    pub fn resolve(&self, p: &Path) -> PathBuf {
        self.base_dir.join(p)
    }

    /// The plugins directory, resolved against the config file's directory.
    pub fn plugins_dir_path(&self) -> PathBuf {
        self.resolve(&self.plugins_dir)
    }

    /// A script path from `plugins:` (tenant or client), resolved against `plugins_dir`.
    pub fn plugin_path(&self, p: &Path) -> PathBuf {
        self.plugins_dir_path().join(p)
    }

    /// The key-encryption key, once validation parsed it.
    pub fn key_encryption_key(&self) -> Option<&KeyEncryptionKey> {
        self.key_encryption.as_ref()?.loaded.as_ref()
    }

    /// The SQLite database file named by `database.url` (`sqlite://data/x.db`,
    /// `sqlite:///abs/x.db`, `sqlite:x.db`), resolved against the config
    /// file's directory; `None` for other backends and for `:memory:`.
    /// A query string (`?mode=rwc`) is not part of the path.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database.url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let rest = rest.split('?').next().unwrap_or(rest);
        if rest.is_empty() || rest == ":memory:" {
            return None;
        }
        Some(self.resolve(Path::new(rest)))
    }
}

fn default_plugins_dir() -> PathBuf {
    PathBuf::from("plugins")
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Peers (IP addresses or CIDR blocks) whose X-Forwarded-* headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// `trusted_proxies` as networks (a bare address is a /32 or /128), in
    /// order; filled by validation, which refuses an entry that does not parse.
    #[serde(skip)]
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// A second address for `/metrics` (and the health endpoints), so they
    /// need not face the internet; then the public listener has no `/metrics`.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// `text` (default) or `json` (one object per line).
    #[serde(default)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            trusted_proxies: Vec::new(),
            trusted_networks: Vec::new(),
            admin_listen: None,
            log_format: LogFormat::default(),
        }
    }
}

impl ServerConfig {
    /// Whether `peer` is in one of the `trusted_proxies`. An IPv4-mapped
    /// IPv6 peer (`::ffff:10.0.0.1`, as a dual-stack socket reports IPv4
    /// clients) matches the IPv4 networks.
    pub fn trusts_proxy(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_networks.iter().any(|n| n.contains(&peer))
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// The operator's key-encryption key: generated signing keys are stored
/// encrypted under it (AES-256-GCM). Exactly one of `key` and `key_file`.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEncryptionConfig {
    /// 32 random bytes in base64 (`openssl rand -base64 32`), usually
    /// `${SESAME_KEY_ENCRYPTION_KEY}`.
    pub key: Option<String>,
    /// A file holding the same; relative paths resolve against the config
    /// file's directory.
    pub key_file: Option<PathBuf>,
    /// `key`, or the content of `key_file`, parsed by validation.
    #[serde(skip)]
    pub loaded: Option<KeyEncryptionKey>,
}

impl std::fmt::Debug for KeyEncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionConfig")
            .field("key", &self.key.as_ref().map(|_| ".."))
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    #[serde(default = "default_database_url")]
    pub url: String,
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// How long a request waits for a database connection before it fails.
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
            pool_size: default_pool_size(),
            connect_timeout: default_connect_timeout(),
        }
    }
}

fn default_database_url() -> String {
    "sqlite://data/sesame.db".to_string()
}

fn default_pool_size() -> u32 {
    16
}

fn default_plugin_time_limit() -> Duration {
    Duration::from_millis(100)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    pub issuer: String,
    #[serde(default)]
    pub signing: SigningConfig,
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    #[serde(default)]
    pub access_token_format: AccessTokenFormat,
    #[serde(default)]
    pub scopes: BTreeMap<String, ScopeConfig>,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    pub users_file: Option<PathBuf>,
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// The APIs that accept this tenant's access tokens.
    #[serde(default)]
    pub resource_servers: Vec<ResourceServerConfig>,
    /// Brute-force protection for sign-ins and client authentication.
    #[serde(default)]
    pub throttle: ThrottleConfig,
}

/// An API (OAuth resource server) that accepts the tenant's access tokens.
/// It authenticates at the introspection endpoint as `client`, and is
/// answered there for the access tokens that carry one of its `scopes`
/// (besides its own tokens, as for every client).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerConfig {
    /// Its identifier: an absolute URI (RFC 8707 §2), e.g. `https://api.example.com`.
    pub identifier: String,
    /// The confidential client it authenticates as.
    pub client: String,
    /// The scopes it accepts.
    pub scopes: Vec<String>,
}

/// Brute-force protection: failures counted in the database (so every node
/// sees them) per key within `window`; a key that reaches its limit is
/// locked for `lockout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Failed sign-ins per (tenant, username) before a lockout.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// Failed client authentications per (tenant, client_id) before a lockout.
    #[serde(default = "default_client_max_failures")]
    pub client_max_failures: u32,
    /// Failed sign-ins (and, counted apart, failed client authentications)
    /// per client IP address (IPv6: per /64) before a lockout.
    #[serde(default = "default_ip_max_failures")]
    pub ip_max_failures: u32,
    /// Failures older than this are forgotten.
    #[serde(default = "default_throttle_window", with = "duration")]
    pub window: Duration,
    /// How long a key stays locked once it reached its limit.
    #[serde(default = "default_lockout", with = "duration")]
    pub lockout: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: default_max_failures(),
            client_max_failures: default_client_max_failures(),
            ip_max_failures: default_ip_max_failures(),
            window: default_throttle_window(),
            lockout: default_lockout(),
        }
    }
}

fn default_max_failures() -> u32 {
    5
}

fn default_client_max_failures() -> u32 {
    20
}

fn default_ip_max_failures() -> u32 {
    20
}

fn default_throttle_window() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_lockout() -> Duration {
    Duration::from_secs(15 * 60)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    #[serde(default)]
    pub alg: Alg,
    /// PEM files; the first signs, all are published. Empty: generated and stored.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// The `keys` files, read and parsed once by validation, in order.
    #[serde(skip)]
    pub loaded_keys: Vec<SigningKey>,
}

/// Token lifetimes; absent values fall back to the tenant's, then the defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LifetimesConfig {
    #[serde(default, with = "duration::option")]
    pub authorization_code: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub access_token: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub id_token: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub refresh_token: Option<Duration>,
    /// Absolute lifetime of a refresh token family, however often it rotates.
    #[serde(default, with = "duration::option")]
    pub refresh_token_family: Option<Duration>,
    #[serde(default, with = "duration::option")]
    pub session: Option<Duration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenFormat {
    /// RFC 9068 JWT.
    #[default]
    Jwt,
    /// A random reference token, looked up in storage.
    Opaque,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    #[serde(default)]
    pub description: String,
    /// User claims released to userinfo and the ID token with this scope.
    #[serde(default)]
    pub claims: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    pub password_hash: String,
    pub sub: Option<String>,
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// The shape of a `users_file`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    pub users: Vec<UserConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    pub secret: Option<String>,
    pub secret_hash: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    #[serde(default = "default_client_scopes")]
    pub scopes: Vec<String>,
    /// Default: `client_secret_basic` with a secret, `none` without.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    #[serde(default)]
    pub require_pkce: bool,
    #[serde(default)]
    pub skip_consent: bool,
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl ClientConfig {
    /// A public client has neither `secret` nor `secret_hash`.
    pub fn is_public(&self) -> bool {
        self.secret.is_none() && self.secret_hash.is_none()
    }

    /// `token_endpoint_auth_method`, or its default: `client_secret_basic`
    /// for a confidential client, `none` for a public one.
    pub fn auth_method(&self) -> AuthMethod {
        self.token_endpoint_auth_method
            .unwrap_or(if self.is_public() {
                AuthMethod::None
            } else {
                AuthMethod::ClientSecretBasic
            })
    }

    pub fn has_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode]
}

fn default_client_scopes() -> Vec<String> {
    vec!["openid".to_string()]
}

/// Scopes every tenant has without declaring them.
pub const BUILTIN_SCOPES: &[(&str, &str)] = &[
    ("openid", "Sign you in"),
    ("profile", "Your name and profile details"),
    ("email", "Your email address"),
    ("address", "Your postal address"),
    ("phone", "Your phone number"),
    (
        "offline_access",
        "Stay signed in when you are away (refresh tokens)",
    ),
];
