-- Back to global names: fails (UNIQUE) when two projects share a name.
CREATE TABLE components_old (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    group_name TEXT NOT NULL,
    hyperparams TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL,
    UNIQUE (kind, name)
);
INSERT INTO components_old SELECT id, kind, name, group_name, hyperparams, created_at, last_modified_at FROM components;
DROP TABLE components;
ALTER TABLE components_old RENAME TO components;
CREATE INDEX components_by_group ON components (kind, group_name, name);

CREATE TABLE models_old (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    model_class_name TEXT NOT NULL,
    datablob_id BIGINT NOT NULL REFERENCES components (id),
    model_template_id BIGINT NOT NULL REFERENCES components (id),
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL
);
INSERT INTO models_old SELECT id, name, model_class_name, datablob_id, model_template_id, created_at, last_modified_at FROM models;
DROP TABLE models;
ALTER TABLE models_old RENAME TO models;
CREATE INDEX models_by_datablob ON models (datablob_id);
CREATE INDEX models_by_model_template ON models (model_template_id);

DROP TABLE projects;
