-- Secrets every node of a deployment shares (the CSRF key), generated once.
CREATE TABLE server_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    secret     BLOB   NOT NULL,
    created_at BIGINT NOT NULL
);
