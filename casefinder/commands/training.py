"""`casefinder` commands for the training stage: train, promote, rollback, models, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from casefinder.commands.common import EngineOption, console, fail, parse_date, use_engine
from casefinder.progress import progress_bar


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.3f}"
    return str(value)


def train(
    extract: Annotated[Path, typer.Argument(help="Extract folder (manifest.json + tables).")],
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="MLflow experiment (default: settings).")
    ] = None,
    tune: Annotated[
        int, typer.Option("--tune", min=0, help="Optuna trials for hyperparameters (0: none).")
    ] = 0,
    engine: EngineOption = None,
) -> None:
    """Train, evaluate and register a model on an extract's complete index dates."""
    use_engine(engine)
    from config.settings import load_settings
    from records import ExtractError
    from training import TrainingError, train

    settings = load_settings()
    try:
        with progress_bar(console) as progress:
            result = train(extract, settings, experiment=experiment, tune=tune, progress=progress)
    except (TrainingError, ExtractError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"Test period ({result.counts['test_rows']} rows)")
    columns = ["auroc", "auprc", "brier", "calibration_slope", "ppv_list", "sensitivity_list"]
    table.add_column("model")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for row in result.comparison.to_dict("records"):
        table.add_row(str(row["name"]), *(_fmt(row[c]) for c in columns))
    console.print(table)
    if result.oracle:
        console.print(
            f"Oracle AUROC on the same rows {result.oracle['auroc']:.3f}; "
            f"model/oracle {result.oracle['ratio']:.3f}"
        )
    flagged = result.fairness[result.fairness["flag"] != ""]
    for row in flagged.itertuples():
        console.print(f"[yellow]Fairness flag[/] {row.attribute} = {row.group}: {row.flag}")
    console.print(
        f"Registered [bold]{settings.mlflow.registered_model}[/] version {result.version} "
        f"(run {result.run_id}). Promote it with: casefinder promote --version {result.version}"
    )


def promote(
    version: Annotated[
        str | None, typer.Option("--version", help="Version to promote (default: latest).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Skip the gates (needs --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why the gate is overridden (recorded).")
    ] = None,
) -> None:
    """Make a model version the champion if it passes the promotion gates."""
    from config.settings import load_settings
    from models.registry import RegistryError
    from training import promote

    settings = load_settings()
    try:
        result = promote(settings, version, force=force, reason=reason)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    for gate in result.gates:
        mark = "[green]pass[/]" if gate.passed else "[red]FAIL[/]"
        console.print(f"{mark} {gate.name}: {gate.detail}")
    if result.promoted:
        how = f"forced: {result.reason}" if result.forced else "all gates passed"
        console.print(
            f"Version {result.version} is now champion ({how}); "
            f"previous champion: {result.previous or 'none'}"
        )
        return
    if result.previous == result.version:
        console.print(f"Version {result.version} is already champion.")
        return
    failed = ", ".join(g.name for g in result.failed)
    raise fail(
        f"version {result.version} not promoted: failed gate(s) {failed}. "
        "Override with --force --reason TEXT.",
        code=1,
    )


def rollback(
    version: Annotated[
        str | None,
        typer.Option("--version", help="Version to restore (default: the previous champion)."),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "rollback",
) -> None:
    """Make an earlier version champion again (recorded as a forced promotion)."""
    from config.settings import load_settings
    from models.registry import RegistryError
    from training import rollback

    settings = load_settings()
    try:
        result = rollback(settings, version, reason=reason)
    except RegistryError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"Version {result.version} is champion again (was {result.previous or 'none'}): "
        f"{result.reason}"
    )


def models() -> None:
    """List registered model versions, their aliases and promotion records."""
    from config.settings import load_settings
    from models.registry import list_versions

    settings = load_settings()
    versions = list_versions(settings)
    columns = ["version", "aliases", "test_auroc", "promotion", "force_reason", "created"]
    table = Table(title=f"{settings.mlflow.registered_model} ({settings.tracking_uri})")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in versions[columns].itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    console.print(table)


def predict(
    extract: Annotated[Path, typer.Argument(help="Extract folder (manifest.json + tables).")],
    index_date: Annotated[str, typer.Option("--index-date", help="First of a month, YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    model: Annotated[
        str, typer.Option("--model", help="Version number or alias (default: champion).")
    ] = "champion",
    engine: EngineOption = None,
) -> None:
    """Score every eligible person at an index date with a registered model."""
    use_engine(engine)
    from config.settings import load_settings
    from features import FeatureError
    from models.registry import RegistryError
    from records import ExtractError
    from training import predict

    day = parse_date(index_date, "--index-date")
    assert day is not None
    settings = load_settings()
    try:
        with progress_bar(console) as progress:
            scores = predict(extract, day, settings, model_ref=model, progress=progress)
    except (RegistryError, FeatureError, ExtractError) as exc:
        raise fail(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(out, index=False)
    version = scores["model_version"].iloc[0] if len(scores) else "?"
    console.print(f"Scored {len(scores)} people at {day} with model version {version}: {out}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="train")(train)
    app.command(name="promote")(promote)
    app.command(name="rollback")(rollback)
    app.command(name="models")(models)
    app.command(name="predict")(predict)
