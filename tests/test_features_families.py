"""Each feature family on hand-built records, at index date D = 2025-01-01."""

from __future__ import annotations

import math

import pytest
from test_features_common import D, load, person, row_of

from features import FEATURES, build_features, neighbourhood_labels


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory):
    people = [
        person("A1", birth_date="1960-01-01", sex="1", ethnic_category="H", imd_decile="1",
               neighbourhood="West"),  # 65 on D
        person("A2", birth_date="1960-01-02"),  # 64 on D: not eligible
        person("A3", date_of_death="2024-12-31"),  # died before D
        person("A4", date_of_death="2025-01-01", ethnic_category="", data_opt_out="Y"),
        person("A5", registration_end="2024-12-31"),  # left the practice before D
        person("A6", registration_start="2025-01-01"),  # registers on D
        person("A8", registration_start="2025-01-02"),  # registers after D
        person("A7", registration_end="2025-01-01", ethnic_category="99"),
        person("H1"), person("X1"), person("S1"), person("S2"), person("M1"),
    ]  # fmt: skip
    spells = [
        {"person_id": "H1", "admission_date": "2024-10-01", "discharge_date": "2024-10-11",
         "discharge_destination": "54"},  # 3m edge: counts in 3m; 10 bed days
        {"person_id": "H1", "admission_date": "2024-09-30", "discharge_date": "2024-09-30"},
        {"person_id": "H1", "admission_date": "2023-12-25", "discharge_date": "2024-01-04"},
        {"person_id": "H1", "admission_date": "2022-01-01", "discharge_date": "2022-01-02"},
        {"person_id": "H1", "admission_date": "2024-05-01", "discharge_date": "2024-05-02",
         "admission_method": "11"},
        # Admitted 10 days before D, discharged after D: 10 bed days, destination not yet known.
        {"person_id": "X1", "admission_date": "2024-12-22", "discharge_date": "2025-01-05",
         "discharge_destination": "54"},
    ]  # fmt: skip
    rx = [
        # Same substance, two presentations: one medicine. 11 substances in all, in 8 sections.
        {"person_id": "X1", "issue_date": "2024-12-01", "bnf_code": "040702040AAAAAA"},
        {"person_id": "X1", "issue_date": "2024-12-02", "bnf_code": "040702040AAABAB"},
        *({"person_id": "X1", "issue_date": "2024-10-01", "bnf_code": f"02020{i}0A0AAAAAA"}
          for i in range(4)),
        *({"person_id": "X1", "issue_date": "2024-11-01", "bnf_code": code} for code in
          ("0208020V0AAAAAA", "0301011R0AAAAAA", "0601011A0AAAAAA", "0101010C0AAAAAA",
           "1001010J0AAAAAA", "0403010B0AAAAAA")),
        {"person_id": "X1", "issue_date": "2024-09-30", "bnf_code": "0402010A0AAAAAA"},  # > 3m
    ]  # fmt: skip
    tables = {
        "people": people,
        "hospital_spells": spells,
        "prescriptions": rx,
        "ae_attendances": [
            {"person_id": "H1", "arrival_date": "2024-10-01", "arrival_mode": "ambulance"},
            {"person_id": "H1", "arrival_date": "2024-06-01"},
            {"person_id": "H1", "arrival_date": "2023-12-31", "arrival_mode": "ambulance"},
        ],
        "outpatient_appointments": [
            {"person_id": "H1", "appointment_date": "2024-06-01"},
            {"person_id": "H1", "appointment_date": "2024-07-01", "attendance": "did_not_attend"},
            {"person_id": "H1", "appointment_date": "2024-08-01", "attendance": "cancelled"},
        ],
        "gp_events": [
            {"person_id": "X1", "event_date": "2024-03-01", "snomed_code": "161898004"},
            {"person_id": "X1", "event_date": "2024-06-01", "snomed_code": "217082002"},
            {"person_id": "X1", "event_date": "2023-06-01", "snomed_code": "161898004"},
            {
                "person_id": "X1",
                "event_date": "2024-01-01",
                "snomed_code": "763264000",
                "value": "5",
            },
            {
                "person_id": "X1",
                "event_date": "2024-07-01",
                "snomed_code": "763264000",
                "value": "6",
            },
            {"person_id": "X1", "event_date": "2024-08-01", "snomed_code": "763264000"},
            {"person_id": "X1", "event_date": "2023-01-01", "snomed_code": "925861000000102"},
            {"person_id": "X1", "event_date": "2024-02-01", "snomed_code": "925791000000100"},
            {"person_id": "X1", "event_date": "2024-02-01", "snomed_code": "52448006"},
            {"person_id": "X1", "event_date": "2024-02-01", "snomed_code": "26929004"},
            {"person_id": "X1", "event_date": "2024-02-01", "snomed_code": "38341003"},
        ],
        "community_contacts": [
            *(
                {"person_id": "S1", "contact_date": f"2024-0{m}-01", "service": "district_nursing"}
                for m in range(1, 8)
            ),
            {"person_id": "S1", "contact_date": "2024-12-31", "service": "intermediate_care"},
            {"person_id": "S1", "contact_date": "2023-12-31", "service": "falls"},
        ],
        "social_care": [
            {
                "person_id": "S1",
                "event_type": "service",
                "start_date": "2023-05-01",
                "service_type": "long_term_community",
                "hours_per_week": "7.5",
            },
            {
                "person_id": "S1",
                "event_type": "service",
                "start_date": "2024-02-01",
                "end_date": "2025-03-01",
                "service_type": "direct_payment",
                "hours_per_week": "2",
            },
            {
                "person_id": "S1",
                "event_type": "service",
                "start_date": "2022-01-01",
                "end_date": "2022-06-01",
                "service_type": "long_term_nursing",
                "hours_per_week": "40",
            },
            {
                "person_id": "S1",
                "event_type": "service",
                "start_date": "2024-03-01",
                "end_date": "2024-04-01",
                "service_type": "short_term_reablement",
            },
            {
                "person_id": "S1",
                "event_type": "service",
                "start_date": "2023-01-01",
                "end_date": "2023-02-01",
                "service_type": "carer_support",
            },
            {"person_id": "S1", "event_type": "assessment", "start_date": "2024-12-01"},
            {"person_id": "S1", "event_type": "assessment", "start_date": "2023-12-01"},
            {"person_id": "S1", "event_type": "request", "start_date": "2024-11-20"},
            {
                "person_id": "S2",
                "event_type": "service",
                "start_date": "2024-06-01",
                "service_type": "long_term_residential",
            },
            {
                "person_id": "S2",
                "event_type": "service",
                "start_date": "2024-01-01",
                "service_type": "carer_support",
            },
        ],
        "mental_health_contacts": [
            {"person_id": "M1", "contact_date": "2019-01-01", "team_type": "memory_service"},
            {"person_id": "M1", "contact_date": "2024-11-01", "team_type": "crisis"},
            {"person_id": "M1", "contact_date": "2024-12-01", "team_type": "older_adult_cmht"},
            {"person_id": "M1", "contact_date": "2025-01-01", "team_type": "crisis"},
        ],
        "caseloads": [
            {"person_id": "M1", "caseload": "end_of_life", "start_date": "2024-06-01"},
            {
                "person_id": "M1",
                "caseload": "community_matron",
                "start_date": "2023-01-01",
                "end_date": "2024-12-31",
            },
            {
                "person_id": "M1",
                "caseload": "neighbourhood_mdt",
                "start_date": "2024-01-01",
                "end_date": "2025-01-01",
            },
            {"person_id": "S2", "caseload": "care_home_support", "start_date": "2025-01-01"},
        ],
    }
    extract = load(tmp_path_factory.mktemp("families"), tables)
    return build_features(extract, D), extract


def test_eligibility_and_columns(table) -> None:
    frame, _ = table
    # A2 is 64, A3 died and A5 left before D, A8 registers after D; A4 dies on D, A6 registers
    # on D and A7 leaves on D: all three alive and registered on D.
    assert list(frame["person_id"]) == ["A1", "A4", "A6", "A7", "H1", "M1", "S1", "S2", "X1"]
    assert list(frame.columns[:4]) == ["person_id", "index_date", "neighbourhood",
                                       "gp_practice_code"]  # fmt: skip
    assert list(frame.columns[4:]) == [f.name for f in FEATURES]
    for f in FEATURES:
        assert frame[f.name].dtype.kind in "if", f.name  # numbers only, no categories
    assert row_of(frame, "A4")["data_opt_out"] == 1 and row_of(frame, "A1")["data_opt_out"] == 0


def test_demographics_and_place(table) -> None:
    frame, extract = table
    a1 = row_of(frame, "A1")
    assert (a1["age"], a1["sex"], a1["ethnicity_group"], a1["imd_decile"]) == (65, 1, 3, 1)
    assert row_of(frame, "A4")["ethnicity_group"] == 0
    assert row_of(frame, "A7")["ethnicity_group"] == 0
    assert row_of(frame, "H1")["ethnicity_group"] == 1
    labels = neighbourhood_labels(extract)
    assert labels == {0: "North", 1: "West"}
    assert a1["neighbourhood_code"] == 1 and a1["neighbourhood"] == "West"
    assert row_of(frame, "H1")["gp_practice_code"] == "P88001"


def test_hospital_use(table) -> None:
    frame, _ = table
    h1 = row_of(frame, "H1")
    assert h1["emergency_admissions_3m"] == 1  # 2024-10-01 is exactly 3 months before D
    assert h1["emergency_admissions_6m"] == 2
    assert h1["emergency_admissions_12m"] == 2  # 2023-12-25 is before the window
    assert h1["emergency_admissions_36m"] == 4
    assert h1["emergency_bed_days_12m"] == 10 + 0 + 3  # the Dec 2023 spell: 3 nights in window
    assert h1["days_since_emergency_admission"] == 92
    assert h1["elective_admissions_12m"] == 1
    assert (h1["ae_attendances_12m"], h1["ae_ambulance_arrivals_12m"]) == (2, 1)
    assert h1["days_since_ae_attendance"] == 92
    assert (h1["outpatient_attendances_12m"], h1["outpatient_dna_12m"]) == (1, 1)
    assert h1["in_care_home"] == 1  # last discharge to a care home (54)
    x1 = row_of(frame, "X1")
    assert x1["emergency_bed_days_12m"] == 10  # still in hospital on D
    assert x1["in_care_home"] == 0  # its discharge (after D) is not known yet
    assert math.isnan(row_of(frame, "A1")["days_since_emergency_admission"])


def test_primary_care_frailty_and_prescribing(table) -> None:
    frame, _ = table
    x1 = row_of(frame, "X1")
    assert x1["falls_12m"] == 2 and x1["efi_falls"] == 1
    assert x1["clinical_frailty_scale"] == 6  # latest with a value
    assert x1["frailty_diagnosis"] == 3  # most severe in 3 years
    assert x1["long_term_conditions"] == 2  # dementia (two codes) and hypertension
    assert x1["dementia"] == 1 and x1["efi_memory_cognitive_problems"] == 1
    assert x1["distinct_medicines_3m"] == 11
    assert x1["bnf_sections_3m"] == 8
    assert (x1["polypharmacy_5"], x1["polypharmacy_10"]) == (1, 1)
    assert x1["rx_opioids_3m"] == 1 and x1["rx_diuretics_3m"] == 1
    assert x1["rx_anticoagulants_3m"] == 1 and x1["rx_antipsychotics_3m"] == 0
    assert x1["high_risk_medicine_groups_3m"] == 6  # opioids, diuretics, anticoag., insulin,
    # nsaids, antidepressants
    assert math.isnan(row_of(frame, "H1")["clinical_frailty_scale"])


def test_community_social_care_mental_health_and_caseloads(table) -> None:
    frame, _ = table
    s1 = row_of(frame, "S1")
    assert s1["district_nursing_contacts_12m"] == 7
    assert s1["intermediate_care_contacts_12m"] == 1 and s1["falls_contacts_12m"] == 0
    assert s1["community_contacts_12m"] == 8 and s1["days_since_community_contact"] == 1
    assert s1["long_term_service"] == 1
    assert s1["social_care_service_type"] == 2  # direct payment (ends after D) over home care
    assert s1["care_hours_per_week"] == 9.5
    assert s1["reablement_12m"] == 1 and s1["carer_support"] == 0
    assert (s1["social_care_assessments_12m"], s1["social_care_requests_12m"]) == (1, 1)
    assert s1["days_since_social_care_assessment"] == 31
    assert s1["in_care_home"] == 0
    s2 = row_of(frame, "S2")
    assert s2["social_care_service_type"] == 3 and s2["in_care_home"] == 1
    assert s2["carer_support"] == 1
    assert s2["on_caseload_care_home_support"] == 0  # starts on D
    m1 = row_of(frame, "M1")
    assert m1["memory_service"] == 1 and m1["mental_health_contacts_12m"] == 2
    assert (m1["mh_crisis_contacts_12m"], m1["older_adult_cmht_contacts_12m"]) == (1, 1)
    assert m1["days_since_mental_health_contact"] == 31
    assert m1["on_caseload_end_of_life"] == 1 and m1["on_caseload_community_matron"] == 0
    assert m1["on_caseload_neighbourhood_mdt"] == 1  # ends on D: still on it on D
