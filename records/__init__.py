"""Linked care records: the input contract, and the loader that checks an extract against it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from config.progress import ProgressFn
from records.loader import (
    Extract,
    TableReport,
    connect,
    load_extract,
    open_duckdb_extract,
    write_rejects,
)
from records.manifest import ExtractError, Manifest, read_manifest

if TYPE_CHECKING:
    from config.settings import Settings


def open_extract(
    path: Path | str, settings: Settings, progress: ProgressFn | None = None
) -> Extract:
    """How every command reads an extract: into DuckDB (`[engine] name = "duckdb"`, held to
    `[records] duckdb_memory_limit`), or on Spark (`"spark"`, `records.spark`; `path` may then
    be a Hadoop URI or `catalog:DATABASE`). Both give the same tables, rejects and errors."""
    if settings.engine.name == "spark":
        from records.spark import open_spark_extract

        return open_spark_extract(path, settings, progress)  # type: ignore[return-value]
    return open_duckdb_extract(Path(path), settings, progress)


__all__ = [
    "Extract",
    "ExtractError",
    "Manifest",
    "TableReport",
    "connect",
    "load_extract",
    "open_extract",
    "read_manifest",
    "write_rejects",
]
