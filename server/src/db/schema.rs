//! Diesel table definitions, identical for both backends (only types common
//! to SQLite and PostgreSQL are used).

diesel::table! {
    /// Projects: the namespaces of datablobs, templates and models.
    projects (id) {
        id -> BigInt,
        name -> Text,
        created_at -> BigInt,
        model_seq -> BigInt,
    }
}

diesel::table! {
    /// Datablobs and model templates (`kind` tells which).
    components (id) {
        id -> BigInt,
        kind -> Text,
        name -> Text,
        group_name -> Text,
        hyperparams -> Text,
        created_at -> BigInt,
        last_modified_at -> BigInt,
        project_id -> BigInt,
        description -> Nullable<Text>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Models: one template trained on one datablob.
    models (id) {
        id -> BigInt,
        name -> Text,
        model_class_name -> Text,
        datablob_id -> BigInt,
        model_template_id -> BigInt,
        created_at -> BigInt,
        last_modified_at -> BigInt,
        project_id -> BigInt,
        params -> Text,
        description -> Nullable<Text>,
        status -> Text,
        started_at -> Nullable<BigInt>,
        ended_at -> Nullable<BigInt>,
        last_heartbeat_at -> Nullable<BigInt>,
        heartbeat_timeout_secs -> Nullable<BigInt>,
        run_context -> Nullable<Text>,
        epoch_count -> BigInt,
        current_epoch -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
        epoch_seq -> BigInt,
        created_seq -> BigInt,
    }
}

diesel::table! {
    /// Purged models whose epochs are still being removed, in batches.
    purged_models (model_id) {
        model_id -> BigInt,
        project_id -> BigInt,
        purged_at -> BigInt,
    }
}

diesel::table! {
    /// Tags of models, datablobs and templates (`target_kind` tells which
    /// table `target_id` is an id of).
    tags (target_kind, target_id, key) {
        project_id -> BigInt,
        target_kind -> Text,
        target_id -> BigInt,
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    /// Every status transition of a model (run lifecycle), in id order.
    status_changes (id) {
        id -> BigInt,
        model_id -> BigInt,
        changed_at -> BigInt,
        from_status -> Text,
        to_status -> Text,
        cause -> Text,
    }
}

diesel::table! {
    /// Artifact references of models: named pointers to files stored
    /// elsewhere. `content_sha256` is always NULL for now (a later issue
    /// stores content in mlmeta itself).
    artifacts (model_id, name) {
        model_id -> BigInt,
        name -> Text,
        uri -> Text,
        sha256 -> Nullable<Text>,
        size_bytes -> Nullable<BigInt>,
        media_type -> Nullable<Text>,
        created_at -> BigInt,
        content_sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row per epoch; `metrics` is encoded by `store::metrics_codec`.
    epochs (model_id, epoch_num) {
        model_id -> BigInt,
        epoch_num -> BigInt,
        metrics -> Binary,
        steps_per_epoch -> Nullable<BigInt>,
        validation_steps_per_epoch -> Nullable<BigInt>,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    /// Per model, one row per transaction that stored epochs of it, in
    /// commit order (`seq`, see `models.epoch_seq`): the watchers' cursor.
    epoch_batches (model_id, seq) {
        model_id -> BigInt,
        seq -> BigInt,
        /// The epoch_nums stored, ascending, comma-separated.
        epoch_nums -> Text,
    }
}

diesel::table! {
    /// Per model and metric: the best non-NaN values in both directions.
    metric_summaries (model_id, metric_name) {
        model_id -> BigInt,
        metric_name -> Text,
        max_value -> Double,
        max_epoch_num -> BigInt,
        min_value -> Double,
        min_epoch_num -> BigInt,
    }
}

diesel::table! {
    /// Per model and metric: how many epochs carry it (NaN included) and
    /// its value at the highest of them (`last_value` NULL: NaN).
    metric_latest (model_id, metric_name) {
        model_id -> BigInt,
        metric_name -> Text,
        value_count -> BigInt,
        last_epoch_num -> BigInt,
        last_value -> Nullable<Double>,
    }
}

diesel::table! {
    /// Models whose epochs predate `metric_latest`, summarised at startup.
    metric_latest_pending (model_id) {
        model_id -> BigInt,
    }
}

diesel::table! {
    /// Uploaded artifact content, one row per SHA-256 (NULL while the
    /// upload streams in).
    artifact_blobs (id) {
        id -> BigInt,
        sha256 -> Nullable<Text>,
        size_bytes -> BigInt,
        created_at -> BigInt,
        referenced_at -> BigInt,
    }
}

diesel::table! {
    /// The typed index of the filter language: per record (`owner` is
    /// `component` or `model`) and JSON key path (a JSON array of the keys),
    /// the value's JSON type (`kind`) and value.
    json_values (owner, owner_id, path) {
        owner -> Text,
        owner_id -> BigInt,
        path -> Text,
        kind -> Text,
        num -> Nullable<Double>,
        int_value -> Nullable<BigInt>,
        text_value -> Nullable<Text>,
    }
}

diesel::table! {
    /// The bytes of a blob, in upload order.
    artifact_chunks (blob_id, seq) {
        blob_id -> BigInt,
        seq -> BigInt,
        data -> Binary,
    }
}

diesel::joinable!(artifact_chunks -> artifact_blobs (blob_id));

diesel::table! {
    /// Records stored before the typed index existed, indexed at startup.
    json_values_pending (owner, owner_id) {
        owner -> Text,
        owner_id -> BigInt,
    }
}

diesel::joinable!(components -> projects (project_id));
diesel::joinable!(models -> projects (project_id));
diesel::joinable!(tags -> projects (project_id));
diesel::joinable!(epochs -> models (model_id));
diesel::joinable!(metric_summaries -> models (model_id));
diesel::joinable!(metric_latest -> models (model_id));
diesel::joinable!(status_changes -> models (model_id));
diesel::joinable!(artifacts -> models (model_id));
diesel::allow_tables_to_appear_in_same_query!(
    projects,
    components,
    models,
    tags,
    epochs,
    metric_summaries,
    metric_latest,
    metric_latest_pending,
    status_changes,
    artifacts,
    purged_models,
    artifact_blobs,
    artifact_chunks,
    json_values,
    json_values_pending,
    epoch_batches
);
