ALTER TABLE authorization_codes DROP COLUMN redirect_uri_sent;
