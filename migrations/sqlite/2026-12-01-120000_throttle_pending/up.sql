-- Places taken by attempts being verified (reserved before a password or a
-- hashed secret is checked, given back or counted as a failure after). The
-- default lets rows be written by nodes that do not know the column yet.
ALTER TABLE throttles ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
