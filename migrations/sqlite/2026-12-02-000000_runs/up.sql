-- Runs have a life: a status with its times (database clock, microseconds
-- since the Unix epoch), an optional per-run heartbeat timeout, and the
-- context the trainer started from. Existing models are CREATED.
ALTER TABLE models ADD COLUMN status TEXT NOT NULL DEFAULT 'CREATED';
ALTER TABLE models ADD COLUMN started_at BIGINT;
ALTER TABLE models ADD COLUMN ended_at BIGINT;
ALTER TABLE models ADD COLUMN last_heartbeat_at BIGINT;
ALTER TABLE models ADD COLUMN heartbeat_timeout_secs BIGINT;
ALTER TABLE models ADD COLUMN run_context TEXT;
-- The sweeper reads RUNNING models by heartbeat age.
CREATE INDEX models_by_status_heartbeat ON models (status, last_heartbeat_at);

-- Every status transition of a model, in order.
CREATE TABLE status_changes (
    id INTEGER PRIMARY KEY,
    model_id BIGINT NOT NULL REFERENCES models (id),
    changed_at BIGINT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    cause TEXT NOT NULL
);
CREATE INDEX status_changes_by_model ON status_changes (model_id, id);
