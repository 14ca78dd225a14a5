"""Spec: who the monthly list leaves out and why, who goes on it, and who the model is trained on
(features.cohort, scoring.rules), with the default `[lists]` settings (capacity 2 here).

Each row: a person of the eligible population, what their record shows, their probability, and
what the rules say: their exclusion (first reason only), their rank among candidates, whether
they are listed, and whether training uses them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from config.settings import ListSettings, Settings
from features.cohort import (
    EXCLUSIONS,
    modelled_population,
    population_differences,
    population_rules,
)
from records.contract import CASELOADS
from scoring.rules import build_list

SHOWS = ["data_opt_out", "in_care_home", *(f"on_caseload_{c}" for c in CASELOADS)]

# person: (what the record shows, probability, excluded, rank, listed, trained on)
SPEC = {
    "opted_out":         ("data_opt_out", 0.99, "opted_out", None, False, False),
    "mdt_caseload":      ("on_caseload_neighbourhood_mdt", 0.98, "caseload_neighbourhood_mdt",
                          None, False, False),
    "end_of_life":       ("on_caseload_end_of_life", 0.97, "caseload_end_of_life", None, False,
                          False),
    "matron_caseload":   ("on_caseload_community_matron", 0.96, None, 1, True, True),
    "care_home_support": ("on_caseload_care_home_support", 0.95, "caseload_care_home_support",
                          None, False, False),
    "care_home":         ("in_care_home", 0.94, "care_home", None, False, False),
    "opted_out_in_care_home": ("data_opt_out,in_care_home", 0.93, "opted_out", None, False,
                               False),
    "tie_a":             ("", 0.90, None, 2, True, True),   # ties rank by person_id
    "tie_b":             ("", 0.90, None, 3, False, True),  # beyond capacity
    "low":               ("", 0.10, None, 4, False, True),
}  # fmt: skip


def _features() -> pd.DataFrame:
    frame = pd.DataFrame(
        {"person_id": list(SPEC), "neighbourhood": "North", "gp_practice_code": "P88001"}
    )
    for column in SHOWS:
        frame[column] = [int(column in SPEC[p][0].split(",")) for p in SPEC]
    return frame


def _list(rules: ListSettings) -> pd.DataFrame:
    p = np.array([SPEC[k][1] for k in SPEC])
    return build_list(_features(), p, np.where(p > 0.5, "high", "low"), rules).set_index(
        "person_id"
    )


def test_each_list_rule_with_the_default_settings() -> None:
    people = _list(ListSettings(capacity=2))
    for pid, (_, _, excluded, rank, listed, _) in SPEC.items():
        row = people.loc[pid]
        assert (None if pd.isna(row["excluded"]) else row["excluded"]) == excluded, pid
        assert (None if pd.isna(row["rank"]) else int(row["rank"])) == rank, pid
        assert bool(row["listed"]) is listed, pid


def test_opted_out_people_keep_no_score_unless_the_site_lists_as_direct_care() -> None:
    assert np.isnan(_list(ListSettings()).loc["opted_out", "probability"])
    direct = _list(ListSettings(capacity=2, direct_care_use=True))
    assert direct.loc["opted_out", "listed"] and direct.loc["opted_out", "rank"] == 1


def test_every_exclusion_has_words_and_exclusions_come_in_their_order() -> None:
    assert all(EXCLUSIONS.values())
    assert next(iter(EXCLUSIONS)) == "opted_out"  # an opted-out record is not looked further at


def test_the_model_is_trained_on_the_listed_population_less_opted_out_people() -> None:
    settings = Settings()
    trained = modelled_population(_features(), settings)
    assert trained.tolist() == [SPEC[p][5] for p in SPEC]
    assert population_differences(settings) == [
        "none: it is the population the lists are drawn from"
    ]
    assert "not living in a care home" in population_rules(settings)


@pytest.mark.parametrize("direct_care_use", [False, True])
def test_opted_out_people_are_never_trained_on(direct_care_use: bool) -> None:
    settings = Settings(lists=ListSettings(direct_care_use=direct_care_use))
    trained = modelled_population(_features(), settings)
    assert not trained[_features()["data_opt_out"] == 1].any()
    named = " ".join(population_differences(settings))
    assert ("never used for training" in named) is direct_care_use
    assert "not opted out of data use beyond direct care" in population_rules(settings)


def test_a_site_may_leave_a_caseload_out_of_training_only_and_the_card_says_so() -> None:
    settings = Settings(training={"also_exclude_caseloads": ["community_matron"]})
    trained = modelled_population(_features(), settings)
    assert not trained[_features()["person_id"] == "matron_caseload"].item()
    assert _list(settings.lists).loc["matron_caseload", "listed"]
    named = population_differences(settings)
    assert any("community matron" in r and "not trained on" in r for r in named)
    assert "not on a community matron caseload" in population_rules(settings)
