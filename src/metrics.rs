//! The metrics sesame serves at `/metrics` (Prometheus / OpenMetrics text,
//! with `prometheus-client`). Process-wide: owned by the application value,
//! so a reload never resets a counter. Both the edge (requests, latency) and
//! the core (tokens, sign-ins, lockouts, plugin calls) record here, through
//! typed methods: no caller names a label it could get wrong.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    tenant: String,
    endpoint: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    tenant: String,
    grant: String,
    format: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    tenant: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    tenant: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    script: String,
    hook: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenerationLabel {
    generation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabel {
    outcome: String,
}

fn latency_histogram() -> Histogram {
    // 250 µs to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    Success,
    UnknownUser,
    BadPassword,
    Locked,
}

impl SignIn {
    pub fn as_str(self) -> &'static str {
        match self {
            SignIn::Success => "success",
            SignIn::UnknownUser => "unknown_user",
            SignIn::BadPassword => "bad_password",
            SignIn::Locked => "locked",
        }
    }
}

/// The values sampled when `/metrics` is read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sampled {
    pub db_connections: u32,
    pub db_idle: u32,
    pub queue_sign: usize,
    pub queue_kdf: usize,
    pub queue_hook: usize,
}

/// The plugin series, handed to every hook call (cheap to clone: the
/// families are shared).
#[derive(Clone)]
pub struct PluginMetrics {
    calls: Family<PluginLabels, Counter>,
    errors: Family<PluginLabels, Counter>,
    duration: Family<PluginLabels, Histogram>,
}

impl crate::plugin::Observer for PluginMetrics {
    fn called(&self, script: &str, hook: crate::plugin::Hook, took: Duration, failed: bool) {
        let labels = PluginLabels {
            script: script.to_string(),
            hook: hook.name().to_string(),
        };
        self.calls.get_or_create(&labels).inc();
        if failed {
            self.errors.get_or_create(&labels).inc();
        }
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

/// Every series sesame exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    responses: Family<ClassLabel, Counter>,
    latency: Family<EndpointLabel, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    signins: Family<OutcomeLabels, Counter>,
    pushed_requests: Family<OutcomeLabels, Counter>,
    backchannel: Family<OutcomeLabels, Counter>,
    lockouts: Family<KindLabels, Counter>,
    plugins: PluginMetrics,
    db_pool: Family<StateLabel, Gauge>,
    db_wait: Histogram,
    queue: Family<PoolLabel, Gauge>,
    generation: Family<GenerationLabel, Gauge>,
    reloads: Family<ReloadLabel, Counter>,
    /// The generation label currently set to 1.
    current_generation: Mutex<String>,
    /// Tokens issued in all, for the log summary.
    issued: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(
            Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            Histogram::new(exponential_buckets(1.0, 2.0, 7)),
        )
    }
}

impl Metrics {
    /// The metrics; `db_wait` is the store's connection-wait histogram,
    /// `db_write_batch` its writes per SQLite transaction.
    pub fn new(db_wait: Histogram, db_write_batch: Histogram) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "sesame_http_requests",
            "HTTP requests by tenant, endpoint and status class",
            requests.clone(),
        );
        let responses = Family::<ClassLabel, Counter>::default();
        // Every class is there from the start, at 0 (an alert on 5xx needs the series).
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            let _ = responses.get_or_create(&ClassLabel {
                class: class.to_string(),
            });
        }
        registry.register(
            "sesame_http_responses",
            "HTTP responses by status class",
            responses.clone(),
        );
        let latency = Family::<EndpointLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "sesame_http_request_duration_seconds",
            "Time to answer a request, by endpoint",
            latency.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "sesame_tokens_issued",
            "Access tokens issued, by tenant, grant and format",
            tokens.clone(),
        );
        let signins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sesame_signins",
            "Password sign-ins by outcome",
            signins.clone(),
        );
        let pushed_requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sesame_pushed_authorization_requests",
            "Pushed authorization requests (RFC 9126) by outcome (pushed, used)",
            pushed_requests.clone(),
        );
        let backchannel = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sesame_backchannel_logouts",
            "Back-channel logout messages by outcome (queued, delivered, failed: to be \
             retried, abandoned: after the last attempt)",
            backchannel.clone(),
        );
        let lockouts = Family::<KindLabels, Counter>::default();
        registry.register(
            "sesame_lockouts",
            "Lockouts by what was locked (user, client, ip)",
            lockouts.clone(),
        );
        let plugin_calls = Family::<PluginLabels, Counter>::default();
        registry.register(
            "sesame_plugin_calls",
            "Plugin hook calls by script and hook",
            plugin_calls.clone(),
        );
        let plugin_errors = Family::<PluginLabels, Counter>::default();
        registry.register(
            "sesame_plugin_errors",
            "Plugin hook calls that failed, by script and hook",
            plugin_errors.clone(),
        );
        let plugin_duration = Family::<PluginLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "sesame_plugin_call_duration_seconds",
            "Time of one plugin hook call, by script and hook",
            plugin_duration.clone(),
        );
        let db_pool = Family::<StateLabel, Gauge>::default();
        registry.register(
            "sesame_db_pool_connections",
            "Database connections of this node, idle or in use",
            db_pool.clone(),
        );
        registry.register(
            "sesame_db_pool_wait_seconds",
            "Time a unit of work waited for a database connection (SQLite writes: for the writer)",
            db_wait.clone(),
        );
        registry.register(
            "sesame_db_write_batch_size",
            "Writes committed together in one SQLite transaction (group commit)",
            db_write_batch,
        );
        let queue = Family::<PoolLabel, Gauge>::default();
        registry.register(
            "sesame_queue_depth",
            "Jobs waiting or running on the signing, password-hashing and hook pools",
            queue.clone(),
        );
        let generation = Family::<GenerationLabel, Gauge>::default();
        registry.register(
            "sesame_config_generation_info",
            "The configuration generation this node serves (value 1)",
            generation.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("sesame_build_info", "The sesame version (value 1)", build);
        let reloads = Family::<ReloadLabel, Counter>::default();
        registry.register(
            "sesame_config_reloads",
            "Configuration reloads by outcome (applied, rejected)",
            reloads.clone(),
        );
        Metrics {
            registry,
            requests,
            responses,
            latency,
            tokens,
            signins,
            pushed_requests,
            backchannel,
            lockouts,
            plugins: PluginMetrics {
                calls: plugin_calls,
                errors: plugin_errors,
                duration: plugin_duration,
            },
            db_pool,
            db_wait,
            queue,
            generation,
            reloads,
            current_generation: Mutex::new(String::new()),
            issued: AtomicU64::new(0),
        }
    }

    /// One answered request. `tenant` is empty for server-wide endpoints.
    pub fn request(&self, tenant: &str, endpoint: &str, status: u16, took: Duration) {
        let class = format!("{}xx", (status / 100).clamp(1, 5));
        self.requests
            .get_or_create(&RequestLabels {
                tenant: tenant.to_string(),
                endpoint: endpoint.to_string(),
                class: class.clone(),
            })
            .inc();
        self.responses.get_or_create(&ClassLabel { class }).inc();
        self.latency
            .get_or_create(&EndpointLabel {
                endpoint: endpoint.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn token_issued(&self, tenant: &str, grant: &str, jwt: bool) {
        self.issued.fetch_add(1, Ordering::Relaxed);
        self.tokens
            .get_or_create(&TokenLabels {
                tenant: tenant.to_string(),
                grant: grant.to_string(),
                format: if jwt { "jwt" } else { "opaque" }.to_string(),
            })
            .inc();
    }

    pub fn signin(&self, tenant: &str, outcome: SignIn) {
        self.signins
            .get_or_create(&OutcomeLabels {
                tenant: tenant.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    /// A pushed authorization request stored (`pushed`) or taken at `/authorize` (`used`).
    pub fn pushed_request(&self, tenant: &str, outcome: &str) {
        self.pushed_requests
            .get_or_create(&OutcomeLabels {
                tenant: tenant.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A back-channel logout message of `tenant`: `queued`, `delivered`,
    /// `failed` (to be retried) or `abandoned`.
    pub fn backchannel_logout(&self, tenant: &str, outcome: &str) {
        self.backchannel
            .get_or_create(&OutcomeLabels {
                tenant: tenant.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A lockout of a `kind` of key: `user`, `client` or `ip`.
    pub fn lockout(&self, tenant: &str, kind: &str) {
        self.lockouts
            .get_or_create(&KindLabels {
                tenant: tenant.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// What every hook call reports to.
    pub fn plugins(&self) -> PluginMetrics {
        self.plugins.clone()
    }

    /// The generation now served (the previous one's series drops to 0 and goes).
    pub fn serving(&self, generation: &str) {
        if let Ok(mut current) = self.current_generation.lock() {
            if !current.is_empty() {
                self.generation.remove(&GenerationLabel {
                    generation: current.clone(),
                });
            }
            *current = generation.to_string();
        }
        self.generation
            .get_or_create(&GenerationLabel {
                generation: generation.to_string(),
            })
            .set(1);
    }

    pub fn reload(&self, applied: bool) {
        let outcome = if applied { "applied" } else { "rejected" };
        self.reloads
            .get_or_create(&ReloadLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The text exposition, with `sampled` values set first.
    pub fn render(&self, sampled: Sampled) -> String {
        let state = |s: &str| StateLabel {
            state: s.to_string(),
        };
        let in_use = sampled.db_connections.saturating_sub(sampled.db_idle);
        self.db_pool
            .get_or_create(&state("idle"))
            .set(i64::from(sampled.db_idle));
        self.db_pool
            .get_or_create(&state("in_use"))
            .set(i64::from(in_use));
        for (pool, depth) in [
            ("sign", sampled.queue_sign),
            ("kdf", sampled.queue_kdf),
            ("hook", sampled.queue_hook),
        ] {
            self.queue
                .get_or_create(&PoolLabel {
                    pool: pool.to_string(),
                })
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("could not encode the metrics");
        }
        out
    }

    /// The store's connection-wait histogram (for the store to record into).
    pub fn db_wait(&self) -> &Histogram {
        &self.db_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_move_when_recorded() {
        let m = Metrics::default();
        m.request("demo", "/token", 200, Duration::from_millis(3));
        m.token_issued("demo", "client_credentials", true);
        m.signin("demo", SignIn::BadPassword);
        m.serving("abc123");
        m.serving("def456");
        let text = m.render(Sampled::default());
        assert!(
            text.contains(
                r#"sesame_http_requests_total{tenant="demo",endpoint="/token",class="2xx"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"sesame_http_responses_total{class="2xx"} 1"#));
        assert!(text.contains(
            r#"sesame_tokens_issued_total{tenant="demo",grant="client_credentials",format="jwt"} 1"#
        ));
        assert!(text.contains(r#"sesame_signins_total{tenant="demo",outcome="bad_password"} 1"#));
        assert!(text.contains(r#"sesame_config_generation_info{generation="def456"} 1"#));
        assert!(!text.contains("abc123"));
        assert!(text.contains("sesame_build_info{version="));
        assert!(text.contains(r#"sesame_queue_depth{pool="kdf"} 0"#));
    }
}
