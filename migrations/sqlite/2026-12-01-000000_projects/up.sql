-- Projects are namespaces: every datablob, template and model belongs to
-- one, and names are unique within a project instead of globally. Records
-- stored before projects existed move to `default` (id 1).
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
INSERT INTO projects (id, name, created_at)
VALUES (1, 'default', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));

-- SQLite cannot change a table's UNIQUE constraints in place: both tables
-- are rebuilt (the server runs this with foreign keys off and checks them
-- before committing, as SQLite's documented procedure prescribes).
CREATE TABLE components_new (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    group_name TEXT NOT NULL,
    hyperparams TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    UNIQUE (project_id, kind, name)
);
INSERT INTO components_new (id, kind, name, group_name, hyperparams, created_at, last_modified_at, project_id)
SELECT id, kind, name, group_name, hyperparams, created_at, last_modified_at, 1 FROM components;
DROP TABLE components;
ALTER TABLE components_new RENAME TO components;
CREATE INDEX components_by_group ON components (project_id, kind, group_name, name);

CREATE TABLE models_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    model_class_name TEXT NOT NULL,
    datablob_id BIGINT NOT NULL REFERENCES components (id),
    model_template_id BIGINT NOT NULL REFERENCES components (id),
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    UNIQUE (project_id, name)
);
INSERT INTO models_new (id, name, model_class_name, datablob_id, model_template_id, created_at, last_modified_at, project_id)
SELECT id, name, model_class_name, datablob_id, model_template_id, created_at, last_modified_at, 1 FROM models;
DROP TABLE models;
ALTER TABLE models_new RENAME TO models;
CREATE INDEX models_by_datablob ON models (datablob_id);
CREATE INDEX models_by_model_template ON models (model_template_id);
