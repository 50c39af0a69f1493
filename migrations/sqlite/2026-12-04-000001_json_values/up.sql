-- The typed index of the filter language: one row per key path of every
-- datablob's and template's hyperparameters and every model's params,
-- with its JSON type and value (`path`: the SHA-256 of the key path's
-- canonical text, so that keys of any length fit an index) (numbers as double, and exactly as a
-- 64-bit integer when written as one), written with the record it
-- indexes, so that `where` reads indexed rows instead of parsing JSON.
CREATE TABLE json_values (
    owner TEXT NOT NULL,
    owner_id BIGINT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    num DOUBLE PRECISION,
    int_value BIGINT,
    text_value TEXT,
    PRIMARY KEY (owner, owner_id, path)
);
-- `where` reads the ids of the records whose value at a path passes a
-- test, from one range of this index.
CREATE INDEX json_values_by_path ON json_values (owner, path, kind, num, owner_id);
-- Records stored before the index: the server indexes them at startup
-- (flattening JSON the same way as at put time) and empties this table.
CREATE TABLE json_values_pending (
    owner TEXT NOT NULL,
    owner_id BIGINT NOT NULL,
    PRIMARY KEY (owner, owner_id)
);
INSERT INTO json_values_pending (owner, owner_id) SELECT 'component', id FROM components;
INSERT INTO json_values_pending (owner, owner_id) SELECT 'model', id FROM models;
