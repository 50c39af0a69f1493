ALTER TABLE models DROP COLUMN created_seq;
ALTER TABLE projects DROP COLUMN model_seq;
