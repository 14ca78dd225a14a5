"""Spec: population segments (features.segments, scoring.segments), with the default `[segments]`
settings at D = 2025-06-01.

Each row: a person, what their record shows (rows of the extract), their probability, and the
segment and reason in words they get. In the system comes first, then high risk and independent,
then fit and well; a person gets every reason of their segment that applies, in rule order. A
spell discharged on D, and a service or caseload ending on D, are current on D; a spell, service
or caseload starting on D is not read yet. The risk rule holds at exactly 0.30.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from test_features_common import load, person

from config.settings import ListSettings, SegmentSettings
from features import build_features
from features.codelists import efi_deficits
from features.segments import FIT_AND_WELL_WORDS, SEGMENTS, assign_segments, columns_read
from scoring.rules import build_list
from scoring.segments import segment_people

D = date(2025, 6, 1)
WELL = f"; {FIT_AND_WELL_WORDS}"


def _spell(pid: str, admitted: str, discharged: str = "", **values: str) -> dict[str, str]:
    return {"person_id": pid, "admission_date": admitted, "discharge_date": discharged, **values}


def _service(pid: str, service: str, start: str, end: str = "", hours: str = "") -> dict:
    return {"person_id": pid, "event_type": "service", "start_date": start, "end_date": end,
            "service_type": service, "hours_per_week": hours}  # fmt: skip


def _caseload(pid: str, caseload: str, start: str, end: str = "") -> dict[str, str]:
    return {"person_id": pid, "caseload": caseload, "start_date": start, "end_date": end}


def _frail(pid: str, deficits: int) -> list[dict[str, str]]:
    codes = [c[0] for _, c in sorted(efi_deficits().items())][:deficits]
    return [{"person_id": pid, "event_date": "2020-01-01", "snomed_code": c} for c in codes]


SPELLS = [
    _spell("in_hospital", "2025-05-12"),  # not discharged
    _spell("discharged_on_d", "2025-05-20", "2025-06-01"),  # spent D in hospital
    _spell("discharged_day_before", "2025-05-20", "2025-05-31"),
    _spell("admitted_on_d", "2025-06-01"),  # not read on D
    _spell("in_hospital_since_last_year", "2024-12-24"),
    _spell("in_hospital_with_home_care", "2025-05-30"),
    _spell("discharged_to_care_home", "2025-03-01", "2025-03-10", discharge_destination="54"),
]
SOCIAL = [
    _service("care_home", "long_term_nursing", "2024-01-01"),
    _service("home_care", "long_term_community", "2024-01-01", hours="14"),
    _service("home_care_ends_on_d", "long_term_community", "2024-01-01", "2025-06-01", "7.5"),
    _service("home_care_ended_day_before", "long_term_community", "2024-01-01", "2025-05-31", "7"),
    _service("home_care_no_hours", "long_term_community", "2024-01-01"),
    _service("home_care_one_hour", "long_term_community", "2024-01-01", hours="1"),
    _service("home_care_two_services", "long_term_community", "2024-01-01", hours="10"),
    _service("home_care_two_services", "long_term_community", "2024-06-01", hours="4"),
    _service("direct_payment", "direct_payment", "2024-01-01", hours="6"),
    _service("reablement_only", "short_term_reablement", "2025-05-01"),
    _service("in_hospital_with_home_care", "long_term_community", "2024-01-01", hours="14"),
    _service("home_care_and_high_risk", "long_term_community", "2024-01-01", hours="14"),
]
CASELOADS = [
    _caseload("care_home_support", "care_home_support", "2024-01-01"),
    _caseload("mdt_caseload", "neighbourhood_mdt", "2024-01-01"),
    _caseload("matron", "community_matron", "2024-01-01"),
    _caseload("end_of_life", "end_of_life", "2024-01-01", "2025-06-01"),  # ends on D: current
    _caseload("matron_ended", "community_matron", "2024-01-01", "2025-05-31"),
    _caseload("caseload_starts_on_d", "neighbourhood_mdt", "2025-06-01"),
]
GP = [*_frail("mild_frailty", 5), *_frail("moderate_frailty", 9), *_frail("severe_frailty", 13)]

# person: (probability, segment, reason)
SPEC = {
    "in_hospital":              (0.10, "in_the_system", "in hospital since 12 May"),
    "discharged_on_d":          (0.10, "in_the_system", "in hospital since 20 May"),
    "discharged_day_before":    (0.10, "fit_and_well", "risk 10%" + WELL),
    "admitted_on_d":            (0.10, "fit_and_well", "risk 10%" + WELL),
    "in_hospital_since_last_year": (0.10, "in_the_system", "in hospital since 24 December 2024"),
    # Both in the system and at home with support: in the system, for its reason only.
    "in_hospital_with_home_care": (0.60, "in_the_system", "in hospital since 30 May"),
    "care_home":                (0.20, "in_the_system", "lives in a care home"),
    "discharged_to_care_home":  (0.20, "in_the_system", "lives in a care home"),
    "care_home_support":        (0.20, "in_the_system", "on a care home support caseload"),
    "home_care":                (0.10, "high_risk_independent", "home care, 14 hours a week"),
    "home_care_ends_on_d":      (0.10, "high_risk_independent", "home care, 7.5 hours a week"),
    "home_care_ended_day_before": (0.10, "fit_and_well", "risk 10%" + WELL),
    "home_care_no_hours":       (0.10, "high_risk_independent", "home care"),
    "home_care_one_hour":       (0.10, "high_risk_independent", "home care, 1 hour a week"),
    "home_care_two_services":   (0.10, "high_risk_independent", "home care, 14 hours a week"),
    "direct_payment":           (0.10, "high_risk_independent", "social care direct payment"),
    "reablement_only":          (0.10, "fit_and_well", "risk 10%" + WELL),
    "mdt_caseload":             (0.10, "high_risk_independent",
                                 "on the neighbourhood MDT caseload"),
    "matron":                   (0.10, "high_risk_independent", "on a community matron caseload"),
    "end_of_life":              (0.10, "high_risk_independent", "on an end-of-life caseload"),
    "matron_ended":             (0.10, "fit_and_well", "risk 10%" + WELL),
    "caseload_starts_on_d":     (0.10, "fit_and_well", "risk 10%" + WELL),
    "mild_frailty":             (0.10, "fit_and_well", "risk 10%" + WELL),
    "moderate_frailty":         (0.10, "high_risk_independent", "moderate frailty on the eFI"),
    "severe_frailty":           (0.10, "high_risk_independent", "severe frailty on the eFI"),
    "risk_at_threshold":        (0.30, "high_risk_independent", "risk 30%"),
    "risk_just_below":          (0.2999, "fit_and_well", "risk 29%" + WELL),
    "very_high_risk":           (0.72, "high_risk_independent", "risk 72%"),
    "home_care_and_high_risk":  (0.45, "high_risk_independent",
                                 "home care, 14 hours a week; risk 45%"),
    "nothing":                  (0.03, "fit_and_well", "risk 3%" + WELL),
}  # fmt: skip


@pytest.fixture(scope="module")
def features_at_d(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The feature table at D for an extract of exactly the rows above."""
    folder = tmp_path_factory.mktemp("segments")
    tables = {
        "people": [person(p) for p in SPEC],
        "hospital_spells": SPELLS,
        "social_care": SOCIAL,
        "caseloads": CASELOADS,
        "gp_events": GP,
    }
    frame = build_features(load(folder, tables), D)
    order = pd.Index(frame["person_id"]).get_indexer(list(SPEC))
    return frame.iloc[order].reset_index(drop=True)


def _segments(frame: pd.DataFrame, settings: SegmentSettings | None = None) -> pd.DataFrame:
    p = np.array([SPEC[pid][0] for pid in frame["person_id"]])
    out = assign_segments(frame, p, D, settings or SegmentSettings())
    return out.set_axis(frame["person_id"])


def test_each_person_gets_the_segment_and_reason_of_the_rules(features_at_d) -> None:
    got = _segments(features_at_d)
    for pid, (_, segment, reason) in SPEC.items():
        assert (got.loc[pid, "segment"], got.loc[pid, "segment_reason"]) == (segment, reason), pid


def test_every_segment_is_reached_and_every_person_is_in_exactly_one(features_at_d) -> None:
    got = _segments(features_at_d)
    assert got["segment"].notna().all() and set(got["segment"]) == set(SEGMENTS)
    assert got["segment"].value_counts().sum() == len(SPEC)


def test_the_thresholds_are_settings(features_at_d) -> None:
    settings = SegmentSettings(
        risk_probability=0.5,
        min_efi_band="severe",
        system_caseloads=[],
        independent_caseloads=["neighbourhood_mdt"],
        independent_services=["direct_payment"],
    )
    got = _segments(features_at_d, settings)
    assert got.loc["risk_at_threshold", "segment"] == "fit_and_well"
    assert got.loc["very_high_risk", "segment_reason"] == "risk 72%"
    assert got.loc["moderate_frailty", "segment"] == "fit_and_well"
    assert got.loc["severe_frailty", "segment"] == "high_risk_independent"
    assert got.loc["care_home_support", "segment"] == "fit_and_well"
    assert got.loc["matron", "segment"] == "fit_and_well"
    assert got.loc["mdt_caseload", "segment"] == "high_risk_independent"
    assert got.loc["home_care", "segment"] == "fit_and_well"
    assert got.loc["direct_payment", "segment"] == "high_risk_independent"
    assert got.loc["home_care_and_high_risk", "segment_reason"] == "risk 45%" + WELL


def test_people_the_run_keeps_no_score_for_get_no_segment(features_at_d) -> None:
    frame = features_at_d.copy()
    frame["data_opt_out"] = (frame["person_id"] == "home_care").astype(int)
    p = np.array([SPEC[pid][0] for pid in frame["person_id"]])
    for rules, segmented in ((ListSettings(), False), (ListSettings(direct_care_use=True), True)):
        people = build_list(frame, p, np.full(len(p), "low"), rules)
        seg = segment_people(people, frame, D, SegmentSettings()).set_axis(frame["person_id"])
        got = seg.loc["home_care", "segment"]
        assert (None if pd.isna(got) else got) == ("high_risk_independent" if segmented else None)
        assert pd.isna(seg.loc["home_care", "segment_reason"]) is not segmented
        assert seg["segment"].notna().sum() == people["probability"].notna().sum()


def test_the_rules_read_only_non_model_features_and_the_list_columns() -> None:
    from features.registry import feature

    read = columns_read(SegmentSettings())
    assert {"days_in_hospital", "in_care_home", "home_care_hours_per_week"} <= set(read)
    new = ("days_in_hospital", "home_care_hours_per_week", "direct_payment_current")
    assert not any(feature(name).model_input for name in new)


def test_movement_and_rising_risk() -> None:
    people = pd.DataFrame(
        {
            "person_id": ["a", "b", "c", "d", "e"],
            "neighbourhood": "North",
            "probability": [0.35, 0.20, 0.25, 0.12, 0.05],
            "previous_probability": [0.10, 0.05, 0.24, 0.04, np.nan],
        }
    )
    features = pd.DataFrame(
        {"person_id": people["person_id"], "days_in_hospital": np.nan, "in_care_home": 0,
         "on_caseload_care_home_support": 0, "home_care_hours_per_week": np.nan,
         "direct_payment_current": 0, "on_caseload_neighbourhood_mdt": 0,
         "on_caseload_community_matron": 0, "on_caseload_end_of_life": 0, "efi_band": 0}
    )  # fmt: skip
    previous = pd.DataFrame({"person_id": ["a", "b", "c", "d"], "segment": ["fit_and_well"] * 4})
    settings = SegmentSettings(rising_risk_people=1, rising_risk_min_rise=0.02)
    seg = segment_people(people, features, D, settings, previous).set_axis(people["person_id"])
    assert seg["segment"].tolist() == ["high_risk_independent", *["fit_and_well"] * 4]
    assert seg["moved_segment"].tolist() == [True, False, False, False, False]
    assert pd.isna(seg.loc["e", "previous_segment"])  # not segmented last month: not moved
    # Within fit and well: b rose 0.15, d 0.08 (c only 0.01); one per neighbourhood.
    assert seg["rising_risk"].tolist() == [False, True, False, False, False]
