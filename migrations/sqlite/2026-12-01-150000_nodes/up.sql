-- What each node serves, for `sesame plan`: the redacted record of every
-- configuration generation a node has served, and the nodes themselves.
CREATE TABLE config_generations (
    generation  TEXT    NOT NULL PRIMARY KEY,
    record      TEXT    NOT NULL,
    recorded_at BIGINT  NOT NULL
);
CREATE TABLE nodes (
    node_id    TEXT    NOT NULL PRIMARY KEY,
    generation TEXT    NOT NULL,
    started_at BIGINT  NOT NULL,
    seen_at    BIGINT  NOT NULL
);
