"""Every feature, defined once: computation, window, source, domain, description and sentence.

The same definitions build the feature table (`features.build`), the feature dictionary
(`features.dictionary`), and the explanation text and pages (`Feature.phrase`). SQL placeholders
are described in `features.blocks`; windows end at the source table's cutoff (the index date, or
the day after the table's `complete_to` when that is earlier).
"""

from __future__ import annotations

from features.blocks import bnf_group_bit, in_list
from features.codelists import (
    CHARLSON_HIERARCHY,
    bnf_group_descriptions,
    bnf_groups,
    charlson_weights,
    efi_bit,
    ltc_bit,
)
from features.definition import Feature, Kind

_DEFAULT_FILL: dict[Kind, float | None] = {
    "count": 0.0,
    "flag": 0.0,
    "number": None,
    "days_since": None,
    "code": None,
}


def _f(
    name: str,
    domain: str,
    block: str,
    sql: str,
    kind: Kind,
    source: str,
    description: str,
    sentence: str,
    none_sentence: str,
    window: str | None = None,
    **kw: object,
) -> Feature:
    kw.setdefault("fill", _DEFAULT_FILL[kind])
    return Feature(
        name=name,
        domain=domain,  # type: ignore[arg-type]
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
        "age",
        "demographics",
        "people",
        _AGE_SQL,
        "count",
        "people",
        "Age in whole years on the index date.",
        "aged {value}",
        "age not known",
    ),
    _f(
        "sex",
        "demographics",
        "people",
        "CAST(p.sex AS INTEGER)",
        "code",
        "people",
        "NHS Person Stated Gender Code (0 not known, 1 male, 2 female, 9 indeterminate).",
        "sex: {label}",
        "sex not known",
        labels=SEX_LABELS,
    ),
    _f(
        "ethnicity_group",
        "demographics",
        "people",
        _ETHNICITY_SQL,
        "code",
        "people",
        "Ethnic category grouped to the five NHS Data Dictionary headings; 0 not stated/known.",
        "ethnic group: {label}",
        "ethnic group not known",
        labels=ETHNICITY_LABELS,
    ),
    _f(
        "data_opt_out",
        "demographics",
        "people",
        "CASE WHEN p.data_opt_out THEN 1 ELSE 0 END",
        "flag",
        "people",
        "Opted out of data use beyond direct care (left out of training; lists decide).",
        "has opted out of data use beyond direct care",
        "has not opted out",
        model_input=False,
    ),
    _f(
        "imd_decile",
        "place",
        "people",
        "p.imd_decile",
        "code",
        "people",
        "Index of Multiple Deprivation decile of home area (1 most deprived).",
        "lives in an area in deprivation decile {label}",
        "deprivation decile not known",
        labels=IMD_LABELS,
    ),
    _f(
        "neighbourhood_code",
        "place",
        "people",
        "nbh.neighbourhood_code",
        "code",
        "people",
        "Integrated neighbourhood team, as a code (labels: features.neighbourhood_labels).",
        "served by neighbourhood team {label}",
        "neighbourhood not known",
    ),
)

# ------------------------------------------------------------------ hospital use

_EM = "emergency = 1"


def _emergency_count(months: int) -> Feature:
    return _f(
        f"emergency_admissions_{months}m",
        "hospital use",
        "spells",
        count_in(_EM, "admission_date", months),
        "count",
        "hospital_spells",
        f"Emergency admissions (admission method 21-2D, 28) in the last {months} months.",
        f"{{value}} emergency admission{{s}} in the last {months} months",
        f"no emergency admissions in the last {months} months",
        _months(months),
    )


_BED_DAYS = (
    "sum(CASE WHEN emergency = 1 AND coalesce(discharge_date, {cutoff}) > {since_12} THEN "
    "date_diff('day', greatest(admission_date, {since_12}), coalesce(discharge_date, {cutoff})) "
    "ELSE 0 END)"
)

_HFRS_POINTS = "sum(points)"
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


HFRS_LABELS = {0: "low (under 5)", 1: "intermediate (5 to 15)", 2: "high (over 15)"}

HOSPITAL = (
    *(_emergency_count(m) for m in (3, 6, 12, 36)),
    _f(
        "emergency_bed_days_12m",
        "hospital use",
        "spells",
        _BED_DAYS,
        "number",
        "hospital_spells",
        "Days in hospital in the last 12 months after emergency admissions (nights in window).",
        "{value} day{s} in hospital after emergency admissions in the last 12 months",
        "no days in hospital after emergency admissions in the last 12 months",
        "12 months",
        fill=0.0,
    ),
    _f(
        "days_since_emergency_admission",
        "hospital use",
        "spells",
        days_since(_EM, "admission_date"),
        "days_since",
        "hospital_spells",
        "Days from the last emergency admission to the index date (missing if none).",
        "last emergency admission {value} days ago",
        "no emergency admission on record",
    ),
    _f(
        "elective_admissions_12m",
        "hospital use",
        "spells",
        count_in("elective = 1", "admission_date", 12),
        "count",
        "hospital_spells",
        "Elective admissions (admission method 11-13) in the last 12 months.",
        "{value} planned admission{s} in the last 12 months",
        "no planned admissions in the last 12 months",
        "12 months",
    ),
    _f(
        "ae_attendances_12m",
        "hospital use",
        "ae",
        count_in("1 = 1", "arrival_date", 12),
        "count",
        "ae_attendances",
        "A&E attendances in the last 12 months.",
        "{value} A&E attendance{s} in the last 12 months",
        "no A&E attendances in the last 12 months",
        "12 months",
    ),
    _f(
        "ae_ambulance_arrivals_12m",
        "hospital use",
        "ae",
        count_in("arrival_mode = 'ambulance'", "arrival_date", 12),
        "count",
        "ae_attendances",
        "A&E attendances arriving by ambulance in the last 12 months.",
        "{value} ambulance arrival{s} at A&E in the last 12 months",
        "no ambulance arrivals at A&E in the last 12 months",
        "12 months",
    ),
    _f(
        "days_since_ae_attendance",
        "hospital use",
        "ae",
        days_since("1 = 1", "arrival_date"),
        "days_since",
        "ae_attendances",
        "Days from the last A&E attendance to the index date.",
        "last A&E attendance {value} days ago",
        "no A&E attendance on record",
    ),
    _f(
        "outpatient_attendances_12m",
        "hospital use",
        "outpatients",
        count_in("attendance = 'attended'", "appointment_date", 12),
        "count",
        "outpatient_appointments",
        "Outpatient appointments attended in the last 12 months.",
        "{value} outpatient appointment{s} attended in the last 12 months",
        "no outpatient appointments attended in the last 12 months",
        "12 months",
    ),
    _f(
        "outpatient_dna_12m",
        "hospital use",
        "outpatients",
        count_in("attendance = 'did_not_attend'", "appointment_date", 12),
        "count",
        "outpatient_appointments",
        "Outpatient appointments not attended (DNA), last 12 months.",
        "{value} missed outpatient appointment{s} in the last 12 months",
        "no missed outpatient appointments in the last 12 months",
        "12 months",
    ),
    _f(
        "hfrs_score",
        "hospital use",
        "hfrs",
        _HFRS_POINTS,
        "number",
        "hospital_spells",
        "Hospital Frailty Risk Score (Gilbert et al. 2018): points of distinct ICD-10 codes in "
        "any diagnosis position over the last 2 years of admissions.",
        "Hospital Frailty Risk Score {value}",
        "no frailty-related hospital diagnoses in 2 years",
        "24 months",
        fill=0.0,
    ),
    _f(
        "hfrs_band",
        "hospital use",
        "hfrs",
        f"CASE WHEN {_HFRS_POINTS} < 5 THEN 0 WHEN {_HFRS_POINTS} <= 15 THEN 1 ELSE 2 END",
        "code",
        "hospital_spells",
        "Hospital Frailty Risk Score band: low < 5, intermediate 5-15, high > 15 (Gilbert 2018).",
        "hospital frailty risk {label}",
        "hospital frailty risk not known",
        "24 months",
        labels=HFRS_LABELS,
        fill=0.0,
    ),
    _f(
        "charlson_index",
        "hospital use",
        "charlson",
        _charlson_sql(),
        "count",
        "hospital_spells",
        "Charlson comorbidity index from ICD-10 diagnoses (Quan 2005 codes, Charlson 1987 "
        "weights) over the last 5 years of admissions.",
        "Charlson comorbidity index {value}",
        "no Charlson comorbidities in hospital records",
        "60 months",
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
_POLYPHARMACY_3M = "CASE WHEN sum(in_3m) >= 5 THEN 1 ELSE 0 END"


def _efi_flag(deficit: str) -> Feature:
    name = EFI_NAMES[deficit]
    if deficit == "polypharmacy":
        return _f(
            "efi_polypharmacy",
            "primary care and frailty",
            "rx",
            _POLYPHARMACY_3M,
            "flag",
            "prescriptions",
            "eFI deficit: 5 or more distinct medicines in the last 3 months (Clegg et al. 2016).",
            "eFI deficit: polypharmacy (5 or more medicines)",
            "fewer than 5 medicines",
            "3 months",
        )
    return _f(
        f"efi_{deficit}",
        "primary care and frailty",
        "derived",
        f"CASE WHEN (efi_mask & {efi_bit(deficit)}) <> 0 THEN 1 ELSE 0 END",
        "flag",
        "gp_events",
        f"eFI deficit (Clegg et al. 2016) ever coded before the index date: {name}.",
        f"eFI deficit: {name}",
        f"no {name} recorded",
    )


_EFI_NOW = "(bit_count(efi_mask) + efi_polypharmacy)"
_EFI_THEN = "(bit_count(efi_mask_12m_ago) + polypharmacy_12m_ago)"

FRAILTY = (
    *(_efi_flag(d) for d in EFI_DEFICITS),
    _f(
        "efi_score",
        "primary care and frailty",
        "derived",
        f"{_EFI_NOW} / 36.0",
        "number",
        "gp_events, prescriptions",
        "Electronic Frailty Index: deficits present / 36 (Clegg et al. 2016).",
        "electronic frailty index {value}",
        "no eFI deficits recorded",
    ),
    _f(
        "efi_band",
        "primary care and frailty",
        "derived2",
        "CASE WHEN efi_score <= 0.12 THEN 0 WHEN efi_score <= 0.24 THEN 1 "
        "WHEN efi_score <= 0.36 THEN 2 ELSE 3 END",
        "code",
        "gp_events, prescriptions",
        "eFI band: fit <= 0.12, mild <= 0.24, moderate <= 0.36, severe > 0.36 (Clegg 2016).",
        "eFI category: {label}",
        "eFI category not known",
        labels=EFI_LABELS,
    ),
    _f(
        "efi_change_12m",
        "primary care and frailty",
        "derived",
        f"({_EFI_NOW} - {_EFI_THEN}) / 36.0",
        "number",
        "gp_events, prescriptions",
        "Change in eFI score over the last 12 months.",
        "frailty index changed by {value} in the last 12 months",
        "no change in frailty index in the last 12 months",
        "12 months",
    ),
    _f(
        "long_term_conditions",
        "primary care and frailty",
        "gp",
        "bit_count(bit_or(ltc_bits))",
        "count",
        "gp_events",
        "Number of distinct long-term conditions ever coded (QOF-style condition list).",
        "{value} long-term condition{s}",
        "no long-term conditions recorded",
    ),
    _f(
        "falls_12m",
        "primary care and frailty",
        "gp",
        f"sum(CASE WHEN (efi_bits & {efi_bit('falls')}) <> 0 AND event_date >= {{since_12}} "
        "THEN 1 ELSE 0 END)",
        "count",
        "gp_events",
        "Falls coded in the GP record in the last 12 months.",
        "{value} fall{s} recorded in the last 12 months",
        "no falls recorded in the last 12 months",
        "12 months",
        adjustable=True,
    ),
    _f(
        "clinical_frailty_scale",
        "primary care and frailty",
        "gp",
        "arg_max(value, CASE WHEN is_cfs = 1 AND value IS NOT NULL THEN event_date END)",
        "number",
        "gp_events",
        "Latest Clinical Frailty Scale score recorded (1-9; Rockwood 2005), missing if none.",
        "Clinical Frailty Scale score {value}",
        "no Clinical Frailty Scale score recorded",
    ),
    _f(
        "frailty_diagnosis",
        "primary care and frailty",
        "gp",
        "max(CASE WHEN event_date >= {since_36} THEN frailty_level ELSE 0 END)",
        "code",
        "gp_events",
        "Most severe frailty diagnosis coded in the last 3 years (0 none).",
        "{label} coded by the GP practice",
        "no frailty diagnosis coded",
        "36 months",
        labels=FRAILTY_DX_LABELS,
        fill=0.0,
    ),
)

# ------------------------------------------------------------------ prescribing


def _distinct_3m(column: str) -> str:
    return f"count(DISTINCT CASE WHEN in_3m = 1 THEN {column} END)"


def _bnf_group(group: str) -> Feature:
    words = group.replace("_", " ")
    return _f(
        f"rx_{group}_3m",
        "prescribing",
        "derived",
        f"CASE WHEN (rx_group_mask & {bnf_group_bit(group)}) <> 0 THEN 1 ELSE 0 END",
        "flag",
        "prescriptions",
        f"Prescribed {words} in the last 3 months ({bnf_group_descriptions()[group]}).",
        f"prescribed {words} in the last 3 months",
        f"no {words} prescribed in the last 3 months",
        "3 months",
        adjustable=True,
    )


PRESCRIBING = (
    _f(
        "distinct_medicines_3m",
        "prescribing",
        "rx",
        "sum(in_3m)",
        "count",
        "prescriptions",
        "Distinct medicines (BNF chemical substances) issued in the last 3 months.",
        "{value} different medicine{s} in the last 3 months",
        "no medicines issued in the last 3 months",
        "3 months",
        adjustable=True,
    ),
    _f(
        "bnf_sections_3m",
        "prescribing",
        "rx",
        _distinct_3m("substr(medicine, 1, 4)"),
        "count",
        "prescriptions",
        "Distinct BNF sections of medicines issued in the last 3 months.",
        "medicines from {value} BNF section{s} in the last 3 months",
        "no medicines issued in the last 3 months",
        "3 months",
        adjustable=True,
    ),
    _f(
        "polypharmacy_5",
        "prescribing",
        "rx",
        _POLYPHARMACY_3M,
        "flag",
        "prescriptions",
        "5 or more distinct medicines in the last 3 months.",
        "5 or more different medicines in the last 3 months",
        "fewer than 5 different medicines in the last 3 months",
        "3 months",
        adjustable=True,
    ),
    _f(
        "polypharmacy_10",
        "prescribing",
        "rx",
        "CASE WHEN sum(in_3m) >= 10 THEN 1 ELSE 0 END",
        "flag",
        "prescriptions",
        "10 or more distinct medicines in the last 3 months.",
        "10 or more different medicines in the last 3 months",
        "fewer than 10 different medicines in the last 3 months",
        "3 months",
        adjustable=True,
    ),
    *(_bnf_group(g) for g in bnf_groups()),
    _f(
        "high_risk_medicine_groups_3m",
        "prescribing",
        "derived",
        "bit_count(rx_group_mask)",
        "count",
        "prescriptions",
        "Number of the high-risk medicine groups above issued in the last 3 months.",
        "medicines from {value} high-risk group{s} in the last 3 months",
        "no high-risk medicines in the last 3 months",
        "3 months",
        adjustable=True,
    ),
)

# ------------------------------------------------------------------ community health

COMMUNITY_SERVICES = {
    "district_nursing": "district nursing",
    "community_matron": "community matron",
    "community_therapy": "community therapy",
    "falls": "falls service",
    "intermediate_care": "intermediate care",
    "palliative": "palliative care",
}


def _community(service: str, words: str) -> Feature:
    return _f(
        f"{service}_contacts_12m",
        "community health",
        "community",
        count_in(f"service = '{service}'", "contact_date", 12),
        "count",
        "community_contacts",
        f"Community {words} contacts in the last 12 months.",
        f"{{value}} {words} contact{{s}} in the last 12 months",
        f"no {words} contacts in the last 12 months",
        "12 months",
    )


COMMUNITY = (
    *(_community(s, w) for s, w in COMMUNITY_SERVICES.items()),
    _f(
        "community_contacts_12m",
        "community health",
        "community",
        count_in("1 = 1", "contact_date", 12),
        "count",
        "community_contacts",
        "All community health service contacts in the last 12 months.",
        "{value} community health contact{s} in the last 12 months",
        "no community health contacts in the last 12 months",
        "12 months",
    ),
    _f(
        "days_since_community_contact",
        "community health",
        "community",
        days_since("1 = 1", "contact_date"),
        "days_since",
        "community_contacts",
        "Days from the last community health contact to the index date.",
        "last community health contact {value} days ago",
        "no community health contact on record",
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
_CURRENT = "event_type = 'service' AND ongoing = 1"
_SERVICE_CODE = (
    f"max(CASE WHEN {_CURRENT} THEN CASE service_type WHEN 'long_term_nursing' THEN 4 "
    "WHEN 'long_term_residential' THEN 3 WHEN 'direct_payment' THEN 2 "
    "WHEN 'long_term_community' THEN 1 ELSE 0 END ELSE 0 END)"
)
_LONG_TERM = ("long_term_community", "long_term_residential", "long_term_nursing", "direct_payment")

SOCIAL = (
    _f(
        "long_term_service",
        "social care",
        "social",
        f"max(CASE WHEN {_CURRENT} AND service_type IN {in_list(_LONG_TERM)} THEN 1 ELSE 0 END)",
        "flag",
        "social_care",
        "Has a current long-term adult social care service.",
        "receives a long-term social care service",
        "no long-term social care service",
        adjustable=True,
    ),
    _f(
        "social_care_service_type",
        "social care",
        "social",
        _SERVICE_CODE,
        "code",
        "social_care",
        "Most intensive current long-term service: 0 none, 1 home care, 2 direct payment, "
        "3 residential, 4 nursing.",
        "long-term social care: {label}",
        "no long-term social care service",
        labels=SERVICE_TYPE_LABELS,
        fill=0.0,
        adjustable=True,
    ),
    _f(
        "care_hours_per_week",
        "social care",
        "social",
        f"sum(CASE WHEN {_CURRENT} THEN coalesce(hours_per_week, 0) ELSE 0 END)",
        "number",
        "social_care",
        "Hours per week of current social care services.",
        "{value} hour{s} of social care a week",
        "no hours of social care a week",
        fill=0.0,
        adjustable=True,
    ),
    _f(
        "social_care_assessments_12m",
        "social care",
        "social",
        count_in("event_type = 'assessment'", "start_date", 12),
        "count",
        "social_care",
        "Adult social care assessments started in the last 12 months.",
        "{value} social care assessment{s} in the last 12 months",
        "no social care assessments in the last 12 months",
        "12 months",
    ),
    _f(
        "social_care_requests_12m",
        "social care",
        "social",
        count_in("event_type = 'request'", "start_date", 12),
        "count",
        "social_care",
        "Requests for adult social care support in the last 12 months.",
        "{value} request{s} for social care support in the last 12 months",
        "no requests for social care support in the last 12 months",
        "12 months",
    ),
    _f(
        "reablement_12m",
        "social care",
        "social",
        count_in(
            "event_type = 'service' AND service_type = 'short_term_reablement'", "start_date", 12
        ),
        "count",
        "social_care",
        "Short-term reablement services started in the last 12 months.",
        "{value} reablement episode{s} in the last 12 months",
        "no reablement in the last 12 months",
        "12 months",
        adjustable=True,
    ),
    _f(
        "carer_support",
        "social care",
        "social",
        "max(CASE WHEN event_type = 'service' AND service_type = 'carer_support' AND "
        "(ongoing = 1 OR start_date >= {since_12}) THEN 1 ELSE 0 END)",
        "flag",
        "social_care",
        "Carer support service current or started in the last 12 months.",
        "their carer has support from social care",
        "no carer support from social care",
        "12 months",
        adjustable=True,
    ),
    _f(
        "days_since_social_care_assessment",
        "social care",
        "social",
        days_since("event_type = 'assessment'", "start_date"),
        "days_since",
        "social_care",
        "Days from the last social care assessment to the index date.",
        "last social care assessment {value} days ago",
        "no social care assessment on record",
    ),
    _f(
        "in_care_home",
        "social care",
        "derived",
        "CASE WHEN social_care_service_type IN (3, 4) OR last_discharge_care_home = 1 "
        "THEN 1 ELSE 0 END",
        "flag",
        "social_care, hospital_spells",
        "Lives in a care home: a current residential or nursing service, or last hospital "
        "discharge to a care home (destination 54 or 65).",
        "lives in a care home",
        "not known to live in a care home",
        model_input=False,
    ),
)

# ------------------------------------------------------------------ mental health

MENTAL_HEALTH = (
    _f(
        "dementia",
        "mental health",
        "gp",
        f"CASE WHEN (bit_or(ltc_bits) & {ltc_bit('dementia')}) <> 0 THEN 1 ELSE 0 END",
        "flag",
        "gp_events",
        "Dementia diagnosis ever coded in the GP record.",
        "has a dementia diagnosis",
        "no dementia diagnosis recorded",
    ),
    _f(
        "memory_service",
        "mental health",
        "mh",
        any_in("team_type = 'memory_service'", "contact_date", None),
        "flag",
        "mental_health_contacts",
        "Ever seen by a memory service.",
        "has been seen by a memory service",
        "not seen by a memory service",
    ),
    _f(
        "mental_health_contacts_12m",
        "mental health",
        "mh",
        count_in("1 = 1", "contact_date", 12),
        "count",
        "mental_health_contacts",
        "Mental health service contacts, last 12 months.",
        "{value} mental health contact{s} in the last 12 months",
        "no mental health contacts in the last 12 months",
        "12 months",
    ),
    _f(
        "mh_crisis_contacts_12m",
        "mental health",
        "mh",
        count_in("team_type = 'crisis'", "contact_date", 12),
        "count",
        "mental_health_contacts",
        "Mental health crisis team contacts in the last 12 months.",
        "{value} mental health crisis contact{s} in the last 12 months",
        "no mental health crisis contacts in the last 12 months",
        "12 months",
    ),
    _f(
        "older_adult_cmht_contacts_12m",
        "mental health",
        "mh",
        count_in("team_type = 'older_adult_cmht'", "contact_date", 12),
        "count",
        "mental_health_contacts",
        "Older adults' community mental health team contacts, 12 months.",
        "{value} older adults' mental health team contact{s} in the last 12 months",
        "no older adults' mental health team contacts in the last 12 months",
        "12 months",
    ),
    _f(
        "days_since_mental_health_contact",
        "mental health",
        "mh",
        days_since("1 = 1", "contact_date"),
        "days_since",
        "mental_health_contacts",
        "Days from the last mental health contact to the index date.",
        "last mental health contact {value} days ago",
        "no mental health contact on record",
    ),
)

# ------------------------------------------------------------------ caseloads (not model inputs)

CASELOAD_NAMES = {
    "neighbourhood_mdt": "the neighbourhood MDT",
    "end_of_life": "an end-of-life",
    "community_matron": "a community matron",
    "care_home_support": "a care home support",
}

CASELOADS = tuple(
    _f(
        f"on_caseload_{c}",
        "caseload",
        "caseload",
        f"max(CASE WHEN caseload = '{c}' THEN 1 ELSE 0 END)",
        "flag",
        "caseloads",
        f"Currently on {words} caseload.",
        f"already on {words} caseload",
        f"not on {words} caseload",
        model_input=False,
    )
    for c, words in CASELOAD_NAMES.items()
)

FEATURES: tuple[Feature, ...] = (
    *DEMOGRAPHICS,
    *HOSPITAL,
    *FRAILTY,
    *PRESCRIBING,
    *COMMUNITY,
    *SOCIAL,
    *MENTAL_HEALTH,
    *CASELOADS,
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
