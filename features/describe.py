"""Summaries of a feature table for a data scientist: distributions by domain, outcome rates."""

from __future__ import annotations

import pandas as pd

from features.definition import DOMAINS
from features.registry import FEATURES


def feature_summary(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per domain, one row per feature: share missing, share non-zero, mean and quantiles; for
    codes, the most common labels."""
    out: dict[str, pd.DataFrame] = {}
    for domain in DOMAINS:
        rows = []
        for f in (f for f in FEATURES if f.domain == domain):
            values = frame[f.name]
            present = values.dropna()
            row = {
                "feature": f.name,
                "kind": f.kind,
                "missing": values.isna().mean() if len(values) else float("nan"),
                "non_zero": (present != 0).mean() if len(present) else float("nan"),
                "mean": present.mean(),
                "p50": present.quantile(0.5) if len(present) else float("nan"),
                "p90": present.quantile(0.9) if len(present) else float("nan"),
                "max": present.max() if len(present) else float("nan"),
                "top": "",
            }
            if f.kind == "code" and len(present):
                shares = present.astype(int).value_counts(normalize=True).head(4)
                row["top"] = ", ".join(
                    f"{f.labels.get(int(k), str(k))} {v:.0%}" for k, v in shares.items()
                )
            rows.append(row)
        if rows:
            out[domain] = pd.DataFrame(rows)
    return out


def outcome_summary(outcome: pd.DataFrame, agencies: list[str]) -> dict[str, float]:
    """Outcome rate and the share of people each agency was involved with."""
    summary = {"outcome": float(outcome["outcome"].mean()) if len(outcome) else float("nan")}
    for agency in agencies:
        summary[agency] = float(outcome[agency].mean()) if len(outcome) else float("nan")
    return summary
