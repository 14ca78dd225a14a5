"""Fixtures every test module may use: the real PostgreSQL server (`postgres`), a fresh state
database on SQLite and on PostgreSQL (`database_url`), and the one local Spark session of a test
process (`spark`; Spark takes ~10 s to start), and an empty casefinder home for CLI tests
(`cli_home`).

Every test that uses `spark` is marked `spark` and grouped with `xdist_group("spark")`, so under
`pytest -n auto --dist loadgroup` they all run on one worker, which starts one session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ("tests.postgres",)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from config.settings import EngineSettings
    from records.spark import spark_session

    # The JVM's quick compiler only and the serial collector: a cold JVM warms up in about two
    # thirds of the time (a tiny extract's first Spark load 61 s -> 39 s on a busy machine);
    # Spark's own settings, codegen included, stay as in production.
    jvm = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    session = spark_session(
        EngineSettings(
            master="local[1]", shuffle_partitions=1, conf={"spark.driver.extraJavaOptions": jvm}
        )
    )
    yield session
    session.stop()


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty casefinder home that CLI commands in this test use (CASEFINDER_HOME), with no
    config file or MLflow server of the machine's."""
    for name in ("CASEFINDER_CONFIG", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _engine_as_it_was() -> Iterator[None]:
    """Each test ends with the CASEFINDER_ENGINE__NAME it started with: `--engine` sets it for
    the rest of its process (`casefinder.commands.common.use_engine`), and CLI tests run many
    commands in one process (an undone `--engine spark` sent later tests on the worker to Spark).
    Torn down after `monkeypatch`, which would otherwise restore the value it deleted."""
    name = "CASEFINDER_ENGINE__NAME"
    before = os.environ.get(name)
    yield
    if before is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = before
