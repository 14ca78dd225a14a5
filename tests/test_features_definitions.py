"""The feature registry: one definition per feature, complete, portable SQL, plain sentences."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlglot
from typer.testing import CliRunner

from casefinder.cli import app
from features import (
    DOMAINS,
    FEATURES,
    FeatureError,
    check_index_date,
    feature,
    features_sql,
    index_dates,
    model_feature_names,
    outcome_sql,
)
from features.codelists import efi_deficits
from features.dictionary import render_dictionary
from features.registry import EFI_DEFICITS, EFI_POLYPHARMACY
from records import Manifest

MANIFEST = Manifest(
    extract_date=date(2026, 10, 31), complete_to={"prescriptions": date(2026, 9, 30)}
)
REPO = Path(__file__).resolve().parents[1]


def test_every_feature_is_fully_defined() -> None:
    assert len({f.name for f in FEATURES}) == len(FEATURES)
    for f in FEATURES:
        assert f.domain in DOMAINS, f.name
        assert f.description.endswith("."), f.name
        assert f.sentence and f.none_sentence and f.sql and f.block and f.source, f.name
        if f.kind == "code":
            assert f.labels or f.name == "neighbourhood_code", f.name


def test_feature_families_required_by_the_brief_are_present() -> None:
    names = {f.name for f in FEATURES}
    for required in (
        "age", "sex", "imd_decile", "ethnicity_group", "neighbourhood_code",
        "emergency_admissions_3m", "emergency_admissions_6m", "emergency_admissions_12m",
        "emergency_admissions_36m", "emergency_bed_days_12m", "days_since_emergency_admission",
        "elective_admissions_12m", "ae_attendances_12m", "ae_ambulance_arrivals_12m",
        "outpatient_attendances_12m", "outpatient_dna_12m", "efi_score", "efi_band",
        "efi_change_12m", "long_term_conditions", "hfrs_score", "hfrs_band", "charlson_index",
        "distinct_medicines_3m", "bnf_sections_3m", "polypharmacy_5", "polypharmacy_10",
        "rx_opioids_3m", "rx_anticoagulants_3m", "rx_antipsychotics_3m", "rx_diuretics_3m",
        "social_care_service_type", "care_hours_per_week", "social_care_assessments_12m",
        "reablement_12m", "carer_support", "memory_service", "dementia", "in_care_home",
        "data_opt_out", "on_caseload_neighbourhood_mdt", "on_caseload_end_of_life",
        "on_caseload_community_matron", "on_caseload_care_home_support",
    ):  # fmt: skip
        assert required in names, required
    assert len(EFI_DEFICITS) == 36
    # 35 coded deficits, one flag each; the 36th, polypharmacy, is the prescribing feature.
    assert {f"efi_{d}" for d in efi_deficits()} <= names
    assert set(efi_deficits()) | {"polypharmacy"} == set(EFI_DEFICITS)
    assert EFI_POLYPHARMACY in names and "efi_polypharmacy" not in names


def test_no_two_model_inputs_compute_the_same_column() -> None:
    # Identical inputs would split one signal's explanation credit between two columns.
    seen: dict[tuple[str, str], str] = {}
    for f in FEATURES:
        if f.model_input:
            key = (f.block, f.sql)
            assert key not in seen, f"{f.name} computes the same as {seen[key]}"
            seen[key] = f.name


def test_sources_are_the_tables_each_feature_reads() -> None:
    assert feature("age").source == "people"
    assert feature("emergency_admissions_12m").source == "hospital_spells"
    assert feature("hfrs_score").source == "hospital_spells"
    assert feature("efi_falls").source == "gp_events"  # reads the GP block's deficit mask
    assert feature("efi_score").source == "gp_events, prescriptions"
    assert feature("efi_band").source == "gp_events, prescriptions"  # via efi_score
    assert feature("rx_opioids_3m").source == "prescriptions"
    assert feature("in_care_home").source == "social_care, hospital_spells"
    assert feature("on_caseload_end_of_life").source == "caseloads"


def test_model_inputs_and_what_if_marks() -> None:
    model = model_feature_names()
    assert model == [f.name for f in FEATURES if f.model_input]
    not_model = {f.name for f in FEATURES if not f.model_input}
    assert {"data_opt_out", "in_care_home"} <= not_model
    assert {n for n in not_model if n.startswith("on_caseload_")} == {
        "on_caseload_neighbourhood_mdt", "on_caseload_end_of_life",
        "on_caseload_community_matron", "on_caseload_care_home_support",
    }  # fmt: skip
    for fairness in ("age", "sex", "imd_decile", "ethnicity_group", "neighbourhood_code"):
        assert fairness in model
    adjustable = {f.name for f in FEATURES if f.adjustable}
    assert {"falls_12m", "distinct_medicines_3m", "care_hours_per_week",
            "carer_support"} <= adjustable  # fmt: skip
    # derived from the number of medicines: re-derived in a what-if, never set by hand
    assert "polypharmacy_5" not in adjustable
    for fixed in ("age", "sex", "imd_decile", "ethnicity_group", "neighbourhood_code",
                  "emergency_admissions_12m", "charlson_index", "hfrs_score"):  # fmt: skip
        assert fixed not in adjustable
    assert not any(f.adjustable and not f.model_input for f in FEATURES)


def test_feature_lookup() -> None:
    assert feature("age").domain == "demographics"
    with pytest.raises(KeyError, match="no_such"):
        feature("no_such")


def test_phrases_read_naturally() -> None:
    em = feature("emergency_admissions_12m")
    assert em.phrase(3) == "3 emergency admissions in the last 12 months"
    assert em.phrase(1) == "1 emergency admission in the last 12 months"
    assert em.phrase(0) == "no emergency admissions in the last 12 months"
    assert feature("days_since_emergency_admission").phrase(float("nan")) == (
        "no emergency admission on record"
    )
    assert feature("efi_band").phrase(2) == "eFI category: moderate frailty"
    assert feature("care_hours_per_week").phrase(10.5) == "10.5 hours of social care a week"
    assert feature("efi_falls").phrase(1) == "falls recorded (an eFI deficit)"


@pytest.mark.parametrize("index_date", [date(2024, 7, 1), date(2026, 11, 1)])
def test_feature_sql_transpiles_to_spark(index_date: date) -> None:
    spark = sqlglot.transpile(features_sql(MANIFEST, index_date), read="duckdb", write="spark")[0]
    parsed = sqlglot.parse_one(spark, read="spark")
    outputs = [e.alias_or_name for e in parsed.expressions]
    assert outputs == ["person_id", "index_date", "neighbourhood", "gp_practice_code"] + [
        f.name for f in FEATURES
    ]
    assert "MAX_BY(" in spark and "ARG_MAX" not in spark.upper()


def test_outcome_sql_transpiles_to_spark() -> None:
    from config.settings import OutcomeSettings

    sql = outcome_sql(date(2024, 7, 1), OutcomeSettings())
    parsed = sqlglot.parse_one(sqlglot.transpile(sql, read="duckdb", write="spark")[0], "spark")
    assert [e.alias_or_name for e in parsed.expressions] == [
        "person_id", "outcome", "acute_hospital", "community_health", "adult_social_care",
        "mental_health",
    ]  # fmt: skip


def test_lagging_table_windows_end_at_its_complete_to() -> None:
    sql = features_sql(MANIFEST, date(2026, 11, 1))
    assert "p.issue_date < DATE '2026-10-01'" in sql  # prescriptions complete to 2026-09-30
    assert "s.admission_date < DATE '2026-11-01'" in sql


def test_index_dates_and_checks() -> None:
    assert index_dates(date(2024, 1, 15), date(2024, 12, 1), "3M") == [
        date(2024, 2, 1), date(2024, 5, 1), date(2024, 8, 1), date(2024, 11, 1),
    ]  # fmt: skip
    assert index_dates(date(2020, 1, 1), date(2022, 1, 1), "1Y")[-1] == date(2022, 1, 1)
    with pytest.raises(FeatureError, match="not a number of months"):
        index_dates(date(2020, 1, 1), date(2022, 1, 1), "weekly")
    with pytest.raises(FeatureError, match=r"ends .* before it starts"):
        index_dates(date(2022, 1, 1), date(2020, 1, 1))
    check_index_date(MANIFEST, date(2026, 11, 1))  # the usual monthly run
    with pytest.raises(FeatureError, match="after the day after the extract date"):
        check_index_date(MANIFEST, date(2026, 12, 1))
    with pytest.raises(FeatureError, match="not the first day of a month"):
        check_index_date(MANIFEST, date(2026, 10, 15))
    with pytest.raises(FeatureError, match="not after the start of the extract's history"):
        check_index_date(MANIFEST, date(2010, 1, 1), date(2015, 3, 4))


def test_committed_dictionary_is_up_to_date() -> None:
    committed = (REPO / "docs" / "features.md").read_text(encoding="utf-8")
    assert committed == render_dictionary(), "run `casefinder dictionary` and commit it"


def test_dictionary_command_writes_every_feature(tmp_path: Path) -> None:
    out = tmp_path / "dict.md"
    result = CliRunner().invoke(app, ["dictionary", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    for f in FEATURES:
        assert f"| `{f.name}` |" in text
    assert "3 emergency admissions in the last 12 months" in text
    assert "at least 2 agencies" in text
