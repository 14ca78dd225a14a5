"""How the list is doing, per neighbourhood and month, from a run's per-person table and the MDT
reviews: listed, reviewed, accepted, share accepted (the team-judged positive predictive value:
of the listed people the MDT reviewed, the share it accepted), median days from listing (the
run's index date) to the first review, and, once the 12-month outcomes are known, the outcome
rate of listed people the MDT accepted, declined, and never reviewed. Pure: tables in, a table
out (`list_performance`), and Markdown (`render_performance`)."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["listed", "reviewed", "accepted", "share_accepted", "median_days_to_review"]
OUTCOME_GROUPS = {"accepted": "accepted", "declined": "declined", "never_reviewed": None}


def list_performance(
    people: pd.DataFrame,
    reviews: pd.DataFrame | None,
    month: str,
    outcomes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per neighbourhood of `month`'s list. `people`: the run's table (person_id,
    neighbourhood, listed); `reviews`: the reviews table; `outcomes`: person_id, outcome (0/1)
    at the month's index date (adds outcome_rate_accepted / _declined / _never_reviewed)."""
    listed = people[people["listed"].fillna(False).astype(bool)][["person_id", "neighbourhood"]]
    listed = listed.reset_index(drop=True)  # a run's table is indexed by person_id too
    listed = listed.assign(person_id=listed["person_id"].astype(str))
    index_date = pd.Timestamp(f"{month}-01")
    mine = pd.DataFrame(columns=["person_id", "outcome", "reviewed_on"])
    if reviews is not None and len(reviews):
        of_month = reviews[reviews["month"].astype(str) == str(month)].sort_values("id")
        first = of_month.groupby(of_month["person_id"].astype(str)).agg(
            outcome=("outcome", "last"), reviewed_on=("reviewed_on", "first")
        )
        mine = first.reset_index()
    table = listed.merge(mine, on="person_id", how="left")
    table["days"] = (pd.to_datetime(table["reviewed_on"]) - index_date).dt.days
    by = table.groupby("neighbourhood", sort=True)
    out = pd.DataFrame(
        {
            "listed": by.size(),
            "reviewed": by["outcome"].count(),
            "accepted": by["outcome"].apply(lambda s: int((s == "accepted").sum())),
            "median_days_to_review": by["days"].median(),
        }
    )
    out["share_accepted"] = (out["accepted"] / out["reviewed"]).where(out["reviewed"] > 0)
    out = out[COLUMNS]
    if outcomes is not None:
        known = table.merge(
            outcomes.assign(person_id=outcomes["person_id"].astype(str))[["person_id", "outcome"]],
            on="person_id", how="left", suffixes=("", "_12m"),
        )  # fmt: skip
        for name, decision in OUTCOME_GROUPS.items():
            group = known["outcome"].isna() if decision is None else known["outcome"].eq(decision)
            rates = known[group].groupby("neighbourhood")["outcome_12m"].mean()
            out[f"outcome_rate_{name}"] = rates.reindex(out.index)
    out.index.name = "neighbourhood"
    return out


def render_performance(month: str, table: pd.DataFrame, note: str | None = None) -> str:
    """The table as a Markdown section of the run summary."""
    lines = [
        f"## How the {month} list is doing",
        "",
        "Share accepted: of the listed people the MDT reviewed, the share it accepted (the "
        "team-judged positive predictive value). Days: from the index date to the first review.",
        "",
    ]
    if not len(table):
        return "\n".join([*lines, "Nobody was listed.", ""])
    shown = table.reset_index()
    header = "| " + " | ".join(shown.columns) + " |"
    lines += [header, "|" + "|".join("---" for _ in shown.columns) + "|"]
    for row in shown.itertuples(index=False):
        cells = ["" if pd.isna(v) else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"
