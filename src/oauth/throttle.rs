//! Brute-force protection: failed sign-ins are counted per (tenant, username)
//! and per client IP, failed client authentications per (tenant, client_id)
//! and per client IP, in the database so every node sees the same counts.
//! A key that reaches its limit within the tenant's `throttle.window` is
//! locked for `throttle.lockout`; while any of a request's keys is locked the
//! request is refused (429) without checking its password or secret.
//!
//! An expensive verification — a password, a hashed client secret not yet
//! in the client's `SecretCache`, and the dummy one every failure pays — is
//! first [`Throttle::reserve`]d: it takes one of the window's places under
//! each key (see `store::throttle`), so no more than the limit are verified
//! per key and window, however many requests arrive at once on however many
//! nodes, and a lockout that lands while one runs wins over its success.
//! What verifies nothing expensive (a cached or a clear client secret) only
//! [`Throttle::check`]s for a lockout, with a read the node trusts for a
//! second: a successful client authentication writes nothing.
//!
//! Keys are SHA-256 hashes of `tenant \0 kind \0 value`: usernames and
//! addresses are never stored in clear, and one tenant's counters never
//! touch another's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use super::{Ctx, OAuthError};
use crate::store::{Lockout, ThrottleAttempt, ThrottleKey, ThrottleWindow, TokenHash};

/// How long this node trusts "not locked" for a key without asking the
/// database again ([`Throttle::check`] only; a reservation always asks). A
/// busy machine client then costs no database read per request; a lockout
/// recorded by another node takes effect here within this time (a failure
/// on this node always goes to the database).
const CLEAR_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Most keys remembered; the map is emptied when full (only costs reads).
const CLEAR_LIMIT: usize = 100_000;

/// Keys this node recently found unlocked. Process-wide (in `Services`): a
/// reload does not forget it.
#[derive(Debug, Default)]
pub struct ClearCache(Mutex<HashMap<TokenHash, Instant>>);

impl ClearCache {
    fn recently_clear(&self, key: TokenHash) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|m| m.get(&key).map(|at| at.elapsed() < CLEAR_TTL))
            .unwrap_or(false)
    }

    fn remember(&self, keys: impl Iterator<Item = TokenHash>) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= CLEAR_LIMIT {
                m.clear();
            }
            let now = Instant::now();
            for k in keys {
                m.insert(k, now);
            }
        }
    }

    fn forget(&self, keys: impl Iterator<Item = TokenHash>) {
        if let Ok(mut m) = self.0.lock() {
            for k in keys {
                m.remove(&k);
            }
        }
    }
}

/// The counters one request is subject to.
pub struct Throttle<'a> {
    ctx: &'a Ctx<'a>,
    keys: Vec<ThrottleKey>,
    /// Cleared after a success (the user's counter; never the IP's).
    principal: Option<TokenHash>,
    /// For the log: "sign-in" or "client authentication".
    what: &'static str,
}

impl<'a> Throttle<'a> {
    /// A password sign-in as `username` (known or not: unknown names are
    /// counted too, so a lockout does not reveal which names exist).
    pub fn login(ctx: &'a Ctx<'a>, username: &str) -> Throttle<'a> {
        let tenant = ctx.tenant;
        let user = key(&tenant.id, "user", username);
        let mut keys = vec![ThrottleKey {
            key: user,
            max_failures: tenant.throttle.max_failures,
        }];
        if let Some(ip) = ctx.request.ip {
            keys.push(ThrottleKey {
                key: key(&tenant.id, "login-ip", &ip_key(ip)),
                max_failures: tenant.throttle.ip_max_failures,
            });
        }
        Throttle {
            ctx,
            keys,
            principal: Some(user),
            what: "sign-in attempts",
        }
    }

    /// A client authentication claiming `client_id` (only registered ids are
    /// counted per client: random ids would only fill the table).
    pub fn client(ctx: &'a Ctx<'a>, client_id: Option<&str>) -> Throttle<'a> {
        let tenant = ctx.tenant;
        let mut keys = Vec::with_capacity(2);
        if let Some(id) = client_id.filter(|id| tenant.client(id).is_some()) {
            keys.push(ThrottleKey {
                key: key(&tenant.id, "client", id),
                max_failures: tenant.throttle.client_max_failures,
            });
        }
        if let Some(ip) = ctx.request.ip {
            keys.push(ThrottleKey {
                key: key(&tenant.id, "client-ip", &ip_key(ip)),
                max_failures: tenant.throttle.ip_max_failures,
            });
        }
        Throttle {
            ctx,
            keys,
            principal: None,
            what: "client authentications",
        }
    }

    /// `Ok(Some(seconds))` while one of the keys is locked. For requests that
    /// verify nothing expensive; the others [`Throttle::reserve`].
    pub async fn check(&self) -> Result<Option<u64>, OAuthError> {
        let cache = &self.ctx.services.throttle;
        if self.keys.iter().all(|k| cache.recently_clear(k.key)) {
            return Ok(None);
        }
        let hashes = self.keys.iter().map(|k| k.key).collect();
        let until = self
            .ctx
            .store
            .find_lockout(&self.ctx.tenant.id, hashes, self.ctx.now)
            .await?;
        if until.is_none() {
            cache.remember(self.keys.iter().map(|k| k.key));
        }
        Ok(until.map(|u| self.retry_after(u)))
    }

    /// Take a place for one verification under every key, before it runs:
    /// refused while a key is locked, or while its window's places are all
    /// taken by failures and by verifications under way.
    pub async fn reserve(&self) -> Result<Attempt<'_>, OAuthError> {
        let ctx = self.ctx;
        let decided = ctx
            .store
            .reserve_attempt(&ctx.tenant.id, self.keys.clone(), self.window(), ctx.now)
            .await?;
        Ok(match decided {
            ThrottleAttempt::Reserved => Attempt::Reserved(Reservation {
                throttle: self,
                settled: false,
            }),
            ThrottleAttempt::Locked(until) => {
                self.forget();
                Attempt::Locked(self.retry_after(until))
            }
        })
    }

    /// The error for a locked request.
    pub fn locked(&self, retry_after: u64) -> OAuthError {
        OAuthError::slow_down(retry_after, self.what)
    }

    fn window(&self) -> ThrottleWindow {
        let throttle = &self.ctx.tenant.throttle;
        ThrottleWindow {
            window: secs(throttle.window),
            lockout: secs(throttle.lockout),
        }
    }

    /// This node's "recently clear" is no longer true for these keys.
    fn forget(&self) {
        self.ctx
            .services
            .throttle
            .forget(self.keys.iter().map(|k| k.key));
    }

    fn retry_after(&self, until: i64) -> u64 {
        u64::try_from(until.saturating_sub(self.ctx.now))
            .unwrap_or(1)
            .max(1)
    }
}

/// What [`Throttle::reserve`] decided.
pub enum Attempt<'t> {
    /// Go on and verify; then settle the reservation.
    Reserved(Reservation<'t>),
    /// Refused without verifying: retry after that many seconds.
    Locked(u64),
}

/// One verification's place under a throttle's keys. Settled by
/// [`Reservation::failed`] or [`Reservation::succeeded`]; one dropped
/// unsettled (the request went away while it was verified, its answer never
/// sent) counts as a failure all the same.
#[must_use = "settle the reservation with `failed` or `succeeded`"]
pub struct Reservation<'t> {
    throttle: &'t Throttle<'t>,
    settled: bool,
}

impl Reservation<'_> {
    /// The verification failed: its place stays taken, as a counted failure.
    /// `Some(seconds)` if a key is locked now (this failure may have locked
    /// it). A store error is logged, not answered: the failure itself is what
    /// the client hears about (the place is then freed when the window ends).
    pub async fn failed(mut self) -> Option<u64> {
        self.settled = true;
        let t = self.throttle;
        let (tenant, now) = (t.ctx.tenant, t.ctx.now);
        t.forget();
        match t
            .ctx
            .store
            .record_failure(&tenant.id, t.keys.clone(), t.window(), now)
            .await
        {
            Ok(Some(Lockout { until, keys })) => {
                // The address's key is always the request's last.
                let by_ip = t.ctx.request.ip.is_some()
                    && t.keys.last().is_some_and(|k| keys.contains(&k.key));
                let by_name = t.keys.len() > usize::from(t.ctx.request.ip.is_some())
                    && t.keys.first().is_some_and(|k| keys.contains(&k.key));
                let named = if t.principal.is_some() {
                    "user"
                } else {
                    "client"
                };
                let what = match (by_name, by_ip) {
                    (true, true) => format!("{named}+address"),
                    (false, true) => "address".to_string(),
                    _ => named.to_string(),
                };
                if by_name || !by_ip {
                    t.ctx.services.metrics.lockout(&tenant.id, named);
                }
                if by_ip {
                    t.ctx.services.metrics.lockout(&tenant.id, "ip");
                }
                tracing::warn!(
                    event = "lockout",
                    tenant = %tenant.id,
                    what = %what,
                    ip = t.ctx.request.ip.map(|ip| ip.to_string()),
                    until,
                    "too many failed {}: locked",
                    t.what
                );
                Some(t.retry_after(until))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e, "could not count a failure");
                None
            }
        }
    }

    /// The verification succeeded: give the place back and forget the
    /// user's failures (never the address's). `Some(seconds)` if a key got
    /// locked meanwhile: then the success must be refused like any request
    /// to a locked key.
    pub async fn succeeded(mut self) -> Result<Option<u64>, OAuthError> {
        self.settled = true;
        let t = self.throttle;
        let (tenant, now) = (t.ctx.tenant, t.ctx.now);
        let hashes = t.keys.iter().map(|k| k.key).collect();
        let locked = t
            .ctx
            .store
            .release_attempt(&tenant.id, hashes, t.principal, t.window(), now)
            .await?;
        Ok(locked.map(|until| {
            t.forget();
            tracing::warn!(tenant = %tenant.id, "{}: locked while verifying, refused", t.what);
            t.retry_after(until)
        }))
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let t = self.throttle;
        let store = t.ctx.store.clone();
        let (tenant, keys, window, now) = (
            t.ctx.tenant.id.clone(),
            t.keys.clone(),
            t.window(),
            t.ctx.now,
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.record_failure(&tenant, keys, window, now).await {
                    tracing::warn!(tenant = %tenant, error = %e, "could not count a failure");
                }
            });
        }
    }
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn key(tenant_id: &str, kind: &str, value: &str) -> TokenHash {
    TokenHash::of(&format!("sesame-throttle\0{tenant_id}\0{kind}\0{value}"))
}

/// The address a counter is kept for: IPv4 as is, IPv6 by /64 (one host
/// usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::2"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(ip_key(mapped), "10.0.0.1");
    }

    #[test]
    fn keys_separate_tenants_kinds_and_values() {
        assert_ne!(key("a", "user", "x"), key("b", "user", "x"));
        assert_ne!(key("a", "user", "x"), key("a", "login-ip", "x"));
    }
}
