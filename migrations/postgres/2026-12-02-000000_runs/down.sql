DROP TABLE status_changes;
DROP INDEX models_by_status_heartbeat;
ALTER TABLE models DROP COLUMN run_context;
ALTER TABLE models DROP COLUMN heartbeat_timeout_secs;
ALTER TABLE models DROP COLUMN last_heartbeat_at;
ALTER TABLE models DROP COLUMN ended_at;
ALTER TABLE models DROP COLUMN started_at;
ALTER TABLE models DROP COLUMN status;
