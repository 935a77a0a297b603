-- `sesame revoke` on client_credentials JWT access tokens, which are not
-- recorded when issued: every such token of the tenant (of the client, of
-- the generation, when named) issued at or before `issued_before` is revoked.
-- Kept until the longest such token would have expired.
CREATE TABLE revocation_markers (
    tenant_id     TEXT   NOT NULL,
    client_id     TEXT   NOT NULL,
    generation    TEXT   NOT NULL,
    issued_before BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, generation, issued_before)
);
