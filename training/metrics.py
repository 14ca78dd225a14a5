"""Discrimination, calibration and list metrics for one set of predicted probabilities.

Calibration slope and intercept follow Van Calster B, et al. "Calibration: the Achilles heel of
predictive analytics", BMC Med 2019;17:230: the slope is the coefficient of a logistic regression
of the outcome on the logit of the prediction; the intercept ("calibration-in-the-large") is the
intercept of that regression with the logit as a fixed offset. Ideal: slope 1, intercept 0.

Two scores' AUROCs on the same rows are compared with DeLong's test (DeLong ER, DeLong DM,
Clarke-Pearson DL. "Comparing the areas under two or more correlated receiver operating
characteristic curves: a nonparametric approach", Biometrics 1988;44:837-845), computed with the
midrank algorithm of Sun X, Xu W. "Fast implementation of DeLong's algorithm", IEEE Signal
Processing Letters 2014;21:1389-1393.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm, rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p clipped away from 0 and 1."""
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _newton_logistic(
    x: np.ndarray | None, y: np.ndarray, offset: np.ndarray, iterations: int = 50
) -> np.ndarray:
    """Unpenalised logistic regression y ~ 1 + x (+ offset) by Newton's method."""
    n = len(y)
    design = np.ones((n, 1)) if x is None else np.column_stack([np.ones(n), x])
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        eta = design @ beta + offset
        p = expit(eta)  # the logistic function without overflow for very negative eta
        w = np.clip(p * (1 - p), 1e-12, None)
        gradient = design.T @ (y - p)
        hessian = design.T @ (design * w[:, None])
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(beta)), gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the logistic recalibration of `p` against outcomes `y`."""
    y = np.asarray(y, dtype=float)
    lp = logit(p)
    if y.min() == y.max():
        return math.nan, math.nan
    slope = float(_newton_logistic(lp, y, np.zeros(len(y)))[1])
    intercept = float(_newton_logistic(None, y, lp)[0])
    return slope, intercept


def decile_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Observed and expected outcomes by decile of predicted risk (1 = lowest risk)."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    ranks = frame["p"].rank(method="first")
    frame["decile"] = np.ceil(ranks * 10 / len(frame)).astype(int).clip(1, 10)
    table = frame.groupby("decile").agg(
        rows=("y", "size"), observed=("y", "sum"), expected=("p", "sum"), mean_risk=("p", "mean")
    )
    table["observed_rate"] = table["observed"] / table["rows"]
    table["oe_ratio"] = table["observed"] / table["expected"]
    return table.reset_index()


def top_share_flags(p: np.ndarray, fraction: float) -> np.ndarray:
    """True for the `fraction` of rows with the highest risk (at least one row)."""
    p = np.asarray(p, dtype=float)
    k = max(1, round(fraction * len(p)))
    order = np.argsort(-p, kind="stable")
    flags = np.zeros(len(p), dtype=bool)
    flags[order[:k]] = True
    return flags


def list_flags(p: np.ndarray, neighbourhood: np.ndarray, share: dict[str, float]) -> np.ndarray:
    """True for the rows each neighbourhood's list would take: its top `share[n]` by risk.

    `share` is the list size over the neighbourhood's eligible population, so a test set that
    holds a sample of each neighbourhood gets lists of the same proportion.
    """
    p = np.asarray(p, dtype=float)
    neighbourhood = np.asarray(neighbourhood).astype(str)
    flags = np.zeros(len(p), dtype=bool)
    for name in np.unique(neighbourhood):
        rows = np.flatnonzero(neighbourhood == name)
        fraction = min(1.0, share.get(name, 0.0))
        if fraction <= 0:
            continue
        flags[rows[top_share_flags(p[rows], fraction)]] = True
    return flags


def ppv_sensitivity(y: np.ndarray, flags: np.ndarray) -> tuple[float, float]:
    """(PPV, sensitivity) of flagging `flags` for outcomes `y`."""
    y = np.asarray(y, dtype=bool)
    flagged = int(flags.sum())
    hits = int((y & flags).sum())
    ppv = hits / flagged if flagged else math.nan
    sensitivity = hits / int(y.sum()) if y.any() else math.nan
    return ppv, sensitivity


@dataclass(frozen=True)
class AurocDifference:
    """AUROC of score a minus AUROC of score b on the same rows, with DeLong's standard error."""

    difference: float
    se: float
    ci_low: float  # 95% confidence interval
    ci_high: float
    p_value: float  # two-sided, no difference


def auroc_difference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> AurocDifference:
    """DeLong's comparison of the AUROCs of scores `a` and `b` for outcomes `y` (same rows)."""
    y = np.asarray(y, dtype=int)
    scores = np.vstack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        nan = math.nan
        return AurocDifference(nan, nan, nan, nan, nan)
    pos, neg = scores[:, positive], scores[:, ~positive]
    rank_all = rankdata(np.hstack([pos, neg]), axis=1)  # midranks
    rank_pos = rankdata(pos, axis=1)
    rank_neg = rankdata(neg, axis=1)
    auroc = (rank_all[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v_pos = (rank_all[:, :m] - rank_pos) / n  # structural components (Sun & Xu eq. 8)
    v_neg = 1.0 - (rank_all[:, m:] - rank_neg) / m
    cov = np.cov(v_pos) / m + np.cov(v_neg) / n
    difference = float(auroc[0] - auroc[1])
    variance = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = math.sqrt(max(variance, 0.0))
    z = norm.ppf(0.975)
    p_value = float(2 * norm.sf(abs(difference) / se)) if se > 0 else float(difference == 0)
    return AurocDifference(
        difference, se, float(difference - z * se), float(difference + z * se), p_value
    )


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}pct".replace(".", "_")


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    top_fractions: tuple[float, ...] = (0.01, 0.02, 0.05),
    neighbourhood: np.ndarray | None = None,
    list_share: dict[str, float] | None = None,
) -> dict[str, float]:
    """Every headline metric for predictions `p` of outcomes `y`, as a flat dict."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    out: dict[str, float] = {"rows": float(len(y)), "outcomes": float(y.sum())}
    out["prevalence"] = float(y.mean()) if len(y) else math.nan
    both = len(y) > 0 and 0 < y.sum() < len(y)
    out["auroc"] = float(roc_auc_score(y, p)) if both else math.nan
    out["auprc"] = float(average_precision_score(y, p)) if both else math.nan
    out["brier"] = float(brier_score_loss(y, p)) if len(y) else math.nan
    slope, intercept = calibration_slope_intercept(y, p) if both else (math.nan, math.nan)
    out["calibration_slope"] = slope
    out["calibration_intercept"] = intercept
    out["oe_ratio"] = float(y.sum() / p.sum()) if p.sum() > 0 else math.nan
    for fraction in top_fractions:
        ppv, sens = ppv_sensitivity(y, top_share_flags(p, fraction))
        out[f"ppv_top_{_pct(fraction)}"] = ppv
        out[f"sensitivity_top_{_pct(fraction)}"] = sens
    if neighbourhood is not None and list_share is not None:
        flags = list_flags(p, neighbourhood, list_share)
        ppv, sens = ppv_sensitivity(y, flags)
        out["ppv_list"] = ppv
        out["sensitivity_list"] = sens
        out["list_rows"] = float(flags.sum())
    return out
