//! Builders of API records and requests, so tests state only what matters.

use std::collections::BTreeMap;

use mlmeta_proto::{
    DataBlob, Epoch, GetBestModelRequest, GetLeaderboardRequest, InsertEpochsRequest, MetricDirection, Model,
    ModelFilter, ModelTemplate, PutDataBlobRequest, PutModelRequest, PutModelTemplateRequest,
};

/// A datablob as a client sends it (no timestamps).
pub fn datablob(name: &str, group_name: &str, hyperparams_json: &str) -> DataBlob {
    DataBlob {
        project: String::new(),
        name: name.to_owned(),
        group_name: group_name.to_owned(),
        hyperparams_json: hyperparams_json.to_owned(),
        created_at: None,
        last_modified_at: None,
        ..Default::default()
    }
}

/// A model template as a client sends it (no timestamps).
pub fn template(name: &str, group_name: &str, hyperparams_json: &str) -> ModelTemplate {
    ModelTemplate {
        project: String::new(),
        name: name.to_owned(),
        group_name: group_name.to_owned(),
        hyperparams_json: hyperparams_json.to_owned(),
        created_at: None,
        last_modified_at: None,
        ..Default::default()
    }
}

/// A model of class `"Net"` as a client sends it (no timestamps).
pub fn model(name: &str, datablob_name: &str, model_template_name: &str) -> Model {
    Model {
        project: String::new(),
        name: name.to_owned(),
        model_class_name: "Net".to_owned(),
        datablob_name: datablob_name.to_owned(),
        model_template_name: model_template_name.to_owned(),
        ..Default::default()
    }
}

/// An epoch with the given metrics and no step counts.
pub fn epoch(model_name: &str, epoch_num: i64, metrics: &[(&str, f64)]) -> Epoch {
    Epoch {
        model_name: model_name.to_owned(),
        epoch_num,
        metrics: metrics
            .iter()
            .map(|(name, value)| ((*name).to_owned(), *value))
            .collect::<BTreeMap<_, _>>(),
        steps_per_epoch: None,
        validation_steps_per_epoch: None,
        recorded_at: None,
    }
}

/// PutDataBlob request.
pub fn put_datablob(datablob: DataBlob, ignore_existing: bool) -> PutDataBlobRequest {
    PutDataBlobRequest {
        project: String::new(),
        datablob: Some(datablob),
        ignore_existing,
    }
}

/// PutModelTemplate request.
pub fn put_template(template: ModelTemplate, ignore_existing: bool) -> PutModelTemplateRequest {
    PutModelTemplateRequest {
        project: String::new(),
        model_template: Some(template),
        ignore_existing,
    }
}

/// PutModel request.
pub fn put_model(model: Model, ignore_existing: bool) -> PutModelRequest {
    PutModelRequest {
        project: String::new(),
        model: Some(model),
        ignore_existing,
    }
}

/// InsertEpochs request.
pub fn insert(epochs: Vec<Epoch>) -> InsertEpochsRequest {
    InsertEpochsRequest {
        columns: Vec::new(),
        project: String::new(),
        epochs,
    }
}

/// GetBestModel request without filter.
pub fn best(metric_name: &str, direction: MetricDirection, top_k: u32) -> GetBestModelRequest {
    GetBestModelRequest {
        project: String::new(),
        metric_name: metric_name.to_owned(),
        direction: direction as i32,
        filter: None,
        top_k,
        ..Default::default()
    }
}

/// GetLeaderboard request without filter, first page.
pub fn leaderboard(metric_name: &str, direction: MetricDirection, page_size: u32) -> GetLeaderboardRequest {
    GetLeaderboardRequest {
        project: String::new(),
        metric_name: metric_name.to_owned(),
        direction: direction as i32,
        filter: None,
        page_size,
        page_token: String::new(),
        ..Default::default()
    }
}

/// A model filter on model names only.
pub fn model_names(names: &[&str]) -> ModelFilter {
    ModelFilter {
        names: strings(names),
        ..ModelFilter::default()
    }
}

/// Owned copies of `items`.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
