"""The run context of this process (what `StartRun` records)."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
from typing import List

from ._types import RunContext

# The server's limits: each string at most 4,096 bytes, at most 256 arguments.
_MAX_ARGS = 256
_MAX_BYTES = 4096


def _clip(value: str) -> str:
    data = value.encode("utf-8", "replace")
    if len(data) <= _MAX_BYTES:
        return value
    return data[:_MAX_BYTES].decode("utf-8", "ignore")


def _command_line() -> List[str]:
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    return [_clip(a) for a in argv[:_MAX_ARGS]]


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=1.0,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.decode("ascii", "replace").strip()


def current_context() -> RunContext:
    return RunContext(
        host=_clip(socket.gethostname()),
        pid=os.getpid(),
        user=_clip(_user()),
        command_line=_command_line(),
        git_commit=_git_commit(),
    )
