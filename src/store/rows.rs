//! diesel row types (hashes as `Vec<u8>`) and their conversion to and from
//! the plain model types.

use diesel::prelude::*;

use super::schema::*;
use super::{
    AccessTokenRow, AuthRequestRow, CodeRow, RefreshTokenRow, SessionRow, StoreError, StoredKey,
    TokenHash,
};

fn hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    let len = bytes.len();
    <[u8; 32]>::try_from(bytes)
        .map(TokenHash)
        .map_err(|_| StoreError::Query(format!("stored hash has {len} bytes, not 32")))
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DbKey {
    pub tenant_id: String,
    pub alg: String,
    pub kid: String,
    pub private_pem: String,
    pub created_at: i64,
}

impl From<StoredKey> for DbKey {
    fn from(k: StoredKey) -> DbKey {
        DbKey {
            tenant_id: k.tenant_id,
            alg: k.alg,
            kid: k.kid,
            private_pem: k.private_pem,
            created_at: k.created_at,
        }
    }
}

impl From<DbKey> for StoredKey {
    fn from(k: DbKey) -> StoredKey {
        StoredKey {
            tenant_id: k.tenant_id,
            alg: k.alg,
            kid: k.kid,
            private_pem: k.private_pem,
            created_at: k.created_at,
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_requests)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DbAuthRequest {
    pub request_hash: Vec<u8>,
    pub tenant_id: String,
    pub client_id: String,
    pub params: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<AuthRequestRow> for DbAuthRequest {
    fn from(r: AuthRequestRow) -> Self {
        DbAuthRequest {
            request_hash: r.request_hash.0.to_vec(),
            tenant_id: r.tenant_id,
            client_id: r.client_id,
            params: r.params,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

impl TryFrom<DbAuthRequest> for AuthRequestRow {
    type Error = StoreError;
    fn try_from(r: DbAuthRequest) -> Result<Self, StoreError> {
        Ok(AuthRequestRow {
            tenant_id: r.tenant_id,
            request_hash: hash(r.request_hash)?,
            client_id: r.client_id,
            params: r.params,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DbSession {
    pub session_hash: Vec<u8>,
    pub tenant_id: String,
    pub user_sub: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<SessionRow> for DbSession {
    fn from(r: SessionRow) -> Self {
        DbSession {
            session_hash: r.session_hash.0.to_vec(),
            tenant_id: r.tenant_id,
            user_sub: r.user_sub,
            auth_time: r.auth_time,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

impl TryFrom<DbSession> for SessionRow {
    type Error = StoreError;
    fn try_from(r: DbSession) -> Result<Self, StoreError> {
        Ok(SessionRow {
            tenant_id: r.tenant_id,
            session_hash: hash(r.session_hash)?,
            user_sub: r.user_sub,
            auth_time: r.auth_time,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = consents)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DbConsent<'a> {
    pub tenant_id: &'a str,
    pub client_id: &'a str,
    pub user_sub: &'a str,
    pub scope: &'a str,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DbCode {
    pub code_hash: Vec<u8>,
    pub tenant_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub auth_time: i64,
    pub refresh_token: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

impl From<CodeRow> for DbCode {
    fn from(r: CodeRow) -> Self {
        DbCode {
            code_hash: r.code_hash.0.to_vec(),
            tenant_id: r.tenant_id,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_sub: r.user_sub,
            redirect_uri: r.redirect_uri,
            scope: r.scope,
            nonce: r.nonce,
            code_challenge: r.code_challenge,
            code_challenge_method: r.code_challenge_method,
            auth_time: r.auth_time,
            refresh_token: r.refresh_token,
            created_at: r.created_at,
            expires_at: r.expires_at,
            consumed_at: r.consumed_at,
        }
    }
}

impl TryFrom<DbCode> for CodeRow {
    type Error = StoreError;
    fn try_from(r: DbCode) -> Result<Self, StoreError> {
        Ok(CodeRow {
            tenant_id: r.tenant_id,
            code_hash: hash(r.code_hash)?,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_sub: r.user_sub,
            redirect_uri: r.redirect_uri,
            scope: r.scope,
            nonce: r.nonce,
            code_challenge: r.code_challenge,
            code_challenge_method: r.code_challenge_method,
            auth_time: r.auth_time,
            refresh_token: r.refresh_token,
            created_at: r.created_at,
            expires_at: r.expires_at,
            consumed_at: r.consumed_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DbRefreshToken {
    pub token_hash: Vec<u8>,
    pub tenant_id: String,
    pub grant_id: String,
    pub parent_hash: Option<Vec<u8>>,
    pub client_id: String,
    pub user_sub: String,
    pub scope: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<RefreshTokenRow> for DbRefreshToken {
    fn from(r: RefreshTokenRow) -> Self {
        DbRefreshToken {
            token_hash: r.token_hash.0.to_vec(),
            tenant_id: r.tenant_id,
            grant_id: r.grant_id,
            parent_hash: r.parent_hash.map(|h| h.0.to_vec()),
            client_id: r.client_id,
            user_sub: r.user_sub,
            scope: r.scope,
            auth_time: r.auth_time,
            created_at: r.created_at,
            expires_at: r.expires_at,
            family_expires_at: r.family_expires_at,
            used_at: r.used_at,
            revoked_at: r.revoked_at,
        }
    }
}

impl TryFrom<DbRefreshToken> for RefreshTokenRow {
    type Error = StoreError;
    fn try_from(r: DbRefreshToken) -> Result<Self, StoreError> {
        Ok(RefreshTokenRow {
            tenant_id: r.tenant_id,
            token_hash: hash(r.token_hash)?,
            grant_id: r.grant_id,
            parent_hash: r.parent_hash.map(hash).transpose()?,
            client_id: r.client_id,
            user_sub: r.user_sub,
            scope: r.scope,
            auth_time: r.auth_time,
            created_at: r.created_at,
            expires_at: r.expires_at,
            family_expires_at: r.family_expires_at,
            used_at: r.used_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = access_tokens)]
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct DbAccessToken {
    pub token_hash: Vec<u8>,
    pub tenant_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_sub: Option<String>,
    pub scope: String,
    pub jwt: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<AccessTokenRow> for DbAccessToken {
    fn from(r: AccessTokenRow) -> Self {
        DbAccessToken {
            token_hash: r.token_hash.0.to_vec(),
            tenant_id: r.tenant_id,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_sub: r.user_sub,
            scope: r.scope,
            jwt: r.jwt,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

impl TryFrom<DbAccessToken> for AccessTokenRow {
    type Error = StoreError;
    fn try_from(r: DbAccessToken) -> Result<Self, StoreError> {
        Ok(AccessTokenRow {
            tenant_id: r.tenant_id,
            token_hash: hash(r.token_hash)?,
            grant_id: r.grant_id,
            client_id: r.client_id,
            user_sub: r.user_sub,
            scope: r.scope,
            jwt: r.jwt,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}
