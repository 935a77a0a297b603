DROP TABLE dpop_proofs;
ALTER TABLE authorization_codes DROP COLUMN dpop_jkt;
ALTER TABLE authorization_codes DROP COLUMN resource;
ALTER TABLE refresh_tokens DROP COLUMN resource;
ALTER TABLE refresh_tokens DROP COLUMN jkt;
ALTER TABLE access_tokens DROP COLUMN audience;
ALTER TABLE access_tokens DROP COLUMN jkt;
