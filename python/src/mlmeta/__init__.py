"""mlmeta: the Python client of the mlmeta training-metadata server.

    import mlmeta
    client = mlmeta.Client("http://127.0.0.1:50051")
    with client.run("cnn-1", datablob="mnist-v1", template="cnn", model_class="KerasModel") as run:
        run.log(1, {"loss": 0.3})

The raw protobuf messages and gRPC stub are `mlmeta.v1.mlmeta_pb2` and
`mlmeta.v1.mlmeta_pb2_grpc` (generated from proto/; do not edit).
"""

from ._client import DEFAULT_URL, Client, EpochWatch, ModelWatch, model_filter
from ._errors import (
    AlreadyExists,
    DeadlineExceeded,
    EpochsNotStored,
    Error,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from ._run import Run
from ._types import (
    Artifact,
    BestModel,
    DataBlob,
    Epoch,
    InsertResult,
    LeaderboardRow,
    MetricSummary,
    Model,
    ModelDetails,
    ModelEvent,
    ModelTemplate,
    Project,
    RunContext,
    RunStatus,
    StatusChange,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "AlreadyExists",
    "Artifact",
    "BestModel",
    "Client",
    "DataBlob",
    "DeadlineExceeded",
    "Epoch",
    "EpochWatch",
    "EpochsNotStored",
    "Error",
    "FailedPrecondition",
    "InsertResult",
    "InvalidArgument",
    "LeaderboardRow",
    "MetricSummary",
    "Model",
    "ModelDetails",
    "ModelEvent",
    "ModelTemplate",
    "ModelWatch",
    "NotFound",
    "PermissionDenied",
    "Project",
    "ResourceExhausted",
    "Run",
    "RunContext",
    "RunStatus",
    "StatusChange",
    "Unauthenticated",
    "Unavailable",
    "model_filter",
]
