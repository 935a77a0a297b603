//! The authorization endpoint and the browser interaction behind it
//! (login, consent), ending in a redirect with a code (RFC 6749 §4.1,
//! OIDC Core §3.1.2, RFC 7636, RFC 9207).
//!
//! A pending request lives in the store, keyed by the hash of a random id
//! (`rid`) that travels in the login/consent forms; it is bound to the
//! browser that started it by the hash of a random binding cookie, and the
//! forms' CSRF token is derived from both, so neither a swapped `rid` nor a
//! cross-site POST can complete someone else's request.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::scope::{decide, default_decision, Decision, Scopes};
use super::{password, pkce, random_token, ErrorCode, OAuthError, Params};
use crate::config::GrantType;
use crate::store::{AuthRequestRow, CodeRow, SessionRow, Store, TokenHash};
use crate::tenant::{Client, Tenant, User};

/// How long a started sign-in may take.
pub const AUTH_REQUEST_TTL: i64 = 30 * 60;
/// Longest `state`, `nonce` or `login_hint` accepted.
pub const MAX_PARAM_LEN: usize = 2048;

/// Everything the protocol core needs of the world for one request.
pub struct Ctx<'a> {
    pub tenant: &'a Tenant,
    pub store: &'a Store,
    pub now: i64,
    pub request: RequestInfo<'a>,
}

/// Who is asking, as far as the edge can tell (plugin scripts see it as `ctx.request`).
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<&'a str>,
}

/// The browser's sesame cookies for this tenant.
#[derive(Debug, Default, Clone)]
pub struct BrowserCookies {
    /// Random value binding pending requests to this browser.
    pub binding: Option<String>,
    /// Session id (SSO).
    pub session: Option<String>,
}

/// What the browser should see next.
#[derive(Debug)]
pub enum Step {
    /// 303 to the client's (registered) redirect URI: a code or an error.
    Redirect(String),
    /// 303 to the login page of this pending request.
    GoToLogin { rid: String },
    /// Show the login form.
    Login(LoginView),
    /// Show the consent form.
    Consent(ConsentView),
    /// The client or its redirect URI can't be trusted (or the request is gone): an error page.
    ErrorPage(OAuthError),
}

#[derive(Debug)]
pub struct LoginView {
    pub rid: String,
    pub csrf: String,
    pub client_name: String,
    pub username: String,
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct ConsentView {
    pub rid: String,
    pub csrf: String,
    pub client_name: String,
    pub username: String,
    /// (scope, description)
    pub scopes: Vec<(String, String)>,
}

/// A step, and the cookies to change on the way.
#[derive(Debug)]
pub struct Outcome {
    pub step: Step,
    /// Set the binding cookie to this value.
    pub set_binding: Option<String>,
    /// Set the session cookie to this value.
    pub set_session: Option<String>,
    /// The status for a re-shown form (401 after a failed login).
    pub unauthorized: bool,
}

impl Outcome {
    fn step(step: Step) -> Outcome {
        Outcome {
            step,
            set_binding: None,
            set_session: None,
            unauthorized: false,
        }
    }
}

/// A validated authorization request, as stored while the user interacts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub client_id: String,
    pub redirect_uri: String,
    pub requested: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// SHA-256 (hex) of the binding cookie of the browser that started it.
    pub browser: String,
}

/// `GET|POST /authorize`.
pub async fn authorize(
    ctx: &Ctx<'_>,
    params: Result<Params, OAuthError>,
    cookies: &BrowserCookies,
) -> Outcome {
    let params = match params {
        Ok(p) => p,
        Err(e) => return Outcome::step(Step::ErrorPage(e)),
    };
    // Until the client and redirect URI are known good, errors stay on our page.
    let client = match params.get("client_id").and_then(|id| ctx.tenant.client(id)) {
        Some(c) => c.clone(),
        None => {
            let e = if params.get("client_id").is_none() {
                OAuthError::invalid_request("client_id is required")
            } else {
                OAuthError::new(ErrorCode::InvalidClient, "unknown client")
            };
            return Outcome::step(Step::ErrorPage(e));
        }
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_string(),
        Some(_) => {
            return Outcome::step(Step::ErrorPage(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            )))
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Outcome::step(Step::ErrorPage(OAuthError::invalid_request(
                "redirect_uri is required",
            )))
        }
    };
    let state = params.get("state").map(str::to_string);
    let fail = |e: OAuthError| back_to_client(ctx, &redirect_uri, state.as_deref(), e);
    if state.as_ref().is_some_and(|s| s.len() > MAX_PARAM_LEN) {
        return Outcome::step(Step::ErrorPage(OAuthError::invalid_request(
            "state is too long",
        )));
    }

    let mut cookies = cookies.clone();
    let mut set_binding = None;
    if cookies.binding.is_none() {
        let b = random_token();
        cookies.binding = Some(b.clone());
        set_binding = Some(b);
    }
    let pending = match validate(
        ctx.tenant,
        &client,
        &params,
        redirect_uri.clone(),
        cookies.binding.as_deref().unwrap_or(""),
    ) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let session = match current_session(ctx, &cookies).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut out = proceed(ctx, &client, pending, None, session, false, false).await;
    out.set_binding = set_binding;
    out
}

/// Check every parameter of an authorization request from a trusted client.
fn validate(
    tenant: &Tenant,
    client: &Client,
    params: &Params,
    redirect_uri: String,
    binding: &str,
) -> Result<Pending, OAuthError> {
    if params.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
    }
    if let Some(mode) = params.get("response_mode") {
        if mode != "query" {
            return Err(OAuthError::invalid_request(
                "only response_mode=query is supported",
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    let requested = match params.get("scope") {
        None => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope is required",
            ))
        }
        Some(s) => Scopes::parse(s)
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidScope, "scope is malformed"))?,
    };
    let decision = default_decision(tenant, client, &requested, GrantType::AuthorizationCode);
    if decision.granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "none of the requested scopes is available to this client",
        ));
    }
    for name in ["nonce", "login_hint"] {
        if params.get(name).is_some_and(|v| v.len() > MAX_PARAM_LEN) {
            return Err(OAuthError::invalid_request(format!("{name} is too long")));
        }
    }
    let code_challenge = pkce::validate_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
        client.require_pkce,
    )?;
    let prompt: Vec<String> = params
        .get("prompt")
        .map(|p| {
            p.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for p in &prompt {
        if !matches!(p.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(OAuthError::invalid_request(format!(
                "unsupported prompt value `{p}`"
            )));
        }
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age =
        match params.get("max_age") {
            None => None,
            Some(v) => Some(v.parse::<u32>().map(i64::from).map_err(|_| {
                OAuthError::invalid_request("max_age must be a non-negative integer")
            })?),
        };
    Ok(Pending {
        client_id: client.id.clone(),
        redirect_uri,
        requested: requested.to_string(),
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge_method: code_challenge.as_ref().map(|_| "S256".to_string()),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        browser: hex_sha256(binding),
    })
}

/// Decide the next step for a validated request. `rid` is set once the request is stored.
async fn proceed(
    ctx: &Ctx<'_>,
    client: &Client,
    pending: Pending,
    rid: Option<String>,
    session: Option<SessionRow>,
    just_logged_in: bool,
    consented: bool,
) -> Outcome {
    let fail =
        |e: OAuthError| back_to_client(ctx, &pending.redirect_uri, pending.state.as_deref(), e);
    let prompt_none = pending.prompt.iter().any(|p| p == "none");
    let user = session
        .as_ref()
        .and_then(|s| ctx.tenant.user_by_sub(&s.user_sub).map(|u| (s, u.clone())));
    let reauth = !just_logged_in
        && (pending
            .prompt
            .iter()
            .any(|p| p == "login" || p == "select_account")
            || match (&user, pending.max_age) {
                (Some((s, _)), Some(max_age)) => ctx.now - s.auth_time > max_age,
                _ => false,
            });
    let (session, user) = match user {
        Some((s, u)) if !reauth => (s.clone(), u),
        _ => {
            if prompt_none {
                return fail(OAuthError::new(
                    ErrorCode::LoginRequired,
                    "the user is not signed in",
                ));
            }
            return match store_pending(ctx, &pending, rid).await {
                Ok(rid) => Outcome::step(Step::GoToLogin { rid }),
                Err(e) => fail(e),
            };
        }
    };

    let requested = Scopes::parse(&pending.requested).unwrap_or_default();
    let decision = match policy_decision(ctx, client, Some(user.as_ref()), &requested) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if decision.granted.is_empty() {
        return fail(OAuthError::new(
            ErrorCode::InvalidScope,
            "no scope can be granted",
        ));
    }
    if !client.skip_consent && !consented {
        let previous = match ctx
            .store
            .find_consent(&ctx.tenant.id, &client.id, &user.sub)
            .await
        {
            Ok(p) => p.and_then(|s| Scopes::parse(&s)).unwrap_or_default(),
            Err(e) => return fail(e.into()),
        };
        let needed = pending.prompt.iter().any(|p| p == "consent")
            || !decision.granted.is_subset(&previous)
            || decision.granted.contains("offline_access");
        if needed {
            if prompt_none {
                return fail(OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "the user has not consented",
                ));
            }
            let binding_hash = pending.browser.clone();
            let rid = match store_pending(ctx, &pending, rid).await {
                Ok(rid) => rid,
                Err(e) => return fail(e),
            };
            let scopes = decision
                .granted
                .iter()
                .map(|s| {
                    let description = ctx
                        .tenant
                        .scopes
                        .get(s)
                        .map(|d| d.description.clone())
                        .unwrap_or_default();
                    (s.to_string(), description)
                })
                .collect();
            return Outcome::step(Step::Consent(ConsentView {
                csrf: csrf_token(&rid, &binding_hash),
                rid,
                client_name: client.name.clone(),
                username: user.username.clone(),
                scopes,
            }));
        }
    }

    // Issue the code.
    let code = random_token();
    let row = CodeRow {
        tenant_id: ctx.tenant.id.clone(),
        code_hash: TokenHash::of(&code),
        grant_id: random_token(),
        client_id: client.id.clone(),
        user_sub: user.sub.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        scope: decision.granted.to_string(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.clone(),
        code_challenge_method: pending.code_challenge_method.clone(),
        auth_time: session.auth_time,
        refresh_token: decision.refresh_token,
        created_at: ctx.now,
        expires_at: ctx.now + client.lifetimes.authorization_code.as_secs() as i64,
        consumed_at: None,
    };
    if let Err(e) = ctx.store.insert_code(row).await {
        return fail(e.into());
    }
    if let Some(rid) = rid {
        if let Err(e) = ctx
            .store
            .delete_auth_request(&ctx.tenant.id, TokenHash::of(&rid))
            .await
        {
            tracing::warn!(error = %e, "could not delete a finished authorization request");
        }
    }
    let mut url = match url::Url::parse(&pending.redirect_uri) {
        Ok(u) => u,
        Err(_) => return Outcome::step(Step::ErrorPage(OAuthError::server_error())),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = &pending.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &ctx.tenant.issuer);
    }
    Outcome::step(Step::Redirect(url.to_string()))
}

/// Store the pending request unless it already is; returns its `rid`.
async fn store_pending(
    ctx: &Ctx<'_>,
    pending: &Pending,
    rid: Option<String>,
) -> Result<String, OAuthError> {
    if let Some(rid) = rid {
        return Ok(rid);
    }
    let rid = random_token();
    let params = serde_json::to_string(pending).map_err(|_| OAuthError::server_error())?;
    ctx.store
        .insert_auth_request(AuthRequestRow {
            tenant_id: ctx.tenant.id.clone(),
            request_hash: TokenHash::of(&rid),
            client_id: pending.client_id.clone(),
            params,
            created_at: ctx.now,
            expires_at: ctx.now + AUTH_REQUEST_TTL,
        })
        .await?;
    Ok(rid)
}

/// Load a pending request and check it belongs to this browser.
async fn load_pending(
    ctx: &Ctx<'_>,
    rid: Option<&str>,
    cookies: &BrowserCookies,
) -> Result<(Pending, std::sync::Arc<Client>), OAuthError> {
    let expired = || {
        OAuthError::invalid_request(
            "this sign-in request has expired or is unknown; go back to the application and start again",
        )
    };
    let rid = rid.ok_or_else(expired)?;
    if rid.len() > 128 {
        return Err(expired());
    }
    let row = ctx
        .store
        .find_auth_request(&ctx.tenant.id, TokenHash::of(rid), ctx.now)
        .await?
        .ok_or_else(expired)?;
    let pending: Pending = serde_json::from_str(&row.params).map_err(|_| expired())?;
    let binding = cookies.binding.as_deref().unwrap_or("");
    let same_browser: bool = hex_sha256(binding)
        .as_bytes()
        .ct_eq(pending.browser.as_bytes())
        .into();
    if !same_browser {
        return Err(expired());
    }
    let client = ctx
        .tenant
        .client(&pending.client_id)
        .cloned()
        .ok_or_else(expired)?;
    // The configuration may have changed since: the redirect URI must still be registered.
    if !client
        .redirect_uris
        .iter()
        .any(|r| r == &pending.redirect_uri)
    {
        return Err(expired());
    }
    Ok((pending, client))
}

/// The pending request a form was submitted for, once its browser binding and CSRF token check out.
async fn submitted(
    ctx: &Ctx<'_>,
    form: &Params,
    cookies: &BrowserCookies,
) -> Result<(String, Pending, std::sync::Arc<Client>), OAuthError> {
    let rid = form.get("rid");
    let (pending, client) = load_pending(ctx, rid, cookies).await?;
    let rid = rid.unwrap_or_default().to_string();
    check_csrf(&rid, &pending, form.get("csrf"))?;
    Ok((rid, pending, client))
}

fn check_csrf(rid: &str, pending: &Pending, given: Option<&str>) -> Result<(), OAuthError> {
    let expected = csrf_token(rid, &pending.browser);
    let given = given.unwrap_or("");
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "the form has expired (CSRF check failed); start again",
        ))
    }
}

/// `GET /login?rid=…`: show the form.
pub async fn login_page(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
    let rid = params.get("rid");
    match load_pending(ctx, rid, cookies).await {
        Ok((pending, client)) => {
            let rid = rid.unwrap_or_default().to_string();
            Outcome::step(Step::Login(LoginView {
                csrf: csrf_token(&rid, &pending.browser),
                rid,
                client_name: client.name.clone(),
                username: pending.login_hint.clone().unwrap_or_default(),
                error: None,
            }))
        }
        Err(e) => Outcome::step(Step::ErrorPage(e)),
    }
}

/// `POST /login`: check the CSRF token and the password, start a session, go on.
/// Failures are throttled (see [`super::throttle`]): while the username or
/// the client's address `ip` is locked, the form comes back with a message
/// and the seconds to wait (answered 429 with `Retry-After`).
pub async fn login_submit(
    ctx: &Ctx<'_>,
    form: &Params,
    cookies: &BrowserCookies,
    ip: Option<std::net::IpAddr>,
) -> (Outcome, Option<u64>) {
    let (rid, pending, client) = match submitted(ctx, form, cookies).await {
        Ok(p) => p,
        Err(e) => return (Outcome::step(Step::ErrorPage(e)), None),
    };
    let username = form.get("username").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    let form_again = |error: String, unauthorized: bool| {
        let mut out = Outcome::step(Step::Login(LoginView {
            csrf: csrf_token(&rid, &pending.browser),
            rid: rid.clone(),
            client_name: client.name.clone(),
            username: username.chars().take(256).collect(),
            error: Some(error),
        }));
        out.unauthorized = unauthorized;
        out
    };
    let locked = |seconds: u64| {
        let message = format!(
            "Too many failed sign-in attempts. {}",
            super::throttle::try_again_in(seconds)
        );
        (form_again(message, false), Some(seconds))
    };
    let throttle = super::throttle::Throttle::login(ctx.tenant, ctx.store, ctx.now, username, ip);
    match throttle.check().await {
        Ok(None) => {}
        Ok(Some(seconds)) => return locked(seconds),
        Err(e) => return (Outcome::step(Step::ErrorPage(e)), None),
    }
    let user = ctx.tenant.user(username).cloned();
    // Unknown users cost the same as wrong passwords.
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| super::client_auth::DUMMY_PHC.to_string());
    let verified = password::verify_bounded(password.as_bytes().to_vec(), phc).await;
    let user = match user {
        Some(u) if verified && username.len() <= MAX_PARAM_LEN => u,
        _ => {
            tracing::info!(tenant = %ctx.tenant.id, "failed login");
            if let Some(seconds) = throttle.failed().await {
                return locked(seconds);
            }
            let out = form_again("Incorrect username or password.".to_string(), true);
            return (out, None);
        }
    };
    throttle.succeeded().await;

    if let Some(old) = cookies.session.as_deref() {
        if let Err(e) = ctx
            .store
            .revoke_session(&ctx.tenant.id, TokenHash::of(old), ctx.now)
            .await
        {
            tracing::warn!(error = %e, "could not end the previous session");
        }
    }
    let sid = random_token();
    let session = SessionRow {
        tenant_id: ctx.tenant.id.clone(),
        session_hash: TokenHash::of(&sid),
        sid: random_token(),
        user_sub: user.sub.clone(),
        auth_time: ctx.now,
        created_at: ctx.now,
        expires_at: ctx.now + ctx.tenant.lifetimes.session.as_secs() as i64,
        revoked_at: None,
    };
    if let Err(e) = ctx.store.insert_session(session.clone()).await {
        return (Outcome::step(Step::ErrorPage(e.into())), None);
    }
    tracing::info!(tenant = %ctx.tenant.id, sub = %user.sub, "signed in");
    let mut out = proceed(ctx, &client, pending, Some(rid), Some(session), true, false).await;
    out.set_session = Some(sid);
    (out, None)
}

/// `POST /consent`: allow → code, deny → `access_denied`.
pub async fn consent_submit(ctx: &Ctx<'_>, form: &Params, cookies: &BrowserCookies) -> Outcome {
    let (rid, pending, client) = match submitted(ctx, form, cookies).await {
        Ok(p) => p,
        Err(e) => return Outcome::step(Step::ErrorPage(e)),
    };
    let session = match current_session(ctx, cookies).await {
        Ok(Some(s)) => s,
        Ok(None) => return Outcome::step(Step::GoToLogin { rid }),
        Err(e) => return Outcome::step(Step::ErrorPage(e)),
    };
    let deny =
        |e: OAuthError| back_to_client(ctx, &pending.redirect_uri, pending.state.as_deref(), e);
    match form.get("decision") {
        Some("allow") => {}
        Some("deny") => {
            let _ = ctx
                .store
                .delete_auth_request(&ctx.tenant.id, TokenHash::of(&rid))
                .await;
            return deny(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied the request",
            ));
        }
        _ => {
            return Outcome::step(Step::ErrorPage(OAuthError::invalid_request(
                "decision must be allow or deny",
            )))
        }
    }
    let requested = Scopes::parse(&pending.requested).unwrap_or_default();
    let user = ctx.tenant.user_by_sub(&session.user_sub);
    let decision = match policy_decision(ctx, &client, user.map(|u| &**u), &requested) {
        Ok(d) => d,
        Err(e) => return deny(e),
    };
    let previous = match ctx
        .store
        .find_consent(&ctx.tenant.id, &client.id, &session.user_sub)
        .await
    {
        Ok(p) => p.and_then(|s| Scopes::parse(&s)).unwrap_or_default(),
        Err(e) => return deny(e.into()),
    };
    let remembered = previous
        .union(&decision.granted)
        .filter(|s| s != "offline_access");
    if let Err(e) = ctx
        .store
        .save_consent(
            &ctx.tenant.id,
            &client.id,
            &session.user_sub,
            &remembered.to_string(),
            ctx.now,
        )
        .await
    {
        return deny(e.into());
    }
    proceed(ctx, &client, pending, Some(rid), Some(session), true, true).await
}

/// The code flow's decision: the default, then the scope policies; a
/// `deny(reason)` is `access_denied` with that reason.
fn policy_decision(
    ctx: &Ctx<'_>,
    client: &Client,
    user: Option<&User>,
    requested: &Scopes,
) -> Result<Decision, OAuthError> {
    let grant = GrantType::AuthorizationCode;
    let default = default_decision(ctx.tenant, client, requested, grant);
    decide(ctx, client, user, requested, grant, default, None)
        .map_err(|e| OAuthError::from_plugin(e, Some(ErrorCode::AccessDenied)))
}

async fn current_session(
    ctx: &Ctx<'_>,
    cookies: &BrowserCookies,
) -> Result<Option<SessionRow>, OAuthError> {
    match cookies.session.as_deref() {
        Some(sid) if sid.len() <= 128 => Ok(ctx
            .store
            .find_session(&ctx.tenant.id, TokenHash::of(sid), ctx.now)
            .await?),
        _ => Ok(None),
    }
}

/// An error once the client and its redirect URI are trusted: back to the
/// client (RFC 6749 §4.1.2.1), except a database outage, which the user can
/// retry on our own 503 page.
fn back_to_client(
    ctx: &Ctx<'_>,
    redirect_uri: &str,
    state: Option<&str>,
    e: OAuthError,
) -> Outcome {
    if e.code == ErrorCode::TemporarilyUnavailable {
        return Outcome::step(Step::ErrorPage(e));
    }
    Outcome::step(Step::Redirect(error_redirect(
        redirect_uri,
        &e,
        state,
        &ctx.tenant.issuer,
    )))
}

/// RFC 6749 §4.1.2.1 error redirect, with `state` and `iss` (RFC 9207).
pub fn error_redirect(
    redirect_uri: &str,
    e: &OAuthError,
    state: Option<&str>,
    issuer: &str,
) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                q.append_pair("error", e.code.as_str());
                q.append_pair("error_description", &e.description);
                if let Some(s) = state {
                    q.append_pair("state", s);
                }
                q.append_pair("iss", issuer);
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

fn csrf_token(rid: &str, browser_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"sesame-csrf\0");
    h.update(rid.as_bytes());
    h.update([0]);
    h.update(browser_hash.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_redirect_keeps_existing_query_and_adds_state_and_iss() {
        let e = OAuthError::new(ErrorCode::AccessDenied, "no");
        let url = error_redirect(
            "https://app.example/cb?x=1",
            &e,
            Some("s t"),
            "https://id.example/t",
        );
        assert_eq!(
            url,
            "https://app.example/cb?x=1&error=access_denied&error_description=no&state=s+t&iss=https%3A%2F%2Fid.example%2Ft"
        );
    }

    #[test]
    fn csrf_token_depends_on_request_and_browser() {
        let a = csrf_token("rid1", "b1");
        assert_ne!(a, csrf_token("rid2", "b1"));
        assert_ne!(a, csrf_token("rid1", "b2"));
        assert_eq!(a, csrf_token("rid1", "b1"));
    }
}
