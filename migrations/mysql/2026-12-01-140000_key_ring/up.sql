-- Generated keys of tenants with signing.rotation: every key of a
-- (tenant, alg) with the time it starts signing. One key per slot: of nodes
-- creating the same next key at once, one insert wins.
CREATE TABLE key_ring (
    tenant_id   VARCHAR(255) NOT NULL,
    alg         VARCHAR(64)  NOT NULL,
    kid         VARCHAR(255) NOT NULL,
    private_pem TEXT         NOT NULL,
    signs_from  BIGINT       NOT NULL,
    retired_at  BIGINT,
    created_at  BIGINT       NOT NULL,
    PRIMARY KEY (tenant_id, kid),
    UNIQUE KEY key_ring_slot (tenant_id, alg, signs_from)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
