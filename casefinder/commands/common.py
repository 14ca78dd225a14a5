"""Small helpers shared by the CLI command modules."""

from __future__ import annotations

import os
from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
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
