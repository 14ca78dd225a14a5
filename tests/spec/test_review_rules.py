"""Spec: how the next month's list follows the MDT's decisions (features.cohort.review_status,
scoring.rules.build_list), with `[reviews] suppress_months = 6`, `relist_if_risen = 0.10`.

Each person: their review history (month reviewed, outcome, probability then, extra), their
probability in the 2026-10 run, and what the rules say: exclusion, flags, listed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from config.settings import ListSettings, ReviewSettings, Settings
from features.cohort import EXCLUSIONS, LIST_FLAGS, after_acceptance, modelled_population
from scoring.rules import build_list

MONTH = "2026-10"
# person: (reviews [(month, outcome, probability then, extra)], probability now,
#          excluded, flags set, listed)
SPEC = {
    "accepted":          ([("2026-08", "accepted", 0.6, {"care_plan_started": "2026-08-20"})],
                          0.9, "mdt_accepted", [], False),
    "accepted_closed":   ([("2026-05", "accepted", 0.6, {}), ("2026-08", "closed", 0.5, {})],
                          0.8, None, [], True),
    "declined_recent":   ([("2026-07", "declined", 0.7, {})], 0.75, "mdt_reviewed", [], False),
    "declined_risen":    ([("2026-07", "declined", 0.6, {})], 0.70, None,
                          ["risk_risen_since_review"], True),  # exactly +0.10: relisted
    "declined_long_ago": ([("2026-04", "declined", 0.6, {})], 0.65, None, [], True),  # 6 months
    "not_appropriate":   ([("2026-09", "not_appropriate", 0.5, {"reason": "risk_overstated"})],
                          0.55, "mdt_reviewed", [], False),
    "already_known":     ([("2026-09", "already_known", 0.5, {"care_coordinator": "matron"})],
                          0.5, "mdt_reviewed", [], False),
    "deferred_due":      ([("2026-09", "deferred", 0.5, {"review_month": "2026-10"})], 0.45,
                          None, ["review_due"], True),
    "deferred_later":    ([("2026-09", "deferred", 0.5, {"review_month": "2026-12"})], 0.44,
                          None, [], True),
    "this_month_review": ([("2026-10", "declined", 0.4, {})], 0.43, None, [], True),  # not yet
    "never_reviewed":    ([], 0.42, None, [], True),
}  # fmt: skip


def _reviews() -> pd.DataFrame:
    rows, n = [], 0
    for person, (history, *_rest) in SPEC.items():
        for month, outcome, probability, extra in history:
            n += 1
            rows.append(
                {
                    "id": n, "person_id": person, "month": month, "outcome": outcome,
                    "probability": probability, "reviewed_on": f"{month}-15",
                    "care_plan_started": extra.get("care_plan_started"),
                    "review_month": extra.get("review_month"),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def _list() -> pd.DataFrame:
    from features.cohort import review_status

    features = pd.DataFrame(
        {"person_id": list(SPEC), "neighbourhood": "North", "gp_practice_code": "P1",
         "data_opt_out": 0, "in_care_home": 0}
    )  # fmt: skip
    for caseload in ("neighbourhood_mdt", "end_of_life", "community_matron", "care_home_support"):
        features[f"on_caseload_{caseload}"] = 0
    p = np.array([SPEC[k][1] for k in SPEC])
    reviewed = review_status(
        pd.DataFrame({"person_id": features["person_id"], "probability": p}), _reviews(), MONTH,
        ReviewSettings(),
    )  # fmt: skip
    rules = ListSettings(capacity=50)
    return build_list(features, p, np.full(len(p), "high"), rules, reviewed=reviewed).set_index(
        "person_id"
    )


@pytest.mark.parametrize("person", list(SPEC))
def test_the_list_follows_the_decisions(person):
    people = _list()
    _, _, excluded, flags, listed = SPEC[person]
    row = people.loc[person]
    assert (None if pd.isna(row["excluded"]) else row["excluded"]) == excluded
    assert [f for f in ("risk_risen_since_review", "review_due") if row[f]] == flags
    assert bool(row["listed"]) == listed


def test_an_accepted_person_carries_the_episode_start_and_the_words_exist():
    people = _list()
    assert people.loc["accepted", "mdt_since"] == "2026-08-20"
    assert pd.isna(people.loc["declined_recent", "mdt_since"])
    assert {"mdt_accepted", "mdt_reviewed"} <= set(EXCLUSIONS)
    assert {"risk_risen_since_review", "review_due"} <= set(LIST_FLAGS)


def test_training_leaves_out_person_time_inside_an_accepted_episode():
    reviews = _reviews()
    panel = pd.DataFrame(
        {
            "person_id": ["accepted", "accepted", "accepted_closed", "accepted_closed",
                          "accepted_closed", "never_reviewed"],
            "index_date": ["2026-07-01", "2026-10-01", "2026-04-01", "2026-07-01", "2026-10-01",
                           "2026-10-01"],
        }
    )  # fmt: skip
    assert after_acceptance(panel, reviews).tolist() == [False, True, False, True, False, False]
    for column in ("data_opt_out", "in_care_home", "on_caseload_neighbourhood_mdt",
                   "on_caseload_end_of_life", "on_caseload_care_home_support"):  # fmt: skip
        panel[column] = 0
    settings = Settings()
    assert modelled_population(panel, settings, reviews).tolist() == [
        True, False, True, False, True, True,
    ]  # fmt: skip
    off = settings.model_copy(
        update={"training": settings.training.model_copy(
            update={"exclude_after_mdt_acceptance": False})}
    )  # fmt: skip
    assert modelled_population(panel, off, reviews).all()
