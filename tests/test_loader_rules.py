"""Every row-level loader rule: one bad row is rejected with its exact reason and counted, and the
clean rows around it still load. Each case runs on CSV, string-typed parquet and, where the bad
value can be stored natively, on parquet with contract types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from extract_builder import add_row, valid_rows, write_extract

from records import load_extract
from records.contract import TABLES

FORMATS = {
    "csv": {"fmt": "csv"},
    "parquet-strings": {"fmt": "parquet"},
    "parquet-typed": {"fmt": "parquet", "typed": True},
}


@dataclass(frozen=True)
class Case:
    """One bad row: the table, the changes to that table's first valid row, the exact reason."""

    id: str
    table: str
    changes: dict[str, str | None]
    reason: str
    typed: bool = True  # False: the bad value has no native parquet form (e.g. '31/02/2024')


# People rows get a new person_id so they are not duplicates of P001 (born 1940-03-01).
def _person(**changes: str | None) -> dict[str, str | None]:
    return {"person_id": "P100", **changes}


CASES = [
    Case("neighbourhood_formula", "people", _person(neighbourhood="=cmd"),
         "malformed neighbourhood"),
    # ---- unknown person_id
    Case("unknown_person_id_gp_event", "gp_events", {"person_id": "P999"}, "unknown person_id"),
    Case("unknown_person_id_spell", "hospital_spells", {"spell_id": "S9", "person_id": "P999"},
         "unknown person_id"),
    Case("unknown_person_id_is_case_sensitive", "caseloads", {"person_id": "p001"},
         "unknown person_id"),
    # ---- unparseable dates
    Case("unparseable_date_day_first", "gp_events", {"event_date": "31/02/2024"},
         "unparseable date in event_date", typed=False),
    Case("unparseable_date_not_a_calendar_day", "prescriptions", {"issue_date": "2024-02-30"},
         "unparseable date in issue_date", typed=False),
    Case("unparseable_date_text", "outpatient_appointments", {"appointment_date": "soon"},
         "unparseable date in appointment_date", typed=False),
    Case("unparseable_date_with_time", "community_contacts",
         {"contact_date": "2024-05-01T10:00:00"}, "unparseable date in contact_date", typed=False),
    Case("unparseable_birth_date", "people", _person(birth_date="1940-13-01"),
         "unparseable date in birth_date", typed=False),
    Case("unparseable_optional_discharge_date", "hospital_spells",
         {"spell_id": "S9", "discharge_date": "08/03/2024"},
         "unparseable date in discharge_date", typed=False),
    Case("unparseable_optional_end_date", "social_care", {"end_date": "2024-9-1"},
         "unparseable date in end_date", typed=False),
    # ---- dates out of range
    Case("date_before_1900", "gp_events", {"event_date": "1899-12-31"},
         "date before 1900 in event_date"),
    Case("birth_date_before_1900", "people", _person(birth_date="1899-12-31"),
         "date before 1900 in birth_date"),
    Case("date_after_extract_date", "ae_attendances", {"arrival_date": "2026-11-01"},
         "date after extract_date in arrival_date"),
    Case("death_after_extract_date", "people", _person(date_of_death="2026-11-01"),
         "date after extract_date in date_of_death"),
    Case("registration_end_after_extract_date", "people", _person(registration_end="2027-01-01"),
         "date after extract_date in registration_end"),
    Case("discharge_after_extract_date", "hospital_spells",
         {"spell_id": "S9", "discharge_date": "2026-11-01"},
         "date after extract_date in discharge_date"),
    Case("caseload_end_after_extract_date", "caseloads", {"end_date": "2026-12-01"},
         "date after extract_date in end_date"),
    # ---- dates out of order
    Case("discharge_before_admission", "hospital_spells",
         {"spell_id": "S9", "discharge_date": "2024-02-29"},
         "discharge_date before admission_date"),
    Case("social_care_end_before_start", "social_care", {"end_date": "2024-05-31"},
         "end_date before start_date"),
    Case("caseload_end_before_start", "caseloads", {"end_date": "2024-07-31"},
         "end_date before start_date"),
    Case("death_before_birth", "people", _person(date_of_death="1940-02-28"),
         "date_of_death before birth_date"),
    Case("registration_end_before_start", "people",
         _person(registration_start="2000-01-01", registration_end="1999-12-31"),
         "registration_end before registration_start"),
    # ---- records dated before birth / after death (P001 born 1940-03-01; P002 died 2025-01-10)
    Case("event_before_birth", "gp_events", {"event_date": "1940-02-29"}, "dated before birth"),
    Case("admission_before_birth", "hospital_spells",
         {"spell_id": "S9", "admission_date": "1939-01-01", "discharge_date": "1939-01-02"},
         "dated before birth"),
    Case("prescription_after_death", "prescriptions",
         {"person_id": "P002", "issue_date": "2025-01-11"}, "dated after death"),
    Case("admission_after_death", "hospital_spells",
         {"spell_id": "S9", "person_id": "P002", "admission_date": "2025-02-01",
          "discharge_date": ""}, "dated after death"),
    Case("discharge_after_death", "hospital_spells",
         {"spell_id": "S9", "person_id": "P002", "admission_date": "2025-01-05",
          "discharge_date": "2025-01-11"}, "dated after death"),
    Case("social_care_start_after_death", "social_care",
         {"person_id": "P002", "start_date": "2025-06-01", "end_date": ""}, "dated after death"),
    Case("caseload_after_death", "caseloads",
         {"person_id": "P002", "start_date": "2025-01-11"}, "dated after death"),
    # ---- malformed codes
    Case("snomed_too_short", "gp_events", {"snomed_code": "12345"}, "malformed snomed_code"),
    Case("snomed_with_letters", "gp_events", {"snomed_code": "3834I003"}, "malformed snomed_code"),
    Case("snomed_too_long", "gp_events", {"snomed_code": "1" * 19}, "malformed snomed_code"),
    Case("bnf_too_short", "prescriptions", {"bnf_code": "021"}, "malformed bnf_code"),
    Case("bnf_lower_case", "prescriptions", {"bnf_code": "0212000b0aaabab"},
         "malformed bnf_code"),
    Case("bnf_too_long", "prescriptions", {"bnf_code": "0212000B0AAABAB1"}, "malformed bnf_code"),
    Case("ods_practice_lower_case", "people", _person(gp_practice_code="p88001"),
         "malformed gp_practice_code"),
    Case("ods_practice_short", "people", _person(gp_practice_code="P8800"),
         "malformed gp_practice_code"),
    Case("lsoa_wrong_prefix", "people", _person(lsoa_code="W01000001"), "malformed lsoa_code"),
    Case("lsoa_short", "people", _person(lsoa_code="E0100001"), "malformed lsoa_code"),
    Case("icd10_list_comma_separated", "hospital_spells",
         {"spell_id": "S9", "diagnoses": "I50.0,J18"}, "malformed diagnoses"),
    Case("icd10_trailing_dot", "hospital_spells", {"spell_id": "S9", "diagnoses": "I50."},
         "malformed diagnoses"),
    Case("icd10_empty_entry", "hospital_spells", {"spell_id": "S9", "diagnoses": "I50;;J18"},
         "malformed diagnoses"),
    Case("icd10_no_letter", "hospital_spells", {"spell_id": "S9", "diagnoses": "150.0"},
         "malformed diagnoses"),
    Case("admission_method_unknown", "hospital_spells",
         {"spell_id": "S9", "admission_method": "99"}, "value not allowed in admission_method"),
    Case("admission_method_lower_case", "hospital_spells",
         {"spell_id": "S9", "admission_method": "2a"}, "value not allowed in admission_method"),
    Case("sex_letter", "people", _person(sex="F"), "value not allowed in sex"),
    Case("ethnicity_lower_case", "people", _person(ethnic_category="a"),
         "value not allowed in ethnic_category"),
    Case("ethnicity_retired_code", "people", _person(ethnic_category="I"),
         "value not allowed in ethnic_category"),
    Case("arrival_mode_capitalised", "ae_attendances", {"arrival_mode": "Ambulance"},
         "value not allowed in arrival_mode"),
    Case("attendance_abbreviated", "outpatient_appointments", {"attendance": "DNA"},
         "value not allowed in attendance"),
    Case("community_service_unknown", "community_contacts", {"service": "physio"},
         "value not allowed in service"),
    Case("social_care_event_unknown", "social_care", {"event_type": "review"},
         "value not allowed in event_type"),
    Case("social_care_service_unknown", "social_care", {"service_type": "home_care"},
         "value not allowed in service_type"),
    Case("mental_health_team_unknown", "mental_health_contacts", {"team_type": "CMHT"},
         "value not allowed in team_type"),
    Case("caseload_unknown", "caseloads", {"caseload": "mdt"}, "value not allowed in caseload"),
    # ---- booleans and numbers
    Case("boolean_unknown_spelling", "ae_attendances", {"admitted": "maybe"},
         "malformed admitted", typed=False),
    Case("boolean_t_is_not_accepted", "people", _person(data_opt_out="T"),
         "malformed data_opt_out", typed=False),
    Case("float_text", "gp_events", {"value": "high"}, "malformed value", typed=False),
    Case("float_not_a_number", "gp_events", {"value": "nan"}, "malformed value"),
    Case("float_infinite", "prescriptions", {"quantity": "inf"}, "malformed quantity"),
    Case("float_text_hours", "social_care", {"hours_per_week": "ten"},
         "malformed hours_per_week", typed=False),
    Case("imd_decile_not_integer", "people", _person(imd_decile="3.5"), "malformed imd_decile",
         typed=False),
    Case("imd_decile_text", "people", _person(imd_decile="three"), "malformed imd_decile",
         typed=False),
    Case("imd_decile_zero", "people", _person(imd_decile="0"), "value not allowed in imd_decile"),
    Case("imd_decile_eleven", "people", _person(imd_decile="11"),
         "value not allowed in imd_decile"),
    # ---- missing required values (one per required column: generated below), blank = missing
    Case("blank_person_id", "prescriptions", {"person_id": "   "},
         "missing required value person_id", typed=False),
    Case("missing_diagnoses_cell", "hospital_spells", {"spell_id": "S9", "diagnoses": None},
         "missing required value diagnoses"),
    # ---- duplicate ids: the later occurrence goes, the first stays
    Case("duplicate_person_id", "people", {"sex": "1"}, "duplicate person_id"),
    Case("duplicate_person_id_after_trimming", "people", {"person_id": " P001 "},
         "duplicate person_id", typed=False),
    Case("duplicate_spell_id", "hospital_spells", {"admission_date": "2024-04-01",
                                                   "discharge_date": "2024-04-02"},
         "duplicate spell_id"),
    # ---- precedence: one reason per row, the first rule that applies
    Case("missing_value_before_bad_format", "gp_events",
         {"snomed_code": "", "event_date": "1899-01-01"}, "missing required value snomed_code"),
    Case("format_before_unknown_person", "gp_events",
         {"person_id": "P999", "snomed_code": "x"}, "malformed snomed_code"),
    Case("unknown_person_before_after_death", "prescriptions",
         {"person_id": "P999", "issue_date": "2026-10-31"}, "unknown person_id"),
]  # fmt: skip

# A fresh id for the row so that only the missing value is wrong.
_FRESH_ID = {"people": {"person_id": "P100"}, "hospital_spells": {"spell_id": "S9"}}
CASES += [
    Case(
        f"missing_{table.name}_{column}",
        table.name,
        {**_FRESH_ID.get(table.name, {}), column: ""},
        f"missing required value {column}",
    )
    for table in TABLES.values()
    for column in table.required
]


def _params() -> list:
    params = []
    for case in CASES:
        for fmt in FORMATS:
            marks = []
            if fmt == "parquet-typed" and not case.typed:
                continue
            params.append(pytest.param(case, fmt, id=f"{case.id}-{fmt}", marks=marks))
    return params


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_reason_the_loader_can_give_is_covered() -> None:
    """Each column rule of the contract has at least one case (so a new rule needs a test)."""
    covered = {(c.table, c.reason) for c in CASES}
    for table in TABLES.values():
        for col in table.columns:
            if col.required:
                assert (table.name, f"missing required value {col.name}") in covered
            if col.pattern is not None and col.name != "person_id":
                assert (table.name, f"malformed {col.name}") in covered, (table.name, col.name)
            if col.allowed is not None:
                assert (table.name, f"value not allowed in {col.name}") in covered, col.name
            if col.type in ("int", "float", "bool"):
                assert (table.name, f"malformed {col.name}") in covered, (table.name, col.name)
    reasons = {c.reason for c in CASES}
    for reason in (
        "unknown person_id",
        "dated before birth",
        "dated after death",
        "duplicate person_id",
        "duplicate spell_id",
        "discharge_date before admission_date",
        "end_date before start_date",
        "date_of_death before birth_date",
    ):
        assert reason in reasons


@pytest.mark.parametrize(("case", "fmt"), _params())
def test_bad_row_is_rejected_with_its_reason_and_counted(
    tmp_path: Path, case: Case, fmt: str
) -> None:
    rows = valid_rows()
    clean = {table: len(table_rows) for table, table_rows in rows.items()}
    row_number = add_row(rows, case.table, **case.changes)
    extract = write_extract(tmp_path / "extract", rows, **FORMATS[fmt])

    loaded = load_extract(extract)

    for table, report in loaded.reports.items():
        assert report.read == report.loaded + report.rejected, table
        bad = 1 if table == case.table else 0
        assert report.read == clean[table] + bad, table
        assert report.rejected == bad, (table, report.reasons)
        assert report.reasons == ({case.reason: 1} if bad else {}), table
        (in_db,) = loaded.con.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert in_db == clean[table], table
    rejects = loaded.con.execute("SELECT table_name, row_number, reason FROM rejects").fetchall()
    assert rejects == [(case.table, row_number, case.reason)]
