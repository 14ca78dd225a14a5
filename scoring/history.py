"""Month-on-month columns of a stored run, kept true of the runs that exist.

A run's flags (`features.cohort.LIST_FLAGS`: new this month, on last month's list, risk risen,
moved segment) and the columns behind them (previous_probability, previous_segment, rising_risk)
depend on the current runs of earlier months. Sites score months out of order (backfilling
October after November), so these columns are recomputed from the stored runs whenever the runs
they were computed against are no longer the months' current runs: `refresh_month_columns` is
the pure step, `ScoreStore.people` calls it. The rules themselves are `scoring.rules.month_flags`
and `scoring.segments.segment_movement`, the ones a scoring run uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from config.settings import ListSettings, SegmentSettings
from scoring.rules import month_flags
from scoring.segments import segment_movement

# The per-person columns that depend on earlier months' runs.
MONTH_COLUMNS = (
    "previous_probability",
    "on_last_month_list",
    "new_this_month",
    "risk_risen",
    "previous_segment",
    "moved_segment",
    "rising_risk",
)


def refresh_month_columns(
    people: pd.DataFrame,
    meta: dict[str, Any],
    previous: pd.DataFrame | None,
    listed_before: Iterable[str],
) -> pd.DataFrame:
    """`people` (a stored run's per-person table) with `MONTH_COLUMNS` recomputed against
    `previous` (the month before's current run: person_id, probability, listed, segment) and
    `listed_before` (everyone listed in the current run of any earlier month), under the list and
    segment settings the run was scored with (`meta`: its run.json)."""
    rules = ListSettings(**meta["list_settings"])
    out = people.copy()
    flags = month_flags(out, previous, listed_before, rules)
    for column in flags.columns:
        out[column] = flags[column]
    if "segment" in out.columns:
        settings = SegmentSettings(**(meta.get("segments") or {}).get("settings", {}))
        movement = segment_movement(out, out["segment"], settings, previous)
        for column in movement.columns:
            out[column] = movement[column]
    return out
