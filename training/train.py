"""`train`: panel -> split -> booster -> calibrator -> evaluation -> one MLflow run and version."""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from config.progress import ProgressFn, no_progress
from config.settings import ListSettings, Settings, load_settings
from models.card import render_model_card
from models.flavour import log_risk_model
from models.risk_model import PlattCalibrator, RiskModel
from training import plots
from training.baselines import fit_baselines
from training.data import (
    Split,
    TrainingError,
    population_mask,
    split_panel,
    training_index_dates,
)
from training.fairness import fairness_table
from training.metrics import auroc_difference, decile_table, evaluate, list_flags
from training.tracking import use_experiment

ORACLE_FILE = "oracle.parquet"
# Artifact paths inside a run (read back by training.registry).
TRAINING_SAMPLE = "data/training_sample.parquet"
TEST_SET = "data/test_set.parquet"
EVALUATION = "evaluation/evaluation.json"
FAIRNESS = "fairness/fairness.csv"
MODEL_NAME = "risk_model"
# Date columns of the event tables: the earliest record dates the start of the extract's history.
EVENT_DATES = {
    "gp_events": "event_date",
    "prescriptions": "issue_date",
    "hospital_spells": "admission_date",
    "ae_attendances": "arrival_date",
    "outpatient_appointments": "appointment_date",
    "community_contacts": "contact_date",
    "social_care": "start_date",
    "mental_health_contacts": "contact_date",
}
DEFAULT_OUTCOME_TEXT = (
    "Complex multi-agency need within 12 months of the index date (docs/linked-records.md): "
    "two or more of acute hospital (an emergency admission), community health (intermediate "
    "care, or 6+ district nursing / community matron contacts), adult social care (a new "
    "long-term or reablement service or direct payment) and mental health (crisis or older "
    "adult CMHT contact), or a new long-term residential or nursing care placement."
)


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


def slug(name: str) -> str:
    """A metric-name-safe form of `name`: 'eFI band' -> 'efi_band'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def first_record_date(extract: Any) -> date:
    """The earliest event date in the extract (start of its history)."""
    parts = [f"SELECT min({col}) AS d FROM {table}" for table, col in EVENT_DATES.items()]
    row = extract.con.execute(f"SELECT min(d) FROM ({' UNION ALL '.join(parts)})").fetchone()
    if row is None or row[0] is None:
        raise TrainingError(f"{extract.path}: the extract holds no dated records")
    value = row[0]
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def read_oracle(extract_dir: Path) -> pd.DataFrame | None:
    """The generator's true risks (person_id, index_date, probability), when present."""
    path = Path(extract_dir) / ORACLE_FILE
    if not path.is_file():
        return None
    oracle = pd.read_parquet(path)
    oracle["person_id"] = oracle["person_id"].astype(str)
    oracle["index_date"] = pd.to_datetime(oracle["index_date"]).dt.date
    return oracle[["person_id", "index_date", "probability"]]


def describe_outcome(outcome: Any) -> str:
    """The outcome definition in words, from the outcome settings."""
    try:
        agencies = outcome.agencies
        parts = []
        for name, rules in agencies.items():
            said = " or ".join(_describe_rule(r) for r in rules)
            parts.append(f"{name.replace('_', ' ')} ({said})")
        always = " or ".join(_describe_rule(r) for r in outcome.always_counts)
        text = (
            f"Within {outcome.window_months} months of the index date, at least "
            f"{outcome.min_agencies} of these agencies involved: {'; '.join(parts)}"
        )
        return text + (f"; or always when {always}." if always else ".")
    except AttributeError:
        return DEFAULT_OUTCOME_TEXT


def _describe_rule(rule: Any) -> str:
    count = f"{rule.min_count}+ " if rule.min_count > 1 else "a "
    where = "".join(f", {c} {'/'.join(v)}" for c, v in rule.where.items())
    return f"{count}{rule.table} row with {rule.column} {'/'.join(rule.values)}{where}"


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
    extract = open_extract(Path(extract_dir), settings, progress)
    dates = training_index_dates(
        first_record_date(extract),
        last_observed_index_date(extract.manifest, settings.outcome),
        settings.training,
        outcome_months=settings.outcome.window_months,
    )
    panel = features.build_panel(
        extract,
        dates,
        definition=settings.outcome,
        progress=progress,
        include_opted_out=not settings.training.exclude_opted_out,
    )
    info = {
        "path": str(Path(extract_dir).resolve()),
        "extract_date": extract.manifest.extract_date.isoformat(),
        "complete_to": {t: d.isoformat() for t, d in extract.manifest.complete_to.items()},
        "tables": {
            name: {"read": r.read, "loaded": r.loaded, "rejected": r.rejected}
            for name, r in extract.reports.items()
        },
        "index_dates": [d.isoformat() for d in dates],
        "panel_rows": len(panel),
        "data_kind": "synthetic" if (Path(extract_dir) / ORACLE_FILE).is_file() else "records",
    }
    return TrainingPanel(
        panel=panel,
        feature_names=list(features.model_feature_names()),
        extract_info=info,
        oracle=read_oracle(Path(extract_dir)),
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
    settings = settings or load_settings()
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
    )


def _list_share(
    modelled: pd.DataFrame, test_dates: list[date], lists: ListSettings
) -> dict[str, float]:
    """Each neighbourhood's list size ([lists] capacity) over its modelled population at the
    test date(s): the share of its people a monthly list takes."""
    at_test = modelled[pd.to_datetime(modelled["index_date"]).dt.date.isin(test_dates)]
    sizes = at_test.groupby("neighbourhood").size() / max(1, len(test_dates))
    return {
        str(n): min(1.0, lists.capacity_of(str(n)) / size) for n, size in sizes.items() if size > 0
    }


def _matrix(rows: pd.DataFrame, feature_names: list[str]) -> pd.DataFrame:
    return rows[feature_names].astype(np.float64)


def _oracle_metrics(
    test: pd.DataFrame, p_model: np.ndarray, oracle: pd.DataFrame | None
) -> dict[str, float] | None:
    if oracle is None:
        return None
    from sklearn.metrics import roc_auc_score

    keys = pd.DataFrame(
        {
            "person_id": test["person_id"].astype(str).to_numpy(),
            "index_date": pd.to_datetime(test["index_date"]).dt.date.to_numpy(),
            "model": p_model,
            "outcome": test["outcome"].astype(int).to_numpy(),
        }
    )
    joined = keys.merge(oracle, on=["person_id", "index_date"], how="inner")
    y = joined["outcome"].to_numpy()
    if len(joined) == 0 or y.min() == y.max():
        return None
    oracle_auroc = float(roc_auc_score(y, joined["probability"]))
    model_auroc = float(roc_auc_score(y, joined["model"]))
    headroom = auroc_difference(y, joined["probability"].to_numpy(), joined["model"].to_numpy())
    return {
        "rows": float(len(joined)),
        "auroc": oracle_auroc,
        "model_auroc": model_auroc,
        "ratio": model_auroc / oracle_auroc,
        # what the oracle's AUROC exceeds the model's by, with DeLong's 95% interval
        "headroom": headroom.difference,
        "headroom_ci_low": headroom.ci_low,
        "headroom_ci_high": headroom.ci_high,
    }


def _with_auroc_gains(
    comparison: pd.DataFrame, y: np.ndarray, scores: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Add the model's AUROC gain over each row's score, with DeLong's 95% interval and p-value
    (NaN on the model's own row)."""
    gains = [
        auroc_difference(y, scores["model"], scores[name]) if name != "model" else None
        for name in comparison["name"]
    ]
    out = comparison.copy()
    for column, attribute in (
        ("auroc_gain", "difference"),
        ("auroc_gain_ci_low", "ci_low"),
        ("auroc_gain_ci_high", "ci_high"),
        ("auroc_gain_p", "p_value"),
    ):
        out[column] = [getattr(g, attribute) if g else math.nan for g in gains]
    return out


def train_on_panel(
    panel: pd.DataFrame,
    feature_names: list[str],
    settings: Settings,
    extract_info: dict[str, Any],
    oracle: pd.DataFrame | None = None,
    experiment: str | None = None,
    tune: int = 0,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train, evaluate, log and register a model from a built panel (see `train`)."""
    from training.fit import fit_booster

    progress = progress or no_progress
    cfg = settings.training
    missing = [c for c in ["person_id", "index_date", "outcome", *feature_names] if c not in panel]
    if missing:
        raise TrainingError(f"the training panel lacks columns: {', '.join(missing)}")
    # Each step reports 0.0 when it starts and 1.0 when it ends.
    progress("split panel", 0.0)
    mask = population_mask(panel, cfg)
    modelled = panel[mask.to_numpy()]
    split: Split = split_panel(modelled, cfg)
    progress("split panel", 1.0)

    progress("fit booster", 0.0)
    fitted = fit_booster(
        _matrix(split.train, feature_names),
        split.train["outcome"].astype(int).to_numpy(),
        _matrix(split.validation, feature_names),
        split.validation["outcome"].astype(int).to_numpy(),
        cfg,
        tune_trials=tune,
        progress=progress,
    )
    progress("calibrate", 0.0)
    valid_margin = fitted.booster.predict(_matrix(split.validation, feature_names), raw_score=True)
    calibrator = PlattCalibrator().fit(valid_margin, split.validation["outcome"].astype(int))
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    model = RiskModel(
        booster=fitted.booster,
        calibrator=calibrator,
        feature_names=list(feature_names),
        metadata={
            "trained_at": trained_at,
            "extract_date": extract_info.get("extract_date"),
            "test_dates": [d.isoformat() for d in split.test_dates],
        },
    )
    progress("calibrate", 1.0)

    progress("evaluate", 0.0)
    test = split.test
    y = test["outcome"].astype(int).to_numpy()
    p = model.predict_proba(test)
    share = _list_share(modelled, split.test_dates, settings.lists)
    nbhd = test["neighbourhood"].astype(str).to_numpy()
    metrics = evaluate(y, p, cfg.top_fractions, nbhd, share)
    scores = {"model": p}
    rows = [{"name": "model", **metrics}]
    progress("baselines", 0.0)
    for baseline in fit_baselines(
        split.train, split.validation, feature_names, cfg.baselines, seed=cfg.seed
    ):
        scores[baseline.name] = baseline.predict(test)
        rows.append(
            {
                "name": baseline.name,
                **evaluate(y, scores[baseline.name], cfg.top_fractions, nbhd, share),
            }
        )
    comparison = _with_auroc_gains(pd.DataFrame(rows), y, scores)
    progress("baselines", 1.0)
    progress("fairness and oracle", 0.0)
    fairness = fairness_table(test, y, p, list_flags(p, nbhd, share), cfg)
    deciles = decile_table(y, p)
    oracle_metrics = _oracle_metrics(test, p, oracle)
    progress("fairness and oracle", 1.0)

    counts = {**split.counts(), "excluded_rows": int((~mask).sum()), "panel_rows": len(panel)}
    params = {
        **{k: v for k, v in fitted.params.items() if k not in ("verbosity", "metric")},
        "best_iteration": fitted.best_iteration,
        "tune_trials": fitted.trials,
        "n_features": len(feature_names),
        "train_dates": ",".join(d.isoformat() for d in split.train_dates),
        "validation_dates": ",".join(d.isoformat() for d in split.validation_dates),
        "test_dates": ",".join(d.isoformat() for d in split.test_dates),
        "exclude_opted_out": cfg.exclude_opted_out,
        "exclude_care_home": cfg.exclude_care_home,
        "exclude_on_caseload": cfg.exclude_on_caseload,
        "list_size": settings.lists.capacity,
        "split_seed": cfg.split_seed,
        "calibrator_slope": round(calibrator.slope, 6),
        "calibrator_intercept": round(calibrator.intercept, 6),
    }
    return _log_run(
        settings=settings,
        experiment=experiment,
        model=model,
        split=split,
        modelled=modelled,
        feature_names=feature_names,
        extract_info=extract_info,
        params=params,
        metrics=metrics,
        comparison=comparison,
        scores=scores,
        fairness=fairness,
        deciles=deciles,
        oracle_metrics=oracle_metrics,
        counts=counts,
        share=share,
        trained_at=trained_at,
        progress=progress,
    )


def _population_rules(settings: Settings) -> list[str]:
    cfg = settings.training
    rules = []
    if cfg.exclude_care_home:
        rules.append("not living in a care home")
    if cfg.exclude_on_caseload:
        rules.append("not already on a case-management caseload")
    if cfg.exclude_opted_out:
        rules.append("and not opted out of secondary use of their data (national data opt-out)")
    return rules or ["with no further exclusions"]


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def _log_run(
    *,
    settings: Settings,
    experiment: str | None,
    model: RiskModel,
    split: Split,
    modelled: pd.DataFrame,
    feature_names: list[str],
    extract_info: dict[str, Any],
    params: dict[str, Any],
    metrics: dict[str, float],
    comparison: pd.DataFrame,
    scores: dict[str, np.ndarray],
    fairness: pd.DataFrame,
    deciles: pd.DataFrame,
    oracle_metrics: dict[str, float] | None,
    counts: dict[str, int],
    share: dict[str, float],
    trained_at: str,
    progress: ProgressFn,
) -> TrainResult:
    cfg = settings.training
    test = split.test
    y = test["outcome"].astype(int).to_numpy()
    progress("log run", 0.0)
    use_experiment(settings, experiment)
    registered = settings.mlflow.registered_model
    outcome_text = describe_outcome(settings.outcome)
    data_record = {
        **extract_info,
        "rows": counts,
        "outcome_definition": outcome_text,
        "outcome_settings": settings.outcome.model_dump(mode="json"),
        "population": _population_rules(settings),
    }
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        out = Path(tmp)
        mlflow.set_tags(
            {
                "casefinder.stage": "train",
                "extract_date": extract_info.get("extract_date", ""),
                "data_kind": extract_info.get("data_kind", ""),
            }
        )
        mlflow.log_params(params)
        mlflow.log_dict(data_record, "data/extract.json")
        mlflow.log_dict(settings.training.model_dump(mode="json"), "data/training_settings.json")
        mlflow.log_metrics(_finite({f"test_{k}": v for k, v in metrics.items()}))
        for row in comparison.to_dict("records")[1:]:
            name = slug(str(row.pop("name")))
            mlflow.log_metrics(_finite({f"baseline_{name}_{k}": v for k, v in row.items()}))
        mlflow.log_metrics({k: float(v) for k, v in counts.items()})
        if oracle_metrics:
            mlflow.log_metrics(
                {
                    "oracle_auroc": oracle_metrics["auroc"],
                    "oracle_rows": oracle_metrics["rows"],
                    "model_oracle_auroc_ratio": oracle_metrics["ratio"],
                    "oracle_auroc_headroom": oracle_metrics["headroom"],
                    "oracle_auroc_headroom_ci_low": oracle_metrics["headroom_ci_low"],
                    "oracle_auroc_headroom_ci_high": oracle_metrics["headroom_ci_high"],
                }
            )

        plot_dir = out / "plots"
        plot_dir.mkdir()
        plots.roc_plot(y, scores, plot_dir / "roc.png")
        plots.pr_plot(y, scores, plot_dir / "precision_recall.png")
        plots.calibration_plot(y, scores["model"], plot_dir / "calibration.png")
        plots.decile_oe_plot(y, scores["model"], plot_dir / "decile_oe.png")
        sample = test.sample(min(len(test), 5000), random_state=cfg.seed)
        importance = plots.global_shap_importance(model.booster, sample[feature_names])
        plots.importance_plot(importance, plot_dir / "shap_importance.png")
        mlflow.log_artifacts(str(plot_dir), "plots")

        eval_dir = out / "evaluation"
        eval_dir.mkdir()
        comparison.to_csv(eval_dir / "comparison.csv", index=False)
        deciles.to_csv(eval_dir / "deciles.csv", index=False)
        importance.sort_values(ascending=False).to_csv(eval_dir / "shap_importance.csv")
        (eval_dir / "evaluation.json").write_text(
            json.dumps(
                {
                    "metrics": metrics,
                    "oracle": oracle_metrics,
                    "list_share": share,
                    "counts": counts,
                    "fairness_flags": sorted(
                        f"{r.attribute}={r.group}" for r in fairness.itertuples() if r.flag
                    ),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        mlflow.log_artifacts(str(eval_dir), "evaluation")
        fair_dir = out / "fairness"
        fair_dir.mkdir()
        fairness.to_csv(fair_dir / "fairness.csv", index=False)
        mlflow.log_artifacts(str(fair_dir), "fairness")
        mlflow.log_table(fairness, "fairness/fairness_table.json")

        data_dir = out / "data"
        data_dir.mkdir()
        drop = ["person_id"]
        train_sample = split.train.sample(
            min(len(split.train), cfg.training_sample_rows), random_state=cfg.seed
        ).drop(columns=drop)
        _parquet(train_sample, data_dir / "training_sample.parquet")
        _parquet(test.drop(columns=drop), data_dir / "test_set.parquet")
        mlflow.log_artifacts(str(data_dir), "data")
        progress("log run", 0.5)

        info = log_risk_model(model, test, out / "model", registered_model_name=registered)
        version = str(info.registered_model_version)
        card_context = {
            "registered_model": registered,
            "version": version,
            "run_id": run.info.run_id,
            "trained_at": trained_at,
            "list_size": settings.lists.capacity,
            "population_rules": _population_rules(settings),
            "outcome_text": outcome_text,
            "extract_path": extract_info.get("path", "(panel)"),
            "extract_date": extract_info.get("extract_date", "unknown"),
            "complete_to": extract_info.get("complete_to", {}),
            "every_months": cfg.every_months,
            "train_dates": ", ".join(d.isoformat() for d in split.train_dates),
            "validation_dates": ", ".join(d.isoformat() for d in split.validation_dates),
            "test_dates": ", ".join(d.isoformat() for d in split.test_dates),
            "counts": counts,
            "n_features": len(feature_names),
            "excluded_rows": counts["excluded_rows"],
            "best_iteration": params["best_iteration"],
            "trials": params["tune_trials"],
            "calibrator_slope": model.calibrator.slope,
            "calibrator_intercept": model.calibrator.intercept,
            "comparison": comparison.to_dict("records"),
            "oracle": oracle_metrics,
            "top_shares": {
                k.replace("_", " "): v
                for k, v in metrics.items()
                if k.startswith(("ppv_top", "sensitivity_top"))
            },
            "fairness_min_rows": cfg.fairness_min_rows,
            "fairness_min_outcomes": cfg.fairness_min_outcomes,
            "fairness_oe_tolerance": cfg.fairness_oe_tolerance,
            "fairness_fnr_tolerance": cfg.fairness_fnr_tolerance,
            "fairness_auroc_tolerance": cfg.fairness_auroc_tolerance,
            "flags": [r for r in fairness.to_dict("records") if r["flag"]],
            "data_kind": "synthetic records"
            if extract_info.get("data_kind") == "synthetic"
            else "this place's linked records",
        }
        card = render_model_card(card_context)
        mlflow.log_text(card, "model_card.md")
        client = mlflow.MlflowClient()
        client.set_model_version_tag(registered, version, "run_id", run.info.run_id)
        client.set_model_version_tag(registered, version, "test_auroc", f"{metrics['auroc']:.4f}")
        client.update_model_version(registered, version, description=card)
        mlflow.set_tag("registered_model_version", version)
        progress("log run", 1.0)
    return TrainResult(
        run_id=run.info.run_id,
        version=version,
        model=model,
        metrics=metrics,
        comparison=comparison,
        fairness=fairness,
        deciles=deciles,
        counts=counts,
        card=card,
        oracle=oracle_metrics,
        params=params,
    )


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` to parquet with plain (non-category) columns and ISO index dates."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(str)
    out.to_parquet(path, index=False)
