//! The warp edge: one catch-all filter reads the request (body under a size
//! limit), routes it to a tenant by issuer, and dispatches on the path below
//! the issuer. Handlers always reply; rejections never escape.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tracing::Instrument;
use warp::http::{header, HeaderMap, HeaderValue, Method};
use warp::path::FullPath;
use warp::Filter;

use crate::oauth::{ErrorCode, OAuthError};
use crate::runtime::Runtime;
use crate::store::Store;

mod handlers;
pub mod pages;
pub mod reply;
pub mod request;

pub use crate::oauth::Params;
pub use reply::Reply;
pub use request::Request;

/// Largest request body accepted (form endpoints): 413 above.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest total of request header names and values (plus 4 bytes of framing
/// each) accepted: 431 above. hyper itself stops reading headers at ~400 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest request target (path and query) accepted: 414 above.
pub const MAX_TARGET_BYTES: usize = 16 * 1024;
/// Time a client has to send the whole body once its headers arrived: 408 after.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Shared state of a running server.
pub struct App {
    pub runtime: ArcSwap<Runtime>,
    pub store: Store,
    pub metrics: Metrics,
}

impl App {
    pub fn new(runtime: Runtime, store: Store) -> Arc<App> {
        Arc::new(App {
            runtime: ArcSwap::from_pointee(runtime),
            store,
            metrics: Metrics::default(),
        })
    }
}

/// Counters served at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub responses: [AtomicU64; 5],
    pub tokens_issued: AtomicU64,
}

impl Metrics {
    fn record(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "# HELP sesame_http_responses_total HTTP responses by status class.\n\
             # TYPE sesame_http_responses_total counter\n",
        );
        for (i, c) in self.responses.iter().enumerate() {
            out.push_str(&format!(
                "sesame_http_responses_total{{class=\"{}xx\"}} {}\n",
                i + 1,
                c.load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP sesame_tokens_issued_total Access tokens issued.\n\
             # TYPE sesame_tokens_issued_total counter\n",
        );
        out.push_str(&format!(
            "sesame_tokens_issued_total {}\n",
            self.tokens_issued.load(Ordering::Relaxed)
        ));
        out
    }
}

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
    let filter = routes(app);
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
                let id = request_id();
                let span = tracing::info_span!("request", id = %id);
                async move {
                    let started = Instant::now();
                    let path = path.as_str().to_string();
                    let mut reply =
                        handle(&app, method.clone(), &path, query, headers, peer, body).await;
                    let status = reply.status().as_u16();
                    app.metrics.record(status);
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        reply.headers_mut().insert("x-request-id", v);
                    }
                    tracing::info!(
                        %method,
                        path = %path,
                        status,
                        latency_us = started.elapsed().as_micros() as u64,
                        "served"
                    );
                    reply
                }
                .instrument(span)
            },
        )
        .recover(|_| async { Ok::<_, Infallible>(reply::not_found()) })
        .unify()
}

fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

async fn handle<S, B>(
    app: &Arc<App>,
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
    if let Err(e) = check_sizes(&headers, path, &query) {
        return reply::error(&e);
    }
    match path {
        "/healthz" => return json_status(200, "ok"),
        "/readyz" => {
            return match app.store.ping().await {
                Ok(()) => json_status(200, "ready"),
                Err(e) => {
                    tracing::warn!(error = %e, "readiness check failed");
                    json_status(503, "unavailable")
                }
            }
        }
        "/metrics" => {
            let mut r = warp::http::Response::new(app.metrics.render().into());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            return r;
        }
        _ => {}
    }

    let runtime = app.runtime.load_full();
    let peer_ip = peer.map(|p| p.ip());
    let trusted = peer_ip.is_some_and(|ip| runtime.trusts_proxy(ip));
    let host = request_host(&headers, trusted);
    let Some(route) = runtime.route(host.as_deref(), path) else {
        return reply::not_found();
    };
    let tenant = route.tenant.clone();
    let rest = route.rest.to_string();

    let body = match tokio::time::timeout(BODY_TIMEOUT, read_body(&headers, body)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return reply::error(&e),
        Err(_) => {
            return reply::error(&OAuthError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive in time",
            ))
        }
    };
    let req = Request {
        method,
        rest,
        query,
        ip: client_ip(&headers, peer_ip, trusted, &runtime),
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
fn check_sizes(headers: &HeaderMap, path: &str, query: &str) -> Result<(), OAuthError> {
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(OAuthError::new(
            ErrorCode::HeadersTooLarge,
            "the request headers are too large",
        ));
    }
    if path.len() + query.len() + 1 > MAX_TARGET_BYTES {
        return Err(OAuthError::new(
            ErrorCode::UriTooLong,
            "the request URI is too long",
        ));
    }
    Ok(())
}

/// Read the body, refusing more than [`MAX_BODY`] bytes whatever the framing.
async fn read_body<S, B>(headers: &HeaderMap, body: S) -> Result<Bytes, OAuthError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf,
{
    let too_large = || OAuthError::new(ErrorCode::PayloadTooLarge, "the request body is too large");
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|_| OAuthError::invalid_request("the request body could not be read"))?;
        if buf.len() + chunk.remaining() > MAX_BODY {
            return Err(too_large());
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

/// The host the client asked for: `Host`, or what a trusted proxy forwarded.
fn request_host(headers: &HeaderMap, trusted: bool) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if trusted {
        if let Some(h) = get("x-forwarded-host") {
            return h.split(',').next().map(|h| h.trim().to_string());
        }
        if let Some(fwd) = get("forwarded") {
            let first = fwd.split(',').next().unwrap_or("");
            for part in first.split(';') {
                if let Some((k, v)) = part.trim().split_once('=') {
                    if k.eq_ignore_ascii_case("host") {
                        return Some(v.trim_matches('"').to_string());
                    }
                }
            }
        }
    }
    get("host").map(str::to_string)
}

/// The client's address: the peer, or, behind trusted proxies, the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
fn client_ip(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: bool,
    runtime: &Runtime,
) -> Option<IpAddr> {
    if !trusted {
        return peer;
    }
    let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    let mut last = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if runtime.trusts_proxy(ip) => last = Some(ip),
            Ok(ip) => return Some(ip),
            Err(_) => return last,
        }
    }
    last
}
