//! `mlmeta list datablobs|templates|models|epochs`.

use std::collections::{BTreeMap, BTreeSet};

use mlmeta_client::{Client, DataBlob, Epoch, GroupedFilter, Model, ModelTemplate, ModelView, Project};
use serde_json::Value;

use crate::args::ListCommand;
use crate::error::CliError;
use crate::output::flatten::flatten;
use crate::output::json::{EpochJson, GroupedJson, ModelJson, ProjectJson, status_name};
use crate::output::{Cell, Render, Table, format_time};

/// Fetches the whole listing (every page).
pub async fn run(client: &Client, command: &ListCommand) -> Result<Box<dyn Render>, CliError> {
    Ok(match command {
        ListCommand::Projects => Box::new(Projects(client.list_projects().await?)),
        ListCommand::Datablobs { names, groups } => {
            let filter = grouped_filter(names, groups);
            Box::new(Datablobs(client.list_datablobs(&filter).await?))
        }
        ListCommand::Templates { names, groups } => {
            let filter = grouped_filter(names, groups);
            Box::new(Templates(client.list_model_templates(&filter).await?))
        }
        ListCommand::Models {
            names,
            filter,
            sort,
            columns,
        } => {
            let filter = filter.to_filter().names(names.iter().cloned());
            let view = ModelView {
                order_by: sort.clone().unwrap_or_default(),
                columns: columns.names(),
            };
            let models = client.list_models_with(&filter, &view).await?;
            Box::new(Models {
                models,
                columns: view.columns,
            })
        }
        ListCommand::Epochs(args) => Box::new(Epochs(client.list_epochs(&args.to_filter()).await?)),
    })
}

/// The filter of `list datablobs|templates`.
fn grouped_filter(names: &[String], groups: &[String]) -> GroupedFilter {
    GroupedFilter::default()
        .names(names.iter().cloned())
        .group_names(groups.iter().cloned())
}

const GROUPED_COLUMNS: [&str; 5] = ["name", "group", "hyperparams", "created_at", "last_modified_at"];

fn grouped_row(json: &GroupedJson<'_>) -> Vec<Cell> {
    vec![
        Cell::from(json.name),
        Cell::from(json.group_name),
        // Compact JSON: one cell, one line.
        Cell::Text(json.hyperparams.to_string()),
        Cell::Text(json.created_at.clone()),
        Cell::Text(json.last_modified_at.clone()),
    ]
}

struct Projects(Vec<Project>);

impl Render for Projects {
    fn table(&self) -> Table {
        let mut table = Table::new(["name", "created_at"]);
        table.rows = self
            .0
            .iter()
            .map(|p| vec![Cell::from(p.name.as_str()), Cell::Text(format_time(p.created_at))])
            .collect();
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self.0.iter().map(ProjectJson::from).collect::<Vec<_>>())
    }
}

struct Datablobs(Vec<DataBlob>);

impl Render for Datablobs {
    fn table(&self) -> Table {
        let mut table = Table::new(GROUPED_COLUMNS);
        table.rows = self.0.iter().map(|b| grouped_row(&b.into())).collect();
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self.0.iter().map(GroupedJson::from).collect::<Vec<_>>())
    }
}

struct Templates(Vec<ModelTemplate>);

impl Render for Templates {
    fn table(&self) -> Table {
        let mut table = Table::new(GROUPED_COLUMNS);
        table.rows = self.0.iter().map(|t| grouped_row(&t.into())).collect();
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self.0.iter().map(GroupedJson::from).collect::<Vec<_>>())
    }
}

/// Listed models, in the server's order, with their `--columns`.
struct Models {
    models: Vec<Model>,
    columns: Vec<String>,
}

impl Render for Models {
    /// `name, class, datablob, template, status, epochs, created_at,
    /// last_modified_at`, then the `--columns` (as written),
    /// then `tags` (compact JSON, without the server's `mlmeta.*` ones)
    /// when any listed model has such tags, then one
    /// column per params key any listed model has (`params.<key>`, nested
    /// keys joined with dots; empty where a model lacks the key).
    fn table(&self) -> Table {
        let mut table = Table::new([
            "name",
            "class",
            "datablob",
            "template",
            "status",
            "epochs",
            "created_at",
            "last_modified_at",
        ]);
        table.columns.extend(self.columns.iter().cloned());
        let tags = self
            .models
            .iter()
            .any(|m| m.tags.keys().any(|k| !is_system_tag(k)));
        if tags {
            table.columns.push("tags".into());
        }
        let params: Vec<BTreeMap<String, Cell>> =
            self.models.iter().map(|m| flatten("params", &m.params)).collect();
        let keys: BTreeSet<&String> = params.iter().flat_map(BTreeMap::keys).collect();
        table.columns.extend(keys.iter().map(|k| (*k).clone()));
        table.rows = self
            .models
            .iter()
            .zip(&params)
            .map(|(m, params)| {
                let mut row = vec![
                    Cell::from(m.name.as_str()),
                    Cell::from(m.model_class_name.as_str()),
                    Cell::from(m.datablob_name.as_str()),
                    Cell::from(m.model_template_name.as_str()),
                    Cell::from(status_name(m)),
                    Cell::Int(i64::try_from(m.epoch_count).unwrap_or(i64::MAX)),
                    Cell::Text(format_time(m.created_at)),
                    Cell::Text(format_time(m.last_modified_at)),
                ];
                row.extend(m.columns.iter().map(Cell::column));
                if tags {
                    row.push(user_tags_cell(&m.tags));
                }
                row.extend(
                    keys.iter()
                        .map(|k| params.get(*k).cloned().unwrap_or(Cell::Empty)),
                );
                row
            })
            .collect();
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(
            self.models
                .iter()
                .map(|m| ModelJson::from(m).with_columns(&self.columns, &m.columns))
                .collect::<Vec<_>>(),
        )
    }
}

/// Whether the server set this tag (the run context: `mlmeta.host`, …).
fn is_system_tag(key: &str) -> bool {
    key.starts_with("mlmeta.")
}

/// The tags users set, as one cell: a table of many runs stays readable;
/// `--format json` and `show model` have the system tags too.
fn user_tags_cell(tags: &mlmeta_client::Tags) -> Cell {
    let user: mlmeta_client::Tags = tags
        .iter()
        .filter(|(k, _)| !is_system_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags_cell(&user)
}

/// Tags as one cell: compact JSON (`{}` when none), one line.
fn tags_cell(tags: &mlmeta_client::Tags) -> Cell {
    Cell::Text(serde_json::to_string(tags).unwrap_or_default())
}

struct Epochs(Vec<Epoch>);

impl Render for Epochs {
    /// `model, epoch`, one column per metric any listed epoch has (sorted),
    /// then the step counts when any epoch has them.
    fn table(&self) -> Table {
        let metrics: BTreeSet<&String> = self.0.iter().flat_map(|e| e.metrics.keys()).collect();
        let steps = self.0.iter().any(|e| e.steps_per_epoch.is_some());
        let validation_steps = self.0.iter().any(|e| e.validation_steps_per_epoch.is_some());
        let mut table = Table::new(["model", "epoch"]);
        table.columns.extend(metrics.iter().map(|m| (*m).clone()));
        if steps {
            table.columns.push("steps_per_epoch".into());
        }
        if validation_steps {
            table.columns.push("validation_steps_per_epoch".into());
        }
        let count = |n: Option<i64>| n.map_or(Cell::Empty, Cell::Int);
        for epoch in &self.0 {
            let mut row = vec![Cell::from(epoch.model_name.as_str()), Cell::Int(epoch.epoch_num)];
            row.extend(
                metrics
                    .iter()
                    .map(|m| epoch.metrics.get(*m).map_or(Cell::Empty, |v| Cell::Float(*v))),
            );
            if steps {
                row.push(count(epoch.steps_per_epoch));
            }
            if validation_steps {
                row.push(count(epoch.validation_steps_per_epoch));
            }
            table.rows.push(row);
        }
        table
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self.0.iter().map(EpochJson::from).collect::<Vec<_>>())
    }
}
