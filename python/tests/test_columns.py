"""`Run.log_many`: the columnar form from lists (None: missing) and numpy
arrays (masked: missing), NaN and ±inf exactly, duplicates skipped, the
same stored epochs and summaries as `log`, bad input refused."""

from __future__ import annotations

import math
from typing import Any, Dict, List

import pytest

import mlmeta
from mlmeta import _columns

KW = dict(datablob="mnist-v1", template="cnn-small", model_class="KerasModel")


def _stored(c: mlmeta.Client, model: str) -> Dict[int, Dict[str, float]]:
    return {e.epoch: e.metrics for e in c.epochs(model)}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_lists_with_missing_values_nan_and_infinities(seeded: mlmeta.Client) -> None:
    with seeded.run("cols-list", **KW) as run:
        got = run.log_many(
            [1, 2, 3, 4],
            {
                "loss": [0.5, float("nan"), float("inf"), None],
                "acc": [None, None, -math.inf, 0.25],
            },
            steps_per_epoch=[100, None, 300, 400],
        )
        assert got == (4, 0)
        assert run.log_many([4, 5, 5], {"loss": [9.0, 1.0, 2.0]}) == (1, 2)
    stored = _stored(seeded, "cols-list")
    assert stored[1] == {"loss": 0.5}
    assert math.isnan(stored[2]["loss"]) and list(stored[2]) == ["loss"]
    assert stored[3] == {"loss": math.inf, "acc": -math.inf}
    assert stored[4] == {"acc": 0.25}
    assert stored[5] == {"loss": 1.0}, "the first occurrence wins"
    steps = {e.epoch: e.steps_per_epoch for e in seeded.epochs("cols-list")}
    assert steps == {1: 100, 2: None, 3: 300, 4: 400, 5: None}


def test_numpy_arrays_and_masked_values_match_log(seeded: mlmeta.Client) -> None:
    np = pytest.importorskip("numpy")
    n = 37
    loss = np.linspace(2.0, 0.1, n)
    loss[5] = np.nan
    acc = np.ma.masked_array(np.linspace(0.1, 0.9, n), mask=[i % 3 == 0 for i in range(n)])
    with seeded.run("cols-np", **KW) as run:
        assert run.log_many(np.arange(n), {"loss": loss, "acc": acc}) == (n, 0)
    with seeded.run("rows-np", **KW) as run:
        for i in range(n):
            metrics = {"loss": float(loss[i])}
            if i % 3 != 0:
                metrics["acc"] = float(acc.data[i])
            run.log(i, metrics)
    cols, rows = _stored(seeded, "cols-np"), _stored(seeded, "rows-np")
    assert sorted(cols) == sorted(rows) == list(range(n))
    for i in range(n):
        assert cols[i].keys() == rows[i].keys()
        assert all(_same(cols[i][k], rows[i][k]) for k in rows[i])

    def summaries(model: str) -> List[Any]:
        found = seeded.get_model(model).metrics
        return [(k, s.count, s.nan_count, s.min_value, s.min_epoch, s.max_value, s.last_value) for k, s in sorted(found.items())]

    assert summaries("cols-np") == summaries("rows-np")


def test_bad_input_is_refused_naming_the_field(seeded: mlmeta.Client) -> None:
    with seeded.run("cols-bad", **KW) as run:
        with pytest.raises(ValueError, match="metric 'loss': must hold one value per epoch \\(3\\), got 2"):
            run.log_many([1, 2, 3], {"loss": [1.0, 2.0]})
        with pytest.raises(mlmeta.InvalidArgument, match=r"columns\[0\]\.epoch_nums\[1\]: must be >= 0"):
            run.log_many([1, -2], {"loss": [1.0, 2.0]})
        with pytest.raises(mlmeta.InvalidArgument, match=r"columns\[0\]\.metrics\[0\]\.name"):
            run.log_many([1, 2], {"": [1.0, 2.0]})
    assert _stored(seeded, "cols-bad") == {}


def test_columns_and_rows_round_trip_offline() -> None:
    columns = _columns.build("m", [7, 8, 9], {"a": [1.0, None, 3.0], "b": [None, None, 2.0]}, [1, 2, 3])
    assert columns.metrics[0].present == bytes([0b101])
    assert columns.metrics[1].present == bytes([0b100])
    assert columns.steps_per_epoch_present == b""
    rows = _columns.to_rows(columns)
    got: List[Any] = [(r.epoch_num, dict(r.metrics), r.steps_per_epoch) for r in rows]
    assert got == [(7, {"a": 1.0}, 1), (8, {}, 2), (9, {"a": 3.0, "b": 2.0}, 3)]
