//! Pushed authorization requests (RFC 9126): stored by the hash of their
//! `request_uri`, taken once.

use diesel::prelude::*;

use super::{q, schema, Store, StoreError, TokenHash};

/// A pushed authorization request, keyed by the SHA-256 of its `request_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = schema::pushed_authorization_requests)]
#[diesel(treat_none_as_default_value = false)]
pub struct PushedRequestRow {
    pub tenant_id: String,
    pub request_hash: TokenHash,
    /// The client that pushed it: the only one that may use it.
    pub client_id: String,
    /// The validated request parameters, as a JSON object (no credentials).
    pub params: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn insert_pushed_request(&self, row: PushedRequestRow) -> Result<(), StoreError> {
        use schema::pushed_authorization_requests::dsl as p;
        self.write(move |conn| {
            q(diesel::insert_into(p::pushed_authorization_requests)
                .values(row)
                .execute(conn))
            .map(|_| ())
        })
        .await
    }

    /// Take the pushed request with this hash if `client_id` pushed it and
    /// it has not expired: it is deleted, and of racing takers (on any
    /// node) only the one whose `DELETE` removed the row gets it. A request
    /// that another client names is left in place.
    pub async fn consume_pushed_request(
        &self,
        tenant_id: &str,
        hash: TokenHash,
        client_id: &str,
        now: i64,
    ) -> Result<Option<PushedRequestRow>, StoreError> {
        use schema::pushed_authorization_requests::dsl as p;
        let (tenant, client) = (tenant_id.to_string(), client_id.to_string());
        self.write(move |conn| {
            let live = p::pushed_authorization_requests
                .filter(p::tenant_id.eq(&tenant))
                .filter(p::request_hash.eq(hash))
                .filter(p::client_id.eq(&client))
                .filter(p::expires_at.gt(now));
            let Some(row) = q(live
                .select(PushedRequestRow::as_select())
                .first(conn)
                .optional())?
            else {
                return Ok(None);
            };
            let taken = q(diesel::delete(live).execute(conn))? == 1;
            Ok(taken.then_some(row))
        })
        .await
    }
}
