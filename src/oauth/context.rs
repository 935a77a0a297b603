//! The contract between the edge and the core, on the way in: what a request
//! brings ([`Ctx`], [`RequestFacts`], [`Credentials`]) and the process-wide
//! services the core works with ([`Services`]). The edge builds these from
//! HTTP; the core never sees a header, a status or a cookie name.

use std::net::IpAddr;

use super::cpu::Pool;
use super::scope::Scopes;
use super::throttle::ClearCache;
use super::{OAuthError, Params};
use crate::config::GrantType;
use crate::metrics::{Metrics, Sampled};
use crate::plugin::HookContext;
use crate::store::Store;
use crate::tenant::{Client, Tenant, User};

/// Everything the protocol core needs of the world for one request.
pub struct Ctx<'a> {
    pub tenant: &'a Tenant,
    pub store: &'a Store,
    pub services: &'a Services,
    /// Unix seconds, read once per request.
    pub now: i64,
    pub request: RequestFacts<'a>,
}

/// What the edge could tell about a request (plugin scripts see `ip` and
/// `user_agent` as `ctx.request`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The absolute URL of the endpoint called (issuer + path, no query).
    pub url: &'a str,
    /// The client's address (after `trusted_proxies`).
    pub ip: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    /// The `DPoP` header as sent, unverified (RFC 9449, see `oauth::dpop`).
    pub dpop: super::dpop::Header<'a>,
}

impl Ctx<'_> {
    /// The one way a hook's `ctx` is made: this request, this client and
    /// user, the scopes asked for and granted so far, the grant served
    /// (absent at userinfo and introspection).
    pub fn hooks<'h>(
        &'h self,
        client: &'h Client,
        user: Option<&'h User>,
        requested: &'h Scopes,
        granted: &'h Scopes,
        grant: Option<GrantType>,
    ) -> HookContext<'h> {
        HookContext {
            tenant: self.tenant,
            client,
            user,
            requested: requested.as_vec(),
            granted: granted.as_vec(),
            grant_type: grant.map(GrantType::as_str),
            ip: self.request.ip,
            user_agent: self.request.user_agent,
            now: self.now,
        }
    }
}

/// The credentials a client presented, before we know whose they are
/// (RFC 6749 §2.3, RFC 7521 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Basic` (client_secret_basic).
    Basic { id: String, secret: String },
    /// `client_id` and `client_secret` in the body (client_secret_post).
    Post { id: String, secret: String },
    /// `client_assertion` (RFC 7523): `private_key_jwt`, `client_secret_jwt`.
    Assertion {
        id: Option<String>,
        assertion_type: String,
        assertion: String,
    },
    /// Only `client_id` (a public client, `none`).
    None { id: String },
    /// Nothing at all.
    Absent,
}

impl Credentials {
    /// What a request presented: the Basic header's pair (already decoded
    /// by the edge) and the body's parameters. Contradictions (two methods,
    /// two different ids) are `invalid_request`.
    pub fn presented(
        basic: Option<(String, String)>,
        params: &Params,
    ) -> Result<Credentials, OAuthError> {
        let body_id = params.get("client_id").map(str::to_string);
        let body_secret = params.get("client_secret").map(str::to_string);
        let assertion = params.get("client_assertion").map(str::to_string);
        if basic.is_some() && body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        if let Some((id, secret)) = basic {
            if body_id.as_deref().is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the authenticated client",
                ));
            }
            return Ok(Credentials::Basic { id, secret });
        }
        if let Some(assertion) = assertion {
            return Ok(Credentials::Assertion {
                id: body_id,
                assertion_type: params
                    .get("client_assertion_type")
                    .unwrap_or_default()
                    .to_string(),
                assertion,
            });
        }
        Ok(match (body_id, body_secret) {
            (Some(id), Some(secret)) => Credentials::Post { id, secret },
            (Some(id), None) => Credentials::None { id },
            (None, _) => Credentials::Absent,
        })
    }

    /// The client id these credentials claim, if any.
    pub fn claimed_id(&self) -> Option<&str> {
        match self {
            Credentials::Basic { id, .. }
            | Credentials::Post { id, .. }
            | Credentials::None { id } => Some(id),
            Credentials::Assertion { id, .. } => id.as_deref(),
            Credentials::Absent => None,
        }
    }
}

/// What lives as long as the process, whatever the configuration: the
/// thread pools for CPU-heavy work and the throttle's cache. Owned by the
/// application value; a reload keeps them (no thread churn, no reset).
pub struct Services {
    /// RSA signatures (≈ 0.25 ms each), off the async workers.
    pub signer: Pool,
    /// Password and secret hashing (argon2id: tens of ms and ~19 MiB each).
    pub kdf: Pool,
    /// Plugin hooks: a slow script never holds an async worker.
    pub hooks: Pool,
    /// Throttle keys recently seen unlocked (see `throttle`).
    pub throttle: ClearCache,
    /// Each tenant's revocations of unrecorded tokens, as last read.
    pub markers: super::markers::MarkerCache,
    /// Clients' keys fetched from their `jwks_uri`.
    pub client_keys: super::client_keys::JwksCache,
    /// Every series served at `/metrics`.
    pub metrics: Metrics,
    /// Keys the forms' CSRF tokens: the same on every node of a deployment
    /// (generated once and kept in the database, see `cli`).
    pub csrf_key: CsrfKey,
    /// Wakes this node's back-channel logout delivery (`crate::backchannel`)
    /// when a request queued messages, instead of at its next poll.
    pub logout_outbox: tokio::sync::Notify,
}

/// The key of the forms' CSRF tokens (HMAC-SHA256).
pub struct CsrfKey(ring::hmac::Key);

impl CsrfKey {
    pub fn new(secret: &[u8; 32]) -> CsrfKey {
        CsrfKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// The token for `parts` (each length-prefixed, so no two lists collide).
    pub fn token(&self, parts: &[&str]) -> String {
        use base64::Engine;
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }

    /// Whether `given` is the token for `parts` (constant time).
    pub fn verify(&self, parts: &[&str], given: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.token(parts);
        bool::from(expected.as_bytes().ct_eq(given.unwrap_or("").as_bytes()))
    }
}

impl Services {
    /// The services with a fresh random CSRF key (one node, or tests); their
    /// threads start on first use.
    pub fn new() -> Services {
        Services::with(&rand::random(), Metrics::default())
    }

    /// The services, keying CSRF tokens with the deployment's `secret`.
    pub fn with(secret: &[u8; 32], metrics: Metrics) -> Services {
        Services {
            metrics,
            csrf_key: CsrfKey::new(secret),
            signer: Pool::new("sesame-sign", || {}),
            kdf: Pool::new("sesame-kdf", super::password::release_blocks),
            hooks: Pool::with_stack("sesame-hook", crate::plugin::engine::STACK_SIZE),
            throttle: ClearCache::default(),
            markers: Default::default(),
            client_keys: Default::default(),
            logout_outbox: tokio::sync::Notify::new(),
        }
    }
}

impl Services {
    /// The pools' queue depths and `store`'s connections, for `/metrics`.
    pub fn sample(&self, store: &Store) -> Sampled {
        let (db_connections, db_idle) = store.pool_state();
        Sampled {
            db_connections,
            db_idle,
            queue_sign: self.signer.depth(),
            queue_kdf: self.kdf.depth(),
            queue_hook: self.hooks.depth(),
        }
    }
}

impl Default for Services {
    fn default() -> Self {
        Services::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        Params::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn credentials_say_which_method_was_used() {
        let basic = Some(("a".to_string(), "s".to_string()));
        assert_eq!(
            Credentials::presented(basic.clone(), &params("client_id=a")).unwrap(),
            Credentials::Basic {
                id: "a".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            Credentials::presented(None, &params("client_id=a&client_secret=s")).unwrap(),
            Credentials::Post {
                id: "a".into(),
                secret: "s".into()
            }
        );
        assert_eq!(
            Credentials::presented(None, &params("client_id=a")).unwrap(),
            Credentials::None { id: "a".into() }
        );
        assert_eq!(
            Credentials::presented(None, &params("")).unwrap(),
            Credentials::Absent
        );
        assert!(Credentials::presented(basic.clone(), &params("client_secret=s")).is_err());
        assert!(Credentials::presented(basic, &params("client_id=b")).is_err());
    }
}
