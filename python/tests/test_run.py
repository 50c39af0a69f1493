"""`client.run`: the four endings, heartbeats, a server SIGKILL mid-run,
several processes at once, refused epochs, the per-log cost."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

import mlmeta
from conftest import Server

HERE = Path(__file__).resolve().parent
KW = dict(datablob="mnist-v1", template="cnn-small", model_class="KerasModel")


def _metrics(c: mlmeta.Client, model: str) -> Dict[int, Dict[str, float]]:
    epochs = list(c.epochs(model))
    got = {e.epoch: e.metrics for e in epochs}
    assert len(got) == len(epochs), "an epoch stored twice"
    return got


def _status(c: mlmeta.Client, model: str) -> str:
    return str(c.get_model(model).model.status)


def _trainer(server: Server, project: str, model: str, mode: str, n: int = 3) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, str(HERE / "trainer.py"), server.url, project, model, mode, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )


def test_finished_with_context_tags_and_resume(seeded: mlmeta.Client) -> None:
    with seeded.run("m", params={"lr": 1e-3, "seed": 1}, tags={"team": "vision"}, **KW) as run:
        assert run.current_epoch == 0
        assert seeded.get_model("m").model.status == "RUNNING"
        for e in range(1, 6):
            run.log(e, {"loss": 1.0 / e, "val_accuracy": 0.5 + e / 20}, steps_per_epoch=100)
    assert run.status == mlmeta.RunStatus.FINISHED
    m = seeded.get_model("m").model
    assert m.status == "FINISHED" and m.tags["team"] == "vision" and m.params == {"lr": 1e-3, "seed": 1}
    assert m.run_context is not None and m.run_context.pid == os.getpid()
    assert m.run_context.command_line and m.run_context.host
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    assert m.run_context.git_commit == head
    assert _metrics(seeded, "m") == {e: {"loss": 1.0 / e, "val_accuracy": 0.5 + e / 20} for e in range(1, 6)}
    assert [e.steps_per_epoch for e in seeded.epochs("m")] == [100] * 5
    # An ended run cannot be started again; a crashed trainer resumes a RUNNING one.
    with pytest.raises(mlmeta.FailedPrecondition, match="new model name"):
        seeded.run("m", params={"lr": 1e-3, "seed": 1}, **KW).start()
    seeded.put_model("r", **KW)
    seeded.start_run("r")
    seeded.insert_epochs("r", {1: {"loss": 1.0}, 2: {"loss": 0.5}})
    with seeded.run("r", **KW) as resumed:
        assert resumed.current_epoch == 2
        resumed.log(3, {"loss": 0.25})
    assert sorted(_metrics(seeded, "r")) == [1, 2, 3]


def test_failed_records_the_exception(seeded: mlmeta.Client) -> None:
    with pytest.raises(ValueError, match="loss is nan"):
        with seeded.run("m", **KW) as run:
            run.log(1, {"loss": 1.0})
            raise ValueError("loss is nan")
    m = seeded.get_model("m").model
    assert m.status == "FAILED"
    assert m.tags["error.type"] == "ValueError" and m.tags["error.message"] == "loss is nan"
    assert _metrics(seeded, "m") == {1: {"loss": 1.0}}


def test_keyboard_interrupt_is_killed(seeded: mlmeta.Client) -> None:
    with pytest.raises(KeyboardInterrupt):
        with seeded.run("m", **KW) as run:
            run.log(1, {"loss": 1.0})
            raise KeyboardInterrupt
    m = seeded.get_model("m").model
    assert m.status == "KILLED" and m.tags["error.type"] == "KeyboardInterrupt"
    assert sorted(_metrics(seeded, "m")) == [1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_kills_the_run(seeded: mlmeta.Client, server: Server, sig: signal.Signals) -> None:
    mode = "sigterm" if sig == signal.SIGTERM else "sigint"
    p = _trainer(server, seeded.project, "m", mode, n=4)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    p.send_signal(sig)
    p.wait(timeout=30)
    # Python dies of an uncaught KeyboardInterrupt by re-raising SIGINT.
    assert p.returncode == (128 + 15 if sig == signal.SIGTERM else -signal.SIGINT), p.stderr.read() if p.stderr else ""
    m = seeded.get_model("m").model
    assert m.status == "KILLED"
    assert m.tags["error.type"] == ("SIGTERM" if sig == signal.SIGTERM else "KeyboardInterrupt")
    assert sorted(_metrics(seeded, "m")) == [1, 2, 3, 4]


def test_run_without_with_block_ends_at_exit(seeded: mlmeta.Client, server: Server) -> None:
    p = _trainer(server, seeded.project, "bad", "uncaught", n=3)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 1 and "diverged at epoch 3" in err
    m = seeded.get_model("bad").model
    assert m.status == "FAILED" and m.tags["error.type"] == "RuntimeError"
    assert sorted(_metrics(seeded, "bad")) == [1, 2, 3]
    p = _trainer(server, seeded.project, "ok", "plain-exit", n=3)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert _status(seeded, "ok") == "FINISHED" and sorted(_metrics(seeded, "ok")) == [1, 2, 3]


def test_heartbeats_keep_a_silent_run_running(seeded: mlmeta.Client) -> None:
    # Control: without heartbeats, a run silent past its 2 s timeout is
    # marked CRASHED (the session server sweeps every 100 ms) ...
    with seeded.run("quiet", heartbeat_timeout_secs=2, heartbeat_interval=3600, **KW) as quiet:
        quiet.log(1, {"loss": 1.0})
        quiet.flush()
        with seeded.run("beating", heartbeat_timeout_secs=2, heartbeat_interval=0.3, **KW) as beating:
            beating.log(1, {"loss": 1.0})
            time.sleep(4.5)
            # ... while the one whose thread heartbeats stays RUNNING.
            assert _status(seeded, "beating") == "RUNNING"
            assert _status(seeded, "quiet") == "CRASHED"
            # An epoch revives the crashed one.
            quiet.log(2, {"loss": 0.5})
            quiet.flush()
            assert _status(seeded, "quiet") == "RUNNING"
    assert _status(seeded, "beating") == "FINISHED"
    assert _status(seeded, "quiet") == "FINISHED"
    causes = [c.cause for c in seeded.get_model("quiet").status_changes]
    assert "heartbeat timeout" in causes and "epoch after crash" in causes


def test_server_sigkill_mid_run_loses_nothing(own_server: Server, project: str) -> None:
    c = mlmeta.Client(own_server.url, project=project, timeout=5)
    c.put_datablob("mnist-v1", group="mnist")
    c.put_template("cnn-small", group="cnn")
    expected = {e: {"loss": 1.0 / e, "epoch": float(e)} for e in range(1, 301)}
    with c.run("m", max_backoff=0.5, **KW) as run:
        for e in range(1, 101):
            run.log(e, expected[e])
        run.flush()
        for e in range(101, 151):
            run.log(e, expected[e])
        own_server.kill()  # SIGKILL while the sender may be mid-call
        for e in range(151, 251):
            run.log(e, expected[e])  # never blocks: buffered while the server is down
        time.sleep(1.0)
        assert run.stats["waiting"] > 0
        own_server.start()
        for e in range(251, 301):
            run.log(e, expected[e])
    assert run.stats["refused"] == 0
    assert _metrics(c, "m") == expected
    assert _status(c, "m") == "FINISHED"


def test_flush_timeout_says_how_many_were_not_stored(own_server: Server, project: str) -> None:
    c = mlmeta.Client(own_server.url, project=project, timeout=2)
    c.put_datablob("mnist-v1", group="mnist")
    c.put_template("cnn-small", group="cnn")
    run = c.run("m", flush_timeout=1.0, max_backoff=0.2, **KW).start()
    run.log(1, {"loss": 1.0})
    run.flush()
    own_server.kill()
    for e in range(2, 7):
        run.log(e, {"loss": 1.0})
    with pytest.raises(mlmeta.EpochsNotStored) as err:
        run.flush(timeout=0.5)
    assert err.value.pending == 5
    started = time.monotonic()
    with pytest.raises(mlmeta.EpochsNotStored, match="5 of 6 logged epochs were not stored") as err2:
        run.end()
    assert err2.value.not_stored == 5 and time.monotonic() - started < 10
    own_server.start()
    assert sorted(_metrics(c, "m")) == [1]


def test_refused_epochs_are_reported_and_the_rest_stored(seeded: mlmeta.Client) -> None:
    with pytest.raises(mlmeta.EpochsNotStored, match="1 refused by the server") as err:
        with seeded.run("m", **KW) as run:
            for e in range(1, 201):  # logged faster than sent: batches of many epochs
                # An empty metric name breaks the name rule.
                run.log(e, {"": 1.0} if e == 100 else {"loss": 1.0 / e})
    assert err.value.not_stored == 1 and "metric" in err.value.reasons[0]
    assert sorted(_metrics(seeded, "m")) == [e for e in range(1, 201) if e != 100]
    assert _status(seeded, "m") == "FINISHED"
    with pytest.raises(ValueError):
        run.log(4, {"loss": "high"})  # type: ignore[dict-item]
    with pytest.raises(mlmeta.Error, match="started run"):
        run.log(4, {"loss": 1.0})


def _fork_worker(c: mlmeta.Client, model: str, n: int) -> None:
    # The Client was used in the parent before the fork: it must open its own channel here.
    with c.run(model, **KW) as run:
        for e in range(1, n + 1):
            run.log(e, {"loss": 1.0 / e, "proc": float(len(model))})


def test_several_processes_log_at_once(seeded: mlmeta.Client, server: Server) -> None:
    n = 300
    spawned = [_trainer(server, seeded.project, f"spawn-{i}", "many", n=n) for i in range(3)]
    assert list(seeded.list_datablobs())  # the parent's channel is open before forking
    ctx = multiprocessing.get_context("fork")
    forked = [ctx.Process(target=_fork_worker, args=(seeded, f"fork-{i}", n)) for i in range(3)]
    for p in forked:
        p.start()
    for p in forked:
        p.join(timeout=60)
        assert p.exitcode == 0
    for s in spawned:
        _, err = s.communicate(timeout=60)
        assert s.returncode == 0, err
    names = [f"spawn-{i}" for i in range(3)] + [f"fork-{i}" for i in range(3)]
    for name in names:
        assert _metrics(seeded, name) == {e: {"loss": 1.0 / e, "proc": float(len(name))} for e in range(1, n + 1)}
        assert _status(seeded, name) == "FINISHED"
    # The parent's client still works after the forks.
    assert len(list(seeded.list_models())) == 6


def test_log_from_several_threads(seeded: mlmeta.Client) -> None:
    with seeded.run("m", **KW) as run:
        def worker(base: int) -> None:
            for e in range(base, base + 500):
                run.log(e, {"loss": float(e)})

        threads = [threading.Thread(target=worker, args=(i * 1000,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run.flush()
        assert run.stats["waiting"] == 0 and run.stats["sent"] == 2000
    assert len(_metrics(seeded, "m")) == 2000


def test_log_cost_fifty_thousand_quick_logs_all_stored(seeded: mlmeta.Client) -> None:
    # Measures `run.log` (the figure in README, target 20 µs; `pytest -s`
    # prints it) without asserting on time: the machine is shared.
    n = 50_000
    metrics = {"loss": 0.25, "accuracy": 0.9, "val_loss": 0.3, "val_accuracy": 0.88}
    with seeded.run("m", max_buffer=n + 1, **KW) as run:
        started = time.perf_counter()
        for e in range(n):
            run.log(e, metrics)
        per_call = (time.perf_counter() - started) / n
    print(f"\nrun.log: {per_call * 1e6:.2f} µs per call (4 metrics, {n} calls, sender running)")
    assert seeded.get_model("m").model.epoch_count == n
    assert run.stats["inserted"] == n and run.stats["waiting"] == 0
