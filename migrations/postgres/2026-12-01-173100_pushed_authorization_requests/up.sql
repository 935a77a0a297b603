-- Pushed authorization requests (RFC 9126): the validated parameters of an
-- authorization request a client pushed, keyed by the SHA-256 of the
-- request_uri it was given; taken once at /authorize, by that client only.
CREATE TABLE pushed_authorization_requests (
    request_hash BYTEA        NOT NULL PRIMARY KEY,
    tenant_id    VARCHAR(255) NOT NULL,
    client_id    VARCHAR(255) NOT NULL,
    params       TEXT         NOT NULL,
    created_at   BIGINT       NOT NULL,
    expires_at   BIGINT       NOT NULL
);
CREATE INDEX pushed_authorization_requests_expires_at ON pushed_authorization_requests (expires_at);
