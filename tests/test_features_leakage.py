"""Point-in-time correctness: records dated on or after the index date, or after a table's
complete_to, never change the feature table."""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from test_features_common import load, random_tables

from features import build_features
from records.contract import TABLES

D = date(2024, 7, 1)
EXTRACT_END = date(2026, 10, 31)


def _after(value: str, cutoff: date) -> bool:
    return bool(value) and date.fromisoformat(value) >= cutoff


def _day_between(rng: random.Random, lo: date, hi: date) -> str:
    return (lo + timedelta(days=rng.randint(0, max((hi - lo).days, 0)))).isoformat()


_CODES = (
    "snomed_code",
    "bnf_code",
    "diagnoses",
    "service",
    "team_type",
    "caseload",
    "admission_method",
    "attendance",
    "arrival_mode",
    "service_type",
    "event_type",
)


def _tamper(tables: dict, cutoffs: dict[str, date], mode: str, seed: int = 3) -> dict:
    """Delete ("delete") or rewrite ("change") every value dated on or after its table's cutoff:
    rows whose record date is late (changed rows are also duplicated, with scrambled codes), and
    late end, discharge, death and registration dates. The result is still a valid extract."""
    rng = random.Random(seed)
    out = copy.deepcopy(tables)
    limit: dict[str, date] = {}
    cutoff = cutoffs["people"]
    for row in out["people"]:
        death = row["date_of_death"]
        limit[row["person_id"]] = date.fromisoformat(death) if death else EXTRACT_END
        if mode == "delete":
            for key in ("date_of_death", "registration_end"):
                if _after(row[key], cutoff):
                    row[key] = ""
            continue
        # A registration starting on D counts as registered on D (contract), so only later
        # starts are rewritten (to other later days).
        if _after(row["registration_start"], cutoff + timedelta(days=1)):
            lo = cutoff + timedelta(days=1)
            row["registration_start"] = _day_between(rng, lo, limit[row["person_id"]])
        if _after(row["registration_end"], cutoff):
            lo = max(cutoff, date.fromisoformat(row["registration_start"]))
            row["registration_end"] = _day_between(rng, lo, limit[row["person_id"]])
    for name, table in TABLES.items():
        if name == "people":
            continue
        cutoff = cutoffs[name]
        rows = []
        for row in out[name]:
            hi = limit[row["person_id"]]
            start_col = table.date_column
            if _after(row[start_col], cutoff):
                if mode == "delete":
                    continue
                row[start_col] = _day_between(rng, cutoff, hi)
                for key in _CODES:
                    if key in row:
                        row[key] = rng.choice([r[key] for r in tables[name]])
                if name == "social_care" and row["event_type"] != "service":
                    row["service_type"] = ""
                rows.append(row)  # and a duplicate, below
            for extra in table.extra_date_columns:
                if _after(row[extra], cutoff):
                    lo = max(cutoff, date.fromisoformat(row[start_col]))
                    row[extra] = "" if mode == "delete" else _day_between(rng, lo, hi)
                    if extra == "discharge_date":
                        row["discharge_destination"] = rng.choice(["54", "65", "19", ""])
            rows.append(dict(row))
        out[name] = rows
    return out


@pytest.fixture(scope="module")
def tables() -> dict:
    return random_tables(n_people=250, seed=11)


@pytest.mark.parametrize("mode", ["delete", "change"])
def test_records_on_or_after_the_index_date_do_not_change_features(
    tmp_path: Path, tables: dict, mode: str
) -> None:
    before = build_features(load(tmp_path / "a", tables), D)
    tampered = _tamper(tables, dict.fromkeys(TABLES, D), mode)
    changed = sum(len(tables[t]) != len(tampered[t]) for t in TABLES)
    assert mode == "change" or changed >= 8  # the tampering really removed rows
    after = build_features(load(tmp_path / "b", tampered), D)
    assert len(before) > 100
    pd.testing.assert_frame_equal(before, after)


def test_index_date_features_do_change_when_earlier_records_change(
    tmp_path: Path, tables: dict
) -> None:
    """The check above can fail: moving the cutoff one year earlier does change the table."""
    before = build_features(load(tmp_path / "a", tables), D)
    tampered = _tamper(tables, dict.fromkeys(TABLES, date(2023, 7, 1)), "delete")
    after = build_features(load(tmp_path / "b", tampered), D)
    assert not before.equals(after)


def test_records_after_complete_to_are_not_read(tmp_path: Path, tables: dict) -> None:
    complete_to = {
        "prescriptions": "2026-06-30",
        "gp_events": "2026-08-31",
        "hospital_spells": "2026-09-15",
        "social_care": "2026-07-31",
    }
    manifest = {"extract_date": "2026-10-31", "complete_to": complete_to}
    index_date = date(2026, 11, 1)  # the usual monthly run: the day after extract_date
    cutoffs = dict.fromkeys(TABLES, index_date)
    cutoffs.update({t: date.fromisoformat(d) + timedelta(days=1) for t, d in complete_to.items()})
    # Tamper only the lagging tables past their complete_to (people and others stay as is).
    tampered = _tamper(tables, cutoffs, "change")
    for name in TABLES:
        if name not in complete_to:
            tampered[name] = tables[name]
    before = build_features(load(tmp_path / "a", tables, manifest), index_date)
    after = build_features(load(tmp_path / "b", tampered, manifest), index_date)
    pd.testing.assert_frame_equal(before, after)
    # ... whereas the same change read against extract_date would show.
    plain = {"extract_date": "2026-10-31"}
    before = build_features(load(tmp_path / "c", tables, plain), index_date)
    after = build_features(load(tmp_path / "d", tampered, plain), index_date)
    assert not before.equals(after)
