"""List rules as pure functions of DataFrames and `ListSettings`: rank within each neighbourhood,
who goes on the list, and the month-to-month flags. Who is eligible and who is excluded (and why)
are the cohort's rules, in `features.cohort`.

The per-person table these build (one row per eligible person at the index date) is what a
scoring run stores; `scoring.run` feeds it and `scoring.store` keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from config.settings import ListSettings
from features.cohort import exclusion_flags, exclusion_reason

PERSON_COLUMNS = ["person_id", "neighbourhood", "gp_practice_code"]


def capacities(neighbourhoods: pd.Series, rules: ListSettings) -> pd.Series:
    """Each row's list size: the neighbourhood's override, else the default capacity."""
    overrides = rules.capacity_by_neighbourhood
    return neighbourhoods.map(overrides).fillna(rules.capacity).astype(int)


def _arrow_strings(values: pd.Series) -> pa.Array:
    array = pa.array(values, from_pandas=True)
    return array if pa.types.is_string(array.type) else array.cast(pa.string())


def rank_within_neighbourhood(people: pd.DataFrame, candidate: np.ndarray) -> pd.Series:
    """1 = highest probability among a neighbourhood's candidates; ties by person_id; missing for
    people who are not candidates."""
    pool = people.loc[candidate]
    hood = _arrow_strings(pool["neighbourhood"].astype("string"))
    table = pa.table(
        {
            "neighbourhood": hood,
            "probability": pa.array(pool["probability"].to_numpy(float)),
            "person_id": _arrow_strings(pool["person_id"].astype("string")),
        }
    )
    order = pc.sort_indices(
        table,
        sort_keys=[("neighbourhood", "ascending"), ("probability", "descending"),
                   ("person_id", "ascending")],
    )  # fmt: skip
    ordered = pc.take(hood, order)
    new_group = np.ones(len(ordered), dtype=bool)
    if len(ordered) > 1:
        same = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
        new_group[1:] = ~pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.r_[starts, len(ordered)])
    ranks = np.arange(len(ordered)) - np.repeat(starts, sizes) + 1
    out = pd.Series(pd.NA, index=people.index, dtype="Int64")
    out.iloc[np.flatnonzero(candidate)[order.to_numpy()]] = ranks
    return out


def month_flags(
    people: pd.DataFrame,
    previous: pd.DataFrame | None,
    listed_before: Iterable[str],
    rules: ListSettings,
) -> pd.DataFrame:
    """previous_probability, on_last_month_list, new_this_month (first time on any list) and
    risk_risen (probability up by `rules.risen_by` or more since last month) for every person.

    `previous` is last month's current run (person_id, probability, listed), None when there was
    none; `listed_before` holds everyone listed in any earlier month's current run.
    """
    ids = people["person_id"]
    prev_p = np.full(len(people), np.nan)
    on_last = np.zeros(len(people), dtype=bool)
    if previous is not None and len(previous):
        pos = pd.Index(previous["person_id"]).get_indexer(ids)
        found = pos >= 0
        prev_p[found] = previous["probability"].to_numpy(float)[pos[found]]
        on_last[found] = previous["listed"].to_numpy(bool)[pos[found]]
    before = ids.isin(pd.Index(list(listed_before))).to_numpy(bool) | on_last
    with np.errstate(invalid="ignore"):
        risen = people["probability"].to_numpy(float) - prev_p >= rules.risen_by - 1e-12
    return pd.DataFrame(
        {
            "previous_probability": prev_p,
            "on_last_month_list": on_last,
            "new_this_month": people["listed"].to_numpy(bool) & ~before,
            "risk_risen": risen,
        },
        index=people.index,
    )


def build_list(
    features: pd.DataFrame,
    probability: np.ndarray,
    band: np.ndarray,
    rules: ListSettings,
    previous: pd.DataFrame | None = None,
    listed_before: Iterable[str] = (),
    reviewed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The per-person table of a run: one row per eligible person with probability, band,
    exclusion, rank within neighbourhood, list membership and flags. `reviewed`
    (`features.cohort.review_status`, one row per feature row) adds the MDT's decisions: the
    exclusions `mdt_accepted` / `mdt_reviewed`, the flags `risk_risen_since_review` and
    `review_due` (for listed people) and `mdt_since`.

    `features` holds the eligible population (person_id, neighbourhood, gp_practice_code and the
    non-model columns the rules read); `probability` and `band` are the model's output for its
    rows. Opted-out people (unless `direct_care_use`) keep no score: their probability is missing.
    """
    if len(probability) != len(features) or len(band) != len(features):
        raise ValueError("probability and band must have one value per feature row")
    if features["person_id"].duplicated().any():
        raise ValueError("feature table has duplicate person_id values")
    people = features[PERSON_COLUMNS].reset_index(drop=True).copy()
    people["neighbourhood"] = people["neighbourhood"].astype("string")
    people["gp_practice_code"] = people["gp_practice_code"].astype("string")
    people["probability"] = np.asarray(probability, dtype=float)
    people["band"] = pd.Series(np.asarray(band, dtype=object), dtype="string")

    if reviewed is not None:
        reviewed = reviewed.reset_index(drop=True)
    flags = exclusion_flags(features.reset_index(drop=True), rules, reviewed=reviewed)
    reason = exclusion_reason(flags)
    people["excluded"] = reason
    if "opted_out" in flags.columns:
        hidden = flags["opted_out"].to_numpy()
        people.loc[hidden, "probability"] = np.nan
        people.loc[hidden, "band"] = pd.NA

    candidate = reason.isna().to_numpy() & people["probability"].notna().to_numpy()
    people["rank"] = rank_within_neighbourhood(people, candidate)
    if rules.mode == "capacity":
        listed = people["rank"].le(capacities(people["neighbourhood"], rules))
    else:
        listed = pd.Series(candidate, index=people.index) & people["probability"].ge(
            rules.threshold
        )
    people["listed"] = listed.fillna(False).astype(bool)
    flags = month_flags(people, previous, listed_before, rules)
    on_list = people["listed"].to_numpy(bool)
    for key in ("risk_risen_since_review", "review_due"):
        flags[key] = on_list & (False if reviewed is None else reviewed[key].to_numpy(bool))
    flags["mdt_since"] = (
        pd.Series(pd.NA, index=people.index, dtype="string")
        if reviewed is None
        else reviewed["mdt_since"].astype("string").where(reason.eq("mdt_accepted").fillna(False))
    )
    return pd.concat([people, flags], axis=1)


def exclusion_counts(
    features: pd.DataFrame, rules: ListSettings, reviewed: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per neighbourhood and exclusion: people whose first reason it is, and people it applies to
    at all (someone can be on two caseloads). Columns: neighbourhood, reason, first, any."""
    flags = exclusion_flags(features, rules, reviewed=reviewed)
    reason = exclusion_reason(flags)
    codes, hoods = pd.factorize(features["neighbourhood"].astype(object), sort=True)
    known = codes >= 0  # a person without a neighbourhood is not counted per neighbourhood
    rows = []
    for key in flags.columns:
        first = (reason == key).fillna(False).to_numpy(bool)
        rows.append(
            pd.DataFrame(
                {
                    "neighbourhood": np.asarray(hoods, dtype=object),
                    "reason": key,
                    "first": np.bincount(codes[known & first], minlength=len(hoods)),
                    "any": np.bincount(
                        codes[known & flags[key].to_numpy(bool)], minlength=len(hoods)
                    ),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["neighbourhood", "reason", "first", "any"])
    return pd.concat(rows, ignore_index=True)
