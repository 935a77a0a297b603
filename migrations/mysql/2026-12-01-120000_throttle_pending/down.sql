ALTER TABLE throttles DROP COLUMN pending;
