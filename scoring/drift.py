"""Population stability index (PSI) of this month's scores and features against training data.

PSI = sum over bins of (a - e) * ln(a / e), where e and a are the shares of the training
("expected") and current ("actual") values in each bin. Bins are training-data quantiles (for a
column with few distinct values, each value is its own bin); missing values are a bin of their own.
Rules of thumb: under 0.1 stable, 0.1-0.25 some shift, over 0.25 major shift (Siddiqi, Credit Risk
Scorecards, 2006).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

EPSILON = 1e-4  # floor on a bin share, so an empty bin gives a large but finite PSI


def _bin_edges(expected: np.ndarray, bins: int) -> np.ndarray | None:
    """Cut points between bins from the training values; None means one bin per distinct value."""
    values = expected[~np.isnan(expected)]
    if len(values) == 0:
        return np.array([])
    distinct = np.unique(values)
    if len(distinct) <= bins:
        return None
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return cuts


def _shares(values: np.ndarray, edges: np.ndarray | None, categories: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    present = values[~missing]
    if edges is None:
        # Values not seen in training go to an extra bin.
        pos = np.searchsorted(categories, present)
        known = (pos < len(categories)) & (
            categories[np.minimum(pos, len(categories) - 1)] == present
        )
        counts = np.bincount(np.where(known, pos, len(categories)), minlength=len(categories) + 1)
    else:
        counts = np.bincount(
            np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1
        )
    counts = np.append(counts, missing.sum())
    total = max(len(values), 1)
    return counts / total


def psi(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """The population stability index of `actual` against `expected` (see module docstring)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if len(e) == 0 or len(a) == 0:
        raise ValueError("PSI needs values in both the training and the current data")
    edges = _bin_edges(e, bins)
    categories = np.unique(e[~np.isnan(e)]) if edges is None else np.array([])
    e_share = np.maximum(_shares(e, edges, categories), EPSILON)
    a_share = np.maximum(_shares(a, edges, categories), EPSILON)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def drift_table(
    expected: pd.DataFrame,
    actual: pd.DataFrame,
    columns: Sequence[str],
    limit: float,
    bins: int = 10,
) -> pd.DataFrame:
    """PSI per column (in `columns` order): name, psi, warning (psi above `limit`)."""
    missing = [c for c in columns if c not in expected.columns or c not in actual.columns]
    if missing:
        raise ValueError(f"drift: columns missing from training or current data: {missing}")
    values = [psi(expected[c].astype(float), actual[c].astype(float), bins) for c in columns]
    table = pd.DataFrame({"name": list(columns), "psi": values})
    table["warning"] = table["psi"] > limit
    return table


def main_features(feature_names: Sequence[str], importance: Sequence[float], top: int) -> list[str]:
    """The `top` features by importance (ties keep model order), for drift monitoring."""
    order = np.argsort(-np.asarray(importance, dtype=float), kind="stable")
    return [feature_names[i] for i in order[:top] if importance[i] > 0]
