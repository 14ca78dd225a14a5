"""Fixtures every test module may use: the real PostgreSQL server (`postgres`), a fresh state
database on SQLite and on PostgreSQL (`database_url`), and the one local Spark session of a test
process (`spark`; Spark takes ~10 s to start).

Every test that uses `spark` is marked `spark` and grouped with `xdist_group("spark")`, so under
`pytest -n auto --dist loadgroup` they all run on one worker, which starts one session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ("tests.postgres",)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from config.settings import EngineSettings
    from records.spark import spark_session

    session = spark_session(EngineSettings(master="local[1]", shuffle_partitions=1))
    yield session
    session.stop()
