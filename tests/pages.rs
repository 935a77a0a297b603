//! The pages people see, over real HTTP: their language, a tenant's own
//! templates and brand, escaping, post/redirect/get after sign-in, the
//! account chooser, logout confirmation, and error pages for people.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::flow::{field, location, query_param, signed_in, unescape, Flow};
use common::{browser, client, sesame, Server, ALICE_HASH};
use reqwest::blocking::{Client, Response};
use serde_json::Value;

const CB: &str = "http://app.test/cb";
const EVIL: &str = "<script>alert(1)</script>";

fn config() -> String {
    format!(
        r##"
server: {{ listen: "127.0.0.1:{{port}}" }}
database: {{ url: "{{db}}" }}
tenants:
  - id: demo
    issuer: http://127.0.0.1:{{port}}/demo
    login_by_email: true
    scopes:
      api:read: {{ description: {{ en: Read your files, fr: Lire vos fichiers }} }}
    users:
      - username: alice
        password_hash: "{ALICE_HASH}"
        claims: {{ name: Alice Martin, email: Alice@Example.com }}
      - username: bob
        password_hash: "{ALICE_HASH}"
    clients:
      - id: web
        secret: web-secret
        name: "Photos {EVIL}"
        redirect_uris: [{CB}]
        post_logout_redirect_uris: [http://app.test/bye]
        grant_types: [authorization_code, refresh_token]
        scopes: [openid, profile, email, offline_access, api:read]
        logo_uri: https://cdn.photos.test/logo.png
        client_uri: https://photos.test/
        policy_uri: https://photos.test/privacy
        tos_uri: https://photos.test/terms
  - id: acme
    issuer: http://127.0.0.1:{{port}}/acme
    default_locale: fr
    templates_dir: acme-templates
    branding:
      name: ACME Corp
      logo: acme-logo.svg
      favicon: https://static.acme.test/favicon.ico
      primary_color: "#0a7d4f"
      background_color: "#f5f1ea"
      css: acme.css
      links: {{ privacy: https://acme.test/privacy, support: https://acme.test/help, help: https://acme.test/reset }}
    users:
      - username: carol
        password_hash: "{ALICE_HASH}"
    clients:
      - id: intranet
        secret: intranet-secret
        redirect_uris: [{CB}]
        scopes: [openid]
"##
    )
}

const OVERRIDE: &str = r#"{% extends "base.html" %}
{% block title %}{{ t("signin.title") }}{% endblock %}
{% block main %}<h1>ACME door</h1><p>{{ t("signin.lead", client=client.name) }}</p>
<form method="post" action="{{ action }}"><input type="hidden" name="rid" value="{{ rid }}">
<input type="hidden" name="csrf" value="{{ csrf }}"><input name="username" value="{{ username }}">
<input type="password" name="password"><button>{{ t("signin.submit") }}</button></form>{% endblock %}
"#;

/// A server whose directory holds the acme tenant's files.
fn start() -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    write_files(&dir, OVERRIDE);
    let db = format!("sqlite://{}", dir.join("sesame.db").display());
    Server::start_in(dir, &config(), &db)
}

fn write_files(dir: &std::path::Path, login: &str) {
    std::fs::create_dir_all(dir.join("acme-templates")).unwrap();
    std::fs::write(dir.join("acme-templates/login.html"), login).unwrap();
    std::fs::write(
        dir.join("acme-logo.svg"),
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#,
    )
    .unwrap();
    std::fs::write(dir.join("acme.css"), "main{border-width:2px}").unwrap();
}

fn flow(s: &Server) -> Flow<'_> {
    Flow {
        scope: "openid profile offline_access api:read",
        ..Flow::new(s, "web", CB)
    }
}

/// The sign-in page of a fresh request of `flow` in `b`.
fn login_page(b: &Client, flow: &Flow, accept_language: Option<&str>) -> Response {
    let mut req = b.get(flow.authorize_url());
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    let r = req.send().unwrap();
    assert_eq!(r.status(), 303);
    let mut req = b.get(location(&r));
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    req.send().unwrap()
}

fn sign_in(s: &Server, b: &Client, html: &str, username: &str, password: &str) -> Response {
    b.post(s.url("/demo/login"))
        .form(&[
            ("rid", field(html, "rid")),
            ("csrf", field(html, "csrf")),
            ("username", username.to_string()),
            ("password", password.to_string()),
        ])
        .send()
        .unwrap()
}

#[test]
fn ui_locales_fr_gives_french_pages_through_consent() {
    let s = start();
    let b = browser();
    let f = Flow {
        extra: vec![("state", "s"), ("ui_locales", "fr-CA en")],
        ..flow(&s)
    };
    let html = login_page(&b, &f, Some("en")).text().unwrap();
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("<h1>Connexion</h1>"));
    assert!(html.contains("Identifiant ou adresse e-mail"));
    let r = signed_in(&b, sign_in(&s, &b, &html, "alice", "wonderland"));
    assert_eq!(r.status(), 200);
    let consent = r.text().unwrap();
    assert!(consent.contains("<html lang=\"fr\">"));
    for words in [
        "Autoriser l’accès ?",
        "Savoir qui vous êtes",
        "Rester connecté",
        "Lire vos fichiers",
    ] {
        assert!(consent.contains(words), "{words}: {consent}");
    }
    assert!(!consent.contains("offline_access<"), "no raw scope ids");
}

#[test]
fn accept_language_fr_gives_french_pages_and_errors() {
    let s = start();
    let b = browser();
    let r = login_page(&b, &flow(&s), Some("de-DE, fr;q=0.8, en;q=0.5"));
    let html = r.text().unwrap();
    assert!(html.contains("<html lang=\"fr\">") && html.contains("Mot de passe"));
    let wrong = sign_in(&s, &b, &html, "alice", "nope");
    assert_eq!(wrong.status(), 401);
    // The form came back in English (no header this time), saying why.
    let again = wrong.text().unwrap();
    assert!(again.contains("Incorrect username, email address or password."));
    let r = b
        .get(s.url("/demo/authorize?client_id=nobody&response_type=code"))
        .header("accept-language", "fr")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().unwrap();
    assert!(
        html.contains("<h1>Cette application n’est pas reconnue</h1>"),
        "{html}"
    );
    assert!(html.contains("<code>invalid_client</code>"));
    // Without any preference, the tenant's default language: English here, French for acme.
    let en = client()
        .get(s.url("/demo/logout"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("You are signed out"));
    let fr = client()
        .get(s.url("/acme/logout"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(fr.contains("<html lang=\"fr\">") && fr.contains("Vous êtes déconnecté"));
}

#[test]
fn discovery_lists_the_page_languages() {
    let s = start();
    let d: Value = client()
        .get(s.url("/demo/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(d["ui_locales_supported"], serde_json::json!(["en", "fr"]));
}

#[test]
fn sign_in_is_post_redirect_get_and_reloading_never_posts_the_password() {
    let s = start();
    let b = browser();
    let html = login_page(&b, &flow(&s), None).text().unwrap();
    let r = sign_in(&s, &b, &html, "alice", "wonderland");
    assert_eq!(r.status(), 303);
    let next = location(&r);
    assert!(next.starts_with(&s.url("/demo/consent?rid=")), "{next}");
    // The consent page is a GET: reloading it shows it again.
    for _ in 0..2 {
        let r = b.get(&next).send().unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().unwrap();
        assert!(page.contains("name=\"decision\"") && !page.contains("password"));
    }
    let page = b.get(&next).send().unwrap().text().unwrap();
    let r = common::flow::answer_consent(&s, &b, &page, "allow");
    assert!(query_param(&location(&r), "code").is_some());
}

#[test]
fn prompt_login_is_not_skipped_through_the_consent_step() {
    let s = start();
    let b = browser();
    flow(&s).code(&b);
    // Signed in; a request asking to sign in again goes to the form, and
    // its consent step without the sign-in's token goes back there too.
    let again = Flow {
        extra: vec![("state", "s"), ("prompt", "login")],
        ..flow(&s)
    };
    let r = b.get(again.authorize_url()).send().unwrap();
    let login = location(&r);
    assert!(login.contains("/demo/login?rid="), "{login}");
    let rid = query_param(&login, "rid").unwrap();
    for t in ["", "&t=forged"] {
        let r = b
            .get(s.url(&format!("/demo/consent?rid={rid}{t}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 303);
        assert!(
            location(&r).contains("/demo/login?rid="),
            "{}",
            location(&r)
        );
    }
}

#[test]
fn sign_in_by_email_address_when_the_tenant_allows_it() {
    let s = start();
    let b = browser();
    let html = login_page(&b, &flow(&s), None).text().unwrap();
    let r = signed_in(
        &b,
        sign_in(&s, &b, &html, "alice@example.COM", "wonderland"),
    );
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Signed in as alice."));
}

#[test]
fn a_failed_sign_in_marks_the_fields_and_points_at_the_message() {
    let s = start();
    let b = browser();
    let html = login_page(&b, &flow(&s), None).text().unwrap();
    let html = sign_in(&s, &b, &html, "alice", "nope").text().unwrap();
    assert!(html.contains("role=\"alert\" id=\"signin-error\""));
    let password = &html[html.find("id=\"password\"").unwrap()..];
    let password = &password[..password.find('>').unwrap()];
    assert!(password.contains("aria-invalid=\"true\""));
    assert!(password.contains("aria-describedby=\"signin-error\""));
    assert!(password.contains("autofocus"));
}

#[test]
fn every_echoed_value_is_escaped() {
    let s = start();
    let b = browser();
    let f = Flow {
        extra: vec![
            ("state", EVIL),
            ("login_hint", "\"><script>alert(2)</script>"),
        ],
        ..flow(&s)
    };
    let html = login_page(&b, &f, None).text().unwrap();
    assert!(
        html.contains("Photos &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert_eq!(field(&html, "username"), "\"><script>alert(2)</script>");
    let failed = sign_in(&s, &b, &html, EVIL, "x").text().unwrap();
    assert_eq!(field(&failed, "username"), EVIL);
    let logout = b
        .get(s.url("/demo/logout"))
        .query(&[("client_id", "web"), ("state", EVIL)])
        .send()
        .unwrap()
        .text()
        .unwrap();
    for page in [&html, &failed, &logout] {
        assert!(!page.contains("<script"), "{page}");
    }
    let consent = signed_in(&b, sign_in(&s, &b, &failed, "alice", "wonderland"))
        .text()
        .unwrap();
    assert!(!consent.contains("<script"), "{consent}");
    assert!(consent.contains("&lt;script&gt;"));
}

#[test]
fn consent_shows_the_client_logo_and_links_and_another_account() {
    let s = start();
    let b = browser();
    let html = login_page(&b, &flow(&s), None).text().unwrap();
    let r = signed_in(&b, sign_in(&s, &b, &html, "alice", "wonderland"));
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("img-src 'self' https://cdn.photos.test;"),
        "{csp}"
    );
    assert!(csp.contains("style-src 'self';") && !csp.contains("script"));
    let page = r.text().unwrap();
    assert!(page.contains("src=\"https://cdn.photos.test/logo.png\""));
    for link in [
        "https://photos.test/",
        "https://photos.test/privacy",
        "https://photos.test/terms",
    ] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}");
    }
    // "Not you?" goes back to the sign-in form of the same request.
    let other = page
        .split("href=\"")
        .find(|p| p.contains("other=1"))
        .unwrap();
    let other = unescape(&other[..other.find('"').unwrap()]);
    let form = b.get(&other).send().unwrap().text().unwrap();
    assert!(form.contains("name=\"password\""));
    let r = signed_in(&b, sign_in(&s, &b, &form, "bob", "wonderland"));
    assert!(r.text().unwrap().contains("Signed in as bob."));
}

#[test]
fn select_account_offers_the_signed_in_account() {
    let s = start();
    let b = browser();
    flow(&s).code(&b);
    let choose = Flow {
        extra: vec![("state", "st"), ("prompt", "select_account")],
        scope: "openid",
        ..flow(&s)
    };
    let r = b.get(choose.authorize_url()).send().unwrap();
    let page = b.get(location(&r)).send().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("Continue as alice"), "{html}");
    assert!(html.contains("other=1"));
    let r = b
        .post(s.url("/demo/login"))
        .form(&[
            ("rid", field(&html, "rid")),
            ("csrf", field(&html, "csrf")),
            ("account", "current".to_string()),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = signed_in(&b, r);
    assert_eq!(r.status(), 303);
    let url = location(&r);
    assert!(
        url.starts_with(CB) && query_param(&url, "code").is_some(),
        "{url}"
    );
}

#[test]
fn logout_without_a_hint_asks_first_and_a_valid_hint_does_not() {
    let s = start();
    let b = browser();
    let code = flow(&s).code(&b);
    let t = common::flow::exchange(&s, "demo", "web", "web-secret", &code, CB);
    let id_token = t["id_token"].as_str().unwrap();
    let still_signed_in = || {
        let f = Flow {
            extra: vec![("prompt", "none")],
            scope: "openid",
            ..flow(&s)
        };
        let r = b.get(f.authorize_url()).send().unwrap();
        query_param(&location(&r), "code").is_some()
    };
    // No hint: a question, and nothing ended.
    let r =
        b.get(s.url(
            "/demo/logout?client_id=web&post_logout_redirect_uri=http%3A%2F%2Fapp.test%2Fbye",
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert!(html.contains("<h1>Sign out?</h1>") && html.contains("asks to sign you out"));
    assert!(still_signed_in());
    // A valid hint: signed out at once, back to the client.
    let r = b
        .get(s.url("/demo/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "http://app.test/bye"),
            ("state", "bye-1"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "http://app.test/bye?state=bye-1");
    assert!(!still_signed_in());
    // Signed out with a known client and no redirect: a way back to it.
    let html = b
        .get(s.url("/demo/logout?client_id=web"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("You are signed out"));
    assert!(html.contains("href=\"https://photos.test/\""), "{html}");
}

#[test]
fn error_pages_speak_to_people_and_show_the_code_and_request_id() {
    let s = start();
    let r = client()
        .get(s.url("/demo/authorize?client_id=web&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fevil.test%2F"))
        .header("x-request-id", "req-42")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-request-id"], "req-42");
    let html = r.text().unwrap();
    assert!(
        html.contains("<h1>This sign-in link isn’t allowed</h1>"),
        "{html}"
    );
    assert!(html.contains("<code>invalid_request</code>"));
    assert!(html.contains("<code>req-42</code>"));
    assert!(
        html.contains("href=\"https://photos.test/\""),
        "a way back: {html}"
    );
    let html = client()
        .get(s.url("/demo/login?rid=gone"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("This sign-in has expired"), "{html}");
}

#[test]
fn a_tenants_template_brand_and_files_are_served() {
    let s = start();
    let b = browser();
    let f = Flow {
        tenant: "acme",
        username: "carol",
        scope: "openid",
        ..Flow::new(&s, "intranet", CB)
    };
    let r = b.get(f.authorize_url()).send().unwrap();
    let r = b.get(location(&r)).send().unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("img-src 'self' https://static.acme.test;"),
        "{csp}"
    );
    let html = r.text().unwrap();
    assert!(html.contains("<h1>ACME door</h1>"), "{html}");
    assert!(html.contains("<html lang=\"fr\">") && html.contains("Se connecter"));
    assert!(html.contains("<title>Connexion · ACME Corp</title>"));
    assert!(html.contains("href=\"https://acme.test/privacy\""));
    // The stylesheet and the logo are sesame's to serve, versioned and cached.
    let href = |marker: &str| {
        let at = html.find(marker).unwrap() + marker.len();
        s.url(&unescape(&html[at..at + html[at..].find('"').unwrap()]))
    };
    let css = client()
        .get(href("rel=\"stylesheet\" href=\""))
        .send()
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let css = css.text().unwrap();
    assert!(css.contains("--accent:#0a7d4f") && css.contains("--bg:#f5f1ea"));
    assert!(css.ends_with("main{border-width:2px}"));
    let logo = client().get(href("class=\"logo\" src=\"")).send().unwrap();
    assert_eq!(logo.headers()["content-type"], "image/svg+xml");
    assert!(logo.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    // The override goes on to a working sign-in.
    let url = f.run(&b);
    assert!(query_param(&url, "code").is_some(), "{url}");
}

#[test]
fn a_changed_template_is_served_after_sighup() {
    let s = start();
    let b = browser();
    let f = Flow {
        tenant: "acme",
        ..Flow::new(&s, "intranet", CB)
    };
    write_files(&s.dir, &OVERRIDE.replace("ACME door", "ACME new door"));
    s.hup();
    s.wait_for_log("reloaded");
    let r = b.get(f.authorize_url()).send().unwrap();
    let html = b.get(location(&r)).send().unwrap().text().unwrap();
    assert!(html.contains("ACME new door"), "{html}");
}

#[test]
fn check_refuses_a_broken_template_naming_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        "{% extends \"base.html\" %}\n{% block main %}\n<p>{{ t(\"x\" }}</p>\n{% endblock %}\n",
    );
    let cfg = dir.path().join("sesame.yaml");
    std::fs::write(
        &cfg,
        config()
            .replace("{port}", "1")
            .replace("{db}", "sqlite::memory:"),
    )
    .unwrap();
    let ran = sesame(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(ran.code, Some(1), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("tenants[1].templates_dir: template "),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("acme-templates/login.html line 3: syntax error"),
        "{}",
        ran.stderr
    );
    // Fixed, it passes.
    write_files(dir.path(), OVERRIDE);
    let ran = sesame(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}
