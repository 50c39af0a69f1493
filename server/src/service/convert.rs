//! Translation between protobuf messages and store records. Incoming
//! messages are validated here, with field paths in every error.

use mlmeta_proto as pb;
use prost_types::Timestamp;

use super::columns;
use crate::error::Error;
use crate::store::records::{
    BestModel, ColumnValue, Component, Direction, Epoch, EpochFilter, Field, GroupedFilter, LeaderboardRow,
    Model, ModelFilter, ModelView, NewComponent, NewEpoch, NewModel, PageRequest, Project,
};
use crate::validate;

type Result<T> = std::result::Result<T, Error>;

/// A datablob or template from a put request (`field` is its path).
pub fn new_component(
    field: &str,
    name: &str,
    group_name: &str,
    hyperparams_json: &str,
) -> Result<NewComponent> {
    validate::name(|| format!("{field}.name"), name)?;
    validate::name(|| format!("{field}.group_name"), group_name)?;
    let hyperparams = validate::hyperparams(&format!("{field}.hyperparams_json"), hyperparams_json)?;
    Ok(NewComponent {
        name: name.to_owned(),
        group_name: group_name.to_owned(),
        hyperparams,
    })
}

/// The required message field `field`.
pub fn required<T>(field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| Error::invalid(field, "is required"))
}

/// A model from a put request.
pub fn new_model(model: pb::Model) -> Result<NewModel> {
    validate::name("model.name", &model.name)?;
    validate::name("model.model_class_name", &model.model_class_name)?;
    validate::name("model.datablob_name", &model.datablob_name)?;
    validate::name("model.model_template_name", &model.model_template_name)?;
    let params = validate::hyperparams("model.params_json", &model.params_json)?;
    Ok(NewModel {
        params,
        name: model.name,
        model_class_name: model.model_class_name,
        datablob_name: model.datablob_name,
        model_template_name: model.model_template_name,
    })
}

/// The epochs of an insert request, all validated (any error rejects the
/// whole request before anything is written): its rows, then the epochs
/// of its column sets in order.
pub fn new_epochs(request: pb::InsertEpochsRequest) -> Result<Vec<NewEpoch>> {
    let pb::InsertEpochsRequest { epochs, columns, .. } = request;
    let total = columns.iter().fold(epochs.len(), |total, set| {
        total.saturating_add(set.epoch_nums.len())
    });
    if total > validate::MAX_EPOCHS_PER_REQUEST {
        let field = if columns.is_empty() {
            "epochs"
        } else {
            "epochs and columns"
        };
        return Err(Error::invalid(
            field,
            format!(
                "one request may carry at most {} epochs, got {total}; split it into several requests",
                validate::MAX_EPOCHS_PER_REQUEST,
            ),
        ));
    }
    let mut last_valid_model_name: Option<String> = None;
    let mut out = Vec::with_capacity(total);
    for (i, epoch) in epochs.into_iter().enumerate() {
        // Trainers send runs of one model: check each name once per run.
        if last_valid_model_name.as_deref() != Some(epoch.model_name.as_str()) {
            validate::name(|| format!("epochs[{i}].model_name"), &epoch.model_name)?;
            last_valid_model_name = Some(epoch.model_name.clone());
        }
        out.push(new_epoch(i, epoch)?);
    }
    for (i, set) in columns.into_iter().enumerate() {
        columns::append_epochs(&format!("columns[{i}]"), set, &mut out)?;
    }
    Ok(out)
}

fn new_epoch(i: usize, epoch: pb::Epoch) -> Result<NewEpoch> {
    validate::non_negative(|| format!("epochs[{i}].epoch_num"), epoch.epoch_num)?;
    if let Some(steps) = epoch.steps_per_epoch {
        validate::non_negative(|| format!("epochs[{i}].steps_per_epoch"), steps)?;
    }
    if let Some(steps) = epoch.validation_steps_per_epoch {
        validate::non_negative(|| format!("epochs[{i}].validation_steps_per_epoch"), steps)?;
    }
    if epoch.metrics.len() > validate::MAX_METRICS_PER_EPOCH {
        return Err(Error::invalid(
            format!("epochs[{i}].metrics"),
            format!(
                "must hold at most {} metrics, got {}",
                validate::MAX_METRICS_PER_EPOCH,
                epoch.metrics.len()
            ),
        ));
    }
    for name in epoch.metrics.keys() {
        validate::name(
            || format!("epochs[{i}].metrics[{}] (metric name)", validate::echo(name)),
            name,
        )?;
    }
    Ok(NewEpoch {
        model_name: epoch.model_name,
        epoch_num: epoch.epoch_num,
        metrics: epoch.metrics,
        steps_per_epoch: epoch.steps_per_epoch,
        validation_steps_per_epoch: epoch.validation_steps_per_epoch,
        // Set by the server (`recorded_at` of the request is ignored); an
        // import sets it after this.
        recorded_at: None,
    })
}

/// A datablob or template filter (`None` does not filter), validated by
/// the shared filter type.
pub fn component_filter(field: &str, filter: Option<pb::GroupedFilter>) -> Result<GroupedFilter> {
    GroupedFilter::from_pb(field, filter).map_err(invalid_filter)
}

/// A model filter (`None` does not filter), validated by the shared
/// filter type.
pub fn model_filter(filter: Option<pb::ModelFilter>) -> Result<ModelFilter> {
    ModelFilter::from_pb(filter).map_err(invalid_filter)
}

fn invalid_filter(error: mlmeta_proto::filter::InvalidFilter) -> Error {
    Error::invalid(error.field, error.rule)
}

/// The epochs to list.
pub fn epoch_filter(request: &pb::ListEpochsRequest) -> Result<EpochFilter> {
    validate::filter_values("model_names", &request.model_names)?;
    if let (Some(min), Some(max)) = (request.min_epoch_num, request.max_epoch_num)
        && min > max
    {
        return Err(Error::invalid(
            "min_epoch_num",
            format!("must be <= max_epoch_num, got {min} > {max}"),
        ));
    }
    Ok(EpochFilter {
        model_names: request.model_names.clone(),
        min_epoch_num: request.min_epoch_num,
        max_epoch_num: request.max_epoch_num,
        include_deleted: false,
    })
}

/// Page size and token of a listing request.
pub fn page(page_size: u32, page_token: String) -> Result<PageRequest> {
    Ok(PageRequest {
        size: validate::page_size("page_size", page_size)?,
        token: page_token,
    })
}

/// Metric name and direction of a best-model or leaderboard request.
pub fn ranking(metric_name: &str, direction: i32) -> Result<Direction> {
    validate::name("metric_name", metric_name)?;
    match pb::MetricDirection::try_from(direction) {
        Ok(pb::MetricDirection::Max) => Ok(Direction::Max),
        Ok(pb::MetricDirection::Min) => Ok(Direction::Min),
        Ok(pb::MetricDirection::Unspecified) => Err(Error::invalid(
            "direction",
            "is required: METRIC_DIRECTION_MAX or METRIC_DIRECTION_MIN",
        )),
        Err(_) => Err(Error::invalid(
            "direction",
            format!("unknown value {direction}: use METRIC_DIRECTION_MAX (1) or METRIC_DIRECTION_MIN (2)"),
        )),
    }
}

/// `top_k`: 0 means 1, at most [`validate::MAX_TOP_K`].
pub fn top_k(value: u32) -> Result<usize> {
    match usize::try_from(value) {
        Ok(0) => Ok(1),
        Ok(k) if k <= validate::MAX_TOP_K => Ok(k),
        _ => Err(Error::invalid(
            "top_k",
            format!("must be at most {}, got {value}", validate::MAX_TOP_K),
        )),
    }
}

/// Microseconds since the Unix epoch as a protobuf timestamp.
pub fn timestamp(micros: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: micros.div_euclid(1_000_000),
        // The remainder is below 1,000,000, so times 1,000 fits an i32.
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    })
}

pub fn datablob(c: Component, project: &str) -> pb::DataBlob {
    pb::DataBlob {
        project: project.to_owned(),
        name: c.name,
        group_name: c.group_name,
        hyperparams_json: c.hyperparams,
        created_at: timestamp(c.created_at),
        last_modified_at: timestamp(c.last_modified_at),
        tags: c.tags.into_iter().collect(),
        description: c.description,
        deleted_at: c.deleted_at.and_then(timestamp),
    }
}

pub fn model_template(c: Component, project: &str) -> pb::ModelTemplate {
    pb::ModelTemplate {
        project: project.to_owned(),
        name: c.name,
        group_name: c.group_name,
        hyperparams_json: c.hyperparams,
        created_at: timestamp(c.created_at),
        last_modified_at: timestamp(c.last_modified_at),
        tags: c.tags.into_iter().collect(),
        description: c.description,
        deleted_at: c.deleted_at.and_then(timestamp),
    }
}

pub fn model(m: Model, project: &str) -> pb::Model {
    pb::Model {
        project: project.to_owned(),
        name: m.name,
        model_class_name: m.model_class_name,
        datablob_name: m.datablob_name,
        model_template_name: m.model_template_name,
        created_at: timestamp(m.created_at),
        last_modified_at: timestamp(m.last_modified_at),
        params_json: m.params,
        tags: m.tags.into_iter().collect(),
        description: m.description,
        status: super::runs::run_status(m.run.status).into(),
        started_at: m.run.started_at.and_then(timestamp),
        ended_at: m.run.ended_at.and_then(timestamp),
        last_heartbeat_at: m.run.last_heartbeat_at.and_then(timestamp),
        heartbeat_timeout_secs: m.run.heartbeat_timeout_secs.and_then(|s| u32::try_from(s).ok()),
        run_context: super::runs::run_context(m.run.run_context.as_deref()),
        epoch_count: u64::try_from(m.epoch_count).unwrap_or(0),
        current_epoch: m.current_epoch,
        deleted_at: m.deleted_at.and_then(timestamp),
        columns: m.columns.into_iter().map(column_value).collect(),
    }
}

fn column_value(value: ColumnValue) -> pb::ColumnValue {
    use pb::column_value::Value;
    pb::ColumnValue {
        value: match value {
            ColumnValue::Missing => None,
            ColumnValue::Integer(int) => Some(Value::Integer(int)),
            ColumnValue::Number(number) => Some(Value::Number(number)),
        },
    }
}

/// Most entries of a request's `columns`.
const MAX_COLUMNS: usize = 32;

/// The summary fields of a request's `columns`.
pub fn columns(columns: &[String]) -> Result<Vec<Field>> {
    if columns.len() > MAX_COLUMNS {
        return Err(Error::invalid(
            "columns",
            format!("must have at most {MAX_COLUMNS} entries"),
        ));
    }
    columns
        .iter()
        .enumerate()
        .map(|(i, text)| {
            mlmeta_proto::where_lang::parse_column(text)
                .map_err(|error| Error::invalid(format!("columns[{i}]"), error))
        })
        .collect()
}

/// The order and columns of a ListModels request.
pub fn model_view(request: &pb::ListModelsRequest) -> Result<ModelView> {
    let order_by = if request.order_by.trim().is_empty() {
        None
    } else {
        Some(
            mlmeta_proto::where_lang::parse_order_by(&request.order_by)
                .map_err(|error| Error::invalid("order_by", error))?,
        )
    };
    Ok(ModelView {
        order_by,
        columns: columns(&request.columns)?,
    })
}

pub fn project(p: Project) -> pb::Project {
    pb::Project {
        name: p.name,
        created_at: timestamp(p.created_at),
    }
}

pub fn epoch(e: Epoch) -> pb::Epoch {
    pb::Epoch {
        model_name: e.model_name,
        epoch_num: e.epoch_num,
        metrics: e.metrics,
        steps_per_epoch: e.steps_per_epoch,
        validation_steps_per_epoch: e.validation_steps_per_epoch,
        recorded_at: timestamp(e.recorded_at),
    }
}

pub fn best_model(b: BestModel, project: &str) -> pb::BestModel {
    pb::BestModel {
        model: Some(model(b.model, project)),
        datablob: Some(datablob(b.datablob, project)),
        model_template: Some(model_template(b.model_template, project)),
        best_epoch: Some(epoch(b.best_epoch)),
        metric_value: b.metric_value,
    }
}

pub fn leaderboard_row(r: LeaderboardRow, project: &str) -> pb::LeaderboardRow {
    pb::LeaderboardRow {
        model: Some(model(r.model, project)),
        datablob: Some(datablob(r.datablob, project)),
        model_template: Some(model_template(r.model_template, project)),
        best_epoch_num: r.best_epoch_num,
        best_value: r.best_value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_micros() {
        assert_eq!(
            timestamp(1_500_000),
            Some(Timestamp {
                seconds: 1,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            timestamp(-1),
            Some(Timestamp {
                seconds: -1,
                nanos: 999_999_000
            })
        );
    }

    #[test]
    fn directions() {
        assert_eq!(ranking("m", 1).unwrap(), Direction::Max);
        assert_eq!(ranking("m", 2).unwrap(), Direction::Min);
        assert!(
            ranking("m", 0)
                .unwrap_err()
                .to_string()
                .starts_with("direction: is required")
        );
        assert!(
            ranking("m", 7)
                .unwrap_err()
                .to_string()
                .contains("unknown value 7")
        );
        assert!(ranking("", 1).unwrap_err().to_string().starts_with("metric_name"));
    }

    #[test]
    fn oversized_epoch_requests_name_the_limit() {
        let request = pb::InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![pb::Epoch::default(); validate::MAX_EPOCHS_PER_REQUEST + 1],
        };
        let message = new_epochs(request).unwrap_err().to_string();
        assert!(message.contains("at most 100000 epochs, got 100001"), "{message}");
    }

    #[test]
    fn invalid_epochs_name_their_index() {
        let epoch = |name: &str, num: i64| pb::Epoch {
            model_name: name.into(),
            epoch_num: num,
            ..Default::default()
        };
        let error = new_epochs(pb::InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![epoch("m", 0), epoch("m", -1)],
        })
        .unwrap_err();
        assert!(error.to_string().starts_with("epochs[1].epoch_num: must be >= 0"));
        let error = new_epochs(pb::InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![epoch("m", 0), epoch("", 1)],
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("epochs[1].model_name: must not be empty")
        );
        let mut bad_metric = epoch("m", 0);
        bad_metric.metrics.insert(String::new(), 1.0);
        let error = new_epochs(pb::InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![bad_metric],
        })
        .unwrap_err();
        assert!(error.to_string().contains("metric name"), "{error}");
    }

    /// Regression: a 100 KB metric name repeated whole in the message
    /// overflowed the HTTP/2 header that carries it (RESOURCE_EXHAUSTED).
    #[test]
    fn huge_metric_names_are_cut_in_messages() {
        let mut bad_metric = pb::Epoch {
            model_name: "m".into(),
            ..Default::default()
        };
        bad_metric.metrics.insert("'".repeat(100_000), 1.0);
        let error = new_epochs(pb::InsertEpochsRequest {
            columns: Vec::new(),
            project: String::new(),
            epochs: vec![bad_metric],
        })
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("epochs[0].metrics[\"''''"), "{error}");
        assert!(
            error.contains("... (100000 bytes)] (metric name): must be at most 255 bytes"),
            "{error}"
        );
        assert!(error.len() < 300, "{error}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::validate::strategies::{config, hostile_string, metric_value};

        fn names() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec(hostile_string(), 0..3)
        }

        fn epoch_num() -> impl Strategy<Value = i64> {
            prop_oneof![any::<i64>(), 0_i64..4, Just(i64::MAX), Just(i64::MIN)]
        }

        fn epoch() -> impl Strategy<Value = pb::Epoch> {
            (
                hostile_string(),
                epoch_num(),
                prop::collection::btree_map(hostile_string(), metric_value(), 0..4),
                prop::option::of(epoch_num()),
                prop::option::of(epoch_num()),
            )
                .prop_map(|(model_name, epoch_num, metrics, steps, validation_steps)| {
                    pb::Epoch {
                        model_name,
                        epoch_num,
                        metrics,
                        steps_per_epoch: steps,
                        validation_steps_per_epoch: validation_steps,
                        recorded_at: None,
                    }
                })
        }

        fn any_model_filter() -> impl Strategy<Value = pb::ModelFilter> {
            let tags = prop::collection::btree_map(hostile_string(), hostile_string(), 0..3);
            (names(), names(), names(), names(), names(), tags).prop_map(|(a, b, c, d, e, tags)| {
                pb::ModelFilter {
                    names: a,
                    datablob_names: b,
                    datablob_group_names: c,
                    model_template_names: d,
                    model_template_group_names: e,
                    tags,
                    ..pb::ModelFilter::default()
                }
            })
        }

        /// An error of request conversion: INVALID_ARGUMENT "field: rule".
        fn check_invalid(error: Error) -> std::result::Result<(), TestCaseError> {
            match error {
                Error::InvalidArgument(message) => {
                    let (field, rule) = message.split_once(": ").unwrap_or_default();
                    prop_assert!(!field.is_empty() && !rule.is_empty(), "{}", message);
                    prop_assert!(message.len() < 1_000, "{}", message);
                    Ok(())
                }
                other => Err(TestCaseError::fail(format!("not INVALID_ARGUMENT: {other:?}"))),
            }
        }

        fn valid_epoch(epoch: &pb::Epoch) -> bool {
            validate::is_name(&epoch.model_name)
                && epoch.epoch_num >= 0
                && epoch.steps_per_epoch.is_none_or(|s| s >= 0)
                && epoch.validation_steps_per_epoch.is_none_or(|s| s >= 0)
                && epoch.metrics.keys().all(|k| validate::is_name(k))
        }

        proptest! {
            #![proptest_config(config(512))]

            #[test]
            fn epochs_are_accepted_exactly_when_valid(epochs in prop::collection::vec(epoch(), 0..4)) {
                let valid = epochs.iter().all(valid_epoch);
                match new_epochs(pb::InsertEpochsRequest { columns: Vec::new(), project: String::new(), epochs: epochs.clone() }) {
                    Ok(converted) => {
                        prop_assert!(valid);
                        prop_assert_eq!(converted.len(), epochs.len());
                    }
                    Err(error) => {
                        prop_assert!(!valid);
                        check_invalid(error)?;
                    }
                }
            }

            #[test]
            fn filters_pages_and_rankings_are_valid_or_invalid_argument(
                grouped in (names(), names()),
                models in any_model_filter(),
                bounds in (prop::option::of(epoch_num()), prop::option::of(epoch_num())),
                page_size in prop_oneof![any::<u32>(), 0_u32..3, Just(10_000), Just(10_001)],
                token in hostile_string(),
                metric in hostile_string(),
                direction in prop_oneof![any::<i32>(), 0_i32..3],
                k in prop_oneof![any::<u32>(), Just(1_000), Just(1_001)],
            ) {
                let filter = pb::GroupedFilter { names: grouped.0, group_names: grouped.1, deletion: 0 };
                let results = [
                    component_filter("filter", Some(filter)).map(drop),
                    model_filter(Some(models.clone())).map(drop),
                    epoch_filter(&pb::ListEpochsRequest { project: String::new(),
                        model_names: models.names,
                        min_epoch_num: bounds.0,
                        max_epoch_num: bounds.1,
                        page_size,
                        page_token: token.clone(),
                    })
                    .map(drop),
                    page(page_size, token).map(drop),
                    ranking(&metric, direction).map(drop),
                    top_k(k).map(drop),
                    new_model(pb::Model {
                        name: metric.clone(),
                        model_class_name: metric.clone(),
                        ..pb::Model::default()
                    })
                    .map(drop),
                    new_component("datablob", &metric, &metric, &metric).map(drop),
                ];
                for result in results {
                    if let Err(error) = result {
                        check_invalid(error)?;
                    }
                }
            }
        }
    }
}
