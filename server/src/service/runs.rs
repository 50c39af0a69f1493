//! Run lifecycle handlers (StartRun, Heartbeat, EndRun, GetModel) and their
//! conversions; `MetadataApi`'s trait impl delegates to these.

use mlmeta_proto as pb;
use tonic::{Request, Response};

use super::{MetadataApi, Reply, convert, project_of};
use crate::config::MAX_HEARTBEAT_TIMEOUT_SECS;
use crate::error::{Error, Result};
use crate::store::records::{
    MetricSummary, ModelDetail, RUN_CONTEXT_TAGS, RunStatus, StartRun, StatusChange, Tags,
};
use crate::validate::{self, MAX_TAG_VALUE_BYTES};

/// Longest string of a run context.
const MAX_CONTEXT_STRING_BYTES: usize = 4_096;

/// Most arguments of a run context's command line.
const MAX_COMMAND_LINE_ARGS: usize = 256;

pub(super) async fn start_run(
    api: &MetadataApi,
    request: Request<pb::StartRunRequest>,
) -> Reply<pb::StartRunResponse> {
    let project = project_of(&request, &request.get_ref().project)?;
    let start = new_start(request.into_inner())?;
    let detail = api
        .run_in(&project, move |store, project| store.start_run(project, &start))
        .await?;
    Ok(Response::new(pb::StartRunResponse {
        model: Some(convert::model(detail.model, project.name())),
    }))
}

pub(super) async fn heartbeat(
    api: &MetadataApi,
    request: Request<pb::HeartbeatRequest>,
) -> Reply<pb::HeartbeatResponse> {
    let project = project_of(&request, &request.get_ref().project)?;
    let model_name = request.into_inner().model_name;
    validate::name("model_name", &model_name)?;
    let detail = api
        .run_in(&project, move |store, project| {
            store.heartbeat(project, &model_name)
        })
        .await?;
    Ok(Response::new(pb::HeartbeatResponse {
        model: Some(convert::model(detail.model, project.name())),
    }))
}

pub(super) async fn end_run(
    api: &MetadataApi,
    request: Request<pb::EndRunRequest>,
) -> Reply<pb::EndRunResponse> {
    let project = project_of(&request, &request.get_ref().project)?;
    let request = request.into_inner();
    validate::name("model_name", &request.model_name)?;
    let status = end_status(request.status)?;
    let model_name = request.model_name;
    let detail = api
        .run_in(&project, move |store, project| {
            store.end_run(project, &model_name, status)
        })
        .await?;
    Ok(Response::new(pb::EndRunResponse {
        model: Some(convert::model(detail.model, project.name())),
    }))
}

pub(super) async fn get_model(
    api: &MetadataApi,
    request: Request<pb::GetModelRequest>,
) -> Reply<pb::GetModelResponse> {
    let project = project_of(&request, &request.get_ref().project)?;
    let model_name = request.into_inner().model_name;
    validate::name("model_name", &model_name)?;
    let detail = api
        .run_in(&project, move |store, project| {
            store.get_model(project, &model_name)
        })
        .await?;
    Ok(Response::new(model_detail(detail, project.name())))
}

fn model_detail(detail: ModelDetail, project: &str) -> pb::GetModelResponse {
    pb::GetModelResponse {
        model: Some(convert::model(detail.model, project)),
        status_changes: detail.status_changes.into_iter().map(status_change).collect(),
        artifacts: detail
            .artifacts
            .into_iter()
            .map(super::artifacts::artifact)
            .collect(),
        metrics: detail.metrics.into_iter().map(metric_summary).collect(),
    }
}

fn metric_summary(summary: MetricSummary) -> pb::MetricSummary {
    pb::MetricSummary {
        metric_name: summary.metric_name,
        count: summary.count,
        nan_count: summary.nan_count,
        min_value: summary.min.map(|(_, value)| value),
        min_epoch_num: summary.min.map(|(epoch_num, _)| epoch_num),
        max_value: summary.max.map(|(_, value)| value),
        max_epoch_num: summary.max.map(|(epoch_num, _)| epoch_num),
        last_value: summary.last.1,
        last_epoch_num: summary.last.0,
    }
}

pub(super) fn status_change(change: StatusChange) -> pb::StatusChange {
    pb::StatusChange {
        changed_at: convert::timestamp(change.changed_at),
        from: run_status(change.from).into(),
        to: run_status(change.to).into(),
        cause: change.cause,
    }
}

/// A validated StartRun request.
fn new_start(request: pb::StartRunRequest) -> Result<StartRun> {
    validate::name("model_name", &request.model_name)?;
    if let Some(secs) = request.heartbeat_timeout_secs
        && !(1..=MAX_HEARTBEAT_TIMEOUT_SECS).contains(&u64::from(secs))
    {
        return Err(Error::invalid(
            "heartbeat_timeout_secs",
            format!("must be between 1 and {MAX_HEARTBEAT_TIMEOUT_SECS} seconds, got {secs}"),
        ));
    }
    let context = request.run_context.unwrap_or_default();
    for (field, value) in [
        ("run_context.host", &context.host),
        ("run_context.user", &context.user),
        ("run_context.git_commit", &context.git_commit),
    ] {
        context_string(field, value)?;
    }
    if context.command_line.len() > MAX_COMMAND_LINE_ARGS {
        return Err(Error::invalid(
            "run_context.command_line",
            format!(
                "must hold at most {MAX_COMMAND_LINE_ARGS} arguments, got {}",
                context.command_line.len()
            ),
        ));
    }
    for (i, arg) in context.command_line.iter().enumerate() {
        context_string(&format!("run_context.command_line[{i}]"), arg)?;
    }
    let context_tags = context_tags(&context);
    let run_context = context_json(&context);
    Ok(StartRun {
        model_name: request.model_name,
        heartbeat_timeout_secs: request.heartbeat_timeout_secs.map(i64::from),
        run_context,
        context_tags,
    })
}

/// The run context as the JSON text the store keeps (keys sorted); an
/// import writes the same text back.
pub(super) fn context_json(context: &pb::RunContext) -> String {
    serde_json::json!({
        "command_line": context.command_line,
        "git_commit": context.git_commit,
        "host": context.host,
        "pid": context.pid,
        "user": context.user,
    })
    .to_string()
}

/// The run context as system tags (`mlmeta.host`, …), so that listings and
/// filters see where a run came from. Empty fields set no tag.
fn context_tags(context: &pb::RunContext) -> Tags {
    let command_line = shlex::try_join(context.command_line.iter().map(|arg| arg.as_str()))
        // Only a NUL byte makes quoting fail; the tag value drops it below.
        .unwrap_or_else(|_| context.command_line.join(" "));
    let pid = if context.pid == 0 {
        String::new()
    } else {
        context.pid.to_string()
    };
    [
        (RUN_CONTEXT_TAGS[0], context.host.as_str()),
        (RUN_CONTEXT_TAGS[1], pid.as_str()),
        (RUN_CONTEXT_TAGS[2], context.user.as_str()),
        (RUN_CONTEXT_TAGS[3], command_line.as_str()),
        (RUN_CONTEXT_TAGS[4], context.git_commit.as_str()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(key, value)| (key.to_owned(), tag_value(value)))
    .collect()
}

/// `value` as a tag value: without NUL (PostgreSQL text cannot hold it),
/// cut to [`MAX_TAG_VALUE_BYTES`] at a character boundary.
fn tag_value(value: &str) -> String {
    let mut value = value.replace('\0', "");
    if value.len() > MAX_TAG_VALUE_BYTES {
        let mut end = MAX_TAG_VALUE_BYTES - '…'.len_utf8();
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
        value.push('…');
    }
    value
}

fn context_string(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_CONTEXT_STRING_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "must be at most {MAX_CONTEXT_STRING_BYTES} bytes, got {}",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// The run context stored as JSON, back as a message (`None` when never
/// started; an unreadable one reads as empty rather than failing a listing).
pub(super) fn run_context(json: Option<&str>) -> Option<pb::RunContext> {
    let value: serde_json::Value = serde_json::from_str(json?).ok()?;
    let text = |key: &str| {
        value
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Some(pb::RunContext {
        host: text("host"),
        pid: value
            .get("pid")
            .and_then(serde_json::Value::as_u64)
            .and_then(|pid| u32::try_from(pid).ok())
            .unwrap_or(0),
        user: text("user"),
        command_line: value
            .get("command_line")
            .and_then(|v| v.as_array())
            .map(|args| {
                args.iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        git_commit: text("git_commit"),
    })
}

/// The status of an EndRun request: FINISHED, FAILED or KILLED.
fn end_status(value: i32) -> Result<RunStatus> {
    match pb::RunStatus::try_from(value) {
        Ok(pb::RunStatus::Finished) => Ok(RunStatus::Finished),
        Ok(pb::RunStatus::Failed) => Ok(RunStatus::Failed),
        Ok(pb::RunStatus::Killed) => Ok(RunStatus::Killed),
        _ => Err(Error::invalid(
            "status",
            format!(
                "a run ends RUN_STATUS_FINISHED (3), RUN_STATUS_FAILED (4) or RUN_STATUS_KILLED (5), got {}",
                status_label(value)
            ),
        )),
    }
}

fn status_label(value: i32) -> String {
    pb::RunStatus::try_from(value).map_or_else(
        |_| format!("unknown value {value}"),
        |s| s.as_str_name().to_owned(),
    )
}

/// The protobuf value of a status.
pub(super) fn run_status(status: RunStatus) -> pb::RunStatus {
    match status {
        RunStatus::Created => pb::RunStatus::Created,
        RunStatus::Running => pb::RunStatus::Running,
        RunStatus::Finished => pb::RunStatus::Finished,
        RunStatus::Failed => pb::RunStatus::Failed,
        RunStatus::Killed => pb::RunStatus::Killed,
        RunStatus::Crashed => pb::RunStatus::Crashed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_status_accepts_only_ends() {
        assert_eq!(end_status(3).unwrap(), RunStatus::Finished);
        assert_eq!(end_status(5).unwrap(), RunStatus::Killed);
        for bad in [0, 1, 2, 6, 99] {
            let message = end_status(bad).unwrap_err().to_string();
            assert!(message.starts_with("status: a run ends"), "{message}");
        }
        assert!(
            end_status(2)
                .unwrap_err()
                .to_string()
                .contains("RUN_STATUS_RUNNING")
        );
    }

    #[test]
    fn start_validates_timeout_and_context() {
        let start = |timeout, context| pb::StartRunRequest {
            model_name: "m".into(),
            heartbeat_timeout_secs: timeout,
            run_context: context,
            project: String::new(),
        };
        assert!(new_start(start(Some(1), None)).is_ok());
        let message = new_start(start(Some(0), None)).unwrap_err().to_string();
        assert!(
            message.starts_with("heartbeat_timeout_secs: must be between 1"),
            "{message}"
        );
        let long = pb::RunContext {
            host: "h".repeat(5_000),
            ..Default::default()
        };
        let message = new_start(start(None, Some(long))).unwrap_err().to_string();
        assert!(
            message.starts_with("run_context.host: must be at most 4096"),
            "{message}"
        );
    }

    #[test]
    fn run_context_round_trips() {
        let context = pb::RunContext {
            host: "gpu-1".into(),
            pid: 42,
            user: "ada".into(),
            command_line: vec!["train".into(), "--lr=0.1".into()],
            git_commit: "abc".into(),
        };
        let start = new_start(pb::StartRunRequest {
            model_name: "m".into(),
            heartbeat_timeout_secs: None,
            run_context: Some(context.clone()),
            project: String::new(),
        })
        .unwrap();
        assert_eq!(run_context(Some(&start.run_context)), Some(context));
        assert_eq!(run_context(None), None);
    }

    #[test]
    fn run_context_becomes_system_tags() {
        let context = pb::RunContext {
            host: "gpu-1".into(),
            pid: 42,
            user: String::new(),
            command_line: vec!["train.py".into(), "--name".into(), "my run".into()],
            git_commit: "abc".into(),
        };
        let tags = context_tags(&context);
        let expected: Tags = [
            ("mlmeta.host", "gpu-1"),
            ("mlmeta.pid", "42"),
            ("mlmeta.command_line", "train.py --name 'my run'"),
            ("mlmeta.git_commit", "abc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(tags, expected, "empty user and zero pid would set no tag");
        assert!(context_tags(&pb::RunContext::default()).is_empty());
    }

    #[test]
    fn tag_values_lose_nul_and_are_cut_at_a_character() {
        assert_eq!(tag_value("a\0b"), "ab");
        let long = "é".repeat(3_000);
        let cut = tag_value(&long);
        assert!(
            cut.len() <= MAX_TAG_VALUE_BYTES && cut.ends_with('…'),
            "{}",
            cut.len()
        );
    }
}
