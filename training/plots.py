"""Evaluation plots written as PNG files. Figures are made without pyplot (`Figure` draws with
Agg when saved), so no display is needed and the caller's backend (a notebook's inline one)
is left as it is, whenever this module is imported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from training.metrics import decile_table


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def roc_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """ROC curves of the model and baselines."""
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name, lw=2 if name == "model" else 1)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="False-positive rate", ylabel="Sensitivity", title="ROC, test period")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def pr_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    """Precision-recall curves of the model and baselines."""
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=name, lw=2 if name == "model" else 1)
    ax.axhline(float(np.mean(y)), ls=":", color="grey", label="prevalence")
    ax.set(xlabel="Sensitivity (recall)", ylabel="PPV (precision)", title="Precision-recall")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def calibration_plot(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    """Observed rate against mean predicted risk in deciles of predicted risk."""
    table = decile_table(y, p)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    top = float(max(table["mean_risk"].max(), table["observed_rate"].max())) * 1.05
    ax.plot([0, top], [0, top], ls=":", color="grey", label="perfect")
    ax.plot(table["mean_risk"], table["observed_rate"], marker="o", label="model")
    ax.set(xlabel="Predicted risk (decile mean)", ylabel="Observed rate", title="Calibration")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def decile_oe_plot(y: np.ndarray, p: np.ndarray, path: Path) -> Path:
    """Observed/expected ratio by decile of predicted risk."""
    table = decile_table(y, p)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.bar(table["decile"], table["oe_ratio"], color="#4477aa")
    ax.axhline(1.0, color="black", lw=1)
    ax.set(xlabel="Risk decile (10 = highest)", ylabel="Observed / expected", xticks=range(1, 11))
    ax.set_title("Observed / expected by risk decile")
    return _save(fig, path)


def importance_plot(importance: pd.Series, path: Path, top: int = 20) -> Path:
    """Mean absolute SHAP value (log-odds) per feature, largest first."""
    shown = importance.sort_values(ascending=False).head(top)[::-1]
    fig = Figure(figsize=(7, 0.3 * len(shown) + 1.2))
    ax = fig.subplots()
    ax.barh(shown.index, shown.to_numpy(), color="#228833")
    ax.set(xlabel="Mean |SHAP value| (log-odds)", title="Global feature importance (SHAP)")
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, path)
