-- A stable public session id (`sid`, for back-channel logout), apart from the
-- cookie whose SHA-256 keys the row. Sessions from before get the hex of that
-- hash. (SQLite cannot drop the default again; sesame always writes a sid.)
ALTER TABLE sessions ADD COLUMN sid TEXT NOT NULL DEFAULT '';
UPDATE sessions SET sid = lower(hex(session_hash));
CREATE INDEX sessions_tenant_sid ON sessions (tenant_id, sid);
CREATE INDEX sessions_tenant_user ON sessions (tenant_id, user_sub);
