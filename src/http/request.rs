//! What a handler sees of a request, and parsing of its parameters.

use std::net::IpAddr;

use base64::Engine;
use bytes::Bytes;
use warp::http::{HeaderMap, Method};

use crate::oauth::{OAuthError, Params};

/// A request after tenant routing, with its body read (under the size limit).
/// Its `Debug` shows neither header values nor the body (they carry
/// passwords, secrets, codes and tokens).
pub struct Request {
    /// The request id (`X-Request-Id`), shown on error pages.
    pub id: String,
    pub method: Method,
    /// The path below the tenant's issuer (`/token`).
    pub rest: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The client's address (from `X-Forwarded-For` when the peer is a trusted proxy).
    pub ip: Option<IpAddr>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("rest", &self.rest)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query parameters (GET) or form body (POST), as the method calls for.
    pub fn params(&self) -> Result<Params, OAuthError> {
        if self.method == Method::POST {
            self.form()
        } else {
            Params::parse(self.query.as_bytes())
        }
    }

    /// The `application/x-www-form-urlencoded` body.
    pub fn form(&self) -> Result<Params, OAuthError> {
        let ct = self.header("content-type").unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Params::parse(&self.body)
    }

    /// HTTP Basic credentials (RFC 6749 §2.3.1: both parts form-url-decoded after base64).
    /// `Ok(None)` without an `Authorization: Basic` header.
    pub fn basic_auth(&self) -> Result<Option<(String, String)>, OAuthError> {
        let Some(value) = self.header("authorization") else {
            return Ok(None);
        };
        parse_basic(value)
    }

    /// The `DPoP` header (RFC 9449): absent, one, or repeated.
    pub fn dpop(&self) -> crate::oauth::dpop::Header<'_> {
        use crate::oauth::dpop::Header;
        let mut all = self.headers.get_all("dpop").iter();
        match (all.next(), all.next()) {
            (None, _) => Header::Absent,
            (Some(v), None) => v.to_str().map_or(Header::Repeated, Header::One),
            (Some(_), Some(_)) => Header::Repeated,
        }
    }

    /// The token of an `Authorization: DPoP` header (RFC 9449 §7.1), if any.
    pub fn dpop_token(&self) -> Option<&str> {
        self.authorization_token("dpop")
    }

    fn authorization_token(&self, want: &str) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case(want)
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }

    /// The bearer token of an `Authorization: Bearer` header, if any.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization_token("bearer")
    }
}

/// Parse an `Authorization` header value as Basic credentials.
pub fn parse_basic(value: &str) -> Result<Option<(String, String)>, OAuthError> {
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || OAuthError::invalid_client();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let id = form_decode(id).ok_or_else(bad)?;
    let secret = form_decode(secret).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}

fn form_decode(s: &str) -> Option<String> {
    let plus_decoded = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "my%20client:p%40ss%3Aword" → id "my client", secret "p@ss:word"
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%20client:p%40ss%3Aword")
        );
        assert_eq!(
            parse_basic(&v).unwrap(),
            Some(("my client".to_string(), "p@ss:word".to_string()))
        );
        assert_eq!(parse_basic("Bearer abc").unwrap(), None);
        assert!(parse_basic("Basic !!!").is_err());
        let no_colon = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("x")
        );
        assert!(parse_basic(&no_colon).is_err());
    }
}
