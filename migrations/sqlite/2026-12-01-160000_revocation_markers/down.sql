DROP TABLE revocation_markers;
