"""Features and outcome on a small synthetic extract: the same eligible people as the generator's
oracle, an outcome rate matching the oracle's probabilities, and plausible distributions."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest

from features import build_features, build_outcome
from records import load_extract

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    from synthetic import SynthConfig, generate

    folder = tmp_path_factory.mktemp("synthetic")
    generate(SynthConfig(people=4000, seed=3), folder)
    oracle = pq.read_table(folder / "oracle.parquet").to_pandas()
    return load_extract(folder), oracle


def test_eligible_people_and_outcome_rate_match_the_oracle(synthetic) -> None:
    extract, oracle = synthetic
    day = max(oracle["index_date"])
    at = oracle[oracle["index_date"] == day]
    features = build_features(extract, day)
    assert set(features["person_id"]) == set(at["person_id"])
    outcome = build_outcome(extract, day)
    rate, expected = outcome["outcome"].mean(), at["probability"].mean()
    se = math.sqrt(expected * (1 - expected) / len(at))
    assert abs(rate - expected) < 4 * se, (rate, expected)
    # Riskier people (by the oracle) have the outcome more often.
    merged = outcome.merge(at, on="person_id")
    top = merged[merged["probability"] >= merged["probability"].quantile(0.8)]
    assert top["outcome"].mean() > 2 * merged["outcome"].mean() * 0.8


def test_feature_distributions_are_plausible(synthetic) -> None:
    extract, oracle = synthetic
    frame = build_features(extract, max(oracle["index_date"]))
    assert frame["age"].min() >= 65
    assert 0 < frame["emergency_admissions_12m"].mean() < 2
    assert 0 < frame["efi_score"].mean() < 0.5
    assert frame["efi_band"].nunique() >= 3
    assert 0.05 < frame["polypharmacy_5"].mean() < 0.9
    assert frame["days_since_emergency_admission"].isna().mean() > 0.2
    assert (frame["hfrs_score"] >= 0).all() and frame["charlson_index"].max() > 0
    assert frame["neighbourhood_code"].nunique() == frame["neighbourhood"].nunique()
