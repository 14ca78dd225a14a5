"""Log one training run in MLflow and register its model as a new version.

Every file goes to the path `models.artifacts` names for it, where `models.registry` reads it
back. Registering does not promote: the champion alias moves only with `training.registry.promote`.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from config.progress import ProgressFn, no_progress
from config.settings import Settings
from models import artifacts
from models.flavour import log_risk_model
from models.registry import cache_trained_model
from training import plots
from training.description import (
    data_record,
    model_card,
    run_description,
    run_name,
    version_summary,
)
from training.evaluation import MODEL
from training.importance import run_importance
from training.record import RunRecord
from training.tracking import use_experiment

_log = logging.getLogger("casefinder.training")


@dataclass
class LoggedRun:
    """The MLflow run and the registered version it produced, with the version's model card."""

    run_id: str
    version: str
    card: str
    seconds: dict[str, float] = field(default_factory=dict)  # per logging step


def slug(name: str) -> str:
    """A metric-name-safe form of `name`: 'eFI band' -> 'efi_band'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _finite(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def _at(root: Path, artifact: str) -> Path:
    """The local file for `artifact` (a `models.artifacts` path) under `root`."""
    path = root / artifact
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` to parquet with plain (non-category) columns."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(str)
    out.to_parquet(path, index=False)


def _json(value: Any, path: Path) -> None:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


def metrics_of(record: RunRecord) -> dict[str, float]:
    """The run's MLflow metrics: the model's `test_*`, each baseline's `baseline_<name>_*`, the
    row counts and (synthetic data) the oracle's."""
    evaluated = record.evaluation
    out = _finite({f"test_{k}": v for k, v in evaluated.metrics.items()})
    for row in evaluated.comparison.to_dict("records"):
        name = str(row.pop("name"))
        if name != MODEL:
            out |= _finite({f"baseline_{slug(name)}_{k}": v for k, v in row.items()})
    out |= {k: float(v) for k, v in record.counts.items()}
    oracle = evaluated.oracle
    if oracle:
        out |= {
            "oracle_auroc": oracle["auroc"],
            "oracle_rows": oracle["rows"],
            "model_oracle_auroc_ratio": oracle["ratio"],
            "oracle_auroc_headroom": oracle["headroom"],
            "oracle_auroc_headroom_ci_low": oracle["headroom_ci_low"],
            "oracle_auroc_headroom_ci_high": oracle["headroom_ci_high"],
        }
    return out


class _Timer:
    """Seconds spent on each named step of logging a run (`LoggedRun.seconds`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


def _write_plots(record: RunRecord, root: Path, seed: int, timer: _Timer) -> pd.Series:
    """The run's plots; returns the global SHAP importance (mean |SHAP| per feature)."""
    test, scores = record.split.test, record.evaluation.scores
    y = test["outcome"].astype(int).to_numpy()
    paths = {name: _at(root, path) for name, path in artifacts.PLOTS.items()}
    with timer.step("plots: roc, precision-recall, calibration, deciles"):
        plots.roc_plot(y, scores, paths["roc"])
        plots.pr_plot(y, scores, paths["precision_recall"])
        plots.calibration_plot(y, scores[MODEL], paths["calibration"])
        plots.decile_oe_plot(y, scores[MODEL], paths["decile_oe"])
    with timer.step("plots: SHAP importance"):
        if record.shap_importance is not None:  # computed on a thread (`train`)
            importance = record.shap_importance.result()
        else:
            importance = run_importance(record.model.booster, test, record.feature_names, seed)
        plots.importance_plot(importance, paths["shap_importance"])
    return importance


def rounded(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """`frame` with its float columns rounded (tables a person reads: no 16-digit floats)."""
    out = frame.copy()
    floats = out.select_dtypes(include="float").columns
    out[floats] = out[floats].round(digits)
    return out


def _write_files(record: RunRecord, settings: Settings, root: Path, timer: _Timer) -> None:
    """Every run artifact but the model, its card and the MLflow fairness table, under `root`."""
    cfg, evaluated, split = settings.training, record.evaluation, record.split
    with timer.step("data record, settings, tables"):
        _json(data_record(record, settings), _at(root, artifacts.EXTRACT_RECORD))
        _json(cfg.model_dump(mode="json"), _at(root, artifacts.TRAINING_SETTINGS))
        evaluated.comparison.to_csv(_at(root, artifacts.COMPARISON), index=False)
        evaluated.deciles.to_csv(_at(root, artifacts.DECILES), index=False)
        _json(evaluated.summary(record.counts), _at(root, artifacts.EVALUATION))
        rounded(evaluated.fairness).to_csv(_at(root, artifacts.FAIRNESS), index=False)
    importance = _write_plots(record, root, cfg.seed, timer)
    importance.sort_values(ascending=False).round(6).to_csv(_at(root, artifacts.SHAP_IMPORTANCE))
    with timer.step("training sample and test set"):
        # Copies of rows, never with person ids.
        sample = split.train.sample(
            min(len(split.train), cfg.training_sample_rows), random_state=cfg.seed
        )
        _parquet(sample.drop(columns="person_id"), _at(root, artifacts.TRAINING_SAMPLE))
        _parquet(split.test.drop(columns="person_id"), _at(root, artifacts.TEST_SET))


def log_run(
    record: RunRecord,
    settings: Settings,
    experiment: str | None = None,
    progress: ProgressFn | None = None,
) -> LoggedRun:
    """Log `record` as one MLflow run in `experiment` (default `[mlflow] experiment`), named and
    described for what it is and timed from the start of training (`record.started`), and
    register its model as a new version of `[mlflow] registered_model`, described by its model
    card under a one-line summary."""
    progress = progress or no_progress
    progress("log run", 0.0)
    timer = _Timer()
    with timer.step("experiment"):
        experiment_id = use_experiment(settings, experiment)
    registered = settings.mlflow.registered_model
    info = record.extract_info
    client = mlflow.MlflowClient()
    created = client.create_run(
        experiment_id,
        start_time=int(1000 * record.started) if record.started else None,
        run_name=run_name(record, settings),
        tags={
            "casefinder.stage": "train",
            "extract_date": info.get("extract_date", ""),
            "data_kind": info.get("data_kind", ""),
            "mlflow.note.content": run_description(record),
        },
    )
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=created.info.run_id):
        run_id = created.info.run_id
        files, work = Path(tmp) / "artifacts", Path(tmp) / "work"
        with timer.step("params"):
            mlflow.log_params(record.params)
        _write_files(record, settings, files, timer)
        with timer.step("upload files"):
            mlflow.log_artifacts(str(files))
        with timer.step("fairness table"):
            mlflow.log_table(rounded(record.evaluation.fairness), artifacts.FAIRNESS_TABLE)
        progress("log run", 0.5)

        with timer.step("model (log and register)"):
            logged = log_risk_model(
                record.model,
                record.split.test,
                work,
                registered_model_name=registered,
                name=artifacts.MODEL_NAME,
            )
        with timer.step("metrics"):
            # After the model: MLflow links metrics logged then to the run's model. Logged
            # before, `log_model` reads each one back to link it (0.2 s for ~120 metrics).
            mlflow.log_metrics(metrics_of(record))
        version = str(logged.registered_model_version)
        cache_trained_model(settings, version, run_id, record.model)
        with timer.step("model card and version tags"):
            card = model_card(record, settings, version=version, run_id=run_id)
            mlflow.log_text(card, artifacts.MODEL_CARD)
            client.set_model_version_tag(registered, version, "run_id", run_id)
            auroc = record.evaluation.metrics["auroc"]
            client.set_model_version_tag(registered, version, "test_auroc", f"{auroc:.4f}")
            summary = version_summary(record, settings, version)
            client.update_model_version(registered, version, description=f"{summary}\n\n{card}")
            mlflow.set_tag("registered_model_version", version)
        progress("log run", 1.0)
    for step, seconds in timer.seconds.items():
        _log.info("log run: %s %.3f s", step, seconds)
    return LoggedRun(run_id=run_id, version=version, card=card, seconds=timer.seconds)
