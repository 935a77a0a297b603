DROP TABLE access_tokens;
DROP TABLE refresh_tokens;
DROP TABLE authorization_codes;
DROP TABLE consents;
DROP TABLE sessions;
DROP TABLE auth_requests;
DROP TABLE signing_keys;
