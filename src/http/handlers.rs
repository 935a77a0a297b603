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
    authorize, consent, introspect, login, logout, revoke, token, userinfo, Answer, Credentials,
    Ctx, OAuthError, Outcome, Params, RequestFacts,
};
use crate::tenant::Tenant;

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
            dpop: req.header("dpop"),
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
        "/jwks" if get => public_document(tenant.jwks.clone(), "application/jwk-set+json"),
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/jwks" => reply::method_not_allowed("GET"),
        "/authorize" if get || post => {
            let out = match req.params() {
                Ok(p) => authorize::authorize(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, out)
        }
        "/authorize" => reply::method_not_allowed("GET, POST"),
        "/login" if get => {
            let out = match req.params() {
                Ok(p) => login::login_page(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, out)
        }
        "/login" if post => {
            let out = match req.form() {
                Ok(p) => login::login_submit(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, out)
        }
        "/login" => reply::method_not_allowed("GET, POST"),
        "/consent" if post => {
            let out = match req.form() {
                Ok(p) => consent::consent_submit(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, out)
        }
        "/consent" => reply::method_not_allowed("POST"),
        "/token" if post => {
            let result = async {
                let (params, credentials) = client_request(req)?;
                token::token(&c, &params, credentials).await
            }
            .await;
            let value = result.map(|t| serde_json::to_value(&t).unwrap_or_default());
            with_cors(respond(tenant, value.into()))
        }
        "/token" => reply::method_not_allowed("POST"),
        "/userinfo" if get || post => {
            let result = async {
                let presented = bearer(req)?;
                userinfo::userinfo(&c, presented).await
            }
            .await;
            with_cors(respond(tenant, result.into()))
        }
        "/userinfo" => reply::method_not_allowed("GET, POST"),
        "/introspect" if post => {
            let result = async {
                let (params, credentials) = client_request(req)?;
                introspect::introspect(&c, &params, credentials).await
            }
            .await;
            respond(tenant, result.into())
        }
        "/introspect" => reply::method_not_allowed("POST"),
        "/revoke" if post => {
            let result = async {
                let (params, credentials) = client_request(req)?;
                revoke::revoke(&c, &params, credentials).await?;
                Ok(serde_json::json!({}))
            }
            .await;
            with_cors(respond(tenant, result.into()))
        }
        "/revoke" => reply::method_not_allowed("POST"),
        "/logout" if get || post => {
            let out = match req.params() {
                Ok(p) => logout::logout(&c, &p, &browser()).await,
                Err(e) => Outcome::error_page(e),
            };
            respond(tenant, out)
        }
        "/logout" => reply::method_not_allowed("GET, POST"),
        _ => reply::not_found(),
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
    Ok(Bearer {
        header: req.bearer().map(str::to_string),
        body,
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
fn preflight() -> Reply {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}

/// Turn the core's outcome into a response: statuses, headers, cookies and
/// words are chosen here.
fn respond(tenant: &Tenant, out: Outcome) -> Reply {
    let browser = matches!(out.answer, Answer::Redirect(_) | Answer::Page(_));
    let reason = match &out.answer {
        Answer::Error(e) | Answer::Page(Page::Error(e)) => Some(e.to_string()),
        Answer::Page(Page::Login(v)) => v.notice.map(|n| format!("{n:?}")),
        _ => None,
    };
    let mut r = match out.answer {
        Answer::Json(v) => reply::json_no_store(200, &v),
        Answer::Error(e) => reply::error(&e),
        Answer::Redirect(location) => redirect(&location),
        Answer::Page(page) => render(tenant, page),
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

fn render(tenant: &Tenant, page: Page) -> Reply {
    match page {
        Page::Login(v) => {
            let action = tenant.endpoint("/login");
            let message = v.notice.map(pages::notice);
            let html = pages::login(&pages::LoginPage {
                tenant: &tenant.id,
                client_name: &v.client_name,
                action: &action,
                rid: &v.rid,
                csrf: &v.csrf,
                username: &v.username,
                error: message.as_deref(),
            });
            match v.notice {
                None => html_page(200, html),
                Some(Notice::BadCredentials) => html_page(401, html),
                Some(Notice::Locked { retry_after }) => {
                    let mut r = html_page(429, html);
                    reply::retry_after_header(&mut r, retry_after);
                    r
                }
            }
        }
        Page::Consent(v) => {
            let action = tenant.endpoint("/consent");
            let scopes: Vec<(&str, &str)> = v
                .scopes
                .iter()
                .map(|(s, d)| (s.as_str(), d.as_str()))
                .collect();
            let html = pages::consent(&pages::ConsentPage {
                tenant: &tenant.id,
                client_name: &v.client_name,
                action: &action,
                rid: &v.rid,
                csrf: &v.csrf,
                username: &v.username,
                scopes: &scopes,
            });
            html_page(200, html)
        }
        Page::LogoutConfirm(v) => {
            let action = tenant.endpoint("/logout");
            let html = pages::logout_confirm(&pages::LogoutConfirmPage {
                tenant: &tenant.id,
                action: &action,
                csrf: &v.csrf,
                client_name: v.client_name.as_deref(),
                client_id: v.client_id.as_deref(),
                post_logout_redirect_uri: v.post_logout_redirect_uri.as_deref(),
                state: v.state.as_deref(),
            });
            html_page(200, html)
        }
        Page::SignedOut => html_page(200, pages::signed_out(&tenant.id)),
        Page::Error(e) => {
            let html = pages::error(e.code.as_str(), &e.description);
            let status = match reply::status_of(e.code) {
                s if s >= 500 => s,
                _ => 400,
            };
            html_page(status, html)
        }
    }
}

fn redirect(location: &str) -> Reply {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    reply::no_store(&mut r);
    browser_headers(&mut r);
    r
}

/// An HTML page with the security headers every browser-facing answer carries.
pub fn html_page(status: u16, html: String) -> Reply {
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = reply::status(status);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    reply::no_store(&mut r);
    browser_headers(&mut r);
    r
}

fn browser_headers(r: &mut Reply) {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(pages::content_security_policy()) {
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
