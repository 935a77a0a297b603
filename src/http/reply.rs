//! Building responses: JSON, OAuth errors, HTML.

use bytes::Bytes;
use warp::http::{header, HeaderValue, Response, StatusCode};
use warp::hyper::Body;

use crate::oauth::{ErrorCode, OAuthError};

pub type Reply = Response<Body>;

pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON body with the given status.
pub fn json_bytes(code: u16, body: Bytes) -> Reply {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status(code);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub fn json(code: u16, value: &serde_json::Value) -> Reply {
    json_bytes(code, Bytes::from(value.to_string()))
}

/// JSON that must never be cached (tokens, token errors, userinfo).
pub fn json_no_store(code: u16, value: &serde_json::Value) -> Reply {
    let mut r = json(code, value);
    no_store(&mut r);
    r
}

pub fn no_store(r: &mut Reply) {
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The HTTP status of a protocol error (RFC 6749 §5.2, RFC 6750 §3.1).
pub fn status_of(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
        ErrorCode::InsufficientScope => 403,
        ErrorCode::SlowDown { .. } => 429,
        ErrorCode::ServerError => 500,
        ErrorCode::TemporarilyUnavailable => 503,
        _ => 400,
    }
}

/// An OAuth error as RFC 6749 §5.2 JSON, with `WWW-Authenticate` where the code calls for it.
pub fn error(e: &OAuthError) -> Reply {
    let mut r = json_no_store(status_of(e.code), &e.to_json());
    match e.code {
        ErrorCode::InvalidClient => {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sesame\""),
            );
        }
        ErrorCode::InvalidToken | ErrorCode::InsufficientScope => {
            let value = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                e.code.as_str(),
                e.description.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        ErrorCode::TemporarilyUnavailable => {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        ErrorCode::SlowDown { retry_after } => retry_after_header(&mut r, retry_after),
        _ => {}
    }
    r
}

/// `Retry-After: <seconds>` (at least 1).
pub fn retry_after_header(r: &mut Reply, seconds: u64) {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
}

/// Failures of the transport itself, found before any protocol: the edge's
/// own, answered as JSON in the shape of an OAuth error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No such endpoint (404).
    NotFound,
    /// Wrong method (405); the methods the endpoint accepts.
    MethodNotAllowed(&'static str),
    /// Body too large (413).
    PayloadTooLarge,
    /// Request headers too large (431).
    HeadersTooLarge,
    /// Request target (path and query) too long (414).
    UriTooLong,
    /// The body did not arrive in time (408).
    RequestTimeout,
    /// The body could not be read (400).
    UnreadableBody,
}

impl Transport {
    pub fn reply(self) -> Reply {
        let (status, code, description) = match self {
            Transport::NotFound => (404, "not_found", "no such endpoint".to_string()),
            Transport::MethodNotAllowed(allow) => (
                405,
                "method_not_allowed",
                format!("this endpoint accepts {allow}"),
            ),
            Transport::PayloadTooLarge => (
                413,
                "invalid_request",
                "the request body is too large".to_string(),
            ),
            Transport::HeadersTooLarge => (
                431,
                "invalid_request",
                "the request headers are too large".to_string(),
            ),
            Transport::UriTooLong => (
                414,
                "invalid_request",
                "the request URI is too long".to_string(),
            ),
            Transport::RequestTimeout => (
                408,
                "invalid_request",
                "the request body did not arrive in time".to_string(),
            ),
            Transport::UnreadableBody => (
                400,
                "invalid_request",
                "the request body could not be read".to_string(),
            ),
        };
        let mut r = json_no_store(
            status,
            &serde_json::json!({ "error": code, "error_description": description }),
        );
        if let Transport::MethodNotAllowed(allow) = self {
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        r
    }
}

pub fn not_found() -> Reply {
    Transport::NotFound.reply()
}

pub fn method_not_allowed(allow: &'static str) -> Reply {
    Transport::MethodNotAllowed(allow).reply()
}

/// Allow any origin to read a public document (discovery, JWKS).
pub fn public_cors(r: &mut Reply) {
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    // A browser client reads these to retry with a nonce (RFC 9449 §8).
    r.headers_mut().insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("DPoP-Nonce, WWW-Authenticate"),
    );
}
