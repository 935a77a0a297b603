-- DPoP (RFC 9449): the JWK thumbprint a token is bound to; proofs seen, by
-- the SHA-256 of their `jti`, kept until they are too old to be accepted.
-- A code bound to a DPoP key at the authorization request (`dpop_jkt`,
-- or a proof at /par: RFC 9449 §10).
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt VARCHAR(64) NULL;
-- Resource indicators (RFC 8707): the resources a grant is for
-- (space-separated), and the one an access token was issued for.
ALTER TABLE access_tokens ADD COLUMN jkt VARCHAR(64) NULL;
ALTER TABLE access_tokens ADD COLUMN audience TEXT NULL;
ALTER TABLE refresh_tokens ADD COLUMN jkt VARCHAR(64) NULL;
ALTER TABLE refresh_tokens ADD COLUMN resource TEXT NULL;
ALTER TABLE authorization_codes ADD COLUMN resource TEXT NULL;
CREATE TABLE dpop_proofs (
    tenant_id  VARCHAR(255) NOT NULL,
    jti_hash   BINARY(32)   NOT NULL,
    expires_at BIGINT       NOT NULL,
    PRIMARY KEY (tenant_id, jti_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
