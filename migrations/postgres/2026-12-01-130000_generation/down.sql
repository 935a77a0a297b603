ALTER TABLE authorization_codes DROP COLUMN generation;
ALTER TABLE refresh_tokens DROP COLUMN generation;
ALTER TABLE access_tokens DROP COLUMN generation;
