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

/// An OAuth error as RFC 6749 §5.2 JSON, with `WWW-Authenticate` where the code calls for it.
pub fn error(e: &OAuthError) -> Reply {
    let mut r = json_no_store(e.code.status(), &e.to_json());
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

pub fn not_found() -> Reply {
    error(&OAuthError::new(ErrorCode::NotFound, "no such endpoint"))
}

pub fn method_not_allowed(allow: &'static str) -> Reply {
    let mut r = error(&OAuthError::new(
        ErrorCode::MethodNotAllowed,
        format!("this endpoint accepts {allow}"),
    ));
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Allow any origin to read a public document (discovery, JWKS).
pub fn public_cors(r: &mut Reply) {
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}
