//! sesame: a declarative OpenID Connect provider and OAuth 2.0 authorization server.

pub mod backchannel;
pub mod cli;
pub mod config;
pub mod explain;
pub mod fixture;
pub mod http;
pub mod jose;
pub mod key_admin;
pub mod keyring;
pub mod metrics;
pub mod oauth;
pub mod offline;
pub mod plan;
pub mod plugin;
pub mod runtime;
pub mod store;
pub mod tenant;
pub mod ui;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
