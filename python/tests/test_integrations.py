"""The Keras callback and the Lightning logger.

Both are driven here by the exact hook sequence their framework uses
(written down from the sources named in `mlmeta.keras` / `mlmeta.lightning`),
and the Keras callback also by a real Keras 3 `fit` on the JAX CPU
backend when keras is installed (CI installs it; Lightning pulls in torch
and CUDA packages, gigabytes, so it is only replayed).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any, Dict

import pytest

import mlmeta
from conftest import Server
from mlmeta.keras import MlmetaCallback
from mlmeta.lightning import MlmetaLogger

HERE = Path(__file__).resolve().parent
KW: Dict[str, Any] = dict(datablob="mnist-v1", template="cnn-small")


def _epochs(c: mlmeta.Client, model: str) -> Dict[int, Dict[str, float]]:
    return {e.epoch: e.metrics for e in c.epochs(model)}


def _model(c: mlmeta.Client, name: str) -> mlmeta.Model:
    return c.get_model(name).model


# --- Keras: the hook sequence of keras/src/backend/jax/trainer.py fit() ---


def _keras_fit(cb: MlmetaCallback, epochs: int, initial_epoch: int = 0, fail_at: int = -1) -> None:
    """What Keras 3 calls on a callback during `fit` (no hook at all after a raise)."""
    cb.set_params({"verbose": "auto", "epochs": epochs, "steps": 5})
    cb.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        cb.on_epoch_begin(epoch) if hasattr(cb, "on_epoch_begin") else None
        if epoch == fail_at:
            raise FloatingPointError("loss became nan")
        logs = {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + epoch / 10, "val_loss": 1.5 / (epoch + 1)}
        cb.on_epoch_end(epoch, logs)
    cb.on_train_end({"loss": 1.0 / epochs})


def test_keras_hook_sequence_finished_and_resumed(seeded: mlmeta.Client) -> None:
    cb = MlmetaCallback(seeded, model="k", params={"lr": 0.01}, tags={"fw": "keras"}, **KW)
    _keras_fit(cb, epochs=3)
    m = _model(seeded, "k")
    assert m.status == "FINISHED" and m.model_class == "KerasModel" and m.params == {"lr": 0.01}
    assert m.tags["fw"] == "keras"
    got = _epochs(seeded, "k")
    assert sorted(got) == [1, 2, 3]  # Keras prints "Epoch 1/3" for epoch index 0
    assert got[1] == {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.5}
    assert [e.steps_per_epoch for e in seeded.epochs("k")] == [5, 5, 5]

    # A crashed trainer (the run left RUNNING) resumes where it stopped.
    seeded.put_model("r", model_class="KerasModel", **KW)
    seeded.start_run("r")
    seeded.insert_epochs("r", {1: {"loss": 1.0}, 2: {"loss": 0.5}})
    cb2 = MlmetaCallback(seeded, model="r", **KW)
    with cb2:
        assert cb2.current_epoch == 2
        _keras_fit(cb2, epochs=4, initial_epoch=cb2.current_epoch)
    assert sorted(_epochs(seeded, "r")) == [1, 2, 3, 4] and _model(seeded, "r").status == "FINISHED"


def test_keras_failed_fit_in_a_with_block_is_failed(seeded: mlmeta.Client) -> None:
    cb = MlmetaCallback(seeded, model="k", **KW)
    with pytest.raises(FloatingPointError):
        with cb:
            _keras_fit(cb, epochs=5, fail_at=2)
    m = _model(seeded, "k")
    assert m.status == "FAILED" and m.tags["error.type"] == "FloatingPointError"
    assert m.tags["error.message"] == "loss became nan"
    assert sorted(_epochs(seeded, "k")) == [1, 2]


def test_keras_failed_fit_without_with_block_fails_at_exit(seeded: mlmeta.Client, server: Server) -> None:
    script = (
        "import sys; sys.path.insert(0, {here!r})\n"
        "import mlmeta\n"
        "from mlmeta.keras import MlmetaCallback\n"
        "from test_integrations import _keras_fit\n"
        "c = mlmeta.Client({url!r}, project={project!r})\n"
        "_keras_fit(MlmetaCallback(c, model={model!r}, datablob='mnist-v1', template='cnn-small'), 5, fail_at={fail})\n"
    )
    for model, fail in (("uncaught", 2), ("swallowed", 1)):
        code = script.format(here=str(HERE), url=server.url, project=seeded.project, model=model, fail=fail)
        if model == "swallowed":  # the program catches the error and exits normally
            code = code.replace("_keras_fit(", "try:\n    _keras_fit(").rstrip() + "\nexcept FloatingPointError:\n    pass\n"
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert p.returncode == (1 if model == "uncaught" else 0), p.stderr
        m = _model(seeded, model)
        assert m.status == "FAILED", (model, p.stderr)
        assert sorted(_epochs(seeded, model)) == list(range(1, fail + 1))
    assert _model(seeded, "uncaught").tags["error.type"] == "FloatingPointError"
    assert _model(seeded, "swallowed").tags["error.message"] == "the process exited before the run ended"


# --- Lightning: the sequence of trainer/call.py and the logger connector ---


def _lightning_fit(logger: MlmetaLogger, epochs: int, fail: BaseException | None = None) -> None:
    """What Lightning 2.x calls on a logger during `Trainer.fit`."""
    try:
        _ = logger.experiment  # _call_setup_hook
        logger.log_hyperparams(Namespace(lr=0.02, layers=[64, 64], act="relu"))  # _log_hyperparams
        step = 0
        for epoch in range(epochs):
            for _batch in range(3):
                step += 1
                logger.log_metrics({"train_loss_step": 1.0 / step, "epoch": epoch}, step=step)
                logger.save()
            if fail is not None and epoch == 1:
                raise fail
            logger.log_metrics({"val_loss": 2.0 / (epoch + 1), "val_acc": math.nan if epoch == 0 else 0.9, "epoch": epoch}, step=step)
            logger.save()
            logger.log_metrics({"train_loss_epoch": 1.0 / (epoch + 1), "epoch": epoch}, step=step)
            logger.save()
        logger.finalize("success")  # _call_teardown_hook
    except BaseException:
        logger.finalize("failed")  # _interrupt, for any exception
        raise


def test_lightning_hook_sequence_finished(seeded: mlmeta.Client) -> None:
    logger = MlmetaLogger(seeded, model="l", params={"seed": 3}, **KW)
    assert logger.name == "mlmeta" and logger.version == "l"
    _lightning_fit(logger, epochs=3)
    m = _model(seeded, "l")
    assert m.status == "FINISHED" and m.model_class == "LightningModule"
    assert m.params == {"seed": 3, "lr": 0.02, "layers": [64, 64], "act": "relu"}
    got = _epochs(seeded, "l")
    assert sorted(got) == [1, 2, 3]
    assert got[1]["train_loss_step"] == 1.0 / 3 and got[1]["train_loss_epoch"] == 1.0
    assert math.isnan(got[1]["val_acc"]) and got[3]["val_loss"] == 2.0 / 3
    assert set(got[2]) == {"train_loss_step", "val_loss", "val_acc", "train_loss_epoch"}


@pytest.mark.parametrize("exc,status", [(ValueError("bad batch"), "FAILED"), (KeyboardInterrupt(), "KILLED")])
def test_lightning_failed_and_interrupted(seeded: mlmeta.Client, exc: BaseException, status: str) -> None:
    logger = MlmetaLogger(seeded, model="l", **KW)
    with pytest.raises(type(exc)):
        _lightning_fit(logger, epochs=3, fail=exc)
    m = _model(seeded, "l")
    assert m.status == status
    assert m.tags["error.type"] == type(exc).__name__
    # Epoch 1 complete, epoch 2's step metrics (logged before the failure) kept too.
    got = _epochs(seeded, "l")
    assert sorted(got) == [1, 2] and set(got[2]) == {"train_loss_step"}


def test_lightning_checkpoint_artifact(seeded: mlmeta.Client, tmp_path: Path) -> None:
    logger = MlmetaLogger(seeded, model="l", **KW)
    ckpt = tmp_path / "epoch=1.ckpt"
    logger.after_save_checkpoint(Namespace(best_model_path=str(ckpt)))
    logger.finalize("success")
    [a] = seeded.list_artifacts("l")
    assert a.name == "checkpoint" and a.uri == f"file://{ckpt}"


# --- a real Keras 3 fit (JAX CPU backend) ---
#
# In a child process (keras_fit.py), so that JAX's threads never live in the
# pytest process, which forks in test_run.py.


def test_real_keras_fit(seeded: mlmeta.Client, server: Server) -> None:
    import importlib.util

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (pip install keras 'jax[cpu]')")
    env = dict(os.environ, KERAS_BACKEND=os.environ.get("KERAS_BACKEND", "jax"))
    p = subprocess.run(
        [sys.executable, str(HERE / "keras_fit.py"), server.url, seeded.project],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    m = _model(seeded, "real")
    assert m.status == "FINISHED"
    got = _epochs(seeded, "real")
    assert sorted(got) == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(got[1])
    assert [e.steps_per_epoch for e in seeded.epochs("real")] == [3, 3, 3]
    assert seeded.best("val_accuracy", "max", names="real")[0].model.name == "real"
    failed = _model(seeded, "real-failed")
    assert failed.status == "FAILED" and failed.tags["error.type"] == "RuntimeError"
    assert sorted(_epochs(seeded, "real-failed")) == [1, 2]
