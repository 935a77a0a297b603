-- Client assertions seen (RFC 7523 §3: a `jti` is used once), by the
-- SHA-256 of their `jti`, kept until the assertion expires.
CREATE TABLE client_assertions (
    tenant_id  VARCHAR(255) NOT NULL,
    client_id  VARCHAR(255) NOT NULL,
    jti_hash   BINARY(32)   NOT NULL,
    expires_at BIGINT       NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
