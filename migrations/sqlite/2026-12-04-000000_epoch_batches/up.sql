-- The commit-ordered position of watchers (WatchEpochs): per model, the
-- transactions that stored its epochs, numbered 1, 2, ... by `epoch_seq`,
-- which ingest bumps under the model-row lock it already takes (the
-- touch of `epoch_count`), so one model's numbers follow its commits.
-- One row per model and transaction (not an index entry per epoch, which
-- costs bulk ingest 2-4x) lists the epoch_nums it stored, ascending,
-- comma-separated; a watcher reads the rows after its cursor, then those
-- epochs by primary key. Purge removes them with the model row.
ALTER TABLE models ADD COLUMN epoch_seq BIGINT NOT NULL DEFAULT 0;
CREATE TABLE epoch_batches (
    model_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    epoch_nums TEXT NOT NULL,
    PRIMARY KEY (model_id, seq)
) WITHOUT ROWID;
-- Epochs stored before: one batch per model.
INSERT INTO epoch_batches (model_id, seq, epoch_nums)
SELECT model_id, 1, group_concat(epoch_num, ',')
FROM (SELECT model_id, epoch_num FROM epochs ORDER BY model_id, epoch_num)
GROUP BY model_id;
UPDATE models SET epoch_seq = 1 WHERE id IN (SELECT model_id FROM epoch_batches);
