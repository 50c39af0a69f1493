"""The columnar form of epochs (`EpochColumns`) for `Run.log_many`: one
packed array per metric, so numpy arrays and lists go in with a few copies."""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from .v1 import mlmeta_pb2 as pb

try:  # numpy is optional: arrays are used directly when it is there
    import numpy as _np
except ImportError:  # pragma: no cover - exercised without numpy
    _np = None  # type: ignore[assignment]

#: Most epochs in one InsertEpochs request (the server's limit).
MAX_EPOCHS_PER_REQUEST = 100_000


def is_array(value: Any) -> bool:
    """Whether `value` is a numpy array (False without numpy)."""
    return _np is not None and isinstance(value, _np.ndarray)


def _numpy_column(values: Any, n: int) -> Optional[Tuple[Any, bytes]]:
    """(float64 array, presence bitmap) of a numpy array or masked array of
    `n` values; None when `values` is not a numpy array."""
    if _np is None or not isinstance(values, _np.ndarray):
        return None
    if values.shape != (n,):
        raise ValueError(f"must hold one value per epoch ({n}), got shape {values.shape}")
    mask = _np.ma.getmaskarray(values) if isinstance(values, _np.ma.MaskedArray) else None
    array = _np.asarray(_np.ma.getdata(values), dtype=_np.float64)
    if mask is None or not mask.any():
        return array, b""
    return array, _np.packbits(~mask, bitorder="little").tobytes()


def _list_column(values: Iterable[Optional[float]], n: int) -> Tuple[List[float], bytes]:
    """(values, presence bitmap) of a sequence where None means missing."""
    out: List[float] = []
    bits = bytearray((n + 7) // 8)
    missing = False
    for i, value in enumerate(values):
        if value is None:
            out.append(0.0)
            missing = True
        else:
            out.append(float(value))
            bits[i >> 3] |= 1 << (i & 7)
    if len(out) != n:
        raise ValueError(f"must hold one value per epoch ({n}), got {len(out)}")
    return out, (bytes(bits) if missing else b"")


def _counts(values: Optional[Sequence[Optional[int]]], n: int) -> Tuple[List[int], bytes]:
    """A step-count column: empty when `values` is None."""
    if values is None:
        return [], b""
    counts = [0 if v is None else int(v) for v in values]
    if len(counts) != n:
        raise ValueError(f"must hold one count per epoch ({n}), got {len(counts)}")
    if all(v is not None for v in values):
        return counts, b""
    bits = bytearray((n + 7) // 8)
    for i, v in enumerate(values):
        if v is not None:
            bits[i >> 3] |= 1 << (i & 7)
    return counts, bytes(bits)


def build(
    model: str,
    epochs: Any,
    metrics: Mapping[str, Any],
    steps_per_epoch: Optional[Sequence[Optional[int]]] = None,
    validation_steps_per_epoch: Optional[Sequence[Optional[int]]] = None,
) -> pb.EpochColumns:
    """The column set of `epochs` (ints or an integer array) and `metrics`
    (name -> one value per epoch: a numpy array, a masked array, or a
    sequence where None means missing). Raises ValueError naming the
    metric whose length differs."""
    columns = pb.EpochColumns(model_name=model)
    columns.epoch_nums.extend(int(e) for e in epochs)
    n = len(columns.epoch_nums)
    for name, values in metrics.items():
        column = columns.metrics.add(name=name)
        try:
            from_numpy = _numpy_column(values, n)
            if from_numpy is not None:
                column.values.extend(from_numpy[0])
                column.present = from_numpy[1]
            else:
                values_list, present = _list_column(values, n)
                column.values.extend(values_list)
                column.present = present
        except (TypeError, ValueError) as err:
            raise ValueError(f"metric {name!r}: {err}") from None
    for field, given in (
        ("steps_per_epoch", steps_per_epoch),
        ("validation_steps_per_epoch", validation_steps_per_epoch),
    ):
        try:
            counts, present = _counts(given, n)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{field}: {err}") from None
        getattr(columns, field).extend(counts)
        setattr(columns, field + "_present", present)
    return columns


def _has(bitmap: bytes, i: int) -> bool:
    return not bitmap or bool(bitmap[i >> 3] >> (i & 7) & 1)


def to_rows(columns: pb.EpochColumns) -> List[pb.Epoch]:
    """The same epochs as rows (for a server that predates columns)."""
    rows = []
    for i, num in enumerate(columns.epoch_nums):
        epoch = pb.Epoch(model_name=columns.model_name, epoch_num=num)
        for column in columns.metrics:
            if _has(column.present, i):
                epoch.metrics[column.name] = column.values[i]
        if columns.steps_per_epoch and _has(columns.steps_per_epoch_present, i):
            epoch.steps_per_epoch = columns.steps_per_epoch[i]
        if columns.validation_steps_per_epoch and _has(columns.validation_steps_per_epoch_present, i):
            epoch.validation_steps_per_epoch = columns.validation_steps_per_epoch[i]
        rows.append(epoch)
    return rows
