"""Small helpers shared by the CLI command modules."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd

    from features.dates import Month

console = Console()
err_console = Console(stderr=True)


def parse_date(value: str | None, option: str) -> date | None:
    """Parse an ISO date option, or raise a typer error naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


def parse_month(text: str, option: str = "--month") -> Month:
    """A month option as a `Month`, or the usage error naming the option and what is wrong."""
    from features.dates import Month

    try:
        return Month(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` as an error and return the `typer.Exit` to raise."""
    err_console.print(f"[bold red]Error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


EngineOption = Annotated[
    Literal["duckdb", "spark"] | None,
    typer.Option(
        "--engine",
        help="SQL engine: duckdb (embedded, default) or spark "
        "(\\[engine] settings, docs/spark.md).",
    ),
]


def use_engine(engine: str | None) -> None:
    """Make `--engine` win over the config file for this command (as CASEFINDER_ENGINE__NAME)."""
    if engine is not None:
        os.environ["CASEFINDER_ENGINE__NAME"] = engine


# Kept as text: a Hadoop URI (`s3a://...`) or `catalog:DATABASE` is not a local path.
ExtractArg = Annotated[
    str,
    typer.Argument(
        help="Extract folder (manifest.json + tables); with --engine spark also a Hadoop URI "
        "or catalog:DATABASE (docs/spark.md)."
    ),
]

PARQUET_OUT_HELP = (
    " to write, named .parquet: a Parquet file; with --engine spark a folder of Parquet part "
    "files written by Spark itself (a local path or a Hadoop URI), which pandas.read_parquet "
    "and spark.read.parquet read as one table. Replaced if present."
)


def _is_parquet_dataset(folder: Path) -> bool:
    """Whether `folder` holds only a Parquet dataset's files (part files, Spark's markers)."""
    return all(
        f.is_file() and (f.name.startswith(("part-", "_", ".")) or f.suffix == ".parquet")
        for f in folder.iterdir()
    )


def check_parquet_out(out: str) -> None:
    """`--out` checked before anything is loaded (a clear error, exit 2): a .parquet name; on
    DuckDB a local file, not a folder; on Spark a local path or a Hadoop URI, an existing local
    folder only if it holds a Parquet dataset (replaced, as DuckDB replaces its file)."""
    from config.settings import load_settings
    from records.spark import local_path

    if not out.rstrip("/").lower().endswith(".parquet"):
        raise fail(f"--out {out}: give a .parquet name")
    local = local_path(out)
    if load_settings().engine.name == "spark":
        if local is not None and local.is_dir() and not _is_parquet_dataset(local):
            raise fail(f"--out {out}: a folder holding more than a Parquet dataset; not replaced")
    elif local is None:
        raise fail(f"--out {out}: a Hadoop URI needs --engine spark")
    elif local.is_dir():
        raise fail(
            f"--out {out}: a folder (written by --engine spark?); DuckDB writes one file: "
            "remove it or give another name"
        )


def write_parquet_file(frame: pd.DataFrame, out: str) -> None:
    """A command's table written by pandas as one Parquet file at `out` (checked by
    `check_parquet_out`), its folder made when missing."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
