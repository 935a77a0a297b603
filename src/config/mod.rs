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

pub mod duration;
mod env;
mod lenient;
mod load;
mod locate;
mod restart;
pub mod timestamp;
mod ui;
mod validate;

pub(crate) use env::child_path;
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
    /// The YAML paths of the values that came from `${NAME}` references
    /// (never shown in clear by `sesame plan`'s records).
    #[serde(skip)]
    pub from_env: std::collections::BTreeSet<String>,
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
    /// Reload by itself when the config file, a script or a page file it
    /// names changes (as SIGHUP does), after the edit settles.
    #[serde(default)]
    pub watch_config: bool,
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
            watch_config: false,
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
    /// A directory of template files (`login.html`, `base.html`, …) that
    /// replace the built-in ones of the same name.
    pub templates_dir: Option<PathBuf>,
    /// The pages' language when neither `ui_locales` nor `Accept-Language`
    /// names one there is a catalogue for (default `en`).
    pub default_locale: Option<String>,
    /// Whether users may also sign in with their `email` claim.
    #[serde(default)]
    pub login_by_email: bool,
    /// How the tenant's pages look.
    #[serde(default)]
    pub branding: BrandingConfig,
    /// Pushed authorization requests (RFC 9126) at `/par`.
    #[serde(default)]
    pub pushed_authorization_requests: PushedAuthorizationConfig,
    /// Every client of the tenant must push its authorization requests.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// DPoP proofs (RFC 9449): how old one may be, and whether each must
    /// carry a nonce of ours.
    #[serde(default)]
    pub dpop: DpopConfig,
    /// A security profile every client of the tenant follows (`fapi2`).
    pub profile: Option<Profile>,
    /// Telling applications that a session ended.
    #[serde(default)]
    pub logout: LogoutConfig,
    /// The files `templates_dir`, `branding.css`, `branding.logo` and
    /// `branding.favicon` name, read and checked by validation.
    #[serde(skip)]
    pub loaded_ui: LoadedUi,
}

/// A tenant's look: every value optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrandingConfig {
    /// The name shown at the top of every page and in its title.
    pub name: Option<String>,
    /// An https URL, or an image file (png, jpg, gif, webp, svg, ico) that
    /// sesame serves; relative paths resolve against the config file.
    pub logo: Option<String>,
    pub favicon: Option<String>,
    /// CSS hex colours (`#0a7d4f`): buttons and links, and the page background.
    pub primary_color: Option<String>,
    pub background_color: Option<String>,
    /// A stylesheet file appended to sesame's.
    pub css: Option<PathBuf>,
    #[serde(default)]
    pub links: BrandLinksConfig,
}

/// https links on the pages: the footer's, and the sign-in form's help link.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrandLinksConfig {
    pub privacy: Option<String>,
    pub terms: Option<String>,
    pub support: Option<String>,
    /// "Forgot your password?" under the sign-in form.
    pub help: Option<String>,
}

/// The files of a tenant's pages, as read by validation.
#[derive(Debug, Clone, Default)]
pub struct LoadedUi {
    /// `(file name, source)` of every `.html` file in `templates_dir`.
    pub templates: Vec<(String, String)>,
    pub css: Option<String>,
    pub logo: Option<crate::ui::Image>,
    pub favicon: Option<crate::ui::Image>,
}

/// Words for people: one text, or one per language (`{en: …, fr: …}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Text {
    Plain(String),
    PerLanguage(BTreeMap<String, String>),
}

impl Default for Text {
    fn default() -> Text {
        Text::Plain(String::new())
    }
}

impl Text {
    /// The text in `lang`, else in `fallback`, else in English, else any
    /// (`""` when there is none).
    pub fn get(&self, lang: &str, fallback: &str) -> &str {
        match self {
            Text::Plain(s) => s,
            Text::PerLanguage(m) => [lang, fallback, "en"]
                .iter()
                .find_map(|l| m.get(*l))
                .or_else(|| m.values().next())
                .map(String::as_str)
                .unwrap_or(""),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Text::Plain(s) => s.is_empty(),
            Text::PerLanguage(m) => m.values().all(String::is_empty),
        }
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, Text::Plain(s) if s == other)
    }
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
    /// Access tokens issued for it (`resource=` its identifier): their
    /// format and lifetime, when not the tenant's and the client's.
    #[serde(default)]
    pub access_token: ResourceTokenConfig,
}

/// `resource_servers[].access_token`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTokenConfig {
    pub format: Option<AccessTokenFormat>,
    #[serde(default, with = "duration::option")]
    pub lifetime: Option<Duration>,
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

/// Pushed authorization requests (RFC 9126).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushedAuthorizationConfig {
    /// How long a `request_uri` may wait for its `/authorize` (RFC 9126's `expires_in`).
    #[serde(default = "default_pushed_request_lifetime", with = "duration")]
    pub lifetime: Duration,
}

/// `dpop`: how DPoP proofs (RFC 9449) are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DpopConfig {
    /// The oldest proof accepted, by its `iat` (a proof may also be up to
    /// 5 s in the future, for clock skew).
    #[serde(default = "default_dpop_max_age", with = "duration")]
    pub max_age: Duration,
    /// Every proof must carry a `nonce` the server gave out (`DPoP-Nonce`,
    /// RFC 9449 §8), so that a proof cannot be made ahead of time.
    #[serde(default)]
    pub require_nonce: bool,
}

fn default_dpop_max_age() -> Duration {
    Duration::from_secs(60)
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            max_age: default_dpop_max_age(),
            require_nonce: false,
        }
    }
}

/// A security profile: the rules a client (or every client of a tenant)
/// must follow, checked by validation and enforced on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The FAPI 2.0 Security Profile: PAR, PKCE S256, `private_key_jwt`,
    /// DPoP-bound tokens, `iss` in the response, codes of at most 60 s and
    /// signatures other than RS256.
    Fapi2,
}

impl Default for PushedAuthorizationConfig {
    fn default() -> Self {
        PushedAuthorizationConfig {
            lifetime: default_pushed_request_lifetime(),
        }
    }
}

fn default_pushed_request_lifetime() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    #[serde(default)]
    pub alg: Alg,
    /// PEM files, each with an optional window; the first whose window holds
    /// now signs, all are published. Empty: generated and stored.
    #[serde(default)]
    pub keys: Vec<KeyFile>,
    /// Generated keys replaced on a schedule (not with `keys`).
    #[serde(default)]
    pub rotation: Option<RotationConfig>,
    /// The `keys` files, read and parsed once by validation, in order.
    #[serde(skip)]
    pub loaded_keys: Vec<SigningKey>,
}

/// A configured signing key: a PEM file (`keys/a.pem`), or the file with
/// the window in which it signs (`{ path, not_before, not_after }`, RFC 3339
/// times held as unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFile {
    pub path: PathBuf,
    #[serde(with = "timestamp::option", skip_serializing_if = "Option::is_none")]
    pub not_before: Option<i64>,
    #[serde(with = "timestamp::option", skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
}

impl From<PathBuf> for KeyFile {
    fn from(path: PathBuf) -> KeyFile {
        KeyFile {
            path,
            not_before: None,
            not_after: None,
        }
    }
}

/// The long form of a [`KeyFile`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileMap {
    path: PathBuf,
    #[serde(default, with = "timestamp::option")]
    not_before: Option<i64>,
    #[serde(default, with = "timestamp::option")]
    not_after: Option<i64>,
}

impl<'de> Deserialize<'de> for KeyFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyFile, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KeyFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a PEM file path, or { path, not_before, not_after }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyFile, E> {
                Ok(KeyFile::from(PathBuf::from(v)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<KeyFile, A::Error> {
                let m = KeyFileMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(KeyFile {
                    path: m.path,
                    not_before: m.not_before,
                    not_after: m.not_after,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Logout across applications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutConfig {
    #[serde(default)]
    pub backchannel: BackchannelConfig,
}

/// Delivery of back-channel logout tokens: each attempt waits `timeout` for
/// the client's answer; a failed one is tried again after `backoff`,
/// doubling up to `max_backoff`, at most `max_attempts` times in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackchannelConfig {
    #[serde(default = "default_backchannel_timeout", with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_backchannel_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backchannel_backoff", with = "duration")]
    pub backoff: Duration,
    #[serde(default = "default_backchannel_max_backoff", with = "duration")]
    pub max_backoff: Duration,
}

impl Default for BackchannelConfig {
    fn default() -> Self {
        BackchannelConfig {
            timeout: default_backchannel_timeout(),
            max_attempts: default_backchannel_attempts(),
            backoff: default_backchannel_backoff(),
            max_backoff: default_backchannel_max_backoff(),
        }
    }
}

fn default_backchannel_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_backchannel_attempts() -> u32 {
    12
}

fn default_backchannel_backoff() -> Duration {
    Duration::from_secs(2)
}

fn default_backchannel_max_backoff() -> Duration {
    Duration::from_secs(3600)
}

/// Generated keys on a schedule: a new key every `every`, published `lead`
/// before it signs; relying parties cache the JWKS for `jwks_cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    #[serde(with = "duration")]
    pub every: Duration,
    #[serde(default = "default_rotation_lead", with = "duration")]
    pub lead: Duration,
    #[serde(default = "default_jwks_cache", with = "duration")]
    pub jwks_cache: Duration,
}

fn default_rotation_lead() -> Duration {
    Duration::from_secs(86400)
}

fn default_jwks_cache() -> Duration {
    Duration::from_secs(300)
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
    /// Shown on the consent page: one text, or one per language.
    #[serde(default)]
    pub description: Text,
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
    /// A JWT signed with the client secret (HMAC; RFC 7523, OIDC Core §9).
    ClientSecretJwt,
    /// A JWT signed with one of the client's keys (`jwks` or `jwks_uri`).
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    /// Every method, as discovery lists them.
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::ClientSecretJwt,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
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
    /// Authorization requests must be pushed to `/par` first (RFC 9126 §6).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    #[serde(default)]
    pub lifetimes: LifetimesConfig,
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// OIDC client metadata shown on the consent page (https URLs): the
    /// application's logo, home page, privacy policy and terms of service.
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    /// The algorithm of this client's ID tokens: the tenant's signing
    /// algorithm (the default) or RS256, which every tenant offers.
    pub id_token_signed_response_alg: Option<Alg>,
    /// The client's public keys, for `private_key_jwt`: a JWK Set
    /// (`{keys: [...]}`) written in the YAML…
    pub jwks: Option<serde_json::Value>,
    /// …or fetched from this URL (https, or http on loopback).
    pub jwks_uri: Option<String>,
    /// The one JWS algorithm its client assertions may use (default: any
    /// that fits the method: RS256, PS256, ES256, EdDSA for
    /// `private_key_jwt`; HS256, HS384, HS512 for `client_secret_jwt`).
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Authorization requests must come as a signed request object
    /// (`request`, RFC 9101).
    #[serde(default)]
    pub require_signed_request_object: bool,
    /// The one JWS algorithm its request objects may use (default: any its
    /// keys or clear secret can verify).
    pub request_object_signing_alg: Option<String>,
    /// Its access tokens must be bound to a DPoP key (RFC 9449 §5.2): a
    /// token request without a proof is refused.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// A security profile this client follows (`fapi2`); the tenant's
    /// `profile` applies when absent.
    pub profile: Option<Profile>,
    /// OpenID Connect Back-Channel Logout 1.0: sesame POSTs a logout token
    /// here when a session this client signed in to ends (https, or http
    /// on loopback).
    pub backchannel_logout_uri: Option<String>,
    /// Its logout tokens must carry `sid` (sesame's always do).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// OpenID Connect Front-Channel Logout 1.0: the signed-out page loads
    /// this URL in an iframe (https, or http on loopback).
    pub frontchannel_logout_uri: Option<String>,
    /// The iframe's URL gets `iss` and `sid` query parameters.
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    /// `jwks`, parsed by validation.
    #[serde(skip)]
    pub loaded_jwks: Option<std::sync::Arc<crate::jose::ClientJwks>>,
}

impl TenantConfig {
    /// The profile `client` follows: its own, else the tenant's — except
    /// for a declared resource server's client, which only introspects
    /// (the tenant's profile governs the clients that get tokens).
    pub fn profile_of(&self, client: &ClientConfig) -> Option<Profile> {
        let serves = self.resource_servers.iter().any(|r| r.client == client.id);
        client.profile.or(self.profile.filter(|_| !serves))
    }
}

impl ClientConfig {
    /// A public client has neither `secret` nor `secret_hash`, nor keys
    /// it authenticates with (`private_key_jwt`).
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
            && self.secret_hash.is_none()
            && self.token_endpoint_auth_method != Some(AuthMethod::PrivateKeyJwt)
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
