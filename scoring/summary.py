"""The run summary: counts per neighbourhood, exclusions, score distribution, expected list PPV
and drift, as plain data (`neighbourhood_counts`) and as Markdown (`render_summary`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.cohort import EXCLUSIONS, INELIGIBLE, LIST_FLAGS


def neighbourhood_counts(
    people: pd.DataFrame, ineligible: pd.DataFrame, capacity: pd.Series | None = None
) -> pd.DataFrame:
    """Per neighbourhood: not eligible, eligible, excluded, candidates, listed, flags and the
    expected PPV of the list (mean calibrated probability of the people on it).

    `people` is a run's per-person table; `ineligible` has one row per person in the extract who
    is not eligible (neighbourhood, reason).
    """
    listed = people[people["listed"]]
    by = people.groupby("neighbourhood", sort=True)
    table = pd.DataFrame(
        {
            "eligible": by.size(),
            "excluded": by["excluded"].count(),
            "candidates": by["rank"].count(),
            "listed": by["listed"].sum(),
            "new_this_month": by["new_this_month"].sum(),
            "on_last_month_list": listed.groupby("neighbourhood")["on_last_month_list"].sum(),
            "risk_risen": listed.groupby("neighbourhood")["risk_risen"].sum(),
            "expected_ppv": listed.groupby("neighbourhood")["probability"].mean(),
        }
    )
    not_eligible = ineligible.groupby("neighbourhood").size().rename("not_eligible")
    table = table.join(not_eligible, how="outer")
    counts = [c for c in table.columns if c != "expected_ppv"]
    table[counts] = table[counts].fillna(0).astype(int)
    if capacity is not None:
        table.insert(0, "capacity", capacity.reindex(table.index))
    table.index.name = "neighbourhood"
    return table[_order(table.columns)]


def _order(columns: pd.Index) -> list[str]:
    wanted = ["capacity", "not_eligible", "eligible", "excluded", "candidates", "listed",
              "new_this_month", "on_last_month_list", "risk_risen", "expected_ppv"]  # fmt: skip
    return [c for c in wanted if c in columns]


def score_distribution(people: pd.DataFrame, bands: list[str]) -> dict[str, Any]:
    """Band counts of everyone scored and of the listed, and quantiles of the probability."""
    scored = people[people["probability"].notna()]
    listed = scored[scored["listed"]]
    quantiles = {
        f"p{int(q * 100)}": float(scored["probability"].quantile(q)) if len(scored) else None
        for q in (0.1, 0.5, 0.9, 0.99)
    }
    return {
        "scored": len(scored),
        "bands_scored": {b: int((scored["band"] == b).sum()) for b in bands},
        "bands_listed": {b: int((listed["band"] == b).sum()) for b in bands},
        "mean": float(scored["probability"].mean()) if len(scored) else None,
        "quantiles": quantiles,
    }


# Column headers in words (the flags in `LIST_FLAGS`' words, exclusions in `EXCLUSIONS`').
HEADERS = {
    "neighbourhood": "neighbourhood",
    "not_eligible": "not eligible",
    "expected_ppv": "expected PPV",
    "name": "feature",
    "psi": "PSI",
    **LIST_FLAGS,
    **EXCLUSIONS,
}


def _md_table(frame: pd.DataFrame, floats: str = "{:.3f}") -> str:
    """`frame` as a Markdown table: headers in words, counts with thousands separators."""
    header = "| " + " | ".join(HEADERS.get(str(c), str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float | np.floating):
                cells.append("" if np.isnan(value) else floats.format(value))
            elif isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
                cells.append(f"{int(value):,}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_summary(
    meta: dict[str, Any],
    counts: pd.DataFrame,
    ineligible: pd.DataFrame,
    exclusions: pd.DataFrame,
    distribution: dict[str, Any],
    drift: pd.DataFrame | None,
    drift_note: str | None,
    drift_limit: float,
) -> str:
    """The run summary as Markdown."""
    model = meta["model"]
    lines = [
        f"# Scoring run {meta['month']}",
        "",
        f"- Run id: `{meta['run_id']}`",
        f"- Index date: {meta['index_date']} (extract date {meta['extract']['extract_date']})",
        f"- Model: {model['name']} version {model['version']}",
        f"- List rule: {meta['rule']}",
        f"- Created: {meta['created']}",
        "",
        "## Per neighbourhood",
        "",
        "Expected PPV is the mean calibrated probability of the people on the list: the share of "
        "them expected to have complex multi-agency need within 12 months.",
        "",
        _md_table(counts.reset_index()),
    ]
    totals = meta["counts"]
    lines += [
        "",
        f"Total: {totals['in_extract']:,} people in the extract, {totals['not_eligible']:,} not "
        f"eligible, {totals['eligible']:,} eligible, {totals['excluded']:,} excluded, "
        f"{totals['listed']:,} listed (expected PPV "
        + (f"{totals['expected_ppv']:.3f})." if totals["expected_ppv"] is not None else "n/a)."),
    ]
    for warning in meta.get("warnings", []):  # drift warnings too: said once, here
        lines += ["", f"**Warning:** {warning}"]

    lines += ["", "## Not eligible", ""]
    if len(ineligible):
        table = ineligible.groupby("reason").size().rename("people").reset_index()
        table["reason"] = table["reason"].map(INELIGIBLE)
        lines.append(_md_table(table))
    else:
        lines.append("Everyone in the extract is eligible.")

    lines += [
        "",
        "## Exclusions",
        "",
        "Eligible people kept off the list. *First reason* counts each person once (reasons in the "
        "order below); *applies to* counts everyone the reason applies to.",
        "",
    ]
    if len(exclusions):
        total = exclusions.groupby("reason", sort=False)[["first", "any"]].sum().reset_index()
        total["reason"] = total["reason"].map(EXCLUSIONS)
        lines.append(
            _md_table(total.rename(columns={"first": "first reason", "any": "applies to"}))
        )
        wide = exclusions.pivot_table(
            index="neighbourhood", columns="reason", values="first", aggfunc="sum", sort=False
        )
        lines += ["", "First reason, per neighbourhood:", "", _md_table(wide.reset_index())]
    else:
        lines.append("No exclusions are configured.")

    lines += ["", "## Score distribution", ""]
    bands = pd.DataFrame(
        {
            "band": list(distribution["bands_scored"]),
            "scored": list(distribution["bands_scored"].values()),
            "listed": list(distribution["bands_listed"].values()),
        }
    )
    lines.append(_md_table(bands))
    q = distribution["quantiles"]
    if distribution["mean"] is not None:
        lines += [
            "",
            f"{distribution['scored']:,} people scored; mean probability "
            f"{distribution['mean']:.3f}; " + ", ".join(f"{k} {v:.3f}" for k, v in q.items()) + ".",
        ]

    lines += ["", "## Drift against the training data", ""]
    if drift is None or not len(drift):
        lines.append(f"Drift not measured: {drift_note or 'no training sample'}.")
    else:
        lines.append(
            f"Population stability index (PSI); warning above {drift_limit:g} "
            "(under 0.1 stable, 0.1-0.25 some shift, over 0.25 major shift)."
        )
        lines += [
            "",
            _md_table(drift.assign(warning=drift["warning"].map({True: "yes", False: ""}))),
        ]
    return "\n".join(lines) + "\n"
