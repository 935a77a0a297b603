//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5):
//! the task every serving node runs over the store's durable outbox
//! (`store/logout.rs`).
//!
//! Each round claims the messages that are due — a lease per row, taken by
//! a conditional update, so two nodes never send one message at the same
//! time — signs a fresh logout token for each (the message's `jti`, a short
//! `exp`), POSTs it as `logout_token=` to the client's
//! `backchannel_logout_uri` (no redirects, the tenant's timeout, well
//! inside the lease) and records the outcome under that lease: delivered
//! (a 2xx answer), tried again later with exponential back-off, or
//! abandoned after `max_attempts` (logged). A node that dies mid-attempt
//! leaves its lease to run out; another node (or it, restarted) takes the
//! row again. So delivery is at least once: receivers dedupe by `jti`.
//!
//! A round runs every [`POLL`], and at once when this node queued messages
//! (`Services::logout_outbox`).

use std::sync::Arc;
use std::time::Duration;

use crate::config::BackchannelConfig;
use crate::http::App;
use crate::oauth::{issue, Ctx, RequestFacts};
use crate::runtime::Runtime;
use crate::store::{Attempt, LogoutMessage};

/// How often the outbox is looked at when nothing wakes the task.
pub const POLL: Duration = Duration::from_secs(1);

/// Messages claimed per round (sent concurrently).
const BATCH: i64 = 32;

/// Beyond the longest timeout, how long a lease lasts: room for signing,
/// the store's answer, and clocks of nodes a little apart.
const LEASE_MARGIN: i64 = 10;

/// The loop (spawned by `serve` on every node).
pub async fn deliver_logouts(app: Arc<App>) {
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sesame/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout disabled: no HTTP client");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = app.services.logout_outbox.notified() => {}
        }
        // A full batch: there may be more due at once.
        while round(&app, &http).await >= BATCH as usize {}
    }
}

/// One round: claim what is due, attempt each, record the outcomes. The
/// number of messages claimed.
async fn round(app: &Arc<App>, http: &reqwest::Client) -> usize {
    let runtime = app.runtime.load_full();
    let now = crate::now();
    let longest = runtime
        .tenants
        .iter()
        .map(|t| t.logout.backchannel.timeout)
        .max()
        .unwrap_or_default();
    let leased_until = now + longest.as_secs() as i64 + LEASE_MARGIN;
    let claimed = match app.store.claim_logouts(now, leased_until, BATCH).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout: the outbox could not be read");
            return 0;
        }
    };
    let n = claimed.len();
    let mut attempts = tokio::task::JoinSet::new();
    for message in claimed {
        attempts.spawn(attempt(app.clone(), runtime.clone(), http.clone(), message));
    }
    while attempts.join_next().await.is_some() {}
    n
}

/// One attempt at one message, its outcome recorded under its lease.
async fn attempt(app: Arc<App>, runtime: Arc<Runtime>, http: reqwest::Client, m: LogoutMessage) {
    // Configured no more (a reload removed it): nobody to tell.
    let found = runtime.tenant(&m.tenant_id).and_then(|t| {
        let client = t.client(&m.client_id)?;
        Some((t, client, client.backchannel_logout_uri.as_deref()?))
    });
    let Some((tenant, client, uri)) = found else {
        let error = "the client (or its backchannel_logout_uri) is no longer configured";
        return finish(
            &app,
            &m,
            Attempt::Abandon {
                error: error.into(),
            },
        )
        .await;
    };
    let cfg = tenant.logout.backchannel;
    let now = crate::now();
    let ctx = Ctx {
        tenant,
        store: &app.store,
        services: &app.services,
        now,
        request: RequestFacts::default(),
    };
    // The answer must come well inside the lease.
    let left = m.leased_until - now - LEASE_MARGIN / 2;
    let timeout = cfg.timeout.min(Duration::from_secs(left.max(0) as u64));
    let sent = match issue::logout_token(&ctx, client, &m.jti, &m.sid, &m.user_sub).await {
        Err(_) => Err("the logout token could not be signed".to_string()),
        Ok(_) if timeout.is_zero() => Err("the lease ran out before sending".to_string()),
        Ok(token) => post(&http, uri, &token, timeout).await,
    };
    let outcome = match sent {
        Ok(()) => Attempt::Delivered,
        Err(error) if m.attempts >= i64::from(cfg.max_attempts) => Attempt::Abandon { error },
        Err(error) => Attempt::Retry {
            retry_at: crate::now() + backoff(&cfg, m.attempts).as_secs() as i64,
            error,
        },
    };
    finish(&app, &m, outcome).await
}

/// POST `logout_token=…` to `uri`: Ok on a 2xx answer within `timeout`.
/// The error says what happened, never the token.
async fn post(
    http: &reqwest::Client,
    uri: &str,
    token: &str,
    timeout: Duration,
) -> Result<(), String> {
    let sent = http
        .post(uri)
        .timeout(timeout)
        .header("cache-control", "no-store")
        .form(&[("logout_token", token)])
        .send();
    match tokio::time::timeout(timeout, sent).await {
        Err(_) => Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) if e.is_timeout() => Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) if e.is_connect() => Err("could not connect".to_string()),
        Ok(Err(_)) => Err("the request failed".to_string()),
        Ok(Ok(r)) if r.status().is_success() => Ok(()),
        Ok(Ok(r)) => Err(format!("answered {}", r.status().as_u16())),
    }
}

/// The wait after the `attempts`-th failed attempt: `backoff`, doubling
/// each time, at most `max_backoff`.
pub fn backoff(cfg: &BackchannelConfig, attempts: i64) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    cfg.backoff
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(cfg.max_backoff)
}

/// Record the outcome, log it and count it.
async fn finish(app: &App, m: &LogoutMessage, outcome: Attempt) {
    let label = match &outcome {
        Attempt::Delivered => "delivered",
        Attempt::Retry { .. } => "failed",
        Attempt::Abandon { .. } => "abandoned",
    };
    match &outcome {
        Attempt::Delivered => tracing::info!(
            event = "backchannel_logout.delivered",
            tenant = %m.tenant_id, client_id = %m.client_id, sid = %m.sid, jti = %m.jti,
            attempts = m.attempts, "back-channel logout delivered"
        ),
        Attempt::Retry { retry_at, error } => tracing::warn!(
            event = "backchannel_logout.failed",
            tenant = %m.tenant_id, client_id = %m.client_id, sid = %m.sid, jti = %m.jti,
            attempts = m.attempts, retry_in = retry_at - crate::now(), error = %error,
            "back-channel logout failed; it will be tried again"
        ),
        Attempt::Abandon { error } => tracing::error!(
            event = "backchannel_logout.abandoned",
            tenant = %m.tenant_id, client_id = %m.client_id, sid = %m.sid, jti = %m.jti,
            attempts = m.attempts, error = %error,
            "back-channel logout abandoned"
        ),
    }
    app.services.metrics.backchannel_logout(&m.tenant_id, label);
    match app.store.finish_logout(m, crate::now(), outcome).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            tenant = %m.tenant_id, client_id = %m.client_id, jti = %m.jti,
            "back-channel logout: the lease ran out before the outcome was recorded"
        ),
        Err(e) => tracing::warn!(
            tenant = %m.tenant_id, client_id = %m.client_id, jti = %m.jti, error = %e,
            "back-channel logout: the outcome could not be recorded; it will be tried again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let cfg = BackchannelConfig {
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            ..BackchannelConfig::default()
        };
        let waits: Vec<u64> = (1..=7).map(|n| backoff(&cfg, n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(&cfg, 1000).as_secs(), 60);
    }
}
