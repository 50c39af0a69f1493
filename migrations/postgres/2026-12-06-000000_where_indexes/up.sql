-- Indexes of the `where` language's hot paths (issue 16 performance).
-- Tags by key and value without the project first: `tags.team = 'a'`
-- reads the ids of the tagged models from this index alone.
CREATE INDEX tags_by_key_value ON tags (target_kind, key, value, target_id);
-- The ranking indexes of `metric_summaries` also hold `model_id`, so that
-- `max(m) > x` in a `where` and the rankings read no table rows. Same
-- number of indexes as before: ingest maintains no more.
DROP INDEX metric_summaries_by_max;
CREATE INDEX metric_summaries_by_max ON metric_summaries (metric_name, max_value DESC, max_epoch_num, model_id);
DROP INDEX metric_summaries_by_min;
CREATE INDEX metric_summaries_by_min ON metric_summaries (metric_name, min_value, min_epoch_num, model_id);
