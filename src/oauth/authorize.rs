//! The authorization endpoint (RFC 6749 §4.1, OIDC Core §3.1.2, RFC 7636,
//! RFC 9207): validate the request, then move it along — to sign-in
//! ([`super::login`]), to consent ([`super::consent`]), or to the client's
//! redirect URI with a code or an error. A request waiting for the user is a
//! [`Pending`] request ([`super::pending`]).

use serde::{Deserialize, Serialize};

use super::hook;
use super::outcome::{ConsentView, FormPostView, Outcome, Page, Problem};
use super::par;
use super::pending::{self, hex_sha256, Pending};
use super::scope::{decide, default_decision, Decision, Scopes};
use super::session::{self, BrowserCookies};
use super::{pkce, random_token, Ctx, ErrorCode, OAuthError, Params};
use crate::config::GrantType;
use crate::plugin::{Consent, Hook};
use crate::store::{CodeRow, SessionRow, TokenHash};
use crate::tenant::{Client, Tenant, User};

/// Longest `state`, `nonce` or `login_hint` accepted.
pub const MAX_PARAM_LEN: usize = 2048;

/// A validated request on its way, and how far the user has come with it.
pub(super) struct Interaction<'c> {
    pub client: &'c Client,
    pub pending: Pending,
    /// Set once the request is stored.
    pub rid: Option<String>,
    pub session: Option<SessionRow>,
    pub stage: Stage,
}

/// How far the user has come with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Just arrived at `/authorize`.
    Arrived,
    /// Signed in for this request (no re-authentication asked again).
    SignedIn,
    /// Signed in and consented.
    Consented,
}

/// How the authorization response reaches the client (`response_mode`,
/// OAuth 2.0 Multiple Response Type Encoding Practices §2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// In the redirect URI's query (the default for `code`).
    #[default]
    Query,
    /// Posted by the browser from an auto-submitting form (OAuth 2.0 Form
    /// Post Response Mode).
    FormPost,
}

/// The request's `response_mode`. `fragment` is refused: a code in a
/// fragment reaches only the browser's script, never the client's server.
pub(super) fn response_mode(params: &Params) -> Result<ResponseMode, OAuthError> {
    match params.get("response_mode") {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some("fragment") => Err(OAuthError::invalid_request(
            "response_mode=fragment is not supported for response_type=code; use query or form_post",
        )),
        Some(_) => Err(OAuthError::invalid_request(
            "response_mode must be query or form_post",
        )),
    }
}

/// Why a client that must push its requests was refused a plain one.
pub const PUSH_REQUIRED: &str = "this client must use pushed authorization requests (RFC 9126)";

/// `GET|POST /authorize`.
pub async fn authorize(ctx: &Ctx<'_>, params: &Params, cookies: &BrowserCookies) -> Outcome {
    // A pushed request (RFC 9126 §4): its parameters, and only those, count.
    let taken;
    let (params, pushed) = match params.get("request_uri") {
        None => (params, false),
        Some(uri) => {
            let Some(client_id) = params.get("client_id") else {
                return Outcome::error_page(OAuthError::invalid_request("client_id is required"));
            };
            match par::take(ctx, client_id, uri).await {
                Ok(p) => {
                    taken = p;
                    (&taken, true)
                }
                Err(e) if e.code == ErrorCode::InvalidRequestUri => {
                    return Outcome::problem(Problem::RequestExpired, e)
                }
                Err(e) => return Outcome::error_page(e),
            }
        }
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
            return Outcome::error_page(e);
        }
    };
    // A signed request object is the request (RFC 9101 §5). Its errors stay
    // on our page: nothing in an object that didn't verify is trusted.
    let unpacked;
    let params = match super::request_object::unpack(ctx, &client, params).await {
        Ok(Some(p)) => {
            // A proof at /par bound the pushed request's code to its key
            // (RFC 9449 §10.1): the binding stands beside the object's own.
            unpacked = match (pushed, params.get("dpop_jkt"), p.get("dpop_jkt")) {
                (true, Some(jkt), None) => p.with("dpop_jkt", jkt),
                _ => p,
            };
            &unpacked
        }
        Ok(None) => params,
        Err(e) => return Outcome::error_page(e),
    };
    let redirect_uri = match redirect_uri(&client, params) {
        Ok(uri) => uri,
        Err(e) if params.get("redirect_uri").is_some() => {
            return Outcome::problem(Problem::UnregisteredRedirectUri, e)
        }
        Err(e) => return Outcome::error_page(e),
    };
    let state = params.get("state");
    let reply_to = ReplyTo {
        client_id: &client.id,
        redirect_uri: &redirect_uri,
        state,
        // An unknown response_mode is refused (by `validate`) the default way.
        mode: response_mode(params).unwrap_or_default(),
        ui_locales: params.get("ui_locales"),
    };
    let fail = |e: OAuthError| back_to_client(ctx, &reply_to, e);
    if state.is_some_and(|s| s.len() > MAX_PARAM_LEN) {
        return Outcome::error_page(OAuthError::invalid_request("state is too long"));
    }
    if client.require_pushed_authorization_requests && !pushed {
        return fail(OAuthError::invalid_request(PUSH_REQUIRED));
    }

    let (binding, set_binding) = cookies.binding();
    let pending = match validate(ctx.tenant, &client, params, redirect_uri.clone(), &binding) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let session = match session::current(ctx, cookies).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let step = Interaction {
        client: &client,
        pending,
        rid: None,
        session,
        stage: Stage::Arrived,
    };
    proceed(ctx, step).await.with(set_binding)
}

/// The request's `redirect_uri` if it is registered for `client` (exactly),
/// or the client's only one when the request names none.
pub(super) fn redirect_uri(client: &Client, params: &Params) -> Result<String, OAuthError> {
    match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => Ok(uri.to_string()),
        Some(_) => Err(OAuthError::invalid_request(
            "redirect_uri is not registered for this client",
        )),
        None if client.redirect_uris.len() == 1 => Ok(client.redirect_uris[0].clone()),
        None => Err(OAuthError::invalid_request("redirect_uri is required")),
    }
}

/// Check every parameter of an authorization request from a trusted client.
pub(super) fn validate(
    tenant: &Tenant,
    client: &Client,
    params: &Params,
    redirect_uri: String,
    binding: &str,
) -> Result<Pending, OAuthError> {
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
    let response_mode = response_mode(params)?;
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
    let resource = super::grant::resources(tenant, params.get("resource"))?;
    let dpop_jkt = match params.get("dpop_jkt") {
        Some(j) if !super::dpop::is_thumbprint(j) => {
            return Err(OAuthError::invalid_request(
                "dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters)",
            ))
        }
        j => j.map(str::to_string),
    };
    for name in ["nonce", "login_hint", "ui_locales"] {
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
            return Err(OAuthError::invalid_request(
                "prompt must be none, login, consent or select_account",
            ));
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
        redirect_uri_sent: params.get("redirect_uri").is_some(),
        redirect_uri,
        requested: requested.to_string(),
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge_method: code_challenge.as_ref().map(|_| "S256".to_string()),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        ui_locales: params.get("ui_locales").map(str::to_string),
        resource,
        dpop_jkt,
        response_mode,
        browser: hex_sha256(binding),
    })
}

/// Decide the next step for a validated request.
pub(super) async fn proceed(ctx: &Ctx<'_>, step: Interaction<'_>) -> Outcome {
    let Interaction {
        client,
        pending,
        rid,
        session,
        stage,
    } = step;
    let fail = |e: OAuthError| back_to_client(ctx, &pending.reply_to(), e);
    let prompt_none = pending.prompts("none");
    let just_logged_in = stage != Stage::Arrived;
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
            return match pending::store(ctx, &pending, rid).await {
                Ok(rid) => go_to_login(ctx, &rid),
                Err(e) => fail(e),
            };
        }
    };

    let requested = Scopes::parse(&pending.requested).unwrap_or_default();
    let decision = match policy_decision(ctx, client, Some(user.as_ref()), &requested).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if decision.granted.is_empty() {
        return fail(OAuthError::new(
            ErrorCode::InvalidScope,
            "no scope can be granted",
        ));
    }
    if stage != Stage::Consented {
        let consent = match consent_decision(ctx, client, &user, &requested, &decision).await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let needed = match consent {
            (Consent::Skip, _) => false,
            (Consent::Require, _) => true,
            (Consent::Remember, previous) => {
                pending.prompts("consent")
                    || !decision.granted.is_subset(&previous)
                    || decision.granted.contains("offline_access")
            }
        };
        if needed {
            if prompt_none {
                return fail(OAuthError::new(
                    ErrorCode::ConsentRequired,
                    "the user has not consented",
                ));
            }
            let rid = match pending::store(ctx, &pending, rid).await {
                Ok(rid) => rid,
                Err(e) => return fail(e),
            };
            return Outcome::page(Page::Consent(ConsentView {
                csrf: pending.csrf(&ctx.services.csrf_key, &rid, Some(&session)),
                rid,
                client_id: client.id.clone(),
                client_name: client.name.clone(),
                username: user.username.clone(),
                scopes: decision.granted.iter().map(str::to_string).collect(),
                ui_locales: pending.ui_locales.clone(),
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
        redirect_uri_sent: pending.redirect_uri_sent,
        generation: ctx.tenant.generation.clone(),
        scope: decision.granted.to_string(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.clone(),
        code_challenge_method: pending.code_challenge_method.clone(),
        auth_time: session.auth_time,
        refresh_token: decision.refresh_token,
        created_at: ctx.now,
        expires_at: ctx.now + client.lifetimes.authorization_code.as_secs() as i64,
        consumed_at: None,
        resource: pending.resource.clone(),
        dpop_jkt: pending.dpop_jkt.clone(),
        sid: Some(session.sid.clone()),
    };
    if let Err(e) = ctx.store.insert_code(row).await {
        return fail(e.into());
    }
    if let Some(rid) = rid {
        pending::finish(ctx, &rid).await;
    }
    let reply_to = pending.reply_to();
    deliver(ctx, &reply_to, vec![("code", code)])
}

/// Whether to ask the user: `skip` for a client with `skip_consent`,
/// `remember` otherwise, then the `consent_policy` scripts; with the scopes
/// the user consented to before (looked up unless nothing needs them).
async fn consent_decision(
    ctx: &Ctx<'_>,
    client: &Client,
    user: &User,
    requested: &Scopes,
    decision: &Decision,
) -> Result<(Consent, Scopes), OAuthError> {
    let grant = Some(GrantType::AuthorizationCode);
    let hooks = ctx.hooks(client, Some(user), requested, &decision.granted, grant);
    let start = if client.skip_consent {
        Consent::Skip
    } else {
        Consent::Remember
    };
    if start == Consent::Skip && !hooks.wants(Hook::ConsentPolicy) {
        return Ok((start, Scopes::default()));
    }
    let previous = ctx
        .store
        .find_consent(&ctx.tenant.id, &client.id, &user.sub)
        .await?
        .and_then(|s| Scopes::parse(&s))
        .unwrap_or_default();
    let consent = hook::consent(ctx, &hooks, start, previous.as_vec())
        .await
        .map_err(|e| OAuthError::from_plugin(e, None))?;
    Ok((consent, previous))
}

/// To the sign-in page of a stored request.
pub(super) fn go_to_login(ctx: &Ctx<'_>, rid: &str) -> Outcome {
    let mut url = ctx.tenant.endpoint("/login");
    url.push_str("?rid=");
    url.push_str(rid);
    Outcome::redirect(url)
}

/// The code flow's decision: the default, then the scope policies; a
/// `deny(reason)` is `access_denied` with that reason.
pub(super) async fn policy_decision(
    ctx: &Ctx<'_>,
    client: &Client,
    user: Option<&User>,
    requested: &Scopes,
) -> Result<Decision, OAuthError> {
    let grant = GrantType::AuthorizationCode;
    let default = default_decision(ctx.tenant, client, requested, grant);
    decide(ctx, client, user, requested, grant, default, None)
        .await
        .map_err(|e| OAuthError::from_plugin(e, Some(ErrorCode::AccessDenied)))
}

/// Where and how a trusted request's answer goes back to its client.
pub(super) struct ReplyTo<'a> {
    pub client_id: &'a str,
    /// Registered for the client (already checked).
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
    pub mode: ResponseMode,
    /// The languages of the page that posts the answer.
    pub ui_locales: Option<&'a str>,
}

impl Pending {
    /// Where this request's answer goes.
    pub(super) fn reply_to(&self) -> ReplyTo<'_> {
        ReplyTo {
            client_id: &self.client_id,
            redirect_uri: &self.redirect_uri,
            state: self.state.as_deref(),
            mode: self.response_mode,
            ui_locales: self.ui_locales.as_deref(),
        }
    }
}

/// An error once the client and its redirect URI are trusted: back to the
/// client (RFC 6749 §4.1.2.1), except a database outage, which the user can
/// retry on our own 503 page.
pub(super) fn back_to_client(ctx: &Ctx<'_>, to: &ReplyTo<'_>, e: OAuthError) -> Outcome {
    if e.code == ErrorCode::TemporarilyUnavailable {
        return Outcome::error_page(e);
    }
    let fields = vec![
        ("error", e.code.as_str().to_string()),
        ("error_description", e.description.clone()),
    ];
    deliver(ctx, to, fields)
}

/// An authorization response (RFC 6749 §4.1.2, §4.1.2.1): `fields`, then
/// `state` and `iss` (RFC 9207), in the redirect URI's query or posted to
/// it by the browser (`response_mode=form_post`).
fn deliver(ctx: &Ctx<'_>, to: &ReplyTo<'_>, fields: Vec<(&str, String)>) -> Outcome {
    let mut fields: Vec<(String, String)> = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if let Some(s) = to.state {
        fields.push(("state".into(), s.to_string()));
    }
    fields.push(("iss".into(), ctx.tenant.issuer.clone()));
    match to.mode {
        ResponseMode::Query => match with_query(to.redirect_uri, &fields) {
            Some(url) => Outcome::redirect(url),
            None => Outcome::error_page(OAuthError::server_error()),
        },
        ResponseMode::FormPost => Outcome::page(Page::FormPost(FormPostView {
            action: to.redirect_uri.to_string(),
            fields,
            client_id: to.client_id.to_string(),
            ui_locales: to.ui_locales.map(str::to_string),
        })),
    }
}

/// `uri` with `fields` added to its query (what it has is kept).
fn with_query(uri: &str, fields: &[(String, String)]) -> Option<String> {
    let mut u = url::Url::parse(uri).ok()?;
    u.query_pairs_mut().extend_pairs(fields);
    Some(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_response_keeps_the_redirect_uris_own_query() {
        let fields = [
            ("error", "access_denied"),
            ("state", "s t"),
            ("iss", "https://id.example/t"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(
            with_query("https://app.example/cb?x=1", &fields).as_deref(),
            Some("https://app.example/cb?x=1&error=access_denied&state=s+t&iss=https%3A%2F%2Fid.example%2Ft")
        );
    }

    #[test]
    fn response_mode_is_query_or_form_post() {
        let mode = |v: Option<&str>| {
            let pairs = v.map(|v| ("response_mode".to_string(), v.to_string()));
            response_mode(&Params::from_pairs(pairs.into_iter().collect()).unwrap())
        };
        assert_eq!(mode(None).unwrap(), ResponseMode::Query);
        assert_eq!(mode(Some("query")).unwrap(), ResponseMode::Query);
        assert_eq!(mode(Some("form_post")).unwrap(), ResponseMode::FormPost);
        for refused in ["fragment", "bogus", "FORM_POST"] {
            let e = mode(Some(refused)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{refused}");
        }
        assert!(mode(Some("fragment"))
            .unwrap_err()
            .description
            .contains("fragment"));
    }
}
