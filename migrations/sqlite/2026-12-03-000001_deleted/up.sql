-- Soft delete (database clock, microseconds since the Unix epoch; NULL:
-- live) of models and components, and the queue of purged models whose
-- epochs are still being removed in batches.
--
-- Purge deletes model and component rows, and an `INTEGER PRIMARY KEY`
-- without AUTOINCREMENT hands the highest deleted id to the next insert:
-- a replica's cached id of a purged model, or epochs not yet removed,
-- would then belong to a new model. So both tables are rebuilt with
-- AUTOINCREMENT (ids never reused, as with PostgreSQL's BIGSERIAL).
-- Foreign keys are off during migrations (see db/migrations.rs).
CREATE TABLE components_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    group_name TEXT NOT NULL,
    hyperparams TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    description TEXT,
    deleted_at BIGINT,
    UNIQUE (project_id, kind, name)
);
INSERT INTO components_new (id, kind, name, group_name, hyperparams, created_at, last_modified_at, project_id, description)
SELECT id, kind, name, group_name, hyperparams, created_at, last_modified_at, project_id, description FROM components;
DROP TABLE components;
ALTER TABLE components_new RENAME TO components;
CREATE INDEX components_by_group ON components (project_id, kind, group_name, name);

CREATE TABLE models_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    model_class_name TEXT NOT NULL,
    datablob_id BIGINT NOT NULL REFERENCES components (id),
    model_template_id BIGINT NOT NULL REFERENCES components (id),
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    status TEXT NOT NULL DEFAULT 'CREATED',
    started_at BIGINT,
    ended_at BIGINT,
    last_heartbeat_at BIGINT,
    heartbeat_timeout_secs BIGINT,
    run_context TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    description TEXT,
    deleted_at BIGINT,
    UNIQUE (project_id, name)
);
INSERT INTO models_new (id, name, model_class_name, datablob_id, model_template_id, created_at, last_modified_at, project_id,
                        status, started_at, ended_at, last_heartbeat_at, heartbeat_timeout_secs, run_context, params, description)
SELECT id, name, model_class_name, datablob_id, model_template_id, created_at, last_modified_at, project_id,
       status, started_at, ended_at, last_heartbeat_at, heartbeat_timeout_secs, run_context, params, description FROM models;
DROP TABLE models;
ALTER TABLE models_new RENAME TO models;
CREATE INDEX models_by_datablob ON models (datablob_id);
CREATE INDEX models_by_model_template ON models (model_template_id);
CREATE INDEX models_by_status_heartbeat ON models (status, last_heartbeat_at);

-- Purge and `--deleted` listings find the deleted rows of a project
-- without scanning the live ones; partial, so the live rows cost nothing.
CREATE INDEX models_deleted ON models (project_id, deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX components_deleted ON components (project_id, deleted_at) WHERE deleted_at IS NOT NULL;
-- A purged model's row is gone at once; its epochs go in bounded batches
-- afterwards, and a purge interrupted by a crash resumes from here.
CREATE TABLE purged_models (
    model_id BIGINT PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    purged_at BIGINT NOT NULL
);
CREATE INDEX purged_models_by_project ON purged_models (project_id, model_id);
