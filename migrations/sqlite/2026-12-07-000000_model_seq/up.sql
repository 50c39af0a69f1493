-- Commit-ordered model creation, for filter watches (WatchEpochs): each
-- new model takes the next `projects.model_seq` as its `created_seq`,
-- bumped under the project row's lock, which the creating transaction
-- holds until it commits. So within a project created_seq follows commit
-- order (ids do not: PostgreSQL hands out ids before commit), and a
-- watcher that read `model_seq = N` has every model with created_seq <= N
-- visible: a model found later with a higher one is new to it.
ALTER TABLE projects ADD COLUMN model_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN created_seq BIGINT NOT NULL DEFAULT 0;
-- Models stored before keep their id, so cursors taken before (which
-- hold the highest model id) still compare correctly.
UPDATE models SET created_seq = id;
UPDATE projects SET model_seq = COALESCE((SELECT max(id) FROM models WHERE models.project_id = projects.id), 0);
