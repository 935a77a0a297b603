//! What each node serves: the redacted record of every configuration
//! generation a node has served (`config_generations`), and the nodes with
//! the generation they serve and when they last said so (`nodes`). Read by
//! `sesame plan`, from any machine that reaches the database.

use diesel::prelude::*;

use super::conn::{is_unique_violation, write_tx};
use super::{q, schema, Store, StoreError};

/// One node, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = schema::nodes)]
pub struct NodeRow {
    pub node_id: String,
    pub generation: String,
    pub started_at: i64,
    pub seen_at: i64,
}

impl Store {
    /// Record that `node_id` serves `generation` (whose redacted record is
    /// `record`) as of `now`. The record of a generation is written once;
    /// the node's row is replaced.
    pub async fn record_serving(
        &self,
        node_id: &str,
        generation: &str,
        record: String,
        started_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        use schema::config_generations::dsl as g;
        use schema::nodes::dsl as n;
        let (node, generation) = (node_id.to_string(), generation.to_string());
        self.write(move |conn| {
            q(write_tx(conn, |conn| {
                let known = g::config_generations
                    .filter(g::generation.eq(&generation))
                    .count()
                    .get_result::<i64>(conn)?;
                if known == 0 {
                    match diesel::insert_into(g::config_generations)
                        .values((
                            g::generation.eq(&generation),
                            g::record.eq(&record),
                            g::recorded_at.eq(now),
                        ))
                        .execute(conn)
                    {
                        Err(e) if !is_unique_violation(&e) => return Err(e),
                        _ => {}
                    }
                }
                let updated = diesel::update(n::nodes.filter(n::node_id.eq(&node)))
                    .set((
                        n::generation.eq(&generation),
                        n::started_at.eq(started_at),
                        n::seen_at.eq(now),
                    ))
                    .execute(conn)?;
                if updated == 0 {
                    diesel::insert_into(n::nodes)
                        .values((
                            n::node_id.eq(&node),
                            n::generation.eq(&generation),
                            n::started_at.eq(started_at),
                            n::seen_at.eq(now),
                        ))
                        .execute(conn)?;
                }
                Ok(())
            }))
        })
        .await
    }

    /// Say that `node_id` is still up (it serves what it last recorded).
    pub async fn node_seen(&self, node_id: &str, now: i64) -> Result<bool, StoreError> {
        use schema::nodes::dsl as n;
        let node = node_id.to_string();
        self.write(move |conn| {
            q(diesel::update(n::nodes.filter(n::node_id.eq(&node)))
                .set(n::seen_at.eq(now))
                .execute(conn))
            .map(|updated| updated == 1)
        })
        .await
    }

    /// Every node that has recorded itself, most recently seen first.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        use schema::nodes::dsl as n;
        self.run(|conn| {
            q(n::nodes
                .select(NodeRow::as_select())
                .order((n::seen_at.desc(), n::node_id.asc()))
                .load(conn))
        })
        .await
    }

    /// The redacted record of `generation`, if a node recorded it.
    pub async fn config_record(&self, generation: &str) -> Result<Option<String>, StoreError> {
        use schema::config_generations::dsl as g;
        let generation = generation.to_string();
        self.run(move |conn| {
            q(g::config_generations
                .filter(g::generation.eq(&generation))
                .select(g::record)
                .first::<String>(conn)
                .optional())
        })
        .await
    }

    /// Unexpired access tokens of `tenant_id` issued as JWTs and recorded
    /// (signed by the tenant's keys of the time).
    pub async fn live_jwt_access_tokens(
        &self,
        tenant_id: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        use schema::access_tokens::dsl as t;
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            q(t::access_tokens
                .filter(t::tenant_id.eq(&tenant))
                .filter(t::jwt.eq(true))
                .filter(t::expires_at.gt(now))
                .filter(t::revoked_at.is_null())
                .count()
                .get_result(conn))
        })
        .await
    }
}

/// Nodes not seen for this long are forgotten.
pub const NODE_FORGOTTEN_SECS: i64 = 7 * 86_400;
/// Records no node serves are kept this long (a plan may still name them).
pub const RECORD_KEPT_SECS: i64 = 30 * 86_400;

impl Store {
    /// Forget nodes long gone, old records no node serves, and revocation
    /// markers past the tokens they revoke.
    pub async fn purge_nodes(&self, now: i64) -> Result<usize, StoreError> {
        use schema::config_generations::dsl as g;
        use schema::nodes::dsl as n;
        self.write(move |conn| {
            let nodes = q(diesel::delete(
                n::nodes.filter(n::seen_at.lt(now - NODE_FORGOTTEN_SECS)),
            )
            .execute(conn))?;
            let served = n::nodes.select(n::generation);
            let records = q(diesel::delete(
                g::config_generations
                    .filter(g::recorded_at.lt(now - RECORD_KEPT_SECS))
                    .filter(g::generation.ne_all(served)),
            )
            .execute(conn))?;
            let markers = q(diesel::delete(
                schema::revocation_markers::table
                    .filter(schema::revocation_markers::expires_at.le(now)),
            )
            .execute(conn))?;
            Ok(nodes + records + markers)
        })
        .await
    }
}
