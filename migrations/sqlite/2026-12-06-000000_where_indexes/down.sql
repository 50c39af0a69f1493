DROP INDEX tags_by_key_value;
DROP INDEX metric_summaries_by_max;
CREATE INDEX metric_summaries_by_max ON metric_summaries (metric_name, max_value DESC, max_epoch_num);
DROP INDEX metric_summaries_by_min;
CREATE INDEX metric_summaries_by_min ON metric_summaries (metric_name, min_value, min_epoch_num);
