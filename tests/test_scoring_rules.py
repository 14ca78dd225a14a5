"""List rules on small frames: exclusions, eligibility, capacity, threshold, month flags."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from config.settings import ListSettings
from features.dates import Month
from scoring.rules import build_list, exclusion_counts


def frame(n: int = 12, hoods: tuple[str, ...] = ("North", "South")) -> pd.DataFrame:
    f = pd.DataFrame(
        {
            "person_id": [f"P{i:02d}" for i in range(n)],
            "neighbourhood": [hoods[i % len(hoods)] for i in range(n)],
            "gp_practice_code": "P88001",
        }
    )
    for column in (
        "data_opt_out",
        "in_care_home",
        "on_caseload_neighbourhood_mdt",
        "on_caseload_end_of_life",
        "on_caseload_community_matron",
        "on_caseload_care_home_support",
    ):
        f[column] = 0
    return f


def listed(features: pd.DataFrame, p: np.ndarray, rules: ListSettings, **kw) -> pd.DataFrame:
    band = np.where(p >= 0.5, "very high", "low")
    return build_list(features, p, band, rules, **kw)


# Everyone very likely; person P00 (North) is the most likely, so any exclusion shows.
P = np.linspace(0.95, 0.40, 12)


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        ("on_caseload_neighbourhood_mdt", "caseload_neighbourhood_mdt"),
        ("on_caseload_end_of_life", "caseload_end_of_life"),
        ("on_caseload_care_home_support", "caseload_care_home_support"),
        ("in_care_home", "care_home"),
        ("data_opt_out", "opted_out"),
    ],
)
def test_each_exclusion_keeps_the_person_off_and_is_counted(column: str, reason: str) -> None:
    features = frame()
    features.loc[0, column] = 1
    people = listed(features, P, ListSettings(capacity=3))
    top = people.set_index("person_id").loc["P00"]
    assert top["excluded"] == reason
    assert not top["listed"] and pd.isna(top["rank"])
    # The next North person moves up to rank 1; North still lists 3.
    north = people[people["neighbourhood"] == "North"]
    assert north.loc[north["rank"] == 1, "person_id"].item() == "P02"
    assert north["listed"].sum() == 3
    counts = exclusion_counts(features, ListSettings())
    row = counts[(counts["reason"] == reason) & (counts["neighbourhood"] == "North")]
    assert row["first"].item() == 1 and row["any"].item() == 1
    assert counts.loc[counts["reason"] != reason, "any"].sum() == 0


def test_opted_out_people_keep_no_score_unless_direct_care_use() -> None:
    features = frame()
    features.loc[0, "data_opt_out"] = 1
    people = listed(features, P, ListSettings())
    assert np.isnan(people.loc[0, "probability"]) and pd.isna(people.loc[0, "band"])
    direct = listed(features, P, ListSettings(direct_care_use=True))
    assert direct.loc[0, "listed"] and direct.loc[0, "rank"] == 1
    assert direct.loc[0, "probability"] == pytest.approx(0.95)


def test_community_matron_caseload_is_excluded_only_when_configured() -> None:
    features = frame()
    features.loc[0, "on_caseload_community_matron"] = 1
    assert listed(features, P, ListSettings()).loc[0, "listed"]
    rules = ListSettings(exclude_caseloads=["community_matron"])
    people = listed(features, P, rules)
    assert people.loc[0, "excluded"] == "caseload_community_matron"
    assert not people.loc[0, "listed"]


def test_care_home_exclusion_can_be_switched_off() -> None:
    features = frame()
    features.loc[0, "in_care_home"] = 1
    assert listed(features, P, ListSettings(exclude_care_home=False)).loc[0, "listed"]


def test_first_reason_counts_each_person_once_any_counts_every_reason() -> None:
    features = frame()
    features.loc[0, ["on_caseload_end_of_life", "in_care_home"]] = 1
    counts = exclusion_counts(features, ListSettings()).set_index(["neighbourhood", "reason"])
    assert counts.loc[("North", "caseload_end_of_life"), "first"] == 1
    assert counts.loc[("North", "care_home"), "first"] == 0
    assert counts.loc[("North", "care_home"), "any"] == 1


def test_missing_list_column_is_a_clear_error() -> None:
    features = frame().drop(columns=["in_care_home"])
    with pytest.raises(ValueError, match="in_care_home"):
        listed(features, P, ListSettings())


def test_capacity_per_neighbourhood_with_overrides() -> None:
    features = frame(30, hoods=("North", "South", "East"))
    p = np.linspace(0.9, 0.1, 30)
    rules = ListSettings(capacity=4, capacity_by_neighbourhood={"South": 2, "East": 0})
    people = listed(features, p, rules)
    sizes = people[people["listed"]].groupby("neighbourhood").size()
    assert sizes.to_dict() == {"North": 4, "South": 2}
    north = people[people["neighbourhood"] == "North"].sort_values("rank")
    assert north["rank"].tolist() == list(range(1, 11))
    assert north["probability"].is_monotonic_decreasing
    assert north["listed"].tolist() == [True] * 4 + [False] * 6


def test_ties_are_ranked_by_person_id() -> None:
    features = frame(6, hoods=("North",))
    people = listed(features, np.full(6, 0.3), ListSettings(capacity=2))
    assert people.sort_values("rank")["person_id"].tolist()[:2] == ["P00", "P01"]


def test_threshold_mode_lists_everyone_above_the_threshold() -> None:
    features = frame()
    features.loc[1, "in_care_home"] = 1
    people = listed(features, P, ListSettings(mode="threshold", threshold=0.7))
    expected = {f"P{i:02d}" for i in range(12) if P[i] >= 0.7} - {"P01"}
    assert set(people.loc[people["listed"], "person_id"]) == expected


def test_flags_new_on_last_month_and_risen() -> None:
    features = frame(4, hoods=("North",))
    now = np.array([0.9, 0.8, 0.7, 0.2])
    previous = pd.DataFrame(
        {
            "person_id": ["P00", "P01", "P02", "P03"],
            "probability": [0.85, 0.60, 0.71, 0.5],
            "listed": [True, False, False, True],
        }
    )
    people = listed(
        features, now, ListSettings(capacity=3, risen_by=0.1), previous=previous,
        listed_before={"P02"},
    ).set_index("person_id")  # fmt: skip
    assert people["listed"].to_dict() == {"P00": True, "P01": True, "P02": True, "P03": False}
    assert people["on_last_month_list"].to_dict() == {
        "P00": True, "P01": False, "P02": False, "P03": True,
    }  # fmt: skip
    # New: listed now and never listed before (P02 was listed two months ago).
    assert people["new_this_month"].to_dict() == {
        "P00": False, "P01": True, "P02": False, "P03": False,
    }  # fmt: skip
    # Risen: up by 0.1 or more (P01 +0.2); P00 +0.05 and P02 -0.01 are not.
    assert people["risk_risen"].to_dict() == {
        "P00": False, "P01": True, "P02": False, "P03": False,
    }  # fmt: skip
    assert people.loc["P01", "previous_probability"] == pytest.approx(0.6)


def test_first_month_everyone_listed_is_new() -> None:
    people = listed(frame(), P, ListSettings(capacity=2))
    assert (people["new_this_month"] == people["listed"]).all()
    assert not people["on_last_month_list"].any() and not people["risk_risen"].any()


def test_months() -> None:
    assert Month("2026-11").index_date == date(2026, 11, 1)
    assert Month("2026-01").previous() == "2025-12"
    assert Month.of(date(2024, 2, 29)) == "2024-02"
    for bad in ("2026-13", "2026/11", "Nov 2026", "2026-1", "2026-00", 202611):
        with pytest.raises(ValueError, match="YYYY-MM"):
            Month(bad)
