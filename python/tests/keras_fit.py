"""Two real Keras 3 fits recorded by MlmetaCallback: `python keras_fit.py URL PROJECT`.

`real` finishes its 3 epochs; `real-failed` raises in epoch 2 inside a
`with` block around `fit` (Keras calls no hook then).
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mlmeta  # noqa: E402
from mlmeta.keras import MlmetaCallback  # noqa: E402


def build() -> Any:
    m = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return m


class Boom(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == 1:
            raise RuntimeError("boom")


def main() -> None:
    url, project = sys.argv[1:3]
    client = mlmeta.Client(url, project=project)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")

    cb = MlmetaCallback(client, model="real", datablob="mnist-v1", template="cnn-small")
    assert isinstance(cb, keras.callbacks.Callback)
    build().fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[cb])

    cb2 = MlmetaCallback(client, model="real-failed", datablob="mnist-v1", template="cnn-small")
    try:
        with cb2:
            build().fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb2, Boom()])
    except RuntimeError as err:
        assert str(err) == "boom"
    else:
        raise AssertionError("fit did not raise")


if __name__ == "__main__":
    main()
