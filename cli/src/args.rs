//! The command line, as clap definitions only: every doc comment here is
//! `--help` text. The commands themselves are in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mlmeta_client::{Deletion, Direction, EpochFilter, ModelFilter, RecordKind, RunStatus};
use serde_json::Value;

mod artifact;

pub use artifact::{AddArtifactArgs, ArtifactCommand, UploadArtifactArgs};

const MAIN_HELP: &str = "\
Examples:
  mlmeta add datablob mnist-v1 --group mnist --hyperparams '{\"batch_size\": 128}'
  mlmeta add template cnn-small --group cnn
  mlmeta add model cnn-small-mnist-1 --class KerasModel --datablob mnist-v1 --template cnn-small
  mlmeta add epochs cnn-small-mnist-1 --file epochs.csv
  mlmeta best --metric val_accuracy --max
  mlmeta leaderboard --metric val_loss --min --datablob-group mnist --format csv

Exit status:
  0  success
  1  error (server unreachable, invalid arguments or input, refused request)
  2  not found (no such model, no model has the metric)";

const BEST_HELP: &str = "\
Examples:
  mlmeta best --metric val_accuracy --max
  mlmeta best --metric val_loss --min --top 5 --datablob-group mnist --format json

Exits with status 2 when no matching model has a value for the metric.";

const LEADERBOARD_HELP: &str = "\
Examples:
  mlmeta leaderboard --metric val_accuracy --max
  mlmeta leaderboard --metric val_loss --min --template-group cnn --format csv > board.csv

Model params and hyperparameters become columns `params.<key>`,
`datablob.<key>` and `template.<key>` (nested keys joined with dots). Exits with status 2 when no matching model
has a value for the metric.";

const LIST_HELP: &str = "\
Examples:
  mlmeta list datablobs --datablob-group mnist
  mlmeta list models --template cnn-small --format json
  mlmeta list models --tag sweep=lr --tag stage=dev
  mlmeta list epochs --model cnn-small-mnist-1 --from 10 --to 20";

const CURRENT_EPOCH_HELP: &str = "\
Example:
  mlmeta current-epoch cnn-small-mnist-1

Prints 0 for a model without epochs; exits with status 2 when the model
does not exist.";

const ADD_HELP: &str = "\
Examples:
  mlmeta add datablob mnist-v1 --group mnist --hyperparams '{\"batch_size\": 128}'
  mlmeta add template cnn-small --group cnn --hyperparams '{\"layers\": {\"conv\": 3}}'
  mlmeta add model cnn-small-mnist-1 --class KerasModel --datablob mnist-v1 --template cnn-small
  mlmeta add model run-7 --class KerasModel --datablob mnist-v1 --template cnn-small --params '{\"lr\": 0.01, \"seed\": 7}' --tag sweep=lr
  mlmeta add epochs cnn-small-mnist-1 --file epochs.csv";

const ADD_EPOCHS_HELP: &str = "\
Examples:
  mlmeta add epochs cnn-small-mnist-1 --file epochs.csv
  mlmeta add epochs cnn-small-mnist-1 --file epochs.jsonl
  python train.py | mlmeta add epochs cnn-small-mnist-1 --file -
  mlmeta list epochs --format csv > all.csv && mlmeta --server http://other:50051 add epochs --file all.csv

CSV: a header `epoch,<metric>,<metric>...`, then one epoch per line; an
empty cell means the epoch lacks that metric; columns named
`steps_per_epoch` and `validation_steps_per_epoch` are the step counts.
JSON Lines: one `{\"epoch\": 3, \"metrics\": {\"loss\": 0.2}}` per line
(optional `steps_per_epoch`, `validation_steps_per_epoch`).
JSON: one array of such objects.
What `mlmeta list epochs --format csv|json` prints is read as it is: a
leading `model` column (CSV), or `model_name` (JSON), names each epoch's
model, and MODEL may then be left out to import every model the file names
(the models must exist); with MODEL given, an epoch of another model is an
error. `epoch_num` is taken for `epoch`, and `recorded_at` is ignored.
Values may be NaN, inf or -inf (in JSON also the strings \"NaN\", \"inf\",
\"-inf\", or, in JSON Lines, Python's bare NaN/Infinity). The format is
taken from the extension (.csv, .jsonl, .ndjson), else from the first
character (`[`: a JSON array, `{`: JSON Lines).
The file is read and sent in chunks, so its size does not matter.
Epoch numbers already stored are skipped, never overwritten: importing the
same file again is harmless and reports them as skipped.";

/// Help heading of the options every command takes, apart from each
/// command's own.
const GLOBAL: &str = "Global options";

/// Command-line client of mlmeta, the training-metadata service.
#[derive(Debug, Parser)]
#[command(name = "mlmeta", version, after_help = MAIN_HELP)]
pub struct Cli {
    /// URL of the mlmeta server.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MLMETA_SERVER",
        default_value = "http://127.0.0.1:50051",
        value_name = "URL"
    )]
    pub server: String,

    /// Project (namespace) of the datablobs, templates and models the
    /// command is about.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MLMETA_PROJECT",
        default_value = "default",
        value_name = "NAME"
    )]
    pub project: String,

    /// Bearer token for a server started with --auth-tokens (prefer the
    /// environment variable: command lines are visible to other users).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MLMETA_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// PEM file of the CA to trust for an https:// server (default: the
    /// system's CAs).
    #[arg(long, global = true, help_heading = GLOBAL, env = "MLMETA_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// PEM client certificate, for a server that requires one (mutual
    /// TLS; needs --client-key).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MLMETA_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MLMETA_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,

    /// Output format: aligned columns, one JSON document (non-finite
    /// numbers as the strings "NaN", "inf", "-inf"), or CSV with a header.
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Seconds to keep retrying while the server is unreachable or
    /// overloaded (a restart, a failover) before giving up; 0 gives up at
    /// the first failure. Retried writes store nothing twice.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "MLMETA_RETRY_SECS",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub retry_secs: u64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns aligned for a terminal.
    Table,
    /// One JSON document.
    Json,
    /// CSV with a header line.
    Csv,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The best model(s) by a metric, with their datablob, template and
    /// hyperparameters.
    #[command(after_help = BEST_HELP)]
    Best(BestArgs),
    /// Every matching model with its best value and epoch of a metric,
    /// best first.
    #[command(after_help = LEADERBOARD_HELP)]
    Leaderboard(RankArgs),
    /// List datablobs, templates, models or epochs.
    #[command(subcommand, after_help = LIST_HELP)]
    List(ListCommand),
    /// The highest epoch number stored for a model.
    #[command(after_help = CURRENT_EPOCH_HELP)]
    CurrentEpoch(CurrentEpochArgs),
    /// Metric curves of one or more models: one row per model and epoch,
    /// one column per metric asked for.
    #[command(after_help = HISTORY_HELP)]
    History(HistoryArgs),
    /// Store a datablob, template or model, or import epochs from a file.
    #[command(subcommand, after_help = ADD_HELP)]
    Add(AddCommand),
    /// Set tags (KEY=VALUE) of a model, or of a datablob or template.
    #[command(after_help = TAG_HELP)]
    Tag(TagArgs),
    /// Remove tags (by key) of a model, or of a datablob or template.
    #[command(after_help = "Example:\n  mlmeta untag run-7 stage owner")]
    Untag(UntagArgs),
    /// Set the description (free text, markdown) of a model, or of a
    /// datablob or template.
    #[command(after_help = DESCRIBE_HELP)]
    Describe(DescribeArgs),
    /// Start, heartbeat or end a model's run.
    #[command(subcommand, after_help = RUN_HELP)]
    Run(RunCommand),
    /// Add, list or remove a model's artifact references (URIs of its
    /// checkpoints and exports).
    #[command(subcommand, after_help = artifact::ARTIFACT_HELP)]
    Artifact(ArtifactCommand),
    /// Everything about one model.
    #[command(subcommand)]
    Show(ShowCommand),
    /// Soft-delete a model, datablob or template (restore brings it back).
    #[command(subcommand, after_help = DELETE_HELP)]
    Delete(RecordCommand),
    /// Restore a deleted model, datablob or template exactly as it was.
    #[command(subcommand, after_help = "Example:\n  mlmeta restore model run-7")]
    Restore(RecordCommand),
    /// Remove deleted records and their epochs for good.
    #[command(after_help = PURGE_HELP)]
    Purge(PurgeArgs),
    /// Print epochs (or, with --models, model events) as they are
    /// committed, through any replica, until Ctrl-C or --until-status.
    #[command(after_help = WATCH_HELP)]
    Watch(WatchArgs),
    /// Turn a directory of old results (one directory per run with a dict
    /// file) into models with params, epochs and artifact references.
    #[command(after_help = IMPORT_DIR_HELP)]
    ImportDir(ImportDirArgs),
    /// Write a project (datablobs, templates, models with their runs,
    /// tags, descriptions, artifacts and epochs) as one JSON Lines file.
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
    /// Load a file written by `mlmeta export` into the project
    /// (idempotent: what is stored already is skipped and counted).
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
}

const EXPORT_HELP: &str = "\
Examples:
  mlmeta export --to vision.jsonl
  mlmeta --project vision export --model run-7 --model run-8 --with-artifacts --to runs.jsonl
  mlmeta export --where 'params.lr < 0.01' --to - | gzip > small-lr.jsonl.gz

One record per line, the first line the header (format version 1); then
the datablobs and templates by name, then each model by name with its
artifacts and its epochs (one per line). Values are exact (NaN and
infinities as strings, hyperparameters as their stored JSON text, times
with microseconds), and the same records always give the same bytes. The
server reads the project in pages: memory stays small for any size. A
progress bar (records, bytes) shows on a terminal. Deleted records are
not exported.";

const IMPORT_HELP: &str = "\
Examples:
  mlmeta --server http://new-host:50051 import --from vision.jsonl
  gunzip -c small-lr.jsonl.gz | mlmeta --project copy import --from -
  mlmeta import --from vision.jsonl --overwrite-mutable

Records go into --project (whatever project the file came from), with the
times, tags, descriptions, run status and status history of the export.
Importing the same file again stores nothing and counts everything as
skipped. A record stored with other content is a conflict: listed, left
alone (with its artifacts and epochs), and the exit status is 1; with
--overwrite-mutable, records that differ only in tags or description get
the file's. A malformed line stops the import there, naming the line
(the lines before it are stored: fix the file and import it again).";

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this model (repeatable), with the datablobs and templates it uses.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Only models matching this filter expression (see `mlmeta list
    /// models --help`), with the datablobs and templates they use.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_expr: Option<String>,
    /// Include the content of artifacts uploaded into the server (base64).
    #[arg(long)]
    pub with_artifacts: bool,
    /// The file to write (replaced), or `-` for standard output.
    #[arg(long, value_name = "FILE")]
    pub to: String,
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file written by `mlmeta export`, or `-` for standard input.
    #[arg(long, value_name = "FILE")]
    pub from: String,
    /// Replace the tags and descriptions of records stored with the same
    /// content (otherwise such a difference is a conflict).
    #[arg(long)]
    pub overwrite_mutable: bool,
}

const IMPORT_DIR_HELP: &str = "\
Examples:
  mlmeta import-dir results/ --dict-file conf.json --metrics f1,accuracy --dry-run
  mlmeta import-dir results/ --dict-file conf.json --metrics-prefix val_ --datablob mnist-v1 --template cnn-small

Every directory under DIR (DIR included) that holds the dict file becomes a
model, named by its path below DIR (--model-name-from path) or by a key of
the dict file. The file's keys become params, except the metric keys
(--metrics, or --metrics-prefix), `epoch` and `history`. A metric that is a
number is one epoch (numbered by the `epoch` key, else 0); a list is one
epoch per element (0, 1, ...); `history` (an object of lists, or a list of
objects) is one epoch per element. `history.csv` and `conf.jsonl` in the
directory are read as `mlmeta add epochs` reads files; the metrics of one
epoch from several places are merged. Every other file in
the directory becomes an artifact reference (file:// URI, size, SHA-256).
The datablob and template (default `imported`) are created when missing.
Running it again stores nothing new; a directory whose params or files
changed since is reported as a conflict (exit 1) and the others are
imported.";

/// Arguments of `import-dir`.
#[derive(Debug, Args)]
pub struct ImportDirArgs {
    /// The directory of results.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The file, in each run directory, that holds its params and results.
    #[arg(long, value_name = "NAME", default_value = "conf.json")]
    pub dict_file: String,
    /// The datablob of the models (created, group `imported`, if missing).
    #[arg(long, value_name = "NAME", default_value = "imported")]
    pub datablob: String,
    /// The template of the models (created, group `imported`, if missing).
    #[arg(long, value_name = "NAME", default_value = "imported")]
    pub template: String,
    /// The models' class.
    #[arg(long = "class", value_name = "CLASS", default_value = "imported")]
    pub class: String,
    /// Keys of the dict file that are metrics (comma-separated).
    #[arg(
        long,
        value_name = "KEYS",
        value_delimiter = ',',
        conflicts_with = "metrics_prefix"
    )]
    pub metrics: Vec<String>,
    /// Keys starting with this are metrics.
    #[arg(long, value_name = "PREFIX")]
    pub metrics_prefix: Option<String>,
    /// `path` (the directory's path below DIR) or a key of the dict file.
    #[arg(long, value_name = "path|KEY", default_value = "path")]
    pub model_name_from: String,
    /// Print what would be stored, store nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const WATCH_HELP: &str = "\
Examples:
  mlmeta watch cnn-small-mnist-1 --metric val_loss --history
  mlmeta watch --datablob-group mnist --format json
  mlmeta watch cnn-small-mnist-1 --until-status finished && echo trained
  mlmeta watch --models --tag team=vision

Without MODEL, watches every model matching the filter options, including
models that start matching later. With --format json, one JSON object per
line (JSON Lines); with --format csv, one row per metric value
(model,epoch,metric,value). The watch reconnects by itself, resuming where it
stopped (nothing missed or printed twice). With --until-status it exits once
the watched runs ended: 0 when all FINISHED, 2 when any FAILED, CRASHED or
KILLED (with `finished`, as soon as one does).";

/// When `watch` stops by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UntilStatus {
    /// When every watched run is FINISHED (exit 0), or any ends otherwise
    /// (exit 2).
    Finished,
    /// When every watched run has ended (exit 0 if all FINISHED, else 2).
    AnyEnd,
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The models to watch; none: every model matching the filter options.
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    /// Only this metric (repeatable).
    #[arg(long = "metric", value_name = "M")]
    pub metrics: Vec<String>,
    /// First print the stored epochs of the watched models.
    #[arg(long)]
    pub history: bool,
    /// Print model events (created, status, tags, deleted, restored)
    /// instead of epochs.
    #[arg(long = "models", conflicts_with_all = ["metrics", "history"])]
    pub model_events: bool,
    /// Exit when the watched runs end (see below).
    #[arg(long, value_enum, value_name = "WHEN")]
    pub until_status: Option<UntilStatus>,
    /// Which models, when no MODEL is given.
    #[command(flatten)]
    pub filter: ModelFilterArgs,
}

const DELETE_HELP: &str = "\
Examples:
  mlmeta delete model run-7
  mlmeta delete datablob mnist-v1

A deleted model leaves listings, best and leaderboard (see `list models
--deleted`), keeps its epochs, and takes no writes until restored; its name
stays taken until it is purged. A datablob or template can be deleted only
when no live model uses it. Deleting a deleted record succeeds.";

const PURGE_HELP: &str = "\
Examples:
  mlmeta purge --model run-7 --yes
  mlmeta purge --yes

Without --model: every deleted model of the project, then the deleted
datablobs and templates no model uses. There is no undo: --yes is required.";

/// The record a `delete` or `restore` names.
#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// A model.
    Model {
        /// Its name.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// A datablob.
    Datablob {
        /// Its name.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// A model template.
    Template {
        /// Its name.
        #[arg(value_name = "NAME")]
        name: String,
    },
}

impl RecordCommand {
    /// The kind and name of the record.
    pub fn target(&self) -> (RecordKind, &str) {
        match self {
            Self::Model { name } => (RecordKind::Model, name),
            Self::Datablob { name } => (RecordKind::DataBlob, name),
            Self::Template { name } => (RecordKind::ModelTemplate, name),
        }
    }
}

/// Arguments of `purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Purge only this deleted model.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Confirm: purged records cannot be restored.
    #[arg(long, required = true)]
    pub yes: bool,
}

/// What `show` shows.
#[derive(Debug, Subcommand)]
pub enum ShowCommand {
    /// One model: project, run status with its times and history, params,
    /// datablob and template with their hyperparameters, tags,
    /// description, artifacts, epochs, and per metric its best, last,
    /// lowest and highest value with their epochs.
    #[command(after_help = SHOW_MODEL_HELP)]
    Model(ShowModelArgs),
}

const SHOW_MODEL_HELP: &str = "\
Examples:
  mlmeta show model cnn-small-mnist-1
  mlmeta show model cnn-small-mnist-1 --minimize val_error --format json

`best` is the highest value of a metric, or the lowest for metrics whose
name says lower is better (containing loss, error, err, mse, mae, rmse,
perplexity, latency or time) and for those named with --minimize (or
--maximize to override that). Ties go to the lower epoch, as in `mlmeta
best`. NaN never counts as best, lowest or highest; `nan` counts the
epochs where the metric was NaN. Exits with status 2 when the model does
not exist.";

/// Arguments of `show model`.
#[derive(Debug, Args)]
pub struct ShowModelArgs {
    /// The model.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Metrics for which lower is better (repeatable).
    #[arg(long, value_name = "METRIC")]
    pub minimize: Vec<String>,
    /// Metrics for which higher is better (repeatable; overrides the
    /// guess from the name).
    #[arg(long, value_name = "METRIC")]
    pub maximize: Vec<String>,
}

const TAG_HELP: &str = "\
Examples:
  mlmeta tag run-7 sweep=lr stage=dev
  mlmeta tag --datablob mnist-v1 source=kaggle

Keys follow the name rules; keys starting with `mlmeta.` are reserved for
the server. All tags of one call are set together or not at all. Prints
the record's tags afterwards.";

const DESCRIBE_HELP: &str = "\
Examples:
  mlmeta describe run-7 'Diverged after epoch 40: lr too high.'
  mlmeta describe --template cnn-small --file NOTES.md

At most 64 KiB. An empty text clears the description.";

/// Which record a tag or description command is about: a model unless
/// `--datablob` or `--template` says otherwise.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct RecordKindArgs {
    /// NAME is a datablob.
    #[arg(long)]
    pub datablob: bool,
    /// NAME is a model template.
    #[arg(long)]
    pub template: bool,
}

impl RecordKindArgs {
    /// The kind chosen.
    pub fn kind(&self) -> RecordKind {
        match (self.datablob, self.template) {
            (true, _) => RecordKind::DataBlob,
            (_, true) => RecordKind::ModelTemplate,
            _ => RecordKind::Model,
        }
    }
}

/// Arguments of `tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The model (or datablob or template) to tag.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Tags to set, each KEY=VALUE (the value may be empty or hold `=`).
    #[arg(value_name = "KEY=VALUE", required = true, value_parser = tag_pair)]
    pub tags: Vec<(String, String)>,
    /// What NAME is.
    #[command(flatten)]
    pub kind: RecordKindArgs,
}

/// Arguments of `untag`.
#[derive(Debug, Args)]
pub struct UntagArgs {
    /// The model (or datablob or template) to untag.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Keys to remove (absent keys are fine).
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// What NAME is.
    #[command(flatten)]
    pub kind: RecordKindArgs,
}

/// Arguments of `describe`.
#[derive(Debug, Args)]
#[group(id = "description_source", required = true, multiple = false, args = ["text", "file"])]
pub struct DescribeArgs {
    /// The model (or datablob or template) to describe.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The description.
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
    /// Read the description from this file (`-`: standard input).
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,
    /// What NAME is.
    #[command(flatten)]
    pub kind: RecordKindArgs,
}

const RUN_HELP: &str = "\
Examples:
  mlmeta run start cnn-small-mnist-1 --heartbeat-timeout-secs 1800
  mlmeta run heartbeat cnn-small-mnist-1
  mlmeta run end cnn-small-mnist-1 --status finished

A started run that sends neither heartbeats nor epochs for longer than its
heartbeat timeout (the server's --heartbeat-timeout-secs unless given at
start) is marked crashed; a heartbeat, start or epoch makes it running
again. Exits with status 2 when the model does not exist or the run cannot
make that transition (an ended run cannot start again or end otherwise).";

/// `run` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Mark the model's run as running (recording this host, process, user,
    /// command line and git commit).
    #[command(after_help = "Example:\n  mlmeta run start cnn-small-mnist-1 --heartbeat-timeout-secs 1800")]
    Start {
        /// The model.
        #[arg(value_name = "MODEL")]
        model: String,
        /// This run's heartbeat timeout, in seconds (1 to 2592000).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2_592_000))]
        heartbeat_timeout_secs: Option<u32>,
    },
    /// Tell the server the run is alive.
    #[command(after_help = "Example:\n  mlmeta run heartbeat cnn-small-mnist-1")]
    Heartbeat {
        /// The model.
        #[arg(value_name = "MODEL")]
        model: String,
    },
    /// End the run.
    #[command(after_help = "Example:\n  mlmeta run end cnn-small-mnist-1 --status finished")]
    End {
        /// The model.
        #[arg(value_name = "MODEL")]
        model: String,
        /// How it ended.
        #[arg(long, value_enum)]
        status: EndStatusArg,
    },
}

/// `--status` of `run end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EndStatusArg {
    /// It completed.
    Finished,
    /// It failed.
    Failed,
    /// It was stopped from outside.
    Killed,
}

impl From<EndStatusArg> for RunStatus {
    fn from(status: EndStatusArg) -> Self {
        match status {
            EndStatusArg::Finished => Self::Finished,
            EndStatusArg::Failed => Self::Failed,
            EndStatusArg::Killed => Self::Killed,
        }
    }
}

/// `--status` of the model filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Put, never started.
    Created,
    /// Started and alive.
    Running,
    /// Ended as a success.
    Finished,
    /// Ended as a failure.
    Failed,
    /// Stopped from outside.
    Killed,
    /// Went silent past its heartbeat timeout.
    Crashed,
}

impl From<StatusArg> for RunStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Created => Self::Created,
            StatusArg::Running => Self::Running,
            StatusArg::Finished => Self::Finished,
            StatusArg::Failed => Self::Failed,
            StatusArg::Killed => Self::Killed,
            StatusArg::Crashed => Self::Crashed,
        }
    }
}

/// A metric, its direction and the models to rank.
#[derive(Debug, Args)]
pub struct RankArgs {
    /// Metric to rank by.
    #[arg(long, value_name = "NAME")]
    pub metric: String,
    /// Which way the metric improves.
    #[command(flatten)]
    pub direction: DirectionArgs,
    /// Which models take part.
    #[command(flatten)]
    pub filter: ModelFilterArgs,
    /// Summary columns to add, comma-separated.
    #[command(flatten)]
    pub columns: ColumnsArg,
}

/// `--columns`: summaries per model, as extra output columns.
#[derive(Debug, Args)]
pub struct ColumnsArg {
    /// Summary columns, comma-separated: max(m), min(m), last(m),
    /// count(m), epochs, current_epoch (e.g. 'last(loss),max(val_accuracy),epochs').
    #[arg(long = "columns", value_name = "LIST")]
    pub text: Option<String>,
}

impl ColumnsArg {
    /// The columns, as the server takes them (empty without `--columns`).
    pub fn names(&self) -> Vec<String> {
        self.text
            .as_deref()
            .map(mlmeta_proto::where_lang::split_columns)
            .unwrap_or_default()
    }
}

/// Arguments of `best`.
#[derive(Debug, Args)]
pub struct BestArgs {
    /// The metric, direction and filters.
    #[command(flatten)]
    pub rank: RankArgs,
    /// How many models to print, best first (1 to 1000).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub top: u32,
}

/// Exactly one of `--max` and `--min`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DirectionArgs {
    /// Higher is better (accuracy).
    #[arg(long)]
    pub max: bool,
    /// Lower is better (loss).
    #[arg(long)]
    pub min: bool,
}

impl DirectionArgs {
    /// The direction chosen (clap makes sure exactly one flag is set).
    pub fn direction(&self) -> Direction {
        if self.max { Direction::Max } else { Direction::Min }
    }
}

/// Filters over models: the lists combine with AND; repeating a flag
/// matches any of its values.
#[derive(Debug, Args)]
pub struct ModelFilterArgs {
    /// Only models trained on this datablob (repeatable).
    #[arg(long = "datablob", value_name = "NAME")]
    pub datablobs: Vec<String>,
    /// Only models trained on a datablob of this group (repeatable).
    #[arg(long = "datablob-group", value_name = "G")]
    pub datablob_groups: Vec<String>,
    /// Only models of this template (repeatable).
    #[arg(long = "template", value_name = "NAME")]
    pub templates: Vec<String>,
    /// Only models of a template of this group (repeatable).
    #[arg(long = "template-group", value_name = "G")]
    pub template_groups: Vec<String>,
    /// Only models with this tag and value (repeatable: all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = tag_pair)]
    pub tags: Vec<(String, String)>,
    /// Only models whose run has this status (repeatable).
    #[arg(long = "status", value_name = "S", value_enum)]
    pub statuses: Vec<StatusArg>,
    /// Only models matching this filter expression (ANDed with the other
    /// filters), e.g. "params.lr < 0.01 and max(val_accuracy) > 0.9"; see
    /// the README's section on the filter language.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_expr: Option<String>,
    /// Only deleted models (not yet purged).
    #[arg(long, conflicts_with = "include_deleted")]
    pub deleted: bool,
    /// Deleted models as well as live ones.
    #[arg(long)]
    pub include_deleted: bool,
}

impl ModelFilterArgs {
    /// The filter to send.
    pub fn to_filter(&self) -> ModelFilter {
        let filter = ModelFilter::default()
            .datablob_names(self.datablobs.iter().cloned())
            .datablob_group_names(self.datablob_groups.iter().cloned())
            .model_template_names(self.templates.iter().cloned())
            .model_template_group_names(self.template_groups.iter().cloned())
            .tags(self.tags.iter().cloned())
            .statuses(self.statuses.iter().map(|&s| RunStatus::from(s)))
            .deletion(match (self.deleted, self.include_deleted) {
                (true, _) => Deletion::DeletedOnly,
                (_, true) => Deletion::All,
                _ => Deletion::LiveOnly,
            });
        match &self.where_expr {
            Some(expr) => filter.where_expr(expr.clone()),
            None => filter,
        }
    }

    /// Whether any filter is given.
    pub fn is_empty(&self) -> bool {
        self.to_filter() == ModelFilter::default()
    }
}

/// `list` subcommands.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Projects the token may use, by name.
    #[command(after_help = "Example:\n  mlmeta list projects --format json")]
    Projects,
    /// Datablobs (datasets), by name.
    #[command(after_help = "Example:\n  mlmeta list datablobs --datablob-group mnist --format json")]
    Datablobs {
        /// Only this datablob (repeatable).
        #[arg(long = "datablob", value_name = "NAME")]
        names: Vec<String>,
        /// Only datablobs of this group (repeatable).
        #[arg(long = "datablob-group", value_name = "G")]
        groups: Vec<String>,
    },
    /// Model templates (architectures), by name.
    #[command(after_help = "Example:\n  mlmeta list templates --template-group cnn")]
    Templates {
        /// Only this template (repeatable).
        #[arg(long = "template", value_name = "NAME")]
        names: Vec<String>,
        /// Only templates of this group (repeatable).
        #[arg(long = "template-group", value_name = "G")]
        groups: Vec<String>,
    },
    /// Models, by name.
    #[command(
        after_help = "Examples:\n  mlmeta list models --datablob-group mnist --template cnn-small\n  mlmeta list models --sort 'max(val_accuracy) desc' --columns 'max(val_accuracy),last(loss),epochs'"
    )]
    Models {
        /// Only this model (repeatable).
        #[arg(long = "model", value_name = "NAME")]
        names: Vec<String>,
        /// The datablob and template filters.
        #[command(flatten)]
        filter: ModelFilterArgs,
        /// Order by a field and `asc` (default) or `desc`: name, class,
        /// status, created_at, started_at, ended_at, last_heartbeat_at,
        /// epochs, current_epoch, max(m), min(m), last(m), count(m). Ties by
        /// name; models lacking the value (or with a NaN last value) last.
        #[arg(long, value_name = "FIELD [asc|desc]")]
        sort: Option<String>,
        /// Summary columns to add, comma-separated.
        #[command(flatten)]
        columns: ColumnsArg,
    },
    /// Epochs with one column per metric, by model then epoch number.
    #[command(
        after_help = "Example:\n  mlmeta list epochs --model cnn-small-mnist-1 --from 10 --to 20 --format csv"
    )]
    Epochs(EpochArgs),
}

/// Filters of `list epochs`.
#[derive(Debug, Args)]
pub struct EpochArgs {
    /// Only epochs of this model (repeatable); all models when absent.
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
    /// Only epochs numbered N or more.
    #[arg(long, value_name = "N")]
    pub from: Option<i64>,
    /// Only epochs numbered N or less.
    #[arg(long, value_name = "N")]
    pub to: Option<i64>,
}

impl EpochArgs {
    /// The filter to send.
    pub fn to_filter(&self) -> EpochFilter {
        EpochFilter {
            model_names: self.models.clone(),
            min_epoch_num: self.from,
            max_epoch_num: self.to,
        }
    }
}

const HISTORY_HELP: &str = "\
Example:
  mlmeta history run-1 run-2 --metric loss --metric val_loss --from 10 --to 50 --format csv

Epochs without any of the metrics are left out; a metric an epoch lacks is
an empty cell (null in JSON). NaN and infinities print as in `list epochs`.";

/// Arguments of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The models (at least one).
    #[arg(value_name = "MODEL", required = true)]
    pub models: Vec<String>,
    /// A metric to show (repeatable, at least one).
    #[arg(long = "metric", value_name = "NAME", required = true)]
    pub metrics: Vec<String>,
    /// Only epochs numbered N or more.
    #[arg(long, value_name = "N")]
    pub from: Option<i64>,
    /// Only epochs numbered N or less.
    #[arg(long, value_name = "N")]
    pub to: Option<i64>,
    /// Draw the curves as a line chart in the terminal (Unicode braille,
    /// sized to the terminal, one colored series per model and metric,
    /// NaN as gaps) instead of the table; `--format json|csv` still print
    /// the data.
    #[arg(long)]
    pub plot: bool,
}

/// Arguments of `current-epoch`.
#[derive(Debug, Args)]
pub struct CurrentEpochArgs {
    /// The model.
    #[arg(value_name = "MODEL")]
    pub model: String,
}

/// `add` subcommands.
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// Store a datablob (a dataset).
    #[command(
        after_help = "Example:\n  mlmeta add datablob mnist-v1 --group mnist --hyperparams '{\"batch_size\": 128, \"augment\": {\"flip\": true}}'"
    )]
    Datablob(AddGroupedArgs),
    /// Store a model template (an architecture).
    #[command(
        after_help = "Example:\n  mlmeta add template cnn-small --group cnn --hyperparams '{\"layers\": 4}'"
    )]
    Template(AddGroupedArgs),
    /// Store a model: one template trained on one datablob (both must exist).
    #[command(
        after_help = "Example:\n  mlmeta add model cnn-small-mnist-1 --class KerasModel --datablob mnist-v1 --template cnn-small\n\nExits with status 2 when the datablob or the template does not exist."
    )]
    Model(AddModelArgs),
    /// Import epochs from a CSV, JSON Lines or JSON file (what `list epochs` prints, too).
    #[command(after_help = ADD_EPOCHS_HELP)]
    Epochs(AddEpochsArgs),
}

/// Arguments of `add datablob` and `add template`.
#[derive(Debug, Args)]
pub struct AddGroupedArgs {
    /// Unique name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Group name.
    #[arg(long, value_name = "G")]
    pub group: String,
    /// Hyperparameters, a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = json_object)]
    pub hyperparams: Value,
    /// Succeed when a different record already has the name, leaving it as
    /// it is (otherwise that is an error).
    #[arg(long)]
    pub ignore_existing: bool,
}

/// Arguments of `add model`.
#[derive(Debug, Args)]
pub struct AddModelArgs {
    /// Unique name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Class of the model (free text).
    #[arg(long, value_name = "C")]
    pub class: String,
    /// Name of the datablob it is trained on.
    #[arg(long, value_name = "D")]
    pub datablob: String,
    /// Name of its model template.
    #[arg(long, value_name = "T")]
    pub template: String,
    /// The run's own parameters (a sweep's seed, learning rate), a JSON
    /// object; immutable like the rest of the record.
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = json_object)]
    pub params: Value,
    /// A tag to set once the model is stored (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = tag_pair)]
    pub tags: Vec<(String, String)>,
    /// A description to set once the model is stored.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Succeed when a different model already has the name, leaving it as
    /// it is (otherwise that is an error).
    #[arg(long)]
    pub ignore_existing: bool,
}

/// Arguments of `add epochs`.
#[derive(Debug, Args)]
pub struct AddEpochsArgs {
    /// The model the epochs belong to (it must exist); may be left out
    /// when the file names each epoch's model.
    #[arg(value_name = "MODEL")]
    pub model: Option<String>,
    /// CSV, JSON Lines or JSON file; `-` reads standard input.
    #[arg(long, value_name = "PATH")]
    pub file: PathBuf,
}

/// Parses `KEY=VALUE` (split at the first `=`; the key must not be empty).
fn tag_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, like 'stage=dev', got {text:?}")),
    }
}

/// Parses `--hyperparams`: a JSON object.
fn json_object(text: &str) -> Result<Value, String> {
    match mlmeta_proto::json::parse(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("expected a JSON object, like '{\"lr\": 0.01}'".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn hyperparams_must_be_an_object() {
        assert!(json_object(r#"{"a": {"b": 1}}"#).is_ok());
        assert!(json_object("[1]").unwrap_err().contains("object"));
        assert!(json_object("{").unwrap_err().contains("JSON"));
        assert!(
            json_object(r#"{"lr": 1, "lr": 2}"#)
                .unwrap_err()
                .contains("\"lr\" appears twice")
        );
        assert!(
            json_object(r#"{"lr": NaN}"#)
                .unwrap_err()
                .contains("JSON has no NaN")
        );
    }

    #[test]
    fn tags_are_key_equals_value() {
        assert_eq!(tag_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(tag_pair("a="), Ok(("a".into(), String::new())));
        assert!(tag_pair("=b").unwrap_err().contains("KEY=VALUE"));
        assert!(tag_pair("ab").unwrap_err().contains("KEY=VALUE"));
    }

    #[test]
    fn describe_takes_text_or_file() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["mlmeta", "describe", "m"]).is_err());
        assert!(parse(&["mlmeta", "describe", "m", "x", "--file", "f"]).is_err());
        assert!(parse(&["mlmeta", "describe", "m", "x"]).is_ok());
        assert!(parse(&["mlmeta", "describe", "--template", "t", "--file", "f"]).is_ok());
        assert!(parse(&["mlmeta", "tag", "--datablob", "--template", "d", "k=v"]).is_err());
    }

    #[test]
    fn exactly_one_direction() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["mlmeta", "best", "--metric", "x"]).is_err());
        assert!(parse(&["mlmeta", "best", "--metric", "x", "--max", "--min"]).is_err());
        let cli = parse(&["mlmeta", "best", "--metric", "x", "--min"]).unwrap();
        match cli.command {
            Command::Best(best) => assert_eq!(best.rank.direction.direction(), Direction::Min),
            other => panic!("{other:?}"),
        }
    }
}
