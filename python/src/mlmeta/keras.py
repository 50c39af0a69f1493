"""`MlmetaCallback`: record a Keras 3 `fit` as an mlmeta run (extra `mlmeta[keras]`).

    cb = MlmetaCallback(client, model="cnn-1", datablob="mnist-v1", template="cnn-small")
    with cb:                                   # optional, but see "A failed fit" below
        model.fit(x, y, epochs=10, callbacks=[cb], initial_epoch=cb.current_epoch)

Hooks (Keras 3, `keras/src/callbacks/callback.py`): `on_train_begin` starts
the run, `on_epoch_end(epoch, logs)` logs the numeric entries of `logs`
(`loss`, `accuracy`, `val_loss`, …) and `on_train_end` ends it FINISHED
(also after early stopping).

Epoch numbers: Keras passes a 0-based `epoch` and prints it as
``Epoch {epoch + 1}/{epochs}``; mlmeta stores the printed number, so epoch
1 is the first. A restarted trainer resumes with
``fit(..., initial_epoch=cb.current_epoch)`` (the highest epoch stored,
known after `start()` or on entering the ``with`` block; 0 for a new run).

A failed fit: Keras 3 calls no hook when `fit` raises (`on_train_end`
only runs when training finished). Used as a context manager around
`fit`, the callback ends the run FAILED (the exception's type and
message in the tags ``error.type`` / ``error.message``) or KILLED
(KeyboardInterrupt, SIGTERM). Without the ``with``, a run left open ends
when the interpreter exits: FAILED (after an uncaught exception, or when
`fit` never reached `on_train_end`), KILLED after Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Type

from ._run import Run
from ._types import RunStatus

if TYPE_CHECKING:
    from ._client import Client

    _Base = object
else:
    try:  # Subclass Keras' base when it is installed (duck typing also works).
        from keras.callbacks import Callback as _Base
    except ImportError:  # pragma: no cover - exercised without keras
        _Base = object


def numeric_logs(logs: Optional[Mapping[str, Any]]) -> Dict[str, float]:
    """The entries of Keras' `logs` that are numbers (NaN and inf included)."""
    out: Dict[str, float] = {}
    for key, value in (logs or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


class MlmetaCallback(_Base):
    """A Keras callback recording `fit` as the run of model `model`.

    The model is put with `datablob`, `template`, `model_class` and
    `params` (idempotent) and tagged with `tags`; `run_options` go to
    `Client.run` (heartbeat interval, flush timeout, …).
    """

    def __init__(
        self,
        client: "Client",
        model: str,
        *,
        datablob: str,
        template: str,
        model_class: str = "KerasModel",
        params: Optional[Mapping[str, Any]] = None,
        tags: Optional[Mapping[str, str]] = None,
        **run_options: Any,
    ) -> None:
        super().__init__()
        self.model_name = model
        self.run = client.run(
            model,
            datablob=datablob,
            template=template,
            model_class=model_class,
            params=params,
            tags=tags,
            status_at_exit=RunStatus.FAILED,
            **run_options,
        )
        self._steps: Optional[int] = None

    @property
    def current_epoch(self) -> int:
        """The highest epoch stored when the run started (`initial_epoch` for a resumed fit)."""
        return self.run.current_epoch

    def start(self) -> "MlmetaCallback":
        self.run.start()
        return self

    def __enter__(self) -> "MlmetaCallback":
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.run.__exit__(exc_type, exc, tb)

    # Keras hooks --------------------------------------------------------

    def set_params(self, params: Mapping[str, Any]) -> None:
        self.params = params  # what keras.callbacks.Callback.set_params does
        steps = params.get("steps") if params else None
        self._steps = int(steps) if isinstance(steps, (int, float)) and not math.isnan(steps) else None

    def on_train_begin(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        self.run.start()

    def on_epoch_end(self, epoch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        self.run.log(epoch + 1, numeric_logs(logs), steps_per_epoch=self._steps)

    def on_train_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        self.run.end(RunStatus.FINISHED)


__all__ = ["MlmetaCallback", "numeric_logs", "Run"]
