//! CONTRACT STUB — the store helper implements this with diesel + r2d2,
//! keeping these signatures (it may add more).
#![allow(unused_variables, clippy::unimplemented)]

use std::path::Path;
use std::time::Duration;

mod model;

pub use model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Bad URL, or a backend not compiled in.
    #[error("{0}")]
    Config(String),
    /// No connection could be had in time: the database is down or overloaded.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

#[derive(Clone)]
pub struct Store {}

impl Store {
    /// Build the pool (no connection is required to succeed yet). Relative
    /// SQLite paths resolve against `base_dir`; the SQLite file's folder is created.
    pub fn connect(url: &str, pool_size: u32, connect_timeout: Duration, base_dir: &Path) -> Result<Store, StoreError> {
        unimplemented!()
    }
    pub fn backend(&self) -> Backend {
        unimplemented!()
    }
    /// Apply pending migrations (blocking); returns the versions applied.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        unimplemented!()
    }
    pub async fn ping(&self) -> Result<(), StoreError> {
        unimplemented!()
    }
    /// Store `key` unless the tenant already has one for its alg; return the one that is stored.
    pub async fn find_or_insert_signing_key(&self, key: StoredKey) -> Result<StoredKey, StoreError> {
        unimplemented!()
    }
    pub async fn insert_auth_request(&self, row: AuthRequestRow) -> Result<(), StoreError> {
        unimplemented!()
    }
    /// Unexpired request, or None.
    pub async fn find_auth_request(&self, tenant_id: &str, hash: TokenHash, now: i64) -> Result<Option<AuthRequestRow>, StoreError> {
        unimplemented!()
    }
    pub async fn delete_auth_request(&self, tenant_id: &str, hash: TokenHash) -> Result<bool, StoreError> {
        unimplemented!()
    }
    pub async fn insert_session(&self, row: SessionRow) -> Result<(), StoreError> {
        unimplemented!()
    }
    /// Unexpired, unrevoked session, or None.
    pub async fn find_session(&self, tenant_id: &str, hash: TokenHash, now: i64) -> Result<Option<SessionRow>, StoreError> {
        unimplemented!()
    }
    pub async fn revoke_session(&self, tenant_id: &str, hash: TokenHash, now: i64) -> Result<bool, StoreError> {
        unimplemented!()
    }
    /// The scopes (space separated) the user already granted the client.
    pub async fn find_consent(&self, tenant_id: &str, client_id: &str, user_sub: &str) -> Result<Option<String>, StoreError> {
        unimplemented!()
    }
    /// Insert or replace the consent of (tenant, client, user).
    pub async fn save_consent(&self, tenant_id: &str, client_id: &str, user_sub: &str, scope: &str, now: i64) -> Result<(), StoreError> {
        unimplemented!()
    }
    pub async fn insert_code(&self, row: CodeRow) -> Result<(), StoreError> {
        unimplemented!()
    }
    /// Atomically mark the code consumed (`UPDATE … WHERE consumed_at IS NULL`; the row count decides).
    pub async fn consume_code(&self, tenant_id: &str, hash: TokenHash, now: i64) -> Result<CodeConsumption, StoreError> {
        unimplemented!()
    }
    pub async fn insert_refresh_token(&self, row: RefreshTokenRow) -> Result<(), StoreError> {
        unimplemented!()
    }
    pub async fn find_refresh_token(&self, tenant_id: &str, hash: TokenHash) -> Result<Option<RefreshTokenRow>, StoreError> {
        unimplemented!()
    }
    /// In one transaction: mark `old` used if it is unused and unrevoked (the row
    /// count decides), and if so insert `successor`.
    pub async fn rotate_refresh_token(&self, tenant_id: &str, old: TokenHash, successor: Option<RefreshTokenRow>, now: i64) -> Result<Rotation, StoreError> {
        unimplemented!()
    }
    pub async fn insert_access_token(&self, row: AccessTokenRow) -> Result<(), StoreError> {
        unimplemented!()
    }
    pub async fn find_access_token(&self, tenant_id: &str, hash: TokenHash) -> Result<Option<AccessTokenRow>, StoreError> {
        unimplemented!()
    }
    pub async fn revoke_access_token(&self, tenant_id: &str, hash: TokenHash, now: i64) -> Result<bool, StoreError> {
        unimplemented!()
    }
    /// In one transaction: revoke every refresh and access token of the grant (family) and consume its code.
    pub async fn revoke_grant(&self, tenant_id: &str, grant_id: &str, now: i64) -> Result<(), StoreError> {
        unimplemented!()
    }
    /// Delete rows expired before `now` (in batches of `batch`); returns how many went.
    pub async fn purge_expired(&self, now: i64, batch: u32) -> Result<u64, StoreError> {
        unimplemented!()
    }
}
