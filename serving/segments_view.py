"""The population segments page's pictures, as data: segment sizes over the scored months, this
month's flows, the risk distribution within each segment, and the neighbourhood beside the whole
place. Aggregates only (no person-level data); `serving.pages` renders them as inline SVG bars
(`templates/segments.html`), which need no script and scale to a phone's width.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.segments import SEGMENTS
from scoring.disclosure import suppressed, suppressed_group
from scoring.segments import NOT_IN_LAST_RUN, flow_sentence, segment_counts, segment_flows

# Bar colours per segment (readable on white, distinguishable in greyscale by their order).
COLOURS = {
    "in_the_system": "#8e3b46",
    "high_risk_independent": "#d08a1e",
    "fit_and_well": "#3d7a5a",
}
BAND_COLOURS = ("#c9dbe8", "#88acc9", "#3f6f99", "#17324d")


def _segments(people: pd.DataFrame) -> pd.DataFrame:
    return people[people["segment"].notna()] if "segment" in people.columns else people.iloc[:0]


def _stack(counts: dict[str, int]) -> dict[str, Any]:
    """A 100% stacked bar: each segment's count, share and x offset (in percent)."""
    total = sum(counts.values())
    parts, x = [], 0.0
    for key, words in SEGMENTS.items():
        n = int(counts.get(key, 0))
        share = 100.0 * n / total if total else 0.0
        parts.append({"key": key, "words": words, "people": n, "share": share, "x": x,
                      "colour": COLOURS[key]})  # fmt: skip
        x += share
    return {"total": total, "parts": parts}


def sizes_over_months(
    runs: list[tuple[str, pd.DataFrame]], neighbourhood: str
) -> list[dict[str, Any]]:
    """One bar per scored month (runs that kept segments), oldest first, scaled to the largest
    month: the neighbourhood's people in each segment."""
    rows = []
    for month, people in runs:
        seg = _segments(people)
        if "segment" not in people.columns:
            continue
        here = seg[seg["neighbourhood"] == neighbourhood]
        rows.append({"month": month, **_stack(here["segment"].value_counts().to_dict())})
    largest = max((r["total"] for r in rows), default=0) or 1
    for r in rows:
        scale = r["total"] / largest
        for p in r["parts"]:
            p["width"], p["x_scaled"] = p["share"] * scale, p["x"] * scale
    return rows


def flows(people: pd.DataFrame, neighbourhood: str, below: int = 0) -> list[dict[str, Any]]:
    """This month's movements into and between segments in the neighbourhood (people who stayed
    put are left out), largest first, with bar widths relative to the largest; counts below
    `below` worded as "fewer than N"."""
    seg = _segments(people)
    table = segment_flows(seg[seg["neighbourhood"] == neighbourhood]) if len(seg) else None
    if table is None or table.empty:
        return []
    moved = table[table["from_segment"] != table["to_segment"]].sort_values(
        "people", ascending=False
    )
    largest = int(moved["people"].max()) if len(moved) else 1
    return [
        {
            "sentence": flow_sentence(r.from_segment, r.to_segment, suppressed(r.people, below)),
            "people": int(r.people),
            "width": 100.0 * int(r.people) / largest,
            "colour": COLOURS[r.to_segment],
            "joined": r.from_segment == NOT_IN_LAST_RUN,
        }
        for r in moved.itertuples()
    ]


def risk_by_segment(
    people: pd.DataFrame, neighbourhood: str, bands: list[str]
) -> list[dict[str, Any]]:
    """Per segment, the neighbourhood's people in each risk band (a 100% stacked bar)."""
    seg = _segments(people)
    here = seg[seg["neighbourhood"] == neighbourhood]
    out = []
    for key, words in SEGMENTS.items():
        counts = here.loc[here["segment"] == key, "band"].value_counts()
        total = int(counts.sum())
        parts, x = [], 0.0
        for i, band in enumerate(bands):
            n = int(counts.get(band, 0))
            share = 100.0 * n / total if total else 0.0
            parts.append({"band": band, "people": n, "share": share, "x": x,
                          "colour": BAND_COLOURS[i % len(BAND_COLOURS)]})  # fmt: skip
            x += share
        out.append({"key": key, "words": words, "total": total, "parts": parts})
    return out


def beside_place(people: pd.DataFrame, neighbourhood: str) -> list[dict[str, Any]]:
    """The neighbourhood's segment shares beside the whole place's."""
    seg = _segments(people)
    here = seg[seg["neighbourhood"] == neighbourhood]
    return [
        {"label": neighbourhood, **_stack(here["segment"].value_counts().to_dict())},
        {"label": "whole place", **_stack(seg["segment"].value_counts().to_dict())},
    ]


def segments_view(
    people: pd.DataFrame,
    runs: list[tuple[str, pd.DataFrame]],
    neighbourhood: str,
    bands: list[str],
    below: int = 0,
) -> dict[str, Any]:
    """Everything the segments page shows for `neighbourhood` in this month's run `people`
    (`runs`: every scored month's run, for the sizes over time); counts as `/segments` gives
    them, small ones suppressed below `below` (`scoring.disclosure`)."""
    counts = segment_counts(_segments(people))
    here = counts[counts["neighbourhood"] == neighbourhood]
    return {
        "segment_words": SEGMENTS,
        "colours": COLOURS,
        "counts": suppressed_group({r.segment: int(r.people) for r in here.itertuples()}, below),
        "rising_risk": suppressed(here["rising_risk"].sum(), below),
        "moved": suppressed(here["moved"].sum(), below),
        "total": suppressed(here["people"].sum(), below),
        "over_months": sizes_over_months(runs, neighbourhood),
        "flows": flows(people, neighbourhood, below),
        "risk": risk_by_segment(people, neighbourhood, bands),
        "beside": beside_place(people, neighbourhood),
        "bands": list(zip(bands, BAND_COLOURS, strict=False)),
    }
