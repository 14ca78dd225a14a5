"""Fit the LightGBM booster with early stopping on the validation period; optional Optuna tuning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from config.settings import TrainingSettings

TUNED = ("learning_rate", "num_leaves", "min_child_samples", "feature_fraction", "lambda_l2")


def base_params(settings: TrainingSettings) -> dict[str, Any]:
    """LightGBM parameters from the settings."""
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_child_samples": settings.min_child_samples,
        "feature_fraction": settings.feature_fraction,
        "lambda_l2": settings.lambda_l2,
        "num_threads": settings.threads,
        "seed": settings.seed,
        "deterministic": True,
        "force_col_wise": True,
        "feature_pre_filter": False,  # lets tuning change min_child_samples on one Dataset
        "verbosity": -1,
    }


@dataclass
class Fitted:
    """The fitted booster, the parameters that made it and its validation log loss."""

    booster: lgb.Booster
    params: dict[str, Any]
    best_iteration: int
    validation_logloss: float
    trials: int = 0


def _datasets(
    x_train: pd.DataFrame, y_train: np.ndarray, x_valid: pd.DataFrame, y_valid: np.ndarray
) -> tuple[lgb.Dataset, lgb.Dataset]:
    params = {"feature_pre_filter": False, "verbosity": -1}
    train = lgb.Dataset(x_train, label=y_train, params=params, free_raw_data=False)
    valid = lgb.Dataset(x_valid, label=y_valid, params=params, reference=train, free_raw_data=False)
    return train.construct(), valid.construct()


def _fit(
    params: dict[str, Any], train: lgb.Dataset, valid: lgb.Dataset, settings: TrainingSettings
) -> Fitted:
    booster = lgb.train(
        params,
        train,
        num_boost_round=settings.max_rounds,
        valid_sets=[valid],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    best = booster.best_iteration or booster.current_iteration()
    loss = float(booster.best_score["validation"]["binary_logloss"])
    model = booster if best == booster.current_iteration() else _trimmed(booster, best)
    return Fitted(booster=model, params=params, best_iteration=best, validation_logloss=loss)


def _trimmed(booster: lgb.Booster, rounds: int) -> lgb.Booster:
    """A booster holding only the first `rounds` trees (what early stopping chose)."""
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))


def fit_booster(
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_valid: pd.DataFrame,
    y_valid: np.ndarray,
    settings: TrainingSettings,
    tune_trials: int = 0,
    progress: Callable[[str, float], None] | None = None,
) -> Fitted:
    """Fit with the configured parameters, or, with `tune_trials`, the best of that many Optuna
    trials (bounded by `settings.tune_timeout_seconds`) by validation log loss."""
    train, valid = _datasets(x_train, y_train, x_valid, y_valid)
    params = base_params(settings)
    if tune_trials <= 0:
        fitted = _fit(params, train, valid, settings)
        if progress:
            progress("fit booster", 1.0)
        return fitted

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    best: list[Fitted] = []

    def objective(trial: optuna.Trial) -> float:
        trial_params = dict(params)
        trial_params.update(
            learning_rate=trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            num_leaves=trial.suggest_int("num_leaves", 8, 128, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 20, 1000, log=True),
            feature_fraction=trial.suggest_float("feature_fraction", 0.5, 1.0),
            lambda_l2=trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        )
        fitted = _fit(trial_params, train, valid, settings)
        if not best or fitted.validation_logloss < best[0].validation_logloss:
            best[:] = [fitted]
        if progress:
            progress("tune booster", (trial.number + 1) / tune_trials)
        return fitted.validation_logloss

    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=settings.seed)
    )
    # The configured parameters are the first trial, so tuning never does worse than them.
    study.enqueue_trial({name: params[name] for name in TUNED})
    study.optimize(objective, n_trials=tune_trials, timeout=settings.tune_timeout_seconds)
    best[0].trials = len(study.trials)
    if progress:  # a timeout can end the trials early: both bars finish
        progress("tune booster", 1.0)
        progress("fit booster", 1.0)
    return best[0]
