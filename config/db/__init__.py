"""The service's state database: users, page sessions, the audit log and MDT reviews.

SQLAlchemy 2 (Core) over a SQLite file under the home by default, PostgreSQL through
`[database] url` / `CASEFINDER_DATABASE__URL`, so several workers or replicas share one state.
The schema is Alembic's (`config/db/migrations`, shipped in the package) and is brought up to date
the first time a process opens the database. It sits at the bottom layer, beside the settings,
so that scoring and training can read the reviews and serving writes everything.

`Database.write()` is the one way to change state: in SQLite every transaction is
`BEGIN IMMEDIATE` (one writer at a time, the others wait up to `busy_timeout`); in PostgreSQL
writers that must be serialised lock a row (`audit_head ... FOR UPDATE`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from config.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class DatabaseError(RuntimeError):
    """The state database cannot be used (bad URL, not reachable, schema newer than the code)."""


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not pysqlite's
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    if path and path != ":memory:":
        Path(path).touch(mode=0o600, exist_ok=True)
        Path(path).chmod(0o600)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def engine_for(url: str) -> Engine:
    """One migrated engine per URL per process."""
    with _lock:
        if url not in _engines:
            try:
                engine = (
                    _sqlite_engine(url)
                    if url.startswith("sqlite")
                    else create_engine(url, pool_pre_ping=True)
                )
                migrate(engine)
            except Exception as exc:
                raise DatabaseError(
                    f"the state database ({make_url(url).get_backend_name()}) could not be "
                    f"opened: {type(exc).__name__}"
                ) from exc
            _engines[url] = engine
        return _engines[url]


class Database:
    """The state database of a home (or of any URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)

    @classmethod
    def of(cls, settings: Settings) -> Database:
        return cls(settings.database_url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success (SQLite: BEGIN IMMEDIATE)."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            yield connection

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())
