//! What changes between two records: every item added, removed or changed,
//! and the changes that can cut off users who are signed in now.

use std::collections::BTreeMap;
use std::fmt;

use super::record::{ClientRecord, Record, TenantRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Added,
    Removed,
    Changed,
}

/// One line of a plan: `+ client demo/web`, `~ client demo/spa: redirect_uris`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub sign: Sign,
    /// `tenant demo`, `client demo/web`, `lifetime demo/web access_token`…
    pub what: String,
    /// What in it changed, when that can be said.
    pub detail: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.sign {
            Sign::Added => '+',
            Sign::Removed => '-',
            Sign::Changed => '~',
        };
        write!(f, "{sign} {}", self.what)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// A change that ends, or shortens, what users have now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cutoff {
    Tenant {
        tenant: String,
    },
    Client {
        tenant: String,
        client: String,
    },
    RedirectUri {
        tenant: String,
        client: String,
        uri: String,
    },
    User {
        tenant: String,
        username: String,
        sub: Option<String>,
    },
    Lifetime {
        tenant: String,
        client: Option<String>,
        name: String,
        from: u64,
        to: u64,
    },
    Key {
        tenant: String,
        kid: String,
        alg: String,
        /// Whether it was signing (else only published).
        signing: bool,
        /// The longest lifetime of what the tenant signs, in seconds: how
        /// long tokens it signed may still be presented.
        signs_for: u64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub cutoffs: Vec<Cutoff>,
}

impl Diff {
    /// One line for the reload log: `+client demo/web, ~tenant demo (lifetimes)`.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 12;
        if self.changes.is_empty() {
            return "no change".to_string();
        }
        let mut parts: Vec<String> = self
            .changes
            .iter()
            .take(SHOWN)
            .map(|c| {
                let sign = match c.sign {
                    Sign::Added => '+',
                    Sign::Removed => '-',
                    Sign::Changed => '~',
                };
                match &c.detail {
                    Some(d) => format!("{sign}{} ({d})", c.what),
                    None => format!("{sign}{}", c.what),
                }
            })
            .collect();
        if self.changes.len() > SHOWN {
            parts.push(format!("and {} more", self.changes.len() - SHOWN));
        }
        parts.join(", ")
    }
}

/// What turns `old` into `new`, in a stable order: tenants by id, and in
/// each tenant settings, lifetimes, keys, scripts, scopes, clients, users.
pub fn diff(old: &Record, new: &Record) -> Diff {
    let mut d = Diff::default();
    for (id, t) in &new.tenants {
        match old.tenants.get(id) {
            None => d
                .changes
                .push(change(Sign::Added, format!("tenant {id}"), None)),
            Some(o) => tenant(&mut d, id, o, t),
        }
    }
    for id in old.tenants.keys() {
        if !new.tenants.contains_key(id) {
            d.changes
                .push(change(Sign::Removed, format!("tenant {id}"), None));
            d.cutoffs.push(Cutoff::Tenant { tenant: id.clone() });
        }
    }
    d
}

fn change(sign: Sign, what: String, detail: Option<String>) -> Change {
    Change { sign, what, detail }
}

/// The keys whose digests differ, were added or were removed.
fn changed_keys(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(old.keys().filter(|k| !new.contains_key(*k)).cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn tenant(d: &mut Diff, id: &str, o: &TenantRecord, t: &TenantRecord) {
    let mut settings = changed_keys(&o.settings, &t.settings);
    if o.issuer != t.issuer {
        settings.insert(0, "issuer".to_string());
    }
    // Lifetimes, keys and scripts get lines of their own.
    settings.retain(|k| k != "lifetimes" && k != "signing" && k != "plugins");
    if !settings.is_empty() {
        d.changes.push(change(
            Sign::Changed,
            format!("tenant {id}"),
            Some(settings.join(", ")),
        ));
    }
    lifetimes(d, id, None, &o.lifetimes, &t.lifetimes);
    let signs_for = ["access_token", "id_token"]
        .iter()
        .filter_map(|k| o.lifetimes.get(*k))
        .chain(
            o.clients
                .values()
                .flat_map(|c| ["access_token", "id_token"].map(|k| c.lifetimes.get(k)))
                .flatten(),
        )
        .copied()
        .max()
        .unwrap_or(0);
    let same = |a: &super::record::KeyRecord, b: &super::record::KeyRecord| {
        a.kid == b.kid && a.alg == b.alg
    };
    for k in &t.keys {
        match o.keys.iter().find(|ok| same(ok, k)) {
            None => d.changes.push(change(
                Sign::Added,
                format!("key {id}/{}", k.kid),
                Some(k.alg.clone()),
            )),
            Some(ok) if ok.signing != k.signing => d.changes.push(change(
                Sign::Changed,
                format!("key {id}/{}", k.kid),
                Some(
                    if k.signing {
                        "now signs"
                    } else {
                        "no longer signs, still published"
                    }
                    .to_string(),
                ),
            )),
            Some(_) => {}
        }
    }
    for k in &o.keys {
        if !t.keys.iter().any(|nk| same(nk, k)) {
            d.changes.push(change(
                Sign::Removed,
                format!("key {id}/{}", k.kid),
                Some(k.alg.clone()),
            ));
            d.cutoffs.push(Cutoff::Key {
                tenant: id.to_string(),
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                signing: k.signing,
                signs_for,
            });
        }
    }
    items(d, "script", None, &o.scripts, &t.scripts);
    items(d, "scope", Some(id), &o.scopes, &t.scopes);
    for (cid, c) in &t.clients {
        match o.clients.get(cid) {
            None => d
                .changes
                .push(change(Sign::Added, format!("client {id}/{cid}"), None)),
            Some(oc) => client(d, id, cid, oc, c, (&o.lifetimes, &t.lifetimes)),
        }
    }
    for cid in o.clients.keys() {
        if !t.clients.contains_key(cid) {
            d.changes
                .push(change(Sign::Removed, format!("client {id}/{cid}"), None));
            d.cutoffs.push(Cutoff::Client {
                tenant: id.to_string(),
                client: cid.clone(),
            });
        }
    }
    for (name, u) in &t.users {
        match o.users.get(name) {
            None => d
                .changes
                .push(change(Sign::Added, format!("user {id}/{name}"), None)),
            Some(ou) => {
                let mut keys = changed_keys(&ou.settings, &u.settings);
                if ou.sub != u.sub {
                    keys.insert(0, "sub".to_string());
                    keys.dedup();
                }
                if !keys.is_empty() {
                    d.changes.push(change(
                        Sign::Changed,
                        format!("user {id}/{name}"),
                        Some(keys.join(", ")),
                    ));
                }
            }
        }
    }
    for (name, u) in &o.users {
        if !t.users.contains_key(name) {
            d.changes
                .push(change(Sign::Removed, format!("user {id}/{name}"), None));
            d.cutoffs.push(Cutoff::User {
                tenant: id.to_string(),
                username: name.clone(),
                sub: u.sub.clone(),
            });
        }
    }
}

/// Lifetimes of a tenant before and after.
type TenantLifetimes<'a> = (&'a BTreeMap<String, u64>, &'a BTreeMap<String, u64>);

fn client(
    d: &mut Diff,
    tenant: &str,
    id: &str,
    o: &ClientRecord,
    c: &ClientRecord,
    tenant_lifetimes: TenantLifetimes<'_>,
) {
    let mut keys = changed_keys(&o.settings, &c.settings);
    keys.retain(|k| k != "lifetimes");
    if !keys.is_empty() {
        let mut detail = keys.join(", ");
        let removed: Vec<&String> = o
            .redirect_uris
            .iter()
            .filter(|u| !c.redirect_uris.contains(u))
            .collect();
        let added: Vec<&String> = c
            .redirect_uris
            .iter()
            .filter(|u| !o.redirect_uris.contains(u))
            .collect();
        if !removed.is_empty() || !added.is_empty() {
            let uris: Vec<String> = added
                .iter()
                .map(|u| format!("+{u}"))
                .chain(removed.iter().map(|u| format!("-{u}")))
                .collect();
            detail = format!("{detail} [{}]", uris.join(" "));
        }
        d.changes.push(change(
            Sign::Changed,
            format!("client {tenant}/{id}"),
            Some(detail),
        ));
        for uri in removed {
            d.cutoffs.push(Cutoff::RedirectUri {
                tenant: tenant.to_string(),
                client: id.to_string(),
                uri: uri.clone(),
            });
        }
    }
    // A lifetime the client takes from its tenant, before and after, is
    // the tenant's change: reported there.
    let (ot, nt) = tenant_lifetimes;
    let own = |l: &BTreeMap<String, u64>, t: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        l.iter()
            .filter(|(k, v)| t.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let (mut ol, mut nl) = (o.lifetimes.clone(), c.lifetimes.clone());
    let (o_own, n_own) = (own(&ol, ot), own(&nl, nt));
    ol.retain(|k, _| o_own.contains_key(k) || n_own.contains_key(k));
    nl.retain(|k, _| o_own.contains_key(k) || n_own.contains_key(k));
    lifetimes(d, tenant, Some(id), &ol, &nl);
}

/// Effective lifetimes that changed. A client's lifetime that only moved
/// with its tenant's is reported once, at the tenant.
fn lifetimes(
    d: &mut Diff,
    tenant: &str,
    client: Option<&str>,
    old: &BTreeMap<String, u64>,
    new: &BTreeMap<String, u64>,
) {
    let owner = match client {
        Some(c) => format!("{tenant}/{c}"),
        None => tenant.to_string(),
    };
    for (name, &to) in new {
        let Some(&from) = old.get(name) else { continue };
        if from == to {
            continue;
        }
        d.changes.push(change(
            Sign::Changed,
            format!("lifetime {owner} {name}"),
            Some(format!("{} → {}", human(from), human(to))),
        ));
        if to < from {
            d.cutoffs.push(Cutoff::Lifetime {
                tenant: tenant.to_string(),
                client: client.map(str::to_string),
                name: name.clone(),
                from,
                to,
            });
        }
    }
}

/// Items compared by digest: scripts (by path) and scopes (by name).
fn items(
    d: &mut Diff,
    kind: &str,
    tenant: Option<&str>,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) {
    let name = |n: &str| match tenant {
        Some(t) => format!("{kind} {t}/{n}"),
        None => format!("{kind} {n}"),
    };
    for (n, v) in new {
        match old.get(n) {
            None => d.changes.push(change(Sign::Added, name(n), None)),
            Some(o) if o != v => d.changes.push(change(Sign::Changed, name(n), None)),
            Some(_) => {}
        }
    }
    for n in old.keys() {
        if !new.contains_key(n) {
            d.changes.push(change(Sign::Removed, name(n), None));
        }
    }
}

/// Seconds as the config writes durations: `90s`, `15m`, `12h`, `30d`.
pub fn human(secs: u64) -> String {
    match secs {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
