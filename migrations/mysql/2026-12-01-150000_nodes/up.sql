-- What each node serves, for `sesame plan`: the redacted record of every
-- configuration generation a node has served, and the nodes themselves.
CREATE TABLE config_generations (
    generation  VARCHAR(64) NOT NULL PRIMARY KEY,
    record      MEDIUMTEXT  NOT NULL,
    recorded_at BIGINT      NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE nodes (
    node_id    VARCHAR(255) NOT NULL PRIMARY KEY,
    generation VARCHAR(64)  NOT NULL,
    started_at BIGINT       NOT NULL,
    seen_at    BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
