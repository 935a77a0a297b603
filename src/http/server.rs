//! The hyper server and the one catch-all filter: read the request under
//! the size and time limits, route it to a tenant by issuer, dispatch it.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tracing::Instrument;
use warp::http::{header, HeaderMap, HeaderValue, Method};
use warp::path::FullPath;
use warp::Filter;

use super::forwarded::{client_ip, request_host};
use super::reply::{self, Reply, Transport};
use super::{handlers, App, Request};

/// Largest request body accepted (form endpoints): 413 above.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest total of request header names and values (plus 4 bytes of framing
/// each) accepted: 431 above. hyper itself stops reading headers at ~400 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest request target (path and query) accepted: 414 above.
pub const MAX_TARGET_BYTES: usize = 16 * 1024;
/// Time a client has to send the whole body once its headers arrived: 408 after.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Time a client has to send a request's headers (slowloris): the
/// connection is closed after it.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// hyper's read buffer per connection, the hard cap on a request head
/// (hyper answers 431 itself above it; [`MAX_HEADER_BYTES`] is ours, with JSON).
pub const MAX_READ_BUFFER: usize = 64 * 1024;

/// The peer address of a connection, put in each request's extensions.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Serve `app` on `listener` until `shutdown` resolves, then drain in-flight requests.
///
/// hyper is driven directly (warp 0.3's `serve_incoming` neither reports the
/// peer address nor exposes hyper's limits): the peer address goes into
/// each request's extensions, request heads must arrive within
/// [`HEADER_TIMEOUT`] and fit in [`MAX_READ_BUFFER`].
pub async fn serve(
    app: Arc<App>,
    role: Role,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper::service::{make_service_fn, service_fn};
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            let _ = stream.set_nodelay(true);
        }
        conn
    });
    let filter = routes(app, role);
    let make = make_service_fn(move |conn: &tokio::net::TcpStream| {
        let peer = conn.peer_addr().ok();
        let svc = warp::service(filter.clone());
        async move {
            Ok::<_, Infallible>(service_fn(move |mut req: hyper::Request<hyper::Body>| {
                if let Some(addr) = peer {
                    req.extensions_mut().insert(Peer(addr));
                }
                let mut svc = svc.clone();
                hyper::service::Service::call(&mut svc, req)
            }))
        }
    });
    let server = hyper::Server::builder(hyper::server::accept::from_stream(incoming))
        // HTTP/1.1 only: TLS and HTTP/2 belong to the reverse proxy in
        // front, and an h2 connection here would escape the header limits.
        .http1_only(true)
        .http1_header_read_timeout(HEADER_TIMEOUT)
        .http1_max_buf_size(MAX_READ_BUFFER)
        .serve(make)
        .with_graceful_shutdown(shutdown);
    if let Err(e) = server.await {
        tracing::error!(error = %e, "server error");
    }
}

/// The whole HTTP surface as one filter.
pub fn routes(
    app: Arc<App>,
    role: Role,
) -> impl Filter<Extract = (Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>().map(|p: Option<Peer>| p.map(|p| p.0)))
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  peer: Option<SocketAddr>,
                  body| {
                let app = app.clone();
                let id = request_id(&headers);
                let span = tracing::info_span!("request", request_id = %id);
                async move {
                    let started = Instant::now();
                    let path = path.as_str().to_string();
                    let user_agent = headers
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                        .map(|ua| ua.chars().take(256).collect::<String>());
                    let mut reply = handle(
                        &app,
                        role,
                        &id,
                        method.clone(),
                        &path,
                        query,
                        headers,
                        peer,
                        body,
                    )
                    .await;
                    let status = reply.status().as_u16();
                    let took = started.elapsed();
                    let access = reply
                        .extensions_mut()
                        .remove::<Access>()
                        .unwrap_or_default();
                    app.services
                        .metrics
                        .request(&access.tenant, access.endpoint, status, took);
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        reply.headers_mut().insert("x-request-id", v);
                    }
                    // One access line per request; a 4xx says why (never a secret:
                    // error descriptions are fixed texts).
                    tracing::info!(
                        tenant = %access.tenant,
                        client_id = access.client_id.as_deref(),
                        %method,
                        endpoint = access.endpoint,
                        status,
                        latency_us = took.as_micros() as u64,
                        peer = access.ip.or(peer.map(|p| p.ip())).map(|ip| ip.to_string()),
                        user_agent = user_agent.as_deref(),
                        reason = access.reason.as_deref(),
                        "request"
                    );
                    reply
                }
                .instrument(span)
            },
        )
        .recover(|_| async { Ok::<_, Infallible>(reply::not_found()) })
        .unify()
}

/// The request's id: the caller's `X-Request-Id` when it is a sane token
/// (at most 64 of `A-Za-z0-9._-`), else a fresh random one.
fn request_id(headers: &HeaderMap) -> String {
    let given = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    match given {
        Some(id) => id.to_string(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The public listener (`server.listen`): every endpoint, and `/metrics`
    /// unless an admin listener serves it.
    Public { metrics: bool },
    /// `server.admin_listen`: `/metrics` and the health endpoints only.
    Admin,
}

/// What the access line says of a request beyond its method and status,
/// filled in on the way (a response extension, removed before it is sent).
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Empty for server-wide endpoints.
    pub tenant: String,
    /// The endpoint below the issuer (`/token`), a server-wide path, or `other`.
    pub endpoint: &'static str,
    /// The client's address (after `trusted_proxies`).
    pub ip: Option<IpAddr>,
    /// The client id the request named, when it named one.
    pub client_id: Option<String>,
    /// Why a request was refused (`invalid_client: client authentication failed`).
    pub reason: Option<String>,
}

/// The endpoint names metrics and logs use: known paths, else `other` (a
/// path of the client's choosing must not become a label).
pub fn endpoint_name(rest: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks",
        "/authorize",
        "/login",
        "/consent",
        "/token",
        "/userinfo",
        "/introspect",
        "/revoke",
        "/par",
        "/logout",
        "/assets/style.css",
        "/assets/logo",
        "/assets/favicon",
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    KNOWN
        .iter()
        .copied()
        .find(|k| *k == rest)
        .unwrap_or("other")
}

fn with_access(mut r: Reply, access: Access) -> Reply {
    r.extensions_mut().insert(access);
    r
}

#[allow(clippy::too_many_arguments)]
async fn handle<S, B>(
    app: &Arc<App>,
    role: Role,
    id: &str,
    method: Method,
    path: &str,
    query: String,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
    body: S,
) -> Reply
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let server_wide = |reason: Option<String>| Access {
        endpoint: endpoint_name(path),
        reason,
        ..Access::default()
    };
    if let Err(e) = check_sizes(&headers, path, &query) {
        return with_access(e.reply(), server_wide(Some(format!("{e:?}"))));
    }
    let metrics_here = matches!(role, Role::Admin | Role::Public { metrics: true });
    match path {
        "/healthz" => return with_access(json_status(200, "ok"), server_wide(None)),
        "/readyz" => {
            let generation = app.runtime.load().generation.clone();
            let r = match app.store.ping().await {
                Ok(()) => {
                    let mut r = reply::json(
                        200,
                        &serde_json::json!({ "status": "ready", "generation": generation }),
                    );
                    reply::no_store(&mut r);
                    r
                }
                Err(e) => {
                    tracing::warn!(error = %e, "readiness check failed");
                    json_status(503, "unavailable")
                }
            };
            return with_access(r, server_wide(None));
        }
        "/metrics" if metrics_here => {
            let text = app.services.metrics.render(app.services.sample(&app.store));
            let mut r = warp::http::Response::new(text.into());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return with_access(r, server_wide(None));
        }
        _ if role == Role::Admin => {
            return with_access(reply::not_found(), server_wide(Some("not_found".into())))
        }
        _ => {}
    }

    let runtime = app.runtime.load_full();
    let peer_ip = peer.map(|p| p.ip());
    let trusted = peer_ip.is_some_and(|ip| runtime.trusts_proxy(ip));
    let host = request_host(&headers, trusted);
    let Some(route) = runtime.route(host.as_deref(), path) else {
        return with_access(
            reply::not_found(),
            server_wide(Some("not_found: no tenant".into())),
        );
    };
    let tenant = route.tenant.clone();
    let rest = route.rest.to_string();

    let ip = client_ip(&headers, peer_ip, trusted, &runtime);
    let access = |reason: String| Access {
        tenant: tenant.id.clone(),
        endpoint: endpoint_name(&rest),
        ip,
        client_id: None,
        reason: Some(reason),
    };
    let body = match tokio::time::timeout(BODY_TIMEOUT, read_body(&headers, body)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return with_access(e.reply(), access(format!("{e:?}"))),
        Err(_) => {
            let e = Transport::RequestTimeout;
            return with_access(e.reply(), access(format!("{e:?}")));
        }
    };
    let req = Request {
        id: id.to_string(),
        method,
        rest,
        query,
        ip,
        headers,
        body,
    };
    handlers::dispatch(app, &tenant, req).await
}

fn json_status(code: u16, status: &str) -> Reply {
    let mut r = reply::json(code, &serde_json::json!({ "status": status }));
    reply::no_store(&mut r);
    r
}

/// Refuse oversized headers (431) and request targets (414) before any work.
fn check_sizes(headers: &HeaderMap, path: &str, query: &str) -> Result<(), Transport> {
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(Transport::HeadersTooLarge);
    }
    if path.len() + query.len() + 1 > MAX_TARGET_BYTES {
        return Err(Transport::UriTooLong);
    }
    Ok(())
}

/// Read the body, refusing more than [`MAX_BODY`] bytes whatever the framing.
async fn read_body<S, B>(headers: &HeaderMap, body: S) -> Result<Bytes, Transport>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Transport::PayloadTooLarge);
    }
    let mut buf = BytesMut::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| Transport::UnreadableBody)?;
        if buf.len() + chunk.remaining() > MAX_BODY {
            return Err(Transport::PayloadTooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}
