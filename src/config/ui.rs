//! Validation of what a tenant's pages are made of: its template files
//! (compiled and rendered once, a broken one named with file and line), its
//! brand (colours, links, logo and stylesheet files), its language, sign-in
//! by email; and the clients' page metadata (`logo_uri` & co.).

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use super::validate::{is_plain_http_off_loopback, Checker};
use super::{ClientConfig, Config, LoadedUi, TenantConfig};
use crate::ui::{self, colour::Rgb, locale, Image, MAX_ASSET_BYTES};

/// Check the tenant's page settings and read their files.
pub(super) fn tenant(c: &mut Checker, config: &Config, tp: &str, t: &TenantConfig) -> LoadedUi {
    let mut loaded = LoadedUi::default();
    if let Some(dir) = &t.templates_dir {
        loaded.templates = templates(c, &format!("{tp}.templates_dir"), &config.resolve(dir));
    }
    if let Some(l) = &t.default_locale {
        if locale::find(l) != Some(l.as_str()) {
            c.err(
                format!("{tp}.default_locale"),
                format!(
                    "no catalogue for {l:?}: the languages are {}",
                    locale::supported().join(", ")
                ),
            );
        }
    }
    let b = &t.branding;
    let bp = format!("{tp}.branding");
    for (name, value) in [
        ("primary_color", &b.primary_color),
        ("background_color", &b.background_color),
    ] {
        if let Some(v) = value {
            if Rgb::parse(v).is_none() {
                c.err(
                    format!("{bp}.{name}"),
                    format!("{v:?} is not a CSS hex colour (#rgb or #rrggbb)"),
                );
            }
        }
    }
    for (name, value) in [
        ("privacy", &b.links.privacy),
        ("terms", &b.links.terms),
        ("support", &b.links.support),
        ("help", &b.links.help),
    ] {
        if let Some(v) = value {
            web_url(c, &format!("{bp}.links.{name}"), v);
        }
    }
    loaded.logo = b
        .logo
        .as_ref()
        .and_then(|v| image(c, config, &format!("{bp}.logo"), v));
    loaded.favicon = b
        .favicon
        .as_ref()
        .and_then(|v| image(c, config, &format!("{bp}.favicon"), v));
    if let Some(css) = &b.css {
        let file = config.resolve(css);
        match read_limited(&file).and_then(|b| {
            String::from_utf8(b).map_err(|_| format!("{} is not UTF-8 text", file.display()))
        }) {
            Ok(text) => loaded.css = Some(text),
            Err(e) => c.err(format!("{bp}.css"), e),
        }
    }
    if t.login_by_email {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (ui, u) in t.users.iter().enumerate() {
            let Some(email) = u.claims.get("email").and_then(|e| e.as_str()) else {
                continue;
            };
            if let Some(first) = seen.insert(email.to_lowercase(), ui) {
                c.err(
                    format!("{tp}.users[{ui}].claims.email"),
                    format!(
                        "{email:?} is also the email of users[{first}]: with login_by_email, \
                         addresses must be unique"
                    ),
                );
            }
        }
    }
    loaded
}

/// The client's consent-page metadata: https URLs.
pub(super) fn client(c: &mut Checker, cp: &str, cl: &ClientConfig) {
    for (name, value) in [
        ("logo_uri", &cl.logo_uri),
        ("client_uri", &cl.client_uri),
        ("policy_uri", &cl.policy_uri),
        ("tos_uri", &cl.tos_uri),
    ] {
        if let Some(v) = value {
            web_url(c, &format!("{cp}.{name}"), v);
        }
    }
}

/// An https URL (plain http only on loopback, for development).
fn web_url(c: &mut Checker, path: &str, u: &str) {
    match url::Url::parse(u) {
        Ok(url)
            if url.scheme() == "https"
                || (url.scheme() == "http" && !is_plain_http_off_loopback(u)) => {}
        Ok(_) => c.err(path, format!("{u:?} must be an https URL")),
        Err(e) => c.err(path, format!("{u:?} is not an absolute URL ({e})")),
    }
}

/// An image: an https URL, or a file sesame serves.
fn image(c: &mut Checker, config: &Config, path: &str, v: &str) -> Option<Image> {
    if v.contains("://") {
        web_url(c, path, v);
        return Some(Image::Url(v.to_string()));
    }
    let file = config.resolve(Path::new(v));
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let content_type = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => {
            c.err(
                path,
                format!("{v:?}: an https URL, or an image file (png, jpg, gif, webp, svg, ico)"),
            );
            return None;
        }
    };
    match read_limited(&file) {
        Ok(bytes) => Some(Image::File {
            content_type,
            bytes: Bytes::from(bytes),
        }),
        Err(e) => {
            c.err(path, e);
            None
        }
    }
}

fn read_limited(file: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if bytes.len() > MAX_ASSET_BYTES {
        return Err(format!(
            "{} is larger than {} KiB",
            file.display(),
            MAX_ASSET_BYTES / 1024
        ));
    }
    Ok(bytes)
}

/// Every `.html` file of `dir`, each checked: an error names the file and line.
fn templates(c: &mut Checker, path: &str, dir: &Path) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            c.err(path, format!("cannot read {}: {e}", dir.display()));
            return Vec::new();
        }
    };
    let mut files: Vec<(String, String)> = Vec::new();
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    names.sort();
    for file in names {
        let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        match read_limited(&file).and_then(|b| {
            String::from_utf8(b).map_err(|_| format!("{} is not UTF-8 text", file.display()))
        }) {
            Ok(source) => files.push((name.to_string(), source)),
            Err(e) => c.err(path, e),
        }
    }
    for e in ui::check(&files) {
        let file = dir.join(&e.file);
        let at = e.line.map(|l| format!(" line {l}")).unwrap_or_default();
        c.err(
            path,
            format!("template {}{at}: {}", file.display(), e.message),
        );
    }
    files
}
