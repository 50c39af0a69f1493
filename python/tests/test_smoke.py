import mlmeta


def test_smoke(seeded: mlmeta.Client) -> None:
    with seeded.run("m1", datablob="mnist-v1", template="cnn-small", model_class="K", params={"lr": 1e-3}) as run:
        for e in range(1, 4):
            run.log(e, {"loss": 1.0 / e, "val_accuracy": 0.5 + e / 10})
    best = seeded.best("val_accuracy", "max")[0]
    assert best.model.name == "m1" and best.epoch == 3
    assert seeded.get_model("m1").model.status == "FINISHED"
