-- DPoP (RFC 9449): the JWK thumbprint a token is bound to; proofs seen, by
-- the SHA-256 of their `jti`, kept until they are too old to be accepted.
-- A code bound to a DPoP key at the authorization request (`dpop_jkt`,
-- or a proof at /par: RFC 9449 §10).
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
-- Resource indicators (RFC 8707): the resources a grant is for
-- (space-separated), and the one an access token was issued for.
ALTER TABLE access_tokens ADD COLUMN jkt TEXT;
ALTER TABLE access_tokens ADD COLUMN audience TEXT;
ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN resource TEXT;
ALTER TABLE authorization_codes ADD COLUMN resource TEXT;
CREATE TABLE dpop_proofs (
    tenant_id  TEXT   NOT NULL,
    jti_hash   BLOB   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti_hash)
);
