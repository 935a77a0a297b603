DROP TABLE client_assertions;
