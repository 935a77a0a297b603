-- Secrets every node of a deployment shares (the CSRF key), generated once.
CREATE TABLE server_secrets (
    name       VARCHAR(64) NOT NULL PRIMARY KEY,
    secret     BYTEA       NOT NULL,
    created_at BIGINT      NOT NULL
);
