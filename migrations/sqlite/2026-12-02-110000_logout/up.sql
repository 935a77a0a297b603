-- Logout (OpenID Connect Back-Channel and Front-Channel Logout 1.0).
-- The session a code was issued in (its `sid`), carried to the refresh tokens
-- of the grant, so every ID token of the grant names the session.
ALTER TABLE authorization_codes ADD COLUMN sid TEXT;
ALTER TABLE refresh_tokens ADD COLUMN sid TEXT;

-- Which clients each session signed in to: written with the code.
CREATE TABLE session_clients (
    tenant_id  TEXT   NOT NULL,
    sid        TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sid, client_id)
);
CREATE INDEX session_clients_expires ON session_clients (expires_at);

-- The durable outbox of back-channel logout messages: one row per (ended
-- session, client), delivered at least once. A node claims a row by moving
-- `leased_until` from the value it read (a conditional UPDATE), so two
-- nodes never send one message at the same time; `jti` is the logout
-- token's, the same at every attempt.
CREATE TABLE logout_outbox (
    jti             TEXT   NOT NULL PRIMARY KEY,
    tenant_id       TEXT   NOT NULL,
    client_id       TEXT   NOT NULL,
    sid             TEXT   NOT NULL,
    user_sub        TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    leased_until    BIGINT NOT NULL,
    lease_id        TEXT   NOT NULL,
    delivered_at    BIGINT,
    abandoned_at    BIGINT,
    last_error      TEXT
);
CREATE INDEX logout_outbox_due ON logout_outbox (next_attempt_at);
