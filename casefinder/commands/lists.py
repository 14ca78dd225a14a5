"""`casefinder` commands for the lists stage: score a month, export its lists, show runs and the
run summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from casefinder.commands.common import (
    EngineOption,
    console,
    err_console,
    fail,
    parse_month,
    use_engine,
)
from casefinder.imports import lightgbm_without_sklearn
from casefinder.progress import progress_bar
from config.settings import load_settings

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
    lightgbm_without_sklearn()
    from features import FeatureError
    from records import ExtractError
    from scoring.run import score_month
    from scoring.store import StoreError

    settings = load_settings()
    chosen = parse_month(month)
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
    if result.later_months:
        later = ", ".join(result.later_months)
        console.print(
            f"Later months scored before {chosen} ({later}): their lists' flags now follow this "
            "run; score them again to bring their summaries' counts up to date."
        )
    console.print(
        f"Summary: casefinder summary --month {chosen}   Lists: casefinder lists --month {chosen}"
    )


def lists(
    month: MonthOption,
    fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or json.")] = "csv",
    neighbourhood: Annotated[
        str | None, typer.Option("--neighbourhood", help="Only this neighbourhood's list.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="File to write (default: csv and json to stdout)."),
    ] = None,
    run: RunOption = None,
) -> None:
    """Export a month's MDT lists (month, index date, rank, person, practice, risk, band, flags,
    reasons, model and run): the same file the list pages download."""
    import sys

    from scoring.exports import FORMATS, export_bytes, list_table, write_export
    from scoring.store import ScoreStore, StoreError

    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    from config.db.reviews import read_reviews

    if out is None and fmt == "xlsx":
        raise typer.BadParameter("an xlsx file needs --out FILE", param_hint="--out")
    chosen = parse_month(month)
    settings = load_settings()
    store = ScoreStore(settings.score_store)
    try:
        run_id = store.resolve(month=chosen, run_id=run)
        meta = store.meta(run_id)
        reviews = read_reviews(settings, neighbourhood)
        table = list_table(store.people(run_id), neighbourhood, reviews=reviews)
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    status = "current" if meta["current"] else "NOT the current run for the month"
    if out is None:  # the file on stdout, the words on stderr
        data = export_bytes(table, fmt, meta)
        binary = getattr(sys.stdout, "buffer", None)
        if binary is not None:
            sys.stdout.flush()
            binary.write(data)
            binary.flush()
        else:
            sys.stdout.write(data.decode("utf-8"))
        err_console.print(f"{len(table):,} people from run {run_id} ({status})")
        return
    path = write_export(table, fmt, out, meta)
    console.print(f"{len(table):,} people from run {run_id} ({status}) written to {path}")


def runs(
    month: Annotated[str | None, typer.Option("--month", help="Only this month.")] = None,
) -> None:
    """List stored scoring runs, marking each month's current run."""
    from casefinder.tables import print_table
    from scoring.store import ScoreStore

    store = ScoreStore(load_settings().score_store)
    try:
        metas = store.runs(month)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not metas:
        console.print("No scoring runs stored" + (f" for {month}" if month else "") + ".")
        return
    rows = [
        [
            m["run_id"],  # month, model and version, fingerprint
            m["created"][:16].replace("T", " "),
            m["counts"]["listed"],
            "current" if m["current"] else "superseded",
        ]
        for m in metas
    ]
    print_table(console, ["Run", "Scored (UTC)", "Listed", "Status"], rows)


def summary(
    month: MonthOption,
    run: RunOption = None,
    outcomes: Annotated[
        Path | None,
        typer.Option(
            "--outcomes",
            help="An extract covering the 12 months after the month: adds the outcome rate of "
            "accepted, declined and never-reviewed people.",
        ),
    ] = None,
) -> None:
    """Print the run summary of a month (counts, exclusions, scores, expected PPV, drift) and how
    its list is doing (reviewed, accepted, days to review, outcomes once known)."""
    from casefinder.tables import print_markdown
    from config.db.reviews import read_reviews
    from scoring.performance import list_performance, render_performance
    from scoring.store import ScoreStore, StoreError

    settings = load_settings()
    store = ScoreStore(settings.score_store)
    try:
        run_id = store.resolve(month=month, run_id=run)
        meta = store.meta(run_id)
        text = store.summary(run_id)
        people = store.people(run_id, columns=["person_id", "neighbourhood", "listed"])
    except (StoreError, ValueError) as exc:
        raise fail(str(exc)) from None
    known, note = (
        None,
        "Outcomes: not known yet (give --outcomes EXTRACT once 12 months have passed).",
    )
    if outcomes is not None:
        known, note = _outcomes(outcomes, meta["month"], settings), None
    table = list_performance(people, read_reviews(settings), meta["month"], known)
    print_markdown(console, text + "\n" + render_performance(meta["month"], table, note))
    if not meta["current"]:
        err_console.print(
            f"[bold yellow]Note:[/] {run_id} is not the current run for {meta['month']}"
        )


def _outcomes(extract_dir: Path, month: str, settings: Any) -> Any:
    """The 12-month outcome of everyone eligible at the month's index date, from an extract."""
    from features.dates import FeatureError, Month
    from features.outcome import build_outcome
    from records import open_extract

    extract = open_extract(extract_dir, settings)
    try:
        return build_outcome(extract, Month(month).index_date, settings.outcome)
    except FeatureError as exc:
        raise fail(f"outcomes not known yet: {exc}") from None
    finally:
        extract.con.close()


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="score")(score)
    app.command(name="lists")(lists)
    app.command(name="runs")(runs)
    app.command(name="summary")(summary)
