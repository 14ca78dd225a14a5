"""Spec: who is eligible on an index date, and why not (features.cohort).

Each case is one person's row in `people` and what the rules say of them on D = 2025-03-01:
eligible (None) or the key of the first rule they fail. The same cases run through the feature
query, the outcome query and the not-eligible table, which must agree.
"""

from __future__ import annotations

from datetime import date

import pytest
from test_features_common import load, person

from config.settings import OutcomeSettings
from features import build_features, build_outcome
from features.cohort import INELIGIBLE, ineligible_people

D = date(2025, 3, 1)

# person_id: (row values, expected reason or None when eligible)
CASES: dict[str, tuple[dict[str, str], str | None]] = {
    "birthday_on_D": ({"birth_date": "1960-03-01"}, None),  # 65 on D
    "birthday_day_after": ({"birth_date": "1960-03-02"}, "under_65"),
    "leap_day_born": ({"birth_date": "1960-02-29"}, None),  # 65 by 1 March 2025
    "died_on_D": ({"date_of_death": "2025-03-01"}, None),  # alive on D
    "died_day_before": ({"date_of_death": "2025-02-28"}, "died"),
    "registration_ends_on_D": ({"registration_end": "2025-03-01"}, None),
    "registration_ended_day_before": ({"registration_end": "2025-02-28"}, "not_registered"),
    "registration_starts_on_D": ({"registration_start": "2025-03-01"}, None),
    "registration_starts_day_after": ({"registration_start": "2025-03-02"}, "not_registered"),
    "no_registration_dates": ({"registration_start": "", "registration_end": ""}, None),
    "died_and_young": ({"birth_date": "1970-01-01", "date_of_death": "2024-01-01"}, "died"),
    "left_and_young": ({"birth_date": "1970-01-01", "registration_end": "2020-01-01"},
                       "not_registered"),
    "opted_out": ({"data_opt_out": "Y"}, None),  # eligible; the lists leave them out
}  # fmt: skip


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory):
    people = [person(pid, **values) for pid, (values, _) in CASES.items()]
    # One record so the extract has a history before D.
    gp = [{"person_id": "birthday_on_D", "event_date": "2023-01-01", "snomed_code": "38341003"}]
    return load(tmp_path_factory.mktemp("cohort"), {"people": people, "gp_events": gp})


def test_each_rule_and_its_edges(extract) -> None:
    eligible = set(build_features(extract, D)["person_id"])
    ineligible = ineligible_people(extract, D).set_index("person_id")["reason"].to_dict()
    for pid, (_, expected) in CASES.items():
        if expected is None:
            assert pid in eligible and pid not in ineligible, pid
        else:
            assert pid not in eligible and ineligible.get(pid) == expected, pid


def test_eligible_and_not_eligible_partition_the_extract(extract) -> None:
    eligible = set(build_features(extract, D)["person_id"])
    ineligible = set(ineligible_people(extract, D)["person_id"])
    assert eligible.isdisjoint(ineligible)
    assert eligible | ineligible == set(CASES)


def test_the_outcome_counts_the_same_people(tmp_path_factory) -> None:
    people = [person(pid, **values) for pid, (values, _) in CASES.items()]
    gp = [{"person_id": "birthday_on_D", "event_date": "2023-01-01", "snomed_code": "38341003"}]
    early = load(
        tmp_path_factory.mktemp("cohort_outcome"),
        {"people": people, "gp_events": gp},
        {"extract_date": "2026-10-31"},
    )
    outcome = build_outcome(early, D, OutcomeSettings())
    assert set(outcome["person_id"]) == set(build_features(early, D)["person_id"])


def test_age_on_a_birthday_is_the_new_age(extract) -> None:
    frame = build_features(extract, D).set_index("person_id")
    assert frame.loc["birthday_on_D", "age"] == 65
    assert frame.loc["leap_day_born", "age"] == 65


def test_every_reason_has_words() -> None:
    assert set(INELIGIBLE) == {"died", "not_registered", "under_65"}
    assert all(INELIGIBLE.values())
