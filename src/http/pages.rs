//! Server-rendered HTML pages: login, consent, error, signed out.
//!
//! No JavaScript, no external assets, no `style=` attributes. Every page
//! embeds the same inline [`STYLE`] block, so one CSP hash covers them all.
//! Every interpolated value goes through [`escape`].

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::oauth::outcome::Notice;

/// The one inline stylesheet (its sha256 is allowed by the CSP).
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f3f4f6;--card:#fff;--fg:#111827;--muted:#4b5563;\
--border:#d1d5db;--accent:#1d4ed8;--accent-fg:#fff;--focus:#2563eb;--err-bg:#fef2f2;\
--err-fg:#991b1b;--err-border:#fca5a5}\
@media (prefers-color-scheme:dark){:root{--bg:#0f172a;--card:#1e293b;--fg:#f1f5f9;\
--muted:#cbd5e1;--border:#475569;--accent:#93c5fd;--accent-fg:#0f172a;--focus:#bfdbfe;\
--err-bg:#450a0a;--err-fg:#fecaca;--err-border:#b91c1c}}\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;\
justify-content:center;padding:1rem;background:var(--bg);color:var(--fg);\
font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\
main{width:100%;max-width:24rem;background:var(--card);border:1px solid var(--border);\
border-radius:.75rem;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}\
h1{font-size:1.375rem;margin:0 0 .25rem}\
p{margin:0 0 1rem;color:var(--muted)}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}\
input{width:100%;padding:.6rem .75rem;font:inherit;color:var(--fg);background:var(--card);\
border:1px solid var(--border);border-radius:.375rem}\
button{width:100%;margin-top:1.5rem;padding:.65rem;font:inherit;font-weight:600;\
cursor:pointer;border-radius:.375rem;border:1px solid var(--accent);\
background:var(--accent);color:var(--accent-fg)}\
button.secondary{background:transparent;color:var(--fg);border-color:var(--border)}\
.actions{display:flex;gap:.75rem}.actions button{margin-top:1rem}\
input:focus-visible,button:focus-visible{outline:3px solid var(--focus);outline-offset:2px}\
[role=alert]{margin:1rem 0 0;padding:.75rem;border-radius:.375rem;background:var(--err-bg);\
color:var(--err-fg);border:1px solid var(--err-border)}\
ul{list-style:none;padding:0;margin:1rem 0}\
li{padding:.5rem 0;border-top:1px solid var(--border)}li:first-child{border-top:0}\
code{font-weight:600;color:var(--fg)}li span{display:block;color:var(--muted)}\
footer{margin-top:1rem;font-size:.8125rem;color:var(--muted)}";

/// Values for the login page.
pub struct LoginPage<'a> {
    pub tenant: &'a str,
    pub client_name: &'a str,
    pub action: &'a str,
    pub rid: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// Values for the consent page.
pub struct ConsentPage<'a> {
    pub tenant: &'a str,
    pub client_name: &'a str,
    pub action: &'a str,
    pub rid: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    pub scopes: &'a [(&'a str, &'a str)],
}

/// The words for why the sign-in form came back.
pub fn notice(n: Notice) -> String {
    match n {
        Notice::BadCredentials => "Incorrect username or password.".to_string(),
        Notice::Locked { retry_after } => format!(
            "Too many failed sign-in attempts. {}",
            try_again_in(retry_after)
        ),
    }
}

/// "Try again in 3 minutes." for the sign-in page.
pub fn try_again_in(seconds: u64) -> String {
    match seconds {
        0..=1 => "Try again in a second.".to_string(),
        2..=59 => format!("Try again in {seconds} seconds."),
        60..=119 => "Try again in a minute.".to_string(),
        _ => format!("Try again in {} minutes.", seconds.div_ceil(60)),
    }
}

/// HTML-escapes `& < > " '`, safe in text and in quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Content-Security-Policy for every page rendered here.
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

/// Wraps `body` in the shared document shell; `tenant` goes in the footer.
fn document(title: &str, tenant: Option<&str>, body: &str) -> String {
    let footer = tenant
        .filter(|t| !t.is_empty())
        .map(|t| format!("<footer>{}</footer>", escape(t)))
        .unwrap_or_default();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head>\
         <body><main>{body}</main>{footer}</body></html>\n",
        escape(title)
    )
}

fn hidden(out: &mut String, name: &str, value: &str) {
    let _ = write!(
        out,
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    );
}

/// The sign-in form (`username`, `password`, hidden `rid` and `csrf`).
pub fn login(p: &LoginPage) -> String {
    let mut b = format!(
        "<h1>Sign in</h1><p>Sign in to continue to {}</p>",
        escape(p.client_name)
    );
    if let Some(err) = p.error {
        let _ = write!(b, "<div role=\"alert\">{}</div>", escape(err));
    }
    let _ = write!(b, "<form method=\"post\" action=\"{}\">", escape(p.action));
    hidden(&mut b, "rid", p.rid);
    hidden(&mut b, "csrf", p.csrf);
    let _ = write!(
        b,
        "<label for=\"username\">Username</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" \
         autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" \
         autofocus required>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"password\" \
         autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        escape(p.username)
    );
    document("Sign in", Some(p.tenant), &b)
}

/// The consent form: every requested scope, then Allow / Deny.
pub fn consent(p: &ConsentPage) -> String {
    let client = escape(p.client_name);
    let mut b = format!(
        "<h1>Allow access?</h1><p>Signed in as {}</p>\
         <p><strong>{client}</strong> would like to:</p><ul>",
        escape(p.username)
    );
    for (name, description) in p.scopes {
        let _ = write!(
            b,
            "<li><code>{}</code><span>{}</span></li>",
            escape(name),
            escape(description)
        );
    }
    let _ = write!(
        b,
        "</ul><form method=\"post\" action=\"{}\">",
        escape(p.action)
    );
    hidden(&mut b, "rid", p.rid);
    hidden(&mut b, "csrf", p.csrf);
    b.push_str(
        "<div class=\"actions\">\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         </div></form>",
    );
    document(
        &format!("Allow access to {}?", p.client_name),
        Some(p.tenant),
        &b,
    )
}

/// An error page with no links anywhere.
pub fn error(title: &str, message: &str) -> String {
    let body = format!(
        "<h1>{}</h1><div role=\"alert\">{}</div>",
        escape(title),
        escape(message)
    );
    document(title, None, &body)
}

/// "Sign out?": the fields of a logout request posted back with a CSRF token.
pub struct LogoutConfirmPage<'a> {
    pub tenant: &'a str,
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// Asked before a logout that no application vouched for.
pub fn logout_confirm(p: &LogoutConfirmPage) -> String {
    let mut b = String::from("<h1>Sign out?</h1>");
    match p.client_name {
        Some(name) => {
            let _ = write!(
                b,
                "<p><strong>{}</strong> asks to sign you out.</p>",
                escape(name)
            );
        }
        None => b.push_str("<p>Do you want to sign out?</p>"),
    }
    let _ = write!(b, "<form method=\"post\" action=\"{}\">", escape(p.action));
    hidden(&mut b, "csrf", p.csrf);
    for (name, value) in [
        ("client_id", p.client_id),
        ("post_logout_redirect_uri", p.post_logout_redirect_uri),
        ("state", p.state),
    ] {
        if let Some(v) = value {
            hidden(&mut b, name, v);
        }
    }
    b.push_str(
        "<button type=\"submit\">Sign out</button></form>\
         <p>To stay signed in, close this page.</p>",
    );
    document("Sign out?", Some(p.tenant), &b)
}

/// Shown after logout when there is no `post_logout_redirect_uri`.
pub fn signed_out(tenant: &str) -> String {
    let body = "<h1>Signed out</h1><p>You are signed out.</p>";
    document("Signed out", Some(tenant), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(try_again_in(30), "Try again in 30 seconds.");
        assert_eq!(try_again_in(61), "Try again in a minute.");
        assert_eq!(try_again_in(900), "Try again in 15 minutes.");
    }

    const SCOPES: &[(&str, &str)] = &[
        ("openid", "Confirm your identity"),
        ("email", "See your email address"),
        ("profile", "See your <name> & \"picture\""),
    ];

    fn login_page(error: Option<&str>) -> String {
        login(&LoginPage {
            tenant: "acme",
            client_name: "Evil <script>alert(1)</script>",
            action: "https://id.example.com/acme/login?a=1&b=\"2\"",
            rid: "rid-123",
            csrf: "csrf-456",
            username: "alice\"><img src=x onerror=alert(1)>",
            error,
        })
    }

    fn consent_page() -> String {
        consent(&ConsentPage {
            tenant: "acme",
            client_name: "Photos",
            action: "https://id.example.com/acme/consent",
            rid: "rid-123",
            csrf: "csrf-456",
            username: "alice",
            scopes: SCOPES,
        })
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn attribute_values_are_escaped() {
        let html = login_page(None);
        assert!(html.contains("value=\"alice&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""));
        assert!(
            html.contains("action=\"https://id.example.com/acme/login?a=1&amp;b=&quot;2&quot;\"")
        );
        assert!(html.contains("Evil &lt;script&gt;"));
        assert!(!html.contains("<img"));
    }

    #[test]
    fn login_form_has_fields_and_hidden_values() {
        let html = login_page(Some("Incorrect username or password."));
        assert!(html.contains("<form method=\"post\" action=\"https://id.example.com/acme/login"));
        assert!(html.contains("<input type=\"hidden\" name=\"rid\" value=\"rid-123\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-456\">"));
        assert!(html.contains("name=\"username\""));
        assert!(html.contains("autocomplete=\"username\""));
        assert!(html.contains("type=\"password\" id=\"password\" name=\"password\""));
        assert!(html.contains("autocomplete=\"current-password\""));
        assert!(
            html.contains("<label for=\"username\">") && html.contains("<label for=\"password\">")
        );
        assert!(html.contains("<div role=\"alert\">Incorrect username or password.</div>"));
        assert!(!login_page(None).contains("role=\"alert\""));
    }

    #[test]
    fn consent_form_lists_every_scope_and_both_decisions() {
        let html = consent_page();
        for (name, description) in SCOPES {
            assert!(html.contains(&format!("<code>{}</code>", escape(name))));
            assert!(html.contains(&escape(description)));
        }
        assert!(html.contains("<input type=\"hidden\" name=\"rid\" value=\"rid-123\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-456\">"));
        assert!(html.contains("name=\"decision\" value=\"allow\""));
        assert!(html.contains("name=\"decision\" value=\"deny\""));
        assert!(html.contains("Signed in as alice"));
    }

    #[test]
    fn no_page_has_script_or_inline_style_attributes() {
        for html in [
            login_page(Some("x")),
            consent_page(),
            error("Oops <b>", "Something <script> broke"),
            signed_out("acme"),
        ] {
            assert!(html.starts_with("<!doctype html>"));
            assert!(html.contains("<html lang=\"en\">"));
            assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
            assert!(!html.contains(" style="));
            assert_eq!(html.matches("<style>").count(), 1);
            assert!(html.contains(&format!("<style>{STYLE}</style>")));
        }
        assert!(!error("t", "m").contains("<a "));
        assert!(signed_out("acme").contains("You are signed out."));
    }

    #[test]
    fn csp_hash_matches_the_style_block() {
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        let csp = content_security_policy();
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")));
        assert!(csp.starts_with("default-src 'none';"));
        for part in ["img-src data:", "frame-ancestors 'none'", "base-uri 'none'"] {
            assert!(csp.contains(part));
        }
        assert!(!csp.contains("script-src") && !csp.contains("unsafe"));
    }
}
