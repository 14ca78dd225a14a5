"""The what-if re-derives dependents from the one feature definitions: on real feature rows (a
small extract through the loader and the features stage), re-deriving a stored row changes
nothing; changing a root input moves exactly what its definitions say; impossible combinations
are refused; inputs the outcome counts are named (from the outcome settings, not a list)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

import features
from config.settings import OutcomeSettings
from features.what_if import dependents, outcome_warnings, rederive, roots

NAMES = features.model_feature_names()


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Feature rows of a small synthetic extract (prescribing, GP, social care: all realistic)."""
    from config.settings import load_settings
    from records import open_extract
    from synthetic import SynthConfig, generate

    base = tmp_path_factory.mktemp("what_if")
    generate(SynthConfig(people=600, seed=4), base / "extract")
    extract = open_extract(base / "extract", load_settings(home=base / "home"))
    try:
        return features.build_features(extract, date(2026, 10, 1))
    finally:
        extract.con.close()


def stored(row: pd.Series) -> dict[str, float | None]:
    return {n: (None if pd.isna(row[n]) else float(row[n])) for n in NAMES}


def test_re_deriving_a_stored_row_gives_it_back(rows):
    for _, row in rows.sample(40, random_state=0).iterrows():
        values = stored(row)
        after, moved = rederive(values, {})
        assert moved == [], row["person_id"]
        for n in NAMES:
            assert (after[n] is None) == (values[n] is None), n
            if values[n] is not None:
                assert after[n] == pytest.approx(values[n], abs=1e-12), (row["person_id"], n)


def test_roots_are_adjustable_inputs_and_never_derived():
    names = {f.name for f in roots()}
    assert {"distinct_medicines_3m", "falls_12m", "care_hours_per_week", "rx_nsaids_3m"} <= names
    assert {"polypharmacy_5", "polypharmacy_10", "efi_score", "efi_band", "efi_change_12m",
            "high_risk_medicine_groups_3m", "long_term_service"} <= dependents()  # fmt: skip
    assert not names & dependents()
    with pytest.raises(ValueError, match=r"only root inputs.*polypharmacy_10"):
        rederive(stored(pd.Series(dict.fromkeys(NAMES, 0.0))), {"polypharmacy_10": 1.0})


def test_more_medicines_sets_the_polypharmacy_flags_and_the_efi(rows):
    person = rows[(rows["distinct_medicines_3m"].between(1, 4)) & (rows["bnf_sections_3m"] >= 1)]
    row = stored(person.iloc[0])
    after, moved = rederive(row, {"distinct_medicines_3m": 11.0})
    assert after["polypharmacy_5"] == 1 and after["polypharmacy_10"] == 1
    assert after["efi_score"] == pytest.approx(row["efi_score"] + 1 / 36)
    assert after["efi_change_12m"] == pytest.approx(row["efi_change_12m"] + 1 / 36)
    assert {"polypharmacy_5", "polypharmacy_10", "efi_score", "efi_change_12m"} <= set(moved)
    back, _ = rederive(after, {"distinct_medicines_3m": 0.0, "bnf_sections_3m": 0.0,
                               **{f"rx_{g}": 0.0 for g in _groups()}})  # fmt: skip
    assert back["polypharmacy_5"] == 0 and back["polypharmacy_10"] == 0
    assert back["high_risk_medicine_groups_3m"] == 0


def _groups() -> list[str]:
    return [n[3:] for n in NAMES if n.startswith("rx_") and n.endswith("_3m")]


def test_a_fall_is_an_efi_deficit_and_a_medicine_group_counts(rows):
    person = rows[(rows["falls_12m"] == 0) & (rows["efi_falls"] == 0)].iloc[0]
    row = stored(person)
    after, moved = rederive(row, {"falls_12m": 2.0})
    assert after["efi_falls"] == 1 and "efi_falls" in moved
    assert after["efi_score"] == pytest.approx(row["efi_score"] + 1 / 36)
    took = rows[(rows["rx_nsaids_3m"] == 0) & (rows["distinct_medicines_3m"] > 0)].iloc[0]
    after, _ = rederive(stored(took), {"rx_nsaids_3m": 1.0})
    assert after["high_risk_medicine_groups_3m"] == took["high_risk_medicine_groups_3m"] + 1
    none = rows[rows["social_care_service_type"] == 0].iloc[0]
    after, moved = rederive(stored(none), {"social_care_service_type": 1.0})
    assert after["long_term_service"] == 1 and moved == ["long_term_service"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"distinct_medicines_3m": 0.0, "bnf_sections_3m": 0.0, "rx_opioids_3m": 1.0},
         "a high-risk medicine prescribed, but no medicines"),
        ({"distinct_medicines_3m": 2.0, "bnf_sections_3m": 5.0}, "more BNF sections than"),
        ({"distinct_medicines_3m": 3.0, "bnf_sections_3m": 0.0}, "from no BNF section"),
        ({"care_hours_per_week": 200.0}, "more hours of social care than a week has"),
    ],
)  # fmt: skip
def test_impossible_combinations_are_refused_with_a_reason(changes, message):
    row = dict.fromkeys(NAMES, 0.0)
    with pytest.raises(ValueError, match="impossible combination: .*" + message):
        rederive(row, changes)


def test_inputs_the_outcome_counts_are_named_from_the_outcome_settings():
    warned = outcome_warnings(["care_hours_per_week", "falls_12m"])
    assert len(warned) == 1 and "adult social care involvement" in warned[0]
    assert "by definition" in warned[0]
    community = OutcomeSettings().agencies["community_health"]
    only_community = OutcomeSettings(
        agencies={"community_health": community}, min_agencies=1, always_counts=[]
    )
    assert outcome_warnings(["care_hours_per_week"], only_community) == []
