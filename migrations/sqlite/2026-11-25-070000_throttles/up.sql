-- Brute-force protection: failure counters per (tenant, hashed key).
CREATE TABLE throttles (
    tenant_id    TEXT   NOT NULL,
    key_hash     BLOB   NOT NULL,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
);
CREATE INDEX throttles_expires_at ON throttles (expires_at);
