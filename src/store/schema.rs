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
    key_ring (tenant_id, kid) {
        tenant_id -> Text,
        alg -> Text,
        kid -> Text,
        private_pem -> Text,
        signs_from -> BigInt,
        retired_at -> Nullable<BigInt>,
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
        generation -> Text,
        resource -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
        sid -> Nullable<Text>,
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
        generation -> Text,
        jkt -> Nullable<Text>,
        resource -> Nullable<Text>,
        sid -> Nullable<Text>,
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
        generation -> Text,
        jkt -> Nullable<Text>,
        audience -> Nullable<Text>,
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

diesel::table! {
    config_generations (generation) {
        generation -> Text,
        record -> Text,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    nodes (node_id) {
        node_id -> Text,
        generation -> Text,
        started_at -> BigInt,
        seen_at -> BigInt,
    }
}

diesel::table! {
    revocation_markers (tenant_id, client_id, generation, issued_before) {
        tenant_id -> Text,
        client_id -> Text,
        generation -> Text,
        issued_before -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    client_assertions (tenant_id, client_id, jti_hash) {
        tenant_id -> Text,
        client_id -> Text,
        jti_hash -> Binary,
        expires_at -> BigInt,
    }
}

diesel::table! {
    dpop_proofs (tenant_id, jti_hash) {
        tenant_id -> Text,
        jti_hash -> Binary,
        expires_at -> BigInt,
    }
}

diesel::table! {
    pushed_authorization_requests (request_hash) {
        request_hash -> Binary,
        tenant_id -> Text,
        client_id -> Text,
        params -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    session_clients (tenant_id, sid, client_id) {
        tenant_id -> Text,
        sid -> Text,
        client_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    logout_outbox (jti) {
        jti -> Text,
        tenant_id -> Text,
        client_id -> Text,
        sid -> Text,
        user_sub -> Text,
        created_at -> BigInt,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        leased_until -> BigInt,
        lease_id -> Text,
        delivered_at -> Nullable<BigInt>,
        abandoned_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
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
    config_generations,
    nodes,
    revocation_markers,
    client_assertions,
    dpop_proofs,
    key_ring,
    pushed_authorization_requests,
    session_clients,
    logout_outbox,
);
