-- Secrets every node of a deployment shares (the CSRF key), generated once.
CREATE TABLE server_secrets (
    name       VARCHAR(64) NOT NULL PRIMARY KEY,
    secret     BINARY(32)  NOT NULL,
    created_at BIGINT      NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
