from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DELETION_ALL: Deletion
DELETION_DELETED_ONLY: Deletion
DELETION_LIVE_ONLY: Deletion
DESCRIPTOR: _descriptor.FileDescriptor
METRIC_DIRECTION_MAX: MetricDirection
METRIC_DIRECTION_MIN: MetricDirection
METRIC_DIRECTION_UNSPECIFIED: MetricDirection
MODEL_CHANGE_CREATED: ModelChange
MODEL_CHANGE_DELETED: ModelChange
MODEL_CHANGE_PURGED: ModelChange
MODEL_CHANGE_RESTORED: ModelChange
MODEL_CHANGE_STATUS: ModelChange
MODEL_CHANGE_TAGS: ModelChange
MODEL_CHANGE_UNSPECIFIED: ModelChange
RECORD_KIND_DATABLOB: RecordKind
RECORD_KIND_MODEL: RecordKind
RECORD_KIND_MODEL_TEMPLATE: RecordKind
RECORD_KIND_UNSPECIFIED: RecordKind
RUN_STATUS_CRASHED: RunStatus
RUN_STATUS_CREATED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_FINISHED: RunStatus
RUN_STATUS_KILLED: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_UNSPECIFIED: RunStatus

class Artifact(_message.Message):
    __slots__ = ["content_stored", "created_at", "media_type", "name", "sha256", "size_bytes", "uri"]
    CONTENT_STORED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    content_stored: bool
    created_at: _timestamp_pb2.Timestamp
    media_type: str
    name: str
    sha256: str
    size_bytes: int
    uri: str
    def __init__(self, name: _Optional[str] = ..., uri: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., media_type: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., content_stored: bool = ...) -> None: ...

class ArtifactChunk(_message.Message):
    __slots__ = ["artifact_name", "data", "model_name"]
    ARTIFACT_NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    artifact_name: str
    data: bytes
    model_name: str
    def __init__(self, model_name: _Optional[str] = ..., artifact_name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class BatchError(_message.Message):
    __slots__ = ["code", "message"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class BestModel(_message.Message):
    __slots__ = ["best_epoch", "datablob", "metric_value", "model", "model_template"]
    BEST_EPOCH_FIELD_NUMBER: _ClassVar[int]
    DATABLOB_FIELD_NUMBER: _ClassVar[int]
    METRIC_VALUE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    best_epoch: Epoch
    datablob: DataBlob
    metric_value: float
    model: Model
    model_template: ModelTemplate
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., datablob: _Optional[_Union[DataBlob, _Mapping]] = ..., model_template: _Optional[_Union[ModelTemplate, _Mapping]] = ..., best_epoch: _Optional[_Union[Epoch, _Mapping]] = ..., metric_value: _Optional[float] = ...) -> None: ...

class ColumnValue(_message.Message):
    __slots__ = ["integer", "number"]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    integer: int
    number: float
    def __init__(self, number: _Optional[float] = ..., integer: _Optional[int] = ...) -> None: ...

class DataBlob(_message.Message):
    __slots__ = ["created_at", "deleted_at", "description", "group_name", "hyperparams_json", "last_modified_at", "name", "project", "tags"]
    class TagsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    created_at: _timestamp_pb2.Timestamp
    deleted_at: _timestamp_pb2.Timestamp
    description: str
    group_name: str
    hyperparams_json: str
    last_modified_at: _timestamp_pb2.Timestamp
    name: str
    project: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., group_name: _Optional[str] = ..., hyperparams_json: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_modified_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., project: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., deleted_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeleteArtifactRequest(_message.Message):
    __slots__ = ["model_name", "name", "project"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    name: str
    project: str
    def __init__(self, model_name: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class DeleteArtifactResponse(_message.Message):
    __slots__ = ["deleted"]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: bool = ...) -> None: ...

class DeleteRecordRequest(_message.Message):
    __slots__ = ["project", "target"]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    project: str
    target: RecordRef
    def __init__(self, target: _Optional[_Union[RecordRef, _Mapping]] = ..., project: _Optional[str] = ...) -> None: ...

class DeleteRecordResponse(_message.Message):
    __slots__ = ["already_deleted", "deleted_at"]
    ALREADY_DELETED_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    already_deleted: bool
    deleted_at: _timestamp_pb2.Timestamp
    def __init__(self, already_deleted: bool = ..., deleted_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DownloadArtifactRequest(_message.Message):
    __slots__ = ["model_name", "name", "project"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    name: str
    project: str
    def __init__(self, model_name: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class DownloadArtifactResponse(_message.Message):
    __slots__ = ["artifact", "chunk"]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    artifact: Artifact
    chunk: bytes
    def __init__(self, artifact: _Optional[_Union[Artifact, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class EndRunRequest(_message.Message):
    __slots__ = ["model_name", "project", "status"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    project: str
    status: RunStatus
    def __init__(self, model_name: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., project: _Optional[str] = ...) -> None: ...

class EndRunResponse(_message.Message):
    __slots__ = ["model"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class Epoch(_message.Message):
    __slots__ = ["epoch_num", "metrics", "model_name", "recorded_at", "steps_per_epoch", "validation_steps_per_epoch"]
    class MetricsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EPOCH_NUM_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch_num: int
    metrics: _containers.ScalarMap[str, float]
    model_name: str
    recorded_at: _timestamp_pb2.Timestamp
    steps_per_epoch: int
    validation_steps_per_epoch: int
    def __init__(self, model_name: _Optional[str] = ..., epoch_num: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., steps_per_epoch: _Optional[int] = ..., validation_steps_per_epoch: _Optional[int] = ..., recorded_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EpochBatch(_message.Message):
    __slots__ = ["epochs"]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    epochs: _containers.RepeatedCompositeFieldContainer[Epoch]
    def __init__(self, epochs: _Optional[_Iterable[_Union[Epoch, _Mapping]]] = ...) -> None: ...

class EpochColumns(_message.Message):
    __slots__ = ["epoch_nums", "metrics", "model_name", "steps_per_epoch", "steps_per_epoch_present", "validation_steps_per_epoch", "validation_steps_per_epoch_present"]
    EPOCH_NUMS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_EPOCH_PRESENT_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_STEPS_PER_EPOCH_PRESENT_FIELD_NUMBER: _ClassVar[int]
    epoch_nums: _containers.RepeatedScalarFieldContainer[int]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricColumn]
    model_name: str
    steps_per_epoch: _containers.RepeatedScalarFieldContainer[int]
    steps_per_epoch_present: bytes
    validation_steps_per_epoch: _containers.RepeatedScalarFieldContainer[int]
    validation_steps_per_epoch_present: bytes
    def __init__(self, model_name: _Optional[str] = ..., epoch_nums: _Optional[_Iterable[int]] = ..., metrics: _Optional[_Iterable[_Union[MetricColumn, _Mapping]]] = ..., steps_per_epoch: _Optional[_Iterable[int]] = ..., steps_per_epoch_present: _Optional[bytes] = ..., validation_steps_per_epoch: _Optional[_Iterable[int]] = ..., validation_steps_per_epoch_present: _Optional[bytes] = ...) -> None: ...

class ExportHeader(_message.Message):
    __slots__ = ["exported_at", "format_version", "model_names", "project", "server_version", "where", "with_artifacts"]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    WITH_ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    exported_at: _timestamp_pb2.Timestamp
    format_version: int
    model_names: _containers.RepeatedScalarFieldContainer[str]
    project: str
    server_version: str
    where: str
    with_artifacts: bool
    def __init__(self, format_version: _Optional[int] = ..., exported_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., server_version: _Optional[str] = ..., project: _Optional[str] = ..., model_names: _Optional[_Iterable[str]] = ..., where: _Optional[str] = ..., with_artifacts: bool = ...) -> None: ...

class ExportRecord(_message.Message):
    __slots__ = ["artifact", "artifact_chunk", "datablob", "epochs", "header", "model", "model_template"]
    ARTIFACT_CHUNK_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    DATABLOB_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    artifact: ExportedArtifact
    artifact_chunk: ArtifactChunk
    datablob: DataBlob
    epochs: EpochBatch
    header: ExportHeader
    model: ExportedModel
    model_template: ModelTemplate
    def __init__(self, header: _Optional[_Union[ExportHeader, _Mapping]] = ..., datablob: _Optional[_Union[DataBlob, _Mapping]] = ..., model_template: _Optional[_Union[ModelTemplate, _Mapping]] = ..., model: _Optional[_Union[ExportedModel, _Mapping]] = ..., artifact: _Optional[_Union[ExportedArtifact, _Mapping]] = ..., artifact_chunk: _Optional[_Union[ArtifactChunk, _Mapping]] = ..., epochs: _Optional[_Union[EpochBatch, _Mapping]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ["model_names", "project", "where", "with_artifacts"]
    MODEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    WITH_ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    model_names: _containers.RepeatedScalarFieldContainer[str]
    project: str
    where: str
    with_artifacts: bool
    def __init__(self, project: _Optional[str] = ..., model_names: _Optional[_Iterable[str]] = ..., where: _Optional[str] = ..., with_artifacts: bool = ...) -> None: ...

class ExportedArtifact(_message.Message):
    __slots__ = ["artifact", "model_name"]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    artifact: Artifact
    model_name: str
    def __init__(self, model_name: _Optional[str] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ...) -> None: ...

class ExportedModel(_message.Message):
    __slots__ = ["model", "status_changes"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_CHANGES_FIELD_NUMBER: _ClassVar[int]
    model: Model
    status_changes: _containers.RepeatedCompositeFieldContainer[StatusChange]
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., status_changes: _Optional[_Iterable[_Union[StatusChange, _Mapping]]] = ...) -> None: ...

class GetBestModelRequest(_message.Message):
    __slots__ = ["columns", "direction", "filter", "metric_name", "project", "top_k"]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    direction: MetricDirection
    filter: ModelFilter
    metric_name: str
    project: str
    top_k: int
    def __init__(self, metric_name: _Optional[str] = ..., direction: _Optional[_Union[MetricDirection, str]] = ..., filter: _Optional[_Union[ModelFilter, _Mapping]] = ..., top_k: _Optional[int] = ..., project: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class GetBestModelResponse(_message.Message):
    __slots__ = ["models"]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[BestModel]
    def __init__(self, models: _Optional[_Iterable[_Union[BestModel, _Mapping]]] = ...) -> None: ...

class GetCurrentEpochRequest(_message.Message):
    __slots__ = ["model_name", "project"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    project: str
    def __init__(self, model_name: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class GetCurrentEpochResponse(_message.Message):
    __slots__ = ["current_epoch", "model_exists"]
    CURRENT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    MODEL_EXISTS_FIELD_NUMBER: _ClassVar[int]
    current_epoch: int
    model_exists: bool
    def __init__(self, current_epoch: _Optional[int] = ..., model_exists: bool = ...) -> None: ...

class GetLeaderboardRequest(_message.Message):
    __slots__ = ["columns", "direction", "filter", "metric_name", "page_size", "page_token", "project"]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    direction: MetricDirection
    filter: ModelFilter
    metric_name: str
    page_size: int
    page_token: str
    project: str
    def __init__(self, metric_name: _Optional[str] = ..., direction: _Optional[_Union[MetricDirection, str]] = ..., filter: _Optional[_Union[ModelFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class GetLeaderboardResponse(_message.Message):
    __slots__ = ["next_page_token", "rows"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    rows: _containers.RepeatedCompositeFieldContainer[LeaderboardRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[LeaderboardRow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ["model_name", "project"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    project: str
    def __init__(self, model_name: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ["artifacts", "metrics", "model", "status_changes"]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_CHANGES_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricSummary]
    model: Model
    status_changes: _containers.RepeatedCompositeFieldContainer[StatusChange]
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., status_changes: _Optional[_Iterable[_Union[StatusChange, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[MetricSummary, _Mapping]]] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class GroupedFilter(_message.Message):
    __slots__ = ["deletion", "group_names", "names"]
    DELETION_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAMES_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    deletion: Deletion
    group_names: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ..., group_names: _Optional[_Iterable[str]] = ..., deletion: _Optional[_Union[Deletion, str]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ["model_name", "project"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    project: str
    def __init__(self, model_name: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ["model"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class ImportConflict(_message.Message):
    __slots__ = ["kind", "message", "name", "record_index"]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RECORD_INDEX_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    name: str
    record_index: int
    def __init__(self, record_index: _Optional[int] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ImportCounts(_message.Message):
    __slots__ = ["conflicts", "inserted", "skipped", "updated"]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    conflicts: int
    inserted: int
    skipped: int
    updated: int
    def __init__(self, inserted: _Optional[int] = ..., skipped: _Optional[int] = ..., updated: _Optional[int] = ..., conflicts: _Optional[int] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ["overwrite_mutable", "project", "records"]
    OVERWRITE_MUTABLE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    overwrite_mutable: bool
    project: str
    records: _containers.RepeatedCompositeFieldContainer[ExportRecord]
    def __init__(self, project: _Optional[str] = ..., overwrite_mutable: bool = ..., records: _Optional[_Iterable[_Union[ExportRecord, _Mapping]]] = ...) -> None: ...

class ImportResponse(_message.Message):
    __slots__ = ["artifact_bytes", "artifacts", "conflicts", "datablobs", "epochs", "epochs_of_conflicts", "model_templates", "models", "records"]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    DATABLOBS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_OF_CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    artifact_bytes: int
    artifacts: ImportCounts
    conflicts: _containers.RepeatedCompositeFieldContainer[ImportConflict]
    datablobs: ImportCounts
    epochs: ImportCounts
    epochs_of_conflicts: int
    model_templates: ImportCounts
    models: ImportCounts
    records: int
    def __init__(self, datablobs: _Optional[_Union[ImportCounts, _Mapping]] = ..., model_templates: _Optional[_Union[ImportCounts, _Mapping]] = ..., models: _Optional[_Union[ImportCounts, _Mapping]] = ..., artifacts: _Optional[_Union[ImportCounts, _Mapping]] = ..., epochs: _Optional[_Union[ImportCounts, _Mapping]] = ..., epochs_of_conflicts: _Optional[int] = ..., conflicts: _Optional[_Iterable[_Union[ImportConflict, _Mapping]]] = ..., records: _Optional[int] = ..., artifact_bytes: _Optional[int] = ...) -> None: ...

class InsertEpochsRequest(_message.Message):
    __slots__ = ["columns", "epochs", "project"]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[EpochColumns]
    epochs: _containers.RepeatedCompositeFieldContainer[Epoch]
    project: str
    def __init__(self, epochs: _Optional[_Iterable[_Union[Epoch, _Mapping]]] = ..., project: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[EpochColumns, _Mapping]]] = ...) -> None: ...

class InsertEpochsResponse(_message.Message):
    __slots__ = ["inserted", "skipped"]
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    skipped: int
    def __init__(self, inserted: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class LeaderboardRow(_message.Message):
    __slots__ = ["best_epoch_num", "best_value", "datablob", "model", "model_template"]
    BEST_EPOCH_NUM_FIELD_NUMBER: _ClassVar[int]
    BEST_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATABLOB_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    best_epoch_num: int
    best_value: float
    datablob: DataBlob
    model: Model
    model_template: ModelTemplate
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., datablob: _Optional[_Union[DataBlob, _Mapping]] = ..., model_template: _Optional[_Union[ModelTemplate, _Mapping]] = ..., best_epoch_num: _Optional[int] = ..., best_value: _Optional[float] = ...) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ["model_name", "project"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    project: str
    def __init__(self, model_name: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ["artifacts"]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class ListDataBlobsRequest(_message.Message):
    __slots__ = ["filter", "page_size", "page_token", "project"]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    filter: GroupedFilter
    page_size: int
    page_token: str
    project: str
    def __init__(self, filter: _Optional[_Union[GroupedFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class ListDataBlobsResponse(_message.Message):
    __slots__ = ["datablobs", "next_page_token"]
    DATABLOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datablobs: _containers.RepeatedCompositeFieldContainer[DataBlob]
    next_page_token: str
    def __init__(self, datablobs: _Optional[_Iterable[_Union[DataBlob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListEpochsRequest(_message.Message):
    __slots__ = ["max_epoch_num", "min_epoch_num", "model_names", "page_size", "page_token", "project"]
    MAX_EPOCH_NUM_FIELD_NUMBER: _ClassVar[int]
    MIN_EPOCH_NUM_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    max_epoch_num: int
    min_epoch_num: int
    model_names: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    project: str
    def __init__(self, model_names: _Optional[_Iterable[str]] = ..., min_epoch_num: _Optional[int] = ..., max_epoch_num: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class ListEpochsResponse(_message.Message):
    __slots__ = ["epochs", "next_page_token"]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    epochs: _containers.RepeatedCompositeFieldContainer[Epoch]
    next_page_token: str
    def __init__(self, epochs: _Optional[_Iterable[_Union[Epoch, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListModelTemplatesRequest(_message.Message):
    __slots__ = ["filter", "page_size", "page_token", "project"]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    filter: GroupedFilter
    page_size: int
    page_token: str
    project: str
    def __init__(self, filter: _Optional[_Union[GroupedFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class ListModelTemplatesResponse(_message.Message):
    __slots__ = ["model_templates", "next_page_token"]
    MODEL_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model_templates: _containers.RepeatedCompositeFieldContainer[ModelTemplate]
    next_page_token: str
    def __init__(self, model_templates: _Optional[_Iterable[_Union[ModelTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ["columns", "filter", "order_by", "page_size", "page_token", "project"]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    filter: ModelFilter
    order_by: str
    page_size: int
    page_token: str
    project: str
    def __init__(self, filter: _Optional[_Union[ModelFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., project: _Optional[str] = ..., order_by: _Optional[str] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ["models", "next_page_token"]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ["next_page_token", "projects"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MetricColumn(_message.Message):
    __slots__ = ["name", "present", "values"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    present: bytes
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ..., present: _Optional[bytes] = ...) -> None: ...

class MetricSummary(_message.Message):
    __slots__ = ["count", "last_epoch_num", "last_value", "max_epoch_num", "max_value", "metric_name", "min_epoch_num", "min_value", "nan_count"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_EPOCH_NUM_FIELD_NUMBER: _ClassVar[int]
    LAST_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCH_NUM_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_EPOCH_NUM_FIELD_NUMBER: _ClassVar[int]
    MIN_VALUE_FIELD_NUMBER: _ClassVar[int]
    NAN_COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    last_epoch_num: int
    last_value: float
    max_epoch_num: int
    max_value: float
    metric_name: str
    min_epoch_num: int
    min_value: float
    nan_count: int
    def __init__(self, metric_name: _Optional[str] = ..., count: _Optional[int] = ..., nan_count: _Optional[int] = ..., min_value: _Optional[float] = ..., min_epoch_num: _Optional[int] = ..., max_value: _Optional[float] = ..., max_epoch_num: _Optional[int] = ..., last_value: _Optional[float] = ..., last_epoch_num: _Optional[int] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ["columns", "created_at", "current_epoch", "datablob_name", "deleted_at", "description", "ended_at", "epoch_count", "heartbeat_timeout_secs", "last_heartbeat_at", "last_modified_at", "model_class_name", "model_template_name", "name", "params_json", "project", "run_context", "started_at", "status", "tags"]
    class TagsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_EPOCH_FIELD_NUMBER: _ClassVar[int]
    DATABLOB_NAME_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_COUNT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    RUN_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[ColumnValue]
    created_at: _timestamp_pb2.Timestamp
    current_epoch: int
    datablob_name: str
    deleted_at: _timestamp_pb2.Timestamp
    description: str
    ended_at: _timestamp_pb2.Timestamp
    epoch_count: int
    heartbeat_timeout_secs: int
    last_heartbeat_at: _timestamp_pb2.Timestamp
    last_modified_at: _timestamp_pb2.Timestamp
    model_class_name: str
    model_template_name: str
    name: str
    params_json: str
    project: str
    run_context: RunContext
    started_at: _timestamp_pb2.Timestamp
    status: RunStatus
    tags: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., model_class_name: _Optional[str] = ..., datablob_name: _Optional[str] = ..., model_template_name: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_modified_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., project: _Optional[str] = ..., params_json: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_heartbeat_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., heartbeat_timeout_secs: _Optional[int] = ..., run_context: _Optional[_Union[RunContext, _Mapping]] = ..., epoch_count: _Optional[int] = ..., current_epoch: _Optional[int] = ..., deleted_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[ColumnValue, _Mapping]]] = ...) -> None: ...

class ModelEvent(_message.Message):
    __slots__ = ["changes", "model", "model_name"]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedScalarFieldContainer[ModelChange]
    model: Model
    model_name: str
    def __init__(self, model_name: _Optional[str] = ..., model: _Optional[_Union[Model, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[ModelChange, str]]] = ...) -> None: ...

class ModelFilter(_message.Message):
    __slots__ = ["datablob_group_names", "datablob_names", "deletion", "model_template_group_names", "model_template_names", "names", "statuses", "tags", "where"]
    class TagsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATABLOB_GROUP_NAMES_FIELD_NUMBER: _ClassVar[int]
    DATABLOB_NAMES_FIELD_NUMBER: _ClassVar[int]
    DELETION_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_GROUP_NAMES_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_NAMES_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    datablob_group_names: _containers.RepeatedScalarFieldContainer[str]
    datablob_names: _containers.RepeatedScalarFieldContainer[str]
    deletion: Deletion
    model_template_group_names: _containers.RepeatedScalarFieldContainer[str]
    model_template_names: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    statuses: _containers.RepeatedScalarFieldContainer[RunStatus]
    tags: _containers.ScalarMap[str, str]
    where: str
    def __init__(self, names: _Optional[_Iterable[str]] = ..., datablob_names: _Optional[_Iterable[str]] = ..., datablob_group_names: _Optional[_Iterable[str]] = ..., model_template_names: _Optional[_Iterable[str]] = ..., model_template_group_names: _Optional[_Iterable[str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., statuses: _Optional[_Iterable[_Union[RunStatus, str]]] = ..., deletion: _Optional[_Union[Deletion, str]] = ..., where: _Optional[str] = ...) -> None: ...

class ModelTemplate(_message.Message):
    __slots__ = ["created_at", "deleted_at", "description", "group_name", "hyperparams_json", "last_modified_at", "name", "project", "tags"]
    class TagsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    created_at: _timestamp_pb2.Timestamp
    deleted_at: _timestamp_pb2.Timestamp
    description: str
    group_name: str
    hyperparams_json: str
    last_modified_at: _timestamp_pb2.Timestamp
    name: str
    project: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., group_name: _Optional[str] = ..., hyperparams_json: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_modified_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., project: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., deleted_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ["created_at", "name"]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    created_at: _timestamp_pb2.Timestamp
    name: str
    def __init__(self, name: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PurgeRequest(_message.Message):
    __slots__ = ["model_name", "project"]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    project: str
    def __init__(self, model_name: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class PurgeResponse(_message.Message):
    __slots__ = ["datablobs", "epochs", "model_templates", "models"]
    DATABLOBS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    datablobs: int
    epochs: int
    model_templates: int
    models: int
    def __init__(self, models: _Optional[int] = ..., epochs: _Optional[int] = ..., datablobs: _Optional[int] = ..., model_templates: _Optional[int] = ...) -> None: ...

class PutArtifactRequest(_message.Message):
    __slots__ = ["artifact", "model_name", "overwrite", "project"]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    artifact: Artifact
    model_name: str
    overwrite: bool
    project: str
    def __init__(self, model_name: _Optional[str] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ..., overwrite: bool = ..., project: _Optional[str] = ...) -> None: ...

class PutArtifactResponse(_message.Message):
    __slots__ = ["already_existed", "artifact", "replaced"]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    already_existed: bool
    artifact: Artifact
    replaced: bool
    def __init__(self, artifact: _Optional[_Union[Artifact, _Mapping]] = ..., already_existed: bool = ..., replaced: bool = ...) -> None: ...

class PutDataBlobRequest(_message.Message):
    __slots__ = ["datablob", "ignore_existing", "project"]
    DATABLOB_FIELD_NUMBER: _ClassVar[int]
    IGNORE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    datablob: DataBlob
    ignore_existing: bool
    project: str
    def __init__(self, datablob: _Optional[_Union[DataBlob, _Mapping]] = ..., ignore_existing: bool = ..., project: _Optional[str] = ...) -> None: ...

class PutDataBlobResponse(_message.Message):
    __slots__ = ["already_existed", "datablob"]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    DATABLOB_FIELD_NUMBER: _ClassVar[int]
    already_existed: bool
    datablob: DataBlob
    def __init__(self, datablob: _Optional[_Union[DataBlob, _Mapping]] = ..., already_existed: bool = ...) -> None: ...

class PutModelRequest(_message.Message):
    __slots__ = ["ignore_existing", "model", "project"]
    IGNORE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ignore_existing: bool
    model: Model
    project: str
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., ignore_existing: bool = ..., project: _Optional[str] = ...) -> None: ...

class PutModelResponse(_message.Message):
    __slots__ = ["already_existed", "model"]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    already_existed: bool
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., already_existed: bool = ...) -> None: ...

class PutModelTemplateRequest(_message.Message):
    __slots__ = ["ignore_existing", "model_template", "project"]
    IGNORE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ignore_existing: bool
    model_template: ModelTemplate
    project: str
    def __init__(self, model_template: _Optional[_Union[ModelTemplate, _Mapping]] = ..., ignore_existing: bool = ..., project: _Optional[str] = ...) -> None: ...

class PutModelTemplateResponse(_message.Message):
    __slots__ = ["already_existed", "model_template"]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    MODEL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    already_existed: bool
    model_template: ModelTemplate
    def __init__(self, model_template: _Optional[_Union[ModelTemplate, _Mapping]] = ..., already_existed: bool = ...) -> None: ...

class RecordRef(_message.Message):
    __slots__ = ["kind", "name"]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    kind: RecordKind
    name: str
    def __init__(self, kind: _Optional[_Union[RecordKind, str]] = ..., name: _Optional[str] = ...) -> None: ...

class RestoreRecordRequest(_message.Message):
    __slots__ = ["project", "target"]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    project: str
    target: RecordRef
    def __init__(self, target: _Optional[_Union[RecordRef, _Mapping]] = ..., project: _Optional[str] = ...) -> None: ...

class RestoreRecordResponse(_message.Message):
    __slots__ = ["was_live"]
    WAS_LIVE_FIELD_NUMBER: _ClassVar[int]
    was_live: bool
    def __init__(self, was_live: bool = ...) -> None: ...

class RunContext(_message.Message):
    __slots__ = ["command_line", "git_commit", "host", "pid", "user"]
    COMMAND_LINE_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    command_line: _containers.RepeatedScalarFieldContainer[str]
    git_commit: str
    host: str
    pid: int
    user: str
    def __init__(self, host: _Optional[str] = ..., pid: _Optional[int] = ..., user: _Optional[str] = ..., command_line: _Optional[_Iterable[str]] = ..., git_commit: _Optional[str] = ...) -> None: ...

class SetDescriptionRequest(_message.Message):
    __slots__ = ["description", "project", "target"]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    description: str
    project: str
    target: RecordRef
    def __init__(self, target: _Optional[_Union[RecordRef, _Mapping]] = ..., description: _Optional[str] = ..., project: _Optional[str] = ...) -> None: ...

class SetDescriptionResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ["heartbeat_timeout_secs", "model_name", "project", "run_context"]
    HEARTBEAT_TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    RUN_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    heartbeat_timeout_secs: int
    model_name: str
    project: str
    run_context: RunContext
    def __init__(self, model_name: _Optional[str] = ..., heartbeat_timeout_secs: _Optional[int] = ..., run_context: _Optional[_Union[RunContext, _Mapping]] = ..., project: _Optional[str] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ["model"]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ["cause", "changed_at", "to"]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    cause: str
    changed_at: _timestamp_pb2.Timestamp
    to: RunStatus
    def __init__(self, changed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., to: _Optional[_Union[RunStatus, str]] = ..., cause: _Optional[str] = ..., **kwargs) -> None: ...

class UpdateTagsRequest(_message.Message):
    __slots__ = ["project", "set", "target", "unset"]
    class SetEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    UNSET_FIELD_NUMBER: _ClassVar[int]
    project: str
    set: _containers.ScalarMap[str, str]
    target: RecordRef
    unset: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, target: _Optional[_Union[RecordRef, _Mapping]] = ..., set: _Optional[_Mapping[str, str]] = ..., unset: _Optional[_Iterable[str]] = ..., project: _Optional[str] = ...) -> None: ...

class UpdateTagsResponse(_message.Message):
    __slots__ = ["tags"]
    class TagsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UploadArtifactHeader(_message.Message):
    __slots__ = ["media_type", "model_name", "name", "overwrite", "project", "sha256", "size_bytes"]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    model_name: str
    name: str
    overwrite: bool
    project: str
    sha256: str
    size_bytes: int
    def __init__(self, model_name: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., media_type: _Optional[str] = ..., overwrite: bool = ...) -> None: ...

class UploadArtifactRequest(_message.Message):
    __slots__ = ["chunk", "header"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    header: UploadArtifactHeader
    def __init__(self, header: _Optional[_Union[UploadArtifactHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadArtifactResponse(_message.Message):
    __slots__ = ["already_existed", "artifact", "content_existed", "replaced"]
    ALREADY_EXISTED_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_EXISTED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    already_existed: bool
    artifact: Artifact
    content_existed: bool
    replaced: bool
    def __init__(self, artifact: _Optional[_Union[Artifact, _Mapping]] = ..., already_existed: bool = ..., replaced: bool = ..., content_existed: bool = ...) -> None: ...

class WatchEpochsRequest(_message.Message):
    __slots__ = ["cursor", "filter", "history", "metric_names", "model_names", "project"]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAMES_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    filter: ModelFilter
    history: bool
    metric_names: _containers.RepeatedScalarFieldContainer[str]
    model_names: _containers.RepeatedScalarFieldContainer[str]
    project: str
    def __init__(self, project: _Optional[str] = ..., model_names: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[ModelFilter, _Mapping]] = ..., metric_names: _Optional[_Iterable[str]] = ..., cursor: _Optional[str] = ..., history: bool = ...) -> None: ...

class WatchEpochsResponse(_message.Message):
    __slots__ = ["caught_up", "cursor", "epochs"]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    caught_up: bool
    cursor: str
    epochs: _containers.RepeatedCompositeFieldContainer[Epoch]
    def __init__(self, epochs: _Optional[_Iterable[_Union[Epoch, _Mapping]]] = ..., cursor: _Optional[str] = ..., caught_up: bool = ...) -> None: ...

class WatchModelsRequest(_message.Message):
    __slots__ = ["cursor", "filter", "model_names", "project"]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAMES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    filter: ModelFilter
    model_names: _containers.RepeatedScalarFieldContainer[str]
    project: str
    def __init__(self, project: _Optional[str] = ..., model_names: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[ModelFilter, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class WatchModelsResponse(_message.Message):
    __slots__ = ["caught_up", "cursor", "events"]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    caught_up: bool
    cursor: str
    events: _containers.RepeatedCompositeFieldContainer[ModelEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[ModelEvent, _Mapping]]] = ..., cursor: _Optional[str] = ..., caught_up: bool = ...) -> None: ...

class WriteEpochsRequest(_message.Message):
    __slots__ = ["columns", "epochs", "project", "sequence", "stop_on_error"]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STOP_ON_ERROR_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[EpochColumns]
    epochs: _containers.RepeatedCompositeFieldContainer[Epoch]
    project: str
    sequence: int
    stop_on_error: bool
    def __init__(self, sequence: _Optional[int] = ..., epochs: _Optional[_Iterable[_Union[Epoch, _Mapping]]] = ..., project: _Optional[str] = ..., stop_on_error: bool = ..., columns: _Optional[_Iterable[_Union[EpochColumns, _Mapping]]] = ...) -> None: ...

class WriteEpochsResponse(_message.Message):
    __slots__ = ["error", "inserted", "sequence", "skipped"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    error: BatchError
    inserted: int
    sequence: int
    skipped: int
    def __init__(self, sequence: _Optional[int] = ..., inserted: _Optional[int] = ..., skipped: _Optional[int] = ..., error: _Optional[_Union[BatchError, _Mapping]] = ...) -> None: ...

class Deletion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class MetricDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RecordKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ModelChange(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
