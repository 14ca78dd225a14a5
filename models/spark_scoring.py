"""Scoring on Spark executors: the risk model applied to a Spark DataFrame with `mapInPandas`.

The driver ships the model as plain values (the booster's text, `booster.model_to_string()`, and
the calibrator's slope and intercept, the feature order and the bands): a broadcast variable on a
classic session, the function's closure under Spark Connect (which has no broadcast). Each
partition rebuilds a `RiskModel` from them and scores its batches with the model's own code
(`RiskModel.scores`, `RiskModel.band`, `models.explain.contributions`), so the probability is the
one DuckDB's run serves. The model modules travel with the function by value, so executors need
only lightgbm, numpy, pandas and pyarrow (no casefinder install on the cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from models import explain, risk_model
from models.explain import contributions as tree_contributions
from models.risk_model import PlattCalibrator, RiskModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Columns added to the scored frame; contributions are `contribution_<feature>` (log-odds, in
# the model's feature order) and `contribution_base`, adding up to `margin` (TreeSHAP).
SCORE_COLUMNS = ("margin", "probability", "band")
CONTRIBUTION_PREFIX = "contribution_"
BASE_COLUMN = f"{CONTRIBUTION_PREFIX}base"


def model_payload(model: RiskModel) -> dict[str, Any]:
    """What an executor needs to rebuild `model`: plain strings and numbers."""
    return {
        "booster": model.booster.model_to_string(),
        "slope": float(model.calibrator.slope),
        "intercept": float(model.calibrator.intercept),
        "feature_names": list(model.feature_names),
        "bands": [[name, float(low)] for name, low in model.bands],
    }


def model_from_payload(payload: dict[str, Any]) -> RiskModel:
    """The `RiskModel` of `model_payload` (on an executor)."""
    import lightgbm as lgb

    return RiskModel(
        booster=lgb.Booster(model_str=payload["booster"]),
        calibrator=PlattCalibrator(payload["slope"], payload["intercept"]),
        feature_names=list(payload["feature_names"]),
        bands=tuple((str(name), float(low)) for name, low in payload["bands"]),
    )


def _is_connect(df: DataFrame) -> bool:
    return type(df).__module__.startswith("pyspark.sql.connect")


def in_closure(payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """A function returning `payload`, which travels inside it (pickled with the function)."""
    return lambda: payload


def _shipped(df: DataFrame, payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """A function returning `payload` on an executor: broadcast once on a classic session, in
    the function itself under Spark Connect."""
    if _is_connect(df):
        return in_closure(payload)
    handle = df.sparkSession.sparkContext.broadcast(payload)
    return lambda: handle.value


def _by_value() -> None:
    """Pickle the model modules by value, so executors need not import casefinder."""
    from pyspark import cloudpickle

    import models.spark_scoring as this

    for module in (risk_model, explain, this):
        cloudpickle.register_pickle_by_value(module)


def score_batches(
    batches: Iterator[pd.DataFrame],
    payload: dict[str, Any],
    keep: Sequence[str],
    contributions: bool,
) -> Iterator[pd.DataFrame]:
    """Score each batch with the model rebuilt from `payload`: `keep`'s columns, then margin,
    probability, band (and the contributions when asked). Runs on the executors."""
    model = model_from_payload(payload)
    for batch in batches:
        margin, probability = model.scores(batch)
        out = batch[list(keep)].copy()
        out["margin"] = margin
        out["probability"] = probability
        out["band"] = model.band(probability).astype(str)
        if contributions:
            base, values = tree_contributions(model, batch, num_threads=1)
            for i, name in enumerate(model.feature_names):
                out[f"{CONTRIBUTION_PREFIX}{name}"] = values[:, i]
            out[BASE_COLUMN] = base
        yield out


def score_on_executors(
    model: RiskModel,
    df: DataFrame,
    keep: Sequence[str] | None = None,
    contributions: bool = False,
) -> DataFrame:
    """`df` (one row per person, the model's feature columns among its columns) scored on the
    executors: the `keep` columns (default all) then margin, probability, band, and with
    `contributions` LightGBM's `pred_contrib` per feature and the base value. Lazy: nothing runs
    until the result is used."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    missing = [c for c in model.feature_names if c not in df.columns]
    if missing:
        raise ValueError(f"missing feature columns: {', '.join(missing)}")
    keep = list(df.columns if keep is None else keep)
    fields = [df.schema[c] for c in keep]
    fields += [
        StructField("margin", DoubleType()),
        StructField("probability", DoubleType()),
        StructField("band", StringType()),
    ]
    if contributions:
        fields += [
            StructField(f"{CONTRIBUTION_PREFIX}{name}", DoubleType())
            for name in model.feature_names
        ]
        fields.append(StructField(BASE_COLUMN, DoubleType()))
    score = batch_scorer(_shipped(df, model_payload(model)), keep, contributions)
    return df.mapInPandas(score, StructType(fields))


def batch_scorer(
    payload: Callable[[], dict[str, Any]], keep: Sequence[str], contributions: bool
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function `mapInPandas` runs: `score_batches` with the payload `payload()` returns.
    Pickled with the model modules by value (it imports no casefinder module)."""
    _by_value()
    keep = list(keep)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return score_batches(batches, payload(), keep, contributions)

    return score
