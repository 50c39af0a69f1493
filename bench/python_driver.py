#!/usr/bin/env python3
"""What Python trainers see: the mlmeta Python package against a server.

    python3 bench/python_driver.py --server http://127.0.0.1:50051 [--models 100 --epochs 1000]

Runs against a running server (any backend; start one with
`mlmeta-server --listen ... --database-url ...`) and prints:

- bulk, columnar: `run.log_many` once per model (numpy arrays when numpy is
  installed, else lists), values/s and p50 per call;
- bulk, rows: the same epochs as one InsertEpochs of `Epoch` messages per
  model (what a client without columns sends), values/s and p50;
- stream: one epoch per call (`run.log` then `run.flush`, so each call
  waits for the server), epochs/s and p50.

Each figure is one run; the machine's load shows in the numbers (take the
median of several runs). Needs the package importable (`pip install -e
python` or PYTHONPATH=python/src).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Dict, List

import mlmeta
from mlmeta.v1 import mlmeta_pb2 as pb

METRICS = ["loss", "acc", "val_loss", "val_acc", "lr", "grad_norm", "top5", "f1"]
KW = dict(datablob="bench-data", template="bench-tmpl", model_class="Net")


def values(model: int, epochs: int) -> Dict[str, List[float]]:
    return {m: [1.0 / (i + 1) + j + model * 1e-3 for i in range(epochs)] for j, m in enumerate(METRICS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--stream-epochs", type=int, default=1000)
    args = parser.parse_args()
    client = mlmeta.Client(args.server, project=f"pybench{uuid.uuid4().hex[:8]}")
    client.put_datablob("bench-data", group="g", hyperparams={})
    client.put_template("bench-tmpl", group="g", hyperparams={})
    try:
        import numpy as np

        as_array = np.asarray
        kind = "numpy"
    except ImportError:
        as_array = list  # type: ignore[assignment]
        kind = "lists"
    nums = list(range(args.epochs))
    total_values = args.models * args.epochs * len(METRICS)

    # Columnar: log_many, one call per model.
    runs = [client.run(f"col-{m}", **KW).start() for m in range(args.models)]
    data = [{k: as_array(v) for k, v in values(m, args.epochs).items()} for m in range(args.models)]
    took: List[float] = []
    start = time.perf_counter()
    for run, metrics in zip(runs, data):
        t = time.perf_counter()
        run.log_many(as_array(nums), metrics)
        took.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    for run in runs:
        run.end()
    print(f"bulk columnar ({kind}): {total_values / elapsed:,.0f} values/s, p50 {statistics.median(took) * 1e3:.2f} ms per call")

    # Rows: the same epochs as Epoch messages, one InsertEpochs per model.
    runs = [client.run(f"row-{m}", **KW).start() for m in range(args.models)]
    lists = [values(m, args.epochs) for m in range(args.models)]
    took = []
    start = time.perf_counter()
    for run, metrics in zip(runs, lists):
        t = time.perf_counter()
        epochs = [
            pb.Epoch(model_name=run.name, epoch_num=i, metrics={k: v[i] for k, v in metrics.items()}) for i in nums
        ]
        client._call("InsertEpochs", pb.InsertEpochsRequest(epochs=epochs, project=client.project))
        took.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    for run in runs:
        run.end()
    print(f"bulk rows: {total_values / elapsed:,.0f} values/s, p50 {statistics.median(took) * 1e3:.2f} ms per call")

    # Stream: one epoch per call, each waited for.
    run = client.run("stream", **KW).start()
    took = []
    start = time.perf_counter()
    for i in range(args.stream_epochs):
        t = time.perf_counter()
        run.log(i, {m: 1.0 / (i + 1) + j for j, m in enumerate(METRICS)})
        run.flush()
        took.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    run.end()
    print(f"stream (log + flush per epoch): {args.stream_epochs / elapsed:,.0f} epochs/s, p50 {statistics.median(took) * 1e3:.2f} ms")
    client.close()


if __name__ == "__main__":
    main()
