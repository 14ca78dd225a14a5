"""Spec: each feature family on a few rows, the value per person at D = 2025-01-01.

Each test is one family: the rows in, then for each feature the value every person gets. Read with
`features/blocks.py`, the window rule: a table is read up to its cutoff (here D), so a record on D
is never counted; a window of N months starts N months before the cutoff and includes that day,
so for D = 2025-01-01 "the last 12 months" is 2024-01-01 to 2024-12-31. `None` is a missing value
(a "days since" with no event, a score never recorded). People are eligible unless a row says
otherwise (born 1940, registered, alive, not opted out).
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pandas as pd
from test_features_common import load, person

from features import FEATURES, build_features, neighbourhood_labels
from features.codelists import efi_deficits
from features.cohort import caseload_column
from records.contract import CASELOADS

D = date(2025, 1, 1)

Rows = dict[str, list[dict[str, str]]]


def features_at_d(folder: Path, tables: Rows) -> pd.DataFrame:
    """The feature table at D for an extract of exactly these rows (table defaults fill in the
    rest of each row: `tests/test_features_common.py`)."""
    return build_features(load(folder, tables), D)


def assert_values(frame: pd.DataFrame, expected: dict[str, dict[str, float | None]]) -> None:
    """`expected`: feature -> person -> value (None: missing); every person in the table."""
    for name, by_person in expected.items():
        got = dict(zip(frame["person_id"], frame[name], strict=True))
        assert set(got) == set(by_person), name
        for pid, want in by_person.items():
            value = got[pid]
            if want is None:
                assert pd.isna(value), f"{name} for {pid}: {value}, expected missing"
            else:
                assert not pd.isna(value) and math.isclose(value, want, abs_tol=1e-9), (
                    f"{name} for {pid}: {value}, expected {want}"
                )


def _spell(pid: str, admitted: str, discharged: str, **values: str) -> dict[str, str]:
    return {"person_id": pid, "admission_date": admitted, "discharge_date": discharged, **values}


def test_demographics_and_place(tmp_path: Path) -> None:
    people = [
        person("turns_65_on_d", birth_date="1960-01-01", sex="1", ethnic_category="H",
               imd_decile="1", neighbourhood="West"),
        person("turns_66_day_after", birth_date="1959-01-02", sex="0", ethnic_category="M",
               imd_decile="10", neighbourhood="East"),
        person("born_leap_day", birth_date="1956-02-29", sex="9", ethnic_category="D"),
        person("not_stated", ethnic_category="Z", data_opt_out="Y"),
        person("not_known", ethnic_category="99", data_opt_out="N"),
        person("blank", ethnic_category="", data_opt_out=""),
        person("other_group", ethnic_category="R"),
    ]  # fmt: skip
    # One record, so the extract has a history before D.
    gp = [{"person_id": "blank", "event_date": "2023-01-01", "snomed_code": "38341003"}]
    extract = load(tmp_path, {"people": people, "gp_events": gp})
    frame = build_features(extract, D)
    every = {p["person_id"]: 0 for p in people}
    assert_values(
        frame,
        {
            "age": every | {"turns_65_on_d": 65, "turns_66_day_after": 65, "born_leap_day": 68,
                            "not_stated": 84, "not_known": 84, "blank": 84, "other_group": 84},
            "sex": every | {"turns_65_on_d": 1, "turns_66_day_after": 0, "born_leap_day": 9,
                            "not_stated": 2, "not_known": 2, "blank": 2, "other_group": 2},
            # White 1, Mixed 2, Asian 3, Black 4, Other 5; not stated, not known or blank 0.
            "ethnicity_group": every | {"turns_65_on_d": 3, "turns_66_day_after": 4,
                                        "born_leap_day": 2, "other_group": 5},
            "imd_decile": {p["person_id"]: 3 for p in people}
            | {"turns_65_on_d": 1, "turns_66_day_after": 10},
            # Neighbourhoods numbered in sorted order of their names: East, North, West.
            "neighbourhood_code": {p["person_id"]: 1 for p in people}
            | {"turns_65_on_d": 2, "turns_66_day_after": 0},
            "data_opt_out": every | {"not_stated": 1},
        },
    )  # fmt: skip
    assert neighbourhood_labels(extract) == {0: "East", 1: "North", 2: "West"}


def test_hospital_use(tmp_path: Path) -> None:
    spells = [
        _spell("on_d", "2025-01-01", "2025-01-01"),  # on D: not read
        _spell("edges", "2024-10-01", "2024-10-03"),  # exactly 3 months before D
        _spell("edges", "2024-09-30", "2024-09-30"),  # a day before the 3-month window
        _spell("edges", "2024-01-01", "2024-01-01"),  # exactly 12 months before D
        _spell("edges", "2023-12-31", "2024-01-05"),  # before the window, 4 nights inside it
        _spell("edges", "2022-01-01", "2022-01-02"),  # exactly 36 months before D
        _spell("edges", "2021-12-31", "2021-12-31"),  # a day before the 36-month window
        _spell("edges", "2024-06-01", "2024-06-03", admission_method="11"),  # elective
        _spell("edges", "2024-06-01", "2024-06-02", admission_method="81"),  # transfer: neither
        # Discharged after D: still in hospital on D, 10 nights so far.
        _spell("in_hospital", "2024-12-22", "2025-01-05"),
    ]
    people = [person(p) for p in ("on_d", "edges", "in_hospital", "none")]
    frame = features_at_d(tmp_path, {"people": people, "hospital_spells": spells})
    assert_values(
        frame,
        {
            "emergency_admissions_3m": {"on_d": 0, "edges": 1, "in_hospital": 1, "none": 0},
            "emergency_admissions_6m": {"on_d": 0, "edges": 2, "in_hospital": 1, "none": 0},
            "emergency_admissions_12m": {"on_d": 0, "edges": 3, "in_hospital": 1, "none": 0},
            "emergency_admissions_36m": {"on_d": 0, "edges": 5, "in_hospital": 1, "none": 0},
            "emergency_bed_days_12m": {"on_d": 0, "edges": 2 + 4, "in_hospital": 10, "none": 0},
            "days_since_emergency_admission": {"on_d": None, "edges": 92, "in_hospital": 10,
                                               "none": None},
            "elective_admissions_12m": {"on_d": 0, "edges": 1, "in_hospital": 0, "none": 0},
        },
    )  # fmt: skip


def test_hospital_frailty_and_comorbidity_scores(tmp_path: Path) -> None:
    spells = [
        # HFRS: distinct 3-character codes in the last 24 months (from 2023-01-01).
        _spell("dx", "2023-01-01", "2023-01-02", diagnoses="F00.1;W19;W19"),  # 7.1 + 3.2
        _spell("dx", "2022-12-31", "2022-12-31", diagnoses="J18"),  # before the 24 months
        # Charlson: the last 60 months (from 2020-01-01): dementia (F00) + heart failure (I50).
        _spell("dx", "2020-01-01", "2020-01-01", diagnoses="I50"),
        _spell("dx", "2019-12-31", "2019-12-31", diagnoses="I21"),  # before the 60 months
        _spell("dx", "2025-01-01", "2025-01-01", diagnoses="R29"),  # on D: not read
        _spell("high", "2024-06-01", "2024-06-02", diagnoses="F00;F05;N39;R29"),  # 17.1
    ]
    people = [person(p) for p in ("dx", "high", "none")]
    frame = features_at_d(tmp_path, {"people": people, "hospital_spells": spells})
    assert_values(
        frame,
        {
            "hfrs_score": {"dx": 7.1 + 3.2, "high": 7.1 + 3.2 + 3.2 + 3.6, "none": 0},
            "hfrs_band": {"dx": 1, "high": 2, "none": 0},  # low < 5, 5-15, > 15
            "charlson_index": {"dx": 2, "high": 1, "none": 0},
        },
    )


def test_ae_attendances(tmp_path: Path) -> None:
    ae = [
        {"person_id": "edges", "arrival_date": "2025-01-01", "arrival_mode": "ambulance"},  # D
        {"person_id": "edges", "arrival_date": "2024-12-31", "arrival_mode": "ambulance"},
        {"person_id": "edges", "arrival_date": "2024-01-01", "arrival_mode": "other"},  # 12m
        {"person_id": "edges", "arrival_date": "2023-12-31", "arrival_mode": "ambulance"},
        {"person_id": "only_on_d", "arrival_date": "2025-01-01"},
    ]
    people = [person(p) for p in ("edges", "only_on_d", "none")]
    frame = features_at_d(tmp_path, {"people": people, "ae_attendances": ae})
    assert_values(
        frame,
        {
            "ae_attendances_12m": {"edges": 2, "only_on_d": 0, "none": 0},
            "ae_ambulance_arrivals_12m": {"edges": 1, "only_on_d": 0, "none": 0},
            "days_since_ae_attendance": {"edges": 1, "only_on_d": None, "none": None},
        },
    )


def test_outpatients(tmp_path: Path) -> None:
    def appt(day: str, attendance: str) -> dict[str, str]:
        return {"person_id": "op", "appointment_date": day, "attendance": attendance}

    outpatients = [
        appt("2024-01-01", "attended"),  # exactly 12 months before D
        appt("2023-12-31", "attended"),  # before the window
        appt("2025-01-01", "attended"),  # on D: not read
        appt("2024-06-01", "did_not_attend"),
        appt("2023-12-31", "did_not_attend"),
        appt("2024-07-01", "cancelled"),  # neither attended nor missed
    ]
    people = [person("op"), person("none")]
    frame = features_at_d(tmp_path, {"people": people, "outpatient_appointments": outpatients})
    assert_values(
        frame,
        {
            "outpatient_attendances_12m": {"op": 1, "none": 0},
            "outpatient_dna_12m": {"op": 1, "none": 0},
        },
    )


def test_primary_care_and_frailty(tmp_path: Path) -> None:
    def gp(day: str, code: str, value: str = "") -> dict[str, str]:
        return {"person_id": "gp", "event_date": day, "snomed_code": code, "value": value}

    events = [
        gp("2024-01-01", "161898004"),  # fall, exactly 12 months before D
        gp("2023-12-31", "217082002"),  # fall, before the 12 months (eFI: ever)
        gp("2020-01-01", "84114007"),  # heart failure
        gp("2024-06-01", "38341003"),  # hypertension, this year
        gp("2025-01-01", "160689007"),  # housebound, on D: not read
        gp("2024-01-01", "763264000", "5"),  # Clinical Frailty Scale 5
        gp("2024-07-01", "763264000", "6"),  # the latest CFS with a value
        gp("2024-08-01", "763264000"),  # CFS without a value: ignored
        gp("2022-01-01", "925791000000100"),  # mild frailty, exactly 36 months before D
        gp("2021-12-31", "925861000000102"),  # severe frailty, before the 36 months
    ]
    # Five medicines in the last 3 months: the eFI's polypharmacy deficit (polypharmacy_5).
    rx = [
        {"person_id": "rx", "issue_date": "2024-11-01", "bnf_code": code}
        for code in ("0101010C0AAAAAA", "0202010B0AAAAAA", "0205051R0AAAAAA", "0212000B0AAAAAA",
                     "0304010I0AAAAAA")
    ]  # fmt: skip
    people = [person("gp"), person("rx"), person("none")]
    frame = features_at_d(tmp_path, {"people": people, "gp_events": events, "prescriptions": rx})
    assert_values(
        frame,
        {
            "efi_falls": {"gp": 1, "rx": 0, "none": 0},
            "efi_heart_failure": {"gp": 1, "rx": 0, "none": 0},
            "efi_hypertension": {"gp": 1, "rx": 0, "none": 0},
            "efi_housebound": {"gp": 0, "rx": 0, "none": 0},
            "polypharmacy_5": {"gp": 0, "rx": 1, "none": 0},
            # Deficits / 36: falls, heart failure, hypertension; polypharmacy.
            "efi_score": {"gp": 3 / 36, "rx": 1 / 36, "none": 0},
            # 12 months ago (before 2024-01-01): falls and heart failure; no medicines then.
            "efi_change_12m": {"gp": 1 / 36, "rx": 1 / 36, "none": 0},
            "efi_band": {"gp": 0, "rx": 0, "none": 0},
            "falls_12m": {"gp": 1, "rx": 0, "none": 0},
            "long_term_conditions": {"gp": 2, "rx": 0, "none": 0},  # heart failure, hypertension
            "clinical_frailty_scale": {"gp": 6, "rx": None, "none": None},
            "frailty_diagnosis": {"gp": 1, "rx": 0, "none": 0},  # mild, in the last 3 years
        },
    )
    assert "efi_polypharmacy" not in frame.columns  # one polypharmacy input, not two


def test_prescribing(tmp_path: Path) -> None:
    def rx(pid: str, day: str, code: str) -> dict[str, str]:
        return {"person_id": pid, "issue_date": day, "bnf_code": code}

    prescriptions = [
        rx("five", "2024-12-01", "040702040AAAAAA"),  # opioid
        rx("five", "2024-12-02", "040702040AAABAB"),  # the same substance: one medicine
        rx("five", "2024-10-01", "0202010B0AAAAAA"),  # diuretic, exactly 3 months before D
        rx("five", "2024-11-01", "0208020V0AAAAAA"),  # anticoagulant
        rx("five", "2024-11-01", "0403010B0AAAAAA"),  # antidepressant
        rx("five", "2024-11-01", "0101010C0AAAAAA"),  # antacid: no high-risk group
        rx("five", "2024-09-30", "0402010A0AAAAAA"),  # antipsychotic, before the 3 months
        rx("five", "2025-01-01", "0401010A0AAAAAA"),  # hypnotic, on D: not read
        *(rx("four", "2024-12-01", f"01010{i}0C0AAAAAA") for i in range(4)),  # one section
    ]
    people = [person("five"), person("four"), person("none")]
    frame = features_at_d(tmp_path, {"people": people, "prescriptions": prescriptions})
    assert_values(
        frame,
        {
            "distinct_medicines_3m": {"five": 5, "four": 4, "none": 0},
            "bnf_sections_3m": {"five": 5, "four": 1, "none": 0},
            "polypharmacy_5": {"five": 1, "four": 0, "none": 0},
            "polypharmacy_10": {"five": 0, "four": 0, "none": 0},
            "rx_opioids_3m": {"five": 1, "four": 0, "none": 0},
            "rx_diuretics_3m": {"five": 1, "four": 0, "none": 0},
            "rx_anticoagulants_3m": {"five": 1, "four": 0, "none": 0},
            "rx_antidepressants_3m": {"five": 1, "four": 0, "none": 0},
            "rx_antipsychotics_3m": {"five": 0, "four": 0, "none": 0},
            "rx_hypnotics_anxiolytics_3m": {"five": 0, "four": 0, "none": 0},
            "high_risk_medicine_groups_3m": {"five": 4, "four": 0, "none": 0},
        },
    )


def test_community_health(tmp_path: Path) -> None:
    def contact(day: str, service: str) -> dict[str, str]:
        return {"person_id": "c", "contact_date": day, "service": service}

    contacts = [
        contact("2024-01-01", "district_nursing"),  # exactly 12 months before D
        contact("2023-12-31", "district_nursing"),  # before the window
        contact("2024-06-01", "falls"),
        contact("2024-12-31", "other"),  # counts in the total only
        contact("2025-01-01", "palliative"),  # on D: not read
    ]
    people = [person("c"), person("none")]
    frame = features_at_d(tmp_path, {"people": people, "community_contacts": contacts})
    assert_values(
        frame,
        {
            "district_nursing_contacts_12m": {"c": 1, "none": 0},
            "falls_contacts_12m": {"c": 1, "none": 0},
            "palliative_contacts_12m": {"c": 0, "none": 0},
            "community_matron_contacts_12m": {"c": 0, "none": 0},
            "community_therapy_contacts_12m": {"c": 0, "none": 0},
            "intermediate_care_contacts_12m": {"c": 0, "none": 0},
            "community_contacts_12m": {"c": 3, "none": 0},
            "days_since_community_contact": {"c": 1, "none": None},
        },
    )
    assert "other_contacts_12m" not in frame.columns


def test_social_care(tmp_path: Path) -> None:
    def sc(pid: str, event: str, start: str, end: str = "", service: str = "",
           hours: str = "") -> dict[str, str]:  # fmt: skip
        return {"person_id": pid, "event_type": event, "start_date": start, "end_date": end,
                "service_type": service, "hours_per_week": hours}  # fmt: skip

    rows = [
        sc("home", "service", "2023-05-01", service="long_term_community", hours="7.5"),
        # Ends on D: still running on D.
        sc("home", "service", "2024-02-01", "2025-01-01", "direct_payment", "2"),
        sc("home", "service", "2022-01-01", "2022-06-01", "long_term_nursing", "40"),  # ended
        sc("home", "service", "2024-03-01", "2024-04-01", "short_term_reablement"),
        sc("home", "service", "2023-01-01", "2023-02-01", "carer_support"),  # ended, > 12m ago
        sc("home", "assessment", "2024-01-01"),  # exactly 12 months before D
        sc("home", "assessment", "2023-12-31"),  # before the window
        sc("home", "request", "2024-11-20"),
        sc("residential", "service", "2024-06-01", service="long_term_residential"),
        sc("residential", "service", "2024-01-01", "2024-02-01", "carer_support"),  # in 12m
        # Ended the day before D: no current service.
        sc("ended", "service", "2023-01-01", "2024-12-31", "long_term_community", "10"),
        sc("starts_on_d", "service", "2025-01-01", service="long_term_nursing", hours="40"),
        sc("starts_on_d", "assessment", "2025-01-01"),
    ]
    people = [person(p) for p in ("home", "residential", "ended", "starts_on_d", "none")]
    frame = features_at_d(tmp_path, {"people": people, "social_care": rows})
    zero = {p["person_id"]: 0 for p in people}
    assert_values(
        frame,
        {
            "long_term_service": zero | {"home": 1, "residential": 1},
            # Most intensive current service: 1 home care, 2 direct payment, 3 residential.
            "social_care_service_type": zero | {"home": 2, "residential": 3},
            "care_hours_per_week": zero | {"home": 7.5 + 2},
            "social_care_assessments_12m": zero | {"home": 1},
            "social_care_requests_12m": zero | {"home": 1},
            "reablement_12m": zero | {"home": 1},
            "carer_support": zero | {"residential": 1},  # current or started in 12 months
            "days_since_social_care_assessment": {p: None for p in zero} | {"home": 366},
            # Current home care (long-term community support) hours, missing when none; the
            # direct payment ending on D is current.
            "home_care_hours_per_week": {p: None for p in zero} | {"home": 7.5},
            "direct_payment_current": zero | {"home": 1},
        },
    )


def test_mental_health(tmp_path: Path) -> None:
    def mh(day: str, team: str) -> dict[str, str]:
        return {"person_id": "m", "contact_date": day, "team_type": team}

    contacts = [
        mh("2015-01-01", "memory_service"),  # ever: no window
        mh("2024-01-01", "crisis"),  # exactly 12 months before D
        mh("2023-12-31", "crisis"),  # before the window
        mh("2024-12-01", "older_adult_cmht"),
        mh("2025-01-01", "liaison"),  # on D: not read
    ]
    # Dementia comes from the GP record (Alzheimer's disease), not from mental health services.
    gp = [{"person_id": "m", "event_date": "2020-01-01", "snomed_code": "26929004"}]
    people = [person("m"), person("none")]
    frame = features_at_d(
        tmp_path, {"people": people, "mental_health_contacts": contacts, "gp_events": gp}
    )
    assert_values(
        frame,
        {
            "dementia": {"m": 1, "none": 0},
            "memory_service": {"m": 1, "none": 0},
            "mental_health_contacts_12m": {"m": 2, "none": 0},
            "mh_crisis_contacts_12m": {"m": 1, "none": 0},
            "older_adult_cmht_contacts_12m": {"m": 1, "none": 0},
            "days_since_mental_health_contact": {"m": 31, "none": None},
        },
    )


def test_caseloads(tmp_path: Path) -> None:
    def on(caseload: str, start: str, end: str = "") -> dict[str, str]:
        return {"person_id": "k", "caseload": caseload, "start_date": start, "end_date": end}

    caseloads = [
        on("end_of_life", "2024-06-01"),  # open-ended
        on("community_matron", "2023-01-01", "2024-12-31"),  # ended the day before D
        on("neighbourhood_mdt", "2024-01-01", "2025-01-01"),  # ends on D: still on it on D
        on("care_home_support", "2025-01-01"),  # starts on D: not read
    ]
    frame = features_at_d(tmp_path, {"people": [person("k"), person("none")],
                                     "caseloads": caseloads})  # fmt: skip
    on_d = {"end_of_life": 1, "community_matron": 0, "neighbourhood_mdt": 1,
            "care_home_support": 0}  # fmt: skip
    assert set(on_d) == set(CASELOADS)  # one flag per contract caseload
    assert_values(frame, {caseload_column(c): {"k": on_d[c], "none": 0} for c in CASELOADS})


def test_in_hospital_on_d(tmp_path: Path) -> None:
    # Admitted before D and not discharged before D (a discharge on D spent D in hospital):
    # days since the latest such admission; missing when not in hospital.
    spells = [
        _spell("in", "2024-12-20", ""),
        _spell("out_on_d", "2024-12-29", "2025-01-01"),
        _spell("out_before_d", "2024-12-01", "2024-12-31"),
        _spell("in_on_d", "2025-01-01", ""),  # admitted on D: not read
    ]
    people = [person(p) for p in ("in", "out_on_d", "out_before_d", "in_on_d")]
    frame = features_at_d(tmp_path, {"people": people, "hospital_spells": spells})
    assert_values(
        frame,
        {"days_in_hospital": {"in": 12, "out_on_d": 3, "out_before_d": None, "in_on_d": None}},
    )


def test_derived_features(tmp_path: Path) -> None:
    # in_care_home: a current residential or nursing service, or the last hospital discharge to
    # a care home (destination 54 or 65).
    spells = [
        _spell("went_home", "2024-06-01", "2024-06-10", discharge_destination="54"),
        _spell("went_home", "2024-09-01", "2024-09-05", discharge_destination="19"),  # last
        _spell("to_la_home", "2024-11-01", "2024-11-03", discharge_destination="65"),
        # Discharged after D: the destination is not known yet.
        _spell("in_hospital", "2024-12-22", "2025-01-05", discharge_destination="54"),
    ]
    social = [
        {"person_id": "nursing", "event_type": "service", "start_date": "2024-01-01",
         "service_type": "long_term_nursing"},
        {"person_id": "home_care", "event_type": "service", "start_date": "2024-01-01",
         "service_type": "long_term_community"},
    ]  # fmt: skip
    # efi_band from efi_score (deficits / 36): fit <= 0.12 < mild <= 0.24 < moderate <= 0.36.
    first_codes = {d: codes[0] for d, codes in sorted(efi_deficits().items())}
    deficits = {"fit_4": 4, "mild_5": 5, "mild_8": 8, "moderate_9": 9, "moderate_12": 12,
                "severe_13": 13}  # fmt: skip
    gp = [
        {"person_id": pid, "event_date": "2020-01-01", "snomed_code": code}
        for pid, n in deficits.items()
        for code in list(first_codes.values())[:n]
    ]
    ids = ["went_home", "to_la_home", "in_hospital", "nursing", "home_care", *deficits]
    frame = features_at_d(
        tmp_path,
        {"people": [person(p) for p in ids], "hospital_spells": spells, "social_care": social,
         "gp_events": gp},
    )  # fmt: skip
    zero = dict.fromkeys(ids, 0)
    assert_values(
        frame,
        {
            "in_care_home": zero | {"to_la_home": 1, "nursing": 1},
            "efi_score": zero | {pid: n / 36 for pid, n in deficits.items()},
            "efi_band": zero | {"mild_5": 1, "mild_8": 1, "moderate_9": 2, "moderate_12": 2,
                                "severe_13": 3},
        },
    )  # fmt: skip


def test_every_feature_has_a_spec_above() -> None:
    specified = set(Path(__file__).read_text(encoding="utf-8").split('"'))
    families = ("efi_", "rx_", "on_caseload_")  # named through a loop or a helper above
    missing = [
        f.name for f in FEATURES if f.name not in specified and not f.name.startswith(families)
    ]
    assert not missing, f"features with no spec: {missing}"
