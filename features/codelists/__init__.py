"""The clinical code lists (CSV files in this folder, sources in README.md), read once.

Features read the lists through this module: as Python data to generate SQL, and as small
tables registered in the database (`register`) to join coded records against.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from records import Extract

FOLDER = Path(__file__).parent


def _rows(name: str) -> list[dict[str, str]]:
    with (FOLDER / name).open(encoding="utf-8", newline="") as f:
        return [{k: v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


def _grouped(name: str, key: str, value: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for row in _rows(name):
        out.setdefault(row[key], []).append(row[value])
    return {k: tuple(v) for k, v in out.items()}


@cache
def efi_deficits() -> dict[str, tuple[str, ...]]:
    """eFI deficit -> SNOMED CT codes (35 coded deficits; polypharmacy comes from prescribing)."""
    return _grouped("efi_deficits.csv", "deficit", "snomed_code")


@cache
def long_term_conditions() -> dict[str, tuple[str, ...]]:
    """Long-term condition -> SNOMED CT codes."""
    return _grouped("long_term_conditions.csv", "condition", "snomed_code")


@cache
def observations() -> dict[str, tuple[str, ...]]:
    """Frailty observation -> SNOMED CT codes."""
    return _grouped("observations.csv", "observation", "snomed_code")


@cache
def bnf_groups() -> dict[str, tuple[str, ...]]:
    """High-risk medicine group -> BNF code prefixes."""
    return _grouped("bnf_groups.csv", "group", "bnf_prefix")


@cache
def bnf_group_descriptions() -> dict[str, str]:
    """High-risk medicine group -> its BNF description(s), joined."""
    out: dict[str, list[str]] = {}
    for row in _rows("bnf_groups.csv"):
        out.setdefault(row["group"], []).append(row["description"])
    return {k: "; ".join(v) for k, v in out.items()}


@cache
def hfrs_points() -> dict[str, float]:
    """Three-character ICD-10 code -> Hospital Frailty Risk Score points (Gilbert 2018)."""
    return {r["icd10_3char"]: float(r["points"]) for r in _rows("hfrs_gilbert_2018.csv")}


@dataclass(frozen=True)
class CharlsonCode:
    comorbidity: str
    icd10_prefix: str
    weight_charlson: int
    weight_quan2011: int


@cache
def charlson_codes() -> tuple[CharlsonCode, ...]:
    """The Quan 2005 ICD-10 coding of the 17 Charlson comorbidities, with both weight sets."""
    return tuple(
        CharlsonCode(
            r["comorbidity"],
            r["icd10_prefix"],
            int(r["weight_charlson"]),
            int(r["weight_quan2011"]),
        )
        for r in _rows("charlson_icd10.csv")
    )


@cache
def charlson_weights(weights: str = "charlson") -> dict[str, int]:
    """Comorbidity -> weight (`charlson`: Charlson 1987; `quan2011`: Quan 2011)."""
    attr = {"charlson": "weight_charlson", "quan2011": "weight_quan2011"}[weights]
    return {c.comorbidity: getattr(c, attr) for c in charlson_codes()}


# Where both are present only the more severe counts (Quan 2005; Charlson 1987).
CHARLSON_HIERARCHY: tuple[tuple[str, str], ...] = (
    ("diabetes_with_complication", "diabetes_without_complication"),
    ("moderate_severe_liver_disease", "mild_liver_disease"),
    ("metastatic_solid_tumour", "any_malignancy"),
)

GP_CODES_TABLE = "cf_codelist_gp"
HFRS_TABLE = "cf_codelist_hfrs"
HFRS_TENTHS_PER_POINT = 10  # its `points_tenths`: Gilbert's points have one decimal
CHARLSON_TABLE = "cf_codelist_charlson"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def gp_concepts() -> list[tuple[str, str]]:
    """(concept, snomed_code) rows: `efi:<deficit>`, `ltc:<condition>`, `obs:<observation>`."""
    rows: list[tuple[str, str]] = []
    for prefix, lists in (
        ("efi", efi_deficits()),
        ("ltc", long_term_conditions()),
        ("obs", observations()),
    ):
        rows += [(f"{prefix}:{name}", code) for name, codes in lists.items() for code in codes]
    return rows


def efi_bit(deficit: str) -> int:
    """The bit standing for a coded eFI deficit in the per-person deficit mask."""
    return 1 << list(efi_deficits()).index(deficit)


def ltc_bit(condition: str) -> int:
    """The bit standing for a long-term condition in the per-person condition mask."""
    return 1 << list(long_term_conditions()).index(condition)


# Frailty diagnosis observations and their severity level.
FRAILTY_LEVELS = {"frailty_mild": 1, "frailty_moderate": 2, "frailty_severe": 3}


def gp_code_rows() -> list[tuple[str, int, int, int, int]]:
    """One row per SNOMED CT code: (code, eFI deficit bits, condition bits, frailty level,
    is a Clinical Frailty Scale score). Bits let one aggregate (bit_or) find every deficit."""
    out: dict[str, list[int]] = {}
    for concept, code in gp_concepts():
        kind, name = concept.split(":", 1)
        row = out.setdefault(code, [0, 0, 0, 0])
        if kind == "efi":
            row[0] |= efi_bit(name)
        elif kind == "ltc":
            row[1] |= ltc_bit(name)
        elif name in FRAILTY_LEVELS:
            row[2] = max(row[2], FRAILTY_LEVELS[name])
        elif name == "clinical_frailty_scale":
            row[3] = 1
    return [(code, *row) for code, row in out.items()]


def _num(value: object) -> str:
    """A numeric literal; integers as BIGINT so bit masks keep all their bits."""
    return f"CAST({value} AS BIGINT)" if isinstance(value, int) else repr(value)


def register(extract: Extract) -> None:
    """Create the code-list tables the feature SQL joins against (temporary, per connection or
    Spark session), once per extract: every index date's query joins the same tables."""
    if {GP_CODES_TABLE, HFRS_TABLE, CHARLSON_TABLE} <= extract.made:
        return

    def create(name: str, columns: str, rows: list[tuple[object, ...]]) -> None:
        values = ", ".join(
            "(" + ", ".join(_lit(v) if isinstance(v, str) else _num(v) for v in row) + ")"
            for row in rows
        )
        extract.create_table(name, f"SELECT * FROM (VALUES {values}) AS v({columns})")

    create(GP_CODES_TABLE, "snomed_code, efi_bits, ltc_bits, frailty_level, is_cfs", gp_code_rows())
    # Points in integer tenths (Gilbert's points have one decimal): a sum of integers is exact on
    # every engine, so a score of exactly 5 or 15 falls in the same band everywhere (summed as
    # doubles, 5.0 came out 4.999999999999999 on Spark for some people).
    tenths = [(k, round(v * HFRS_TENTHS_PER_POINT)) for k, v in hfrs_points().items()]
    create(HFRS_TABLE, "icd10_3char, points_tenths", tenths)
    create(
        CHARLSON_TABLE,
        "comorbidity, icd10_prefix, prefix_len",
        [(c.comorbidity, c.icd10_prefix, len(c.icd10_prefix)) for c in charlson_codes()],
    )
