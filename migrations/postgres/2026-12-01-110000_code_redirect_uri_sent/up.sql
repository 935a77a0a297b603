-- Whether the authorization request named its redirect_uri (RFC 6749 §4.1.3: then the token request must too).
ALTER TABLE authorization_codes ADD COLUMN redirect_uri_sent BOOLEAN NOT NULL DEFAULT TRUE;
