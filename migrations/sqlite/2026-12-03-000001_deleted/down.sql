-- Leaves the tables with AUTOINCREMENT (harmless).
DROP TABLE purged_models;
DROP INDEX components_deleted;
DROP INDEX models_deleted;
ALTER TABLE components DROP COLUMN deleted_at;
ALTER TABLE models DROP COLUMN deleted_at;
