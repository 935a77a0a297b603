//! Resolved tenants, clients and users: what a request works with.
//!
//! Built once per config generation from the validated `*Config`s; lookups
//! by client id, username and subject are hash lookups.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::config::{
    AccessTokenFormat, AuthMethod, ClientConfig, GrantType, LifetimesConfig, Profile,
    RotationConfig, TenantConfig, Text, UserConfig, BUILTIN_SCOPES,
};
use crate::jose::{KeyWindow, Keyset, SigningKey};
use crate::plugin::{CtxPart, Script, Scripts, Shortened};

/// Token and session lifetimes, every value present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub authorization_code: Duration,
    pub access_token: Duration,
    pub id_token: Duration,
    pub refresh_token: Duration,
    pub refresh_token_family: Duration,
    pub session: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            authorization_code: Duration::from_secs(60),
            access_token: Duration::from_secs(3600),
            id_token: Duration::from_secs(3600),
            refresh_token: Duration::from_secs(30 * 86400),
            refresh_token_family: Duration::from_secs(90 * 86400),
            session: Duration::from_secs(12 * 3600),
        }
    }
}

impl Lifetimes {
    /// Each lifetime with its YAML name.
    pub fn by_name(&self) -> [(&'static str, Duration); 6] {
        [
            ("authorization_code", self.authorization_code),
            ("access_token", self.access_token),
            ("id_token", self.id_token),
            ("refresh_token", self.refresh_token),
            ("refresh_token_family", self.refresh_token_family),
            ("session", self.session),
        ]
    }

    /// These lifetimes, cut where a scope policy shortened them.
    pub fn shortened(&self, by: &Shortened) -> Lifetimes {
        let cut = |d: Duration, to: Option<Duration>| to.map_or(d, |t| d.min(t));
        Lifetimes {
            access_token: cut(self.access_token, by.access_token),
            id_token: cut(self.id_token, by.id_token),
            refresh_token: cut(self.refresh_token, by.refresh_token),
            ..*self
        }
    }

    /// `overrides` on top of `self`.
    pub fn overlay(&self, overrides: &LifetimesConfig) -> Lifetimes {
        Lifetimes {
            authorization_code: overrides
                .authorization_code
                .unwrap_or(self.authorization_code),
            access_token: overrides.access_token.unwrap_or(self.access_token),
            id_token: overrides.id_token.unwrap_or(self.id_token),
            refresh_token: overrides.refresh_token.unwrap_or(self.refresh_token),
            refresh_token_family: overrides
                .refresh_token_family
                .unwrap_or(self.refresh_token_family),
            session: overrides.session.unwrap_or(self.session),
        }
    }
}

/// A scope a tenant knows, with the user claims it releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The tenant's words for it (empty for a built-in scope it did not
    /// describe: the pages' catalogue has those).
    pub description: Text,
    pub claims: Vec<String>,
}

/// How a client proves itself at the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// Configured in clear (or from `${ENV}`): compared in constant time.
    Plain(String),
    /// An argon2/bcrypt hash: verified once, then remembered (see `oauth::client_auth`).
    Hash(String),
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientSecret::Plain(_) => f.write_str("Plain(<redacted>)"),
            ClientSecret::Hash(_) => f.write_str("Hash(<redacted>)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret: Option<ClientSecret>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: HashSet<GrantType>,
    pub scopes: Vec<String>,
    pub auth_method: AuthMethod,
    pub require_pkce: bool,
    pub skip_consent: bool,
    /// Its own setting or the tenant's: plain `/authorize` requests are refused.
    pub require_pushed_authorization_requests: bool,
    pub lifetimes: Lifetimes,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The algorithm its ID tokens are signed with, when it chose one.
    pub id_token_alg: Option<crate::jose::Alg>,
    /// Shown on the consent page (https URLs).
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    /// Compiled `plugins`, run after the tenant's.
    pub plugins: Vec<Arc<Script>>,
    /// `ctx.client` for scripts, converted once (when the tenant has scripts).
    pub plugin_ctx: CtxPart,
    /// Secrets already verified against the hash (`oauth::client_auth`);
    /// kept across reloads while the client's secret stays the same.
    pub secret_cache: Arc<SecretCache>,
    /// Its public keys, written in the YAML (`jwks`)…
    pub jwks: Option<Arc<crate::jose::ClientJwks>>,
    /// …or published at this URL (`jwks_uri`).
    pub jwks_uri: Option<String>,
    /// The one algorithm its assertions may use, when it named one.
    pub assertion_alg: Option<crate::jose::ClientAlg>,
    /// Authorization requests only as signed request objects.
    pub require_signed_request_object: bool,
    /// The one algorithm its request objects may use, when it named one.
    pub request_object_alg: Option<crate::jose::ClientAlg>,
    /// Its access tokens are always DPoP-bound: a token request must carry a proof.
    pub dpop_bound: bool,
    /// Its own profile or the tenant's (`fapi2`): what it implies is
    /// already applied to the settings above; requests are checked against
    /// the rest (`oauth::authorize`).
    pub profile: Option<Profile>,
    /// Back-channel logout: where its logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// Front-channel logout: the URL the signed-out page loads in an iframe.
    pub frontchannel_logout_uri: Option<String>,
    pub frontchannel_logout_session_required: bool,
}

impl Client {
    /// A client that doesn't authenticate (`none`).
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn allows_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Clone)]
pub struct User {
    pub username: String,
    pub sub: String,
    pub password_hash: String,
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// `ctx.user` for scripts, converted once (when the tenant has scripts).
    pub plugin_ctx: CtxPart,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

/// An API that accepts the tenant's access tokens (see `ResourceServerConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceServer {
    pub identifier: String,
    /// The client it authenticates as.
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Its tokens' format and lifetime, when it has its own.
    pub access_token_format: Option<AccessTokenFormat>,
    pub access_token_lifetime: Option<Duration>,
}

impl ResourceServer {
    /// Whether an access token with `scope` (space-separated) is for this API.
    pub fn accepts(&self, scope: &str) -> bool {
        scope.split(' ').any(|s| self.scopes.iter().any(|a| a == s))
    }
}

/// The longest a FAPI 2.0 client's authorization codes live (FAPI 2.0
/// Security Profile §5.3.2.1: at most 60 seconds).
pub const FAPI2_CODE_LIFETIME: Duration = Duration::from_secs(60);

/// One issuer with everything it serves.
#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    /// As configured, without a trailing slash.
    pub issuer: String,
    /// `host[:port]` of the issuer, lowercase, port as written.
    pub host: String,
    /// The issuer's path without a trailing slash (`""` for the root).
    pub path: String,
    pub secure: bool,
    /// The signing keys, with their windows; replaced in place (no new
    /// generation) when a tenant with `signing.rotation` rotates.
    pub keys: ArcSwap<Keyset>,
    /// `signing.rotation`, if the tenant's generated keys rotate.
    pub rotation: Option<RotationConfig>,
    /// The longest a token this tenant signs lives (access and ID tokens,
    /// of the tenant and of every client), in seconds: how long a key stays
    /// published after it stops signing.
    pub max_token_lifetime: i64,
    pub lifetimes: Lifetimes,
    pub access_token_format: AccessTokenFormat,
    pub scopes: BTreeMap<String, Scope>,
    pub clients: HashMap<String, Arc<Client>>,
    pub resource_servers: Vec<ResourceServer>,
    users: HashMap<String, Arc<User>>,
    users_by_sub: HashMap<String, Arc<User>>,
    /// By lowercased `email` claim, when `login_by_email` is on.
    users_by_email: HashMap<String, Arc<User>>,
    pub login_by_email: bool,
    /// The tenant's pages: templates, brand, CSP, served files.
    pub ui: crate::ui::Ui,
    /// The discovery document, serialized once per generation (the core's,
    /// set by `Runtime::build`). The JWKS is the keyset's at each moment.
    pub discovery: Bytes,
    /// Compiled `plugins`, in order; every client's run after these.
    pub plugins: Vec<Arc<Script>>,
    /// `ctx.tenant` for scripts, converted once.
    pub plugin_ctx: CtxPart,
    /// Brute-force protection limits.
    pub throttle: crate::config::ThrottleConfig,
    /// How back-channel logout tokens are delivered.
    pub logout: crate::config::LogoutConfig,
    /// How long a pushed authorization request waits for its `/authorize`.
    pub pushed_request_lifetime: Duration,
    /// Every client must push its authorization requests (discovery says so).
    pub require_pushed_authorization_requests: bool,
    /// How DPoP proofs are judged.
    pub dpop: crate::config::DpopConfig,
    /// The configuration generation this tenant belongs to (set by
    /// `Runtime::build`; stored on every grant it issues).
    pub generation: String,
}

/// The longest access or ID token `cfg` lets anything issue, in seconds
/// (scope policies only shorten lifetimes).
pub fn max_token_lifetime(cfg: &TenantConfig) -> i64 {
    let tenant = Lifetimes::default().overlay(&cfg.lifetimes);
    std::iter::once(tenant)
        .chain(cfg.clients.iter().map(|c| tenant.overlay(&c.lifetimes)))
        .map(|l| l.access_token.max(l.id_token).as_secs())
        .max()
        .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX))
}

/// The tenant's configured keys (parsed by validation) with their windows:
/// each signs within `not_before`..`not_after` and is published until
/// `not_after` plus [`max_token_lifetime`].
pub fn configured_keys(cfg: &TenantConfig) -> Vec<(SigningKey, KeyWindow)> {
    let max_lifetime = max_token_lifetime(cfg);
    cfg.signing
        .loaded_keys
        .iter()
        .zip(&cfg.signing.keys)
        .map(|(key, file)| {
            let window = KeyWindow {
                signs_from: file.not_before,
                signs_until: file.not_after,
                published_until: file.not_after.map(|u| u.saturating_add(max_lifetime)),
            };
            (key.clone(), window)
        })
        .collect()
}

impl Tenant {
    /// Resolve a validated tenant config with its loaded keys and the
    /// generation's compiled scripts. `previous` is this tenant in the
    /// generation being replaced: its clients' secret caches are kept where
    /// the secret did not change.
    pub fn new(
        cfg: &TenantConfig,
        keys: Keyset,
        scripts: &Scripts,
        previous: Option<&Tenant>,
    ) -> Tenant {
        let issuer = cfg.issuer.trim_end_matches('/').to_string();
        let (host, path, secure) = split_issuer(&issuer);
        let lifetimes = Lifetimes::default().overlay(&cfg.lifetimes);

        let mut scopes: BTreeMap<String, Scope> = BUILTIN_SCOPES
            .iter()
            .map(|(name, _)| {
                let scope = Scope {
                    description: Text::default(),
                    claims: standard_claims(name)
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                };
                (name.to_string(), scope)
            })
            .collect();
        for (name, s) in &cfg.scopes {
            let scope = Scope {
                description: s.description.clone(),
                claims: s.claims.clone(),
            };
            scopes.insert(name.clone(), scope);
        }

        // Scripts see tenant, client and user as prepared maps: made once here.
        let has_scripts =
            !cfg.plugins.is_empty() || cfg.clients.iter().any(|c| !c.plugins.is_empty());
        let clients = cfg
            .clients
            .iter()
            .map(|c| {
                let mut client = resolve_client(c, cfg.profile_of(c), &lifetimes);
                client.require_pushed_authorization_requests |=
                    cfg.require_pushed_authorization_requests;
                client.plugins = scripts.resolve(&c.plugins);
                if let Some(old) = previous.and_then(|p| p.client(&c.id)) {
                    if old.secret == client.secret {
                        client.secret_cache = old.secret_cache.clone();
                    }
                }
                if has_scripts {
                    client.plugin_ctx = CtxPart::client(&client.id, &client.name, &client.metadata);
                }
                (c.id.clone(), Arc::new(client))
            })
            .collect();

        let mut users = HashMap::new();
        let mut users_by_sub = HashMap::new();
        let mut users_by_email = HashMap::new();
        for u in &cfg.users {
            let mut user = resolve_user(&cfg.id, u);
            if has_scripts {
                user.plugin_ctx = CtxPart::user(&user.sub, &user.username, &user.claims);
            }
            let user = Arc::new(user);
            users_by_sub.insert(user.sub.clone(), user.clone());
            if cfg.login_by_email {
                if let Some(email) = user.claims.get("email").and_then(|e| e.as_str()) {
                    users_by_email.insert(email.to_lowercase(), user.clone());
                }
            }
            users.insert(user.username.clone(), user);
        }

        let ui = crate::ui::Ui::new(&ui_settings(cfg, &path));
        Tenant {
            id: cfg.id.clone(),
            issuer,
            host,
            path,
            secure,
            keys: ArcSwap::from_pointee(keys),
            rotation: cfg.signing.rotation,
            max_token_lifetime: max_token_lifetime(cfg),
            lifetimes,
            access_token_format: cfg.access_token_format,
            scopes,
            clients,
            resource_servers: cfg
                .resource_servers
                .iter()
                .map(|r| ResourceServer {
                    identifier: r.identifier.clone(),
                    client_id: r.client.clone(),
                    scopes: r.scopes.clone(),
                    access_token_format: r.access_token.format,
                    access_token_lifetime: r.access_token.lifetime,
                })
                .collect(),
            users,
            users_by_sub,
            users_by_email,
            login_by_email: cfg.login_by_email,
            ui,
            discovery: Bytes::new(),
            plugins: scripts.resolve(&cfg.plugins),
            plugin_ctx: CtxPart::tenant(&cfg.id, cfg.issuer.trim_end_matches('/')),
            throttle: cfg.throttle,
            logout: cfg.logout,
            pushed_request_lifetime: cfg.pushed_authorization_requests.lifetime,
            require_pushed_authorization_requests: cfg.require_pushed_authorization_requests,
            dpop: cfg.dpop,
            generation: String::new(),
        }
    }

    pub fn client(&self, id: &str) -> Option<&Arc<Client>> {
        self.clients.get(id)
    }

    /// The clients with a `backchannel_logout_uri`, by id (sorted): those
    /// told when a session they signed in to ends.
    pub fn backchannel_clients(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .clients
            .values()
            .filter(|c| c.backchannel_logout_uri.is_some())
            .map(|c| c.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The resource server that authenticates as `client_id`, if any.
    pub fn resource_server(&self, client_id: &str) -> Option<&ResourceServer> {
        self.resource_servers
            .iter()
            .find(|r| r.client_id == client_id)
    }

    pub fn user(&self, username: &str) -> Option<&Arc<User>> {
        self.users.get(username)
    }

    pub fn user_by_sub(&self, sub: &str) -> Option<&Arc<User>> {
        self.users_by_sub.get(sub)
    }

    /// The user a sign-in form names: by username, or by email address
    /// when the tenant allows it.
    pub fn user_for_login(&self, name: &str) -> Option<&Arc<User>> {
        self.users.get(name).or_else(|| {
            if self.login_by_email && name.contains('@') {
                self.users_by_email.get(&name.to_lowercase())
            } else {
                None
            }
        })
    }

    /// An absolute URL of one of this tenant's endpoints (`"/token"`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// `(host[:port], path, https)` of an issuer URL.
pub fn split_issuer(issuer: &str) -> (String, String, bool) {
    match url::Url::parse(issuer) {
        Ok(u) => {
            let host = match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => String::new(),
            };
            let path = u.path().trim_end_matches('/').to_string();
            (host.to_ascii_lowercase(), path, u.scheme() == "https")
        }
        Err(_) => (String::new(), String::new(), false),
    }
}

/// The standard claims OIDC Core §5.4 releases with each built-in scope.
pub fn standard_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

/// The tenant's pages as configured (files already read by validation).
fn ui_settings(cfg: &TenantConfig, base_path: &str) -> crate::ui::Settings {
    let b = &cfg.branding;
    crate::ui::Settings {
        base_path: base_path.to_string(),
        name: b.name.clone(),
        logo: cfg.loaded_ui.logo.clone(),
        favicon: cfg.loaded_ui.favicon.clone(),
        primary_color: b.primary_color.clone(),
        background_color: b.background_color.clone(),
        css: cfg.loaded_ui.css.clone(),
        privacy_url: b.links.privacy.clone(),
        terms_url: b.links.terms.clone(),
        support_url: b.links.support.clone(),
        help_url: b.links.help.clone(),
        templates: cfg.loaded_ui.templates.clone(),
        default_locale: cfg.default_locale.clone(),
        image_urls: cfg
            .clients
            .iter()
            .filter_map(|c| c.logo_uri.clone())
            .collect(),
    }
}

fn resolve_client(
    c: &ClientConfig,
    profile: Option<Profile>,
    tenant_lifetimes: &Lifetimes,
) -> Client {
    let secret = match (&c.secret, &c.secret_hash) {
        (Some(s), _) => Some(ClientSecret::Plain(s.clone())),
        (None, Some(h)) => Some(ClientSecret::Hash(h.clone())),
        (None, None) => None,
    };
    let auth_method = c.token_endpoint_auth_method.unwrap_or(if secret.is_some() {
        AuthMethod::ClientSecretBasic
    } else {
        AuthMethod::None
    });
    let mut client = Client {
        id: c.id.clone(),
        name: c.name.clone().unwrap_or_else(|| c.id.clone()),
        require_pkce: c.require_pkce || auth_method == AuthMethod::None,
        secret,
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        grant_types: c.grant_types.iter().copied().collect(),
        scopes: c.scopes.clone(),
        auth_method,
        skip_consent: c.skip_consent,
        require_pushed_authorization_requests: c.require_pushed_authorization_requests,
        lifetimes: tenant_lifetimes.overlay(&c.lifetimes),
        metadata: c.metadata.clone(),
        logo_uri: c.logo_uri.clone(),
        id_token_alg: c.id_token_signed_response_alg,
        client_uri: c.client_uri.clone(),
        policy_uri: c.policy_uri.clone(),
        tos_uri: c.tos_uri.clone(),
        plugins: Vec::new(),
        plugin_ctx: CtxPart::default(),
        secret_cache: Arc::default(),
        jwks: c.loaded_jwks.clone(),
        jwks_uri: c.jwks_uri.clone(),
        assertion_alg: c
            .token_endpoint_auth_signing_alg
            .as_deref()
            .and_then(crate::jose::ClientAlg::parse),
        require_signed_request_object: c.require_signed_request_object,
        request_object_alg: c
            .request_object_signing_alg
            .as_deref()
            .and_then(crate::jose::ClientAlg::parse),
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: c.backchannel_logout_session_required,
        frontchannel_logout_uri: c.frontchannel_logout_uri.clone(),
        frontchannel_logout_session_required: c.frontchannel_logout_session_required,
        dpop_bound: c.dpop_bound_access_tokens,
        profile: None,
    };
    if let Some(profile) = profile {
        apply_profile(&mut client, profile);
    }
    client
}

/// What a profile implies for a client's settings. (Validation has already
/// refused a configuration that contradicts it: see `config::validate`.)
fn apply_profile(client: &mut Client, profile: Profile) {
    match profile {
        Profile::Fapi2 => {
            client.require_pushed_authorization_requests = true;
            client.require_pkce = true;
            client.dpop_bound = true;
            client.lifetimes.authorization_code =
                client.lifetimes.authorization_code.min(FAPI2_CODE_LIFETIME);
        }
    }
    client.profile = Some(profile);
}

fn resolve_user(tenant_id: &str, u: &UserConfig) -> User {
    User {
        username: u.username.clone(),
        sub: u
            .sub
            .clone()
            .unwrap_or_else(|| derived_sub(tenant_id, &u.username)),
        password_hash: u.password_hash.clone(),
        claims: u.claims.clone(),
        plugin_ctx: CtxPart::default(),
    }
}

/// Most remembered (client, secret) pairs per client; the set is cleared
/// when full, which only costs a re-verification.
pub const SECRET_CACHE_LIMIT: usize = 10_000;

/// Digests of (client, secret, hash) triples that verified. The hash is part
/// of the key, so an entry can never vouch for a secret under another hash.
#[derive(Debug, Default)]
pub struct SecretCache(Mutex<HashSet<[u8; 32]>>);

impl SecretCache {
    pub fn key(client_id: &str, secret: &str, phc: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [client_id, secret, phc] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.0.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    pub fn insert(&self, key: [u8; 32]) {
        if let Ok(mut s) = self.0.lock() {
            if s.len() >= SECRET_CACHE_LIMIT {
                s.clear();
            }
            s.insert(key);
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A stable subject for a user without an explicit `sub`: the same tenant and
/// username always give the same value, and it reveals neither.
pub fn derived_sub(tenant_id: &str, username: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"sesame-sub\0");
    h.update(tenant_id.as_bytes());
    h.update([0]);
    h.update(username.as_bytes());
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_splits_into_host_and_path() {
        assert_eq!(
            split_issuer("http://127.0.0.1:8080/demo"),
            ("127.0.0.1:8080".into(), "/demo".into(), false)
        );
        assert_eq!(
            split_issuer("https://Login.Acme.com"),
            ("login.acme.com".into(), "".into(), true)
        );
    }

    #[test]
    fn secret_cache_key_separates_fields() {
        assert_ne!(
            SecretCache::key("ab", "c", "h"),
            SecretCache::key("a", "bc", "h")
        );
    }

    #[test]
    fn secret_cache_remembers_until_full_then_starts_over() {
        let c = SecretCache::default();
        let k = |i: usize| SecretCache::key("client", &format!("secret-{i}"), "$argon2id$x");
        for i in 0..SECRET_CACHE_LIMIT {
            c.insert(k(i));
        }
        assert_eq!(c.len(), SECRET_CACHE_LIMIT);
        assert!(c.contains(&k(0)) && c.contains(&k(SECRET_CACHE_LIMIT - 1)));
        // One more: the full set is dropped, and only the newcomer is remembered.
        c.insert(k(SECRET_CACHE_LIMIT));
        assert_eq!(c.len(), 1);
        assert!(!c.contains(&k(0)));
        assert!(c.contains(&k(SECRET_CACHE_LIMIT)));
    }

    #[test]
    fn derived_sub_is_stable_and_tenant_specific() {
        assert_eq!(derived_sub("demo", "alice"), derived_sub("demo", "alice"));
        assert_ne!(derived_sub("demo", "alice"), derived_sub("other", "alice"));
        assert_eq!(derived_sub("demo", "alice").len(), 32);
    }

    #[test]
    fn client_lifetimes_overlay_tenant_ones() {
        let tenant = Lifetimes::default();
        let overrides = LifetimesConfig {
            access_token: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let client = tenant.overlay(&overrides);
        assert_eq!(client.access_token, Duration::from_secs(60));
        assert_eq!(client.id_token, tenant.id_token);
    }
}
