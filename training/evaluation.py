"""The evaluation step: the model and its baselines on the test period, each baseline's AUROC gap
to the model, fairness by group, risk deciles, and (on synthetic data) the oracle's ceiling."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from config.progress import ProgressFn, no_progress
from config.settings import ListSettings, Settings
from models.risk_model import RiskModel
from training.baselines import fit_baselines
from training.data import Split
from training.fairness import fairness_table
from training.metrics import auroc_difference, decile_table, evaluate, list_flags

MODEL = "model"  # the model's row in the comparison and its key in `scores`


@dataclass
class Evaluation:
    """What the test period says about the model."""

    metrics: dict[str, float]  # the model's test metrics
    comparison: pd.DataFrame  # one row per model/baseline: metrics and the model's AUROC gain
    scores: dict[str, np.ndarray]  # test-row probabilities of the model and each baseline
    fairness: pd.DataFrame
    deciles: pd.DataFrame
    oracle: dict[str, float] | None  # synthetic extracts only
    list_share: dict[str, float]  # each neighbourhood's list size over its modelled population

    def summary(self, counts: dict[str, int]) -> dict[str, Any]:
        """The evaluation as the run keeps it (`models.artifacts.EVALUATION`)."""
        return {
            "metrics": self.metrics,
            "oracle": self.oracle,
            "list_share": self.list_share,
            "counts": counts,
            "fairness_flags": sorted(
                f"{r.attribute}={r.group}" for r in self.fairness.itertuples() if r.flag
            ),
        }


def list_share(
    modelled: pd.DataFrame, test_dates: list[date], lists: ListSettings
) -> dict[str, float]:
    """Each neighbourhood's list size ([lists] capacity) over its modelled population at the
    test date(s): the share of its people a monthly list takes."""
    at_test = modelled[pd.to_datetime(modelled["index_date"]).dt.date.isin(test_dates)]
    sizes = at_test.groupby("neighbourhood").size() / max(1, len(test_dates))
    return {
        str(n): min(1.0, lists.capacity_of(str(n)) / size) for n, size in sizes.items() if size > 0
    }


def oracle_metrics(
    test: pd.DataFrame, p_model: np.ndarray, oracle: pd.DataFrame | None
) -> dict[str, float] | None:
    """The oracle's AUROC on the test rows it covers, the model's share of it, and the headroom
    (oracle minus model) with DeLong's 95% interval; None without an oracle."""
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
        "headroom": headroom.difference,
        "headroom_ci_low": headroom.ci_low,
        "headroom_ci_high": headroom.ci_high,
    }


def with_auroc_gains(
    comparison: pd.DataFrame, y: np.ndarray, scores: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Add the model's AUROC gain over each row's score, with DeLong's 95% interval and p-value
    (NaN on the model's own row)."""
    gains = [
        auroc_difference(y, scores[MODEL], scores[name]) if name != MODEL else None
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


def matching_baselines(comparison: pd.DataFrame) -> pd.DataFrame:
    """The baseline rows the model does not beat: DeLong's 95% interval of the model's AUROC
    gain over them includes 0 (or the gain is not positive)."""
    rows = comparison[comparison["name"] != MODEL]
    low, gain = rows["auroc_gain_ci_low"], rows["auroc_gain"]
    return rows[(low <= 0) | (gain <= 0)]


def baseline_verdict(comparison: pd.DataFrame) -> str | None:
    """In plain words, when a simple baseline scores as well as the booster on the test period
    (see `matching_baselines`); None when the booster beats every baseline."""
    matched = matching_baselines(comparison)
    if matched.empty:
        return None
    parts = [
        f"{r.name} (booster's AUROC gain {r.auroc_gain:+.4f}, 95% CI {r.auroc_gain_ci_low:+.4f} "
        f"to {r.auroc_gain_ci_high:+.4f})"
        for r in matched.itertuples()
    ]
    which = "this baseline" if len(parts) == 1 else "these baselines"
    return (
        f"A simple baseline matches the booster on the test period: {'; '.join(parts)}. The "
        f"interval includes 0, so the booster is not shown to rank people better than "
        f"{which}; consider the simpler model, or more data."
    )


def evaluate_model(
    model: RiskModel,
    split: Split,
    modelled: pd.DataFrame,
    feature_names: list[str],
    settings: Settings,
    oracle: pd.DataFrame | None = None,
    progress: ProgressFn | None = None,
) -> Evaluation:
    """Evaluate `model` on the split's test rows, against baselines fitted on its train and
    validation rows; lists are sized by `[lists]` over the `modelled` population."""
    progress = progress or no_progress
    cfg = settings.training
    test = split.test
    progress("evaluate", 0.0)
    y = test["outcome"].astype(int).to_numpy()
    p = model.predict_proba(test)
    share = list_share(modelled, split.test_dates, settings.lists)
    nbhd = test["neighbourhood"].astype(str).to_numpy()
    metrics = evaluate(y, p, cfg.top_fractions, nbhd, share)
    progress("evaluate", 1.0)
    scores = {MODEL: p}
    rows = [{"name": MODEL, **metrics}]
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
    comparison = with_auroc_gains(pd.DataFrame(rows), y, scores)
    progress("baselines", 1.0)
    progress("fairness and oracle", 0.0)
    fairness = fairness_table(
        test, y, p, list_flags(p, nbhd, share), cfg, segments=settings.segments
    )
    deciles = decile_table(y, p)
    oracle_result = oracle_metrics(test, p, oracle)
    progress("fairness and oracle", 1.0)
    return Evaluation(
        metrics=metrics,
        comparison=comparison,
        scores=scores,
        fairness=fairness,
        deciles=deciles,
        oracle=oracle_result,
        list_share=share,
    )
