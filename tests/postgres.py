"""A real PostgreSQL server for the tests: Debian's `postgresql` binaries, a fresh cluster in a
temporary folder, listening only on a Unix socket there, started once per test session (per xdist
worker) and stopped after. Run as the `postgres` user when the tests run as root (PostgreSQL
refuses root). Nothing is skipped: if the server cannot start, the tests that need it fail."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install -y postgresql)")
    return found


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away cluster; yield a SQLAlchemy URL of its `postgres` database."""
    folder = Path(tempfile.mkdtemp(prefix="cfpg"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    folder.chmod(0o700)
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-c listen_addresses='' -c unix_socket_directories={folder} -c fsync=off"
    subprocess.run(
        _as_owner([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
                   "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={folder}"
    finally:
        subprocess.run(
            _as_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def new_database(server_url: str) -> str:
    """A fresh empty database on the server; its URL."""
    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return server_url.replace("/postgres?", f"/{name}?")


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh state database URL: a SQLite file, and a database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return new_database(request.getfixturevalue("postgres"))
