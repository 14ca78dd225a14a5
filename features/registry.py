"""Every feature, defined once: computation, window, domain, description and sentence.

The same definitions build the feature table (`features.build`), the feature dictionary
(`features.dictionary`), and the explanation text and pages (`Feature.phrase`). SQL placeholders
are described in `features.blocks`; windows end at the source table's cutoff (the index date, or
the day after the table's `complete_to` when that is earlier).

A feature's `source` is never written by hand: it is its block's contract table, "people" for the
person row, and for a derived feature the tables of the features and helpers its SQL reads. Code
values (admission methods, services, teams, caseloads, ...) come from `records.contract`, the
one vocabulary; `_code` refuses a value the contract does not allow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from features.blocks import BLOCKS, DERIVED, PEOPLE, bnf_group_bit, in_list
from features.codelists import (
    CHARLSON_HIERARCHY,
    HFRS_TENTHS_PER_POINT,
    bnf_group_descriptions,
    bnf_groups,
    charlson_weights,
    efi_bit,
    ltc_bit,
)
from features.cohort import caseload_column
from features.definition import Domain, Feature, Kind
from records.contract import (
    ARRIVAL_MODES,
    ATTENDANCE,
    CARE_HOME_DESTINATIONS,
    CASELOADS,
    COMMUNITY_SERVICES,
    ETHNIC_CODES,
    MH_TEAMS,
    SEX_CODES,
    SOCIAL_CARE_EVENTS,
    SOCIAL_CARE_SERVICES,
)

_DEFAULT_FILL: dict[Kind, float | None] = {
    "count": 0.0,
    "flag": 0.0,
    "number": None,
    "days_since": None,
    "code": None,
}


def _f(
    *,
    name: str,
    domain: Domain,
    block: str,
    sql: str,
    kind: Kind,
    description: str,
    sentence: str,
    none_sentence: str,
    window: str | None = None,
    **kw: object,
) -> Feature:
    """A feature; its `source` is its block's table ("" for derived blocks until
    `_with_derived_sources` reads it off the SQL)."""
    if block == PEOPLE:
        source = "people"
    elif block in DERIVED:
        source = ""
    else:
        source = BLOCKS[block].table
    kw.setdefault("fill", _DEFAULT_FILL[kind])
    return Feature(
        name=name,
        domain=domain,
        description=description,
        sentence=sentence,
        none_sentence=none_sentence,
        kind=kind,
        source=source,
        window=window,
        sql=sql,
        block=block,
        **kw,  # type: ignore[arg-type]
    )


def _code(vocabulary: tuple[str, ...], value: str) -> str:
    """`value` as a SQL string literal, refused unless the contract vocabulary allows it."""
    if value not in vocabulary:
        raise ValueError(f"{value!r} is not in the contract vocabulary {vocabulary}")
    return "'" + value + "'"


def _check_codes(
    codes: Iterable[str], vocabulary: tuple[str, ...], *, complete: bool = False
) -> None:
    """Refuse codes the contract vocabulary does not allow (and, if `complete`, one it allows
    that `codes` leaves out)."""
    codes = set(codes)
    unknown, missing = codes - set(vocabulary), set(vocabulary) - codes
    if unknown or (complete and missing):
        raise ValueError(f"codes {sorted(codes)} do not match the contract vocabulary {vocabulary}")


def _since(months: int) -> str:
    return "{since_" + str(months) + "}"


def count_in(cond: str, date: str, months: int | None) -> str:
    """SQL: number of rows matching `cond` in the last `months` months (all history if None)."""
    window = f" AND {date} >= {_since(months)}" if months else ""
    return f"sum(CASE WHEN {cond}{window} THEN 1 ELSE 0 END)"


def any_in(cond: str, date: str, months: int | None) -> str:
    """SQL: 1 if any row matches `cond` in the last `months` months, else 0."""
    window = f" AND {date} >= {_since(months)}" if months else ""
    return f"max(CASE WHEN {cond}{window} THEN 1 ELSE 0 END)"


def days_since(cond: str, date: str) -> str:
    """SQL: days from the last row matching `cond` to the index date (missing if none)."""
    return f"date_diff('day', max(CASE WHEN {cond} THEN {date} END), {{index}})"


def _months(m: int) -> str:
    return f"{m} months"


# ------------------------------------------------------------------ demographics and place

# NHS Data Dictionary, Ethnic Category (2001 census categories) grouped to its five headings.
ETHNICITY_GROUPS = {
    1: ("White", ("A", "B", "C")),
    2: ("Mixed or multiple", ("D", "E", "F", "G")),
    3: ("Asian or Asian British", ("H", "J", "K", "L")),
    4: ("Black or Black British", ("M", "N", "P")),
    5: ("Other ethnic group", ("R", "S")),
}
ETHNICITY_LABELS = {0: "not stated or not known"} | {k: v[0] for k, v in ETHNICITY_GROUPS.items()}
SEX_LABELS = {0: "not known", 1: "male", 2: "female", 9: "indeterminate"}
IMD_LABELS = {d: f"{d} (most deprived)" if d == 1 else f"{d}" for d in range(1, 11)}
IMD_LABELS[10] = "10 (least deprived)"
# Codes read from the contract's vocabulary: each grouped ethnic category is a contract code (the
# others, Z not stated and 99 not known, are group 0), and every sex code has a label.
_check_codes((c for _, codes in ETHNICITY_GROUPS.values() for c in codes), ETHNIC_CODES)
_check_codes((str(k) for k in SEX_LABELS), SEX_CODES, complete=True)

_ETHNICITY_SQL = (
    "CASE "
    + " ".join(
        f"WHEN p.ethnic_category IN {in_list(v[1])} THEN {k}" for k, v in ETHNICITY_GROUPS.items()
    )
    + " ELSE 0 END"
)
# Whole years of age on the index date ({index_month}, {index_day} are the index date's parts).
_AGE_SQL = (
    "EXTRACT(YEAR FROM {index}) - EXTRACT(YEAR FROM p.birth_date) - CASE WHEN "
    "EXTRACT(MONTH FROM p.birth_date) > {index_month} OR (EXTRACT(MONTH FROM p.birth_date) = "
    "{index_month} AND EXTRACT(DAY FROM p.birth_date) > {index_day}) THEN 1 ELSE 0 END"
)

DEMOGRAPHICS = (
    _f(
        name="age",
        domain="demographics",
        block="people",
        sql=_AGE_SQL,
        kind="count",
        description="Age in whole years on the index date.",
        sentence="aged {value}",
        none_sentence="age not known",
    ),
    _f(
        name="sex",
        domain="demographics",
        block="people",
        sql="CAST(p.sex AS INTEGER)",
        kind="code",
        description=(
            "NHS Person Stated Gender Code (0 not known, 1 male, 2 female, 9 indeterminate)."
        ),
        sentence="sex: {label}",
        none_sentence="sex not known",
        labels=SEX_LABELS,
        none_code=0,
    ),
    _f(
        name="ethnicity_group",
        domain="demographics",
        block="people",
        sql=_ETHNICITY_SQL,
        kind="code",
        description=(
            "Ethnic category grouped to the five NHS Data Dictionary headings; 0 not stated/known."
        ),
        sentence="ethnic group: {label}",
        none_sentence="ethnic group not known",
        labels=ETHNICITY_LABELS,
        none_code=0,
    ),
    _f(
        name="data_opt_out",
        domain="demographics",
        block="people",
        sql="CASE WHEN p.data_opt_out THEN 1 ELSE 0 END",
        kind="flag",
        description=(
            "Opted out of data use beyond direct care (left out of training; lists decide)."
        ),
        sentence="has opted out of data use beyond direct care",
        none_sentence="has not opted out",
        model_input=False,
    ),
    _f(
        name="imd_decile",
        domain="place",
        block="people",
        sql="p.imd_decile",
        kind="code",
        description="Index of Multiple Deprivation decile of home area (1 most deprived).",
        sentence="lives in an area in deprivation decile {label}",
        none_sentence="deprivation decile not known",
        labels=IMD_LABELS,
        concept="where they live",
    ),
    _f(
        name="neighbourhood_code",
        domain="place",
        block="people",
        sql="nbh.neighbourhood_code",
        kind="code",
        description=(
            "Integrated neighbourhood team, as a code (labels: features.neighbourhood_labels)."
        ),
        # Labels are the extract's neighbourhood names, not known to the model: the reason names
        # the place without its code (the page and the list name the neighbourhood).
        sentence="where they live (their neighbourhood)",
        none_sentence="neighbourhood not known",
        concept="where they live",
    ),
)

# ------------------------------------------------------------------ hospital use

_EM = "emergency = 1"
# One concept for urgent hospital care: emergency admissions (counts, days since, bed days) and A&E.
_URGENT = "emergency hospital care"


def _emergency_count(months: int) -> Feature:
    return _f(
        name=f"emergency_admissions_{months}m",
        domain="hospital use",
        block="spells",
        sql=count_in(_EM, "admission_date", months),
        kind="count",
        description=(
            f"Emergency admissions (admission method 21-2D, 28) in the last {months} months."
        ),
        sentence=f"{{value}} emergency admission{{s}} in the last {months} months",
        none_sentence=f"no emergency admissions in the last {months} months",
        window=_months(months),
        concept=_URGENT,
        brief=f"{{value}} emergency admission{{s}} in {months // 12} years" if months >= 24 else "",
    )


_BED_DAYS = (
    "sum(CASE WHEN emergency = 1 AND coalesce(discharge_date, {cutoff}) > {since_12} THEN "
    "date_diff('day', greatest(admission_date, {since_12}), coalesce(discharge_date, {cutoff})) "
    "ELSE 0 END)"
)

# Summed in integer tenths of a point (features.codelists.register), so the band's edges are exact.
_HFRS_TENTHS = "sum(points_tenths)"
HFRS_LOW_BELOW, HFRS_HIGH_ABOVE = 5, 15  # Gilbert 2018: low < 5, intermediate 5-15, high > 15
_CHARLSON_PRESENT = {
    c: f"max(CASE WHEN comorbidity = '{c}' THEN 1 ELSE 0 END)" for c in charlson_weights()
}


def _charlson_sql(weights: str = "charlson") -> str:
    """Weighted sum of comorbidities present, counting only the more severe of each pair."""
    terms = []
    milder_of = {milder: severe for severe, milder in CHARLSON_HIERARCHY}
    for comorbidity, weight in charlson_weights(weights).items():
        present = _CHARLSON_PRESENT[comorbidity]
        if comorbidity in milder_of:
            severe = _CHARLSON_PRESENT[milder_of[comorbidity]]
            present = f"(CASE WHEN {severe} = 1 THEN 0 ELSE {present} END)"
        if weight:
            terms.append(f"{weight} * {present}")
    return " + ".join(terms)


HFRS_LABELS = {
    0: f"low (under {HFRS_LOW_BELOW})",
    1: f"intermediate ({HFRS_LOW_BELOW} to {HFRS_HIGH_ABOVE})",
    2: f"high (over {HFRS_HIGH_ABOVE})",
}

HOSPITAL = (
    *(_emergency_count(m) for m in (3, 6, 12, 36)),
    _f(
        name="emergency_bed_days_12m",
        domain="hospital use",
        block="spells",
        sql=_BED_DAYS,
        kind="number",
        description=(
            "Days in hospital in the last 12 months after emergency admissions (nights in window)."
        ),
        sentence="{value} day{s} in hospital after emergency admissions in the last 12 months",
        none_sentence="no days in hospital after emergency admissions in the last 12 months",
        window="12 months",
        concept=_URGENT,
        brief="{value} day{s} in hospital after emergency admissions",
        fill=0.0,
    ),
    _f(
        name="days_since_emergency_admission",
        domain="hospital use",
        block="spells",
        sql=days_since(_EM, "admission_date"),
        kind="days_since",
        description="Days from the last emergency admission to the index date (missing if none).",
        sentence="last emergency admission {value} ago",
        none_sentence="no emergency admission on record",
        concept=_URGENT,
    ),
    _f(
        name="days_in_hospital",
        domain="hospital use",
        block="spells",
        # In hospital on D: a spell admitted before D with no discharge before D (a discharge on
        # D still counts: the person spent D in hospital). The latest such admission.
        sql="date_diff('day', max(CASE WHEN discharge_date IS NULL THEN admission_date END), "
        "{index})",
        kind="days_since",
        description=(
            "In hospital on the index date (admitted before it, not discharged before it): days "
            "since that admission (missing when not in hospital). For population segments."
        ),
        sentence="in hospital for {value}",
        none_sentence="not in hospital",
        model_input=False,
    ),
    _f(
        name="elective_admissions_12m",
        domain="hospital use",
        block="spells",
        sql=count_in("elective = 1", "admission_date", 12),
        kind="count",
        description="Elective admissions (admission method 11-13) in the last 12 months.",
        sentence="{value} planned admission{s} in the last 12 months",
        none_sentence="no planned admissions in the last 12 months",
        window="12 months",
    ),
    _f(
        name="ae_attendances_12m",
        domain="hospital use",
        block="ae",
        sql=count_in("1 = 1", "arrival_date", 12),
        kind="count",
        description="A&E attendances in the last 12 months.",
        sentence="{value} A&E attendance{s} in the last 12 months",
        none_sentence="no A&E attendances in the last 12 months",
        window="12 months",
        concept=_URGENT,
        brief="{value} A&E attendance{s} in 12 months",
    ),
    _f(
        name="ae_ambulance_arrivals_12m",
        domain="hospital use",
        block="ae",
        sql=count_in(f"arrival_mode = {_code(ARRIVAL_MODES, 'ambulance')}", "arrival_date", 12),
        kind="count",
        description="A&E attendances arriving by ambulance in the last 12 months.",
        sentence="{value} ambulance arrival{s} at A&E in the last 12 months",
        none_sentence="no ambulance arrivals at A&E in the last 12 months",
        window="12 months",
        concept=_URGENT,
    ),
    _f(
        name="days_since_ae_attendance",
        domain="hospital use",
        block="ae",
        sql=days_since("1 = 1", "arrival_date"),
        kind="days_since",
        description="Days from the last A&E attendance to the index date.",
        sentence="last A&E attendance {value} ago",
        none_sentence="no A&E attendance on record",
        concept=_URGENT,
    ),
    _f(
        name="outpatient_attendances_12m",
        domain="hospital use",
        block="outpatients",
        sql=count_in(f"attendance = {_code(ATTENDANCE, 'attended')}", "appointment_date", 12),
        kind="count",
        description="Outpatient appointments attended in the last 12 months.",
        sentence="{value} outpatient appointment{s} attended in the last 12 months",
        none_sentence="no outpatient appointments attended in the last 12 months",
        window="12 months",
        concept="outpatient appointments",
        brief="{value} attended",
    ),
    _f(
        name="outpatient_dna_12m",
        domain="hospital use",
        block="outpatients",
        sql=count_in(f"attendance = {_code(ATTENDANCE, 'did_not_attend')}", "appointment_date", 12),
        kind="count",
        description="Outpatient appointments not attended (DNA), last 12 months.",
        sentence="{value} missed outpatient appointment{s} in the last 12 months",
        none_sentence="no missed outpatient appointments in the last 12 months",
        window="12 months",
        concept="outpatient appointments",
        brief="{value} missed",
    ),
    _f(
        name="hfrs_score",
        domain="hospital use",
        block="hfrs",
        sql=f"CAST({_HFRS_TENTHS} AS DOUBLE) / {HFRS_TENTHS_PER_POINT}",
        kind="number",
        description=(
            "Hospital Frailty Risk Score (Gilbert et al. 2018): points of distinct ICD-10 codes in "
            "any diagnosis position over the last 2 years of admissions."
        ),
        sentence="Hospital Frailty Risk Score {value}",
        none_sentence="no frailty-related hospital diagnoses in 2 years",
        window="24 months",
        concept="hospital frailty risk",
        fill=0.0,
    ),
    _f(
        name="hfrs_band",
        domain="hospital use",
        block="hfrs",
        sql=(
            f"CASE WHEN {_HFRS_TENTHS} < {HFRS_LOW_BELOW * HFRS_TENTHS_PER_POINT} THEN 0 "
            f"WHEN {_HFRS_TENTHS} <= {HFRS_HIGH_ABOVE * HFRS_TENTHS_PER_POINT} THEN 1 ELSE 2 END"
        ),
        kind="code",
        description=(
            f"Hospital Frailty Risk Score band: low < {HFRS_LOW_BELOW}, intermediate "
            f"{HFRS_LOW_BELOW}-{HFRS_HIGH_ABOVE}, high > {HFRS_HIGH_ABOVE} (Gilbert 2018)."
        ),
        sentence="hospital frailty risk {label}",
        none_sentence="hospital frailty risk not known",
        window="24 months",
        concept="hospital frailty risk",
        brief="{label}",
        labels=HFRS_LABELS,
        fill=0.0,
    ),
    _f(
        name="charlson_index",
        domain="hospital use",
        block="charlson",
        sql=_charlson_sql(),
        kind="count",
        description=(
            "Charlson comorbidity index from ICD-10 diagnoses (Quan 2005 codes, Charlson 1987 "
            "weights) over the last 5 years of admissions."
        ),
        sentence="Charlson comorbidity index {value}",
        none_sentence="no Charlson comorbidities in hospital records",
        window="60 months",
        concept="long-term conditions",
    ),
)

# ------------------------------------------------------------------ primary care and frailty

# Clegg et al. 2016 deficit names, as a clinician would say them.
EFI_NAMES = {
    "activity_limitation": "activity limitation",
    "anaemia": "anaemia or haematinic deficiency",
    "arthritis": "arthritis",
    "atrial_fibrillation": "atrial fibrillation",
    "cerebrovascular_disease": "cerebrovascular disease",
    "chronic_kidney_disease": "chronic kidney disease",
    "diabetes": "diabetes",
    "dizziness": "dizziness",
    "dyspnoea": "breathlessness",
    "falls": "falls",
    "foot_problems": "foot problems",
    "fragility_fracture": "fragility fracture",
    "hearing_impairment": "hearing impairment",
    "heart_failure": "heart failure",
    "heart_valve_disease": "heart valve disease",
    "housebound": "housebound",
    "hypertension": "hypertension",
    "hypotension_syncope": "low blood pressure or fainting",
    "ischaemic_heart_disease": "ischaemic heart disease",
    "memory_cognitive_problems": "memory or cognitive problems",
    "mobility_transfer_problems": "mobility and transfer problems",
    "osteoporosis": "osteoporosis",
    "parkinsonism_tremor": "parkinsonism or tremor",
    "peptic_ulcer": "peptic ulcer",
    "peripheral_vascular_disease": "peripheral vascular disease",
    "polypharmacy": "polypharmacy (5 or more medicines)",
    "requirement_for_care": "needs help with care",
    "respiratory_disease": "respiratory disease",
    "skin_ulcer": "skin ulcer",
    "sleep_disturbance": "sleep disturbance",
    "social_vulnerability": "social vulnerability",
    "thyroid_disease": "thyroid disease",
    "urinary_incontinence": "urinary incontinence",
    "urinary_system_disease": "urinary system disease",
    "visual_impairment": "visual impairment",
    "weight_loss_anorexia": "weight loss or poor appetite",
}
EFI_DEFICITS = tuple(sorted(EFI_NAMES))  # the 36 deficits
EFI_LABELS = {0: "fit", 1: "mild frailty", 2: "moderate frailty", 3: "severe frailty"}
FRAILTY_DX_LABELS = {0: "none", 1: "mild frailty", 2: "moderate frailty", 3: "severe frailty"}


# The eFI's polypharmacy deficit (5 or more distinct medicines in the last 3 months) is the
# prescribing feature `polypharmacy_5`, read by the eFI score; the other 35 deficits are coded in
# the GP record, one `efi_<deficit>` flag each. (A separate `efi_polypharmacy` flag would be the
# same column twice, splitting its explanation credit between two identical model inputs.)
EFI_POLYPHARMACY = "polypharmacy_5"


# Deficits whose names do not read as "<name> recorded" / "no <name> recorded".
_EFI_WORDING = {
    "housebound": ("recorded as housebound", "not recorded as housebound"),
    "requirement_for_care": ("recorded as needing help with care",
                             "not recorded as needing help with care"),
}  # fmt: skip


def _efi_flag(deficit: str) -> Feature:
    name = EFI_NAMES[deficit]
    said, unsaid = _EFI_WORDING.get(deficit, (f"{name} recorded", f"no {name} recorded"))
    return _f(
        name=f"efi_{deficit}",
        domain="primary care and frailty",
        block="derived",
        sql=f"CASE WHEN (efi_mask & {efi_bit(deficit)}) <> 0 THEN 1 ELSE 0 END",
        kind="flag",
        description=f"eFI deficit (Clegg et al. 2016) ever coded before the index date: {name}.",
        sentence=f"{said} (an eFI deficit)",
        none_sentence=unsaid,
        concept=_EFI,
    )


_EFI_NOW = f"(bit_count(efi_mask) + {EFI_POLYPHARMACY})"
_EFI_THEN = "(bit_count(efi_mask_12m_ago) + polypharmacy_12m_ago)"
# One concept for the frailty measures: the eFI (its deficits, score, band and change), the
# Clinical Frailty Scale and a coded frailty diagnosis.
_EFI = "frailty"

FRAILTY = (
    *(_efi_flag(d) for d in EFI_DEFICITS if d != "polypharmacy"),
    _f(
        name="efi_deficits_12m_ago",
        domain="primary care and frailty",
        block="derived",
        sql=_EFI_THEN,
        kind="count",
        description=(
            "eFI deficits present 12 months before the index date (for the eFI change; kept so "
            "that a what-if can re-derive the change from this one definition)."
        ),
        sentence="{value} eFI deficit{s} 12 months ago",
        none_sentence="no eFI deficits 12 months ago",
        window="12 months",
        model_input=False,
        concept=_EFI,
    ),
    _f(
        name="efi_score",
        domain="primary care and frailty",
        # derived2: it reads `polypharmacy_5`, itself derived from the number of medicines.
        block="derived2",
        sql=f"{_EFI_NOW} / 36.0",
        kind="number",
        description=(
            "Electronic Frailty Index: deficits present / 36 (Clegg et al. 2016): the 35 deficits "
            f"coded in the GP record and polypharmacy, 5 or more medicines ({EFI_POLYPHARMACY})."
        ),
        sentence="electronic frailty index {value}",
        none_sentence="no eFI deficits recorded",
        concept=_EFI,
    ),
    _f(
        name="efi_band",
        domain="primary care and frailty",
        block="derived3",
        sql="CASE WHEN efi_score <= 0.12 THEN 0 WHEN efi_score <= 0.24 THEN 1 "
        "WHEN efi_score <= 0.36 THEN 2 ELSE 3 END",
        kind="code",
        description=(
            "eFI band: fit <= 0.12, mild <= 0.24, moderate <= 0.36, severe > 0.36 (Clegg 2016)."
        ),
        sentence="eFI category: {label}",
        none_sentence="eFI category not known",
        labels=EFI_LABELS,
        concept=_EFI,
        brief="{label}",
    ),
    _f(
        name="efi_change_12m",
        domain="primary care and frailty",
        block="derived2",
        sql=f"({_EFI_NOW} - efi_deficits_12m_ago) / 36.0",
        kind="number",
        description="Change in eFI score over the last 12 months.",
        sentence="change in electronic frailty index over the last 12 months: {value}",
        none_sentence="no change in electronic frailty index in the last 12 months",
        window="12 months",
        concept=_EFI,
    ),
    _f(
        name="long_term_conditions",
        domain="primary care and frailty",
        block="gp",
        sql="bit_count(bit_or(ltc_bits))",
        kind="count",
        description=(
            "Number of distinct long-term conditions ever coded (QOF-style condition list)."
        ),
        sentence="{value} long-term condition{s}",
        none_sentence="no long-term conditions recorded",
        concept="long-term conditions",
    ),
    _f(
        name="falls_12m",
        domain="primary care and frailty",
        block="gp",
        sql=f"sum(CASE WHEN (efi_bits & {efi_bit('falls')}) <> 0 AND event_date >= {{since_12}} "
        "THEN 1 ELSE 0 END)",
        kind="count",
        description="Falls coded in the GP record in the last 12 months.",
        sentence="{value} fall{s} recorded in the last 12 months",
        none_sentence="no falls recorded in the last 12 months",
        window="12 months",
        adjustable=True,
        concept="falls",
    ),
    _f(
        name="clinical_frailty_scale",
        domain="primary care and frailty",
        block="gp",
        # The latest score; two on the same day: the higher (records.dialect: arg_max ties).
        sql="arg_max(value, CASE WHEN is_cfs = 1 AND value IS NOT NULL "
        "THEN {{'at': event_date, 'v': value}} END)",
        kind="number",
        description=(
            "Latest Clinical Frailty Scale score recorded (1-9; Rockwood 2005), missing if none."
        ),
        sentence="Clinical Frailty Scale score {value}",
        none_sentence="no Clinical Frailty Scale score recorded",
        concept=_EFI,
    ),
    _f(
        name="frailty_diagnosis",
        domain="primary care and frailty",
        block="gp",
        sql="max(CASE WHEN event_date >= {since_36} THEN frailty_level ELSE 0 END)",
        kind="code",
        description="Most severe frailty diagnosis coded in the last 3 years (0 none).",
        sentence="{label} coded by the GP practice",
        none_sentence="no frailty diagnosis coded by the GP practice",
        window="36 months",
        labels=FRAILTY_DX_LABELS,
        fill=0.0,
        none_code=0,
        concept=_EFI,
    ),
)

# ------------------------------------------------------------------ prescribing


def _distinct_3m(column: str) -> str:
    return f"count(DISTINCT CASE WHEN in_3m = 1 THEN {column} END)"


# The high-risk medicine groups as a clinician says them (features/codelists/bnf_groups.csv).
BNF_GROUP_WORDS = {
    "anticoagulants": "anticoagulants (blood thinners)",
    "antidepressants": "antidepressants",
    "antiepileptics": "antiepileptic medicines",
    "antiplatelets": "antiplatelet medicines (e.g. aspirin, clopidogrel)",
    "antipsychotics": "antipsychotics",
    "dementia_drugs": "dementia medicines",
    "diuretics": "diuretics (water tablets)",
    "hypnotics_anxiolytics": "sleeping tablets or anxiety medicines",
    "insulin": "insulin",
    "nsaids": "anti-inflammatory painkillers (NSAIDs)",
    "opioids": "opioid painkillers",
    "oral_antidiabetics": "diabetes tablets",
    "oral_corticosteroids": "steroid tablets (oral corticosteroids)",
}
if set(BNF_GROUP_WORDS) != set(bnf_groups()):
    raise RuntimeError("BNF_GROUP_WORDS must word every group of features/codelists/bnf_groups.csv")
_MEDICINES = "number of medicines"
_HIGH_RISK = "high-risk medicines"


def _bnf_group(group: str) -> Feature:
    words = BNF_GROUP_WORDS[group]
    return _f(
        name=f"rx_{group}_3m",
        domain="prescribing",
        block="derived",
        sql=f"CASE WHEN (rx_group_mask & {bnf_group_bit(group)}) <> 0 THEN 1 ELSE 0 END",
        kind="flag",
        description=f"Prescribed {words} in the last 3 months ({bnf_group_descriptions()[group]}).",
        sentence=f"prescribed {words} in the last 3 months",
        none_sentence=f"no {words} prescribed in the last 3 months",
        window="3 months",
        adjustable=True,
        concept=_HIGH_RISK,
    )


PRESCRIBING = (
    _f(
        name="distinct_medicines_3m",
        domain="prescribing",
        block="rx",
        sql="sum(in_3m)",
        kind="count",
        description="Distinct medicines (BNF chemical substances) issued in the last 3 months.",
        sentence="{value} different medicine{s} in the last 3 months",
        none_sentence="no medicines issued in the last 3 months",
        window="3 months",
        adjustable=True,
        concept=_MEDICINES,
        brief="{value} medicine{s}",
    ),
    _f(
        name="bnf_sections_3m",
        domain="prescribing",
        block="rx",
        sql=_distinct_3m("substr(medicine, 1, 4)"),
        kind="count",
        description="Distinct BNF sections of medicines issued in the last 3 months.",
        sentence="medicines from {value} BNF section{s} in the last 3 months",
        none_sentence="no medicines issued in the last 3 months",
        window="3 months",
        adjustable=True,
        concept=_MEDICINES,
    ),
    _f(
        name="polypharmacy_5",
        domain="prescribing",
        block="derived",
        sql="CASE WHEN distinct_medicines_3m >= 5 THEN 1 ELSE 0 END",
        kind="flag",
        description=(
            "5 or more distinct medicines in the last 3 months (also the eFI polypharmacy deficit)."
        ),
        sentence="5 or more different medicines in the last 3 months",
        none_sentence="fewer than 5 different medicines in the last 3 months",
        window="3 months",
        concept=_MEDICINES,
    ),
    _f(
        name="polypharmacy_10",
        domain="prescribing",
        block="derived",
        sql="CASE WHEN distinct_medicines_3m >= 10 THEN 1 ELSE 0 END",
        kind="flag",
        description="10 or more distinct medicines in the last 3 months.",
        sentence="10 or more different medicines in the last 3 months",
        none_sentence="fewer than 10 different medicines in the last 3 months",
        window="3 months",
        concept=_MEDICINES,
    ),
    *(_bnf_group(g) for g in bnf_groups()),
    _f(
        name="high_risk_medicine_groups_3m",
        domain="prescribing",
        block="derived",
        sql="bit_count(rx_group_mask)",
        kind="count",
        description="Number of the high-risk medicine groups above issued in the last 3 months.",
        sentence="medicines from {value} high-risk group{s} in the last 3 months",
        none_sentence="no high-risk medicines in the last 3 months",
        window="3 months",
        concept=_HIGH_RISK,
        brief="{value} high-risk group{s} in all",
    ),
)

# ------------------------------------------------------------------ community health

# One count per named service: every contract service but "other", a mixed bag with no meaning of
# its own, which counts only in the all-services total (`community_contacts_12m`).
_COUNTED_SERVICES = tuple(s for s in COMMUNITY_SERVICES if s != "other")
COMMUNITY_SERVICE_WORDS = {
    "district_nursing": "district nursing",
    "community_matron": "community matron",
    "community_therapy": "community therapy",
    "falls": "falls service",
    "intermediate_care": "intermediate care",
    "palliative": "palliative care",
}
_check_codes(COMMUNITY_SERVICE_WORDS, _COUNTED_SERVICES, complete=True)


_COMMUNITY = "community health care"


def _community(service: str, words: str) -> Feature:
    return _f(
        name=f"{service}_contacts_12m",
        domain="community health",
        block="community",
        sql=count_in(f"service = {_code(COMMUNITY_SERVICES, service)}", "contact_date", 12),
        kind="count",
        description=f"Contacts with {words} (a community health service), last 12 months.",
        sentence=f"{{value}} {words} contact{{s}} in the last 12 months",
        none_sentence=f"no {words} contacts in the last 12 months",
        window="12 months",
        concept=_COMMUNITY,
    )


COMMUNITY = (
    *(_community(s, COMMUNITY_SERVICE_WORDS[s]) for s in _COUNTED_SERVICES),
    _f(
        name="community_contacts_12m",
        domain="community health",
        block="community",
        sql=count_in("1 = 1", "contact_date", 12),
        kind="count",
        description="All community health service contacts in the last 12 months.",
        sentence="{value} community health contact{s} in the last 12 months",
        none_sentence="no community health contacts in the last 12 months",
        window="12 months",
        concept=_COMMUNITY,
        brief="{value} community health contact{s} in all",
    ),
    _f(
        name="days_since_community_contact",
        domain="community health",
        block="community",
        sql=days_since("1 = 1", "contact_date"),
        kind="days_since",
        description="Days from the last community health contact to the index date.",
        sentence="last community health contact {value} ago",
        none_sentence="no community health contact on record",
        concept=_COMMUNITY,
    ),
)

# ------------------------------------------------------------------ social care

SERVICE_TYPE_LABELS = {
    0: "no long-term service",
    1: "home care",
    2: "direct payment",
    3: "residential care",
    4: "nursing care",
}
# The long-term services, most intensive first, and their `social_care_service_type` codes.
_SERVICE_TYPE_CODES = {
    "long_term_nursing": 4,
    "long_term_residential": 3,
    "direct_payment": 2,
    "long_term_community": 1,
}
_check_codes(_SERVICE_TYPE_CODES, SOCIAL_CARE_SERVICES)
# Long-term services are the contract's service types less the short-term ones (reablement),
# support for the carer rather than the person, and "other".
_LONG_TERM = tuple(s for s in SOCIAL_CARE_SERVICES if s in _SERVICE_TYPE_CODES)
# Care home services: the codes `in_care_home` reads.
_CARE_HOME_CODES = tuple(
    sorted(_SERVICE_TYPE_CODES[s] for s in ("long_term_residential", "long_term_nursing"))
)
_SERVICE = f"event_type = {_code(SOCIAL_CARE_EVENTS, 'service')}"
_ASSESSMENT = f"event_type = {_code(SOCIAL_CARE_EVENTS, 'assessment')}"
_CURRENT = f"{_SERVICE} AND ongoing = 1"
_HOME_CARE = f"{_CURRENT} AND service_type = {_code(SOCIAL_CARE_SERVICES, 'long_term_community')}"
_SERVICE_CODE = (
    f"max(CASE WHEN {_CURRENT} THEN CASE service_type "
    + " ".join(
        f"WHEN {_code(SOCIAL_CARE_SERVICES, s)} THEN {k}" for s, k in _SERVICE_TYPE_CODES.items()
    )
    + " ELSE 0 END ELSE 0 END)"
)

# One concept for adult social care: services, hours, assessments, requests, reablement, carers.
_SOCIAL = "social care"
if set(_SERVICE_TYPE_CODES) != set(_LONG_TERM):
    raise RuntimeError("every long-term social care service needs a service type code")

SOCIAL = (
    _f(
        name="long_term_service",
        domain="social care",
        # Any current long-term service is one of the coded types (`social_care_service_type`),
        # so the flag is derived from that code (one definition: a what-if re-derives it).
        block="derived",
        sql="CASE WHEN social_care_service_type > 0 THEN 1 ELSE 0 END",
        kind="flag",
        description="Has a current long-term adult social care service.",
        sentence="receives a long-term social care service",
        none_sentence="no long-term social care service",
        concept=_SOCIAL,
    ),
    _f(
        name="social_care_service_type",
        domain="social care",
        block="social",
        sql=_SERVICE_CODE,
        kind="code",
        description=(
            "Most intensive current long-term service: 0 none, 1 home care, 2 direct payment, "
            "3 residential, 4 nursing."
        ),
        sentence="long-term social care: {label}",
        none_sentence="no long-term social care service",
        labels=SERVICE_TYPE_LABELS,
        fill=0.0,
        adjustable=True,
        none_code=0,
        concept=_SOCIAL,
    ),
    _f(
        name="care_hours_per_week",
        domain="social care",
        block="social",
        sql=f"sum(CASE WHEN {_CURRENT} THEN coalesce(hours_per_week, 0) ELSE 0 END)",
        kind="number",
        description="Hours per week of current social care services.",
        sentence="{value} hour{s} of social care a week",
        none_sentence="no hours of social care a week",
        fill=0.0,
        adjustable=True,
        concept=_SOCIAL,
        brief="{value} hour{s} a week",
    ),
    _f(
        name="home_care_hours_per_week",
        domain="social care",
        block="social",
        sql=(
            f"CASE WHEN max(CASE WHEN {_HOME_CARE} THEN 1 ELSE 0 END) = 1 THEN "
            f"sum(CASE WHEN {_HOME_CARE} THEN coalesce(hours_per_week, 0) ELSE 0 END) END"
        ),
        kind="number",
        description=(
            "Hours per week of current home care (long-term community support); missing when "
            "there is none. For population segments."
        ),
        sentence="home care, {value} hour{s} a week",
        none_sentence="no home care",
        model_input=False,
    ),
    _f(
        name="direct_payment_current",
        domain="social care",
        block="social",
        sql=f"max(CASE WHEN {_CURRENT} AND service_type = "
        f"{_code(SOCIAL_CARE_SERVICES, 'direct_payment')} THEN 1 ELSE 0 END)",
        kind="flag",
        description="Has a current social care direct payment. For population segments.",
        sentence="has a social care direct payment",
        none_sentence="no social care direct payment",
        model_input=False,
    ),
    _f(
        name="social_care_assessments_12m",
        domain="social care",
        block="social",
        sql=count_in(_ASSESSMENT, "start_date", 12),
        kind="count",
        description="Adult social care assessments started in the last 12 months.",
        sentence="{value} social care assessment{s} in the last 12 months",
        none_sentence="no social care assessments in the last 12 months",
        window="12 months",
        concept=_SOCIAL,
    ),
    _f(
        name="social_care_requests_12m",
        domain="social care",
        block="social",
        sql=count_in(f"event_type = {_code(SOCIAL_CARE_EVENTS, 'request')}", "start_date", 12),
        kind="count",
        description="Requests for adult social care support in the last 12 months.",
        sentence="{value} request{s} for social care support in the last 12 months",
        none_sentence="no requests for social care support in the last 12 months",
        window="12 months",
        concept=_SOCIAL,
    ),
    _f(
        name="reablement_12m",
        domain="social care",
        block="social",
        sql=count_in(
            f"{_SERVICE} AND service_type = {_code(SOCIAL_CARE_SERVICES, 'short_term_reablement')}",
            "start_date",
            12,
        ),
        kind="count",
        description="Short-term reablement services started in the last 12 months.",
        sentence="{value} reablement episode{s} in the last 12 months",
        none_sentence="no reablement in the last 12 months",
        window="12 months",
        adjustable=True,
        concept=_SOCIAL,
    ),
    _f(
        name="carer_support",
        domain="social care",
        block="social",
        sql=(
            f"max(CASE WHEN {_SERVICE} AND service_type = "
            f"{_code(SOCIAL_CARE_SERVICES, 'carer_support')} AND "
            "(ongoing = 1 OR start_date >= {since_12}) THEN 1 ELSE 0 END)"
        ),
        kind="flag",
        description="Carer support service current or started in the last 12 months.",
        sentence="their carer has support from social care",
        none_sentence="no carer support from social care",
        window="12 months",
        adjustable=True,
        concept=_SOCIAL,
    ),
    _f(
        name="days_since_social_care_assessment",
        domain="social care",
        block="social",
        sql=days_since(_ASSESSMENT, "start_date"),
        kind="days_since",
        description="Days from the last social care assessment to the index date.",
        sentence="last social care assessment {value} ago",
        none_sentence="no social care assessment on record",
        concept=_SOCIAL,
    ),
    _f(
        name="in_care_home",
        domain="social care",
        block="derived",
        sql=(
            f"CASE WHEN social_care_service_type IN ({', '.join(map(str, _CARE_HOME_CODES))}) "
            "OR last_discharge_care_home = 1 THEN 1 ELSE 0 END"
        ),
        kind="flag",
        description=(
            "Lives in a care home: a current residential or nursing service, or last hospital "
            f"discharge to a care home (destination {' or '.join(CARE_HOME_DESTINATIONS)})."
        ),
        sentence="lives in a care home",
        none_sentence="not known to live in a care home",
        model_input=False,
    ),
)

# ------------------------------------------------------------------ mental health

_MENTAL = "mental health and dementia"

MENTAL_HEALTH = (
    _f(
        name="dementia",
        domain="mental health",
        block="gp",
        sql=f"CASE WHEN (bit_or(ltc_bits) & {ltc_bit('dementia')}) <> 0 THEN 1 ELSE 0 END",
        kind="flag",
        description="Dementia diagnosis ever coded in the GP record.",
        sentence="has a dementia diagnosis",
        none_sentence="no dementia diagnosis recorded",
        concept=_MENTAL,
    ),
    _f(
        name="memory_service",
        domain="mental health",
        block="mh",
        sql=any_in(f"team_type = {_code(MH_TEAMS, 'memory_service')}", "contact_date", None),
        kind="flag",
        description="Ever seen by a memory service.",
        sentence="has been seen by a memory service",
        none_sentence="not seen by a memory service",
        concept=_MENTAL,
    ),
    _f(
        name="mental_health_contacts_12m",
        domain="mental health",
        block="mh",
        sql=count_in("1 = 1", "contact_date", 12),
        kind="count",
        description="Mental health service contacts, last 12 months.",
        sentence="{value} mental health contact{s} in the last 12 months",
        none_sentence="no mental health contacts in the last 12 months",
        window="12 months",
        concept=_MENTAL,
        brief="{value} mental health contact{s} in all",
    ),
    _f(
        name="mh_crisis_contacts_12m",
        domain="mental health",
        block="mh",
        sql=count_in(f"team_type = {_code(MH_TEAMS, 'crisis')}", "contact_date", 12),
        kind="count",
        description="Mental health crisis team contacts in the last 12 months.",
        sentence="{value} mental health crisis contact{s} in the last 12 months",
        none_sentence="no mental health crisis contacts in the last 12 months",
        window="12 months",
        concept=_MENTAL,
    ),
    _f(
        name="older_adult_cmht_contacts_12m",
        domain="mental health",
        block="mh",
        sql=count_in(f"team_type = {_code(MH_TEAMS, 'older_adult_cmht')}", "contact_date", 12),
        kind="count",
        description="Older adults' community mental health team contacts, 12 months.",
        sentence="{value} older adults' mental health team contact{s} in the last 12 months",
        none_sentence="no older adults' mental health team contacts in the last 12 months",
        window="12 months",
        concept=_MENTAL,
    ),
    _f(
        name="days_since_mental_health_contact",
        domain="mental health",
        block="mh",
        sql=days_since("1 = 1", "contact_date"),
        kind="days_since",
        description="Days from the last mental health contact to the index date.",
        sentence="last mental health contact {value} ago",
        none_sentence="no mental health contact on record",
        concept=_MENTAL,
    ),
)

# ------------------------------------------------------------------ caseloads (not model inputs)

CASELOAD_NAMES = {
    "neighbourhood_mdt": "the neighbourhood MDT",
    "end_of_life": "an end-of-life",
    "community_matron": "a community matron",
    "care_home_support": "a care home support",
}
_check_codes(CASELOAD_NAMES, CASELOADS, complete=True)

# One flag per contract caseload, in the column the list rules read (`features.cohort`).
CASELOAD_FLAGS = tuple(
    _f(
        name=caseload_column(c),
        domain="caseload",
        block="caseload",
        sql=f"max(CASE WHEN caseload = {_code(CASELOADS, c)} THEN 1 ELSE 0 END)",
        kind="flag",
        description=f"Currently on {CASELOAD_NAMES[c]} caseload.",
        sentence=f"already on {CASELOAD_NAMES[c]} caseload",
        none_sentence=f"not on {CASELOAD_NAMES[c]} caseload",
        model_input=False,
    )
    for c in CASELOADS
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _with_derived_sources(features: tuple[Feature, ...]) -> tuple[Feature, ...]:
    """`features` with each derived feature's `source` filled in: the tables of the features and
    block helpers its SQL reads, in the order it first reads them."""
    tables: dict[str, tuple[str, ...]] = {
        h.name: (b.table,) for b in BLOCKS.values() for h in b.helpers
    }
    tables |= {f.name: tuple(f.source.split(", ")) for f in features if f.block not in DERIVED}
    sources: dict[str, str] = {}
    for block in DERIVED:  # in evaluation order: a later block may read an earlier one
        for f in features:
            if f.block != block:
                continue
            read = [tables[t] for t in _IDENTIFIER.findall(f.sql) if t in tables]
            if not read:
                raise RuntimeError(f"derived feature {f.name} reads no feature or helper")
            sources[f.name] = ", ".join(dict.fromkeys(t for ts in read for t in ts))
        tables |= {name: tuple(s.split(", ")) for name, s in sources.items()}
    return tuple(replace(f, source=sources[f.name]) if f.name in sources else f for f in features)


FEATURES: tuple[Feature, ...] = _with_derived_sources(
    (
        *DEMOGRAPHICS,
        *HOSPITAL,
        *FRAILTY,
        *PRESCRIBING,
        *COMMUNITY,
        *SOCIAL,
        *MENTAL_HEALTH,
        *CASELOAD_FLAGS,
    )
)
_BY_NAME = {f.name: f for f in FEATURES}
if len(_BY_NAME) != len(FEATURES):
    raise RuntimeError("duplicate feature names in features.registry")


def feature(name: str) -> Feature:
    """The feature called `name`; KeyError naming it if there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no feature called {name!r}") from None


def model_feature_names() -> list[str]:
    """Names of the model's input features, in table order."""
    return [f.name for f in FEATURES if f.model_input]
