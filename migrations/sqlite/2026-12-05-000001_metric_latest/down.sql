DROP TABLE metric_latest_pending;
DROP TABLE metric_latest;
