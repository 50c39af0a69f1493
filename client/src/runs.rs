//! Run lifecycle: start, heartbeat and end a model's run, and read a model
//! with its status history.
//!
//! ```no_run
//! use mlmeta_client::{Client, RunStatus};
//!
//! # async fn example() -> mlmeta_client::Result<()> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let model = client.start_run("cnn-run-7", Some(1_800)).await?;
//! assert_eq!(model.run.as_ref().map(|r| r.status), Some(RunStatus::Running));
//! // ... epochs count as heartbeats; a long silent phase can send one:
//! client.heartbeat("cnn-run-7").await?;
//! client.end_run("cnn-run-7", RunStatus::Finished).await?;
//! let detail = client.get_model("cnn-run-7").await?;
//! assert_eq!(detail.status_changes.len(), 2);
//! # Ok(())
//! # }
//! ```

use std::time::{Duration, SystemTime};

use mlmeta_proto as pb;

use crate::client::Client;
use crate::convert;
use crate::error::{Error, Result};
use crate::types::Model;

/// Where a model's run is in its life (the type shared with the server,
/// see `mlmeta_proto::filter`).
pub use mlmeta_proto::filter::RunStatus;

/// The status of the answer's field `field`.
fn status_from_pb(field: &str, value: i32) -> Result<RunStatus> {
    RunStatus::from_pb(value)
        .ok_or_else(|| Error::InvalidResponse(format!("{field}: unknown run status {value}")))
}

/// What a run was started from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunContext {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// User name.
    pub user: String,
    /// Program and arguments.
    pub command_line: Vec<String>,
    /// `git rev-parse HEAD` of the working directory; empty outside a repo.
    pub git_commit: String,
}

impl RunContext {
    /// The context of this process: host name (`/etc/hostname`, else
    /// `HOSTNAME`), pid, `USER`, `std::env::args`, and the git commit of
    /// the working directory when inside a repository. Anything that cannot
    /// be found is left empty: it never fails.
    pub fn current() -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        Self {
            host: clip(host),
            pid: std::process::id(),
            user: clip(std::env::var("USER").unwrap_or_default()),
            command_line: std::env::args().take(MAX_ARGS).map(clip).collect(),
            git_commit: git_commit(),
        }
    }

    fn to_pb(&self) -> pb::RunContext {
        pb::RunContext {
            host: self.host.clone(),
            pid: self.pid,
            user: self.user.clone(),
            command_line: self.command_line.clone(),
            git_commit: self.git_commit.clone(),
        }
    }
}

/// The server's limits on a run context (longer values would make the
/// start fail, which it must not for want of a context).
const MAX_ARGS: usize = 256;
const MAX_CONTEXT_BYTES: usize = 4_096;

fn clip(mut value: String) -> String {
    if value.len() > MAX_CONTEXT_BYTES {
        let mut end = MAX_CONTEXT_BYTES;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

/// `git rev-parse HEAD`, or empty (no git, not a repository, or slower
/// than a second: a start must not hang on it).
fn git_commit() -> String {
    let child = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return String::new();
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return String::new();
            }
        }
    }
    child
        .wait_with_output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| clip(text.trim().to_owned()))
        .unwrap_or_default()
}

/// A model's run: its status with its times (the server's database clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The status.
    pub status: RunStatus,
    /// When the run was first started.
    pub started_at: Option<SystemTime>,
    /// When it ended.
    pub ended_at: Option<SystemTime>,
    /// Its last heartbeat (a heartbeat, a start or an epoch).
    pub last_heartbeat_at: Option<SystemTime>,
    /// Its own heartbeat timeout; `None`: the server's default.
    pub heartbeat_timeout_secs: Option<u32>,
    /// What it was started from; `None` before it started.
    pub run_context: Option<RunContext>,
}

/// One transition of a model's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// When (the server's database clock).
    pub changed_at: Option<SystemTime>,
    /// The status before.
    pub from: RunStatus,
    /// The status after.
    pub to: RunStatus,
    /// Why: `start`, `start after crash`, `heartbeat after crash`, `end`,
    /// `heartbeat timeout`, `epoch after crash`.
    pub cause: String,
}

/// A model with its status history, oldest change first, and a summary of
/// each of its metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDetail {
    /// The model.
    pub model: Model,
    /// Its status changes, oldest first.
    pub status_changes: Vec<StatusChange>,
    /// Its artifact references, by name (empty from a server without
    /// artifacts).
    pub artifacts: Vec<crate::artifacts::Artifact>,
    /// One summary per metric its epochs carry, by metric name (empty from
    /// a server that does not send them).
    pub metrics: Vec<MetricSummary>,
}

/// What one model's epochs say about one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSummary {
    /// The metric.
    pub metric_name: String,
    /// Epochs carrying it, NaN included.
    pub count: u64,
    /// Of those, epochs where it is NaN.
    pub nan_count: u64,
    /// The lowest non-NaN value with the lowest epoch reaching it:
    /// `(epoch_num, value)`; `None` when every value is NaN.
    pub min: Option<(i64, f64)>,
    /// The highest non-NaN value, like `min` (what `best --max` ranks by).
    pub max: Option<(i64, f64)>,
    /// `(epoch_num, value)` at the highest epoch carrying it; the value may
    /// be NaN.
    pub last: (i64, f64),
}

impl MetricSummary {
    fn from_pb(summary: pb::MetricSummary) -> Self {
        let pair = |epoch: Option<i64>, value: Option<f64>| epoch.zip(value);
        Self {
            min: pair(summary.min_epoch_num, summary.min_value),
            max: pair(summary.max_epoch_num, summary.max_value),
            last: (summary.last_epoch_num, summary.last_value),
            count: summary.count,
            nan_count: summary.nan_count,
            metric_name: summary.metric_name,
        }
    }
}

/// The run of `model`; `None` from a server without run lifecycle (its
/// models carry no status).
pub(crate) fn run_info(model: &pb::Model) -> Result<Option<RunInfo>> {
    if model.status == i32::from(pb::RunStatus::Unspecified) {
        return Ok(None);
    }
    Ok(Some(RunInfo {
        status: status_from_pb("model.status", model.status)?,
        started_at: convert::time("model.started_at", model.started_at)?,
        ended_at: convert::time("model.ended_at", model.ended_at)?,
        last_heartbeat_at: convert::time("model.last_heartbeat_at", model.last_heartbeat_at)?,
        heartbeat_timeout_secs: model.heartbeat_timeout_secs,
        run_context: model.run_context.clone().map(|c| RunContext {
            host: c.host,
            pid: c.pid,
            user: c.user,
            command_line: c.command_line,
            git_commit: c.git_commit,
        }),
    }))
}

impl Client {
    /// Starts `model_name`'s run (RUNNING), with the context of this
    /// process ([`RunContext::current`]) and, optionally, its own heartbeat
    /// timeout in seconds (a run whose epochs take longer than the server's
    /// default needs one). Starting a running run again only counts as a
    /// heartbeat; a crashed one runs again; an ended one is
    /// [`Error::FailedPrecondition`].
    pub async fn start_run(&self, model_name: &str, heartbeat_timeout_secs: Option<u32>) -> Result<Model> {
        self.start_run_with_context(model_name, heartbeat_timeout_secs, &RunContext::current())
            .await
    }

    /// [`Client::start_run`] with a context of the caller's choosing.
    pub async fn start_run_with_context(
        &self,
        model_name: &str,
        heartbeat_timeout_secs: Option<u32>,
        context: &RunContext,
    ) -> Result<Model> {
        let request = pb::StartRunRequest {
            model_name: model_name.to_owned(),
            heartbeat_timeout_secs,
            run_context: Some(context.to_pb()),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.start_run(r).await })
            .await?;
        convert::model(response.model)
    }

    /// A heartbeat of `model_name`'s run (epochs count as heartbeats too).
    /// A crashed run runs again; one never started or ended is
    /// [`Error::FailedPrecondition`].
    pub async fn heartbeat(&self, model_name: &str) -> Result<Model> {
        let request = pb::HeartbeatRequest {
            model_name: model_name.to_owned(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.heartbeat(r).await })
            .await?;
        convert::model(response.model)
    }

    /// Ends `model_name`'s run with `status` (finished, failed or killed;
    /// another status is [`Error::InvalidArgument`] from the server).
    /// Ending it again with the same status changes nothing; with another
    /// one it is [`Error::FailedPrecondition`].
    pub async fn end_run(&self, model_name: &str, status: RunStatus) -> Result<Model> {
        let request = pb::EndRunRequest {
            model_name: model_name.to_owned(),
            status: status.to_pb().into(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.end_run(r).await })
            .await?;
        convert::model(response.model)
    }

    /// The model `model_name` with its status history and artifacts.
    pub async fn get_model(&self, model_name: &str) -> Result<ModelDetail> {
        let request = pb::GetModelRequest {
            model_name: model_name.to_owned(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.get_model(r).await })
            .await?;
        let status_changes = response
            .status_changes
            .into_iter()
            .enumerate()
            .map(|(i, change)| {
                Ok(StatusChange {
                    changed_at: convert::time(&format!("status_changes[{i}].changed_at"), change.changed_at)?,
                    from: status_from_pb(&format!("status_changes[{i}].from"), change.from)?,
                    to: status_from_pb(&format!("status_changes[{i}].to"), change.to)?,
                    cause: change.cause,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ModelDetail {
            model: convert::model(response.model)?,
            status_changes,
            artifacts: crate::artifacts::all_from_pb("artifacts", response.artifacts)?,
            metrics: response.metrics.into_iter().map(MetricSummary::from_pb).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_any_case() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            assert_eq!(RunStatus::parse(&status.as_str().to_uppercase()), Some(status));
        }
        assert_eq!(RunStatus::parse("done"), None);
    }

    #[test]
    fn current_context_is_this_process() {
        let context = RunContext::current();
        assert_eq!(context.pid, std::process::id());
        assert!(!context.command_line.is_empty());
        assert!(context.command_line.len() <= MAX_ARGS);
    }

    #[test]
    fn clip_keeps_char_boundaries() {
        let long = "é".repeat(3_000);
        let clipped = clip(long);
        assert!(clipped.len() <= MAX_CONTEXT_BYTES);
        assert!(clipped.chars().all(|c| c == 'é'));
    }
}
