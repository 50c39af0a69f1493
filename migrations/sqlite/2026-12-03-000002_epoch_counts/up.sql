-- How many epochs a model has and its highest epoch_num, kept by ingest in
-- the statement that already touches the model (one per batch), so that
-- listings show them and filters use them without counting epochs.
ALTER TABLE models ADD COLUMN epoch_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN current_epoch BIGINT;
UPDATE models SET
    epoch_count = (SELECT COUNT(*) FROM epochs WHERE epochs.model_id = models.id),
    current_epoch = (SELECT MAX(epoch_num) FROM epochs WHERE epochs.model_id = models.id);
