#!/usr/bin/env python3
"""Regenerate (or check) the committed protobuf and gRPC stubs of `mlmeta`.

    pip install 'grpcio-tools==1.50.0'       # or: pip install './python[gen]'
    python python/scripts/gen_proto.py          # rewrite python/src/mlmeta/v1/
    python python/scripts/gen_proto.py --check  # exit 1 when they differ

The proto's own path `mlmeta/v1/mlmeta.proto` (include root `proto/proto`)
is the Python package path, so the generated `from mlmeta.v1 import
mlmeta_pb2` is a valid absolute import inside the package: nothing is
rewritten after protoc.

The generator is pinned: the generated code sets the runtime floors in
pyproject.toml (grpcio>=1.50, protobuf>=3.20.3), and byte-identical output
needs the same protoc. Another grpcio-tools version is refused.
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

GRPCIO_TOOLS_VERSION = "1.50.0"
HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent / "src"
PROTO_ROOT = HERE.parent.parent / "proto" / "proto"
PROTO = "mlmeta/v1/mlmeta.proto"
GENERATED = ("mlmeta_pb2.py", "mlmeta_pb2.pyi", "mlmeta_pb2_grpc.py")


def generate(out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            PROTO,
        ],
        check=True,
        cwd=PROTO_ROOT,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed stubs differ")
    args = parser.parse_args()
    try:
        have = metadata.version("grpcio-tools")
    except metadata.PackageNotFoundError:
        have = "none"
    if have != GRPCIO_TOOLS_VERSION:
        print(
            f"gen_proto: needs grpcio-tools=={GRPCIO_TOOLS_VERSION} (found {have}); "
            f"pip install 'grpcio-tools=={GRPCIO_TOOLS_VERSION}'",
            file=sys.stderr,
        )
        return 2
    target = PACKAGE_ROOT / "mlmeta" / "v1"
    if not args.check:
        generate(PACKAGE_ROOT)
        print(f"gen_proto: wrote {', '.join(GENERATED)} into {target}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / "mlmeta" / "v1"
        stale = [
            name
            for name in GENERATED
            if not (target / name).exists() or not filecmp.cmp(fresh / name, target / name, shallow=False)
        ]
    if stale:
        print(
            f"gen_proto: {', '.join(stale)} in {target} differ from {PROTO_ROOT / PROTO}; "
            "run python/scripts/gen_proto.py and commit the result",
            file=sys.stderr,
        )
        return 1
    print(f"gen_proto: stubs in {target} match {PROTO_ROOT / PROTO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
