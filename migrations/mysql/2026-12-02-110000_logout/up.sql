-- Logout (OpenID Connect Back-Channel and Front-Channel Logout 1.0).
-- The session a code was issued in (its `sid`), carried to the refresh tokens
-- of the grant, so every ID token of the grant names the session.
ALTER TABLE authorization_codes ADD COLUMN sid VARCHAR(255);
ALTER TABLE refresh_tokens ADD COLUMN sid VARCHAR(255);

-- Which clients each session signed in to: written with the code.
CREATE TABLE session_clients (
    tenant_id  VARCHAR(255) NOT NULL,
    sid        VARCHAR(128) NOT NULL,
    client_id  VARCHAR(255) NOT NULL,
    created_at BIGINT       NOT NULL,
    expires_at BIGINT       NOT NULL,
    PRIMARY KEY (tenant_id, sid, client_id),
    KEY session_clients_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The durable outbox of back-channel logout messages: one row per (ended
-- session, client), delivered at least once. A node claims a row by moving
-- `leased_until` from the value it read (a conditional UPDATE), so two
-- nodes never send one message at the same time; `jti` is the logout
-- token's, the same at every attempt.
CREATE TABLE logout_outbox (
    jti             VARCHAR(64)  NOT NULL PRIMARY KEY,
    tenant_id       VARCHAR(255) NOT NULL,
    client_id       VARCHAR(255) NOT NULL,
    sid             VARCHAR(128) NOT NULL,
    user_sub        VARCHAR(255) NOT NULL,
    created_at      BIGINT       NOT NULL,
    attempts        BIGINT       NOT NULL,
    next_attempt_at BIGINT       NOT NULL,
    leased_until    BIGINT       NOT NULL,
    lease_id        VARCHAR(64)  NOT NULL,
    delivered_at    BIGINT,
    abandoned_at    BIGINT,
    last_error      TEXT,
    KEY logout_outbox_due (next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
