"""`Client.run`: a training run with a background sender that loses nothing."""

from __future__ import annotations

import atexit
import collections
import logging
import operator
import os
import queue
import random
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Deque, List, Mapping, Optional, Sequence, Tuple, Type, Union

import grpc

from . import _columns
from ._errors import (
    TRANSIENT_NAMES,
    DeadlineExceeded,
    EpochsNotStored,
    Error,
    FailedPrecondition,
    Unavailable,
    from_code,
    from_rpc_error,
)
from ._types import Artifact, Model, RunContext, RunStatus
from .v1 import mlmeta_pb2 as pb

if TYPE_CHECKING:
    from typing import Protocol

    from ._client import Client

    class _Transport(Protocol):
        """How the sender thread reaches the server: one small seam, so that
        an acknowledged write stream can replace InsertEpochs."""

        def send(self, epochs: List[pb.Epoch]) -> Tuple[int, int]:
            """Stores the epochs (duplicates skipped) and returns how many
            were (inserted, skipped), or raises `mlmeta.Error`: then none
            of them was stored."""

        def heartbeat(self) -> None:
            """Tells the server the run is alive or raises `mlmeta.Error`."""

        def close(self) -> None:
            """Ends what `send` opened (every batch has been answered)."""


log = logging.getLogger("mlmeta")

# (epoch, metrics, steps_per_epoch, validation_steps_per_epoch)
_Item = Tuple[int, Mapping[str, float], Optional[int], Optional[int]]

_TAG_LIMIT = 4096


class _InsertEpochsTransport:
    """Sends each batch with one `InsertEpochs` call (all or nothing; the
    server skips epochs already stored, so a resend after a lost reply
    stores nothing twice)."""

    def __init__(self, client: "Client", model: str, timeout: float) -> None:
        self._client = client
        self._model = model
        self._timeout = timeout

    def send(self, epochs: List[pb.Epoch]) -> Tuple[int, int]:
        reply = self._client._call(
            "InsertEpochs",
            pb.InsertEpochsRequest(epochs=epochs, project=self._client.project),
            timeout=self._timeout,
            retries=0,  # the sender thread retries on its own
        )
        return int(reply.inserted), int(reply.skipped)

    def heartbeat(self) -> None:
        self._client._call(
            "Heartbeat",
            pb.HeartbeatRequest(model_name=self._model, project=self._client.project),
            timeout=self._timeout,
            retries=0,
        )

    def close(self) -> None:
        pass


class _WriteStream:
    """One `WriteEpochs` call: requests go in through a queue that gRPC's
    own thread drains, answers come out through a reader thread, so that
    waiting for an answer can have a timeout (a response iterator has none)."""

    def __init__(self, client: "Client") -> None:
        self._requests: "queue.Queue[Optional[pb.WriteEpochsRequest]]" = queue.Queue()
        self._answers: "queue.Queue[Union[pb.WriteEpochsResponse, Error]]" = queue.Queue()
        stub = client._open()
        self._call = stub.WriteEpochs(iter(self._requests.get, None), metadata=client._metadata)
        self._reader = threading.Thread(target=self._read, name="mlmeta-write-epochs", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for answer in self._call:
                self._answers.put(answer)
            # The server ended the stream between batches (its idle
            # timeout, a shutdown): the next batch goes on a new one.
            self._answers.put(Unavailable("the server ended the write stream", "UNAVAILABLE"))
        except grpc.RpcError as err:
            self._answers.put(from_rpc_error(err))

    @property
    def usable(self) -> bool:
        """False once the stream ended (nothing is outstanding between batches,
        so anything waiting in the answer queue is its end)."""
        return self._reader.is_alive() and self._answers.empty()

    def exchange(self, request: pb.WriteEpochsRequest, timeout: float) -> pb.WriteEpochsResponse:
        self._requests.put(request)
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise DeadlineExceeded(
                f"no answer to write batch {request.sequence} within {timeout} s", "DEADLINE_EXCEEDED"
            ) from None
        if isinstance(answer, Error):
            raise answer
        return answer

    def close(self, *, cancel: bool) -> None:
        self._requests.put(None)  # half-close: the server answers what it has, then ends
        if cancel:
            self._call.cancel()
        self._reader.join(timeout=1.0)


class _WriteEpochsTransport:
    """Sends each batch as one message of a long-lived `WriteEpochs`
    stream and waits for its answer, which the server gives after the
    batch's transaction committed: an answered batch is stored, an
    unanswered one is resent (on a new stream after a failure; the server
    skips what it already has, so nothing is stored twice). A refused
    batch is answered with its error and the stream goes on. A server
    without `WriteEpochs` (UNIMPLEMENTED) gets `InsertEpochs` instead."""

    def __init__(self, client: "Client", model: str, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._unary = _InsertEpochsTransport(client, model, timeout)
        self._stream: Optional[_WriteStream] = None
        self._sequence = 0
        #: Streams opened so far (a test reads it).
        self.streams_opened = 0
        self.unimplemented = False

    def send(self, epochs: List[pb.Epoch]) -> Tuple[int, int]:
        if self.unimplemented:
            return self._unary.send(epochs)
        if self._stream is None or not self._stream.usable:
            self._drop(cancel=True)
            self._stream = _WriteStream(self._client)
            self.streams_opened += 1
        self._sequence += 1
        request = pb.WriteEpochsRequest(sequence=self._sequence, epochs=epochs, project=self._client.project)
        try:
            answer = self._stream.exchange(request, self._timeout)
        except Error as err:
            self._drop(cancel=True)
            if err.code == "UNIMPLEMENTED":
                self.unimplemented = True
                return self._unary.send(epochs)
            raise
        if answer.sequence != self._sequence:
            self._drop(cancel=True)
            raise Error(
                f"write stream answered batch {answer.sequence} where {self._sequence} was expected",
                "INTERNAL",  # transient: the batch is resent on a new stream
            )
        if answer.HasField("error"):
            raise from_code(answer.error.code, answer.error.message)
        return int(answer.inserted), int(answer.skipped)

    def _drop(self, *, cancel: bool) -> None:
        if self._stream is not None:
            self._stream.close(cancel=cancel)
            self._stream = None

    def heartbeat(self) -> None:
        self._unary.heartbeat()

    def close(self) -> None:
        self._drop(cancel=False)


def _clip(text: str) -> str:
    data = text.encode("utf-8", "replace").replace(b"\0", b"")
    return data[:_TAG_LIMIT].decode("utf-8", "ignore")


class Run:
    """One training run of a model; see `Client.run`.

    `log` appends to an in-memory buffer and returns (a few µs); a daemon
    thread sends what has accumulated in batches of up to `batch_size`
    epochs over one acknowledged `WriteEpochs` stream (each batch answered
    after it committed; `InsertEpochs` on a server without the stream),
    retrying transient failures (server down, restarting, busy)
    with exponential backoff and full jitter up to `max_backoff` seconds,
    forever while the run lasts. `log` blocks only when `max_buffer`
    epochs wait to be sent. Epochs the server refuses (a bad metric name,
    the model deleted) are counted and reported by `flush` and on exit;
    within a refused batch the others are resent one by one, so one bad
    epoch does not cost the rest.

    While no epoch flows, the thread sends a heartbeat every
    `heartbeat_interval` seconds (default: 30, or a third of
    `heartbeat_timeout_secs` when that is smaller), so a long epoch does
    not make the server mark the run CRASHED.

    Leaving the ``with`` block flushes, waiting at most `flush_timeout`
    seconds (then `EpochsNotStored` says how many epochs were not stored),
    and ends the run: FINISHED; FAILED when an exception escaped (its type
    and message go into the tags ``error.type`` / ``error.message``);
    KILLED on KeyboardInterrupt or SIGTERM (with `handle_sigterm`, the
    handler, installed in the main thread only, raises SystemExit(143) so
    that the block unwinds; a previous Python handler is called first).
    A run started with `start()` and never ended is ended when the
    interpreter exits: FAILED after an uncaught exception, KILLED after
    KeyboardInterrupt or SIGTERM, else `status_at_exit` (FINISHED).
    """

    def __init__(
        self,
        client: "Client",
        name: str,
        *,
        datablob: str,
        template: str,
        model_class: str,
        params: Optional[Mapping[str, Any]] = None,
        tags: Optional[Mapping[str, str]] = None,
        heartbeat_interval: Optional[float] = None,
        heartbeat_timeout_secs: Optional[int] = None,
        flush_timeout: float = 60.0,
        max_buffer: int = 100_000,
        batch_size: int = 1_000,
        max_backoff: float = 10.0,
        handle_sigterm: bool = True,
        context: Optional[RunContext] = None,
        status_at_exit: Union[RunStatus, str] = RunStatus.FINISHED,
    ) -> None:
        self.client = client
        self.name = name
        self._put = dict(
            datablob=datablob, template=template, model_class=model_class, params=params
        )
        self._tags = dict(tags or {})
        if heartbeat_interval is None:
            heartbeat_interval = 30.0
            if heartbeat_timeout_secs is not None:
                heartbeat_interval = min(heartbeat_interval, heartbeat_timeout_secs / 3)
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout_secs = heartbeat_timeout_secs
        self.flush_timeout = flush_timeout
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self._handle_sigterm = handle_sigterm
        self._context = context
        self.status_at_exit = RunStatus(str(status_at_exit).upper())
        #: The model as the start left it (None before `start`).
        self.model: Optional[Model] = None
        #: The highest epoch stored when the run started (0: none): where a
        #: restarted trainer continues (`current_epoch + 1`).
        self.current_epoch = 0
        #: How the run ended (None while it lasts).
        self.status: Optional[RunStatus] = None
        self._transport: Optional["_Transport"] = None
        self._queue: Deque[_Item] = collections.deque()
        self._lock = threading.Lock()
        self._cv = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._abort = threading.Event()
        self._logged = 0
        self._done = 0
        self._stored_or_skipped = 0
        self._inserted = 0
        self._skipped = 0
        self._rejected = 0
        self._lost = 0
        self._reasons: List[str] = []
        self._thread: Optional[threading.Thread] = None
        self._thread_error: Optional[BaseException] = None
        self._stopping = False
        self._started = False
        self._ended = False
        self._ending = False
        self._last_contact = 0.0
        self._signal: Optional[int] = None
        self._prev_handler: Any = None
        self._handler_installed = False

    # --- life ------------------------------------------------------------

    def start(self) -> "Run":
        """Puts the model, sets the tags, marks the run RUNNING and starts the sender."""
        if self._started:
            return self
        c = self.client
        c.put_model(self.name, **self._put)  # type: ignore[arg-type]
        if self._tags:
            c.set_tags(self.name, self._tags)
        try:
            self.model = c.start_run(
                self.name,
                context=self._context or RunContext.current(),
                heartbeat_timeout_secs=self.heartbeat_timeout_secs,
            )
        except FailedPrecondition as err:
            raise FailedPrecondition(
                f"model {self.name!r}: cannot start its run ({err.message}); "
                "an ended run cannot be restarted: use a new model name",
                err.code,
            ) from None
        self.current_epoch = self.model.current_epoch or 0
        self._transport = _WriteEpochsTransport(c, self.name, timeout=c.timeout)
        self._last_contact = time.monotonic()
        self._started = True
        self._thread = threading.Thread(target=self._loop, name=f"mlmeta-run-{self.name}", daemon=True)
        self._thread.start()
        self._install_sigterm()
        atexit.register(self._at_exit)
        return self

    def __enter__(self) -> "Run":
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        status, tags = self._status_for(exc)
        self._finish(status, tags, raising=exc is None)

    def end(self, status: Union[RunStatus, str] = RunStatus.FINISHED) -> None:
        """Flushes and ends the run with `status` (FINISHED, FAILED or KILLED)."""
        self._finish(RunStatus(str(status).upper()), {}, raising=True)

    def _status_for(self, exc: Optional[BaseException]) -> Tuple[RunStatus, Mapping[str, str]]:
        if exc is None:
            return RunStatus.FINISHED, {}
        if isinstance(exc, KeyboardInterrupt):
            return RunStatus.KILLED, {"error.type": "KeyboardInterrupt"}
        if isinstance(exc, SystemExit):
            if self._signal is not None:
                return RunStatus.KILLED, {"error.type": signal.Signals(self._signal).name}
            if exc.code in (None, 0):
                return RunStatus.FINISHED, {}
        kind = type(exc)
        name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        return RunStatus.FAILED, {"error.type": _clip(name), "error.message": _clip(str(exc))}

    def _at_exit(self) -> None:
        if not self._started or self._ended or self._ending:
            return
        exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
        if exc is None and self._signal is None:
            tags: Mapping[str, str] = (
                {"error.message": "the process exited before the run ended"}
                if self.status_at_exit == RunStatus.FAILED
                else {}
            )
            self._finish(self.status_at_exit, tags, raising=False, at_exit=True)
            return
        status, tags = self._status_for(exc if exc is not None else SystemExit(128 + (self._signal or 0)))
        self._finish(status, tags, raising=False, at_exit=True)

    def _finish(self, status: RunStatus, tags: Mapping[str, str], *, raising: bool, at_exit: bool = False) -> None:
        if not self._started or self._ended:
            return
        self._ending = True
        signal_before = self._signal
        not_stored: Optional[EpochsNotStored] = None
        try:
            deadline = time.monotonic() + self.flush_timeout
            not_stored = self._drain(deadline)
            if not_stored is not None:
                tags = dict(tags)
                tags.setdefault("error.epochs_not_stored", str(not_stored.not_stored))
            self._end_on_server(status, tags, deadline)
        finally:
            self._ended = True
            self._ending = False
            self.status = status
            self._restore_sigterm()
            atexit.unregister(self._at_exit)
        if not_stored is not None:
            if raising:
                raise not_stored
            log.error("%s", not_stored)
        if self._signal is not None and signal_before is None and not at_exit:
            # SIGTERM arrived while the run was ending: it was held back
            # until the end was recorded, and takes effect now.
            raise SystemExit(128 + self._signal)

    def _end_on_server(self, status: RunStatus, tags: Mapping[str, str], deadline: float) -> None:
        c = self.client
        # The end is retried like the epochs, but only until the flush
        # deadline (at least 2 s): a server gone for good leaves the run
        # RUNNING, and the server's heartbeat timeout marks it CRASHED.
        deadline = max(deadline, time.monotonic() + 2.0)
        steps: List[Callable[[], object]] = []
        if tags:
            steps.append(lambda: c.set_tags(self.name, tags))
        steps.append(lambda: c.end_run(self.name, status))
        for step in steps:
            attempt = 0
            while True:
                try:
                    step()
                    break
                except Error as err:
                    if err.code not in TRANSIENT_NAMES or time.monotonic() >= deadline:
                        log.error("mlmeta: run %r: could not end as %s: %s", self.name, status, err)
                        return
                    attempt += 1
                    time.sleep(min(self._backoff(attempt), max(0.0, deadline - time.monotonic())))

    # --- artifacts -------------------------------------------------------

    def log_artifact(
        self,
        path: "Union[str, os.PathLike[str]]",
        *,
        name: Optional[str] = None,
        media_type: Optional[str] = None,
        overwrite: bool = False,
    ) -> "Artifact":
        """Uploads the file at `path` as an artifact of this run's model
        (named after the file unless `name` is given), and returns it.

        Unlike `log`, this blocks until the server stored every byte and
        checked their SHA-256 (see `Client.upload_artifact`).
        """
        if not self._started:
            raise Error(f"run {self.name!r}: log_artifact() needs a started run")
        return self.client.upload_artifact(
            self.name,
            name if name is not None else os.path.basename(os.fspath(path)),
            path,
            media_type=media_type,
            overwrite=overwrite,
        )

    # --- logging ---------------------------------------------------------

    def log(
        self,
        epoch: int,
        metrics: Mapping[str, float],
        *,
        steps_per_epoch: Optional[int] = None,
        validation_steps_per_epoch: Optional[int] = None,
    ) -> None:
        """Buffers one epoch (metrics converted with `float`: NaN and ±inf
        are kept) and returns at once; the sender thread stores it.

        An epoch number already stored is skipped by the server, never
        overwritten (the first one wins).
        """
        item = (
            operator.index(epoch),
            {k: float(v) for k, v in metrics.items()},
            steps_per_epoch,
            validation_steps_per_epoch,
        )
        if not self._started or self._ended:
            raise Error(f"run {self.name!r}: log() needs a started run that has not ended")
        q = self._queue
        if len(q) >= self.max_buffer:
            self._wait_for_room()
        with self._lock:
            q.append(item)
            self._logged += 1
        if not self._wake.is_set():
            self._wake.set()

    def log_many(
        self,
        epochs: Any,
        metrics: Mapping[str, Any],
        *,
        steps_per_epoch: Optional[Sequence[Optional[int]]] = None,
        validation_steps_per_epoch: Optional[Sequence[Optional[int]]] = None,
    ) -> Tuple[int, int]:
        """Stores many epochs at once in the columnar form and returns
        (inserted, skipped): `epochs` is a sequence (or integer array) of
        epoch numbers and `metrics` maps each metric name to one value per
        epoch, a numpy array (numpy is optional), a masked array (masked:
        missing) or a sequence where None means missing. NaN and ±inf are
        values. Step counts, if given, are one per epoch (None: missing).

        Unlike `log`, this call is synchronous and does not go through the
        buffer (call `flush()` first when mixing both on the same epochs):
        it returns once the epochs are stored, in requests of at most
        100,000 epochs, each all or nothing. Epochs already stored, or
        repeated, are skipped (the first one wins). Raises `mlmeta.Error`
        (INVALID_ARGUMENT naming the field for bad input) or ValueError
        when an array's length differs from `epochs`'.
        """
        if not self._started or self._ended:
            raise Error(f"run {self.name!r}: log_many() needs a started run that has not ended")
        nums = epochs if _columns.is_array(epochs) else list(epochs)
        n = len(nums)
        # Keep each request well under the server's 64 MiB message limit.
        step = max(1, min(_columns.MAX_EPOCHS_PER_REQUEST, 4_000_000 // max(1, len(metrics))))
        inserted = skipped = 0
        for start in range(0, n, step):
            end = min(n, start + step)
            if n > 0 and len(metrics) and any(len(v) != n for v in metrics.values()):
                bad = next(k for k, v in metrics.items() if len(v) != n)
                raise ValueError(f"metric {bad!r}: must hold one value per epoch ({n}), got {len(metrics[bad])}")
            columns = _columns.build(
                self.name,
                nums[start:end],
                {k: v[start:end] for k, v in metrics.items()},
                None if steps_per_epoch is None else steps_per_epoch[start:end],
                None if validation_steps_per_epoch is None else validation_steps_per_epoch[start:end],
            )
            got = self._insert_columns(columns)
            inserted += got[0]
            skipped += got[1]
        return inserted, skipped

    def _insert_columns(self, columns: pb.EpochColumns) -> Tuple[int, int]:
        """One InsertEpochs call with `columns` (rows instead on a server that
        ignores them: it answers 0 inserted and 0 skipped)."""
        client = self.client
        reply = client._call("InsertEpochs", pb.InsertEpochsRequest(columns=[columns], project=client.project))
        if reply.inserted == 0 and reply.skipped == 0 and len(columns.epoch_nums) > 0:
            rows = _columns.to_rows(columns)
            reply = client._call("InsertEpochs", pb.InsertEpochsRequest(epochs=rows, project=client.project))
        return int(reply.inserted), int(reply.skipped)

    def _wait_for_room(self) -> None:
        with self._cv:
            while len(self._queue) >= self.max_buffer and self._thread_error is None:
                self._cv.wait(0.1)

    def flush(self, timeout: Optional[float] = None) -> None:
        """Blocks until every epoch logged so far is stored (or refused).

        Raises `EpochsNotStored` when the server refused some, or when
        some were still unsent after `timeout` seconds (default: wait).
        """
        target = self._logged
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._done < target and self._thread_error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._wake.set()
                self._cv.wait(remaining if remaining is not None else 1.0)
        error = self._not_stored(pending=max(0, target - self._done))
        if error is not None:
            raise error

    def _drain(self, deadline: float) -> Optional[EpochsNotStored]:
        """Stops the sender after it sent everything or at the deadline."""
        self._stopping = True
        self._wake.set()
        target = self._logged
        with self._cv:
            while self._done < target and self._thread_error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
        self._abort.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._transport is not None and (self._thread is None or not self._thread.is_alive()):
            self._transport.close()
        return self._not_stored(pending=max(0, self._logged - self._done))

    def _not_stored(self, pending: int) -> Optional[EpochsNotStored]:
        refused = self._rejected
        lost = self._lost + pending
        if refused + lost == 0 and self._thread_error is None:
            return None
        parts = []
        if lost:
            parts.append(f"{lost} still unsent (server unreachable)")
        if refused:
            parts.append(f"{refused} refused by the server: {'; '.join(self._reasons[:3])}")
        if self._thread_error is not None:
            parts.append(f"the sender thread died: {self._thread_error!r}")
        n = refused + lost
        return EpochsNotStored(
            f"run {self.name!r}: {n} of {self._logged} logged epochs were not stored: " + ", ".join(parts),
            not_stored=n,
            pending=lost,
            reasons=list(self._reasons),
        )

    @property
    def stats(self) -> Mapping[str, int]:
        """Counters: logged, sent (stored or already stored: the server
        acknowledged them), inserted and skipped (of those sent: newly
        stored, or already there), refused, waiting."""
        return {
            "logged": self._logged,
            "sent": self._stored_or_skipped,
            "inserted": self._inserted,
            "skipped": self._skipped,
            "refused": self._rejected,
            "waiting": self._logged - self._done,
        }

    # --- the sender thread -----------------------------------------------

    def _backoff(self, attempt: int) -> float:
        # Full jitter: uniform in [0, min(max, 0.05 * 2^attempt)].
        return random.uniform(0.0, min(self.max_backoff, 0.05 * (2 ** min(attempt, 20))))

    def _loop(self) -> None:
        try:
            q = self._queue
            while True:
                if not q:
                    if self._stopping or self._abort.is_set():
                        return
                    idle = time.monotonic() - self._last_contact
                    if idle >= self.heartbeat_interval:
                        self._heartbeat()
                        continue
                    self._wake.wait(self.heartbeat_interval - idle)
                    self._wake.clear()
                    continue
                batch: List[_Item] = []
                while q and len(batch) < self.batch_size:
                    batch.append(q.popleft())
                self._send(batch)
                with self._cv:
                    self._done += len(batch)
                    self._cv.notify_all()
        except BaseException as err:  # a bug: make flush() and the end report it
            self._thread_error = err
            with self._cv:
                self._cv.notify_all()

    def _heartbeat(self) -> None:
        assert self._transport is not None
        try:
            self._transport.heartbeat()
            self._last_contact = time.monotonic()
        except Error as err:
            # Try again in a second (a transient failure) or at the next
            # interval (anything else: e.g. the run was ended elsewhere).
            log.warning("mlmeta: run %r: heartbeat failed: %s", self.name, err)
            retry = 1.0 if err.code in TRANSIENT_NAMES else self.heartbeat_interval
            self._last_contact = time.monotonic() - self.heartbeat_interval + min(retry, self.heartbeat_interval)

    def _to_pb(self, items: List[_Item]) -> List[pb.Epoch]:
        out = []
        for epoch, metrics, steps, vsteps in items:
            try:
                e = pb.Epoch(model_name=self.name, epoch_num=epoch, metrics=metrics)
                if steps is not None:
                    e.steps_per_epoch = steps
                if vsteps is not None:
                    e.validation_steps_per_epoch = vsteps
            except (TypeError, ValueError) as err:
                self._refuse(1, f"epoch {epoch}: {err}")
                continue
            out.append(e)
        return out

    def _refuse(self, n: int, reason: str) -> None:
        self._rejected += n
        if len(self._reasons) < 100:
            self._reasons.append(reason)
        log.error("mlmeta: run %r: %d epoch(s) not stored: %s", self.name, n, reason)

    def _send(self, items: List[_Item]) -> None:
        epochs = self._to_pb(items)
        if epochs:
            self._send_epochs(epochs)

    def _send_epochs(self, epochs: List[pb.Epoch]) -> None:
        assert self._transport is not None
        attempt = 0
        while True:
            try:
                inserted, skipped = self._transport.send(epochs)
                self._last_contact = time.monotonic()
                self._stored_or_skipped += len(epochs)
                self._inserted += inserted
                self._skipped += skipped
                return
            except Error as err:
                if err.code in TRANSIENT_NAMES:
                    if self._abort.is_set():
                        self._lost += len(epochs)
                        return
                    attempt += 1
                    if attempt in (1, 10) or attempt % 100 == 0:
                        log.warning("mlmeta: run %r: sending epochs failed (retrying): %s", self.name, err)
                    self._abort.wait(self._backoff(attempt))
                    continue
                if err.code == "INVALID_ARGUMENT" and len(epochs) > 1:
                    # All or nothing: find the bad ones, keep the rest.
                    for e in epochs:
                        self._send_epochs([e])
                    return
                self._refuse(len(epochs), err.message)
                return

    # --- SIGTERM ---------------------------------------------------------

    def _install_sigterm(self) -> None:
        if not self._handle_sigterm or threading.current_thread() is not threading.main_thread():
            return
        prev = signal.getsignal(signal.SIGTERM)
        if prev is signal.SIG_IGN:
            return
        self._prev_handler = prev
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._handler_installed = True

    def _restore_sigterm(self) -> None:
        if not self._handler_installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._prev_handler)
        self._handler_installed = False

    def _on_sigterm(self, signum: int, frame: Optional[FrameType]) -> None:
        self._signal = signum
        prev = self._prev_handler
        if callable(prev):
            prev(signum, frame)
        if not self._ending:
            raise SystemExit(128 + signum)
