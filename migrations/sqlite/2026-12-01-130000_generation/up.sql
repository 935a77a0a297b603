-- The configuration generation that issued each row, for `sesame revoke --generation`.
ALTER TABLE authorization_codes ADD COLUMN generation TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN generation TEXT NOT NULL DEFAULT '';
ALTER TABLE access_tokens ADD COLUMN generation TEXT NOT NULL DEFAULT '';
