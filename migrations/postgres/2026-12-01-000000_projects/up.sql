-- Projects are namespaces: every datablob, template and model belongs to
-- one, and names are unique within a project instead of globally. Records
-- stored before projects existed move to `default` (id 1).
CREATE TABLE projects (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
INSERT INTO projects (id, name, created_at)
VALUES (1, 'default', (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT);
SELECT setval(pg_get_serial_sequence('projects', 'id'), 1);

ALTER TABLE components ADD COLUMN project_id BIGINT NOT NULL DEFAULT 1 REFERENCES projects (id);
ALTER TABLE components ALTER COLUMN project_id DROP DEFAULT;
ALTER TABLE components DROP CONSTRAINT components_kind_name_key;
ALTER TABLE components ADD CONSTRAINT components_project_id_kind_name_key UNIQUE (project_id, kind, name);
DROP INDEX components_by_group;
CREATE INDEX components_by_group ON components (project_id, kind, group_name, name);

ALTER TABLE models ADD COLUMN project_id BIGINT NOT NULL DEFAULT 1 REFERENCES projects (id);
ALTER TABLE models ALTER COLUMN project_id DROP DEFAULT;
ALTER TABLE models DROP CONSTRAINT models_name_key;
ALTER TABLE models ADD CONSTRAINT models_project_id_name_key UNIQUE (project_id, name);
