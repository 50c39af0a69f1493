"""`MlmetaLogger`: record a Lightning `Trainer.fit` as an mlmeta run (extra `mlmeta[lightning]`).

    logger = MlmetaLogger(client, model="resnet-1", datablob="cifar10", template="resnet18")
    trainer = lightning.pytorch.Trainer(logger=logger, max_epochs=10)
    trainer.fit(module, datamodule)

Works with `lightning.pytorch` and with the older `pytorch_lightning`
package (whichever is installed; neither is a dependency of mlmeta).

How Lightning drives a logger (2.x: `trainer/call.py`,
`trainer/connectors/logger_connector`): `experiment` is touched in the
setup hook; `log_hyperparams(hparams)` follows (before any metric);
`log_metrics(metrics, step)` gets the metrics of each logging step with
``metrics["epoch"] = trainer.current_epoch`` (0-based), each call followed
by `save()`; `finalize("success")` ends a finished fit, and
`finalize("failed")` is called for *any* exception, KeyboardInterrupt
included, from inside the ``except`` block.

So this logger: starts the run (puts the model with `params` updated by
the hyperparameters) at the first metric; gathers the metrics of one
epoch (the last value of each name wins) and logs them as one epoch,
numbered ``current_epoch + 1`` (the first epoch is 1), when the epoch
changes and at `finalize`; ends the run FINISHED on "success", KILLED when
`finalize("failed")` runs for a KeyboardInterrupt, FAILED otherwise (the
exception's type and message in the tags ``error.type`` /
``error.message``). Only rank 0 records anything.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, TypeVar, Union

from ._run import Run
from ._types import RunStatus

_F = TypeVar("_F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from ._client import Client

    _Base = object

    def rank_zero_only(fn: _F) -> _F:
        return fn

else:
    try:
        from lightning.pytorch.loggers import Logger as _Base
        from lightning.pytorch.utilities import rank_zero_only
    except ImportError:
        try:
            from pytorch_lightning.loggers import Logger as _Base
            from pytorch_lightning.utilities import rank_zero_only
        except ImportError:  # no Lightning: a plain class with the same hooks
            _Base = object

            def rank_zero_only(fn: _F) -> _F:
                return fn


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


class MlmetaLogger(_Base):
    """A Lightning logger recording the fit as the run of model `model`."""

    def __init__(
        self,
        client: "Client",
        model: str,
        *,
        datablob: str,
        template: str,
        model_class: str = "LightningModule",
        params: Optional[Mapping[str, Any]] = None,
        tags: Optional[Mapping[str, str]] = None,
        **run_options: Any,
    ) -> None:
        super().__init__()
        self._client = client
        self._model = model
        self._run_args: Dict[str, Any] = dict(
            datablob=datablob, template=template, model_class=model_class, tags=tags, **run_options
        )
        self._params: Dict[str, Any] = dict(params or {})
        self._run: Optional[Run] = None
        self._epoch: Optional[int] = None
        self._pending: Dict[str, float] = {}

    # Lightning's abstract members ---------------------------------------

    @property
    def name(self) -> str:
        return "mlmeta"

    @property
    def version(self) -> str:
        return self._model

    @property
    def experiment(self) -> "MlmetaLogger":
        """This logger (the run starts at the first metric, after the hyperparameters)."""
        return self

    @property
    def run(self) -> Run:
        """The run, started on first use."""
        if self._run is None:
            self._run = self._client.run(self._model, params=self._params, **self._run_args).start()
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: Union[Mapping[str, Any], Namespace], *args: Any, **kwargs: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        if self._run is None:
            self._params.update({str(k): _jsonable(v) for k, v in values.items()})
        else:  # the model's params are fixed once put: keep late ones as tags
            self._client.set_tags(self._model, {f"hparam.{k}": str(v)[:4096] for k, v in values.items()})

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        values = dict(metrics)
        epoch = values.pop("epoch", None)
        e = int(epoch) if epoch is not None else (self._epoch if self._epoch is not None else 0)
        if self._epoch is not None and e != self._epoch:
            self._emit()
        self._epoch = e
        for k, v in values.items():
            try:
                self._pending[str(k)] = float(v)
            except (TypeError, ValueError):
                continue

    def _emit(self) -> None:
        if self._pending and self._epoch is not None:
            run = self.run
            if not run.status:
                run.log(self._epoch + 1, self._pending)
        self._pending = {}

    @rank_zero_only
    def save(self) -> None:
        """Nothing to do: epochs are sent by the run's thread."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self._emit()
        run = self.run
        if run.status is not None:
            return
        if status == "success":
            run.end(RunStatus.FINISHED)
            return
        exc = sys.exc_info()[1]
        run.__exit__(type(exc) if exc else RuntimeError, exc or RuntimeError(f"Lightning: {status}"), None)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Records the best checkpoint's path as the artifact ``checkpoint``."""
        path = getattr(checkpoint_callback, "best_model_path", "") or getattr(
            checkpoint_callback, "last_model_path", ""
        )
        if path:
            import os

            self.run  # the model must exist
            self._client.put_artifact(
                self._model, "checkpoint", "file://" + os.path.abspath(path), overwrite=True
            )

    @property
    def save_dir(self) -> Optional[str]:
        return None


__all__ = ["MlmetaLogger"]
