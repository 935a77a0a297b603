CREATE TABLE signing_keys (
    tenant_id   VARCHAR(255)    NOT NULL,
    alg         VARCHAR(64)    NOT NULL,
    kid         VARCHAR(255)    NOT NULL,
    private_pem TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, alg)
);

CREATE TABLE auth_requests (
    request_hash BYTEA  NOT NULL PRIMARY KEY,
    tenant_id    VARCHAR(255)   NOT NULL,
    client_id    VARCHAR(255)   NOT NULL,
    params       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE sessions (
    session_hash BYTEA  NOT NULL PRIMARY KEY,
    tenant_id    VARCHAR(255)   NOT NULL,
    user_sub     VARCHAR(255)   NOT NULL,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    tenant_id  VARCHAR(255)   NOT NULL,
    client_id  VARCHAR(255)   NOT NULL,
    user_sub   VARCHAR(255)   NOT NULL,
    scope      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, user_sub)
);

CREATE TABLE authorization_codes (
    code_hash             BYTEA   NOT NULL PRIMARY KEY,
    tenant_id             VARCHAR(255)    NOT NULL,
    grant_id              VARCHAR(255)    NOT NULL,
    client_id             VARCHAR(255)    NOT NULL,
    user_sub              VARCHAR(255)    NOT NULL,
    redirect_uri          TEXT    NOT NULL,
    scope                 TEXT    NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,
    code_challenge_method VARCHAR(64),
    auth_time             BIGINT  NOT NULL,
    refresh_token         BOOLEAN NOT NULL,
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    consumed_at           BIGINT
);
CREATE INDEX authorization_codes_grant ON authorization_codes (tenant_id, grant_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash        BYTEA  NOT NULL PRIMARY KEY,
    tenant_id         VARCHAR(255)   NOT NULL,
    grant_id          VARCHAR(255)   NOT NULL,
    parent_hash       BYTEA,
    client_id         VARCHAR(255)   NOT NULL,
    user_sub          VARCHAR(255)   NOT NULL,
    scope             TEXT   NOT NULL,
    auth_time         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    used_at           BIGINT,
    revoked_at        BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (tenant_id, grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE access_tokens (
    token_hash BYTEA   NOT NULL PRIMARY KEY,
    tenant_id  VARCHAR(255)    NOT NULL,
    grant_id   VARCHAR(255)    NOT NULL,
    client_id  VARCHAR(255)    NOT NULL,
    user_sub   VARCHAR(255),
    scope      TEXT    NOT NULL,
    jwt        BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_grant ON access_tokens (tenant_id, grant_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);
