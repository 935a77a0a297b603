-- `sesame revoke` on client_credentials JWT access tokens, which are not
-- recorded when issued: every such token of the tenant (of the client, of
-- the generation, when named) issued at or before `issued_before` is revoked.
-- Kept until the longest such token would have expired.
CREATE TABLE revocation_markers (
    tenant_id     VARCHAR(255) NOT NULL,
    client_id     VARCHAR(255) NOT NULL,
    generation    VARCHAR(64)  NOT NULL,
    issued_before BIGINT       NOT NULL,
    expires_at    BIGINT       NOT NULL,
    PRIMARY KEY (tenant_id, client_id, generation, issued_before)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
