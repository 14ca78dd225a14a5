"""Exports of a run's lists for neighbourhood teams: CSV, XLSX (one sheet per neighbourhood) and
JSON. Every export carries the run id and whether the run is its month's current run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

FORMATS = ("csv", "xlsx", "json")
# The columns of a list export, in order.
LIST_COLUMNS = [
    "neighbourhood",
    "rank",
    "person_id",
    "practice",
    "probability",
    "band",
    "flags",
    "new_this_month",
    "on_last_month_list",
    "risk_risen",
    "previous_probability",
    "reasons",
]
_WIDTHS = {"reasons": 100, "flags": 40, "person_id": 18, "neighbourhood": 20, "band": 11}


def flag_text(row: pd.Series) -> str:
    """The flags of one listed person in words, e.g. "new; risk risen (+0.12)"."""
    parts = []
    if row["new_this_month"]:
        parts.append("new")
    if row["on_last_month_list"]:
        parts.append("on last month's list")
    if row["risk_risen"]:
        parts.append(f"risk risen (+{row['probability'] - row['previous_probability']:.2f})")
    return "; ".join(parts)


def list_table(people: pd.DataFrame, neighbourhood: str | None = None) -> pd.DataFrame:
    """The listed people of a run's per-person table, in export columns, by neighbourhood and
    rank. Raise ValueError naming an unknown neighbourhood."""
    if neighbourhood is not None:
        known = set(people["neighbourhood"].dropna())
        if neighbourhood not in known:
            raise ValueError(
                f"no neighbourhood {neighbourhood!r} in this run; known: {', '.join(sorted(known))}"
            )
        people = people[people["neighbourhood"] == neighbourhood]
    listed = people[people["listed"]].sort_values(["neighbourhood", "rank"])
    table = listed.rename(columns={"gp_practice_code": "practice"}).reset_index(drop=True)
    table["flags"] = table.apply(flag_text, axis=1) if len(table) else pd.Series(dtype="string")
    table["rank"] = table["rank"].astype(int)
    table["probability"] = table["probability"].round(4)
    table["previous_probability"] = table["previous_probability"].astype(float).round(4)
    for column in ("neighbourhood", "person_id", "practice", "band", "reasons", "reasons_json"):
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table[[*LIST_COLUMNS, "reasons_json"]]


def _sheet_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "-", name).strip("'") or "blank"
    base = base[:31]
    candidate, n = base, 2
    while candidate.lower() in used:
        suffix = f" ({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(candidate.lower())
    return candidate


def write_xlsx(table: pd.DataFrame, path: Path, meta: dict[str, Any]) -> Path:
    """One sheet per neighbourhood, with autofilter, frozen header row and set column widths."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    book.properties.title = f"casefinder MDT lists {meta['month']}"
    book.properties.subject = (
        f"run {meta['run_id']} ({'current' if meta.get('current') else 'not current'}), "
        f"model {meta['model']['name']} v{meta['model']['version']}"
    )
    hoods = sorted(table["neighbourhood"].dropna().unique()) or ["(none listed)"]
    used: set[str] = set()
    for hood in hoods:
        sheet = book.create_sheet(_sheet_name(str(hood), used))
        rows = table.loc[table["neighbourhood"] == hood, LIST_COLUMNS]
        sheet.append(LIST_COLUMNS)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for record in rows.itertuples(index=False):
            sheet.append([None if pd.isna(v) else v for v in record])
        last = get_column_letter(len(LIST_COLUMNS))
        sheet.auto_filter.ref = f"A1:{last}{max(len(rows), 0) + 1}"
        sheet.freeze_panes = "A2"
        for i, column in enumerate(LIST_COLUMNS, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(
                column, max(len(column) + 2, 10)
            )
        for row in sheet.iter_rows(min_row=2, min_col=5, max_col=5):
            row[0].number_format = "0.000"
    book.save(path)
    return path


def write_export(table: pd.DataFrame, fmt: str, path: Path, meta: dict[str, Any]) -> Path:
    """Write `table` (from `list_table`) as csv, xlsx or json to `path`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        return write_xlsx(table, path, meta)
    if fmt == "csv":
        out = table[LIST_COLUMNS].copy()
        out.insert(0, "month", meta["month"])
        out["run_id"] = meta["run_id"]
        out["current_run"] = bool(meta.get("current"))
        out.to_csv(path, index=False)
        return path
    records = json.loads(table[LIST_COLUMNS].to_json(orient="records"))
    for record, reasons in zip(records, table["reasons_json"], strict=True):
        record["reasons"] = json.loads(reasons) if reasons else []
    document = {
        "month": meta["month"],
        "run_id": meta["run_id"],
        "current_run": bool(meta.get("current")),
        "model": meta["model"],
        "rule": meta.get("rule"),
        "people": records,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    return path
