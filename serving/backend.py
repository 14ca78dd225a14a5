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
from typing import Any, NamedTuple
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from config.settings import Settings
from features.cohort import EXCLUSIONS, LIST_FLAGS
from features.dates import Month
from models.explain import (
    Explanation,
    PersonChanges,
    Reference,
    WhatIf,
    changes,
    explain,
    population_reference,
    reference_words,
    what_if,
)
from models.local_store import store_path
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


class ResolvedRun(NamedTuple):
    """A month's current run, resolved once per request: later reads in the same request take
    this, so a re-score between two reads cannot mix runs."""

    month: Month
    run_id: str
    meta: dict[str, Any]


# A month asked for ("YYYY-MM", None for the latest) or a run already resolved in the request.
MonthRef = str | ResolvedRun | None


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
    champion_note: str | None = None


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
            path = store_path(uri)
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
        self._references: dict[str, Reference] = {}
        self._lock = threading.Lock()
        self._registry: tuple[float, bool, str] | None = None
        self._champion_checked = time.monotonic()
        self.replaced: list[tuple[str, str]] = []  # (version, when) of champions replaced

    @classmethod
    def start(cls, settings: Settings) -> Backend:
        """Load the registry's model (`serving.model_ref`, default the champion)."""
        from models.registry import load_risk_model

        model, version = load_risk_model(settings, ref=settings.serving.model_ref)
        return cls(settings, model, str(version))

    # --- model ---------------------------------------------------------------------------

    def score(self, rows: pd.DataFrame) -> list[Explanation]:
        """Probability, band and top reasons for each feature row, measured against the latest
        scored month's population (`adhoc_reference`)."""
        return explain(self.model, rows, top_n=self.top_n, reference=self.adhoc_reference(rows))

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

    def run_model(self, meta: dict[str, Any]) -> RiskModel:
        """The model a run was scored with, so that a list and its person pages show one
        model's scores and reasons whatever the champion is now."""
        version = str(meta["model"]["version"])
        return self.model if version == self.version else self.model_for(version)[0]

    def follow_champion(self) -> bool:
        """Load the registry's new champion if `serving.model_ref` now names another version
        (checked at most every `registry_check_seconds`); True when it changed. A registry that
        does not answer keeps the loaded model."""
        from models.registry import load_risk_model, resolve_version

        now = time.monotonic()
        if now - self._champion_checked < self.settings.serving.registry_check_seconds:
            return False
        self._champion_checked = now
        if not self.registry()[0]:  # asking MLflow would create a missing store: keep serving
            return False
        try:
            version = resolve_version(self.settings, self.settings.serving.model_ref)
            if version == self.version:
                return False
            model, version = load_risk_model(self.settings, ref=version)
        except Exception:  # unreachable or mid-write: keep serving the loaded champion
            return False
        with self._lock:
            self._others[self.version] = self.model  # runs scored with it still explain with it
            self.replaced.append((self.version, datetime.now(UTC).isoformat(timespec="seconds")))
            self.model, self.version = model, str(version)
            self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        return True

    def champion_note(self, meta: dict[str, Any]) -> str | None:
        """What a team should know when the month's run was scored with a model other than the
        champion now loaded; None when they agree."""
        run_version = str(meta["model"]["version"])
        if run_version == self.version:
            return None
        return (
            f"This month's list was scored with model version {run_version}; the champion is "
            f"now version {self.version}. Scores and reasons here are version {run_version}'s, "
            f"until {meta['month']} is scored again with the champion."
        )

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

    def run(self, month: MonthRef) -> ResolvedRun:
        """(month, run id, run metadata) of the month's current run; a `ResolvedRun` is
        returned as it is (the pointer is read once per request)."""
        if isinstance(month, ResolvedRun):
            return month
        self.follow_champion()
        month = self.month_or_latest(month)
        try:
            run_id = self.store.resolve(month=month)
            if run_id not in self._meta:
                self._meta[run_id] = self.store.meta(run_id)
            return ResolvedRun(month, run_id, self._meta[run_id])
        except StoreError as exc:
            raise NotFound(str(exc)) from None

    def people(self, run_id: str) -> pd.DataFrame:
        """The run's per-person table, indexed by person_id. Runs are never rewritten, but their
        month-on-month flags follow the earlier months' current runs (`ScoreStore.people`), so
        it is kept per run and per those runs: scoring an earlier month refreshes it."""
        if run_id not in self._meta:
            self._meta[run_id] = self.store.meta(run_id)
        history = self.store.history(self._meta[run_id]["month"])
        key = f"{run_id}|{sorted(history.items())}"
        with self._lock:
            if key not in self._people:
                table = self.store.people(run_id)
                table.index = pd.Index(table["person_id"].astype(str), name=None)
                stale = [k for k in self._people if k.startswith(f"{run_id}|")]
                for old in stale:  # one version of a run's table at a time
                    del self._people[old]
                self._people[key] = table
            return self._people[key]

    def _neighbourhood_people(
        self, neighbourhood: str, month: MonthRef, flag: str | None
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
        self, neighbourhood: str, month: MonthRef, flag: str | None = None
    ) -> tuple[Month, str, dict[str, Any], pd.DataFrame]:
        """The neighbourhood's list in the month's current run as `scoring.exports.list_table`
        builds it for `casefinder lists`, with the MDT's latest decisions (the page downloads
        write this table)."""
        from config.db.reviews import read_reviews

        month, run_id, meta, people = self._neighbourhood_people(neighbourhood, month, flag)
        reviews = read_reviews(self.settings, neighbourhood)
        return month, run_id, meta, list_table(people, neighbourhood, flag, reviews)

    def neighbourhood_list(
        self, neighbourhood: str, month: MonthRef, flag: str | None = None
    ) -> tuple[Month, str, dict[str, Any], list[dict[str, Any]]]:
        """The listed people of a neighbourhood in the month's current run, by rank."""
        month, run_id, meta, people = self._neighbourhood_people(neighbourhood, month, flag)
        chosen = people[(people["neighbourhood"] == neighbourhood) & people["listed"]]
        if flag is not None:
            chosen = chosen[chosen[flag].fillna(False).astype(bool)]
        chosen = chosen.sort_values("rank")
        rows = [{k: _plain(v) for k, v in r.items()} for r in chosen.to_dict("records")]
        return month, run_id, meta, rows

    def check_person_access(self, user: User, person_id: str, month: MonthRef) -> str:
        """The person's neighbourhood in the month's run, once `user` may see it: raise
        `Denied` outside the user's scope, `NotFound` when the person is not in the run,
        `OptedOut` (only once in scope) when they opted out. Cheap: run it before any explanation
        is computed."""
        _, _, _, row = self.person_row(person_id, month)
        neighbourhood = str(row["neighbourhood"])
        check_neighbourhood(user, neighbourhood)
        self.refuse_opted_out(person_id, row)
        return neighbourhood

    def person_row(self, person_id: str, month: MonthRef) -> tuple[Month, str, dict, dict]:
        """(month, run id, meta, the person's run row); NotFound when not in the run."""
        month, run_id, meta = self.run(month)
        people = self.people(run_id)
        if person_id not in people.index:
            raise NotFound(f"person {person_id} is not in the {month} run")
        return month, run_id, meta, {k: _plain(v) for k, v in people.loc[person_id].items()}

    # --- feature rows --------------------------------------------------------------------

    def month_features(
        self,
        run_id: str,
        meta: dict[str, Any],
        model: RiskModel | None = None,
        version: str | None = None,
    ) -> tuple[np.ndarray, dict[str, int]]:
        """The model inputs the run stored (read once per run and model, then kept): a float
        matrix in `model`'s feature order (default the run's own model; `version` its number)
        and person_id -> row. NotFound, saying what to re-score, for a run without stored
        inputs or without an input the model needs."""
        version = version or str(meta["model"]["version"])
        model = model or self.run_model(meta)
        key = f"{run_id}|{id(model)}"
        with self._lock:
            if key in self._features:
                return self._features[key]
            try:
                frame = self.store.features(run_id)
            except StoreError as exc:
                raise NotFound(str(exc)) from None
            missing = [n for n in model.feature_names if n not in frame.columns]
            if missing:
                raise NotFound(
                    f"run {run_id!r} (model v{meta['model']['version']}) does not store "
                    f"{len(missing)} input(s) model v{version} needs ({', '.join(missing[:5])}); "
                    f"re-score {meta['month']} with it: `casefinder score <extract folder> "
                    f"--month {meta['month']} --model {version}`"
                )
            # Kept as a float matrix with a row lookup: slicing one person out of a DataFrame
            # costs more than explaining them.
            values = frame[model.feature_names].to_numpy(dtype=float)
            rows = {str(p): i for i, p in enumerate(frame["person_id"])}
            self._features[key] = (values, rows)
            return self._features[key]

    def refuse_opted_out(self, person_id: str, row: dict[str, Any]) -> None:
        """Raise `OptedOut` for a person the run kept without a score because they opted out."""
        if row.get("excluded") == OPTED_OUT and row.get("probability") is None:
            raise OptedOut(person_id, str(row["neighbourhood"]))

    def person_features(
        self, run_id: str, meta: dict[str, Any], person_id: str, model: RiskModel | None = None
    ) -> pd.DataFrame:
        """One person's model inputs (and person_id) as a one-row frame, in `model`'s order
        (default the run's own model)."""
        model = model or self.run_model(meta)
        values, rows = self.month_features(run_id, meta, model)
        if person_id not in rows:
            raise NotFound(f"person {person_id} has no feature row in the {meta['month']} run")
        i = rows[person_id]
        frame = pd.DataFrame(values[i : i + 1], columns=model.feature_names)
        frame.insert(0, "person_id", [person_id])
        return frame

    # --- explanation reference (issue 12) ------------------------------------------------

    def reference(self, run_id: str, meta: dict[str, Any]) -> Reference:
        """What the run's explanations start from: its stored mean served probability
        (`reference_probability`) and the seeded background of its scored people, taken in the
        run's stored order, so the pages, the API and the run's list reasons agree."""
        with self._lock:
            if run_id in self._references:
                return self._references[run_id]
        values, rows = self.month_features(run_id, meta)
        people = self.people(run_id)
        scored = people.index[people["probability"].notna()]
        order = np.sort(np.array([rows[p] for p in scored if p in rows], dtype=int))
        mean = meta.get("reference_probability")
        if mean is None:  # a run stored before runs kept it
            mean = float(people["probability"].mean())
        ref = population_reference(
            self.run_model(meta), values[order], mean_probability=float(mean),
            description=meta.get("reference") or reference_words(str(meta["month"])),
        )  # fmt: skip
        with self._lock:
            self._references[run_id] = ref
        return ref

    def adhoc_reference(self, rows: pd.DataFrame) -> Reference | None:
        """For rows scored outside any run (/score): the latest scored month's reference, or
        None (the rows themselves) when no month has been scored or its inputs are not kept."""
        try:
            _, run_id, meta = self.run(None)
            if str(meta["model"]["version"]) != self.version:  # scored with another model
                return None
            return self.reference(run_id, meta)
        except NotFound:
            return None

    # --- one person ----------------------------------------------------------------------

    def person(self, person_id: str, month: MonthRef) -> PersonView:
        """A person's explanation for the month and the change since last month's run."""
        month, run_id, meta, row = self.person_row(person_id, month)
        self.refuse_opted_out(person_id, row)
        model = self.run_model(meta)  # the list's model, whatever the champion is now
        current = self.person_features(run_id, meta, person_id, model)
        ref = self.reference(run_id, meta)
        (explanation,) = explain(model, current, top_n=self.top_n, reference=ref)
        last = month.previous()
        change = None
        prev_run = self.store.current_run_id(last)
        if prev_run is not None:
            _, _, prev_meta = self.run(last)
            version = str(meta["model"]["version"])
            prev_values, prev_rows = self.month_features(prev_run, prev_meta, model, version)
            # not scored last month: absent, or opted out then (their stored inputs are blank)
            if person_id not in prev_rows or np.isnan(prev_values[prev_rows[person_id]]).all():
                change = PersonChanges.new(person_id, explanation.probability, explanation.band)
            else:
                before = self.person_features(prev_run, prev_meta, person_id, model)
                (change,) = changes(model, before, current, top_n=self.top_n)
        return PersonView(
            month, run_id, meta, row, current, explanation, change, last, self.champion_note(meta)
        )

    def what_if(
        self,
        person_id: str,
        month: MonthRef,
        new_values: dict[str, float | None],
        outcome: Any = None,
    ) -> tuple[Month, dict[str, Any], WhatIf]:
        """A person's score with some root inputs changed and their dependents re-derived
        (ValueError names bad ones or an impossible combination); `outcome` (default the
        settings' outcome) names the inputs the outcome counts."""
        month, run_id, meta, row = self.person_row(person_id, month)
        self.refuse_opted_out(person_id, row)
        model = self.run_model(meta)
        current = self.person_features(run_id, meta, person_id, model)
        ref = self.reference(run_id, meta)
        result = what_if(
            model, current, new_values, top_n=self.top_n, reference=ref,
            outcome=outcome or self.settings.outcome,
        )  # fmt: skip
        return month, row, result

    def summary(self, month: MonthRef) -> tuple[Month, str, dict[str, Any], pd.DataFrame]:
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

    def segments(self, month: MonthRef) -> tuple[Month, str, dict[str, Any], pd.DataFrame]:
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
