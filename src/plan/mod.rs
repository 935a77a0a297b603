//! `sesame plan`: what a new configuration would change in a running
//! deployment, read from the database every node records itself in.
//!
//! - [`record`]: the redacted record of a generation (digests and public
//!   fields only), which each node stores for the generation it serves;
//! - [`diff`]: two records compared, item by item, and the changes that
//!   cut off users signed in now;
//! - [`node`]: a serving node's side (record at start and on every reload,
//!   say it is still up now and then);
//! - this file: the command, with counts from the store for each warning.

use std::collections::BTreeMap;
use std::fmt::Write as _;

mod diff;
mod node;
mod record;

pub use diff::{diff, human, Change, Cutoff, Diff, Sign};
pub use node::{node_id, NodeRecorder};
pub use record::{env_paths, record, Digester, KeyRecord, Record};

use crate::config::Config;
use crate::jose::Alg;
use crate::runtime::Runtime;
use crate::store::{RevokeFilter, Store, StoreError};

/// The name of the deployment's secret that keys the records' digests.
pub const RECORD_SECRET: &str = "config-record";

/// A node that has not said it is up for this long is not counted as serving.
pub const NODE_LIVE_SECS: i64 = 120;

/// The digester every node and `sesame plan` share: keyed with the
/// deployment's record secret, made on first use.
pub async fn digester(store: &Store) -> Result<Digester, StoreError> {
    let secret = store
        .find_or_insert_server_secret(RECORD_SECRET, rand::random(), crate::now())
        .await?;
    Ok(Digester::new(&secret))
}

/// The keys each tenant of a running generation publishes now. A tenant
/// whose keys rotate on a schedule (`signing.rotation`) records none: its
/// keys change by the clock, not by configuration (`sesame keys list`).
pub fn served_keys(runtime: &Runtime) -> BTreeMap<String, Vec<KeyRecord>> {
    let now = crate::now();
    runtime
        .tenants
        .iter()
        .zip(&runtime.config.tenants)
        .map(|(t, tc)| {
            if tc.signing.rotation.is_some() {
                return (t.id.clone(), Vec::new());
            }
            let keyset = t.keys.load();
            let keys = keyset
                .keys()
                .iter()
                .filter(|(_, w)| w.published_at(now))
                .map(|(k, _)| KeyRecord {
                    kid: k.kid().to_string(),
                    alg: k.alg().as_str().to_string(),
                    signing: keyset
                        .signing_algs()
                        .iter()
                        .any(|&a| keyset.for_alg(a, now).is_some_and(|s| s.kid() == k.kid())),
                })
                .collect();
            (t.id.clone(), keys)
        })
        .collect()
}

/// The keys each tenant of `config` would publish: its configured keys, or
/// the generated ones the store holds (with RS256 beside another algorithm).
async fn planned_keys(
    config: &Config,
    store: &Store,
) -> Result<BTreeMap<String, Vec<KeyRecord>>, StoreError> {
    let mut out = BTreeMap::new();
    for t in &config.tenants {
        if t.signing.rotation.is_some() {
            out.insert(t.id.clone(), Vec::new());
            continue;
        }
        let mut keys: Vec<KeyRecord> = t
            .signing
            .loaded_keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyRecord {
                kid: k.kid().to_string(),
                alg: k.alg().as_str().to_string(),
                // The first signs; RS256 beside it signs for clients that ask.
                signing: i == 0,
            })
            .collect();
        let stored = |alg: Alg| {
            let tenant = t.id.clone();
            async move {
                let key = store.find_signing_key(&tenant, alg.as_str()).await?;
                Ok::<_, StoreError>(key.map(|k| KeyRecord {
                    kid: k.kid,
                    alg: k.alg,
                    signing: true,
                }))
            }
        };
        // As the runtime builds keysets: the generated key when none is
        // configured, then RS256 beside another algorithm.
        if keys.is_empty() {
            keys.extend(stored(t.signing.alg).await?);
        }
        let rs256 = Alg::RS256.as_str();
        let none = keys.is_empty();
        match keys.iter_mut().find(|k| k.alg == rs256) {
            Some(k) => k.signing = true,
            None if !(none && t.signing.alg == Alg::RS256) => {
                keys.extend(stored(Alg::RS256).await?);
            }
            None => {}
        }
        out.insert(t.id.clone(), keys);
    }
    Ok(out)
}

/// What the plan compares with, and how the nodes stand.
#[derive(Debug)]
pub struct Plan {
    pub text: String,
    pub exit: u8,
}

/// Exit codes: nothing would change.
pub const EXIT_SAME: u8 = 0;
/// The plan could not be made (bad config, no database, no record).
pub const EXIT_ERROR: u8 = 1;
/// Changes, none of them cutting anyone off.
pub const EXIT_CHANGES: u8 = 2;
/// Changes with warnings: live users cut off, or fixtures failing.
pub const EXIT_WARNINGS: u8 = 3;

/// Options of `sesame plan`.
#[derive(Debug, Default, Clone)]
pub struct PlanOptions {
    /// Compare with this generation rather than the one the nodes serve.
    pub against: Option<String>,
    /// Fixture results for the new configuration: (cases, failed or errored,
    /// report), when there are fixtures.
    pub fixtures: Option<(usize, usize, String)>,
}

/// Plan `config` (valid, as `sesame check` would pass it) against what the
/// deployment on `store` serves, at `now`.
pub async fn plan(
    config: &Config,
    store: &Store,
    opts: &PlanOptions,
    now: i64,
) -> Result<Plan, String> {
    let mut out = String::new();
    let digester = digester(store).await.map_err(|e| e.to_string())?;
    let nodes = store.nodes().await.map_err(|e| e.to_string())?;
    let live: Vec<_> = nodes
        .iter()
        .filter(|n| now - n.seen_at <= NODE_LIVE_SECS)
        .collect();
    if nodes.is_empty() {
        let _ = writeln!(out, "No node has recorded itself in this database yet.");
    } else {
        let _ = writeln!(out, "Nodes:");
        for n in &nodes {
            let state = if now - n.seen_at <= NODE_LIVE_SECS {
                format!("seen {} ago", human_ago(now - n.seen_at))
            } else {
                format!("gone (last seen {} ago)", human_ago(now - n.seen_at))
            };
            let _ = writeln!(out, "  {}  serves {}  {state}", n.node_id, n.generation);
        }
    }
    // The generation to compare with: asked for, or the one most live nodes
    // serve (the most recently seen one on a tie).
    let baseline = match &opts.against {
        Some(g) => Some(g.clone()),
        None => {
            let mut counts: Vec<(&str, usize, i64)> = Vec::new();
            for n in &live {
                match counts.iter_mut().find(|c| c.0 == n.generation) {
                    Some(c) => {
                        c.1 += 1;
                        c.2 = c.2.max(n.seen_at);
                    }
                    None => counts.push((&n.generation, 1, n.seen_at)),
                }
            }
            if counts.len() > 1 {
                let _ = writeln!(
                    out,
                    "A rollout is in progress: the live nodes serve {} generations.",
                    counts.len()
                );
            }
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
            counts.first().map(|c| c.0.to_string())
        }
    };
    let old = match &baseline {
        Some(g) => match store.config_record(g).await.map_err(|e| e.to_string())? {
            Some(text) => serde_json::from_str::<Record>(&text)
                .map_err(|e| format!("the record of generation {g} is unreadable: {e}"))?,
            None => {
                return Err(format!(
                    "no node has recorded generation {g} in this database"
                ))
            }
        },
        None => Record::default(),
    };
    let generation = crate::runtime::generation_id(config);
    let keys = planned_keys(config, store)
        .await
        .map_err(|e| e.to_string())?;
    let new = record(config, &generation, &keys, &digester);
    let mut d = diff(&old, &new);
    dedup(&mut d.changes);
    let from = baseline.as_deref().unwrap_or("nothing");
    let _ = writeln!(out, "\nPlan: {from} → {generation}");
    for c in &d.changes {
        let _ = writeln!(out, "  {c}");
    }
    if d.changes.is_empty() {
        let _ = writeln!(out, "  no change");
    }
    let mut warnings = Vec::new();
    for cut in &d.cutoffs {
        if let Some(w) = warning(store, cut, now).await.map_err(|e| e.to_string())? {
            warnings.push(w);
        }
    }
    if let Some((cases, failed, report)) = &opts.fixtures {
        if *failed > 0 {
            warnings.push(format!(
                "{failed} of {cases} fixture case(s) fail with the new configuration:\n{}",
                indent(report, "    ")
            ));
        } else {
            let _ = writeln!(out, "\nFixtures: {cases} case(s) passed.");
        }
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for w in &warnings {
            let _ = writeln!(out, "  ! {w}");
        }
    }
    let _ = writeln!(
        out,
        "\n{} change(s), {} warning(s).",
        d.changes.len(),
        warnings.len()
    );
    let exit = if !warnings.is_empty() {
        EXIT_WARNINGS
    } else if d.changes.is_empty() {
        EXIT_SAME
    } else {
        EXIT_CHANGES
    };
    Ok(Plan { text: out, exit })
}

/// The reload log's one line: what `new` changes from `old`.
pub fn summary(old: &Record, new: &Record) -> String {
    if old.generation == new.generation {
        return "no change".to_string();
    }
    let mut d = diff(old, new);
    dedup(&mut d.changes);
    if d.changes.is_empty() {
        "only settings outside the tenants changed".to_string()
    } else {
        d.summary()
    }
}

/// Changes reported twice (a script two tenants share) once.
fn dedup(changes: &mut Vec<Change>) {
    let mut seen = Vec::new();
    changes.retain(|c| {
        let line = c.to_string();
        if seen.contains(&line) {
            false
        } else {
            seen.push(line);
            true
        }
    });
}

/// The warning for one cutoff, with what the store holds now; `None` when
/// nobody would notice.
async fn warning(store: &Store, cut: &Cutoff, now: i64) -> Result<Option<String>, StoreError> {
    // What `sesame revoke --dry-run` would count for these filters.
    let count = |tenant: &str, client: Option<&String>, sub: Option<&String>, sessions: bool| {
        let tenant = tenant.to_string();
        let filter = RevokeFilter {
            client_id: client.cloned(),
            user_sub: sub.cloned(),
            sessions,
            ..Default::default()
        };
        async move { store.revoke_matching(&tenant, filter, now, true).await }
    };
    let grants = |r: crate::store::Revoked| {
        format!(
            "{} live grant(s) ({} code(s), {} refresh token(s), {} access token(s))",
            r.grants, r.codes, r.refresh_tokens, r.access_tokens
        )
    };
    Ok(match cut {
        Cutoff::Tenant { tenant } => {
            let r = count(tenant, None, None, true).await?;
            (r.grants > 0 || r.sessions > 0).then(|| {
                format!(
                    "tenant {tenant} is removed: {} and {} session(s) end with it",
                    grants(r),
                    r.sessions
                )
            })
        }
        Cutoff::Client { tenant, client } => {
            let r = count(tenant, Some(client), None, false).await?;
            (r.grants > 0).then(|| {
                format!(
                    "client {tenant}/{client} is removed: {} stop working",
                    grants(r)
                )
            })
        }
        Cutoff::RedirectUri {
            tenant,
            client,
            uri,
        } => {
            let r = count(tenant, Some(client), None, false).await?;
            (r.grants > 0).then(|| {
                format!(
                    "redirect URI {uri} of client {tenant}/{client} is removed while the client \
                     has {}: sign-ins and codes bound for that URI fail",
                    grants(r)
                )
            })
        }
        Cutoff::User {
            tenant,
            username,
            sub,
        } => match sub {
            Some(sub) => {
                let r = count(tenant, None, Some(sub), true).await?;
                (r.grants > 0 || r.sessions > 0).then(|| {
                    format!(
                        "user {tenant}/{username} is removed: {} and {} session(s) stop working",
                        grants(r),
                        r.sessions
                    )
                })
            }
            None => None,
        },
        Cutoff::Lifetime {
            tenant,
            client,
            name,
            from,
            to,
        } => {
            let r = count(tenant, client.as_ref(), None, false).await?;
            let owner = match client {
                Some(c) => format!("client {tenant}/{c}"),
                None => format!("tenant {tenant}"),
            };
            (r.grants > 0).then(|| {
                format!(
                    "{name} lifetime of {owner} shortened from {} to {}: {} were issued under the \
                     longer one (they keep their expiry; what is issued from now on lives less)",
                    human(*from),
                    human(*to),
                    grants(r)
                )
            })
        }
        Cutoff::Key {
            tenant,
            kid,
            alg,
            signing,
            signs_for,
        } => {
            let jwts = store.live_jwt_access_tokens(tenant, now).await?;
            let signed = if *signing {
                format!("tokens it signed in the last {}", human(*signs_for))
            } else {
                "it does not sign now, but tokens it signed before".to_string()
            };
            Some(format!(
                "key {tenant}/{kid} ({alg}) is removed from the JWKS: {signed} stop verifying \
                 ({jwts} recorded JWT access token(s) of the tenant are unexpired); keep it \
                 published, not signing, until they expire"
            ))
        }
    })
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn human_ago(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}
