"""Read a local SQLite MLflow store without importing MLflow: which version an alias names, the
training run of a version, and a run's artifact folder.

Importing MLflow and opening its store costs a `score` about 3.5 s (issue 18); these three reads
are all scoring needs once the version's model is cached on disk (`models.registry`). They read
MLflow's own tables (`registered_model_aliases`, `model_versions`, `runs`), read-only. Anything
this module does not recognise (no file, another schema, more than one match) returns None, and
`models.registry` asks MLflow's client instead, so an MLflow upgrade can only make this slower,
not wrong. `tests/test_registry_local.py` checks every answer against MLflow's client.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

SQLITE_PREFIX = "sqlite:///"


def store_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI (None for any other URI)."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    return Path(tracking_uri.removeprefix(SQLITE_PREFIX))


def _one(tracking_uri: str, sql: str, params: tuple[Any, ...]) -> Any | None:
    """The single value `sql` selects, or None (no store, no row, several rows, or a schema
    this module does not know)."""
    path = store_path(tracking_uri)
    if path is None or not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as con:
            rows = con.execute(sql, params).fetchall()
    except sqlite3.Error:
        return None
    if len(rows) != 1 or rows[0][0] is None:
        return None
    return rows[0][0]


def alias_version(tracking_uri: str, model: str, alias: str) -> str | None:
    """The version number `alias` names for registered model `model`."""
    value = _one(
        tracking_uri,
        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
        (model, alias),
    )
    return None if value is None else str(value)


def version_run_id(tracking_uri: str, model: str, version: str) -> str | None:
    """The id of the training run that logged `version` of `model`."""
    if not str(version).isdigit():
        return None
    value = _one(
        tracking_uri,
        "SELECT run_id FROM model_versions WHERE name = ? AND version = ?",
        (model, int(version)),
    )
    return None if value is None else str(value)


def run_artifact_dir(tracking_uri: str, run_id: str) -> Path | None:
    """The local folder holding run `run_id`'s artifacts (None when they are not on disk)."""
    value = _one(
        tracking_uri,
        "SELECT artifact_uri FROM runs WHERE run_uuid = ? AND lifecycle_stage = 'active'",
        (run_id,),
    )
    if value is None:
        return None
    uri = urlparse(str(value))
    if uri.scheme not in ("", "file") or uri.netloc not in ("", "localhost"):
        return None
    folder = Path(unquote(uri.path))
    return folder if folder.is_dir() else None
