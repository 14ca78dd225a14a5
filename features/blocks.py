"""The SQL blocks features are computed in: each block reads one table's rows for a person, and
its features are aggregate expressions over those rows (one GROUP BY person per block).

Placeholders, filled per index date by `features.build`:
`{index}` the index date D; `{cutoff}` the block table's cutoff, min(D, complete_to + 1 day): rows
dated on or after it are never read; `{since_N}` the cutoff moved back N months (window starts).
Dates after the cutoff on a row that is itself before it (a discharge, a service end) are read as
"not yet happened". Standard SQL only, so the same text runs on DuckDB and (transpiled) Spark.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.codelists import CHARLSON_TABLE, GP_CODES_TABLE, HFRS_TABLE, bnf_groups
from records.contract import (
    CARE_HOME_DESTINATIONS,
    ELECTIVE_ADMISSION_METHODS,
    EMERGENCY_ADMISSION_METHODS,
)


def in_list(values: tuple[str, ...] | list[str]) -> str:
    """A SQL `IN` list of string literals."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


@dataclass(frozen=True)
class Helper:
    """An intermediate per-person column a block computes for other features (not a feature)."""

    name: str
    sql: str
    fill: float | None = 0.0


@dataclass(frozen=True)
class Block:
    """Rows of one contract table for each person, before the table's cutoff."""

    name: str
    table: str  # contract table whose complete_to sets {cutoff}
    relation: str  # SELECT producing the rows (with person_id), placeholders allowed
    helpers: tuple[Helper, ...] = ()


# Charlson comorbidities are found by matching 3- and 4-character ICD-10 prefixes with two
# equality joins (a LIKE join would compare every diagnosis with every prefix).
_CHARLSON_ROWS = " UNION ALL ".join(
    f"SELECT d.person_id, c.comorbidity FROM hospital_diagnoses AS d JOIN {CHARLSON_TABLE} AS c "
    f"ON c.prefix_len = {n} AND substr(d.icd10, 1, {n}) = c.icd10_prefix "
    "WHERE d.admission_date >= {since_60} AND d.admission_date < {cutoff}"
    for n in (3, 4)
)


def bnf_group_bit(group: str) -> int:
    """The bit standing for a high-risk medicine group in the per-person group mask."""
    return 1 << list(bnf_groups()).index(group)


def _bnf_group_bits() -> str:
    """SQL over a medicine (first 9 BNF characters): the sum of the bits of its groups."""
    terms = []
    for group, prefixes in bnf_groups().items():
        if any(len(p) > 9 for p in prefixes):
            raise ValueError("BNF group prefixes must be at most 9 characters (a BNF substance)")
        cond = " OR ".join(f"m.medicine LIKE '{p}%'" for p in prefixes)
        terms.append(f"CASE WHEN {cond} THEN {bnf_group_bit(group)} ELSE 0 END")
    return "(" + " + ".join(terms) + ")"


BLOCKS: dict[str, Block] = {
    b.name: b
    for b in (
        Block(
            "spells",
            "hospital_spells",
            "SELECT s.person_id, s.admission_date, "
            "CASE WHEN s.discharge_date < {cutoff} THEN s.discharge_date END AS discharge_date, "
            "CASE WHEN s.discharge_date < {cutoff} THEN coalesce(s.discharge_destination, '') "
            "END AS discharge_destination, "
            f"CASE WHEN s.admission_method IN {in_list(EMERGENCY_ADMISSION_METHODS)} "
            "THEN 1 ELSE 0 END AS emergency, "
            f"CASE WHEN s.admission_method IN {in_list(ELECTIVE_ADMISSION_METHODS)} "
            "THEN 1 ELSE 0 END AS elective "
            "FROM hospital_spells AS s WHERE s.admission_date < {cutoff}",
            helpers=(
                # Last discharge to a care home (contract: CARE_HOME_DESTINATIONS, NHS Data
                # Dictionary Discharge Destination codes).
                Helper(
                    "last_discharge_care_home",
                    # Two discharges on the same day: the greater code decides (ties must be
                    # broken in the definition, records.dialect).
                    "CASE WHEN arg_max(discharge_destination, CASE WHEN discharge_date IS NOT "
                    "NULL THEN {{'at': discharge_date, 'v': discharge_destination}} END) IN "
                    f"{in_list(CARE_HOME_DESTINATIONS)} THEN 1 ELSE 0 END",
                ),
            ),
        ),
        Block(
            "hfrs",
            "hospital_spells",
            "SELECT c.person_id, h.points_tenths FROM (SELECT DISTINCT d.person_id, "
            "substr(d.icd10, 1, 3) AS icd10_3char FROM hospital_diagnoses AS d "
            "WHERE d.admission_date >= {since_24} AND d.admission_date < {cutoff}) AS c "
            f"JOIN {HFRS_TABLE} AS h ON h.icd10_3char = c.icd10_3char",
        ),
        Block("charlson", "hospital_spells", f"SELECT DISTINCT * FROM ({_CHARLSON_ROWS}) AS u"),
        Block(
            "ae",
            "ae_attendances",
            "SELECT a.person_id, a.arrival_date, a.arrival_mode FROM ae_attendances AS a "
            "WHERE a.arrival_date < {cutoff}",
        ),
        Block(
            "outpatients",
            "outpatient_appointments",
            "SELECT o.person_id, o.appointment_date, o.attendance "
            "FROM outpatient_appointments AS o WHERE o.appointment_date < {cutoff}",
        ),
        Block(
            "gp",
            "gp_events",
            # Coded events joined to the code lists: each code carries its eFI deficit bits,
            # long-term condition bits, frailty level and whether it is a CFS score.
            "SELECT e.person_id, e.event_date, e.value, c.efi_bits, c.ltc_bits, c.frailty_level, "
            f"c.is_cfs FROM gp_events AS e JOIN {GP_CODES_TABLE} AS c "
            "ON c.snomed_code = e.snomed_code WHERE e.event_date < {cutoff}",
            helpers=(
                Helper("efi_mask", "bit_or(efi_bits)"),
                Helper(
                    "efi_mask_12m_ago",
                    "bit_or(CASE WHEN event_date < {since_12} THEN efi_bits ELSE 0 END)",
                ),
            ),
        ),
        Block(
            "rx",
            "prescriptions",
            # One row per person and medicine issued in the last 3 months or in the 3 months a
            # year before (for the eFI 12 months ago). A medicine is a BNF
            # chemical substance: the first 9 characters of the BNF code (chapter, section,
            # paragraph, sub-paragraph, substance); shorter codes count as they are.
            f"SELECT m.*, {_bnf_group_bits()} AS group_bits FROM ("
            "SELECT p.person_id, substr(p.bnf_code, 1, 9) AS medicine, "
            "max(CASE WHEN p.issue_date >= {since_3} THEN 1 ELSE 0 END) AS in_3m, "
            "max(CASE WHEN p.issue_date < {since_12} THEN 1 ELSE 0 END) AS in_3m_12m_ago "
            "FROM prescriptions AS p WHERE p.issue_date < {cutoff} AND (p.issue_date >= {since_3} "
            "OR (p.issue_date >= {since_15} AND p.issue_date < {since_12})) "
            "GROUP BY p.person_id, substr(p.bnf_code, 1, 9)) AS m",
            helpers=(
                Helper(
                    "polypharmacy_12m_ago",
                    "CASE WHEN sum(in_3m_12m_ago) >= 5 THEN 1 ELSE 0 END",
                ),
                Helper("rx_group_mask", "bit_or(CASE WHEN in_3m = 1 THEN group_bits ELSE 0 END)"),
            ),
        ),
        Block(
            "community",
            "community_contacts",
            "SELECT c.person_id, c.contact_date, c.service FROM community_contacts AS c "
            "WHERE c.contact_date < {cutoff}",
        ),
        Block(
            "social",
            "social_care",
            "SELECT s.person_id, s.event_type, s.start_date, s.service_type, s.hours_per_week, "
            "CASE WHEN s.end_date IS NULL OR s.end_date >= {cutoff} THEN 1 ELSE 0 END AS ongoing "
            "FROM social_care AS s WHERE s.start_date < {cutoff}",
        ),
        Block(
            "mh",
            "mental_health_contacts",
            "SELECT m.person_id, m.contact_date, m.team_type FROM mental_health_contacts AS m "
            "WHERE m.contact_date < {cutoff}",
        ),
        Block(
            "caseload",
            "caseloads",
            "SELECT c.person_id, c.caseload FROM caseloads AS c WHERE c.start_date < {cutoff} "
            "AND (c.end_date IS NULL OR c.end_date >= {cutoff})",
        ),
    )
}

# Blocks that are not per-table aggregates, in evaluation order.
PEOPLE = "people"
DERIVED = ("derived", "derived2", "derived3")
