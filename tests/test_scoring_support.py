"""Shared pieces for the scoring and list tests (no tests here): a small feature frame in the
shape `features.build_features` returns, feature definitions for its model inputs, and a real
LightGBM + Platt `RiskModel` trained on it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import lightgbm as lgb
import numpy as np
import pandas as pd

from config.settings import ListSettings
from features.definition import Feature
from models.risk_model import PlattCalibrator, RiskModel
from scoring.inputs import SpooledInputs
from scoring.run import ModelInfo, make_run
from scoring.store import ScoringRun

FEATURE_DEFS = [
    Feature(
        name="age",
        domain="demographics",
        description="age in years",
        sentence="aged {value}",
        none_sentence="age not recorded",
        kind="number",
        source="people",
    ),
    Feature(
        name="emergency_admissions_12m",
        domain="hospital use",
        description="emergency admissions in the last 12 months",
        sentence="{value} emergency admission{s} in the last 12 months",
        none_sentence="no emergency admissions in the last 12 months",
        kind="count",
        source="hospital_spells",
        window="12 months",
    ),
    Feature(
        name="efi_score",
        domain="primary care and frailty",
        description="electronic frailty index",
        sentence="frailty index {value}",
        none_sentence="no frailty deficits recorded",
        kind="number",
        source="gp_events",
    ),
    Feature(
        name="home_care",
        domain="social care",
        description="receives home care",
        sentence="receives home care",
        none_sentence="no home care",
        kind="flag",
        source="social_care",
    ),
]
MODEL_INPUTS = [f.name for f in FEATURE_DEFS]
NON_MODEL = [
    "data_opt_out",
    "in_care_home",
    "on_caseload_neighbourhood_mdt",
    "on_caseload_end_of_life",
    "on_caseload_community_matron",
    "on_caseload_care_home_support",
]
# The columns the population segments read besides the list's, all clear (features.segments).
SEGMENT_INPUTS = {
    "days_in_hospital": np.nan,
    "home_care_hours_per_week": np.nan,
    "direct_payment_current": 0,
    "efi_band": 0,
}
HOODS = ("North", "South", "East")
INDEX_DATE = "2026-11-01"
MODEL = ModelInfo("casefinder-risk", "1")
EXTRACT = {"path": "/tmp/x", "fingerprint": "f" * 64, "extract_date": "2026-10-31"}


def feature_frame(n: int = 600, seed: int = 0, hoods: tuple[str, ...] = HOODS) -> pd.DataFrame:
    """`n` eligible people with model inputs, list columns all clear (no exclusions)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "person_id": [f"P{i:05d}" for i in range(n)],
            "index_date": pd.Timestamp(INDEX_DATE),
            "neighbourhood": [hoods[i % len(hoods)] for i in range(n)],
            "gp_practice_code": [f"P8800{i % 4}" for i in range(n)],
            "age": rng.integers(65, 100, n).astype(float),
            "emergency_admissions_12m": rng.poisson(0.4, n).astype(float),
            "efi_score": rng.uniform(0, 0.5, n),
            "home_care": rng.integers(0, 2, n).astype(float),
        }
    )
    for column in NON_MODEL:
        frame[column] = 0
    for column, clear in SEGMENT_INPUTS.items():
        frame[column] = clear
    return frame


def outcome(frame: pd.DataFrame, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logit = (
        -3.0
        + 0.05 * (frame["age"] - 75)
        + 0.9 * frame["emergency_admissions_12m"]
        + 4.0 * frame["efi_score"]
        + 0.6 * frame["home_care"]
    )
    return (rng.uniform(size=len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)


@lru_cache(maxsize=4)
def train_model(n: int = 3000, seed: int = 2) -> RiskModel:
    """A real booster + Platt calibrator on a synthetic frame (a second of CPU; built once per
    process and shared, so callers must not change it)."""
    frame = feature_frame(n, seed)
    y = outcome(frame, seed)
    fit, cal = frame.iloc[: n * 2 // 3], frame.iloc[n * 2 // 3 :]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 8, "learning_rate": 0.1, "seed": 1},
        lgb.Dataset(fit[MODEL_INPUTS].astype(float), y[: len(fit)]),
        num_boost_round=40,
    )
    calibrator = PlattCalibrator().fit(
        booster.predict(cal[MODEL_INPUTS].astype(float), raw_score=True), y[len(fit) :]
    )
    return RiskModel(booster=booster, calibrator=calibrator, feature_names=list(MODEL_INPUTS))


def ineligible_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": ["D1", "D2", "R1"],
            "neighbourhood": ["North", "South", "North"],
            "reason": ["died", "died", "not_registered"],
        }
    )


def run_for(
    model: RiskModel,
    features: pd.DataFrame,
    month: str = "2026-11",
    rules: ListSettings | None = None,
    model_info: ModelInfo = MODEL,
    previous: pd.DataFrame | None = None,
    listed_before: tuple[str, ...] | set[str] = (),
    training: pd.DataFrame | None = None,
    probability: np.ndarray | None = None,
    inputs: SpooledInputs | None = None,
) -> ScoringRun:
    """`make_run` with the test feature definitions and a fixed creation time."""
    return make_run(
        month=month,
        features=features,
        ineligible=ineligible_frame(),
        model=model,
        model_info=model_info,
        extract=EXTRACT,
        rules=rules or ListSettings(),
        previous=previous,
        listed_before=listed_before,
        training_sample=training,
        feature_defs=FEATURE_DEFS,
        created=datetime(2026, 11, 2, tzinfo=UTC),
        probability=probability,
        inputs=inputs,
    )
