"""What a training run says about itself in words: the outcome, the modelled population, the
data record kept with the run, and the model card filled from `models/model_card.md.j2`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config.settings import OutcomeSettings, Settings
from features.cohort import population_differences, population_rules
from models.card import render_model_card
from training.evaluation import baseline_verdict

if TYPE_CHECKING:
    from training.record import RunRecord


def describe_outcome(outcome: OutcomeSettings) -> str:
    """The outcome definition in words, from the outcome settings."""
    parts = []
    for name, rules in outcome.agencies.items():
        said = " or ".join(_describe_rule(r) for r in rules)
        parts.append(f"{name.replace('_', ' ')} ({said})")
    always = " or ".join(_describe_rule(r) for r in outcome.always_counts)
    text = (
        f"Within {outcome.window_months} months of the index date, at least "
        f"{outcome.min_agencies} of these agencies involved: {'; '.join(parts)}"
    )
    return text + (f"; or always when {always}." if always else ".")


def _describe_rule(rule: OutcomeSettings.Rule) -> str:
    count = f"{rule.min_count}+ " if rule.min_count > 1 else "a "
    where = "".join(f", {c} {'/'.join(v)}" for c, v in rule.where.items())
    return f"{count}{rule.table} row with {rule.column} {'/'.join(rule.values)}{where}"


def data_record(record: RunRecord, settings: Settings) -> dict[str, Any]:
    """Where the run's rows came from (`models.artifacts.EXTRACT_RECORD`): the extract, the row
    counts, the outcome in words and as settings, and the modelled population."""
    return {
        **record.extract_info,
        "rows": record.counts,
        "outcome_definition": describe_outcome(settings.outcome),
        "outcome_settings": settings.outcome.model_dump(mode="json"),
        "population": population_rules(settings),
        "population_differences": population_differences(settings),
    }


def _dates(days: list[Any]) -> str:
    return ", ".join(d.isoformat() for d in days)


def card_context(
    record: RunRecord, settings: Settings, *, version: str, run_id: str
) -> dict[str, Any]:
    """Every field of the model card template for the run that registered `version`."""
    cfg, info, evaluated = settings.training, record.extract_info, record.evaluation
    return {
        "registered_model": settings.mlflow.registered_model,
        "version": version,
        "run_id": run_id,
        "trained_at": record.trained_at,
        "list_size": settings.lists.capacity,
        "population_rules": population_rules(settings),
        "population_differences": population_differences(settings),
        "outcome_text": describe_outcome(settings.outcome),
        "extract_path": info.get("path", "(panel)"),
        "extract_date": info.get("extract_date", "unknown"),
        "complete_to": info.get("complete_to", {}),
        "every_months": cfg.every_months,
        "people_sample": (info.get("people_sample") or {}).get("words", "all people"),
        "train_dates": _dates(record.split.train_dates),
        "validation_dates": _dates(record.split.validation_dates),
        "test_dates": _dates(record.split.test_dates),
        "counts": record.counts,
        "n_features": len(record.feature_names),
        "excluded_rows": record.counts["excluded_rows"],
        "best_iteration": record.params["best_iteration"],
        "trials": record.params["tune_trials"],
        "calibrator_slope": record.model.calibrator.slope,
        "calibrator_intercept": record.model.calibrator.intercept,
        "comparison": evaluated.comparison.to_dict("records"),
        "baseline_verdict": baseline_verdict(evaluated.comparison),
        "oracle": evaluated.oracle,
        "top_shares": {
            k.replace("_", " "): v
            for k, v in evaluated.metrics.items()
            if k.startswith(("ppv_top", "sensitivity_top"))
        },
        "fairness_min_rows": cfg.fairness_min_rows,
        "fairness_min_outcomes": cfg.fairness_min_outcomes,
        "fairness_oe_tolerance": cfg.fairness_oe_tolerance,
        "fairness_fnr_tolerance": cfg.fairness_fnr_tolerance,
        "fairness_auroc_tolerance": cfg.fairness_auroc_tolerance,
        "flags": [r for r in evaluated.fairness.to_dict("records") if r["flag"]],
        "segments": [
            r for r in evaluated.fairness.to_dict("records") if r["attribute"] == "segment"
        ],
        "data_kind": "synthetic records"
        if info.get("data_kind") == "synthetic"
        else "this place's linked records",
    }


def model_card(record: RunRecord, settings: Settings, *, version: str, run_id: str) -> str:
    """The model card (Markdown) of the run that registered `version`."""
    return render_model_card(card_context(record, settings, version=version, run_id=run_id))


def _kind(record: RunRecord) -> str:
    return "synthetic" if record.extract_info.get("data_kind") == "synthetic" else "records"


def run_name(record: RunRecord, settings: Settings) -> str:
    """The MLflow run's name, from the extract and settings: e.g. "synthetic extract 2026-10-31,
    63 features, 30 tuning trials, list size 20"."""
    trials = record.params.get("tune_trials") or 0
    tuning = f"{trials} tuning trials" if trials else "no tuning"
    return (
        f"{_kind(record)} extract {record.extract_info.get('extract_date', 'unknown')}, "
        f"{len(record.feature_names)} features, {tuning}, list size {settings.lists.capacity}"
    )


def _headline(record: RunRecord) -> str:
    metrics = record.evaluation.metrics
    text = f"test AUROC {metrics['auroc']:.3f}"
    if "ppv_list" in metrics:
        text += f", PPV at list size {metrics['ppv_list']:.3f}"
    oracle = record.evaluation.oracle
    if oracle:
        text += f" (oracle AUROC {oracle['auroc']:.3f})"
    return text


def run_description(record: RunRecord) -> str:
    """The MLflow run's description (Markdown): what was trained on what, its headline numbers
    and whether a simple baseline matches it."""
    info, counts = record.extract_info, record.counts
    lines = [
        f"LightGBM risk model of complex multi-agency need within 12 months, trained on the "
        f"{_kind(record)} extract of {info.get('extract_date', 'unknown')}: "
        f"{_headline(record)}.",
        "",
        f"Rows: train {counts.get('train_rows', 0):,}, validation "
        f"{counts.get('validation_rows', 0):,}, test {counts.get('test_rows', 0):,}. "
        "The model card (`model_card.md`) has the population, outcome, metrics and fairness.",
    ]
    verdict = baseline_verdict(record.evaluation.comparison)
    if verdict:
        lines += ["", f"**{verdict}**"]
    return "\n".join(lines)


def version_summary(record: RunRecord, settings: Settings, version: str) -> str:
    """The first line of the registered version's description (the registry's Description
    column shows it), above the model card."""
    text = (
        f"**{settings.mlflow.registered_model} version {version}**: {_headline(record)}; "
        f"trained {record.trained_at} on the {_kind(record)} extract of "
        f"{record.extract_info.get('extract_date', 'unknown')}."
    )
    if baseline_verdict(record.evaluation.comparison):
        text += " A simple baseline matches it (see Metrics)."
    return text
