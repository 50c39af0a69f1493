"""A trainer process for the tests: `python trainer.py URL PROJECT MODEL MODE [N]`.

Modes:
- `sigterm`: logs N epochs in a with-block, prints "ready", then waits (the
  test sends SIGTERM);
- `sigint`: the same, for Ctrl-C (SIGINT → KeyboardInterrupt);
- `uncaught`: `run.start()` without a with-block, logs N epochs, then an
  uncaught exception ends the interpreter (atexit ends the run);
- `plain-exit`: `run.start()`, logs N epochs, returns normally;
- `many`: a with-block logging N epochs as fast as it can (several of these
  run at once).
"""

from __future__ import annotations

import signal
import sys
import time

import mlmeta


def main() -> None:
    url, project, model, mode = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    client = mlmeta.Client(url, project=project)
    run = client.run(model, datablob="mnist-v1", template="cnn-small", model_class="K", params={"mode": mode})
    if mode in ("sigterm", "sigint"):
        # A process started in the background of a non-interactive shell
        # inherits SIGINT ignored, and Python then installs no
        # KeyboardInterrupt handler: restore Ctrl-C's usual meaning.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with run:
            for e in range(1, n + 1):
                run.log(e, {"loss": 1.0 / e})
            run.flush()
            print("ready", flush=True)
            time.sleep(60)
    elif mode in ("uncaught", "plain-exit"):
        run.start()
        for e in range(1, n + 1):
            run.log(e, {"loss": 1.0 / e})
        if mode == "uncaught":
            raise RuntimeError("diverged at epoch 3")
    elif mode == "many":
        with run:
            for e in range(1, n + 1):
                run.log(e, {"loss": 1.0 / e, "proc": float(len(model))})
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
