//! One function per tenant endpoint: parse the HTTP request, call the
//! protocol core, render its answer.

use std::sync::Arc;

use warp::http::{header, HeaderValue, Method, Response, StatusCode};
use warp::hyper::Body;

use super::reply::{self, Reply};
use super::{pages, App, Request};
use crate::oauth::authorize::{self, BrowserCookies, Ctx, Outcome, RequestInfo, Step};
use crate::oauth::client_auth::{Guard, Presented};
use crate::oauth::logout::{self, LogoutStep};
use crate::oauth::{introspect, token, userinfo, OAuthError, Params};
use crate::tenant::Tenant;

fn ctx<'a>(app: &'a App, tenant: &'a Tenant, req: &'a Request) -> Ctx<'a> {
    Ctx {
        tenant,
        store: &app.store,
        now: crate::now(),
        request: RequestInfo {
            ip: req.ip,
            user_agent: req.header("user-agent"),
        },
    }
}

/// Dispatch a tenant request on its path below the issuer.
pub async fn dispatch(app: &Arc<App>, tenant: &Arc<Tenant>, req: Request) -> Reply {
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    if req.method == Method::OPTIONS {
        return preflight();
    }
    match req.rest.as_str() {
        "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server" if get => {
            public_document(tenant.discovery.clone(), "application/json")
        }
        "/jwks" if get => public_document(tenant.jwks.clone(), "application/jwk-set+json"),
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/jwks" => reply::method_not_allowed("GET"),
        "/authorize" if get || post => authorize(app, tenant, &req).await,
        "/authorize" => reply::method_not_allowed("GET, POST"),
        "/login" if get => {
            let c = ctx(app, tenant, &req);
            let out = match req.params() {
                Ok(p) => authorize::login_page(&c, &p, &cookies(tenant, &req)).await,
                Err(e) => error_outcome(e),
            };
            render(tenant, out)
        }
        "/login" if post => {
            let c = ctx(app, tenant, &req);
            let (out, locked) = match req.form() {
                Ok(p) => authorize::login_submit(&c, &p, &cookies(tenant, &req), req.ip).await,
                Err(e) => (error_outcome(e), None),
            };
            let mut r = render(tenant, out);
            if let Some(seconds) = locked {
                *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                reply::retry_after_header(&mut r, seconds);
            }
            r
        }
        "/login" => reply::method_not_allowed("GET, POST"),
        "/consent" if post => {
            let c = ctx(app, tenant, &req);
            let out = match req.form() {
                Ok(p) => authorize::consent_submit(&c, &p, &cookies(tenant, &req)).await,
                Err(e) => error_outcome(e),
            };
            render(tenant, out)
        }
        "/consent" => reply::method_not_allowed("POST"),
        "/token" if post => token_endpoint(app, tenant, &req).await,
        "/token" => reply::method_not_allowed("POST"),
        "/userinfo" if get || post => userinfo_endpoint(app, tenant, &req).await,
        "/userinfo" => reply::method_not_allowed("GET, POST"),
        "/introspect" if post => introspect_endpoint(app, tenant, &req).await,
        "/introspect" => reply::method_not_allowed("POST"),
        "/revoke" if post => revoke_endpoint(app, tenant, &req).await,
        "/revoke" => reply::method_not_allowed("POST"),
        "/logout" if get || post => logout_endpoint(app, tenant, &req).await,
        "/logout" => reply::method_not_allowed("GET, POST"),
        _ => reply::not_found(),
    }
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

/// CORS preflight: browser apps may call the token, userinfo, introspection
/// and revocation endpoints and read discovery and JWKS.
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

async fn authorize(app: &App, tenant: &Tenant, req: &Request) -> Reply {
    let c = ctx(app, tenant, req);
    let out = authorize::authorize(&c, req.params(), &cookies(tenant, req)).await;
    render(tenant, out)
}

fn presented(app: &App, req: &Request, params: &Params) -> Result<Presented, OAuthError> {
    Ok(Presented {
        basic: req.basic_auth()?,
        client_id: params.get("client_id").map(str::to_string),
        client_secret: params.get("client_secret").map(str::to_string),
        guard: Some(Guard {
            store: app.store.clone(),
            ip: req.ip,
            now: crate::now(),
        }),
    })
}

async fn token_endpoint(app: &App, tenant: &Tenant, req: &Request) -> Reply {
    let result = async {
        let params = req.form()?;
        let presented = presented(app, req, &params)?;
        token::token(&ctx(app, tenant, req), &params, presented).await
    }
    .await;
    let mut r = match result {
        Ok(t) => {
            app.metrics
                .tokens_issued
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            reply::json_no_store(200, &serde_json::to_value(&t).unwrap_or_default())
        }
        Err(e) => reply::error(&e),
    };
    reply::public_cors(&mut r);
    r
}

async fn userinfo_endpoint(app: &App, tenant: &Tenant, req: &Request) -> Reply {
    let result = async {
        let form_token = if req.method == Method::POST && !req.body.is_empty() {
            req.form()?.get("access_token").map(str::to_string)
        } else {
            None
        };
        let token = match (req.bearer(), form_token) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "send the access token once, not in both the header and the body",
                ))
            }
            (Some(t), None) => t.to_string(),
            (None, Some(t)) => t,
            (None, None) => {
                return Err(OAuthError::new(
                    crate::oauth::ErrorCode::InvalidToken,
                    "an access token is required",
                ))
            }
        };
        userinfo::userinfo(&ctx(app, tenant, req), &token).await
    }
    .await;
    let mut r = match result {
        Ok(claims) => reply::json_no_store(200, &claims),
        Err(e) => reply::error(&e),
    };
    reply::public_cors(&mut r);
    r
}

async fn introspect_endpoint(app: &App, tenant: &Tenant, req: &Request) -> Reply {
    let result = async {
        let params = req.form()?;
        let presented = presented(app, req, &params)?;
        introspect::introspect(&ctx(app, tenant, req), &params, presented).await
    }
    .await;
    match result {
        Ok(v) => reply::json_no_store(200, &v),
        Err(e) => reply::error(&e),
    }
}

async fn revoke_endpoint(app: &App, tenant: &Tenant, req: &Request) -> Reply {
    let result = async {
        let params = req.form()?;
        let presented = presented(app, req, &params)?;
        introspect::revoke(&ctx(app, tenant, req), &params, presented).await
    }
    .await;
    let mut r = match result {
        Ok(()) => reply::json_no_store(200, &serde_json::json!({})),
        Err(e) => reply::error(&e),
    };
    reply::public_cors(&mut r);
    r
}

async fn logout_endpoint(app: &App, tenant: &Tenant, req: &Request) -> Reply {
    let params = match req.params() {
        Ok(p) => p,
        Err(e) => return html_page(400, pages::error(e.code.as_str(), &e.description)),
    };
    let (step, clear) =
        logout::logout(&ctx(app, tenant, req), &params, &cookies(tenant, req)).await;
    let mut r = match step {
        LogoutStep::Redirect(url) => redirect(&url),
        LogoutStep::SignedOut => html_page(200, pages::signed_out(&tenant.id)),
        LogoutStep::ErrorPage(e) => html_page(400, pages::error(e.code.as_str(), &e.description)),
    };
    if clear {
        let (_, session_name) = cookie_names(tenant);
        set_cookie(&mut r, tenant, &session_name, "", Some(0));
    }
    r
}

fn error_outcome(e: OAuthError) -> Outcome {
    Outcome {
        step: Step::ErrorPage(e),
        set_binding: None,
        set_session: None,
        unauthorized: false,
    }
}

/// The tenant's cookie names: per tenant, so tenants sharing a host never
/// collide. With an https issuer at `/` they carry the `__Host-` prefix
/// (Secure, Path=/, no Domain: a sibling subdomain cannot set or shadow them).
fn cookie_names(tenant: &Tenant) -> (String, String) {
    let prefix = if host_prefixed(tenant) { "__Host-" } else { "" };
    (
        format!("{prefix}sesame_b_{}", tenant.id),
        format!("{prefix}sesame_s_{}", tenant.id),
    )
}

fn host_prefixed(tenant: &Tenant) -> bool {
    tenant.secure && tenant.path.is_empty()
}

fn cookies(tenant: &Tenant, req: &Request) -> BrowserCookies {
    let (binding_name, session_name) = cookie_names(tenant);
    let mut out = BrowserCookies::default();
    for value in req.headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            let Some((name, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if name == binding_name && out.binding.is_none() {
                out.binding = Some(v.to_string());
            } else if name == session_name && out.session.is_none() {
                out.session = Some(v.to_string());
            }
        }
    }
    out
}

fn set_cookie(r: &mut Reply, tenant: &Tenant, name: &str, value: &str, max_age: Option<u64>) {
    let path = if tenant.path.is_empty() {
        "/"
    } else {
        &tenant.path
    };
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if tenant.secure {
        c.push_str("; Secure");
    }
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Turn an interaction outcome into a response.
fn render(tenant: &Tenant, out: Outcome) -> Reply {
    let mut r = match out.step {
        Step::Redirect(location) => redirect(&location),
        Step::GoToLogin { rid } => {
            let mut url = tenant.endpoint("/login");
            url.push_str("?rid=");
            url.push_str(&rid);
            redirect(&url)
        }
        Step::Login(v) => {
            let action = tenant.endpoint("/login");
            let html = pages::login(&pages::LoginPage {
                tenant: &tenant.id,
                client_name: &v.client_name,
                action: &action,
                rid: &v.rid,
                csrf: &v.csrf,
                username: &v.username,
                error: v.error.as_deref(),
            });
            html_page(if out.unauthorized { 401 } else { 200 }, html)
        }
        Step::Consent(v) => {
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
        Step::ErrorPage(e) => {
            let html = pages::error(e.code.as_str(), &e.description);
            let status = match e.code.status() {
                s if s >= 500 => s,
                _ => 400,
            };
            html_page(status, html)
        }
    };
    let (binding_name, session_name) = cookie_names(tenant);
    if let Some(b) = out.set_binding {
        set_cookie(&mut r, tenant, &binding_name, &b, None);
    }
    if let Some(s) = out.set_session {
        set_cookie(
            &mut r,
            tenant,
            &session_name,
            &s,
            Some(tenant.lifetimes.session.as_secs()),
        );
    }
    r
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
