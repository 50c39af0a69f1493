-- Soft delete (database clock, microseconds since the Unix epoch; NULL:
-- live) of models and components, and the queue of purged models whose
-- epochs are still being removed in batches.
ALTER TABLE models ADD COLUMN deleted_at BIGINT;
ALTER TABLE components ADD COLUMN deleted_at BIGINT;
-- Purge and `--deleted` listings find the deleted rows of a project
-- without scanning the live ones; partial, so the live rows (nearly all)
-- cost nothing here.
CREATE INDEX models_deleted ON models (project_id, deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX components_deleted ON components (project_id, deleted_at) WHERE deleted_at IS NOT NULL;
-- A purged model's row is gone at once (its name free, no restore racing
-- with the purge); its epochs go in bounded batches afterwards, and a
-- purge interrupted by a crash resumes from here. Model ids are never
-- reused (BIGSERIAL), so leftover epochs cannot surface under a new model.
CREATE TABLE purged_models (
    model_id BIGINT PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    purged_at BIGINT NOT NULL
);
CREATE INDEX purged_models_by_project ON purged_models (project_id, model_id);
