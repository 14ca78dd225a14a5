"""The linked care records contract as data: tables, columns, types and code rules.

This module is the project's one reading of `docs/linked-records.md` (a copy of the shared
contract). The loader validates against it, the synthetic generator writes it, and the feature
builder reads the typed tables it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

ColumnType = Literal["string", "date", "int", "float", "bool"]


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    type: ColumnType
    required: bool = False
    # Regular expression (DuckDB `regexp_full_match` syntax) a non-empty value must match.
    pattern: str | None = None
    # Closed set of allowed values (compared after trimming, case-sensitive).
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Table:
    """One contract table: its columns, the column holding its record date, and its unique key."""

    name: str
    columns: tuple[Column, ...]
    date_column: str | None = None
    unique_key: str | None = None
    description: str = ""
    extra_date_columns: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


# Code formats, from the contract and the NHS Data Dictionary.
# Pseudonymised ids: letters, digits and . _ -, starting with a letter or digit, at most 64.
PERSON_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
# Neighbourhood names: words with spaces and common punctuation, starting with a letter or digit,
# at most 64 characters (never `=`, `+`, `-`, `@` first, so no name reads as a spreadsheet formula).
NEIGHBOURHOOD = r"[A-Za-z0-9][A-Za-z0-9 '&(),./_-]{0,63}"
SNOMED = r"[0-9]{6,18}"  # SNOMED CT concept id: 6-18 digits
BNF = r"[0-9A-Z]{4,15}"  # BNF code: chapter+section (4 chars) up to the 15-char presentation code
ODS_PRACTICE = r"[A-Z][0-9]{5}"  # GP practice ODS code, e.g. P88001
LSOA = r"E01[0-9]{6}"
ICD10 = r"[A-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?"  # I50, I50.0, I500, with or without the dot
ICD10_LIST = rf"{ICD10}(;{ICD10})*"

SEX_CODES = ("0", "1", "2", "9")  # NHS Person Stated Gender Code
ETHNIC_CODES = (*"ABCDEFGHJKLMNPRS", "Z", "99")  # NHS ethnic category 2001
ELECTIVE_ADMISSION_METHODS = ("11", "12", "13")
EMERGENCY_ADMISSION_METHODS = ("21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28")
MATERNITY_ADMISSION_METHODS = ("31", "32")
OTHER_ADMISSION_METHODS = ("81", "82", "83")
ADMISSION_METHODS = (
    *ELECTIVE_ADMISSION_METHODS,
    *EMERGENCY_ADMISSION_METHODS,
    *MATERNITY_ADMISSION_METHODS,
    *OTHER_ADMISSION_METHODS,
)
ATTENDANCE = ("attended", "did_not_attend", "cancelled")
ARRIVAL_MODES = ("ambulance", "other")
COMMUNITY_SERVICES = (
    "district_nursing",
    "community_matron",
    "community_therapy",
    "falls",
    "intermediate_care",
    "palliative",
    "other",
)
SOCIAL_CARE_EVENTS = ("request", "assessment", "service")
SOCIAL_CARE_SERVICES = (
    "long_term_community",
    "long_term_residential",
    "long_term_nursing",
    "short_term_reablement",
    "direct_payment",
    "carer_support",
    "other",
)
MH_TEAMS = ("memory_service", "older_adult_cmht", "crisis", "liaison", "other")
Caseload = Literal["neighbourhood_mdt", "end_of_life", "community_matron", "care_home_support"]
CASELOADS: tuple[Caseload, ...] = get_args(Caseload)
# Discharge destinations meaning a care home (NHS Data Dictionary): 54 non-NHS care home,
# 65 local authority residential accommodation.
CARE_HOME_DESTINATIONS = ("54", "65")

BOOL_TRUE = ("true", "1", "y", "yes")
BOOL_FALSE = ("false", "0", "n", "no")


def _c(name: str, type: ColumnType = "string", required: bool = False, **kw) -> Column:
    return Column(name, type, required, **kw)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "people",
            (
                _c("person_id", required=True, pattern=PERSON_ID),
                _c("birth_date", "date", required=True),
                _c("sex", required=True, allowed=SEX_CODES),
                _c("ethnic_category", allowed=ETHNIC_CODES),
                _c("lsoa_code", pattern=LSOA),
                _c("imd_decile", "int", required=True),
                _c("gp_practice_code", required=True, pattern=ODS_PRACTICE),
                _c("neighbourhood", required=True, pattern=NEIGHBOURHOOD),
                _c("registration_start", "date"),
                _c("registration_end", "date"),
                _c("date_of_death", "date"),
                _c("data_opt_out", "bool"),
            ),
            date_column=None,
            unique_key="person_id",
            description="One row per person.",
            extra_date_columns=("registration_start", "registration_end", "date_of_death"),
        ),
        Table(
            "gp_events",
            (
                _c("person_id", required=True),
                _c("event_date", "date", required=True),
                _c("snomed_code", required=True, pattern=SNOMED),
                _c("value", "float"),
            ),
            date_column="event_date",
            description="Coded primary care record.",
        ),
        Table(
            "prescriptions",
            (
                _c("person_id", required=True),
                _c("issue_date", "date", required=True),
                _c("bnf_code", required=True, pattern=BNF),
                _c("quantity", "float"),
            ),
            date_column="issue_date",
            description="Primary care prescribing.",
        ),
        Table(
            "hospital_spells",
            (
                _c("spell_id", required=True),
                _c("person_id", required=True),
                _c("admission_date", "date", required=True),
                _c("discharge_date", "date"),
                _c("admission_method", required=True, allowed=ADMISSION_METHODS),
                _c("diagnoses", required=True, pattern=ICD10_LIST),
                _c("discharge_destination"),
            ),
            date_column="admission_date",
            unique_key="spell_id",
            description="Admitted patient care spells (SUS APC).",
            extra_date_columns=("discharge_date",),
        ),
        Table(
            "ae_attendances",
            (
                _c("person_id", required=True),
                _c("arrival_date", "date", required=True),
                _c("arrival_mode", allowed=ARRIVAL_MODES),
                _c("admitted", "bool"),
            ),
            date_column="arrival_date",
            description="Emergency care attendances (ECDS).",
        ),
        Table(
            "outpatient_appointments",
            (
                _c("person_id", required=True),
                _c("appointment_date", "date", required=True),
                _c("attendance", required=True, allowed=ATTENDANCE),
                _c("specialty_code"),
            ),
            date_column="appointment_date",
            description="Outpatient appointments.",
        ),
        Table(
            "community_contacts",
            (
                _c("person_id", required=True),
                _c("contact_date", "date", required=True),
                _c("service", required=True, allowed=COMMUNITY_SERVICES),
            ),
            date_column="contact_date",
            description="Community health services contacts (CSDS).",
        ),
        Table(
            "social_care",
            (
                _c("person_id", required=True),
                _c("event_type", required=True, allowed=SOCIAL_CARE_EVENTS),
                _c("start_date", "date", required=True),
                _c("end_date", "date"),
                _c("service_type", allowed=SOCIAL_CARE_SERVICES),
                _c("hours_per_week", "float"),
            ),
            date_column="start_date",
            description="Adult social care client level data.",
            extra_date_columns=("end_date",),
        ),
        Table(
            "mental_health_contacts",
            (
                _c("person_id", required=True),
                _c("contact_date", "date", required=True),
                _c("team_type", required=True, allowed=MH_TEAMS),
            ),
            date_column="contact_date",
            description="Mental health services contacts (MHSDS).",
        ),
        Table(
            "caseloads",
            (
                _c("person_id", required=True),
                _c("caseload", required=True, allowed=CASELOADS),
                _c("start_date", "date", required=True),
                _c("end_date", "date"),
            ),
            date_column="start_date",
            description="People already being case-managed.",
            extra_date_columns=("end_date",),
        ),
    )
}

EVENT_TABLES: tuple[str, ...] = tuple(name for name in TABLES if name != "people")
