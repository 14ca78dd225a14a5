"""`casefinder` commands for the training stage: train, promote, rollback, models, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
from casefinder.imports import lightgbm_without_sklearn
from casefinder.progress import progress_bar

# The test-period comparison `train` prints: (column, header, decimals).
COMPARISON = [
    ("auroc", "AUROC", 3),
    ("auroc_gain", "AUROC gain", 4),
    ("auroc_gain_ci", "Gain 95% CI", 3),
    ("auprc", "AUPRC", 3),
    ("brier", "Brier", 3),
    ("calibration_slope", "Calibration slope", 2),
    ("ppv_list", "PPV at list size", 3),
    ("sensitivity_list", "Sensitivity at list size", 3),
]


def _gain(row: dict, column: str) -> str:
    gain = row.get("auroc_gain")
    if gain is None or gain != gain:
        return ""
    if column == "auroc_gain":
        return f"{gain:+.4f}"
    return f"{row['auroc_gain_ci_low']:+.3f} to {row['auroc_gain_ci_high']:+.3f}"


def print_training_result(result: Any) -> None:
    """The test-period comparison of a `training.TrainResult` as a table, the oracle, whether a
    simple baseline matches the booster, and the fairness flags."""
    from casefinder.tables import print_table
    from training.evaluation import baseline_verdict

    rows = []
    for row in result.comparison.to_dict("records"):
        cells = [row["name"]]
        for column, _, digits in COMPARISON:
            if column.startswith("auroc_gain"):
                cells.append(_gain(row, column))
            else:
                value = row[column]
                cells.append("" if value != value else f"{value:.{digits}f}")
        rows.append(cells)
    print_table(
        console,
        ["Model", *(header for _, header, _ in COMPARISON)],
        rows,
        title=f"Test period ({result.counts['test_rows']:,} rows)",
    )
    if result.oracle:
        console.print(
            f"Oracle AUROC on the same rows {result.oracle['auroc']:.3f}; "
            f"model/oracle {result.oracle['ratio']:.3f}"
        )
    verdict = baseline_verdict(result.comparison)
    if verdict:
        console.print(f"[bold yellow]Note:[/] {verdict}")
    flagged = result.fairness[result.fairness["flag"] != ""]
    for row in flagged.itertuples():
        console.print(f"[yellow]Fairness flag[/] {row.attribute} = {row.group}: {row.flag}")


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
    from casefinder.logs import routing_mlflow_prints
    from config.settings import load_settings
    from records import ExtractError

    lightgbm_without_sklearn()
    from training import TrainingError, train

    settings = load_settings()
    try:
        with progress_bar(console) as progress:
            result = train(
                extract, settings, experiment=experiment, tune=tune,
                progress=routing_mlflow_prints(progress),
            )  # fmt: skip
    except (TrainingError, ExtractError) as exc:
        raise fail(str(exc)) from None
    print_training_result(result)
    console.print(
        f"Registered [bold]{settings.mlflow.registered_model}[/] version {result.version} "
        f"(MLflow run {result.run_id})."
    )
    console.print("Promote it with:")
    console.print(f"  casefinder promote --version {result.version}", soft_wrap=True)


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
        _after_promotion(settings, result.version)
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


def _after_promotion(settings, version: str) -> None:
    """What to do next: the months already scored keep their model until scored again; a
    running service picks the champion up by itself."""
    from scoring.store import ScoreStore

    months = ScoreStore(settings.score_store).months()
    console.print("Next:")
    if months:
        console.print(
            f"  - {len(months)} scored month(s) ({months[0]} to {months[-1]}) keep their own "
            f"model's scores. Score the current month again to list with version {version}:"
        )
        console.print(f"    casefinder score EXTRACT --month {months[-1]}", soft_wrap=True)
    else:
        console.print("  - score a month: casefinder score EXTRACT --month YYYY-MM", soft_wrap=True)
    console.print(
        "  - a running service loads the new champion by itself (checked at most every "
        f"{settings.serving.registry_check_seconds:g} s; /status says so): no restart needed."
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
    _after_promotion(settings, result.version)


def models() -> None:
    """List registered model versions, their aliases and promotion records."""
    from casefinder.tables import print_table
    from config.settings import load_settings
    from models.registry import list_versions

    settings = load_settings()
    versions = list_versions(settings)
    columns = {
        "version": "Version",
        "aliases": "Aliases",
        "test_auroc": "Test AUROC",
        "promotion": "Promotion",
        "force_reason": "Forced because",
        "created": "Created (UTC)",
    }
    rows = []
    for row in versions[list(columns)].to_dict("records"):
        row["created"] = str(row["created"])[:16].replace("T", " ")
        row["aliases"] = str(row["aliases"]).replace(",", ", ")
        rows.append([row[c] for c in columns])
    console.print(f"[bold]{settings.mlflow.registered_model}[/] at {settings.tracking_uri}",
                  soft_wrap=True)  # fmt: skip
    print_table(console, list(columns.values()), rows)


def predict(
    extract: ExtractArg,
    index_date: Annotated[str, typer.Option("--index-date", help="First of a month, YYYY-MM-DD.")],
    out: Annotated[str, typer.Option("--out", help="Scores" + PARQUET_OUT_HELP)],
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

    check_parquet_out(out)
    lightgbm_without_sklearn()
    from training import predict
    from training.predict import write_predictions_on_spark

    day = parse_date(index_date, "--index-date")
    assert day is not None
    settings = load_settings()
    try:
        with progress_bar(console) as progress:
            if settings.engine.name == "spark":  # written by Spark: no score through the driver
                people, version = write_predictions_on_spark(
                    extract, day, out, settings, model_ref=model, progress=progress
                )
            else:
                scores = predict(Path(extract), day, settings, model_ref=model, progress=progress)
                write_parquet_file(scores, out)
                people = len(scores)
                version = scores["model_version"].iloc[0] if people else "?"
    except (RegistryError, FeatureError, ExtractError) as exc:
        raise fail(str(exc)) from None
    console.print(f"Scored {people:,} people at {day} with model version {version}: {out}")


def mlflow_ui_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """The `mlflow ui` command line for the tracking store at `tracking_uri`, run with this
    Python (so it works for any CASEFINDER_HOME)."""
    import sys

    return [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
        "--host", host, "--port", str(port),
    ]  # fmt: skip


def mlflow_ui(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 5000,
) -> None:
    """Open the MLflow UI on this home's tracking store: training runs, metrics, the registry."""
    import os
    import sys

    from config.settings import load_settings

    settings = load_settings()
    uri = settings.tracking_uri
    if not uri.startswith("sqlite:"):
        console.print(f"Tracking goes to an MLflow server: open {uri}", soft_wrap=True)
        return
    console.print(f"MLflow UI on {uri}", soft_wrap=True)
    console.print(f"Open http://{host}:{port} (Ctrl-C stops it).", soft_wrap=True)
    sys.stdout.flush()
    os.environ.pop("MLFLOW_CONFIGURE_LOGGING", None)
    os.execv(sys.executable, mlflow_ui_command(uri, host, port))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="train")(train)
    app.command(name="promote")(promote)
    app.command(name="rollback")(rollback)
    app.command(name="models")(models)
    app.command(name="predict")(predict)
    app.command(name="mlflow-ui")(mlflow_ui)
