ALTER TABLE models DROP COLUMN current_epoch;
ALTER TABLE models DROP COLUMN epoch_count;
