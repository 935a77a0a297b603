//! The browser's sesame cookies: their names, flags and paths per tenant.
//! The core says what should change ([`Cookie`]); this module says how.

use warp::http::{header, HeaderValue};

use super::{Reply, Request};
use crate::oauth::session::BrowserCookies;
use crate::oauth::Cookie;
use crate::tenant::Tenant;

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

/// The browser's sesame cookies for `tenant`, as sent.
pub fn read(tenant: &Tenant, req: &Request) -> BrowserCookies {
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

fn set(r: &mut Reply, tenant: &Tenant, name: &str, value: &str, max_age: Option<u64>) {
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

/// Make the cookie changes the core asked for.
pub fn apply(r: &mut Reply, tenant: &Tenant, changes: &[Cookie]) {
    let (binding_name, session_name) = cookie_names(tenant);
    for change in changes {
        match change {
            Cookie::SetBinding(value) => set(r, tenant, &binding_name, value, None),
            Cookie::SetSession { value, max_age } => {
                set(r, tenant, &session_name, value, Some(*max_age))
            }
            Cookie::ClearSession => set(r, tenant, &session_name, "", Some(0)),
        }
    }
}
