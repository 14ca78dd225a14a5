"""`casefinder` commands for the lists stage: score a month, export its lists, show runs and the
run summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from casefinder.commands.common import EngineOption, console, err_console, fail, use_engine
from casefinder.progress import progress_bar
from config.settings import load_settings

if TYPE_CHECKING:
    from features.dates import Month

MonthOption = Annotated[str, typer.Option("--month", help="Month to score or show, YYYY-MM.")]
RunOption = Annotated[
    str | None, typer.Option("--run", help="A stored run id (default: the month's current run).")
]


def score(
    extract: Annotated[Path, typer.Argument(help="Extract folder (manifest.json + tables).")],
    month: MonthOption,
    model: Annotated[
        str, typer.Option("--model", help="Registry alias or version to score with.")
    ] = "champion",
    engine: EngineOption = None,
) -> None:
    """Score everyone eligible at the month's first day, build each neighbourhood's list, and
    store the run (the same inputs reuse the stored run)."""
    use_engine(engine)
    from features import FeatureError
    from records import ExtractError
    from scoring.run import score_month
    from scoring.store import StoreError

    settings = load_settings()
    chosen = _month(month)
    try:
        with progress_bar(console) as progress:
            result = score_month(extract, chosen, settings, model_ref=model, progress=progress)
    except ExtractError as exc:
        raise fail(f"extract unusable: {exc}") from None
    except (FeatureError, StoreError) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:
        from models.registry import RegistryError  # imports MLflow: only when needed

        if isinstance(exc, RegistryError):
            raise fail(str(exc)) from None
        raise
    meta = result.meta
    counts = meta["counts"]
    state = "reused the stored run" if result.reused else "stored"
    console.print(f"Run [bold]{result.run_id}[/] ({state}), current for {chosen}")
    console.print(
        f"Model {meta['model']['name']} v{meta['model']['version']}; "
        f"{counts['eligible']:,} eligible, {counts['excluded']:,} excluded, "
        f"{counts['listed']:,} listed ({meta['rule']})"
    )
    for warning in meta.get("warnings", []):
        err_console.print(f"[bold yellow]Warning:[/] {warning}")
    console.print(
        f"Summary: casefinder summary --month {chosen}   Lists: casefinder lists --month {chosen}"
    )


def _month(text: str) -> Month:
    """`--month` as a `Month`, or the usage error naming what is wrong."""
    from features.dates import Month

    try:
        return Month(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None


def lists(
    month: MonthOption,
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or json.")] = "csv",
    neighbourhood: Annotated[
        str | None, typer.Option("--neighbourhood", help="Only this neighbourhood's list.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File to write.")] = None,
    run: RunOption = None,
) -> None:
    """Export a month's MDT lists (person_id, practice, rank, probability, band, flags, reasons):
    the same table the list pages download."""
    from scoring.exports import FORMATS, export_filename, list_table, write_export
    from scoring.store import ScoreStore, StoreError

    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    chosen = _month(month)
    store = ScoreStore(load_settings().score_store)
    try:
        run_id = store.resolve(month=chosen, run_id=run)
        meta = store.meta(run_id)
        table = list_table(store.people(run_id), neighbourhood)
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    if out is None:
        out = Path(export_filename(meta["month"], neighbourhood, fmt))
    path = write_export(table, fmt, out, meta)
    status = "current" if meta["current"] else "NOT the current run for the month"
    console.print(f"{len(table):,} people from run {run_id} ({status}) written to {path}")


def runs(
    month: Annotated[str | None, typer.Option("--month", help="Only this month.")] = None,
) -> None:
    """List stored scoring runs, marking each month's current run."""
    from scoring.store import ScoreStore

    store = ScoreStore(load_settings().score_store)
    try:
        metas = store.runs(month)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not metas:
        console.print("No scoring runs stored" + (f" for {month}" if month else "") + ".")
        return
    for m in metas:
        current = "[bold green]current[/]" if m["current"] else "superseded"
        console.print(
            f"{m['month']}  {m['run_id']}  {m['model']['name']} v{m['model']['version']}  "
            f"created {m['created'][:19]}  listed {m['counts']['listed']:,}  {current}",
            soft_wrap=True,
        )


def summary(month: MonthOption, run: RunOption = None) -> None:
    """Print the run summary of a month (counts, exclusions, scores, expected PPV, drift)."""
    from rich.markdown import Markdown

    from scoring.store import ScoreStore, StoreError

    store = ScoreStore(load_settings().score_store)
    try:
        run_id = store.resolve(month=month, run_id=run)
        meta = store.meta(run_id)
        text = store.summary(run_id)
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(Markdown(text))
    if not meta["current"]:
        err_console.print(
            f"[bold yellow]Note:[/] {run_id} is not the current run for {meta['month']}"
        )


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="score")(score)
    app.command(name="lists")(lists)
    app.command(name="runs")(runs)
    app.command(name="summary")(summary)
