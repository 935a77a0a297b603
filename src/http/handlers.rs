//! One function per tenant endpoint: turn the HTTP request into the core's
//! inputs, call the core, render its [`Outcome`].

use std::sync::Arc;

use warp::http::{header, HeaderValue, Method, Response, StatusCode};
use warp::hyper::Body;

use super::reply::{self, Reply};
use super::server::{endpoint_name, Access};
use super::{cookies, pages, App, Request};
use crate::oauth::access_token::Bearer;
use crate::oauth::outcome::{Notice, Page};
use crate::oauth::{
    authorize, consent, dpop, introspect, login, logout, par, revoke, token, userinfo, Answer,
    Credentials, Ctx, ErrorCode, OAuthError, Outcome, Params, RequestFacts,
};
use crate::tenant::Tenant;
use crate::ui::Asset;

/// The core's view of one request.
fn ctx<'a>(app: &'a App, tenant: &'a Tenant, req: &'a Request, url: &'a str) -> Ctx<'a> {
    Ctx {
        tenant,
        store: &app.store,
        services: &app.services,
        now: crate::now(),
        request: RequestFacts {
            method: req.method.as_str(),
            url,
            ip: req.ip,
            user_agent: req.header("user-agent"),
            dpop: req.dpop(),
        },
    }
}

/// Dispatch a tenant request on its path below the issuer; the reply carries
/// what the access line says of it ([`Access`]).
pub async fn dispatch(app: &Arc<App>, tenant: &Arc<Tenant>, req: Request) -> Reply {
    let mut r = endpoint(app, tenant, &req).await;
    let mut access = r.extensions_mut().remove::<Access>().unwrap_or_default();
    access.tenant = tenant.id.clone();
    access.endpoint = endpoint_name(&req.rest);
    access.ip = req.ip;
    access.client_id = claimed_client(&req);
    if access.reason.is_none() && r.status().is_client_error() {
        access.reason = Some(r.status().to_string());
    }
    r.extensions_mut().insert(access);
    r
}

/// The client id a request names: its Basic credentials' or its parameters'.
fn claimed_client(req: &Request) -> Option<String> {
    if let Ok(Some((id, _))) = req.basic_auth() {
        return Some(id);
    }
    let params = if req.method == Method::POST {
        Params::parse(&req.body).ok()?
    } else {
        Params::parse(req.query.as_bytes()).ok()?
    };
    params
        .get("client_id")
        .map(|id| id.chars().take(128).collect())
}

async fn endpoint(app: &Arc<App>, tenant: &Arc<Tenant>, req: &Request) -> Reply {
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    if req.method == Method::OPTIONS && cors_endpoint(&req.rest) {
        return preflight();
    }
    let url = tenant.endpoint(&req.rest);
    let c = ctx(app, tenant, req, &url);
    let browser = || cookies::read(tenant, req);
    match req.rest.as_str() {
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" if get => {
            public_document(tenant.discovery.clone(), "application/json")
        }
        "/jwks" if get => {
            let jwks = tenant.keys.load().jwks(c.now);
            let mut r = public_document(jwks, "application/jwk-set+json");
            // With rotation, the next key is published `lead` (≥ jwks_cache)
            // before it signs: caches of jwks_cache always hold it in time.
            if let Some(rotation) = tenant.rotation {
                let max_age = format!("public, max-age={}", rotation.jwks_cache.as_secs());
                if let Ok(v) = HeaderValue::from_str(&max_age) {
                    r.headers_mut().insert(header::CACHE_CONTROL, v);
                }
            }
            r
        }
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/jwks" => reply::method_not_allowed("GET"),
        "/authorize" if get || post => {
            let out = match req.params() {
                Ok(p) => authorize::authorize(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, req, out)
        }
        "/authorize" => reply::method_not_allowed("GET, POST"),
        "/login" if get => {
            let out = match req.params() {
                Ok(p) => login::login_page(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, req, out)
        }
        "/login" if post => {
            let out = match req.form() {
                Ok(p) => login::login_submit(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, req, out)
        }
        "/login" => reply::method_not_allowed("GET, POST"),
        "/consent" if get => {
            let out = match req.params() {
                Ok(p) => login::after_sign_in(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, req, out)
        }
        "/consent" if post => {
            let out = match req.form() {
                Ok(p) => consent::consent_submit(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, req, out)
        }
        "/consent" => reply::method_not_allowed("GET, POST"),
        "/token" if post => {
            let result = async {
                let (params, credentials) = client_request(req)?;
                token::token(&c, &params, credentials).await
            }
            .await;
            let value = result.map(|t| serde_json::to_value(&t).unwrap_or_default());
            let mut r = with_cors(respond(tenant, req, value.into()));
            dpop_nonce(&c, &mut r);
            r
        }
        "/token" => reply::method_not_allowed("POST"),
        "/userinfo" if get || post => {
            let result = async {
                let presented = bearer(req)?;
                userinfo::userinfo(&c, presented).await
            }
            .await;
            let failed = result.as_ref().err().map(|e| e.code);
            let mut r = with_cors(respond(tenant, req, result.into()));
            if let Some(code) = failed {
                dpop_challenge(req, code, &mut r);
            }
            dpop_nonce(&c, &mut r);
            r
        }
        "/userinfo" => reply::method_not_allowed("GET, POST"),
        "/introspect" if post => {
            let result = async {
                let (params, credentials) = client_request(req)?;
                introspect::introspect(&c, &params, credentials).await
            }
            .await;
            respond(tenant, req, result.into())
        }
        "/introspect" => reply::method_not_allowed("POST"),
        "/revoke" if post => {
            let result = async {
                let (params, credentials) = client_request(req)?;
                revoke::revoke(&c, &params, credentials).await?;
                Ok(serde_json::json!({}))
            }
            .await;
            with_cors(respond(tenant, req, result.into()))
        }
        "/revoke" => reply::method_not_allowed("POST"),
        "/par" if post => {
            let result = async {
                let (params, credentials) = client_request(req)?;
                par::push(&c, &params, credentials).await
            }
            .await;
            let value = result.map(|p| serde_json::to_value(&p).unwrap_or_default());
            let mut r = respond(tenant, req, value.into());
            if r.status() == StatusCode::OK {
                *r.status_mut() = StatusCode::CREATED; // RFC 9126 §2.2
            }
            r
        }
        "/par" => reply::method_not_allowed("POST"),
        "/logout" if get || post => {
            let out = match req.params() {
                Ok(p) => logout::logout(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, req, out)
        }
        "/logout" => reply::method_not_allowed("GET, POST"),
        rest => match rest
            .strip_prefix("/assets/")
            .and_then(|n| tenant.ui.asset(n))
        {
            Some(a) if get => asset(a),
            Some(_) => reply::method_not_allowed("GET"),
            None => reply::not_found(),
        },
    }
}

/// The form body of a client-authenticated request, and the client's credentials.
fn client_request(req: &Request) -> Result<(Params, Credentials), OAuthError> {
    let params = req.form()?;
    let credentials = Credentials::presented(req.basic_auth()?, &params)?;
    Ok((params, credentials))
}

/// Where a userinfo request put its access token: the `Authorization:
/// Bearer` header and the form body's `access_token`.
fn bearer(req: &Request) -> Result<Bearer, OAuthError> {
    let body = if req.method == Method::POST && !req.body.is_empty() {
        req.form()?.get("access_token").map(str::to_string)
    } else {
        None
    };
    let dpop = req.dpop_token();
    Ok(Bearer {
        header: req.bearer().or(dpop).map(str::to_string),
        body,
        dpop: dpop.is_some(),
    })
}

fn with_cors(mut r: Reply) -> Reply {
    reply::public_cors(&mut r);
    r
}

fn public_document(body: bytes::Bytes, content_type: &'static str) -> Reply {
    let mut r = reply::json_bytes(200, body);
    reply::public_cors(&mut r);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// The endpoints browser applications call across origins: token, userinfo
/// and revocation, discovery and JWKS. The sign-in, consent, authorize,
/// logout and introspection endpoints answer no preflight (`OPTIONS` there
/// is a 405 without CORS headers).
fn cors_endpoint(rest: &str) -> bool {
    matches!(
        rest,
        "/token"
            | "/userinfo"
            | "/revoke"
            | "/jwks"
            | "/.well-known/openid-configuration"
            | "/.well-known/oauth-authorization-server"
    )
}

/// CORS preflight for a [`cors_endpoint`].
/// `DPoP-Nonce` (RFC 9449 §8): the nonce to use next, on every answer of
/// an endpoint that takes proofs, when the tenant requires nonces.
fn dpop_nonce(c: &Ctx<'_>, r: &mut Reply) {
    if let Some(v) = dpop::nonce(c).and_then(|n| HeaderValue::from_str(&n).ok()) {
        r.headers_mut().insert("dpop-nonce", v);
    }
}

/// A resource's refusal of a DPoP request (RFC 9449 §7.1): 401 with a
/// `DPoP` challenge naming the algorithms proofs may use.
fn dpop_challenge(req: &Request, code: ErrorCode, r: &mut Reply) {
    let dpop_error = matches!(code, ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce);
    if !(dpop_error || req.dpop_token().is_some() && code == ErrorCode::InvalidToken) {
        return;
    }
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let algs: Vec<&str> = dpop::ALGS.iter().map(|a| a.as_str()).collect();
    let value = format!(
        "DPoP error=\"{}\", algs=\"{}\"",
        code.as_str(),
        algs.join(" ")
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
}

fn preflight() -> Reply {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    set_headers(
        &mut r,
        &[
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, content-type, dpop",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    );
    r
}

fn set_headers(r: &mut Reply, headers: &[(header::HeaderName, &'static str)]) {
    for (name, value) in headers {
        r.headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
}

/// A stylesheet or image of the tenant's pages. Its URL carries its
/// version, so it is cached for long; an SVG opened directly runs nothing.
fn asset(a: &Asset) -> Reply {
    let mut r = Response::new(Body::from(a.body.clone()));
    set_headers(
        &mut r,
        &[
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
    );
    r
}

/// Turn the core's outcome into a response: statuses, headers, cookies and
/// words are chosen here.
fn respond(tenant: &Tenant, req: &Request, out: Outcome) -> Reply {
    let browser = matches!(out.answer, Answer::Redirect(_) | Answer::Page(_));
    let reason = match &out.answer {
        Answer::Error(e) => Some(e.to_string()),
        Answer::Page(Page::Error(v)) => Some(v.error.to_string()),
        Answer::Page(Page::Login(v)) => v.notice.map(|n| format!("{n:?}")),
        _ => None,
    };
    let mut r = match out.answer {
        Answer::Json(v) => reply::json_no_store(200, &v),
        Answer::Error(e) => reply::error(&e),
        Answer::Redirect(location) => redirect(tenant, &location),
        Answer::Page(page) => render(tenant, req, page),
    };
    if browser && tenant.secure {
        // RFC 6797: browsers that saw an https issuer's pages never try plain http again.
        r.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    cookies::apply(&mut r, tenant, &out.cookies);
    r.extensions_mut().insert(Access {
        reason,
        ..Access::default()
    });
    r
}

fn render(tenant: &Tenant, req: &Request, page: Page) -> Reply {
    let params = req.params().ok();
    let facts = pages::Facts {
        ui_locales: params.as_ref().and_then(|p| p.get("ui_locales")),
        accept_language: req.header("accept-language"),
        request_id: &req.id,
        client_id: params.as_ref().and_then(|p| p.get("client_id")),
    };
    let html = pages::render(tenant, &page, &facts);
    let csp = pages::csp(tenant, &page);
    let status = match &page {
        Page::Login(v) => match v.notice {
            None => 200,
            Some(Notice::BadCredentials) => 401,
            Some(Notice::Locked { retry_after }) => {
                let mut r = html_page(429, html, &csp);
                reply::retry_after_header(&mut r, retry_after);
                return r;
            }
        },
        Page::Error(v) => match reply::status_of(v.error.code) {
            s if s >= 500 => s,
            _ => 400,
        },
        _ => 200,
    };
    html_page(status, html, &csp)
}

fn redirect(tenant: &Tenant, location: &str) -> Reply {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    reply::no_store(&mut r);
    browser_headers(&mut r, &tenant.ui.csp);
    r
}

/// An HTML page with the security headers every browser-facing answer
/// carries, and the page's CSP.
fn html_page(status: u16, html: String, csp: &str) -> Reply {
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = reply::status(status);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    reply::no_store(&mut r);
    browser_headers(&mut r, csp);
    r
}

fn browser_headers(r: &mut Reply, csp: &str) {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}
