"""`client.watch_epochs`: history then live with no gap, a cursor that
resumes exactly after what was seen, and a watch that survives a server
restart by itself (nothing missed, nothing twice)."""

from __future__ import annotations

import queue
import threading
from typing import List, Tuple

import mlmeta
from conftest import Server
from test_run import KW


def _reader(watch: mlmeta.EpochWatch) -> "queue.Queue[Tuple[str, int]]":
    got: "queue.Queue[Tuple[str, int]]" = queue.Queue()

    def run() -> None:
        for e in watch:
            got.put((e.model, e.epoch))

    threading.Thread(target=run, daemon=True).start()
    return got


def _take(got: "queue.Queue[Tuple[str, int]]", n: int) -> List[Tuple[str, int]]:
    return [got.get(timeout=30) for _ in range(n)]


def test_history_then_live_and_resume_from_the_cursor(seeded: mlmeta.Client) -> None:
    seeded.put_model("m", **KW)
    seeded.insert_epochs("m", {e: {"loss": 1.0 / e, "acc": 0.5} for e in range(1, 4)})
    with seeded.watch_epochs("m", history=True, metrics=["loss"]) as watch:
        got = _reader(watch)
        assert _take(got, 3) == [("m", 1), ("m", 2), ("m", 3)]
        seeded.insert_epochs("m", {4: {"loss": 0.2}})
        assert _take(got, 1) == [("m", 4)]
        assert watch.caught_up and watch.cursor
        cursor = watch.cursor
    seeded.insert_epochs("m", {5: {"loss": 0.1}, 2: {"loss": 9.0}})  # 2 is a duplicate: skipped
    with seeded.watch_epochs("m", cursor=cursor) as resumed:
        got = _reader(resumed)
        assert _take(got, 1) == [("m", 5)]
        seeded.insert_epochs("m", {6: {"loss": 0.05}})
        assert _take(got, 1) == [("m", 6)]
        assert got.empty()


def test_a_watch_survives_a_server_restart(own_server: Server, project: str) -> None:
    c = mlmeta.Client(own_server.url, project=project)
    c.put_datablob("mnist-v1", group="mnist")
    c.put_template("cnn-small", group="cnn")
    c.put_model("m", **KW)
    with c.watch_epochs("m") as watch:
        got = _reader(watch)
        c.insert_epochs("m", {1: {"loss": 1.0}})
        assert _take(got, 1) == [("m", 1)]
        own_server.kill()
        own_server.start()
        c.insert_epochs("m", {2: {"loss": 0.5}, 3: {"loss": 0.25}})
        assert _take(got, 2) == [("m", 2), ("m", 3)]
        assert got.empty()


def test_watch_models_reports_each_kind_of_change(seeded: mlmeta.Client) -> None:
    events: "queue.Queue[mlmeta.ModelEvent]" = queue.Queue()
    with seeded.watch_models(["w"]) as watch:

        def run() -> None:
            for event in watch:
                events.put(event)

        threading.Thread(target=run, daemon=True).start()

        def changes_until(kind: str) -> List[str]:
            seen: List[str] = []
            while kind not in seen:
                event = events.get(timeout=30)
                assert event.model_name == "w"
                seen.extend(event.changes)
            return seen

        seeded.put_model("w", **KW)
        assert "created" in changes_until("created")
        seeded.start_run("w")
        seeded.end_run("w", "FINISHED")
        changes_until("status")
        seeded.set_tags("w", {"team": "a"})
        changes_until("tags")
        seeded.delete("w")
        changes_until("deleted")
        assert watch.cursor
        cursor = watch.cursor
    seeded.restore("w")
    with seeded.watch_models(["w"], cursor=cursor) as resumed:
        event = next(resumed)
        assert event.changes == ("restored",) and event.model is not None
        assert event.model.status == mlmeta.RunStatus.FINISHED
