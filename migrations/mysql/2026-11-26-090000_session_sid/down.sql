DROP INDEX sessions_tenant_user ON sessions;
DROP INDEX sessions_tenant_sid ON sessions;
ALTER TABLE sessions DROP COLUMN sid;
