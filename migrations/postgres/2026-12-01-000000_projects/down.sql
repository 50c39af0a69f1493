-- Back to global names: fails (UNIQUE) when two projects share a name.
ALTER TABLE models DROP CONSTRAINT models_project_id_name_key;
ALTER TABLE models ADD CONSTRAINT models_name_key UNIQUE (name);
ALTER TABLE models DROP COLUMN project_id;

DROP INDEX components_by_group;
ALTER TABLE components DROP CONSTRAINT components_project_id_kind_name_key;
ALTER TABLE components ADD CONSTRAINT components_kind_name_key UNIQUE (kind, name);
ALTER TABLE components DROP COLUMN project_id;
CREATE INDEX components_by_group ON components (kind, group_name, name);

DROP TABLE projects;
