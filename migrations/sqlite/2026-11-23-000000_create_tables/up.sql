-- Datablobs and model templates share one shape, told apart by `kind`
-- ('datablob' or 'model_template').
CREATE TABLE components (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    group_name TEXT NOT NULL,
    hyperparams TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL,
    UNIQUE (kind, name)
);
CREATE INDEX components_by_group ON components (kind, group_name, name);

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    model_class_name TEXT NOT NULL,
    datablob_id BIGINT NOT NULL REFERENCES components (id),
    model_template_id BIGINT NOT NULL REFERENCES components (id),
    created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL
);
CREATE INDEX models_by_datablob ON models (datablob_id);
CREATE INDEX models_by_model_template ON models (model_template_id);

-- One row per epoch, metrics encoded in one blob (see store/metrics_codec.rs):
-- bulk insert then writes one primary-key entry per epoch, not per metric.
-- model_id has no foreign-key constraint on purpose: the per-row check made
-- PostgreSQL bulk inserts 2.6x slower, and it guards nothing here, because
-- every insert resolves model_id from models in the same transaction and
-- models are never deleted.
CREATE TABLE epochs (
    model_id BIGINT NOT NULL,
    epoch_num BIGINT NOT NULL,
    metrics BLOB NOT NULL,
    steps_per_epoch BIGINT,
    validation_steps_per_epoch BIGINT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (model_id, epoch_num)
) WITHOUT ROWID;

-- Best and worst non-NaN value of each metric of each model, with the
-- lowest epoch reaching it; kept in the same transaction as epoch inserts
-- so best-model queries never scan epochs.
CREATE TABLE metric_summaries (
    model_id BIGINT NOT NULL REFERENCES models (id),
    metric_name TEXT NOT NULL,
    max_value DOUBLE PRECISION NOT NULL,
    max_epoch_num BIGINT NOT NULL,
    min_value DOUBLE PRECISION NOT NULL,
    min_epoch_num BIGINT NOT NULL,
    PRIMARY KEY (model_id, metric_name)
);
CREATE INDEX metric_summaries_by_max ON metric_summaries (metric_name, max_value DESC, max_epoch_num);
CREATE INDEX metric_summaries_by_min ON metric_summaries (metric_name, min_value, min_epoch_num);
