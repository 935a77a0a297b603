//! The warp/hyper edge: HTTP in, HTTP out. It reads requests under limits
//! ([`server`]), routes them to a tenant, turns them into the core's inputs
//! ([`handlers`]: `oauth::Ctx`, parameters, credentials, cookies) and the
//! core's [`crate::oauth::Outcome`] into responses: statuses, headers,
//! cookies and pages ([`pages`]) are decided here and only here.

mod app;
mod cookies;
mod forwarded;
mod handlers;
pub mod pages;
pub mod reply;
pub mod request;
mod server;

pub use crate::oauth::Params;
pub use app::App;
pub use reply::Reply;
pub use request::Request;
pub use server::{
    endpoint_name, routes, serve, Access, Role, BODY_TIMEOUT, HEADER_TIMEOUT, MAX_BODY,
    MAX_HEADER_BYTES, MAX_READ_BUFFER, MAX_TARGET_BYTES,
};
