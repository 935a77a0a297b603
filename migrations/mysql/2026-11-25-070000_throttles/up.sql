-- Brute-force protection: failure counters per (tenant, hashed key).
CREATE TABLE throttles (
    tenant_id    VARCHAR(255) NOT NULL,
    key_hash     BINARY(32)   NOT NULL,
    failures     BIGINT       NOT NULL,
    window_start BIGINT       NOT NULL,
    locked_until BIGINT       NOT NULL,
    expires_at   BIGINT       NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX throttles_expires_at ON throttles (expires_at);
