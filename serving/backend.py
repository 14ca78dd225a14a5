"""What the service does, over the loaded model, the score store and the month's feature rows.

Thin on purpose: scores and explanations come from `models.explain`; lists, people and the model
inputs each run scored from `scoring.store` (the extract is never read), the list table the pages
download from `scoring.exports` (the one `casefinder lists` writes); the model from the registry.
Months are `features.dates.Month`, list flags `features.cohort.LIST_FLAGS`. The service and the
pages both call this one object.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from config.settings import Settings
from features.cohort import EXCLUSIONS, LIST_FLAGS
from features.dates import Month
from models.explain import Explanation, PersonChanges, WhatIf, changes, explain, what_if
from models.risk_model import RiskModel
from scoring.exports import flag_keys, list_table
from scoring.store import ScoreStore, StoreError
from serving.access import check_neighbourhood
from serving.users import User

# The exclusion a run keeps a person unscored for (features.cohort.EXCLUSIONS).
OPTED_OUT = "opted_out"
assert OPTED_OUT in EXCLUSIONS


class NotFound(LookupError):
    """A month, run or person the store does not hold (HTTP 404)."""


class OptedOut(NotFound):
    """The person opted out of data use beyond direct care: no score is held for them (served as
    404 with this message by the existing NotFound handlers)."""

    def __init__(self, person_id: str, neighbourhood: str) -> None:
        super().__init__(
            f"person {person_id} {EXCLUSIONS[OPTED_OUT]}, so no score is held for them"
        )
        self.neighbourhood = neighbourhood


@dataclass(frozen=True)
class PersonView:
    """One person in one month: the run's row, the explanation, the change since last month."""

    month: Month
    run_id: str
    meta: dict[str, Any]
    row: dict[str, Any]
    features: pd.DataFrame  # one row of model inputs
    explanation: Explanation
    change: PersonChanges | None
    previous_month: Month


def flags_of(row: dict[str, Any]) -> list[str]:
    """The list flags (`LIST_FLAGS` keys) set for a person's run row."""
    return flag_keys(row)


def _plain(value: Any) -> Any:
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def registry_check(settings: Settings, timeout: float = 2.0) -> tuple[bool, str]:
    """Whether the MLflow store answers now, without creating or changing anything in it."""
    uri = settings.tracking_uri
    parsed = urlparse(uri)
    try:
        if parsed.scheme == "sqlite":
            path = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
            if path is None or not path.is_file():
                return False, "the MLflow database file is missing"
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
            try:
                con.execute("SELECT count(*) FROM registered_models").fetchone()
            finally:
                con.close()
            return True, "MLflow database answers"
        if parsed.scheme in ("http", "https"):
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as resp:
                return resp.status == 200, f"MLflow server answered {resp.status}"
        if parsed.scheme in ("", "file"):
            folder = Path(parsed.path if parsed.scheme else uri)
            return folder.is_dir(), "MLflow folder present" if folder.is_dir() else "folder missing"
        return False, f"no reachability check for {parsed.scheme} stores"
    except (OSError, sqlite3.Error) as exc:
        return False, f"{type(exc).__name__}"


class Backend:
    """The loaded model and read access to the monthly runs."""

    def __init__(self, settings: Settings, model: RiskModel, version: str) -> None:
        self.settings = settings
        self.model = model
        self.version = str(version)
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.store = ScoreStore(settings.score_store)
        self.top_n = settings.serving.top_reasons
        self._features: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        self._people: dict[str, pd.DataFrame] = {}
        self._others: dict[str, RiskModel] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._registry: tuple[float, bool, str] | None = None

    @classmethod
    def start(cls, settings: Settings) -> Backend:
        """Load the registry's model (`serving.model_ref`, default the champion)."""
        from models.registry import load_risk_model

        model, version = load_risk_model(settings, ref=settings.serving.model_ref)
        return cls(settings, model, str(version))

    # --- model ---------------------------------------------------------------------------

    def score(self, rows: pd.DataFrame) -> list[Explanation]:
        """Probability, band and top reasons for each feature row."""
        return explain(self.model, rows, top_n=self.top_n)

    def model_for(self, ref: str) -> tuple[RiskModel, str]:
        """Any registered model by version or alias (loaded once per version and kept); the
        loaded champion when `ref` names it. Raises RegistryError for an unknown ref."""
        from models.registry import load_risk_model, resolve_version

        version = resolve_version(self.settings, ref)
        if version == self.version:
            return self.model, self.version
        with self._lock:
            if version not in self._others:
                if len(self._others) >= 3:  # a few at a time: each holds a booster in memory
                    self._others.pop(next(iter(self._others)))
                self._others[version] = load_risk_model(self.settings, ref=version)[0]
            return self._others[version], version

    def registry(self) -> tuple[bool, str]:
        """Registry reachability, re-checked at most every `registry_check_seconds`."""
        now = time.monotonic()
        cached = self._registry
        if cached is None or now - cached[0] > self.settings.serving.registry_check_seconds:
            ok, detail = registry_check(self.settings)
            self._registry = cached = (now, ok, detail)
        return cached[1], cached[2]

    # --- runs ----------------------------------------------------------------------------

    def month_or_latest(self, month: str | None) -> Month:
        """`month` (FeatureError, a ValueError, unless `YYYY-MM`), else the latest scored."""
        if month is not None:
            return Month(month)
        months = self.store.months()
        if not months:
            raise NotFound("no month has been scored yet")
        return Month(months[-1])

    def run(self, month: str | None) -> tuple[Month, str, dict[str, Any]]:
        """(month, run id, run metadata) of the month's current run."""
        month = self.month_or_latest(month)
        try:
            run_id = self.store.resolve(month=month)
            if run_id not in self._meta:
                self._meta[run_id] = self.store.meta(run_id)
            return month, run_id, self._meta[run_id]
        except StoreError as exc:
            raise NotFound(str(exc)) from None

    def people(self, run_id: str) -> pd.DataFrame:
        """The run's per-person table, indexed by person_id (runs are never rewritten, so it is
        read once per run and kept)."""
        with self._lock:
            if run_id not in self._people:
                table = self.store.people(run_id)
                table.index = pd.Index(table["person_id"].astype(str), name=None)
                self._people[run_id] = table
            return self._people[run_id]

    def _neighbourhood_people(
        self, neighbourhood: str, month: str | None, flag: str | None
    ) -> tuple[Month, str, dict[str, Any], pd.DataFrame]:
        """(month, run id, meta, the run's people) once the neighbourhood is in the run and the
        flag is known (NotFound / ValueError)."""
        if flag is not None and flag not in LIST_FLAGS:
            raise ValueError(f"unknown flag {flag!r}; flags are {', '.join(LIST_FLAGS)}")
        month, run_id, meta = self.run(month)
        people = self.people(run_id)
        known = set(people["neighbourhood"].dropna().astype(str))
        if neighbourhood not in known:
            raise NotFound(f"neighbourhood {neighbourhood} is not in the {month} run")
        return month, run_id, meta, people

    def list_table(
        self, neighbourhood: str, month: str | None, flag: str | None = None
    ) -> tuple[Month, str, dict[str, Any], pd.DataFrame]:
        """The neighbourhood's list in the month's current run as `scoring.exports.list_table`
        builds it for `casefinder lists`, with the MDT's latest decisions (the page downloads
        write this table)."""
        from config.db.reviews import read_reviews

        month, run_id, meta, people = self._neighbourhood_people(neighbourhood, month, flag)
        reviews = read_reviews(self.settings, neighbourhood)
        return month, run_id, meta, list_table(people, neighbourhood, flag, reviews)

    def neighbourhood_list(
        self, neighbourhood: str, month: str | None, flag: str | None = None
    ) -> tuple[Month, str, dict[str, Any], list[dict[str, Any]]]:
        """The listed people of a neighbourhood in the month's current run, by rank."""
        month, run_id, meta, people = self._neighbourhood_people(neighbourhood, month, flag)
        chosen = people[(people["neighbourhood"] == neighbourhood) & people["listed"]]
        if flag is not None:
            chosen = chosen[chosen[flag].fillna(False).astype(bool)]
        chosen = chosen.sort_values("rank")
        rows = [{k: _plain(v) for k, v in r.items()} for r in chosen.to_dict("records")]
        return month, run_id, meta, rows

    def check_person_access(self, user: User, person_id: str, month: str | None) -> str:
        """The person's neighbourhood in the month's run, once `user` may see it: raise
        `Denied` outside the user's scope, `NotFound` when the person is not in the run,
        `OptedOut` (only once in scope) when they opted out. Cheap: run it before any explanation
        is computed."""
        _, _, _, row = self.person_row(person_id, month)
        neighbourhood = str(row["neighbourhood"])
        check_neighbourhood(user, neighbourhood)
        self.refuse_opted_out(person_id, row)
        return neighbourhood

    def person_row(self, person_id: str, month: str | None) -> tuple[Month, str, dict, dict]:
        """(month, run id, meta, the person's run row); NotFound when not in the run."""
        month, run_id, meta = self.run(month)
        people = self.people(run_id)
        if person_id not in people.index:
            raise NotFound(f"person {person_id} is not in the {month} run")
        return month, run_id, meta, {k: _plain(v) for k, v in people.loc[person_id].items()}

    # --- feature rows --------------------------------------------------------------------

    def month_features(
        self, run_id: str, meta: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, int]]:
        """The model inputs the run stored (read once, then kept): a float matrix in the served
        model's feature order and person_id -> row. NotFound, saying what to re-score, for a run
        without stored inputs or without an input the served model needs."""
        with self._lock:
            if run_id in self._features:
                return self._features[run_id]
            try:
                frame = self.store.features(run_id)
            except StoreError as exc:
                raise NotFound(str(exc)) from None
            missing = [n for n in self.model.feature_names if n not in frame.columns]
            if missing:
                raise NotFound(
                    f"run {run_id!r} (model v{meta['model']['version']}) does not store "
                    f"{len(missing)} input(s) the served model v{self.version} needs "
                    f"({', '.join(missing[:5])}); re-score {meta['month']} with it: "
                    f"`casefinder score <extract folder> --month {meta['month']} "
                    f"--model {self.version}`"
                )
            # Kept as a float matrix with a row lookup: slicing one person out of a DataFrame
            # costs more than explaining them.
            values = frame[self.model.feature_names].to_numpy(dtype=float)
            rows = {str(p): i for i, p in enumerate(frame["person_id"])}
            self._features[run_id] = (values, rows)
            return self._features[run_id]

    def refuse_opted_out(self, person_id: str, row: dict[str, Any]) -> None:
        """Raise `OptedOut` for a person the run kept without a score because they opted out."""
        if row.get("excluded") == OPTED_OUT and row.get("probability") is None:
            raise OptedOut(person_id, str(row["neighbourhood"]))

    def person_features(self, run_id: str, meta: dict[str, Any], person_id: str) -> pd.DataFrame:
        """One person's model inputs (and person_id) as a one-row frame."""
        values, rows = self.month_features(run_id, meta)
        if person_id not in rows:
            raise NotFound(f"person {person_id} has no feature row in the {meta['month']} run")
        i = rows[person_id]
        frame = pd.DataFrame(values[i : i + 1], columns=self.model.feature_names)
        frame.insert(0, "person_id", [person_id])
        return frame

    # --- one person ----------------------------------------------------------------------

    def person(self, person_id: str, month: str | None) -> PersonView:
        """A person's explanation for the month and the change since last month's run."""
        month, run_id, meta, row = self.person_row(person_id, month)
        self.refuse_opted_out(person_id, row)
        current = self.person_features(run_id, meta, person_id)
        (explanation,) = explain(self.model, current, top_n=self.top_n)
        last = month.previous()
        change = None
        prev_run = self.store.current_run_id(last)
        if prev_run is not None:
            _, _, prev_meta = self.run(last)
            prev_values, prev_rows = self.month_features(prev_run, prev_meta)  # NotFound: re-score
            # not scored last month: absent, or opted out then (their stored inputs are blank)
            if person_id not in prev_rows or np.isnan(prev_values[prev_rows[person_id]]).all():
                change = PersonChanges.new(person_id, explanation.probability, explanation.band)
            else:
                before = self.person_features(prev_run, prev_meta, person_id)
                (change,) = changes(self.model, before, current, top_n=self.top_n)
        return PersonView(month, run_id, meta, row, current, explanation, change, last)

    def what_if(
        self, person_id: str, month: str | None, new_values: dict[str, float | None]
    ) -> tuple[Month, dict[str, Any], WhatIf]:
        """A person's score with some adjustable features changed (ValueError names bad ones)."""
        month, run_id, meta, row = self.person_row(person_id, month)
        self.refuse_opted_out(person_id, row)
        current = self.person_features(run_id, meta, person_id)
        return month, row, what_if(self.model, current, new_values, top_n=self.top_n)

    def summary(self, month: str | None) -> tuple[Month, str, dict[str, Any], pd.DataFrame]:
        """Counts per neighbourhood: eligible, scored, listed and per band (no person data)."""
        month, run_id, meta = self.run(month)
        people = self.people(run_id)
        grouped = people.groupby("neighbourhood", sort=True)
        table = pd.DataFrame(
            {
                "eligible": grouped.size(),
                "scored": grouped["probability"].count(),
                "listed": grouped["listed"].sum(),
            }
        )
        bands = pd.crosstab(people["neighbourhood"], people["band"])
        return month, run_id, meta, table.join(bands).fillna(0)

    def performance(
        self, month: str, run_id: str, neighbourhood: str | None = None
    ) -> pd.DataFrame:
        """How the month's list is doing per neighbourhood (`scoring.performance`)."""
        from config.db.reviews import read_reviews
        from scoring.performance import list_performance

        people = self.people(run_id)
        if neighbourhood is not None:
            people = people[people["neighbourhood"] == neighbourhood]
        return list_performance(people, read_reviews(self.settings, neighbourhood), month)

    # --- population segments -------------------------------------------------------------

    def segments(self, month: str | None) -> tuple[Month, str, dict[str, Any], pd.DataFrame]:
        """(month, run id, meta, the run's segmented people); NotFound for a run stored before
        runs kept segments."""
        month, run_id, meta = self.run(month)
        people = self.people(run_id)
        if "segment" not in people.columns:
            raise NotFound(
                f"the {month} run has no population segments (stored before runs kept them); "
                "score the month again"
            )
        return month, run_id, meta, people[people["segment"].notna()]
