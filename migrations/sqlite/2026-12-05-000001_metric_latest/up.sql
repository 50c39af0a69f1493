-- Per model and metric, how many epochs carry the metric (NaN included)
-- and its value at the highest of them (`last_value` NULL: NaN, since
-- SQLite stores a NaN REAL as NULL), kept by ingest in the epoch insert's
-- transaction; `where` reads them for `count(m)` and `last(m)`, listings
-- show and sort by them. A table of its own rather than columns of
-- `metric_summaries`: a metric whose values are all NaN has a count and a
-- last value but no best one, and these rows change with every epoch,
-- so they stay out of the ranking indexes of `metric_summaries`.
-- No secondary index: every epoch batch rewrites these rows.
CREATE TABLE metric_latest (
    model_id BIGINT NOT NULL REFERENCES models (id),
    metric_name TEXT NOT NULL,
    value_count BIGINT NOT NULL,
    last_epoch_num BIGINT NOT NULL,
    last_value DOUBLE PRECISION,
    PRIMARY KEY (model_id, metric_name)
) WITHOUT ROWID;
-- Models whose epochs were stored before this table: the server computes
-- their rows from the epochs at startup (the metrics are a binary blob
-- that SQL cannot read) and empties this table.
CREATE TABLE metric_latest_pending (
    model_id BIGINT NOT NULL PRIMARY KEY
);
INSERT INTO metric_latest_pending (model_id)
    SELECT id FROM models WHERE EXISTS (SELECT 1 FROM epochs WHERE epochs.model_id = models.id);
