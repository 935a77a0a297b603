//! Ending grants on an operator's word (`sesame revoke`): every grant of a
//! tenant matching a client, a user or the configuration generation that
//! issued one of its tokens, and browser sessions.
//!
//! A grant is ended as a whole (its code spent, every refresh and access
//! token revoked), as `revoke_grant` does for a replay: whatever sesame
//! validates (introspection, userinfo, refresh) refuses it from then on, on
//! every node. The live rows of the tenant are read once, matched here,
//! then the grants are revoked by id in one write transaction.

use std::collections::BTreeSet;
use std::time::Duration;

use diesel::prelude::*;

use super::conn::write_tx;
use super::{q, schema, Store, StoreError};

/// Which grants and sessions to end. Every filter given must match; with
/// none, every grant of the tenant.
#[derive(Debug, Clone, Default)]
pub struct RevokeFilter {
    pub client_id: Option<String>,
    pub user_sub: Option<String>,
    /// Grants with a code or token issued by this configuration generation.
    pub generation: Option<String>,
    /// Only this browser session (its public `sid`), no grant.
    pub sid: Option<String>,
    /// Also end the browser sessions of the user (or, with no user and no
    /// client, of the whole tenant).
    pub sessions: bool,
    /// The clients told of each session ended (back-channel logout): one
    /// outbox message per ended session and each of these it signed in to.
    pub backchannel_clients: Vec<String>,
}

/// What was (or, in a dry run, would be) ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revoked {
    pub grants: u64,
    pub codes: u64,
    pub refresh_tokens: u64,
    pub access_tokens: u64,
    pub sessions: u64,
    /// Back-channel logout messages queued for the sessions ended.
    pub logouts: u64,
}

/// One live row, as far as matching needs it.
struct Live {
    grant_id: String,
    client_id: String,
    user_sub: Option<String>,
    generation: String,
}

impl RevokeFilter {
    fn matches(&self, row: &Live) -> bool {
        self.client_id.as_ref().is_none_or(|c| *c == row.client_id)
            && self
                .user_sub
                .as_ref()
                .is_none_or(|u| row.user_sub.as_ref() == Some(u))
            && self
                .generation
                .as_ref()
                .is_none_or(|g| *g == row.generation)
    }
}

/// Grant ids are revoked this many at a time.
const CHUNK: usize = 500;

impl Store {
    /// End what `filter` selects in `tenant_id` at `now`; with `dry_run`,
    /// only count it.
    pub async fn revoke_matching(
        &self,
        tenant_id: &str,
        filter: RevokeFilter,
        now: i64,
        dry_run: bool,
    ) -> Result<Revoked, StoreError> {
        use schema::access_tokens::dsl as t;
        use schema::authorization_codes::dsl as c;
        use schema::refresh_tokens::dsl as r;
        use schema::sessions::dsl as s;
        let tenant = tenant_id.to_string();
        // An operator's command over possibly many rows: no request deadline.
        self.write_within(Duration::from_secs(600), move |conn| {
            q(write_tx(conn, |conn| {
                let mut out = Revoked::default();
                let mut grants = BTreeSet::new();
                if filter.sid.is_none() {
                    let codes: Vec<(String, String, String, String)> = c::authorization_codes
                        .filter(c::tenant_id.eq(&tenant))
                        .filter(c::consumed_at.is_null())
                        .filter(c::expires_at.gt(now))
                        .select((c::grant_id, c::client_id, c::user_sub, c::generation))
                        .load(conn)?;
                    let refresh: Vec<(String, String, String, String, bool)> = r::refresh_tokens
                        .filter(r::tenant_id.eq(&tenant))
                        .filter(r::revoked_at.is_null())
                        .filter(r::expires_at.gt(now))
                        .select((
                            r::grant_id,
                            r::client_id,
                            r::user_sub,
                            r::generation,
                            r::used_at.is_null(),
                        ))
                        .load(conn)?;
                    let access: Vec<(String, String, Option<String>, String)> = t::access_tokens
                        .filter(t::tenant_id.eq(&tenant))
                        .filter(t::revoked_at.is_null())
                        .filter(t::expires_at.gt(now))
                        .select((t::grant_id, t::client_id, t::user_sub, t::generation))
                        .load(conn)?;
                    let live = |(grant_id, client_id, user_sub, generation)| Live {
                        grant_id,
                        client_id,
                        user_sub,
                        generation,
                    };
                    let codes: Vec<Live> = codes
                        .into_iter()
                        .map(|(g, c, u, n)| live((g, c, Some(u), n)))
                        .collect();
                    let refresh: Vec<(Live, bool)> = refresh
                        .into_iter()
                        .map(|(g, c, u, n, unspent)| (live((g, c, Some(u), n)), unspent))
                        .collect();
                    let access: Vec<Live> = access.into_iter().map(live).collect();
                    for row in codes
                        .iter()
                        .chain(refresh.iter().map(|(l, _)| l))
                        .chain(access.iter())
                    {
                        if filter.matches(row) {
                            grants.insert(row.grant_id.clone());
                        }
                    }
                    let ended = |id: &String| grants.contains(id);
                    out.grants = grants.len() as u64;
                    out.codes = codes.iter().filter(|l| ended(&l.grant_id)).count() as u64;
                    out.refresh_tokens = refresh
                        .iter()
                        .filter(|(l, unspent)| *unspent && ended(&l.grant_id))
                        .count() as u64;
                    out.access_tokens = access.iter().filter(|l| ended(&l.grant_id)).count() as u64;
                }
                let ids: Vec<String> = grants.into_iter().collect();
                if !dry_run {
                    for chunk in ids.chunks(CHUNK) {
                        diesel::update(
                            r::refresh_tokens
                                .filter(r::tenant_id.eq(&tenant))
                                .filter(r::grant_id.eq_any(chunk))
                                .filter(r::revoked_at.is_null()),
                        )
                        .set(r::revoked_at.eq(Some(now)))
                        .execute(conn)?;
                        diesel::update(
                            t::access_tokens
                                .filter(t::tenant_id.eq(&tenant))
                                .filter(t::grant_id.eq_any(chunk))
                                .filter(t::revoked_at.is_null()),
                        )
                        .set(t::revoked_at.eq(Some(now)))
                        .execute(conn)?;
                        diesel::update(
                            c::authorization_codes
                                .filter(c::tenant_id.eq(&tenant))
                                .filter(c::grant_id.eq_any(chunk))
                                .filter(c::consumed_at.is_null()),
                        )
                        .set(c::consumed_at.eq(Some(now)))
                        .execute(conn)?;
                    }
                }
                // Sessions: one by its sid, or the user's, or the tenant's.
                let whole_tenant = filter.user_sub.is_none() && filter.client_id.is_none();
                if filter.sid.is_some()
                    || (filter.sessions && (filter.user_sub.is_some() || whole_tenant))
                {
                    let mut live = s::sessions
                        .filter(s::tenant_id.eq(&tenant))
                        .filter(s::revoked_at.is_null())
                        .filter(s::expires_at.gt(now))
                        .select((s::session_hash, s::sid, s::user_sub))
                        .into_boxed();
                    if let Some(sid) = &filter.sid {
                        live = live.filter(s::sid.eq(sid.clone()));
                    }
                    if let Some(sub) = &filter.user_sub {
                        live = live.filter(s::user_sub.eq(sub.clone()));
                    }
                    let rows: Vec<(super::TokenHash, String, String)> = live.load(conn)?;
                    out.sessions = rows.len() as u64;
                    if !dry_run {
                        let hashes: Vec<super::TokenHash> = rows.iter().map(|r| r.0).collect();
                        for chunk in hashes.chunks(CHUNK) {
                            diesel::update(
                                s::sessions
                                    .filter(s::tenant_id.eq(&tenant))
                                    .filter(s::session_hash.eq_any(chunk)),
                            )
                            .set(s::revoked_at.eq(Some(now)))
                            .execute(conn)?;
                        }
                        let ended: Vec<(String, String)> =
                            rows.into_iter().map(|(_, sid, sub)| (sid, sub)).collect();
                        let notify = &filter.backchannel_clients;
                        out.logouts =
                            super::logout::enqueue_logouts(conn, &tenant, &ended, notify, now)?
                                .iter()
                                .map(|e| {
                                    e.clients.iter().filter(|c| notify.contains(c)).count() as u64
                                })
                                .sum();
                    }
                }
                Ok(out)
            }))
        })
        .await
    }
}

/// A revocation of unrecorded `client_credentials` JWT access tokens: those
/// of the tenant issued at or before `issued_before`, of `client_id` and of
/// `generation` when they are not empty.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = schema::revocation_markers)]
pub struct RevocationMarker {
    pub client_id: String,
    pub generation: String,
    pub issued_before: i64,
    pub expires_at: i64,
}

impl RevocationMarker {
    /// Whether it revokes a token of `client_id`, issued at `iat` by `generation`.
    pub fn covers(&self, client_id: &str, generation: &str, iat: i64) -> bool {
        iat <= self.issued_before
            && (self.client_id.is_empty() || self.client_id == client_id)
            && (self.generation.is_empty() || self.generation == generation)
    }
}

impl Store {
    /// Revoke the unrecorded tokens `marker` covers, on every node (each
    /// reads the markers again within [`crate::oauth::MARKERS_FRESH`]).
    pub async fn add_revocation_marker(
        &self,
        tenant_id: &str,
        marker: RevocationMarker,
    ) -> Result<(), StoreError> {
        use schema::revocation_markers::dsl as m;
        let tenant = tenant_id.to_string();
        self.write(move |conn| {
            match diesel::insert_into(m::revocation_markers)
                .values((
                    m::tenant_id.eq(&tenant),
                    m::client_id.eq(&marker.client_id),
                    m::generation.eq(&marker.generation),
                    m::issued_before.eq(marker.issued_before),
                    m::expires_at.eq(marker.expires_at),
                ))
                .execute(conn)
            {
                Err(e) if !super::conn::is_unique_violation(&e) => Err(super::query_error(e)),
                _ => Ok(()),
            }
        })
        .await
    }

    /// The tenant's markers still in force at `now`.
    pub async fn revocation_markers(
        &self,
        tenant_id: &str,
        now: i64,
    ) -> Result<Vec<RevocationMarker>, StoreError> {
        use schema::revocation_markers::dsl as m;
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            q(m::revocation_markers
                .filter(m::tenant_id.eq(&tenant))
                .filter(m::expires_at.gt(now))
                .select(RevocationMarker::as_select())
                .load(conn))
        })
        .await
    }
}
