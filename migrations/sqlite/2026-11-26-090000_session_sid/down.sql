DROP INDEX sessions_tenant_user;
DROP INDEX sessions_tenant_sid;
ALTER TABLE sessions DROP COLUMN sid;
