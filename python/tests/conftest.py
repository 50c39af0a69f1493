"""Fixtures: a real `mlmeta-server` over loopback, on SQLite and PostgreSQL.

The server binary is `$MLMETA_SERVER_BIN`, else `mlmeta-server` in the
workspace's target directory (`$CARGO_TARGET_DIR` or `target/`, debug then
release): build it with `cargo build -p mlmeta-server`.

PostgreSQL is `$MLMETA_TEST_POSTGRES_URL` (default
`postgres://postgres@127.0.0.1:5432/postgres`); each server gets a fresh
database, dropped afterwards. When it is not reachable the PostgreSQL
half is skipped with a notice, unless `MLMETA_REQUIRE_POSTGRES=1` (CI),
which makes it fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import mlmeta

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("MLMETA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("MLMETA_REQUIRE_POSTGRES") == "1"
# The session servers sweep often, so that heartbeat tests can use runs
# with a 2-second heartbeat timeout.
SWEEP_MS = "100"


def server_binary() -> Path:
    explicit = os.environ.get("MLMETA_SERVER_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "mlmeta-server"
        if candidate.exists():
            return candidate
    pytest.exit(f"mlmeta-server not found under {target}: run `cargo build -p mlmeta-server` first", 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `mlmeta-server` process; restartable on the same port and database."""

    def __init__(self, database_url: str, extra: Optional[List[str]] = None, log_dir: Optional[Path] = None):
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = list(extra or [])
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="mlmeta-py-log-"))
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    def start(self) -> "Server":
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLMETA_")}
        env.setdefault("RUST_LOG", "warn")
        self.starts += 1
        log = open(self.log_dir / f"server-{self.port}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(
            [
                str(server_binary()),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--database-url",
                self.database_url,
                "--sweep-interval-ms",
                SWEEP_MS,
                "--shutdown-grace-secs",
                "1",
                # Several servers run at once: none on the default HTTP port.
                "--http-listen",
                "off",
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlmeta-server exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"mlmeta-server did not listen within 60 s: {self.log_text()}")
        with mlmeta.Client(self.url) as c:
            c.wait_ready(timeout=30)
        return self

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in sorted(self.log_dir.glob("*.log")))

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _pg_reachable() -> bool:
    u = urllib.parse.urlparse(PG_URL)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=1):
            return True
    except OSError:
        return False


def _psql(sql: str) -> None:
    subprocess.run(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True)


class Database:
    """A fresh database of one backend, removed afterwards."""

    def __init__(self, backend: str, tmp: Path):
        self.backend = backend
        if backend == "sqlite":
            self.url = f"sqlite://{tmp / 'mlmeta.db'}"
            self.pg_name = None
        else:
            if not _pg_reachable() or shutil.which("psql") is None:
                message = f"PostgreSQL at {PG_URL} not reachable (or psql missing)"
                if REQUIRE_PG:
                    pytest.fail(f"{message}, and MLMETA_REQUIRE_POSTGRES=1")
                print(f"\n*** NOTICE: {message}: skipping the PostgreSQL half ***\n")
                pytest.skip(message)
            self.pg_name = f"mlmeta_py_{uuid.uuid4().hex[:12]}"
            _psql(f"CREATE DATABASE {self.pg_name}")
            u = urllib.parse.urlparse(PG_URL)
            self.url = urllib.parse.urlunparse(u._replace(path=f"/{self.pg_name}"))

    def drop(self) -> None:
        if self.pg_name:
            _psql(f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server shared by the session (tests isolate themselves by project)."""
    db = Database(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    srv = Server(db.url, log_dir=tmp_path_factory.mktemp(f"log-{backend}")).start()
    yield srv
    srv.stop()
    db.drop()


@pytest.fixture
def own_server(backend: str, tmp_path: Path) -> Iterator[Server]:
    """A server of this test alone (it may be killed and restarted)."""
    db = Database(backend, tmp_path)
    srv = Server(db.url, log_dir=tmp_path).start()
    yield srv
    srv.stop()
    db.drop()


@pytest.fixture
def project() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(server: Server, project: str) -> Iterator[mlmeta.Client]:
    c = mlmeta.Client(server.url, project=project)
    yield c
    c.close()


@pytest.fixture
def seeded(client: mlmeta.Client) -> mlmeta.Client:
    """A project with the datablob `mnist-v1` and the template `cnn-small`."""
    client.put_datablob("mnist-v1", group="mnist", hyperparams={"batch_size": 128})
    client.put_template("cnn-small", group="cnn", hyperparams={"layers": 4})
    return client
