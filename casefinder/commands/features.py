"""`casefinder` commands for the features stage: features, panel, dictionary, describe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from casefinder.commands.common import (
    PARQUET_OUT_HELP,
    EngineOption,
    ExtractArg,
    check_parquet_out,
    console,
    fail,
    parse_date,
    use_engine,
    write_parquet_file,
)
from casefinder.progress import ProgressFn, progress_bar

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

    from records import Extract


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Turn an unusable extract or an impossible request into a clear message and exit 2."""
    from features import FeatureError
    from records import ExtractError

    try:
        yield
    except ExtractError as exc:
        raise fail(f"extract unusable: {exc}") from None
    except FeatureError as exc:
        raise fail(str(exc)) from None


def _load(path: str, progress: ProgressFn) -> Extract:
    from config.settings import load_settings
    from records import open_extract

    extract = open_extract(path, load_settings(), progress)
    if extract.n_rejected:
        console.print(
            f"[yellow]{extract.n_rejected} rejected rows left out "
            f"(see `casefinder validate {path} --rejects DIR`).[/]"
        )
    return extract


def _write_on_spark(
    df: SparkDataFrame, out: str, progress: ProgressFn, stage: str
) -> SparkDataFrame:
    """`df` written by Spark at `out`, no row through the driver; the written table, read back
    lazily (for counts)."""
    from records.spark import write_parquet

    progress(stage, 0.0)
    written = write_parquet(df, out)
    progress(stage, 1.0)
    return written


def features_command(
    extract: ExtractArg,
    out: Annotated[str, typer.Option("--out", help="Feature table" + PARQUET_OUT_HELP)],
    index_date: Annotated[
        str | None,
        typer.Option("--index-date", help="First day of a month; default: day after extract."),
    ] = None,
    engine: EngineOption = None,
) -> None:
    """Build the feature table: one row per eligible person at the index date."""
    use_engine(engine)
    from features import build_features, build_features_df

    check_parquet_out(out)
    with _clear_errors(), progress_bar(console) as progress:
        loaded = _load(extract, progress)
        day = parse_date(index_date, "--index-date") or (
            loaded.manifest.extract_date + timedelta(days=1)
        )
        if loaded.engine == "spark":  # written by Spark: no person's row reaches the driver
            written = _write_on_spark(build_features_df(loaded, day), out, progress, "features")
            rows, columns = written.count(), len(written.columns)
        else:
            frame = build_features(loaded, day, progress)
            write_parquet_file(frame, out)
            rows, columns = frame.shape
    console.print(f"{rows:,} people x {columns - 4} features at {day} -> {out}")


def panel_command(
    extract: ExtractArg,
    start: Annotated[str, typer.Option("--from", help="First index date (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last index date (YYYY-MM-DD).")],
    out: Annotated[str, typer.Option("--out", help="Panel" + PARQUET_OUT_HELP)],
    every: Annotated[str, typer.Option("--every", help="Step between dates: 1M, 3M, 1Y.")] = "3M",
    include_opted_out: Annotated[
        bool, typer.Option("--include-opted-out", help="Keep people who opted out.")
    ] = False,
    engine: EngineOption = None,
) -> None:
    """Build a training panel: features and outcome at each index date in a range."""
    use_engine(engine)
    from config.settings import load_settings
    from features import build_panel, build_panel_df, index_dates

    check_parquet_out(out)
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    assert first is not None and last is not None
    definition = load_settings().outcome
    with _clear_errors():
        dates = index_dates(first, last, every)
        with progress_bar(console) as progress:
            loaded = _load(extract, progress)
            if loaded.engine == "spark":  # written by Spark: no person's row reaches the driver
                df = build_panel_df(loaded, dates, definition, include_opted_out=include_opted_out)
                written = _write_on_spark(df, out, progress, "panel")
                [(rows, rate)] = written.selectExpr("count(*)", "avg(outcome)").collect()
            else:
                frame = build_panel(
                    loaded, dates, definition, progress, include_opted_out=include_opted_out
                )
                write_parquet_file(frame, out)
                rows, rate = len(frame), frame["outcome"].mean()
    rate = float("nan") if rate is None else rate
    console.print(
        f"{rows:,} rows over {len(dates)} index dates ({dates[0]} to {dates[-1]}), "
        f"outcome rate {rate:.1%} -> {out}"
    )


def dictionary_command(
    out: Annotated[Path, typer.Option("--out", help="Markdown file to write.")] = Path(
        "docs/features.md"
    ),
) -> None:
    """Write the feature dictionary (Markdown) generated from the feature definitions."""
    from features.dictionary import render_dictionary

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_dictionary(), encoding="utf-8")
    console.print(f"Feature dictionary -> {out}")


def describe_command(
    extract: ExtractArg,
    index_date: Annotated[
        str | None,
        typer.Option(
            "--index-date",
            help="First day of a month; default: the latest with an observed outcome.",
        ),
    ] = None,
) -> None:
    """Print the outcome rate and feature distributions by domain at an index date."""
    from casefinder.tables import print_table
    from config.settings import load_settings
    from features import build_features, build_outcome
    from features.dates import check_extract_index_date
    from features.describe import feature_summary, outcome_summary
    from features.outcome import last_observed_index_date, window_end

    definition = load_settings().outcome
    with _clear_errors(), progress_bar(console) as progress:
        loaded = _load(extract, progress)
        manifest = loaded.manifest
        day: date = check_extract_index_date(
            loaded,
            parse_date(index_date, "--index-date")
            or last_observed_index_date(manifest, definition),
        )
        frame = build_features(loaded, day, progress)
        observed = window_end(day, definition) <= min(
            manifest.complete_to_for(t) for t in definition.tables
        )
        outcome = build_outcome(loaded, day, definition) if observed else None

    opted = int(frame["data_opt_out"].sum()) if len(frame) else 0
    console.print(
        f"[bold]Index date {day}[/]: {len(frame):,} eligible people ({opted:,} opted out)"
    )
    if outcome is None:
        console.print(f"Outcome: not yet observed (window ends {window_end(day, definition)}).")
    else:
        rates = outcome_summary(outcome, list(definition.agencies))
        shown = ", ".join(f"{k} {v:.1%}" for k, v in rates.items() if k != "outcome")
        console.print(f"Outcome rate {rates['outcome']:.2%}; agencies involved: {shown}")
    for domain, summary in feature_summary(frame).items():
        rows = [
            [
                row.feature,
                f"{row.missing:.0%}",
                f"{row.non_zero:.0%}",
                f"{row.mean:,.3g}",
                f"{row.p50:,.3g}",
                f"{row.p90:,.3g}",
                f"{row.max:,.3g}",
                row.top,
            ]
            for row in summary.itertuples(index=False)
        ]
        headers = ["Feature", "Missing", "Non-zero", "Mean", "Median", "90th centile", "Max",
                   "Most common"]  # fmt: skip
        print_table(console, headers, rows, title=domain)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="features")(features_command)
    app.command(name="panel")(panel_command)
    app.command(name="dictionary")(dictionary_command)
    app.command(name="describe")(describe_command)
