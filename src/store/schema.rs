//! The tables, shared by every backend (the DDL per dialect is in `migrations/`).
//! Hashes are `Binary` (BLOB / BINARY(32) / BYTEA), times `BigInt` unix seconds.

diesel::table! {
    signing_keys (tenant_id, alg) {
        tenant_id -> Text,
        alg -> Text,
        kid -> Text,
        private_pem -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    auth_requests (request_hash) {
        request_hash -> Binary,
        tenant_id -> Text,
        client_id -> Text,
        params -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    sessions (session_hash) {
        session_hash -> Binary,
        tenant_id -> Text,
        user_sub -> Text,
        auth_time -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        sid -> Text,
    }
}

diesel::table! {
    consents (tenant_id, client_id, user_sub) {
        tenant_id -> Text,
        client_id -> Text,
        user_sub -> Text,
        scope -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Binary,
        tenant_id -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_sub -> Text,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        code_challenge_method -> Nullable<Text>,
        auth_time -> BigInt,
        refresh_token -> Bool,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        redirect_uri_sent -> Bool,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Binary,
        tenant_id -> Text,
        grant_id -> Text,
        parent_hash -> Nullable<Binary>,
        client_id -> Text,
        user_sub -> Text,
        scope -> Text,
        auth_time -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        family_expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    access_tokens (token_hash) {
        token_hash -> Binary,
        tenant_id -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_sub -> Nullable<Text>,
        scope -> Text,
        jwt -> Bool,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    throttles (tenant_id, key_hash) {
        tenant_id -> Text,
        key_hash -> Binary,
        failures -> BigInt,
        pending -> BigInt,
        window_start -> BigInt,
        locked_until -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        secret -> Binary,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    signing_keys,
    auth_requests,
    sessions,
    consents,
    authorization_codes,
    refresh_tokens,
    access_tokens,
    throttles,
    server_secrets,
);
