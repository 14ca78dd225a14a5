"""How the list is doing (scoring.performance): listed, reviewed, accepted, share accepted,
days to review and the 12-month outcome rate by decision, from a few rows."""

from __future__ import annotations

import pandas as pd
import pytest

from scoring.performance import list_performance, render_performance


def test_the_figures_of_a_months_list():
    people = pd.DataFrame({"person_id": list("abcdef"), "neighbourhood": list("NNNNSS"),
                           "listed": [True, True, True, False, True, True]})  # fmt: skip
    reviews = pd.DataFrame(
        {"id": [1, 2, 3, 4, 5], "person_id": ["a", "b", "e", "a", "x"],
         "month": ["2026-09", "2026-09", "2026-09", "2026-08", "2026-09"],
         "outcome": ["accepted", "declined", "accepted", "deferred", "accepted"],
         "reviewed_on": ["2026-09-08", "2026-09-15", "2026-09-03", "2026-08-20", "2026-09-01"]}
    )  # fmt: skip
    people.index = pd.Index(people["person_id"])  # as a run's table is held by the service
    outcomes = pd.DataFrame({"person_id": list("abcdef"), "outcome": [1, 0, 1, 0, 0, 1]})
    table = list_performance(people, reviews, "2026-09", outcomes)
    north, south = table.loc["N"], table.loc["S"]
    assert (north["listed"], north["reviewed"], north["accepted"]) == (3, 2, 1)
    assert north["share_accepted"] == 0.5 and north["median_days_to_review"] == 10.5  # 7 and 14
    assert (north["outcome_rate_accepted"], north["outcome_rate_declined"]) == (1.0, 0.0)
    assert north["outcome_rate_never_reviewed"] == 1.0  # c; d was not listed
    assert (south["listed"], south["reviewed"], south["share_accepted"]) == (2, 1, 1.0)
    assert south["outcome_rate_never_reviewed"] == 1.0 and pd.isna(south["outcome_rate_declined"])
    text = render_performance("2026-09", table)
    assert "| N | 3 | 2 | 1 | 0.500 | 10.500 |" in text


def test_no_reviews_yet():
    people = pd.DataFrame({"person_id": ["a"], "neighbourhood": ["N"], "listed": [True]})
    table = list_performance(people, None, "2026-09")
    assert table.loc["N", "reviewed"] == 0 and pd.isna(table.loc["N", "share_accepted"])
    assert "outcome_rate_accepted" not in table.columns
    with pytest.raises(KeyError):
        table.loc["S"]
