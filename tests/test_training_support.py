"""Shared helpers for the training tests: settings on an isolated MLflow store, a hand-made panel
with a known risk, and one real training run per test process (generator -> features -> train)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from config.settings import MlflowSettings, Settings, load_settings
from records.contract import CASELOADS

HAND_FEATURES = [
    "age",
    "sex",
    "imd_decile",
    "ethnicity_group",
    "emergency_admissions_12m",
    "efi_score",
    "efi_band",
    "hfrs_score",
    "noise",
]
# One real training run (and one migrated MLflow store) per test process, shared by every test
# module that asks for it.
_RUN: dict[str, Any] = {}
HAND_DATES = [date(2023, m, 1) for m in (1, 4, 7, 10)] + [date(2024, 1, 1), date(2024, 4, 1)]


def _migrated_store() -> Path:
    """An empty SQLite MLflow store with MLflow's schema: the machine's template, the one a new
    home copies (`models.registry.empty_store_template`; creating the schema takes MLflow many
    seconds, copying the file none)."""
    if "store" not in _RUN:
        from models.registry import empty_store_template

        _RUN["store"] = empty_store_template()
    return _RUN["store"]


def isolated_settings(home: Path, tracking_uri: str | None = None, **training: Any) -> Settings:
    """Settings with working state (and a fresh SQLite MLflow store) under `home`."""
    import shutil

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if tracking_uri is None and not (home / "mlflow.db").exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated_store(), home / "mlflow.db")
    base = load_settings(home=home, mlflow=MlflowSettings(tracking_uri=tracking_uri))
    if training:
        base = base.model_copy(update={"training": base.training.model_copy(update=training)})
    return base


def hand_panel(people: int = 3000, dates: list[date] | None = None, seed: int = 0) -> pd.DataFrame:
    """A panel shaped like `features.build_panel`'s, whose outcome follows a known logistic risk
    (column `true_risk`), with the exclusion flags (opt-out, care home, every caseload) and
    fairness fields set."""
    rng = np.random.default_rng(seed)
    caseload_rng = np.random.default_rng(seed + 1)  # keeps `rng`'s draws as they were
    dates = dates or HAND_DATES
    ids = np.array([f"H{i:06d}" for i in range(people)])
    base_age = rng.integers(65, 95, people)
    sex = rng.choice([1, 2], people)
    imd = rng.integers(1, 11, people)
    ethnicity = rng.integers(1, 6, people)
    neighbourhood = rng.choice(["North", "South", "East"], people)
    frailty = rng.gamma(2, 1, people)
    frames = []
    for k, day in enumerate(dates):
        age = base_age + k // 4
        admissions = rng.poisson(0.3 + 0.2 * frailty)
        efi = np.clip(frailty / 3 + rng.normal(0, 0.1, people), 0, 1)
        hfrs = rng.gamma(1 + frailty, 1)
        lp = -4 + 0.05 * (age - 65) + 0.6 * admissions + 2 * efi + 0.1 * hfrs
        risk = 1 / (1 + np.exp(-lp))
        frames.append(
            pd.DataFrame(
                {
                    "person_id": ids,
                    "index_date": day,
                    "neighbourhood": neighbourhood,
                    "gp_practice_code": "P88001",
                    "age": age,
                    "sex": sex,
                    "imd_decile": imd,
                    "ethnicity_group": ethnicity,
                    "emergency_admissions_12m": admissions,
                    "efi_score": efi,
                    "efi_band": np.digitize(efi, [0.12, 0.24, 0.36]),
                    "hfrs_score": hfrs,
                    "noise": rng.normal(size=people),
                    "data_opt_out": (rng.random(people) < 0.02).astype(int),
                    "in_care_home": (rng.random(people) < 0.03).astype(int),
                    "on_caseload_neighbourhood_mdt": (rng.random(people) < 0.02).astype(int),
                    "outcome": (rng.random(people) < risk).astype(int),
                    "true_risk": risk,
                    **{
                        f"on_caseload_{c}": (caseload_rng.random(people) < 0.02).astype(int)
                        for c in CASELOADS
                        if c != "neighbourhood_mdt"
                    },
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def hand_oracle(panel: pd.DataFrame) -> pd.DataFrame:
    """The hand panel's true risks in the shape of the generator's oracle.parquet."""
    return panel[["person_id", "index_date", "true_risk"]].rename(
        columns={"true_risk": "probability"}
    )


REAL_PEOPLE = 5000
# A small population: larger validation and test shares keep enough outcomes in each.
REAL_TRAINING = {"validation_fraction": 0.3, "test_fraction": 0.3}
REAL_SEED = 11


def real_extract(root: Path) -> Path:
    """A synthetic extract of REAL_PEOPLE people (written once per process)."""
    if "extract" not in _RUN:
        from synthetic import SynthConfig, generate

        out = root / "extract"
        generate(SynthConfig(people=REAL_PEOPLE, seed=REAL_SEED), out)
        _RUN["extract"] = out
    return _RUN["extract"]


def real_run(root: Path) -> dict[str, Any]:
    """Train once on the real extract into an isolated SQLite MLflow store under `root`."""
    if "result" not in _RUN:
        from training import train

        extract = real_extract(root)
        settings = isolated_settings(root / "home", **REAL_TRAINING)
        _RUN["settings"] = settings
        seen: dict[str, list[float]] = {}
        _RUN["progress"] = seen
        _RUN["result"] = train(
            extract, settings, progress=lambda task, f: seen.setdefault(task, []).append(f)
        )
    return _RUN


def real_panel(root: Path) -> Any:
    """The real extract's training panel (built once per process)."""
    if "panel" not in _RUN:
        from training.train import build_training_panel

        settings = isolated_settings(root / "panel-home", **REAL_TRAINING)
        _RUN["panel"] = build_training_panel(real_extract(root), settings)
    return _RUN["panel"]
