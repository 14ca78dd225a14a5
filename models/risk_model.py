"""The risk model as one object: LightGBM booster, calibrator, and the explainer built from them.

The booster's raw output (log-odds, the "margin") is what explanations decompose; the served
probability is the calibrator applied to that margin. Keeping the calibrator a monotone function
of the margin alone means an explanation in log-odds maps onto the served probability exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

# Risk bands on the calibrated probability of complex multi-agency need in 12 months.
# Project choice, not a published standard: "high" is roughly the top decile of the synthetic
# population's risk, "very high" the top few percent; sites set their own.
DEFAULT_BANDS: tuple[tuple[str, float], ...] = (
    ("low", 0.0),
    ("moderate", 0.15),
    ("high", 0.30),
    ("very high", 0.50),
)


@dataclass
class PlattCalibrator:
    """Logistic recalibration of the booster margin: p = sigmoid(slope * margin + intercept)."""

    slope: float = 1.0
    intercept: float = 0.0

    def fit(self, margin: np.ndarray, outcome: np.ndarray) -> PlattCalibrator:
        """Fit slope and intercept by maximum likelihood on held-out rows."""
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(np.asarray(margin, dtype=float).reshape(-1, 1), np.asarray(outcome, dtype=int))
        self.slope = float(lr.coef_[0, 0])
        self.intercept = float(lr.intercept_[0])
        return self

    def calibrated_margin(self, margin: np.ndarray) -> np.ndarray:
        """The calibrated log-odds."""
        return self.slope * np.asarray(margin, dtype=float) + self.intercept

    def transform(self, margin: np.ndarray) -> np.ndarray:
        """The calibrated probability."""
        return 1.0 / (1.0 + np.exp(-self.calibrated_margin(margin)))


@dataclass
class RiskModel:
    """Booster + calibrator + feature order + bands; one way to score, one way to explain."""

    booster: lgb.Booster
    calibrator: PlattCalibrator
    feature_names: list[str]
    bands: tuple[tuple[str, float], ...] = DEFAULT_BANDS
    metadata: dict[str, Any] = field(default_factory=dict)
    _explainer: Any = field(default=None, init=False, repr=False, compare=False)
    _names: pd.Index | None = field(default=None, init=False, repr=False, compare=False)

    def frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The model's input columns, in order, as float; raise naming any missing column."""
        missing = [c for c in self.feature_names if c not in rows.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        return rows[self.feature_names].astype(float)

    def matrix(self, rows: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The model's inputs as a float64 array [rows, features] in `feature_names` order (the
        values `frame` holds, without building a frame: a one-row request pays microseconds,
        not a pandas column selection). An array is taken as already in that order."""
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2 or rows.shape[1] != len(self.feature_names):
                raise ValueError(
                    f"expected an array of {len(self.feature_names)} feature columns, "
                    f"got shape {rows.shape}"
                )
            return np.asarray(rows, dtype=np.float64)
        if not rows.columns.is_unique:
            return self.frame(rows).to_numpy(dtype=np.float64)
        if self._names is None:
            self._names = pd.Index(self.feature_names)
        positions = rows.columns.get_indexer(self._names)
        if (positions < 0).any():
            missing = [n for n, i in zip(self.feature_names, positions, strict=True) if i < 0]
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        return rows.take(positions, axis=1).to_numpy(dtype=np.float64)

    def margin(self, rows: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The booster's log-odds for each row (what explanations decompose)."""
        return self.booster.predict(self.matrix(rows), raw_score=True)

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        """The served, calibrated probability for each row."""
        return self.scores(rows)[1]

    def scores(self, rows: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(margin, served probability) for each row: the calibrator applied to the margin."""
        margin = self.margin(rows)
        return margin, self.calibrator.transform(margin)

    def band(self, probability: np.ndarray) -> np.ndarray:
        """The risk band name for each probability."""
        names = np.array([name for name, _ in self.bands], dtype=object)
        cuts = np.array([low for _, low in self.bands[1:]])
        return names[np.searchsorted(cuts, np.asarray(probability), side="right")]

    @property
    def explainer(self) -> Any:
        """shap's TreeExplainer on the booster (log-odds), built once on first use."""
        if self._explainer is None:
            import shap

            self._explainer = shap.TreeExplainer(self.booster)
        return self._explainer
