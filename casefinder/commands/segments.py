"""`casefinder segments`: export a month's population segments (one row per person)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from casefinder.commands.common import console, fail, parse_month
from config.settings import load_settings


def segments(
    month: Annotated[str, typer.Option("--month", help="Month to export, YYYY-MM.")],
    out: Annotated[Path, typer.Option("--out", help="File to write: .csv, .parquet or .xlsx.")],
    run: Annotated[
        str | None,
        typer.Option("--run", help="A stored run id (default: the month's current run)."),
    ] = None,
    neighbourhood: Annotated[
        str | None, typer.Option("--neighbourhood", help="Only this neighbourhood's people.")
    ] = None,
) -> None:
    """Export a month's population segments: person_id, neighbourhood, gp_practice_code,
    segment, segment_reason, probability, band (and movement since last month)."""

    from features.segments import SEGMENTS
    from scoring.segments import SEGMENT_FORMATS, segment_table, write_segments
    from scoring.store import ScoreStore, StoreError

    if out.suffix.lower() not in SEGMENT_FORMATS:
        raise typer.BadParameter(f"choose a file ending {', '.join(SEGMENT_FORMATS)}",
                                 param_hint="--out")  # fmt: skip
    chosen = parse_month(month)
    store = ScoreStore(load_settings().score_store)
    try:
        run_id = store.resolve(month=chosen, run_id=run)
        meta = store.meta(run_id)
        table = segment_table(store.people(run_id), run_id)
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    if neighbourhood is not None:
        table = table[table["neighbourhood"] == neighbourhood].reset_index(drop=True)
        if table.empty:
            raise fail(f"no segmented people in neighbourhood {neighbourhood!r} in run {run_id}")
    path = write_segments(table, out)
    status = "current" if meta["current"] else "NOT the current run for the month"
    sizes = table["segment"].value_counts()
    words = ", ".join(f"{SEGMENTS[k]} {int(sizes.get(k, 0)):,}" for k in SEGMENTS)
    console.print(f"{len(table):,} people from run {run_id} ({status}) written to {path}")
    console.print(f"Segments: {words}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="segments")(segments)
