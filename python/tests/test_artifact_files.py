"""Artifact files from Python: `client.upload_artifact`, `run.log_artifact`
and `client.download_artifact` round-trip bytes exactly (verified by
SHA-256), store the same content once, and fail without touching the
target file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import mlmeta
from test_run import KW


def _file(tmp_path: Path, name: str, size: int, seed: int) -> Path:
    path = tmp_path / name
    # Deterministic, incompressible-looking bytes, more than two 1 MiB chunks.
    block = hashlib.sha256(str(seed).encode()).digest()
    data = bytearray()
    counter = 0
    while len(data) < size:
        data += hashlib.sha256(block + counter.to_bytes(8, "little")).digest()
        counter += 1
    path.write_bytes(bytes(data[:size]))
    return path


def test_upload_and_download_round_trip(seeded: mlmeta.Client, tmp_path: Path) -> None:
    seeded.put_model("m", **KW)
    src = _file(tmp_path, "weights.h5", (5 << 19) + 17, seed=1)
    art = seeded.upload_artifact("m", "weights", src, media_type="application/x-hdf5")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert art.content_stored and art.sha256 == digest and art.size_bytes == src.stat().st_size
    assert art.uri == f"mlmeta:sha256:{digest}" and art.media_type == "application/x-hdf5"
    out = tmp_path / "restored.h5"
    got = seeded.download_artifact("m", "weights", out)
    assert out.read_bytes() == src.read_bytes() and got.sha256 == digest
    assert sorted(os.listdir(tmp_path)) == ["restored.h5", "weights.h5"]
    listed = seeded.list_artifacts("m")
    assert [(a.name, a.content_stored) for a in listed] == [("weights", True)]


def test_log_artifact_in_a_run_and_the_same_bytes_twice(seeded: mlmeta.Client, tmp_path: Path) -> None:
    src = _file(tmp_path, "ckpt.pt", 300_000, seed=2)
    with seeded.run("m", **KW) as run:
        run.log(1, {"loss": 0.5})
        first = run.log_artifact(src)
        again = run.log_artifact(src, name="copy")
    assert first.name == "ckpt.pt" and again.name == "copy" and first.sha256 == again.sha256
    with seeded.run("m2", **KW) as other:
        other.log_artifact(src, name="ckpt.pt")
    out = tmp_path / "back.pt"
    seeded.download_artifact("m2", "ckpt.pt", out)
    assert out.read_bytes() == src.read_bytes()


def test_failures_leave_the_target_alone(seeded: mlmeta.Client, tmp_path: Path) -> None:
    seeded.put_model("m", **KW)
    seeded.put_artifact("m", "ref", "s3://bucket/key")
    out = tmp_path / "keep.bin"
    out.write_bytes(b"precious")
    with pytest.raises(mlmeta.FailedPrecondition, match="no content"):
        seeded.download_artifact("m", "ref", out)
    with pytest.raises(mlmeta.NotFound):
        seeded.download_artifact("m", "absent", out)
    assert out.read_bytes() == b"precious" and sorted(os.listdir(tmp_path)) == ["keep.bin"]
    src = _file(tmp_path, "x.bin", 10, seed=3)
    with pytest.raises(mlmeta.NotFound, match="ghost"):
        seeded.upload_artifact("ghost", "x", src)
    seeded.upload_artifact("m", "x", src)
    other = _file(tmp_path, "y.bin", 11, seed=4)
    with pytest.raises(mlmeta.AlreadyExists):
        seeded.upload_artifact("m", "x", other)
    replaced = seeded.upload_artifact("m", "x", other, overwrite=True)
    assert replaced.size_bytes == 11
