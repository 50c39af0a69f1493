"""Every Client method against a real server, on both backends."""

from __future__ import annotations

import math
import struct

import pytest

import mlmeta


def _model(c: mlmeta.Client, name: str, **params: object) -> mlmeta.Model:
    return c.put_model(name, datablob="mnist-v1", template="cnn-small", model_class="KerasModel", params=params)


def test_puts_are_idempotent_and_typed(client: mlmeta.Client) -> None:
    d = client.put_datablob("mnist-v1", group="mnist", hyperparams={"batch_size": 128, "aug": [1, 2.5]})
    assert isinstance(d, mlmeta.DataBlob)
    assert d.hyperparams == {"batch_size": 128, "aug": [1, 2.5]}
    assert d.group == "mnist" and d.project == client.project and d.created_at is not None
    assert client.put_datablob("mnist-v1", group="mnist", hyperparams={"aug": [1, 2.5], "batch_size": 128}) == d
    with pytest.raises(mlmeta.AlreadyExists) as err:
        client.put_datablob("mnist-v1", group="mnist", hyperparams={"batch_size": 64})
    assert err.value.code == "ALREADY_EXISTS" and "mnist-v1" in err.value.message
    kept = client.put_datablob("mnist-v1", group="mnist", hyperparams={"batch_size": 64}, ignore_existing=True)
    assert kept.hyperparams["batch_size"] == 128

    t = client.put_template("cnn-small", group="cnn", hyperparams={"layers": 4})
    assert isinstance(t, mlmeta.ModelTemplate) and t.hyperparams == {"layers": 4}
    m = _model(client, "m1", lr=1e-3, seed=1)
    assert isinstance(m, mlmeta.Model)
    assert m.params == {"lr": 1e-3, "seed": 1} and m.status == mlmeta.RunStatus.CREATED
    assert m.datablob == "mnist-v1" and m.template == "cnn-small" and m.model_class == "KerasModel"
    assert m.current_epoch is None and m.epoch_count == 0


def test_errors_map_to_the_hierarchy(seeded: mlmeta.Client) -> None:
    with pytest.raises(mlmeta.FailedPrecondition) as fp:
        seeded.put_model("m", datablob="nope", template="cnn-small", model_class="K")
    assert "nope" in fp.value.message
    with pytest.raises(mlmeta.InvalidArgument) as ia:
        seeded.put_datablob("", group="g")
    assert ia.value.code == "INVALID_ARGUMENT" and "name" in ia.value.message
    with pytest.raises(mlmeta.NotFound):
        seeded.get_model("nope")
    with pytest.raises(mlmeta.NotFound):
        seeded.insert_epochs("nope", {1: {"loss": 1.0}})
    with pytest.raises(mlmeta.NotFound):
        seeded.best("loss", "min")
    with pytest.raises(mlmeta.InvalidArgument):
        seeded.best("loss", "sideways")
    with pytest.raises(mlmeta.InvalidArgument) as nan:
        seeded.put_datablob("x", group="g", hyperparams={"a": float("nan")})
    assert "hyperparams" in nan.value.message
    for cls in (mlmeta.NotFound, mlmeta.InvalidArgument, mlmeta.Unavailable, mlmeta.EpochsNotStored):
        assert issubclass(cls, mlmeta.Error)


def test_unreachable_server_is_unavailable() -> None:
    from conftest import free_port

    c = mlmeta.Client(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(mlmeta.Unavailable):
        c.list_projects().__next__()


def test_unauthenticated_and_permission_denied(tmp_path, backend: str) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from conftest import Database, Server, server_binary

    lines = []
    tokens = {}
    for name, scope in (("w", "write"), ("r", "read")):
        out = subprocess.run(
            [str(server_binary()), "hash-token", "--name", name, "--scope", scope],
            capture_output=True,
            check=True,
            text=True,
        )
        lines.append(out.stdout.strip())
        tokens[scope] = out.stderr.strip().rsplit(" ", 1)[-1]
    path = tmp_path / "tokens.txt"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    db = Database(backend, tmp_path)
    srv = Server(db.url, extra=["--auth-tokens", str(path)], log_dir=tmp_path)
    srv.start()
    try:
        with pytest.raises(mlmeta.Unauthenticated):
            mlmeta.Client(srv.url).put_datablob("d", group="g")
        with pytest.raises(mlmeta.Unauthenticated):
            mlmeta.Client(srv.url, token="mlm_wrong").put_datablob("d", group="g")
        with pytest.raises(mlmeta.PermissionDenied):
            mlmeta.Client(srv.url, token=tokens["read"]).put_datablob("d", group="g")
        assert mlmeta.Client(srv.url, token=tokens["write"]).put_datablob("d", group="g").name == "d"
    finally:
        srv.stop()
        db.drop()


def test_env_fallbacks(server, monkeypatch: pytest.MonkeyPatch, project: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLMETA_SERVER", server.url)
    monkeypatch.setenv("MLMETA_PROJECT", project)
    c = mlmeta.Client()
    assert c.url == server.url and c.project == project
    c.put_datablob("d", group="g")
    assert [p.name for p in c.list_projects()].count(project) == 1
    with pytest.raises(mlmeta.InvalidArgument):
        mlmeta.Client("ftp://x")


def test_nan_and_infinities_round_trip_bit_for_bit(seeded: mlmeta.Client) -> None:
    _model(seeded, "m")
    payload_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_1234))[0]
    values = {
        "nan": float("nan"),
        "payload_nan": payload_nan,
        "inf": math.inf,
        "ninf": -math.inf,
        "tiny": 5e-324,
        "big": 1.7976931348623157e308,
        "neg": -2.5,
    }
    r = seeded.insert_epochs("m", {1: values})
    assert (r.inserted, r.skipped) == (1, 0)
    assert seeded.insert_epochs("m", {1: {"loss": 0.0}}) == mlmeta.InsertResult(inserted=0, skipped=1)
    [e] = list(seeded.epochs("m"))
    assert isinstance(e, mlmeta.Epoch) and e.epoch == 1 and e.model == "m"
    assert {k: struct.pack("<d", v) for k, v in e.metrics.items()} == {
        k: struct.pack("<d", v) for k, v in values.items()
    }
    # Through a run too.
    with seeded.run("m2", datablob="mnist-v1", template="cnn-small", model_class="K") as run:
        run.log(1, values)
    [e2] = list(seeded.epochs("m2"))
    assert {k: struct.pack("<d", v) for k, v in e2.metrics.items()} == {
        k: struct.pack("<d", v) for k, v in values.items()
    }
    # NaN is never best; +inf is a number.
    assert seeded.best("inf", "max")[0].value == math.inf
    with pytest.raises(mlmeta.NotFound):
        seeded.best("nan", "max")


def test_paging_follows_tokens(seeded: mlmeta.Client) -> None:
    names = [f"m{i:03d}" for i in range(25)]
    for i, n in enumerate(names):
        _model(seeded, n, i=i)
        seeded.insert_epochs(n, {e: {"acc": i + e / 100} for e in range(1, 4)})
    assert [m.name for m in seeded.list_models(page_size=7)] == names
    assert [m.name for m in seeded.list_models(page_size=7, names=names[:3])] == names[:3]
    epochs = list(seeded.epochs(page_size=4))
    assert len(epochs) == 75
    assert [(e.model, e.epoch) for e in epochs] == [(n, e) for n in names for e in range(1, 4)]
    assert [e.epoch for e in seeded.epochs("m001", min_epoch=2, max_epoch=3)] == [2, 3]
    rows = list(seeded.leaderboard("acc", "max", page_size=4))
    assert [r.model.name for r in rows] == names[::-1]
    assert isinstance(rows[0], mlmeta.LeaderboardRow)
    assert rows[0].epoch == 3 and rows[0].value == 24.03 and rows[0].params == {"i": 24}
    assert [r.model.name for r in seeded.leaderboard("acc", "min", page_size=10)][:2] == ["m000", "m001"]
    top = seeded.best("acc", "max", top=3)
    assert [b.model.name for b in top] == ["m024", "m023", "m022"]
    b = top[0]
    assert isinstance(b, mlmeta.BestModel)
    assert (b.epoch, b.value, b.metrics, b.params) == (3, 24.03, {"acc": 24.03}, {"i": 24})
    assert b.datablob.name == "mnist-v1" and b.template.hyperparams == {"layers": 4}
    assert [b.model.name for b in seeded.best("acc", "max", top=2, names=["m001", "m002"])] == ["m002", "m001"]
    for i in range(12):
        seeded.put_datablob(f"d{i:02d}", group="many")
    assert len(list(seeded.list_datablobs(groups="many", page_size=5))) == 12
    assert [d.name for d in seeded.list_datablobs("d03")] == ["d03"]
    assert [t.name for t in seeded.list_templates()] == ["cnn-small"]


def test_current_epoch_and_get_model(seeded: mlmeta.Client) -> None:
    assert seeded.current_epoch("nope") == 0
    _model(seeded, "m")
    assert seeded.current_epoch("m") == 0
    seeded.insert_epochs("m", [(1, {"loss": 2.0}), (2, {"loss": float("nan")}), (3, {"loss": 1.0})])
    assert seeded.current_epoch("m") == 3
    d = seeded.get_model("m")
    assert isinstance(d, mlmeta.ModelDetails)
    assert d.model.epoch_count == 3 and d.model.current_epoch == 3
    s = d.metrics["loss"]
    assert (s.count, s.nan_count, s.min_value, s.min_epoch, s.max_value, s.last_epoch) == (3, 1, 1.0, 3, 2.0, 3)


def test_tags_descriptions_filters(seeded: mlmeta.Client) -> None:
    _model(seeded, "a")
    _model(seeded, "b")
    assert seeded.set_tags("a", {"team": "vision", "x": "1"}) == {"team": "vision", "x": "1"}
    assert seeded.unset_tags("a", ["x", "absent"]) == {"team": "vision"}
    assert seeded.update_tags("mnist-v1", set={"k": "v"}, kind="datablob") == {"k": "v"}
    with pytest.raises(mlmeta.InvalidArgument):
        seeded.set_tags("a", {"mlmeta.host": "x"})
    seeded.set_description("a", "# a model")
    assert seeded.get_model("a").model.description == "# a model"
    assert [m.name for m in seeded.list_models(tags={"team": "vision"})] == ["a"]
    assert [m.name for m in seeded.list_models(statuses="created")] == ["a", "b"]
    assert list(seeded.list_models(statuses=["FINISHED"])) == []
    with pytest.raises(mlmeta.InvalidArgument):
        list(seeded.list_models(statuses="bogus"))
    with pytest.raises(mlmeta.InvalidArgument):
        seeded.set_tags("a", {"k": "v"}, kind="bogus")


def test_where_on_list_best_leaderboard(seeded: mlmeta.Client) -> None:
    for i in range(5):
        _model(seeded, f"w{i}", i=i)
        seeded.insert_epochs(f"w{i}", {1: {"acc": i / 10}})
    assert [m.name for m in seeded.list_models(where="params.i >= 3")] == ["w3", "w4"]
    best = seeded.best("acc", "max", top=5, where="params.i < 2 or max(acc) = 0.4")
    assert [b.model.name for b in best] == ["w4", "w1", "w0"]
    rows = seeded.leaderboard("acc", "min", where="params.i not in (0, 4)", templates="cnn-small")
    assert [r.model.name for r in rows] == ["w1", "w2", "w3"]
    with pytest.raises(mlmeta.InvalidArgument, match="filter.where: column 11"):
        list(seeded.list_models(where="params.i <"))


def test_order_by_and_columns(seeded: mlmeta.Client) -> None:
    nan = float("nan")
    for name, accs in [("s-a", [0.5, 0.9]), ("s-b", [0.9]), ("s-c", [nan]), ("s-d", [0.7])]:
        _model(seeded, name)
        seeded.insert_epochs(name, {i + 1: {"acc": a} for i, a in enumerate(accs)})
    where = "name like 's-%'"
    ranked = seeded.list_models(
        order_by="max(acc) desc", columns=["max(acc)", "last(acc)", "count(acc)", "max(nope)"], where=where, page_size=1
    )
    models = list(ranked)
    assert [m.name for m in models] == ["s-a", "s-b", "s-d", "s-c"]
    assert models[0].columns == {"max(acc)": 0.9, "last(acc)": 0.9, "count(acc)": 2, "max(nope)": None}
    last = models[3].columns["last(acc)"]
    assert isinstance(last, float) and math.isnan(last)
    assert models[3].columns["max(acc)"] is None
    assert all(m.columns == {} for m in seeded.list_models(where=where))
    best = seeded.best("acc", "min", columns=["epochs"], where=where)
    assert best[0].model.name == "s-a" and best[0].model.columns == {"epochs": 2}
    rows = list(seeded.leaderboard("acc", "max", columns=["current_epoch"], where=where))
    assert [(r.model.name, r.model.columns["current_epoch"]) for r in rows] == [("s-b", 1), ("s-a", 2), ("s-d", 1)]
    with pytest.raises(mlmeta.InvalidArgument, match="order_by: column 1"):
        list(seeded.list_models(order_by="params.x"))
    with pytest.raises(mlmeta.InvalidArgument, match=r"columns\[0\]"):
        list(seeded.list_models(columns=["name"]))


def test_run_lifecycle_calls(seeded: mlmeta.Client) -> None:
    _model(seeded, "m")
    ctx = mlmeta.RunContext(host="h", pid=7, user="u", command_line=["train.py", "--x"], git_commit="abc")
    m = seeded.start_run("m", context=ctx, heartbeat_timeout_secs=120)
    assert m.status == "RUNNING" and m.run_context == ctx and m.heartbeat_timeout_secs == 120
    assert seeded.heartbeat("m").status == mlmeta.RunStatus.RUNNING
    assert seeded.end_run("m", "finished").status == "FINISHED"
    assert seeded.end_run("m", mlmeta.RunStatus.FINISHED).ended_at is not None
    with pytest.raises(mlmeta.FailedPrecondition):
        seeded.end_run("m", "FAILED")
    changes = seeded.get_model("m").status_changes
    assert [(c.old, c.new) for c in changes] == [("CREATED", "RUNNING"), ("RUNNING", "FINISHED")]
    assert mlmeta.RunContext.current().pid > 0


def test_artifacts_delete_restore_purge(seeded: mlmeta.Client) -> None:
    _model(seeded, "m")
    a = seeded.put_artifact("m", "ckpt", "s3://b/ckpt.h5", sha256="AB" * 32, size_bytes=10, media_type="Application/X-HDF5")
    assert isinstance(a, mlmeta.Artifact) and a.sha256 == "ab" * 32 and a.media_type == "application/x-hdf5"
    with pytest.raises(mlmeta.AlreadyExists):
        seeded.put_artifact("m", "ckpt", "s3://b/other")
    assert seeded.put_artifact("m", "ckpt", "s3://b/other", overwrite=True).uri == "s3://b/other"
    assert [x.name for x in seeded.list_artifacts("m")] == ["ckpt"]
    assert seeded.delete_artifact("m", "ckpt") is True
    assert seeded.delete_artifact("m", "ckpt") is False
    assert seeded.delete("m") is False
    assert seeded.delete("m") is True
    assert list(seeded.list_models()) == []
    assert [m.name for m in seeded.list_models(deleted="deleted")] == ["m"]
    assert seeded.restore("m") is False
    assert seeded.restore("m") is True
    seeded.delete("m")
    assert seeded.purge("m")["models"] == 1
    assert seeded.purge() == {"models": 0, "epochs": 0, "datablobs": 0, "templates": 0}
