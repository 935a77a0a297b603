//! The pages people see, per tenant: minijinja templates (built in, each
//! overridable by a file of the same name in the tenant's `templates_dir`),
//! the catalogues of words ([`locale`]), and the tenant's brand (name,
//! logo, favicon, colours, extra stylesheet, links).
//!
//! minijinja rather than a compiled engine: a tenant's templates are read
//! at run time (start and SIGHUP) and must not need a rebuild. Every
//! template auto-escapes as HTML, whatever its name. The pages carry no
//! inline style: one stylesheet, served by sesame, which the CSP allows as
//! `'self'`; and no script, but for the form post page's one
//! ([`FORM_POST_SCRIPT`]), allowed by its hash on that page only
//! ([`PageCsp`]). A [`Ui`] is built with its tenant, once per
//! configuration generation. This module knows neither the configuration's
//! types nor HTTP.

pub mod colour;
pub mod locale;

use std::fmt::Write as _;

use bytes::Bytes;
use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, State, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The built-in templates, by file name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("chooser.html", include_str!("../../templates/chooser.html")),
    ("consent.html", include_str!("../../templates/consent.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    (
        "signed_out.html",
        include_str!("../../templates/signed_out.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "form_post.html",
        include_str!("../../templates/form_post.html"),
    ),
];

/// The one script of any page: the form post page submits its form (the
/// one with `id="form_post"`) at once. Templates get it as `script`; the
/// page's CSP allows it by its hash ([`script_hash`]), so a template that
/// changes it runs nothing and shows its button instead.
pub const FORM_POST_SCRIPT: &str = "document.getElementById(\"form_post\").submit();";

/// The built-in stylesheet; a tenant's colours and css file come after it.
pub const STYLE: &str = include_str!("../../templates/style.css");

/// Largest logo, favicon or stylesheet file accepted.
pub const MAX_ASSET_BYTES: usize = 512 * 1024;

/// An image on the pages: a URL (its origin is then allowed by the CSP) or
/// a file that sesame serves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    Url(String),
    File {
        content_type: &'static str,
        bytes: Bytes,
    },
}

/// A tenant's pages as configured (resolved from its configuration by
/// `tenant`; every value already validated).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The issuer's path (`/acme`, or `""`): assets are served below it.
    pub base_path: String,
    pub name: Option<String>,
    pub logo: Option<Image>,
    pub favicon: Option<Image>,
    /// CSS hex colours.
    pub primary_color: Option<String>,
    pub background_color: Option<String>,
    /// The tenant's own stylesheet, appended to sesame's.
    pub css: Option<String>,
    pub privacy_url: Option<String>,
    pub terms_url: Option<String>,
    pub support_url: Option<String>,
    pub help_url: Option<String>,
    /// `(file name, source)` overriding or adding templates.
    pub templates: Vec<(String, String)>,
    /// A catalogue tag (validated).
    pub default_locale: Option<String>,
    /// Image URLs shown on this tenant's pages besides its own (the
    /// clients' logos): their origins are allowed by the CSP.
    pub image_urls: Vec<String>,
}

/// What the templates see as `brand`.
#[derive(Debug, Clone, Default, Serialize)]
struct Brand {
    name: Option<String>,
    logo: Option<String>,
    favicon: Option<String>,
    help: Option<String>,
    support: Option<String>,
    /// Footer links: `(catalogue key, url)`.
    links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize)]
struct Link {
    label: &'static str,
    url: String,
}

/// A file sesame serves for a tenant's pages, below `/assets/`.
#[derive(Debug, Clone)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: Bytes,
}

/// One tenant's pages, ready to render.
#[derive(Debug)]
pub struct Ui {
    env: Environment<'static>,
    /// The built-in templates alone, when the tenant overrides some: a page
    /// whose override fails to render falls back to them.
    builtin: Option<Environment<'static>>,
    brand: Value,
    pub default_locale: &'static str,
    /// The Content-Security-Policy of every page of the tenant.
    pub csp: String,
    /// The origins of the images the pages show (the CSP's `img-src`).
    image_origins: Vec<String>,
    /// The CSP source of [`FORM_POST_SCRIPT`] (`sha256-…`), computed once.
    pub form_post_script_hash: String,
    /// `(name below /assets/, file)`: the stylesheet, logo and favicon files.
    assets: Vec<(&'static str, Asset)>,
    /// The stylesheet's path with its version (`/acme/assets/style.css?v=…`).
    stylesheet: String,
}

/// A template that does not compile or render: its file, line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} line {l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A minijinja error, located in `file`.
fn template_error(file: &str, e: &minijinja::Error) -> TemplateError {
    let mut message = e.kind().to_string();
    if let Some(d) = e.detail() {
        let _ = write!(message, ": {d}");
    }
    TemplateError {
        file: e.name().unwrap_or(file).to_string(),
        line: e.line(),
        message,
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

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // Strings escaped with [`escape`] (minijinja's own also turns `/` into
    // `&#x2f;`, which makes URLs unreadable and protects nothing in quoted
    // attributes); anything else as minijinja does.
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(s) if !value.is_safe() && state.auto_escape() == AutoEscape::Html => {
            out.write_str(&escape(s)).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env.add_function("t", translate);
    for (name, source) in TEMPLATES {
        // The built-in templates compile (tested); a failure would leave the page out.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "built-in template");
        }
    }
    env
}

/// `t("key", name=value…)`: the message in the page's language, `{name}`
/// replaced by each value (the result is escaped like any other value).
fn translate(state: &State, key: &str, args: Kwargs) -> Result<String, minijinja::Error> {
    let lang = state.lookup("lang");
    let text = locale::text(lang.as_ref().and_then(|v| v.as_str()).unwrap_or(""), key);
    if !text.contains('{') {
        return Ok(text.to_string());
    }
    let mut out = text.to_string();
    for name in args.args() {
        let value: Value = args.get(name)?;
        let shown = if value.is_undefined() || value.is_none() {
            String::new()
        } else {
            value.to_string()
        };
        out = out.replace(&format!("{{{name}}}"), &shown);
    }
    Ok(out)
}

/// Check a tenant's template files: each compiles, and with the built-in
/// ones every page renders with sample values.
pub fn check(templates: &[(String, String)]) -> Vec<TemplateError> {
    let mut env = environment();
    let mut errors = Vec::new();
    for (name, source) in templates {
        if let Err(e) = env.add_template_owned(name.clone(), source.clone()) {
            errors.push(template_error(name, &e));
        }
    }
    if !errors.is_empty() {
        return errors;
    }
    let ui = Ui::with_env(env, None, &Settings::default());
    for (page, ctx) in samples() {
        if let Err(e) = ui.try_render(&ui.env, page, "en", ctx) {
            let e = template_error(page, &e);
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    errors
}

impl Default for Ui {
    fn default() -> Ui {
        Ui::new(&Settings::default())
    }
}

impl Ui {
    /// The tenant's pages. Its templates were checked ([`check`]) by
    /// validation; one that still fails to compile is logged and left out.
    pub fn new(s: &Settings) -> Ui {
        let mut env = environment();
        for (name, source) in &s.templates {
            if let Err(e) = env.add_template_owned(name.clone(), source.clone()) {
                tracing::error!(error = %template_error(name, &e), "template left out");
            }
        }
        let builtin = (!s.templates.is_empty()).then(environment);
        Ui::with_env(env, builtin, s)
    }

    fn with_env(
        env: Environment<'static>,
        builtin: Option<Environment<'static>>,
        s: &Settings,
    ) -> Ui {
        let base = &s.base_path;
        let mut assets = Vec::new();
        let mut image = |name: &'static str, img: &Option<Image>| match img {
            None => None,
            Some(Image::Url(u)) => Some(u.clone()),
            Some(Image::File {
                content_type,
                bytes,
            }) => {
                let href = format!("{base}/assets/{name}?v={}", version(bytes));
                assets.push((
                    name,
                    Asset {
                        content_type,
                        body: bytes.clone(),
                    },
                ));
                Some(href)
            }
        };
        let logo = image("logo", &s.logo);
        let favicon = image("favicon", &s.favicon);
        let links = [
            ("footer.privacy", &s.privacy_url),
            ("footer.terms", &s.terms_url),
            ("footer.support", &s.support_url),
        ]
        .into_iter()
        .filter_map(|(label, url)| url.clone().map(|url| Link { label, url }))
        .collect();
        let brand = Brand {
            name: s.name.clone(),
            logo,
            favicon,
            help: s.help_url.clone(),
            support: s.support_url.clone(),
            links,
        };
        let css = stylesheet(s);
        let stylesheet = format!("{base}/assets/style.css?v={}", version(css.as_bytes()));
        assets.push((
            "style.css",
            Asset {
                content_type: "text/css; charset=utf-8",
                body: Bytes::from(css),
            },
        ));
        let images = [&s.logo, &s.favicon]
            .into_iter()
            .filter_map(|i| match i {
                Some(Image::Url(u)) => Some(u.as_str()),
                _ => None,
            })
            .chain(s.image_urls.iter().map(String::as_str));
        let image_origins = origins(images, false);
        Ui {
            env,
            builtin,
            brand: Value::from_serialize(&brand),
            default_locale: s
                .default_locale
                .as_deref()
                .and_then(locale::find)
                .unwrap_or(locale::FALLBACK),
            csp: policy(&image_origins, &PageCsp::default()),
            image_origins,
            form_post_script_hash: script_hash(FORM_POST_SCRIPT),
            assets,
            stylesheet,
        }
    }

    /// The tenant's CSP with what one page adds to it ([`PageCsp`]);
    /// [`Ui::csp`] when it adds nothing.
    pub fn csp_with(&self, extra: &PageCsp) -> String {
        policy(&self.image_origins, extra)
    }

    /// The file served at `/assets/{name}`, if there is one.
    pub fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
    }

    /// The page `template` in `lang` with the page's values `ctx`. A
    /// tenant's template that fails is logged, and the built-in one is
    /// rendered instead.
    pub fn render(&self, template: &str, lang: &'static str, ctx: Value) -> String {
        match self.try_render(&self.env, template, lang, ctx.clone()) {
            Ok(html) => return html,
            Err(e) => {
                tracing::error!(error = %template_error(template, &e), "page failed to render")
            }
        }
        self.builtin
            .as_ref()
            .and_then(|env| self.try_render(env, template, lang, ctx).ok())
            .unwrap_or_else(|| {
                String::from("<!doctype html><title>Error</title><p>This page could not be shown.")
            })
    }

    fn try_render(
        &self,
        env: &Environment<'static>,
        template: &str,
        lang: &'static str,
        ctx: Value,
    ) -> Result<String, minijinja::Error> {
        let page = minijinja::context! {
            lang => lang,
            brand => self.brand.clone(),
            stylesheet => self.stylesheet.as_str(),
            ..ctx
        };
        env.get_template(template)?.render(page)
    }
}

/// The first 12 hex digits of the SHA-256 of `bytes` (an asset's version).
fn version(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// sesame's stylesheet, then the tenant's colours, then its own css.
fn stylesheet(s: &Settings) -> String {
    let mut css = String::from(STYLE);
    if let Some(p) = s.primary_color.as_deref().and_then(colour::Rgb::parse) {
        let _ = write!(css, "\n/* tenant colours */\n{}", colour::primary(p));
    }
    if let Some(b) = s.background_color.as_deref().and_then(colour::Rgb::parse) {
        let _ = write!(css, "\n{}", colour::background(b));
    }
    if let Some(extra) = &s.css {
        css.push_str("\n/* tenant stylesheet */\n");
        css.push_str(extra);
    }
    css
}

/// What one page adds to its tenant's CSP. Nothing by default: every
/// other page runs no script, posts forms nowhere but to sesame (no
/// `form-action` directive, so the 303 after a sign-in or consent may go
/// on to the client) and frames nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCsp {
    /// Inline scripts the page runs, as CSP hash sources without quotes
    /// (`sha256-…`, from [`script_hash`]).
    pub script_hashes: Vec<String>,
    /// URLs the page's forms post to: their origins become its `form-action`.
    pub form_action: Vec<String>,
    /// URLs the page frames: their origins become its `frame-src`.
    pub frame_src: Vec<String>,
}

/// The CSP hash source of an inline script's exact text: `sha256-` and
/// the base64 of its SHA-256 (CSP Level 3 §2.3.1).
pub fn script_hash(script: &str) -> String {
    use base64::Engine;
    let digest = Sha256::digest(script.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The origins of `urls`, sorted, once each. An URL without one (a native
/// app's `com.example.app:/cb`) is left out, or with `scheme_sources` is
/// its scheme (`com.example.app:`), the closest a CSP can name it.
fn origins<'a>(urls: impl Iterator<Item = &'a str>, scheme_sources: bool) -> Vec<String> {
    let mut origins: Vec<String> = urls
        .filter_map(|u| url::Url::parse(u).ok())
        .filter_map(|u| match u.origin() {
            o @ url::Origin::Tuple(..) => Some(o.ascii_serialization()),
            url::Origin::Opaque(_) if scheme_sources => Some(format!("{}:", u.scheme())),
            url::Origin::Opaque(_) => None,
        })
        .collect();
    origins.sort();
    origins.dedup();
    origins
}

/// `name` and its sources, or nothing when it has none.
fn directive(name: &str, sources: &[String], quoted: bool) -> String {
    if sources.is_empty() {
        return String::new();
    }
    let quote = if quoted { "'" } else { "" };
    let mut d = name.to_string();
    for src in sources {
        let _ = write!(d, " {quote}{src}{quote}");
    }
    d.push_str("; ");
    d
}

/// The one place the pages' CSP is made: nothing but sesame's own
/// stylesheet and images, and the origins of the configured image URLs.
pub fn content_security_policy<'a>(image_urls: impl Iterator<Item = &'a str>) -> String {
    policy(&origins(image_urls, false), &PageCsp::default())
}

/// The CSP of a page showing images from `image_origins`, with `extra`.
fn policy(image_origins: &[String], extra: &PageCsp) -> String {
    let mut img = String::from("'self'");
    for o in image_origins {
        img.push(' ');
        img.push_str(o);
    }
    let scripts = directive("script-src", &extra.script_hashes, true);
    let forms = directive(
        "form-action",
        &origins(extra.form_action.iter().map(String::as_str), true),
        false,
    );
    let frames = directive(
        "frame-src",
        &origins(extra.frame_src.iter().map(String::as_str), true),
        false,
    );
    format!(
        "default-src 'none'; {scripts}style-src 'self'; img-src {img}; {forms}{frames}\
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Every page with values of the kind it is given, for [`check`] and tests.
pub fn samples() -> Vec<(&'static str, Value)> {
    use minijinja::context;
    let client = context! { name => "Example", logo => "https://app.example/logo.png",
    uri => "https://app.example", policy => "https://app.example/privacy",
    tos => "https://app.example/terms" };
    vec![
        (
            "login.html",
            context! { action => "/login", rid => "r", csrf => "c", username => "alice",
            client => client.clone(), notice => "Incorrect", by_email => true, ui_locales => "fr" },
        ),
        (
            "chooser.html",
            context! { action => "/login", rid => "r", csrf => "c", username => "alice",
            client => client.clone(), other_account => "/login?rid=r&other=1" },
        ),
        (
            "consent.html",
            context! { action => "/consent", rid => "r", csrf => "c", username => "alice",
            client => client.clone(), other_account => "/login?rid=r&other=1",
            scopes => vec![context! { name => "openid", title => "Know who you are", description => "Sign in" }] },
        ),
        (
            "logout.html",
            context! { action => "/logout", csrf => "c", client => client.clone(),
            fields => vec![("state", "s")] },
        ),
        (
            "signed_out.html",
            context! { client => client.clone(), frontchannel => vec!["https://app.example/logout?sid=s"],
            continue_to => "https://app.example/bye" },
        ),
        (
            "error.html",
            context! { problem => "bad_request", code => "invalid_request", description => "x",
            request_id => "0123", back => client.clone() },
        ),
        (
            "form_post.html",
            context! { action => "https://app.example/cb", client => client,
            fields => vec![("code", "c"), ("state", "s"), ("iss", "https://id.example")],
            script => Value::from_safe_string(FORM_POST_SCRIPT.to_string()) },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_compile_and_render_every_page() {
        assert_eq!(check(&[]), vec![]);
        let ui = Ui::default();
        for (page, ctx) in samples() {
            let html = ui.render(page, "fr", ctx);
            assert!(html.starts_with("<!doctype html>"), "{page}: {html}");
            assert!(html.contains("<html lang=\"fr\">"), "{page}");
            let scripts = html.to_ascii_lowercase().matches("<script").count();
            let expected = usize::from(page == "form_post.html");
            assert_eq!(scripts, expected, "{page}");
            assert!(!html.contains(" style="), "{page}");
            assert!(html.contains("/assets/style.css?v="), "{page}");
        }
    }

    #[test]
    fn a_broken_override_is_reported_with_file_and_line() {
        let broken = vec![(
            "login.html".to_string(),
            "{% extends \"base.html\" %}\n{% block main %}\n{{ oops(\n{% endblock %}".to_string(),
        )];
        let errors = check(&broken);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].file, "login.html");
        assert_eq!(errors[0].line, Some(4), "{}", errors[0]);
    }

    #[test]
    fn an_override_that_fails_at_render_falls_back_to_the_built_in_page() {
        let s = Settings {
            templates: vec![(
                "signed_out.html".to_string(),
                "{{ nothing.at.all() }}".to_string(),
            )],
            ..Settings::default()
        };
        assert_eq!(check(&s.templates).len(), 1);
        let html = Ui::new(&s).render("signed_out.html", "en", Value::from(()));
        assert!(html.contains("You are signed out"), "{html}");
    }

    #[test]
    fn values_are_escaped_in_text_attributes_and_messages() {
        let ui = Ui::default();
        let evil = "\"><script>alert(1)</script>";
        let html = ui.render(
            "login.html",
            "en",
            minijinja::context! { action => "/login?a=1&b=2", rid => evil, csrf => "c",
            username => evil, client => minijinja::context! { name => evil } },
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("action=\"/login?a=1&amp;b=2\""));
    }

    #[test]
    fn csp_allows_exactly_the_configured_image_origins() {
        let csp = content_security_policy(
            [
                "https://cdn.acme.test/logo.png",
                "https://cdn.acme.test/f.ico",
                "not a url",
            ]
            .into_iter(),
        );
        assert_eq!(
            csp,
            "default-src 'none'; style-src 'self'; img-src 'self' https://cdn.acme.test; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        assert!(!csp.contains("script") && !csp.contains("unsafe"));
    }

    #[test]
    fn a_script_hash_is_of_its_exact_text() {
        // As a browser computes it (`printf 'alert(1);' | openssl dgst -sha256 -binary | base64`).
        assert_eq!(
            script_hash("alert(1);"),
            "sha256-5jFwrAK0UV47oFbVg/iCCBbxD8X1w+QvoOUepu4C2YA="
        );
    }

    #[test]
    fn the_form_post_page_posts_its_fields_and_runs_only_the_hashed_script() {
        let ui = Ui::default();
        let (_, ctx) = samples()
            .into_iter()
            .find(|(p, _)| *p == "form_post.html")
            .unwrap();
        let html = ui.render("form_post.html", "en", ctx);
        assert!(
            html.contains(r#"<form id="form_post" method="post" action="https://app.example/cb">"#),
            "{html}"
        );
        assert!(html.contains(r#"<input type="hidden" name="iss" value="https://id.example">"#));
        assert!(html.contains("<noscript>") && html.contains(r#"<button type="submit">"#));
        let script = format!("<script>{FORM_POST_SCRIPT}</script>");
        assert!(html.contains(&script), "{html}");
        assert_eq!(ui.form_post_script_hash, script_hash(FORM_POST_SCRIPT));
    }

    #[test]
    fn a_page_csp_adds_its_scripts_form_targets_and_frames_to_the_tenants() {
        let s = Settings {
            image_urls: vec!["https://cdn.acme.test/logo.png".into()],
            ..Settings::default()
        };
        let ui = Ui::new(&s);
        assert_eq!(ui.csp_with(&PageCsp::default()), ui.csp);
        let csp = ui.csp_with(&PageCsp {
            script_hashes: vec!["sha256-abc=".into()],
            form_action: vec![
                "https://app.test:8443/cb?x=1".into(),
                "https://app.test:8443/other".into(),
                "com.example.app:/cb".into(),
            ],
            frame_src: vec!["https://rp.test/logout".into()],
        });
        assert_eq!(
            csp,
            "default-src 'none'; script-src 'sha256-abc='; style-src 'self'; \
             img-src 'self' https://cdn.acme.test; \
             form-action com.example.app: https://app.test:8443; frame-src https://rp.test; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn a_page_csp_adds_exactly_its_frame_origins() {
        let ui = Ui::new(&Settings::default());
        let csp = ui.csp_with(&PageCsp {
            frame_src: vec![
                "https://a.example/logout?iss=x&sid=y".into(),
                "https://a.example/other".into(),
                "http://127.0.0.1:9000/fc".into(),
            ],
            ..PageCsp::default()
        });
        assert!(
            csp.contains("; frame-src http://127.0.0.1:9000 https://a.example; "),
            "{csp}"
        );
        assert_eq!(csp.matches("frame-src").count(), 1);
    }

    #[test]
    fn files_are_served_below_the_issuer_path_with_a_version() {
        let s = Settings {
            base_path: "/acme".into(),
            logo: Some(Image::File {
                content_type: "image/png",
                bytes: Bytes::from_static(b"png"),
            }),
            primary_color: Some("#0a7d4f".into()),
            css: Some("main{border-width:3px}".into()),
            ..Settings::default()
        };
        let ui = Ui::new(&s);
        assert_eq!(ui.asset("logo").map(|a| a.content_type), Some("image/png"));
        let css = ui.asset("style.css").unwrap();
        let css = std::str::from_utf8(&css.body).unwrap();
        assert!(css.contains("--accent:#0a7d4f") && css.ends_with("main{border-width:3px}"));
        let html = ui.render("signed_out.html", "en", Value::from(()));
        assert!(html.contains("src=\"/acme/assets/logo?v="), "{html}");
        assert!(ui.csp.contains("img-src 'self';"));
    }
}
