"""The records mlmeta returns, as frozen dataclasses (converted from protobuf)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union, cast

from google.protobuf.timestamp_pb2 import Timestamp

from .v1 import mlmeta_pb2 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class RunStatus(str, enum.Enum):
    """Where a model's run is in its life; compares equal to its name."""

    UNSPECIFIED = "UNSPECIFIED"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CRASHED = "CRASHED"

    def __str__(self) -> str:
        return self.value

    def to_pb(self) -> "pb.RunStatus":
        return cast("pb.RunStatus", pb.RunStatus.Value(f"RUN_STATUS_{self.value}"))

    @classmethod
    def from_pb(cls, value: int) -> "RunStatus":
        name = pb.RunStatus.Name(value)
        return cls(name[len("RUN_STATUS_") :])


def _time(msg: Any, name: str) -> Optional[datetime]:
    if not msg.HasField(name):
        return None
    ts: Timestamp = getattr(msg, name)
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def _json(text: str) -> Dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class DataBlob:
    """A dataset with its hyperparameters."""

    name: str
    group: str
    hyperparams: Dict[str, Any]
    project: str = "default"
    tags: Dict[str, str] = field(default_factory=dict)
    description: str = ""
    created_at: Optional[datetime] = None
    last_modified_at: Optional[datetime] = None
    deleted_at: Optional[datetime] = None

    @classmethod
    def from_pb(cls, m: pb.DataBlob) -> "DataBlob":
        return cls(
            name=m.name,
            group=m.group_name,
            hyperparams=_json(m.hyperparams_json),
            project=m.project,
            tags=dict(m.tags),
            description=m.description,
            created_at=_time(m, "created_at"),
            last_modified_at=_time(m, "last_modified_at"),
            deleted_at=_time(m, "deleted_at"),
        )


@dataclass(frozen=True)
class ModelTemplate:
    """A model architecture with its hyperparameters."""

    name: str
    group: str
    hyperparams: Dict[str, Any]
    project: str = "default"
    tags: Dict[str, str] = field(default_factory=dict)
    description: str = ""
    created_at: Optional[datetime] = None
    last_modified_at: Optional[datetime] = None
    deleted_at: Optional[datetime] = None

    @classmethod
    def from_pb(cls, m: pb.ModelTemplate) -> "ModelTemplate":
        return cls(
            name=m.name,
            group=m.group_name,
            hyperparams=_json(m.hyperparams_json),
            project=m.project,
            tags=dict(m.tags),
            description=m.description,
            created_at=_time(m, "created_at"),
            last_modified_at=_time(m, "last_modified_at"),
            deleted_at=_time(m, "deleted_at"),
        )


@dataclass(frozen=True)
class RunContext:
    """What a run was started from."""

    host: str = ""
    pid: int = 0
    user: str = ""
    command_line: List[str] = field(default_factory=list)
    git_commit: str = ""

    @classmethod
    def current(cls) -> "RunContext":
        """This process: host name, pid, user, command line and the git commit
        of the working directory (empty outside a repository, or when git is
        missing or slower than a second). Never fails."""
        from ._context import current_context

        return current_context()

    def to_pb(self) -> pb.RunContext:
        return pb.RunContext(
            host=self.host,
            pid=self.pid,
            user=self.user,
            command_line=self.command_line,
            git_commit=self.git_commit,
        )

    @classmethod
    def from_pb(cls, m: pb.RunContext) -> "RunContext":
        return cls(
            host=m.host,
            pid=m.pid,
            user=m.user,
            command_line=list(m.command_line),
            git_commit=m.git_commit,
        )


@dataclass(frozen=True)
class Model:
    """One template trained on one datablob, with its run's status."""

    name: str
    model_class: str
    datablob: str
    template: str
    params: Dict[str, Any]
    project: str = "default"
    tags: Dict[str, str] = field(default_factory=dict)
    description: str = ""
    status: RunStatus = RunStatus.CREATED
    epoch_count: int = 0
    #: The highest epoch number stored; None without epochs.
    current_epoch: Optional[int] = None
    heartbeat_timeout_secs: Optional[int] = None
    run_context: Optional[RunContext] = None
    created_at: Optional[datetime] = None
    last_modified_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    last_heartbeat_at: Optional[datetime] = None
    deleted_at: Optional[datetime] = None
    #: The summaries asked for with `columns=` (`"max(val_accuracy)"`,
    #: `"last(loss)"`, `"epochs"`, ...) by their text: an int (count,
    #: epochs, current_epoch), a float (max, min, last; last may be NaN),
    #: None when the model lacks it.
    columns: Dict[str, Union[int, float, None]] = field(default_factory=dict)

    @classmethod
    def from_pb(cls, m: pb.Model, columns: Sequence[str] = ()) -> "Model":
        return cls(
            columns={name: _column_value(v) for name, v in zip(columns, m.columns)},
            name=m.name,
            model_class=m.model_class_name,
            datablob=m.datablob_name,
            template=m.model_template_name,
            params=_json(m.params_json),
            project=m.project,
            tags=dict(m.tags),
            description=m.description,
            status=RunStatus.from_pb(m.status),
            epoch_count=m.epoch_count,
            current_epoch=m.current_epoch if m.HasField("current_epoch") else None,
            heartbeat_timeout_secs=(
                m.heartbeat_timeout_secs if m.HasField("heartbeat_timeout_secs") else None
            ),
            run_context=RunContext.from_pb(m.run_context) if m.HasField("run_context") else None,
            created_at=_time(m, "created_at"),
            last_modified_at=_time(m, "last_modified_at"),
            started_at=_time(m, "started_at"),
            ended_at=_time(m, "ended_at"),
            last_heartbeat_at=_time(m, "last_heartbeat_at"),
            deleted_at=_time(m, "deleted_at"),
        )


def _column_value(v: pb.ColumnValue) -> Union[int, float, None]:
    kind = v.WhichOneof("value")
    if kind == "integer":
        return int(v.integer)
    if kind == "number":
        return float(v.number)
    return None


@dataclass(frozen=True)
class Epoch:
    """One epoch of a model's training. NaN and ±inf come back as stored."""

    model: str
    epoch: int
    metrics: Dict[str, float]
    steps_per_epoch: Optional[int] = None
    validation_steps_per_epoch: Optional[int] = None
    recorded_at: Optional[datetime] = None

    @classmethod
    def from_pb(cls, m: pb.Epoch) -> "Epoch":
        return cls(
            model=m.model_name,
            epoch=m.epoch_num,
            metrics=dict(m.metrics),
            steps_per_epoch=m.steps_per_epoch if m.HasField("steps_per_epoch") else None,
            validation_steps_per_epoch=(
                m.validation_steps_per_epoch if m.HasField("validation_steps_per_epoch") else None
            ),
            recorded_at=_time(m, "recorded_at"),
        )


_MODEL_CHANGES = {
    pb.MODEL_CHANGE_CREATED: "created",
    pb.MODEL_CHANGE_STATUS: "status",
    pb.MODEL_CHANGE_TAGS: "tags",
    pb.MODEL_CHANGE_DELETED: "deleted",
    pb.MODEL_CHANGE_RESTORED: "restored",
    pb.MODEL_CHANGE_PURGED: "purged",
}


@dataclass(frozen=True)
class ModelEvent:
    """A change of a watched model (`Client.watch_models`): its state after
    the change (None once purged) and the kinds of change since its previous
    event, among ``created``, ``status``, ``tags``, ``deleted``,
    ``restored`` and ``purged``."""

    model_name: str
    model: Optional[Model]
    changes: Tuple[str, ...]

    @classmethod
    def from_pb(cls, m: pb.ModelEvent) -> "ModelEvent":
        return cls(
            model_name=m.model_name,
            model=Model.from_pb(m.model) if m.HasField("model") else None,
            changes=tuple(_MODEL_CHANGES.get(c, "unknown") for c in m.changes),
        )


@dataclass(frozen=True)
class BestModel:
    """A model with its best epoch on one metric (`Client.best`)."""

    model: Model
    datablob: DataBlob
    template: ModelTemplate
    #: The best epoch's number.
    epoch: int
    #: The metric's value in that epoch.
    value: float
    #: All metrics of that epoch.
    metrics: Dict[str, float]

    @property
    def params(self) -> Dict[str, Any]:
        """The model's own parameters (`Model.params`)."""
        return self.model.params

    @classmethod
    def from_pb(cls, m: pb.BestModel, columns: Sequence[str] = ()) -> "BestModel":
        return cls(
            model=Model.from_pb(m.model, columns),
            datablob=DataBlob.from_pb(m.datablob),
            template=ModelTemplate.from_pb(m.model_template),
            epoch=m.best_epoch.epoch_num,
            value=m.metric_value,
            metrics=dict(m.best_epoch.metrics),
        )


@dataclass(frozen=True)
class LeaderboardRow:
    """One model's best value of a metric (`Client.leaderboard`)."""

    model: Model
    datablob: DataBlob
    template: ModelTemplate
    epoch: int
    value: float

    @property
    def params(self) -> Dict[str, Any]:
        return self.model.params

    @classmethod
    def from_pb(cls, m: pb.LeaderboardRow, columns: Sequence[str] = ()) -> "LeaderboardRow":
        return cls(
            model=Model.from_pb(m.model, columns),
            datablob=DataBlob.from_pb(m.datablob),
            template=ModelTemplate.from_pb(m.model_template),
            epoch=m.best_epoch_num,
            value=m.best_value,
        )


@dataclass(frozen=True)
class StatusChange:
    """One transition of a model's run status."""

    changed_at: Optional[datetime]
    old: RunStatus
    new: RunStatus
    cause: str

    @classmethod
    def from_pb(cls, m: pb.StatusChange) -> "StatusChange":
        return cls(
            changed_at=_time(m, "changed_at"),
            old=RunStatus.from_pb(getattr(m, "from")),
            new=RunStatus.from_pb(m.to),
            cause=m.cause,
        )


@dataclass(frozen=True)
class MetricSummary:
    """What one model's epochs say about one metric."""

    name: str
    count: int
    nan_count: int
    min_value: Optional[float]
    min_epoch: Optional[int]
    max_value: Optional[float]
    max_epoch: Optional[int]
    last_value: float
    last_epoch: int

    @classmethod
    def from_pb(cls, m: pb.MetricSummary) -> "MetricSummary":
        return cls(
            name=m.metric_name,
            count=m.count,
            nan_count=m.nan_count,
            min_value=m.min_value if m.HasField("min_value") else None,
            min_epoch=m.min_epoch_num if m.HasField("min_epoch_num") else None,
            max_value=m.max_value if m.HasField("max_value") else None,
            max_epoch=m.max_epoch_num if m.HasField("max_epoch_num") else None,
            last_value=m.last_value,
            last_epoch=m.last_epoch_num,
        )


@dataclass(frozen=True)
class Artifact:
    """A named reference from a model to a file stored elsewhere, or to
    content uploaded into the server (`content_stored`)."""

    name: str
    uri: str
    sha256: Optional[str] = None
    size_bytes: Optional[int] = None
    media_type: Optional[str] = None
    created_at: Optional[datetime] = None
    #: The server holds the bytes (`Client.upload_artifact`): fetch them
    #: with `Client.download_artifact`.
    content_stored: bool = False

    @classmethod
    def from_pb(cls, m: pb.Artifact) -> "Artifact":
        return cls(
            name=m.name,
            uri=m.uri,
            sha256=m.sha256 if m.HasField("sha256") else None,
            size_bytes=m.size_bytes if m.HasField("size_bytes") else None,
            media_type=m.media_type if m.HasField("media_type") else None,
            created_at=_time(m, "created_at"),
            content_stored=m.content_stored,
        )


@dataclass(frozen=True)
class ModelDetails:
    """`Client.get_model`: a model with its status history, metric summaries and artifacts."""

    model: Model
    status_changes: List[StatusChange]
    metrics: Dict[str, MetricSummary]
    artifacts: List[Artifact]

    @classmethod
    def from_pb(cls, m: pb.GetModelResponse) -> "ModelDetails":
        return cls(
            model=Model.from_pb(m.model),
            status_changes=[StatusChange.from_pb(c) for c in m.status_changes],
            metrics={s.metric_name: MetricSummary.from_pb(s) for s in m.metrics},
            artifacts=[Artifact.from_pb(a) for a in m.artifacts],
        )


@dataclass(frozen=True)
class Project:
    """A namespace of datablobs, templates and models."""

    name: str
    created_at: Optional[datetime] = None

    @classmethod
    def from_pb(cls, m: pb.Project) -> "Project":
        return cls(name=m.name, created_at=_time(m, "created_at"))


@dataclass(frozen=True)
class InsertResult:
    """`Client.insert_epochs`: epochs newly stored and epochs skipped (already stored)."""

    inserted: int
    skipped: int
