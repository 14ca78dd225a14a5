"""Which index dates train a model, and the time split.

Who is in the modelled population is `features.cohort.modelled_population`; the calendar
(`add_months`, `first_of_next_month`) is `features.dates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import TrainingSettings
from features.dates import add_months, first_of_next_month
from synthetic import ORACLE_FILE


class TrainingError(Exception):
    """The data cannot train or evaluate a model; the message says why."""


def training_index_dates(
    first_record: date,
    latest: date,
    settings: TrainingSettings,
    outcome_months: int = 12,
) -> list[date]:
    """The latest `settings.index_dates` first-of-month dates, `every_months` apart and aligned
    to `anchor_month`, up to `latest` (the last index date whose outcome window is observed),
    each with
    `settings.history_months` of records before it. Raise `TrainingError` when there are fewer
    than train + validation + test need.
    """
    earliest = first_of_next_month(add_months(first_record, settings.history_months))
    # Align to the calendar: months `anchor_month`, `anchor_month + every_months`, ...
    latest = add_months(latest, -((latest.month - settings.anchor_month) % settings.every_months))
    dates = [add_months(latest, -k * settings.every_months) for k in range(settings.index_dates)]
    dates = sorted(d for d in dates if d >= earliest)
    needed = settings.validation_dates + settings.test_dates + 1
    if len(dates) < needed:
        raise TrainingError(
            f"no complete outcome window to train on: the extract's records start {first_record} "
            f"and the latest index date whose {outcome_months}-month outcome window is complete "
            f"is {latest}; with {settings.history_months} months of history before each index "
            f"date (from {earliest}) and index dates {settings.every_months} months apart, the "
            f"usable dates are {[d.isoformat() for d in dates] or 'none'}, and training needs at "
            f"least {needed}"
        )
    return dates


def person_split(person_id: pd.Series, settings: TrainingSettings) -> np.ndarray:
    """'train', 'validation' or 'test' for each person id, stable for a given split seed."""
    keys = (str(settings.split_seed) + ":" + person_id.astype(str)).to_numpy(dtype=object)
    u = pd.util.hash_array(keys).astype(np.float64) / 2.0**64
    out = np.full(len(keys), "train", dtype=object)
    out[u < settings.test_fraction + settings.validation_fraction] = "validation"
    out[u < settings.test_fraction] = "test"
    return out


@dataclass
class Split:
    """Row sets of the panel: train (earlier dates), validation (next), test (latest)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    train_dates: list[date]
    validation_dates: list[date]
    test_dates: list[date]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in ("train", "validation", "test"):
            frame = getattr(self, name)
            out[f"{name}_rows"] = len(frame)
            out[f"{name}_people"] = int(frame["person_id"].nunique())
            out[f"{name}_outcomes"] = int(frame["outcome"].sum())
        return out


def _as_dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.date


def split_panel(panel: pd.DataFrame, settings: TrainingSettings) -> Split:
    """Split by person (each person in one set only) and by time (train on earlier index dates,
    validate on the next, test on the latest). Raise when a set has too few outcomes."""
    days = _as_dates(panel["index_date"])
    dates = sorted(set(days))
    needed = settings.validation_dates + settings.test_dates + 1
    if len(dates) < needed:
        raise TrainingError(
            f"the training panel has rows at {len(dates)} index date(s) "
            f"({', '.join(d.isoformat() for d in dates) or 'none'}); training needs at least "
            f"{needed} (too few eligible people in the extract?)"
        )
    test_dates = dates[-settings.test_dates :]
    validation_dates = dates[-needed + 1 : -settings.test_dates]
    train_dates = dates[: -needed + 1]
    group = person_split(panel["person_id"], settings)
    split = Split(
        train=panel[(group == "train") & days.isin(train_dates).to_numpy()],
        validation=panel[(group == "validation") & days.isin(validation_dates).to_numpy()],
        test=panel[(group == "test") & days.isin(test_dates).to_numpy()],
        train_dates=train_dates,
        validation_dates=validation_dates,
        test_dates=test_dates,
    )
    for name, least in (
        ("train", settings.min_train_outcomes),
        ("validation", settings.min_eval_outcomes),
        ("test", settings.min_eval_outcomes),
    ):
        frame = getattr(split, name)
        outcomes = int(frame["outcome"].sum())
        if outcomes < least or outcomes == len(frame):
            raise TrainingError(
                f"too few outcomes to {'train' if name == 'train' else 'evaluate'}: the {name} "
                f"set has {len(frame)} rows and {outcomes} outcomes; at least {least} outcomes "
                f"(and some rows without) are needed. Use a larger extract, or lower "
                f"training.min_{'train' if name == 'train' else 'eval'}_outcomes."
            )
    return split


def read_oracle(extract_dir: Path) -> pd.DataFrame | None:
    """The generator's true risks (person_id, index_date, probability), when present."""
    path = Path(extract_dir) / ORACLE_FILE
    if not path.is_file():
        return None
    oracle = pd.read_parquet(path)
    oracle["person_id"] = oracle["person_id"].astype(str)
    oracle["index_date"] = pd.to_datetime(oracle["index_date"]).dt.date
    return oracle[["person_id", "index_date", "probability"]]
