-- Per-model params (immutable, set at put), descriptions (mutable notes)
-- on models and components, and tags on all three. No triggers: the
-- schema stays distributable.
ALTER TABLE models ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
ALTER TABLE models ADD COLUMN description TEXT;
ALTER TABLE components ADD COLUMN description TEXT;

-- `target_kind` is 'model', 'datablob' or 'model_template'; `target_id`
-- the id in `models` or `components`.
CREATE TABLE tags (
    project_id BIGINT NOT NULL REFERENCES projects (id),
    target_kind TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (target_kind, target_id, key)
);
-- For the tag filter (key = value within one project and kind).
CREATE INDEX tags_by_value ON tags (project_id, target_kind, key, value, target_id);
