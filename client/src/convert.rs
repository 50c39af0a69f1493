//! Translation between the plain types and the generated protobuf
//! messages. Answers from the server that lack a required field or hold
//! unreadable data become [`Error::InvalidResponse`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use mlmeta_proto as pb;
use prost_types::Timestamp;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::filter::{EpochFilter, GroupedFilter, ModelFilter};
use crate::types::{
    BestModel, ColumnValue, DataBlob, Direction, Epoch, InsertCounts, LeaderboardRow, Model, ModelTemplate,
    NewEpoch, Project,
};

/// Hyperparameters as JSON text; `Null` becomes the empty text (`{}` on
/// the server). Non-objects are sent as they are: the server names the
/// rule they break.
pub(crate) fn hyperparams_text(field: &str, value: &Value) -> Result<String> {
    if value.is_null() {
        return Ok(String::new());
    }
    serde_json::to_string(value).map_err(|e| Error::InvalidArgument {
        message: format!("{field}: cannot be encoded as JSON: {e}"),
    })
}

fn hyperparams_value(field: &str, text: &str) -> Result<Value> {
    if text.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(text).map_err(|e| Error::InvalidResponse(format!("{field} is not JSON: {e}")))
}

pub(crate) fn time(field: &str, timestamp: Option<Timestamp>) -> Result<Option<SystemTime>> {
    timestamp
        .map(|ts| {
            SystemTime::try_from(ts)
                .map_err(|e| Error::InvalidResponse(format!("{field} is not a representable time: {e}")))
        })
        .transpose()
}

fn required<T>(field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| Error::InvalidResponse(format!("the answer lacks `{field}`")))
}

pub(crate) fn datablob_to_pb(blob: &DataBlob) -> Result<pb::DataBlob> {
    Ok(pb::DataBlob {
        name: blob.name.clone(),
        group_name: blob.group_name.clone(),
        hyperparams_json: hyperparams_text("datablob.hyperparams", &blob.hyperparams)?,
        created_at: None,
        last_modified_at: None,
        project: String::new(),
        tags: BTreeMap::new(),
        description: String::new(),
        deleted_at: None,
    })
}

pub(crate) fn datablob(blob: Option<pb::DataBlob>) -> Result<DataBlob> {
    let blob = required("datablob", blob)?;
    Ok(DataBlob {
        hyperparams: hyperparams_value("datablob.hyperparams_json", &blob.hyperparams_json)?,
        created_at: time("datablob.created_at", blob.created_at)?,
        last_modified_at: time("datablob.last_modified_at", blob.last_modified_at)?,
        project: Some(blob.project),
        tags: blob.tags.into_iter().collect(),
        description: blob.description,
        deleted_at: time("datablob.deleted_at", blob.deleted_at)?,
        name: blob.name,
        group_name: blob.group_name,
    })
}

pub(crate) fn template_to_pb(template: &ModelTemplate) -> Result<pb::ModelTemplate> {
    Ok(pb::ModelTemplate {
        name: template.name.clone(),
        group_name: template.group_name.clone(),
        hyperparams_json: hyperparams_text("model_template.hyperparams", &template.hyperparams)?,
        created_at: None,
        last_modified_at: None,
        project: String::new(),
        tags: BTreeMap::new(),
        description: String::new(),
        deleted_at: None,
    })
}

pub(crate) fn template(template: Option<pb::ModelTemplate>) -> Result<ModelTemplate> {
    let template = required("model_template", template)?;
    Ok(ModelTemplate {
        hyperparams: hyperparams_value("model_template.hyperparams_json", &template.hyperparams_json)?,
        created_at: time("model_template.created_at", template.created_at)?,
        last_modified_at: time("model_template.last_modified_at", template.last_modified_at)?,
        project: Some(template.project),
        tags: template.tags.into_iter().collect(),
        description: template.description,
        deleted_at: time("model_template.deleted_at", template.deleted_at)?,
        name: template.name,
        group_name: template.group_name,
    })
}

pub(crate) fn model_to_pb(model: &Model) -> Result<pb::Model> {
    Ok(pb::Model {
        params_json: hyperparams_text("model.params", &model.params)?,
        tags: BTreeMap::new(),
        description: String::new(),
        name: model.name.clone(),
        model_class_name: model.model_class_name.clone(),
        datablob_name: model.datablob_name.clone(),
        model_template_name: model.model_template_name.clone(),
        project: String::new(),
        ..pb::Model::default()
    })
}

pub(crate) fn model(model: Option<pb::Model>) -> Result<Model> {
    let model = required("model", model)?;
    Ok(Model {
        run: crate::runs::run_info(&model)?,
        created_at: time("model.created_at", model.created_at)?,
        last_modified_at: time("model.last_modified_at", model.last_modified_at)?,
        params: hyperparams_value("model.params_json", &model.params_json)?,
        project: Some(model.project),
        tags: model.tags.into_iter().collect(),
        description: model.description,
        deleted_at: time("model.deleted_at", model.deleted_at)?,
        name: model.name,
        model_class_name: model.model_class_name,
        datablob_name: model.datablob_name,
        model_template_name: model.model_template_name,
        epoch_count: model.epoch_count,
        current_epoch: model.current_epoch,
        columns: model.columns.into_iter().map(column_value).collect(),
    })
}

fn column_value(value: pb::ColumnValue) -> ColumnValue {
    use pb::column_value::Value;
    match value.value {
        None => ColumnValue::Missing,
        Some(Value::Integer(int)) => ColumnValue::Integer(int),
        Some(Value::Number(number)) => ColumnValue::Number(number),
    }
}

pub(crate) fn project(project: pb::Project) -> Result<Project> {
    Ok(Project {
        created_at: time("project.created_at", project.created_at)?,
        name: project.name,
    })
}

pub(crate) fn epoch_to_pb(model_name: &str, epoch: NewEpoch) -> pb::Epoch {
    pb::Epoch {
        model_name: model_name.to_owned(),
        epoch_num: epoch.epoch_num,
        metrics: epoch.metrics,
        steps_per_epoch: epoch.steps_per_epoch,
        validation_steps_per_epoch: epoch.validation_steps_per_epoch,
        recorded_at: None,
    }
}

pub(crate) fn epoch(epoch: pb::Epoch) -> Result<Epoch> {
    Ok(Epoch {
        recorded_at: time("epoch.recorded_at", epoch.recorded_at)?,
        model_name: epoch.model_name,
        epoch_num: epoch.epoch_num,
        metrics: epoch.metrics,
        steps_per_epoch: epoch.steps_per_epoch,
        validation_steps_per_epoch: epoch.validation_steps_per_epoch,
    })
}

pub(crate) fn best_model(best: pb::BestModel) -> Result<BestModel> {
    Ok(BestModel {
        model: model(best.model)?,
        datablob: datablob(best.datablob)?,
        model_template: template(best.model_template)?,
        best_epoch: epoch(required("best_epoch", best.best_epoch)?)?,
        metric_value: best.metric_value,
    })
}

pub(crate) fn leaderboard_row(row: pb::LeaderboardRow) -> Result<LeaderboardRow> {
    Ok(LeaderboardRow {
        model: model(row.model)?,
        datablob: datablob(row.datablob)?,
        model_template: template(row.model_template)?,
        best_epoch_num: row.best_epoch_num,
        best_value: row.best_value,
    })
}

pub(crate) fn counts(response: &pb::InsertEpochsResponse) -> InsertCounts {
    InsertCounts {
        inserted: response.inserted,
        skipped: response.skipped,
    }
}

pub(crate) fn direction(direction: Direction) -> i32 {
    match direction {
        Direction::Max => pb::MetricDirection::Max as i32,
        Direction::Min => pb::MetricDirection::Min as i32,
    }
}

pub(crate) fn grouped_filter(filter: &GroupedFilter) -> pb::GroupedFilter {
    filter.to_pb()
}

pub(crate) fn model_filter(filter: &ModelFilter) -> pb::ModelFilter {
    filter.to_pb()
}

pub(crate) fn epoch_request(filter: &EpochFilter, page_size: u32, project: &str) -> pb::ListEpochsRequest {
    pb::ListEpochsRequest {
        project: project.to_owned(),
        model_names: filter.model_names.clone(),
        min_epoch_num: filter.min_epoch_num,
        max_epoch_num: filter.max_epoch_num,
        page_size,
        page_token: String::new(),
    }
}

/// Converts every item of a page, failing on the first bad one.
pub(crate) fn all<P, T>(items: Vec<P>, convert: impl Fn(P) -> Result<T>) -> Result<Vec<T>> {
    items.into_iter().map(convert).collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn datablob_round_trips_through_its_message() {
        let blob = DataBlob::new(
            "d",
            "g",
            json!({"rows": 10, "lr": 0.5, "nested": {"a": [1, 2.5]}}),
        );
        let mut message = datablob_to_pb(&blob).unwrap();
        assert_eq!(message.created_at, None);
        message.created_at = ts(1_700_000_000, 5);
        message.last_modified_at = ts(1_700_000_001, 0);
        let back = datablob(Some(message)).unwrap();
        assert_eq!(back.hyperparams, blob.hyperparams);
        assert_eq!(back.hyperparams["rows"].as_i64(), Some(10));
        assert_eq!(back.hyperparams["lr"].as_f64(), Some(0.5));
        assert_eq!(
            back.created_at,
            Some(UNIX_EPOCH + Duration::new(1_700_000_000, 5))
        );
        assert_eq!(back.name, "d");
    }

    #[test]
    fn null_hyperparams_are_sent_empty_and_empty_reads_as_an_object() {
        let template = ModelTemplate::new("t", "g", Value::Null);
        assert_eq!(template_to_pb(&template).unwrap().hyperparams_json, "");
        let back = super::template(Some(pb::ModelTemplate::default())).unwrap();
        assert_eq!(back.hyperparams, json!({}));
    }

    #[test]
    fn unreadable_answers_are_invalid_responses() {
        let bad_json = pb::DataBlob {
            hyperparams_json: "{".into(),
            ..pb::DataBlob::default()
        };
        assert!(matches!(datablob(Some(bad_json)), Err(Error::InvalidResponse(_))));
        assert!(matches!(model(None), Err(Error::InvalidResponse(m)) if m.contains("`model`")));
        let no_epoch = pb::BestModel {
            model: Some(pb::Model::default()),
            datablob: Some(pb::DataBlob::default()),
            model_template: Some(pb::ModelTemplate::default()),
            best_epoch: None,
            metric_value: 1.0,
        };
        assert!(matches!(best_model(no_epoch), Err(Error::InvalidResponse(m)) if m.contains("best_epoch")));
    }

    #[test]
    fn epochs_keep_every_field() {
        let new = NewEpoch::new(7, [("loss", f64::NAN), ("acc", f64::INFINITY)])
            .with_steps(3)
            .with_validation_steps(0);
        let mut message = epoch_to_pb("m", new);
        assert_eq!(message.model_name, "m");
        message.recorded_at = ts(10, 0);
        let back = epoch(message).unwrap();
        assert_eq!(back.epoch_num, 7);
        assert!(back.metrics["loss"].is_nan());
        assert_eq!(back.metrics["acc"], f64::INFINITY);
        assert_eq!(back.steps_per_epoch, Some(3));
        assert_eq!(back.validation_steps_per_epoch, Some(0));
        assert_eq!(back.recorded_at, Some(UNIX_EPOCH + Duration::from_secs(10)));
    }

    #[test]
    fn directions_and_filters() {
        assert_eq!(direction(Direction::Max), pb::MetricDirection::Max as i32);
        assert_eq!(direction(Direction::Min), pb::MetricDirection::Min as i32);
        let filter = ModelFilter::default()
            .names(["a"])
            .model_template_group_names(["t"]);
        let message = model_filter(&filter);
        assert_eq!(message.names, ["a"]);
        assert_eq!(message.model_template_group_names, ["t"]);
        let request = epoch_request(&EpochFilter::models(["m"]).min_epoch_num(2), 50, "vision");
        assert_eq!(request.project, "vision");
        assert_eq!(request.min_epoch_num, Some(2));
        assert_eq!(request.max_epoch_num, None);
        assert_eq!(request.page_size, 50);
    }
}
