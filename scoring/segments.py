"""Population segments in a run (pure steps): each person's segment (the one definition,
`features.segments`), movement since last month's run, the rising-risk group within fit and well,
counts and flows per neighbourhood, and the one export table.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import SegmentSettings
from features.segments import RISING_RISK, SEGMENTS, assign_segments

# The columns of a segments export, in order (`casefinder segments`, POST /segments rows).
EXPORT_COLUMNS = [
    "person_id",
    "neighbourhood",
    "gp_practice_code",
    "segment",
    "segment_reason",
    "probability",
    "band",
]
SEGMENT_COLUMNS = ["segment", "segment_reason", "previous_segment", "moved_segment", "rising_risk"]
NOT_IN_LAST_RUN = "not segmented last month"


class SegmentsMissing(ValueError):
    """A stored run written before runs kept segments."""


def segment_people(
    people: pd.DataFrame,
    features: pd.DataFrame,
    index_date: date,
    settings: SegmentSettings,
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The segment columns for the run's per-person table `people` (same rows as `features`):
    segment, segment_reason, previous_segment (last month's current run; missing when the
    person was not segmented then), moved_segment, rising_risk (within fit and well: at most
    `rising_risk_people` per neighbourhood whose probability rose most, by at least
    `rising_risk_min_rise`)."""
    out = assign_segments(features, people["probability"].to_numpy(float), index_date, settings)
    out.index = people.index
    movement = segment_movement(people, out["segment"], settings, previous)
    return pd.concat([out, movement], axis=1)


def segment_movement(
    people: pd.DataFrame,
    segment: pd.Series,
    settings: SegmentSettings,
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """previous_segment, moved_segment and rising_risk for the run's per-person table `people`
    (with previous_probability) whose segments are `segment`, against last month's current run
    `previous` (person_id and segment; None when there is none): the segment columns that
    depend on the month before, recomputed when an earlier month is scored later."""
    out = pd.DataFrame(index=people.index)
    prev = pd.Series(pd.NA, index=people.index, dtype="string")
    if previous is not None and len(previous) and "segment" in previous.columns:
        pos = pd.Index(previous["person_id"].astype(str)).get_indexer(
            people["person_id"].astype(str)
        )
        found = pos >= 0
        values = previous["segment"].astype("string").to_numpy(dtype=object)
        prev.iloc[np.flatnonzero(found)] = values[pos[found]]
    out["previous_segment"] = prev
    segment = segment.astype("string")
    moved = prev.notna() & segment.notna() & (prev != segment)
    out["moved_segment"] = moved.fillna(False).astype(bool)
    out["rising_risk"] = rising_risk(people, segment, settings)
    return out


def rising_risk(people: pd.DataFrame, segment: pd.Series, settings: SegmentSettings) -> pd.Series:
    """True for the rising-risk group: fit and well people with the largest rise in
    probability since last month in their neighbourhood (ties by person_id)."""
    rise = people["probability"].to_numpy(float) - people["previous_probability"].to_numpy(float)
    pool = (segment == "fit_and_well").fillna(False).to_numpy(bool) & (
        np.nan_to_num(rise, nan=-1.0) >= settings.rising_risk_min_rise - 1e-12
    )
    out = pd.Series(False, index=people.index)
    if not pool.any() or settings.rising_risk_people == 0:
        return out
    frame = pd.DataFrame(
        {
            "hood": people["neighbourhood"].astype(object).to_numpy()[pool],
            "rise": rise[pool],
            "pid": people["person_id"].astype(str).to_numpy()[pool],
            "row": np.flatnonzero(pool),
        }
    ).sort_values(["hood", "rise", "pid"], ascending=[True, False, True])
    top = frame.groupby("hood", dropna=False).head(settings.rising_risk_people)
    out.iloc[top["row"].to_numpy()] = True
    return out


def segment_counts(people: pd.DataFrame) -> pd.DataFrame:
    """neighbourhood, segment, people, rising_risk, moved: one row per neighbourhood and segment
    (every segment, zero when empty), for the segmented people only."""
    seg = people[people["segment"].notna()]
    hoods = sorted(people["neighbourhood"].dropna().astype(str).unique())
    grid = pd.MultiIndex.from_product([hoods, list(SEGMENTS)], names=["neighbourhood", "segment"])
    grouped = seg.assign(
        neighbourhood=seg["neighbourhood"].astype(str), segment=seg["segment"].astype(str)
    ).groupby(["neighbourhood", "segment"])
    counts = pd.DataFrame(
        {
            "people": grouped.size(),
            "rising_risk": grouped["rising_risk"].sum(),
            "moved": grouped["moved_segment"].sum(),
        }
    ).reindex(grid, fill_value=0)
    return counts.astype(int).reset_index()


def segment_flows(people: pd.DataFrame) -> pd.DataFrame:
    """neighbourhood, from_segment, to_segment, people: where this month's segmented people
    were last month (`NOT_IN_LAST_RUN` when they were not segmented then); staying in the same
    segment is a flow too."""
    seg = people[people["segment"].notna()]
    frame = pd.DataFrame(
        {
            "neighbourhood": seg["neighbourhood"].astype(str),
            "from_segment": seg["previous_segment"].astype(object).fillna(NOT_IN_LAST_RUN),
            "to_segment": seg["segment"].astype(str),
        }
    )
    flows = frame.groupby(["neighbourhood", "from_segment", "to_segment"]).size()
    return flows.rename("people").reset_index()


def flow_sentence(from_segment: str, to_segment: str, people: int | str) -> str:
    """ "31 people moved from fit and well to high risk and independent"; a suppressed count
    ("<5", scoring/disclosure.py) reads "fewer than 5 people"."""
    if isinstance(people, str):
        who = f"fewer than {people.removeprefix('<')} people"
    else:
        who = "1 person" if people == 1 else f"{people:,} people"
    if from_segment == NOT_IN_LAST_RUN:
        return f"{who} joined {SEGMENTS[to_segment]} (not segmented last month)"
    if from_segment == to_segment:
        return f"{who} stayed in {SEGMENTS[to_segment]}"
    return f"{who} moved from {SEGMENTS[from_segment]} to {SEGMENTS[to_segment]}"


def segments_meta(people: pd.DataFrame, settings: SegmentSettings) -> dict:
    """The run's segment summary for run.json: settings, counts per neighbourhood and segment,
    and flows."""
    counts = segment_counts(people)
    flows = segment_flows(people)
    return {
        "settings": settings.model_dump(),
        "segmented": int(people["segment"].notna().sum()),
        "rising_risk": int(people["rising_risk"].sum()),
        "moved": int(people["moved_segment"].sum()),
        "counts": counts.to_dict(orient="records"),
        "flows": flows.to_dict(orient="records"),
        "group_words": {**SEGMENTS, "rising_risk": RISING_RISK},
    }


def segment_table(people: pd.DataFrame, run_id: str = "") -> pd.DataFrame:
    """One row per segmented person of a run, `EXPORT_COLUMNS` then previous_segment,
    moved_segment, rising_risk; ordered by neighbourhood, segment (in `SEGMENTS` order) and
    person_id. SegmentsMissing for a run stored before runs kept segments."""
    if "segment" not in people.columns:
        raise SegmentsMissing(
            f"run {run_id!r} has no segments: it was stored before runs kept them; score its "
            "month again to add them"
        )
    seg = people[people["segment"].notna()].reset_index(drop=True)
    order = {k: i for i, k in enumerate(SEGMENTS)}
    seg["_order"] = seg["segment"].map(order)
    seg = seg.sort_values(["neighbourhood", "_order", "person_id"], kind="stable")
    columns = EXPORT_COLUMNS + [c for c in SEGMENT_COLUMNS[2:] if c in seg.columns]
    return seg[columns].reset_index(drop=True)


SEGMENT_FORMATS = (".csv", ".parquet", ".xlsx")


def write_segments(table: pd.DataFrame, path: Path) -> Path:
    """Write a `segment_table` to `path`, as its suffix says (.csv, .parquet or .xlsx: one sheet,
    a frozen header row and filters); ValueError naming the suffix otherwise."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SEGMENT_FORMATS:
        raise ValueError(
            f"{path.name}: choose a file ending {', '.join(SEGMENT_FORMATS)} for the segments"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            table.to_excel(writer, sheet_name="segments", index=False)
            sheet = writer.sheets["segments"]
            sheet.freeze_panes = "A2"
            sheet.auto_filter.ref = sheet.dimensions
            widths = {"segment_reason": 60, "segment": 24, "neighbourhood": 20, "person_id": 18}
            for i, column in enumerate(table.columns, start=1):
                letter = sheet.cell(row=1, column=i).column_letter
                sheet.column_dimensions[letter].width = widths.get(column, 14)
    return path
