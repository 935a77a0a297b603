DROP TABLE nodes;
DROP TABLE config_generations;
