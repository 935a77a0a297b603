DROP TABLE logout_outbox;
DROP TABLE session_clients;
ALTER TABLE refresh_tokens DROP COLUMN sid;
ALTER TABLE authorization_codes DROP COLUMN sid;
