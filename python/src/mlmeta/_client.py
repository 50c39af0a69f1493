"""`mlmeta.Client`: typed, synchronous access to an mlmeta server."""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc

from ._errors import Error, InvalidArgument, from_rpc_error, status_code
from ._types import (
    Artifact,
    BestModel,
    DataBlob,
    Epoch,
    InsertResult,
    LeaderboardRow,
    Model,
    ModelDetails,
    ModelEvent,
    ModelTemplate,
    Project,
    RunContext,
    RunStatus,
)
from .v1 import mlmeta_pb2 as pb
from .v1 import mlmeta_pb2_grpc

if TYPE_CHECKING:
    from ._run import Run

DEFAULT_URL = "http://127.0.0.1:50051"
_SERVICE = "mlmeta.v1.MetadataService"
_T = TypeVar("_T")

#: Epochs of one model given to `insert_epochs`: {epoch: metrics} or pairs.
EpochsArg = Union[Mapping[int, Mapping[str, float]], Iterable[Tuple[int, Mapping[str, float]]]]
#: Run statuses given to a filter, as `RunStatus` or its name.
StatusArg = Union[RunStatus, str]

_KINDS = {
    "model": pb.RECORD_KIND_MODEL,
    "datablob": pb.RECORD_KIND_DATABLOB,
    "template": pb.RECORD_KIND_MODEL_TEMPLATE,
}
_DELETION = {
    "live": pb.DELETION_LIVE_ONLY,
    "deleted": pb.DELETION_DELETED_ONLY,
    "all": pb.DELETION_ALL,
}


def _direction(value: str) -> "pb.MetricDirection":
    v = value.lower()
    if v == "max":
        return pb.METRIC_DIRECTION_MAX
    if v == "min":
        return pb.METRIC_DIRECTION_MIN
    raise InvalidArgument(f'direction: must be "max" or "min", not {value!r}')


def _kind(value: str) -> "pb.RecordKind":
    try:
        return _KINDS[value]
    except KeyError:
        raise InvalidArgument(f"kind: must be one of {sorted(_KINDS)}, not {value!r}") from None


def _deletion(value: str) -> "pb.Deletion":
    try:
        return _DELETION[value]
    except KeyError:
        raise InvalidArgument(f"deleted: must be one of {sorted(_DELETION)}, not {value!r}") from None


def _dumps(value: Optional[Mapping[str, Any]], what: str) -> str:
    if value is None:
        return ""
    try:
        # allow_nan=False: JSON has no NaN; the server would refuse it anyway.
        return json.dumps(dict(value), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InvalidArgument(f"{what}: not JSON-serialisable: {err}") from None


def _as_list(value: Union[None, str, Iterable[str]]) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _statuses(value: Union[None, StatusArg, Iterable[StatusArg]]) -> "List[pb.RunStatus]":
    if value is None:
        return []
    items: Iterable[StatusArg] = [value] if isinstance(value, (str, RunStatus)) else value
    out = []
    for s in items:
        try:
            out.append(RunStatus(str(s).upper()).to_pb())
        except ValueError:
            raise InvalidArgument(f"statuses: unknown run status {s!r}") from None
    return out


def model_filter(
    names: Union[None, str, Iterable[str]] = None,
    *,
    datablobs: Union[None, str, Iterable[str]] = None,
    datablob_groups: Union[None, str, Iterable[str]] = None,
    templates: Union[None, str, Iterable[str]] = None,
    template_groups: Union[None, str, Iterable[str]] = None,
    tags: Optional[Mapping[str, str]] = None,
    statuses: Union[None, StatusArg, Iterable[StatusArg]] = None,
    where: str = "",
    deleted: str = "live",
) -> pb.ModelFilter:
    """The protobuf `ModelFilter` for the keyword filters of `list_models`, `best`, `leaderboard`."""
    return pb.ModelFilter(
        names=_as_list(names),
        datablob_names=_as_list(datablobs),
        datablob_group_names=_as_list(datablob_groups),
        model_template_names=_as_list(templates),
        model_template_group_names=_as_list(template_groups),
        tags=dict(tags or {}),
        statuses=_statuses(statuses),
        where=where,
        deletion=_deletion(deleted),
    )


_CHUNK_BYTES = 1 << 20


def _digest_file(path: "Union[str, os.PathLike[str]]") -> Tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK_BYTES)
            if not chunk:
                return hasher.hexdigest(), size
            hasher.update(chunk)
            size += len(chunk)


def _channel_target(url: str) -> Tuple[str, bool]:
    if url.startswith("https://"):
        return url[len("https://") :].rstrip("/"), True
    if url.startswith("http://"):
        return url[len("http://") :].rstrip("/"), False
    if "://" in url:
        raise InvalidArgument(f"url: scheme must be http:// or https://, not {url!r}")
    return url, False


def _read(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


class Client:
    """A connection to an mlmeta server, in one project.

    Arguments fall back to environment variables: `url` to
    ``MLMETA_SERVER`` (default ``http://127.0.0.1:50051``), `token` to
    ``MLMETA_TOKEN``, `project` to ``MLMETA_PROJECT`` (default
    ``default``), `ca_cert` to ``MLMETA_CA_CERT`` and `client_cert` /
    `client_key` (mutual TLS) to ``MLMETA_CLIENT_CERT`` /
    ``MLMETA_CLIENT_KEY``. ``https://`` URLs use TLS (the system's CAs
    unless `ca_cert` names a PEM file).

    Every unary call has a deadline of `timeout` seconds; one the server
    could not be reached for (UNAVAILABLE) is repeated up to `retries`
    times (1.5 to 3 s in all: a restarting server), which is safe since
    every mlmeta call is idempotent. Errors are raised as `mlmeta.Error`
    subclasses, never as raw `grpc.RpcError`.

    Fork safety: the gRPC channel is opened lazily and belongs to the
    process that opened it; a client used in a forked child (a DataLoader
    worker, a multiprocessing pool) opens its own channel there and never
    touches the parent's. A `Run` belongs to the process that started it.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        project: Optional[str] = None,
        *,
        ca_cert: Optional[str] = None,
        client_cert: Optional[str] = None,
        client_key: Optional[str] = None,
        timeout: float = 30.0,
        retries: int = 4,
    ) -> None:
        self.url = url or os.environ.get("MLMETA_SERVER") or DEFAULT_URL
        self.project = project or os.environ.get("MLMETA_PROJECT") or "default"
        self.timeout = timeout
        self.retries = retries
        token = token if token is not None else os.environ.get("MLMETA_TOKEN")
        self._metadata: Tuple[Tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._target, self._tls = _channel_target(self.url)
        self._ca_cert = ca_cert or os.environ.get("MLMETA_CA_CERT")
        self._client_cert = client_cert or os.environ.get("MLMETA_CLIENT_CERT")
        self._client_key = client_key or os.environ.get("MLMETA_CLIENT_KEY")
        if bool(self._client_cert) != bool(self._client_key):
            raise InvalidArgument("client_cert, client_key: give both or neither")
        self._lock = threading.Lock()
        self._pid = -1
        self._channel: Optional[grpc.Channel] = None
        self._stub: Any = None

    # --- connection ------------------------------------------------------

    def _open(self) -> Any:
        with self._lock:
            if self._stub is not None and self._pid == os.getpid():
                return self._stub
            # A channel inherited across fork is abandoned, never used or
            # closed. The new one must not share gRPC's global subchannel
            # pool either: its connections would be the parent's sockets
            # ("sendmsg: Wrong file descriptor generation" in the child).
            options = [
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.use_local_subchannel_pool", 1),
                # Reconnect within a second of a server restart (gRPC's
                # default backoff starts at 1 s and grows to 120 s); the
                # retries of `_call` span longer than that.
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ]
            if self._tls:
                creds = grpc.ssl_channel_credentials(
                    root_certificates=_read(self._ca_cert),
                    private_key=_read(self._client_key),
                    certificate_chain=_read(self._client_cert),
                )
                channel = grpc.secure_channel(self._target, creds, options=options)
            else:
                channel = grpc.insecure_channel(self._target, options=options)
            self._channel = channel
            self._stub = mlmeta_pb2_grpc.MetadataServiceStub(channel)  # type: ignore[no-untyped-call]
            self._pid = os.getpid()
            return self._stub

    def close(self) -> None:
        """Closes the channel (a later call opens a new one)."""
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                self._channel.close()
            self._channel = None
            self._stub = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r}, project={self.project!r})"

    def _call(
        self, method: str, request: Any, timeout: Optional[float] = None, retries: Optional[int] = None
    ) -> Any:
        stub = self._open()
        retries = self.retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return getattr(stub, method)(
                    request,
                    timeout=self.timeout if timeout is None else timeout,
                    metadata=self._metadata,
                )
            except grpc.RpcError as err:
                # Every mlmeta call is idempotent: repeating one the server
                # never saw (UNAVAILABLE) is safe.
                if status_code(err) != grpc.StatusCode.UNAVAILABLE or attempt >= retries:
                    raise from_rpc_error(err) from None
            attempt += 1
            time.sleep(random.uniform(0.5, 1.0) * 0.2 * 2 ** (attempt - 1))

    def _pages(
        self,
        method: str,
        make: Callable[[str], Any],
        items: Callable[[Any], Iterable[_T]],
    ) -> Iterator[_T]:
        token = ""
        while True:
            reply = self._call(method, make(token))
            yield from items(reply)
            token = reply.next_page_token
            if not token:
                return

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the channel is connected (raises `Unavailable` after `timeout`)."""
        from ._errors import Unavailable

        self._open()
        assert self._channel is not None
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise Unavailable(f"{self.url}: not reachable within {timeout} s", "UNAVAILABLE") from None

    # --- puts ------------------------------------------------------------

    def put_datablob(
        self,
        name: str,
        *,
        group: str,
        hyperparams: Optional[Mapping[str, Any]] = None,
        ignore_existing: bool = False,
    ) -> DataBlob:
        """Stores a datablob (idempotent: an identical re-put returns the stored one).

        A different record under the name is `AlreadyExists` unless
        `ignore_existing`, which keeps (and returns) the stored one.
        """
        reply: pb.PutDataBlobResponse = self._call(
            "PutDataBlob",
            pb.PutDataBlobRequest(
                datablob=pb.DataBlob(
                    name=name, group_name=group, hyperparams_json=_dumps(hyperparams, "hyperparams")
                ),
                ignore_existing=ignore_existing,
                project=self.project,
            ),
        )
        return DataBlob.from_pb(reply.datablob)

    def put_template(
        self,
        name: str,
        *,
        group: str,
        hyperparams: Optional[Mapping[str, Any]] = None,
        ignore_existing: bool = False,
    ) -> ModelTemplate:
        """Stores a model template, with the rules of `put_datablob`."""
        reply: pb.PutModelTemplateResponse = self._call(
            "PutModelTemplate",
            pb.PutModelTemplateRequest(
                model_template=pb.ModelTemplate(
                    name=name, group_name=group, hyperparams_json=_dumps(hyperparams, "hyperparams")
                ),
                ignore_existing=ignore_existing,
                project=self.project,
            ),
        )
        return ModelTemplate.from_pb(reply.model_template)

    def put_model(
        self,
        name: str,
        *,
        datablob: str,
        template: str,
        model_class: str,
        params: Optional[Mapping[str, Any]] = None,
        ignore_existing: bool = False,
    ) -> Model:
        """Stores a model; its datablob and template must exist (`FailedPrecondition`)."""
        reply: pb.PutModelResponse = self._call(
            "PutModel",
            pb.PutModelRequest(
                model=pb.Model(
                    name=name,
                    model_class_name=model_class,
                    datablob_name=datablob,
                    model_template_name=template,
                    params_json=_dumps(params, "params"),
                ),
                ignore_existing=ignore_existing,
                project=self.project,
            ),
        )
        return Model.from_pb(reply.model)

    def insert_epochs(self, model: str, epochs: EpochsArg) -> InsertResult:
        """Stores epochs of one model at once, all or nothing.

        `epochs` is ``{epoch: metrics}`` or ``(epoch, metrics)`` pairs.
        Epochs already stored are skipped, never overwritten. For a
        training loop, prefer `run(...).log`, which never waits.
        """
        pairs = epochs.items() if isinstance(epochs, Mapping) else epochs
        request = pb.InsertEpochsRequest(
            epochs=[
                pb.Epoch(model_name=model, epoch_num=n, metrics={k: float(v) for k, v in m.items()})
                for n, m in pairs
            ],
            project=self.project,
        )
        reply: pb.InsertEpochsResponse = self._call("InsertEpochs", request)
        return InsertResult(inserted=reply.inserted, skipped=reply.skipped)

    # --- listings --------------------------------------------------------

    def list_projects(self, *, page_size: int = 0) -> Iterator[Project]:
        """The projects the token may use, by name."""
        return self._pages(
            "ListProjects",
            lambda t: pb.ListProjectsRequest(page_size=page_size, page_token=t),
            lambda r: (Project.from_pb(p) for p in r.projects),
        )

    def list_datablobs(
        self,
        names: Union[None, str, Iterable[str]] = None,
        *,
        groups: Union[None, str, Iterable[str]] = None,
        deleted: str = "live",
        page_size: int = 0,
    ) -> Iterator[DataBlob]:
        """Datablobs by name (all pages); `deleted` is "live", "deleted" or "all"."""
        f = pb.GroupedFilter(names=_as_list(names), group_names=_as_list(groups), deletion=_deletion(deleted))
        return self._pages(
            "ListDataBlobs",
            lambda t: pb.ListDataBlobsRequest(filter=f, page_size=page_size, page_token=t, project=self.project),
            lambda r: (DataBlob.from_pb(d) for d in r.datablobs),
        )

    def list_templates(
        self,
        names: Union[None, str, Iterable[str]] = None,
        *,
        groups: Union[None, str, Iterable[str]] = None,
        deleted: str = "live",
        page_size: int = 0,
    ) -> Iterator[ModelTemplate]:
        """Model templates by name (all pages)."""
        f = pb.GroupedFilter(names=_as_list(names), group_names=_as_list(groups), deletion=_deletion(deleted))
        return self._pages(
            "ListModelTemplates",
            lambda t: pb.ListModelTemplatesRequest(
                filter=f, page_size=page_size, page_token=t, project=self.project
            ),
            lambda r: (ModelTemplate.from_pb(m) for m in r.model_templates),
        )

    def list_models(
        self,
        names: Union[None, str, Iterable[str]] = None,
        *,
        page_size: int = 0,
        order_by: str = "",
        columns: Sequence[str] = (),
        **filters: Any,
    ) -> Iterator[Model]:
        """Models by name, or in the order of `order_by` (all pages).

        `order_by` is a field and "asc" (default) or "desc", e.g.
        "max(val_accuracy) desc": name, class, status, created_at,
        started_at, ended_at, last_heartbeat_at, epochs, current_epoch,
        max(m), min(m), last(m), count(m); ties by name, models lacking the
        value (or with a NaN last value) last. `columns` are summaries
        (max(m), min(m), last(m), count(m), epochs, current_epoch) returned
        in `Model.columns`. Filters: `datablobs`, `datablob_groups`,
        `templates`, `template_groups`, `tags` (all must match), `statuses`,
        `where`, `deleted` (see `model_filter`)."""
        f = model_filter(names, **filters)
        cols = list(columns)
        return self._pages(
            "ListModels",
            lambda t: pb.ListModelsRequest(
                filter=f,
                page_size=page_size,
                page_token=t,
                project=self.project,
                order_by=order_by,
                columns=cols,
            ),
            lambda r: (Model.from_pb(m, cols) for m in r.models),
        )

    def epochs(
        self,
        models: Union[None, str, Iterable[str]] = None,
        *,
        min_epoch: Optional[int] = None,
        max_epoch: Optional[int] = None,
        page_size: int = 0,
    ) -> Iterator[Epoch]:
        """Epochs of a model (or of several; all when None), by model then epoch (all pages)."""
        def make(token: str) -> pb.ListEpochsRequest:
            req = pb.ListEpochsRequest(
                model_names=_as_list(models), page_size=page_size, page_token=token, project=self.project
            )
            if min_epoch is not None:
                req.min_epoch_num = min_epoch
            if max_epoch is not None:
                req.max_epoch_num = max_epoch
            return req

        return self._pages("ListEpochs", make, lambda r: (Epoch.from_pb(e) for e in r.epochs))

    def current_epoch(self, model: str) -> int:
        """The highest epoch stored for a model; 0 when it has none or does not exist."""
        reply: pb.GetCurrentEpochResponse = self._call(
            "GetCurrentEpoch", pb.GetCurrentEpochRequest(model_name=model, project=self.project)
        )
        return reply.current_epoch

    def get_model(self, name: str) -> ModelDetails:
        """One model with its status history, metric summaries and artifacts."""
        reply: pb.GetModelResponse = self._call(
            "GetModel", pb.GetModelRequest(model_name=name, project=self.project)
        )
        return ModelDetails.from_pb(reply)

    # --- queries ---------------------------------------------------------

    def best(
        self,
        metric: str,
        direction: str = "max",
        *,
        top: int = 1,
        columns: Sequence[str] = (),
        **filters: Any,
    ) -> List[BestModel]:
        """The `top` best models by `metric` ("max" or "min"), best first.

        Models without the metric are never results, NaN is never best,
        ties go to the lower epoch, then the model name. `NotFound` when no
        matching model has the metric. Filters and `columns` as in
        `list_models`.
        """
        cols = list(columns)
        reply: pb.GetBestModelResponse = self._call(
            "GetBestModel",
            pb.GetBestModelRequest(
                metric_name=metric,
                direction=_direction(direction),
                filter=model_filter(**filters),
                top_k=top,
                project=self.project,
                columns=cols,
            ),
        )
        return [BestModel.from_pb(m, cols) for m in reply.models]

    def leaderboard(
        self,
        metric: str,
        direction: str = "max",
        *,
        page_size: int = 0,
        columns: Sequence[str] = (),
        **filters: Any,
    ) -> Iterator[LeaderboardRow]:
        """Every matching model with its best value of `metric`, best first
        (all pages). `columns` as in `list_models`."""
        f = model_filter(**filters)
        d = _direction(direction)
        cols = list(columns)
        return self._pages(
            "GetLeaderboard",
            lambda t: pb.GetLeaderboardRequest(
                metric_name=metric,
                direction=d,
                filter=f,
                page_size=page_size,
                page_token=t,
                project=self.project,
                columns=cols,
            ),
            lambda r: (LeaderboardRow.from_pb(row, cols) for row in r.rows),
        )

    # --- metadata --------------------------------------------------------

    def update_tags(
        self,
        name: str,
        set: Optional[Mapping[str, str]] = None,
        unset: Sequence[str] = (),
        *,
        kind: str = "model",
    ) -> Dict[str, str]:
        """Sets and unsets tags of a model (or `kind` "datablob" / "template"); returns all its tags."""
        reply: pb.UpdateTagsResponse = self._call(
            "UpdateTags",
            pb.UpdateTagsRequest(
                target=pb.RecordRef(kind=_kind(kind), name=name),
                set=dict(set or {}),
                unset=list(unset),
                project=self.project,
            ),
        )
        return dict(reply.tags)

    def set_tags(self, name: str, tags: Mapping[str, str], *, kind: str = "model") -> Dict[str, str]:
        """Adds or overwrites tags; returns all tags afterwards."""
        return self.update_tags(name, set=tags, kind=kind)

    def unset_tags(self, name: str, keys: Sequence[str], *, kind: str = "model") -> Dict[str, str]:
        """Removes tags (absent keys are fine); returns all tags afterwards."""
        return self.update_tags(name, unset=keys, kind=kind)

    def set_description(self, name: str, description: str, *, kind: str = "model") -> None:
        """Replaces (or, when empty, clears) the description of a record."""
        self._call(
            "SetDescription",
            pb.SetDescriptionRequest(
                target=pb.RecordRef(kind=_kind(kind), name=name), description=description, project=self.project
            ),
        )

    # --- artifacts -------------------------------------------------------

    def put_artifact(
        self,
        model: str,
        name: str,
        uri: str,
        *,
        sha256: Optional[str] = None,
        size_bytes: Optional[int] = None,
        media_type: Optional[str] = None,
        overwrite: bool = False,
    ) -> Artifact:
        """Stores a reference from a model to a file elsewhere (the server never holds the bytes)."""
        art = pb.Artifact(name=name, uri=uri)
        if sha256 is not None:
            art.sha256 = sha256
        if size_bytes is not None:
            art.size_bytes = size_bytes
        if media_type is not None:
            art.media_type = media_type
        reply: pb.PutArtifactResponse = self._call(
            "PutArtifact",
            pb.PutArtifactRequest(model_name=model, artifact=art, overwrite=overwrite, project=self.project),
        )
        return Artifact.from_pb(reply.artifact)

    def list_artifacts(self, model: str) -> List[Artifact]:
        """The artifacts of a model, by name."""
        reply: pb.ListArtifactsResponse = self._call(
            "ListArtifacts", pb.ListArtifactsRequest(model_name=model, project=self.project)
        )
        return [Artifact.from_pb(a) for a in reply.artifacts]

    def watch_epochs(
        self,
        models: Union[None, str, Iterable[str]] = None,
        *,
        metrics: Optional[Iterable[str]] = None,
        history: bool = False,
        cursor: Optional[str] = None,
        where: Optional[str] = None,
    ) -> "EpochWatch":
        """Epochs as they are committed, through any replica: an iterator of
        `Epoch` that runs until `close()` (or the end of a ``with`` block).

        `models` names the models (or, None, every model of the project, or
        those of `where`, including models created later); `metrics` keeps
        only those metric names; `history` first yields the stored epochs.
        The watch's `cursor` is where it stands: a new watch given it
        yields exactly the epochs committed after (none twice). A lost
        connection (a server restart, a replica switch) is resumed from the
        cursor by itself.
        """
        request = pb.WatchEpochsRequest(
            project=self.project,
            model_names=_as_list(models),
            metric_names=list(metrics or []),
            history=history,
            cursor=cursor or "",
        )
        if where:
            request.filter.where = where
        return EpochWatch(self, request)

    def watch_models(
        self,
        models: Union[None, str, Iterable[str]] = None,
        *,
        cursor: Optional[str] = None,
        **filters: Any,
    ) -> "ModelWatch":
        """Model events as they are committed, through any replica: an
        iterator of `ModelEvent` (created, status changes such as a run
        ending or CRASHED, tags, deleted, restored, purged) that runs until
        `close()` (or the end of a ``with`` block).

        `models` names the models (they need not exist yet: their creation
        is an event); None watches every model of the project, or those of
        the keyword filters of `model_filter` (``where=``, ``statuses=``,
        ``tags=``, ...; deleted models stay in view). `cursor` resumes after
        a previous watch; a lost connection is resumed by itself.
        """
        request = pb.WatchModelsRequest(
            project=self.project,
            model_names=_as_list(models),
            cursor=cursor or "",
        )
        if filters:
            request.filter.CopyFrom(model_filter(**filters))
        return ModelWatch(self, request)

    def upload_artifact(
        self,
        model: str,
        name: str,
        path: "Union[str, os.PathLike[str]]",
        *,
        media_type: Optional[str] = None,
        overwrite: bool = False,
    ) -> Artifact:
        """Uploads the file at `path` into the server as artifact `name` of `model`.

        The file is read once for its SHA-256 and size, which the server
        checks, then sent in 1 MiB chunks; the artifact becomes visible
        only when every byte is stored (a failed upload leaves nothing).
        The same bytes already on the server are not stored again. Not
        retried: call again after a failure. Blocks until done.
        """
        digest, size = _digest_file(path)
        header = pb.UploadArtifactHeader(
            model_name=model, name=name, project=self.project, sha256=digest, size_bytes=size, overwrite=overwrite
        )
        if media_type is not None:
            header.media_type = media_type

        def messages() -> Iterator[pb.UploadArtifactRequest]:
            yield pb.UploadArtifactRequest(header=header)
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(_CHUNK_BYTES)
                    if not chunk:
                        return
                    yield pb.UploadArtifactRequest(chunk=chunk)

        stub = self._open()
        try:
            reply: pb.UploadArtifactResponse = stub.UploadArtifact(messages(), metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return Artifact.from_pb(reply.artifact)

    def download_artifact(self, model: str, name: str, path: "Union[str, os.PathLike[str]]") -> Artifact:
        """Downloads the content of artifact `name` of `model` into `path`.

        The bytes go to a temporary file beside `path`, which takes the
        name only after their SHA-256 and size matched the artifact's
        (otherwise `mlmeta.Error`, and `path` is untouched).
        """
        target = os.fspath(path)
        partial = os.path.join(os.path.dirname(target) or ".", f".{os.path.basename(target)}.download-{os.getpid()}")
        stub = self._open()
        request = pb.DownloadArtifactRequest(model_name=model, name=name, project=self.project)
        hasher = hashlib.sha256()
        size = 0
        artifact: Optional[Artifact] = None
        try:
            with open(partial, "wb") as f:
                for part in stub.DownloadArtifact(request, metadata=self._metadata):
                    if part.HasField("artifact"):
                        artifact = Artifact.from_pb(part.artifact)
                        continue
                    hasher.update(part.chunk)
                    size += len(part.chunk)
                    f.write(part.chunk)
                f.flush()
                os.fsync(f.fileno())
            if artifact is None or artifact.sha256 != hasher.hexdigest() or artifact.size_bytes != size:
                raise Error(
                    f"artifact {name!r} of model {model!r}: the content received ({size} bytes, "
                    f"SHA-256 {hasher.hexdigest()}) is not the artifact's; nothing was written",
                    "DATA_LOSS",
                )
            os.replace(partial, target)
            return artifact
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        finally:
            if os.path.exists(partial):
                os.remove(partial)

    def delete_artifact(self, model: str, name: str) -> bool:
        """Deletes an artifact reference; False when there was none."""
        reply: pb.DeleteArtifactResponse = self._call(
            "DeleteArtifact", pb.DeleteArtifactRequest(model_name=model, name=name, project=self.project)
        )
        return reply.deleted

    # --- delete, restore, purge -----------------------------------------

    def delete(self, name: str, *, kind: str = "model") -> bool:
        """Soft-deletes a record; True when it was deleted already."""
        reply: pb.DeleteRecordResponse = self._call(
            "DeleteRecord",
            pb.DeleteRecordRequest(target=pb.RecordRef(kind=_kind(kind), name=name), project=self.project),
        )
        return reply.already_deleted

    def restore(self, name: str, *, kind: str = "model") -> bool:
        """Brings a deleted record back; True when it was live already."""
        reply: pb.RestoreRecordResponse = self._call(
            "RestoreRecord",
            pb.RestoreRecordRequest(target=pb.RecordRef(kind=_kind(kind), name=name), project=self.project),
        )
        return reply.was_live

    def purge(self, model: str = "") -> Dict[str, int]:
        """Removes deleted records for good (one deleted model, or all); returns the counts."""
        reply: pb.PurgeResponse = self._call(
            "Purge", pb.PurgeRequest(model_name=model, project=self.project), timeout=max(self.timeout, 600.0)
        )
        return {
            "models": reply.models,
            "epochs": reply.epochs,
            "datablobs": reply.datablobs,
            "templates": reply.model_templates,
        }

    # --- runs ------------------------------------------------------------

    def start_run(
        self,
        model: str,
        *,
        context: Optional[RunContext] = None,
        heartbeat_timeout_secs: Optional[int] = None,
    ) -> Model:
        """Marks a model's run RUNNING (CREATED or CRASHED before) with its run context."""
        req = pb.StartRunRequest(
            model_name=model,
            run_context=(context or RunContext.current()).to_pb(),
            project=self.project,
        )
        if heartbeat_timeout_secs is not None:
            req.heartbeat_timeout_secs = heartbeat_timeout_secs
        reply: pb.StartRunResponse = self._call("StartRun", req)
        return Model.from_pb(reply.model)

    def heartbeat(self, model: str) -> Model:
        """Tells the server a RUNNING run is alive (revives a CRASHED one)."""
        reply: pb.HeartbeatResponse = self._call(
            "Heartbeat", pb.HeartbeatRequest(model_name=model, project=self.project)
        )
        return Model.from_pb(reply.model)

    def end_run(self, model: str, status: StatusArg) -> Model:
        """Ends a run as FINISHED, FAILED or KILLED (repeating the same status is harmless)."""
        reply: pb.EndRunResponse = self._call(
            "EndRun",
            pb.EndRunRequest(
                model_name=model, status=RunStatus(str(status).upper()).to_pb(), project=self.project
            ),
        )
        return Model.from_pb(reply.model)

    def run(
        self,
        name: str,
        *,
        datablob: str,
        template: str,
        model_class: str,
        params: Optional[Mapping[str, Any]] = None,
        tags: Optional[Mapping[str, str]] = None,
        **options: Any,
    ) -> "Run":
        """A training run, to use as ``with client.run(...) as run:``.

        Entering puts the model (idempotent: an identical model already
        stored is fine), sets `tags`, and marks it RUNNING with the run
        context; `run.log(epoch, metrics)` only buffers and a background
        thread sends. Leaving flushes, then ends the run FINISHED, FAILED
        (an exception escaped; its type and message go into the tags
        ``error.type`` and ``error.message``) or KILLED (KeyboardInterrupt
        or SIGTERM). See `Run` for the options.
        """
        from ._run import Run

        return Run(
            self,
            name,
            datablob=datablob,
            template=template,
            model_class=model_class,
            params=params,
            tags=tags,
            **options,
        )


__all__ = ["Client", "model_filter", "DEFAULT_URL", "Error"]


_W = TypeVar("_W", bound="_Watch[Any]")
_Item = TypeVar("_Item")


class _Watch(Iterator[_Item]):
    """A watch stream that yields items and resumes from its cursor when
    the connection is lost (a server restart, a replica switch)."""

    _method = ""

    def __init__(self, client: Client, request: Any) -> None:
        self._client = client
        self._request = request
        #: Resume a later watch here (empty until the server sent one).
        self.cursor: str = request.cursor
        #: What a resumed cursor missed (or the history asked for) is out.
        self.caught_up = False
        self._call: Any = None
        self._closed = False
        self._pending: List[_Item] = []

    def __iter__(self: _W) -> _W:
        return self

    def __next__(self) -> _Item:
        while not self._pending:
            if self._closed:
                raise StopIteration
            self._receive()
        return self._pending.pop(0)

    def _items(self, reply: Any) -> List[_Item]:
        raise NotImplementedError

    def _receive(self) -> None:
        attempt = 0
        while True:
            if self._call is None:
                self._request.cursor = self.cursor
                method = getattr(self._client._open(), self._method)
                self._call = method(self._request, metadata=self._client._metadata)
            try:
                reply = next(self._call)
            except StopIteration:
                self._call = None  # the server ended the stream: resume
                continue
            except grpc.RpcError as err:
                self._call = None
                if self._closed:
                    return
                code = status_code(err)
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN) or attempt >= 40:
                    raise from_rpc_error(err) from None
                attempt += 1
                time.sleep(random.uniform(0.5, 1.0) * min(2.0, 0.05 * 2**attempt))
                continue
            if reply.cursor:
                self.cursor = reply.cursor
            if reply.caught_up:
                self.caught_up = True
            self._pending.extend(self._items(reply))
            return

    def close(self) -> None:
        """Ends the watch (an iteration in progress stops)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EpochWatch(_Watch[Epoch]):
    """`Client.watch_epochs`: iterate it for `Epoch`s; `cursor` is where it
    stands, `caught_up` turns true once the history (or what a resumed
    cursor missed) has been yielded."""

    _method = "WatchEpochs"

    def _items(self, reply: Any) -> List[Epoch]:
        return [Epoch.from_pb(e) for e in reply.epochs]


class ModelWatch(_Watch[ModelEvent]):
    """`Client.watch_models`: iterate it for `ModelEvent`s; `cursor` is
    where it stands, `caught_up` turns true once what a resumed cursor
    missed has been yielded."""

    _method = "WatchModels"

    def _items(self, reply: Any) -> List[ModelEvent]:
        return [ModelEvent.from_pb(e) for e in reply.events]
