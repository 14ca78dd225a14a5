"""`train`: panel -> split -> booster -> calibrator -> evaluation -> one MLflow run and version.

Each step is its own module: the index dates and the split (`training.data`), the booster
(`training.fit`), the evaluation (`training.evaluation`), the run's description and model card
(`training.description`) and its MLflow logging (`training.run_log`); the modelled population is
`features.cohort.modelled_population`. This module runs them in order.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from config.progress import ProgressFn, no_progress
from config.settings import Settings, load_settings
from features.cohort import PersonSample, modelled_population, population_rules
from features.dates import history_start
from models.risk_model import PlattCalibrator, RiskModel
from synthetic import ORACLE_FILE
from training.data import Split, TrainingError, read_oracle, split_panel, training_index_dates
from training.fit import Fitted, fit_booster
from training.importance import run_importance_on_thread
from training.record import RunRecord

__all__ = [
    "TrainResult",
    "TrainingPanel",
    "build_training_panel",
    "read_oracle",
    "train",
    "train_on_panel",
]


@dataclass
class TrainResult:
    """What one training run produced and logged."""

    run_id: str
    version: str
    model: RiskModel
    metrics: dict[str, float]
    comparison: pd.DataFrame  # one row per model/baseline: test metrics
    fairness: pd.DataFrame
    deciles: pd.DataFrame
    counts: dict[str, int]
    card: str
    oracle: dict[str, float] | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingPanel:
    """The panel built from an extract for training, with what is known about its source."""

    panel: pd.DataFrame
    feature_names: list[str]
    extract_info: dict[str, Any]
    oracle: pd.DataFrame | None


def build_training_panel(
    extract_dir: Path, settings: Settings, progress: ProgressFn | None = None
) -> TrainingPanel:
    """Load the extract and build features and outcome on its complete index dates."""
    import features
    from features.outcome import last_observed_index_date
    from records import open_extract

    progress = progress or no_progress
    extract_dir = Path(extract_dir)
    extract = open_extract(extract_dir, settings, progress)
    start = history_start(extract)
    if start is None:
        raise TrainingError(f"{extract.path}: the extract holds no dated records")
    dates = training_index_dates(
        start,
        last_observed_index_date(extract.manifest, settings.outcome),
        settings.training,
        outcome_months=settings.outcome.window_months,
    )
    # Opted-out people are never trained on: not even read into the panel (the modelled
    # population leaves them out as well). A seeded sample of people, when set, is drawn in the
    # query: on Spark only the sample reaches the driver.
    sample = PersonSample.for_training(settings)
    panel = features.build_panel(
        extract, dates, definition=settings.outcome, progress=progress, include_opted_out=False,
        sample=sample,
    )  # fmt: skip
    info = {
        "path": str(extract_dir.resolve()),
        "extract_date": extract.manifest.extract_date.isoformat(),
        "complete_to": {t: d.isoformat() for t, d in extract.manifest.complete_to.items()},
        "tables": {
            name: {"read": r.read, "loaded": r.loaded, "rejected": r.rejected}
            for name, r in extract.reports.items()
        },
        "index_dates": [d.isoformat() for d in dates],
        "panel_rows": len(panel),
        "people_sample": {
            "fraction": 1.0 if sample is None else sample.fraction,
            "seed": None if sample is None else sample.seed,
            "words": (sample or PersonSample(1.0, 0)).describe(),
        },
        "data_kind": "synthetic" if (extract_dir / ORACLE_FILE).is_file() else "records",
    }
    return TrainingPanel(
        panel=panel,
        feature_names=list(features.model_feature_names()),
        extract_info=info,
        oracle=read_oracle(extract_dir),
    )


def train(
    extract_dir: Path,
    settings: Settings | None = None,
    experiment: str | None = None,
    tune: int = 0,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Load the extract, build the training panel on complete index dates, and train, evaluate,
    log and register a model. Raises `TrainingError` (or the loader's `ExtractError`)."""
    started = time.time()
    settings = settings or load_settings()
    prepared = _prepare_logging(settings)
    built = build_training_panel(Path(extract_dir), settings, progress)
    return train_on_panel(
        built.panel,
        feature_names=built.feature_names,
        settings=settings,
        extract_info=built.extract_info,
        oracle=built.oracle,
        experiment=experiment,
        tune=tune,
        progress=progress,
        started=started,
        prepared=prepared,
    )


# Logging the run needs MLflow and matplotlib, 3-4 s to import, and MLflow's stores, about a
# second to open (a SQLite store checks its schema); calibration, baselines and evaluation need
# scikit-learn, about a second (the CLI loads LightGBM without it: casefinder.imports). `train`
# does all that on a thread while the panel is built inside DuckDB (which releases the GIL), so
# little of it is waited for.
SKLEARN_MODULES = ("training.evaluation", "training.baselines")  # scikit-learn users
LOGGING_MODULE = "training.run_log"


def _prepare_logging(settings: Settings) -> threading.Thread:
    """Start importing `SKLEARN_MODULES` and `LOGGING_MODULE` and opening the tracking and
    registry stores on a daemon thread (MLflow keeps one store per URI, so logging later finds
    them open). A failure is left for the main thread, which does the same again and reports it."""

    def prepare() -> None:
        with contextlib.suppress(Exception):
            for name in (*SKLEARN_MODULES, LOGGING_MODULE):
                importlib.import_module(name)
            from training.tracking import open_stores

            open_stores(settings)
            # What `log_model` does first: import the pyfunc flavour (0.3 s) and map installed
            # packages to modules (0.6 s; MLflow keeps the map) to check the model's
            # requirements against this environment. A private MLflow function: if it goes,
            # the suppress above skips it and `log_model` builds the map itself.
            import mlflow.pyfunc  # noqa: F401
            from mlflow.utils import requirements_utils

            requirements_utils._init_packages_to_modules_map()

    thread = threading.Thread(target=prepare, name="prepare run logging", daemon=True)
    thread.start()
    return thread


def _matrix(rows: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    return rows[feature_names].astype(np.float64)


def _outcome(rows: pd.DataFrame) -> np.ndarray:
    return rows["outcome"].astype(int).to_numpy()


def _modelled(panel: pd.DataFrame, settings: Settings) -> np.ndarray:
    """True for the panel rows in the modelled population (`features.cohort`)."""
    try:
        reviews = None
        if settings.training.exclude_after_mdt_acceptance:
            from config.db.reviews import read_reviews

            reviews = read_reviews(settings)
        return modelled_population(panel, settings, reviews).to_numpy()
    except ValueError as exc:  # a flag the population rules read is missing
        raise TrainingError(
            f"the training panel cannot be filtered to the modelled population: {exc}"
        ) from None


def _params(
    fitted: Fitted,
    split: Split,
    model: RiskModel,
    n_features: int,
    settings: Settings,
    extract_info: dict[str, Any],
) -> dict[str, Any]:
    """The run's MLflow parameters."""
    cfg = settings.training
    sample = extract_info.get("people_sample") or {}
    return {
        **{k: v for k, v in fitted.params.items() if k not in ("verbosity", "metric")},
        "best_iteration": fitted.best_iteration,
        "tune_trials": fitted.trials,
        "n_features": n_features,
        "train_dates": ",".join(d.isoformat() for d in split.train_dates),
        "validation_dates": ",".join(d.isoformat() for d in split.validation_dates),
        "test_dates": ",".join(d.isoformat() for d in split.test_dates),
        "population": "; ".join(population_rules(settings)),
        "also_exclude_caseloads": ",".join(cfg.also_exclude_caseloads),
        "list_size": settings.lists.capacity,
        "split_seed": cfg.split_seed,
        # The share of people the panel was built from (`[engine] training_sample_fraction`).
        "training_sample_fraction": sample.get("fraction", 1.0),
        "training_sample_seed": sample.get("seed"),
        "calibrator_slope": round(model.calibrator.slope, 6),
        "calibrator_intercept": round(model.calibrator.intercept, 6),
    }


def train_on_panel(
    panel: pd.DataFrame,
    feature_names: list[str],
    settings: Settings,
    extract_info: dict[str, Any],
    oracle: pd.DataFrame | None = None,
    experiment: str | None = None,
    tune: int = 0,
    progress: ProgressFn | None = None,
    started: float | None = None,
    prepared: threading.Thread | None = None,
) -> TrainResult:
    """Train, evaluate, log and register a model from a built panel (see `train`); `started`
    (epoch seconds, default now) is when training began, the MLflow run's start time;
    `prepared`: `train`'s thread preparing the logging, waited for before logging."""
    started = started or time.time()
    progress = progress or no_progress
    cfg = settings.training
    missing = [c for c in ["person_id", "index_date", "outcome", *feature_names] if c not in panel]
    if missing:
        raise TrainingError(f"the training panel lacks columns: {', '.join(missing)}")
    # Each step reports 0.0 when it starts and 1.0 when it ends.
    progress("split panel", 0.0)
    in_population = _modelled(panel, settings)
    modelled = panel[in_population]
    split = split_panel(modelled, cfg)
    progress("split panel", 1.0)

    progress("fit booster", 0.0)
    fitted = fit_booster(
        _matrix(split.train, feature_names),
        _outcome(split.train),
        _matrix(split.validation, feature_names),
        _outcome(split.validation),
        cfg,
        tune_trials=tune,
        progress=progress,
    )

    progress("calibrate", 0.0)
    margin = fitted.booster.predict(_matrix(split.validation, feature_names), raw_score=True)
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    model = RiskModel(
        booster=fitted.booster,
        calibrator=PlattCalibrator().fit(margin, _outcome(split.validation)),
        feature_names=list(feature_names),
        metadata={
            "trained_at": trained_at,
            "extract_date": extract_info.get("extract_date"),
            "test_dates": [d.isoformat() for d in split.test_dates],
        },
    )
    progress("calibrate", 1.0)
    importance = run_importance_on_thread(fitted.booster, split.test, feature_names, cfg.seed)

    from training.evaluation import evaluate_model  # scikit-learn: see SKLEARN_MODULES

    evaluated = evaluate_model(model, split, modelled, feature_names, settings, oracle, progress)
    record = RunRecord(
        model=model,
        split=split,
        evaluation=evaluated,
        feature_names=list(feature_names),
        extract_info=extract_info,
        params=_params(fitted, split, model, len(feature_names), settings, extract_info),
        counts={
            **split.counts(),
            "excluded_rows": int((~in_population).sum()),
            "panel_rows": len(panel),
        },
        trained_at=trained_at,
        started=started,
        shap_importance=importance,
    )
    if prepared is not None:
        prepared.join()  # one thread opens a store at a time
    from training.run_log import log_run  # see LOGGING_MODULE

    logged = log_run(record, settings, experiment, progress)
    return TrainResult(
        run_id=logged.run_id,
        version=logged.version,
        model=model,
        metrics=evaluated.metrics,
        comparison=evaluated.comparison,
        fairness=evaluated.fairness,
        deciles=evaluated.deciles,
        counts=record.counts,
        card=logged.card,
        oracle=evaluated.oracle,
        params=record.params,
    )
