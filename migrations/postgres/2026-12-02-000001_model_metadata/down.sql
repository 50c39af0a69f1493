DROP TABLE tags;
ALTER TABLE components DROP COLUMN description;
ALTER TABLE models DROP COLUMN description;
ALTER TABLE models DROP COLUMN params;
