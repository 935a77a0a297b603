//! The core's pages as HTML: the values each template gets, in the page's
//! language, and what a page adds to its tenant's CSP. Templates, words,
//! brand and CSP are the tenant's ([`crate::ui::Ui`]); everything
//! interpolated is escaped by the template engine.

use std::borrow::Cow;

use minijinja::{context, Value};

use crate::oauth::outcome::{Notice, Page};
use crate::tenant::{Client, Tenant};
use crate::ui::{locale, PageCsp, FORM_POST_SCRIPT};

/// What a page needs to know of its request besides the core's view.
pub struct Facts<'a> {
    /// `ui_locales` of the request itself (a pending request's own win).
    pub ui_locales: Option<&'a str>,
    pub accept_language: Option<&'a str>,
    pub request_id: &'a str,
    /// The client the request names (for an error page's way back).
    pub client_id: Option<&'a str>,
}

/// The page's language: `ui_locales` (the pending request's, else the
/// request's), then `Accept-Language`, then the tenant's default.
pub fn language(tenant: &Tenant, view: Option<&str>, facts: &Facts) -> &'static str {
    locale::negotiate(
        view.or(facts.ui_locales),
        facts.accept_language,
        tenant.ui.default_locale,
    )
}

/// The words for why the sign-in form came back.
pub fn notice(n: Notice, by_email: bool, lang: &str) -> String {
    match n {
        Notice::BadCredentials if by_email => {
            locale::text(lang, "signin.bad_credentials_email").to_string()
        }
        Notice::BadCredentials => locale::text(lang, "signin.bad_credentials").to_string(),
        Notice::Locked { retry_after } => format!(
            "{} {}",
            locale::text(lang, "signin.locked"),
            try_again_in(retry_after, lang)
        ),
    }
}

/// "Try again in 3 minutes." in `lang`.
pub fn try_again_in(seconds: u64, lang: &str) -> String {
    let (key, n) = match seconds {
        0..=1 => ("retry.second", 1),
        2..=59 => ("retry.seconds", seconds),
        60..=119 => ("retry.minute", 1),
        _ => ("retry.minutes", seconds.div_ceil(60)),
    };
    locale::text(lang, key).replace("{n}", &n.to_string())
}

/// What the templates see of a client.
fn client_value(tenant: &Tenant, id: &str, name: &str) -> Value {
    let c = tenant.client(id);
    let uri = |f: fn(&Client) -> &Option<String>| c.and_then(|c| f(c).clone());
    context! {
        name => name,
        logo => uri(|c| &c.logo_uri),
        uri => uri(|c| &c.client_uri),
        policy => uri(|c| &c.policy_uri),
        tos => uri(|c| &c.tos_uri),
    }
}

/// A scope's words: the tenant's description, else the catalogue's, else its name.
fn scope_value(tenant: &Tenant, name: &str, lang: &str) -> Value {
    let default = tenant.ui.default_locale;
    let described = tenant
        .scopes
        .get(name)
        .map(|s| &s.description)
        .filter(|d| !d.is_empty());
    let title_key = format!("scope.{name}.title");
    let (title, description) = match described {
        Some(d) => (d.get(lang, default).to_string(), None),
        None if locale::has(&title_key) => (
            locale::text(lang, &title_key).to_string(),
            Some(locale::text(lang, &format!("scope.{name}.description")).to_string()),
        ),
        None => (name.to_string(), None),
    };
    context! { name => name, title => title, description => description }
}

/// "Use another account": the sign-in form of the same request.
fn other_account(tenant: &Tenant, rid: &str) -> String {
    format!("{}?rid={rid}&other=1", tenant.endpoint("/login"))
}

/// The values of a form asked of a signed-in user for a pending request.
fn signed_in_form(
    tenant: &Tenant,
    endpoint: &str,
    rid: &str,
    csrf: &str,
    username: &str,
    client_id: &str,
    client_name: &str,
) -> Value {
    context! {
        action => tenant.endpoint(endpoint),
        rid => rid,
        csrf => csrf,
        username => username,
        client => client_value(tenant, client_id, client_name),
        other_account => other_account(tenant, rid),
    }
}

/// The HTML of `page`.
/// What `page` adds to the tenant's CSP: the signed-out page frames its
/// front-channel logout URLs.
pub fn render(tenant: &Tenant, page: &Page, facts: &Facts) -> String {
    let ui = &tenant.ui;
    match page {
        Page::Login(v) => {
            let lang = language(tenant, v.ui_locales.as_deref(), facts);
            let by_email = tenant.login_by_email;
            let ctx = context! {
                action => tenant.endpoint("/login"),
                rid => &v.rid,
                csrf => &v.csrf,
                username => &v.username,
                client => client_value(tenant, &v.client_id, &v.client_name),
                notice => v.notice.map(|n| notice(n, by_email, lang)),
                by_email => by_email,
                ui_locales => &v.ui_locales,
            };
            ui.render("login.html", lang, ctx)
        }
        Page::AccountChooser(v) => {
            let lang = language(tenant, v.ui_locales.as_deref(), facts);
            let ctx = signed_in_form(
                tenant,
                "/login",
                &v.rid,
                &v.csrf,
                &v.username,
                &v.client_id,
                &v.client_name,
            );
            ui.render("chooser.html", lang, ctx)
        }
        Page::Consent(v) => {
            let lang = language(tenant, v.ui_locales.as_deref(), facts);
            let scopes: Vec<Value> = v
                .scopes
                .iter()
                .map(|s| scope_value(tenant, s, lang))
                .collect();
            let form = signed_in_form(
                tenant,
                "/consent",
                &v.rid,
                &v.csrf,
                &v.username,
                &v.client_id,
                &v.client_name,
            );
            ui.render("consent.html", lang, context! { scopes => scopes, ..form })
        }
        Page::LogoutConfirm(v) => {
            let lang = language(tenant, None, facts);
            let fields: Vec<(&str, &str)> = [
                ("client_id", v.client_id.as_deref()),
                (
                    "post_logout_redirect_uri",
                    v.post_logout_redirect_uri.as_deref(),
                ),
                ("state", v.state.as_deref()),
                ("ui_locales", facts.ui_locales),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let client = match (&v.client_id, &v.client_name) {
                (Some(id), Some(name)) => Some(client_value(tenant, id, name)),
                _ => None,
            };
            let ctx = context! {
                action => tenant.endpoint("/logout"),
                csrf => &v.csrf,
                client => client,
                fields => fields,
            };
            ui.render("logout.html", lang, ctx)
        }
        Page::SignedOut(v) => {
            let lang = language(tenant, None, facts);
            let client = v
                .client_id
                .as_deref()
                .and_then(|id| tenant.client(id))
                .map(|c| client_value(tenant, &c.id, &c.name));
            let ctx = context! {
                client => client,
                frontchannel => &v.frontchannel,
                continue_to => &v.continue_to,
            };
            ui.render("signed_out.html", lang, ctx)
        }
        Page::Error(v) => {
            let lang = language(tenant, None, facts);
            // A way back: the named client's home page, when it has one.
            let back = facts
                .client_id
                .and_then(|id| tenant.client(id))
                .filter(|c| c.client_uri.is_some())
                .map(|c| client_value(tenant, &c.id, &c.name));
            let ctx = context! {
                problem => v.problem.key(),
                code => v.error.code.as_str(),
                description => &v.error.description,
                request_id => facts.request_id,
                back => back,
            };
            ui.render("error.html", lang, ctx)
        }
        Page::FormPost(v) => {
            let lang = language(tenant, v.ui_locales.as_deref(), facts);
            let name = tenant
                .client(&v.client_id)
                .map_or(v.client_id.as_str(), |c| c.name.as_str());
            let ctx = context! {
                action => &v.action,
                fields => &v.fields,
                client => client_value(tenant, &v.client_id, name),
                script => Value::from_safe_string(FORM_POST_SCRIPT.to_string()),
            };
            ui.render("form_post.html", lang, ctx)
        }
    }
}

/// The Content-Security-Policy of `page`: its tenant's, and for the form
/// post page its script (by hash) and a form posting to the client.
pub fn csp<'t>(tenant: &'t Tenant, page: &Page) -> Cow<'t, str> {
    match page {
        Page::FormPost(v) => Cow::Owned(tenant.ui.csp_with(&PageCsp {
            script_hashes: vec![tenant.ui.form_post_script_hash.clone()],
            form_action: vec![v.action.clone()],
            frame_src: Vec::new(),
        })),
        // Front-channel logout: exactly the frames of the session's clients.
        Page::SignedOut(v) if !v.frontchannel.is_empty() => {
            Cow::Owned(tenant.ui.csp_with(&PageCsp {
                frame_src: v.frontchannel.clone(),
                ..PageCsp::default()
            }))
        }
        _ => Cow::Borrowed(&tenant.ui.csp),
    }
}

pub use crate::ui::escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn retry_messages_in_both_languages() {
        assert_eq!(try_again_in(30, "en"), "Try again in 30 seconds.");
        assert_eq!(try_again_in(61, "en"), "Try again in a minute.");
        assert_eq!(try_again_in(900, "en"), "Try again in 15 minutes.");
        assert_eq!(try_again_in(900, "fr"), "Réessayez dans 15 minutes.");
        assert!(notice(Notice::Locked { retry_after: 1 }, false, "fr").ends_with("une seconde."));
        assert!(notice(Notice::BadCredentials, false, "en")
            .starts_with("Incorrect username or password."));
    }
}
