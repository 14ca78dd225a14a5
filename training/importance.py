"""The global SHAP importance a run logs: mean |TreeSHAP| per feature over a seeded sample of the
test rows, in log-odds. `train` computes it on a thread beside the evaluation (LightGBM releases
the GIL; the evaluation is mostly one core), so logging seldom waits for it."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pandas as pd

# Test rows the importance is computed on, seeded. Measured as the slowest step of `log run` at
# 5,000 rows (issue 18); a mean |SHAP| ranking over 2,000 rows is stable to the features that
# matter.
SHAP_SAMPLE = 2000


def global_shap_importance(
    booster: lgb.Booster, x: pd.DataFrame, threads: int | None = None
) -> pd.Series:
    """Mean absolute SHAP contribution per feature, from LightGBM's exact TreeSHAP (`threads`:
    LightGBM's, default its own)."""
    extra = {} if threads is None else {"num_threads": threads}
    contributions = booster.predict(x.astype(float), pred_contrib=True, **extra)
    values = np.abs(np.asarray(contributions)[:, :-1]).mean(axis=0)
    return pd.Series(values, index=list(x.columns), name="mean_abs_shap")


def shap_sample(test: pd.DataFrame, feature_names: list[str], seed: int) -> pd.DataFrame:
    """The test rows the importance is computed on: `SHAP_SAMPLE` of them, seeded."""
    return test.sample(min(len(test), SHAP_SAMPLE), random_state=seed)[feature_names]


def run_importance(
    booster: lgb.Booster, test: pd.DataFrame, feature_names: list[str], seed: int
) -> pd.Series:
    """The run's global SHAP importance (`shap_sample` of `test`)."""
    return global_shap_importance(booster, shap_sample(test, feature_names, seed))


def run_importance_on_thread(
    booster: lgb.Booster, test: pd.DataFrame, feature_names: list[str], seed: int
) -> Future[pd.Series]:
    """`run_importance` on a thread with one LightGBM thread, on its own copy of `booster` (the
    caller keeps predicting with it); the result, or its error, from the future."""
    sample = shap_sample(test, feature_names, seed)
    own = lgb.Booster(model_str=booster.model_to_string())
    pool = ThreadPoolExecutor(1, thread_name_prefix="shap importance")
    try:
        return pool.submit(global_shap_importance, own, sample, 1)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task
