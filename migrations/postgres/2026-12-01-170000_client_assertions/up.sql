-- Client assertions seen (RFC 7523 §3: a `jti` is used once), by the
-- SHA-256 of their `jti`, kept until the assertion expires.
CREATE TABLE client_assertions (
    tenant_id  TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    jti_hash   BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti_hash)
);
