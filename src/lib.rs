//! sesame: a declarative OpenID Connect provider and OAuth 2.0 authorization server.

pub mod config;
pub mod jose;
pub mod store;
