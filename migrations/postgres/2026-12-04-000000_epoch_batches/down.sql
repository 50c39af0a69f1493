DROP TABLE epoch_batches;
ALTER TABLE models DROP COLUMN epoch_seq;
