-- A stable public session id (`sid`, for back-channel logout), apart from the
-- cookie whose SHA-256 keys the row. Sessions from before get the hex of that hash.
ALTER TABLE sessions ADD COLUMN sid VARCHAR(255) NOT NULL DEFAULT '';
UPDATE sessions SET sid = LOWER(HEX(session_hash));
ALTER TABLE sessions ALTER COLUMN sid DROP DEFAULT;
CREATE INDEX sessions_tenant_sid ON sessions (tenant_id, sid);
CREATE INDEX sessions_tenant_user ON sessions (tenant_id, user_sub);
