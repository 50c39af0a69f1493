"""The run's sender over the acknowledged `WriteEpochs` stream: one stream
for the whole run, a refused batch answered without ending it, a stream
the server closed while idle replaced by a new one, exact inserted/skipped
counts, and `InsertEpochs` against a server that has no `WriteEpochs`."""

from __future__ import annotations

import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, Iterator, List

import grpc
import pytest

import mlmeta
from conftest import Database, Server
from test_run import KW, _metrics, _status


def _seed(c: mlmeta.Client) -> None:
    c.put_datablob("mnist-v1", group="mnist")
    c.put_template("cnn-small", group="cnn")


def _streams_opened(run: mlmeta.Run) -> int:
    return int(getattr(run._transport, "streams_opened"))


def test_one_stream_carries_the_run_and_a_refused_batch_does_not_end_it(seeded: mlmeta.Client) -> None:
    run = seeded.run("m", **KW).start()
    for e in range(1, 51):
        run.log(e, {"loss": 1.0 / e})
    run.flush()
    run.log(51, {"": 1.0})  # breaks the metric-name rule: this batch alone is refused
    with pytest.raises(mlmeta.EpochsNotStored, match="1 refused"):
        run.flush()
    for e in range(52, 101):
        run.log(e, {"loss": 1.0 / e})
    with pytest.raises(mlmeta.EpochsNotStored):
        run.end()  # the one refused epoch is reported again at the end
    assert _streams_opened(run) == 1
    assert run.stats["inserted"] == 99 and run.stats["skipped"] == 0 and run.stats["refused"] == 1
    assert sorted(_metrics(seeded, "m")) == [e for e in range(1, 101) if e != 51]


def test_epochs_already_stored_are_counted_as_skipped(seeded: mlmeta.Client) -> None:
    with seeded.run("m", **KW) as first:
        for e in range(1, 11):
            first.log(e, {"loss": float(e)})
    seeded.put_model("m2", **KW)
    seeded.insert_epochs("m2", [(e, {"loss": -1.0}) for e in range(1, 6)])
    with seeded.run("m2", **KW) as run:
        for e in range(1, 11):
            run.log(e, {"loss": float(e)})
    assert run.stats["inserted"] == 5 and run.stats["skipped"] == 5 and run.stats["sent"] == 10
    assert _metrics(seeded, "m2")[3] == {"loss": -1.0}  # the first one wins


@pytest.fixture
def idle_server(backend: str, tmp_path: Path) -> Iterator[Server]:
    db = Database(backend, tmp_path)
    srv = Server(db.url, extra=["--stream-idle-timeout-secs", "1"], log_dir=tmp_path).start()
    yield srv
    srv.stop()
    db.drop()


def test_a_stream_the_server_closed_while_idle_is_replaced(idle_server: Server, project: str) -> None:
    c = mlmeta.Client(idle_server.url, project=project)
    _seed(c)
    with c.run("m", heartbeat_interval=60, **KW) as run:
        for e in range(1, 11):
            run.log(e, {"loss": float(e)})
        run.flush()
        time.sleep(2.5)  # past the server's idle timeout: it ends the stream
        for e in range(11, 21):
            run.log(e, {"loss": float(e)})
        run.flush()
        assert _streams_opened(run) == 2
    assert run.stats["refused"] == 0 and run.stats["inserted"] == 20
    assert sorted(_metrics(c, "m")) == list(range(1, 21))
    assert _status(c, "m") == "FINISHED"


class _OldServer:
    """A server from before `WriteEpochs`: a byte-for-byte gRPC proxy in
    front of a real mlmeta-server that answers `WriteEpochs` with
    UNIMPLEMENTED, as a server without the method does."""

    def __init__(self, upstream: str) -> None:
        self._channel = grpc.insecure_channel(upstream.removeprefix("http://"))
        self.calls: List[str] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([_Forward(self)])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.url = f"http://127.0.0.1:{self.port}"
        self._server.start()

    def forward(self, method: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        call = self._channel.unary_unary(method)

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.calls.append(method.rsplit("/", 1)[-1])
            try:
                return bytes(call(request, metadata=context.invocation_metadata()))
            except grpc.RpcError as err:
                context.abort(err.code(), err.details() or "")
                raise

        return handle

    def stop(self) -> None:
        self._server.stop(grace=None)
        self._channel.close()


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, proxy: _OldServer) -> None:
        self._proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        method = str(details.method)
        if method.endswith("/WriteEpochs"):
            return None  # no handler: grpcio answers UNIMPLEMENTED
        return grpc.unary_unary_rpc_method_handler(self._proxy.forward(method))


def test_a_server_without_write_epochs_gets_insert_epochs(server: Server, project: str) -> None:
    proxy = _OldServer(server.url)
    try:
        c = mlmeta.Client(proxy.url, project=project)
        _seed(c)
        with c.run("m", **KW) as run:
            for e in range(1, 31):
                run.log(e, {"loss": float(e)})
        assert getattr(run._transport, "unimplemented") is True
        assert run.stats["inserted"] == 30 and run.stats["refused"] == 0
        assert "InsertEpochs" in proxy.calls
        direct = mlmeta.Client(server.url, project=project)
        assert sorted(_metrics(direct, "m")) == list(range(1, 31))
        assert _status(direct, "m") == "FINISHED"
    finally:
        proxy.stop()
