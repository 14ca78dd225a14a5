"""Population stability index: by hand on small samples, and its bins."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scoring.drift import EPSILON, drift_table, main_features, psi


def test_identical_distributions_have_zero_psi() -> None:
    values = np.random.default_rng(0).normal(size=5000)
    assert psi(values, values) == pytest.approx(0.0, abs=1e-12)


def test_discrete_values_match_the_formula() -> None:
    expected = [0] * 50 + [1] * 50
    actual = [0] * 20 + [1] * 80
    by_hand = (0.2 - 0.5) * math.log(0.2 / 0.5) + (0.8 - 0.5) * math.log(0.8 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)


def test_missing_values_and_unseen_values_are_bins_of_their_own() -> None:
    expected = [1.0] * 90 + [np.nan] * 10
    actual = [1.0] * 50 + [np.nan] * 40 + [2.0] * 10
    by_hand = (
        (0.5 - 0.9) * math.log(0.5 / 0.9)
        + (0.4 - 0.1) * math.log(0.4 / 0.1)
        + (0.1 - EPSILON) * math.log(0.1 / EPSILON)
    )
    assert psi(expected, actual) == pytest.approx(by_hand)


def test_a_shift_in_a_continuous_value_is_caught() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=20_000)
    assert psi(base, rng.normal(size=20_000)) < 0.01
    assert psi(base, rng.normal(0.5, 1, size=20_000)) > 0.2


def test_empty_data_is_an_error() -> None:
    with pytest.raises(ValueError, match="PSI needs values"):
        psi([], [1.0])


def test_drift_table_flags_columns_above_the_limit() -> None:
    rng = np.random.default_rng(2)
    train = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    now = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(1, 1, size=4000)})
    table = drift_table(train, now, ["a", "b"], limit=0.2).set_index("name")
    assert not table.loc["a", "warning"] and table.loc["b", "warning"]
    with pytest.raises(ValueError, match=r"\['c'\]"):
        drift_table(train, now, ["a", "c"], limit=0.2)


def test_main_features_by_importance() -> None:
    assert main_features(["a", "b", "c", "d"], [1.0, 5.0, 0.0, 5.0], 3) == ["b", "d", "a"]
