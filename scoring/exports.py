"""The list table of a run, built once, and its files for neighbourhood teams: CSV, XLSX (one
sheet per neighbourhood) and JSON.

`list_table` is the one builder: `casefinder lists` and the page downloads (`/ui/list.csv`,
`/ui/list.xlsx`) both write it with `export_bytes`, so a team gets the same columns, wording and
order whichever way and in whichever format it downloads a month's list. CSV and XLSX carry the
same columns (`FILE_COLUMNS`: the list columns and the run they come from); flag words are
`features.cohort.LIST_FLAGS`'s. Every text cell of a CSV or XLSX file that a spreadsheet would
read as a formula is written as text (`neutralise`).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from features.cohort import LIST_FLAGS

FORMATS = ("csv", "xlsx", "json")
# The columns of the list table, in order.
LIST_COLUMNS = [
    "neighbourhood",
    "rank",
    "person_id",
    "practice",
    "probability",
    "band",
    "flags",
    *LIST_FLAGS,
    "previous_probability",
    "reasons",
    # The MDT's latest decision for the person (any month's list) and the month it was made on.
    "latest_review",
    "latest_review_month",
]
# The columns of a CSV or XLSX file, in order: the month, the list, and the run it comes from.
FILE_COLUMNS = ["month", *LIST_COLUMNS, "run_id", "current_run", "model_version"]
_WIDTHS = {"reasons": 100, "flags": 40, "person_id": 18, "neighbourhood": 20, "band": 11}


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A cell value safe to open in a spreadsheet: text that would start a formula gets a leading
    single quote (the OWASP advice); numbers, including negative ones, stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def flag_keys(row: Any) -> list[str]:
    """The `LIST_FLAGS` keys set for one person (a run row: Series or dict; missing is unset)."""
    return [key for key in LIST_FLAGS if _true(row.get(key))]


def flag_text(row: Any) -> str:
    """The flags of one listed person in `LIST_FLAGS`'s words, e.g. "new this month; risk risen"."""
    return "; ".join(LIST_FLAGS[key] for key in flag_keys(row))


def _true(value: Any) -> bool:
    return value is not None and not pd.isna(value) and bool(value)


def list_table(
    people: pd.DataFrame,
    neighbourhood: str | None = None,
    flag: str | None = None,
    reviews: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The listed people of a run's per-person table, in `LIST_COLUMNS` (and `reasons_json`), by
    neighbourhood and rank; only `neighbourhood`'s and only those with `flag` when given; with
    each person's latest MDT decision from `reviews` (the reviews table: person_id, month,
    outcome, id). Raise ValueError naming an unknown neighbourhood or flag."""
    if flag is not None and flag not in LIST_FLAGS:
        raise ValueError(f"unknown flag {flag!r}; flags are {', '.join(LIST_FLAGS)}")
    if neighbourhood is not None:
        known = set(people["neighbourhood"].dropna())
        if neighbourhood not in known:
            raise ValueError(
                f"no neighbourhood {neighbourhood!r} in this run; known: {', '.join(sorted(known))}"
            )
        people = people[people["neighbourhood"] == neighbourhood]
    listed = people[people["listed"].fillna(False).astype(bool)]
    if flag is not None:  # a run stored before a flag existed has none set
        listed = listed[listed.get(flag, pd.Series(False, index=listed.index)).fillna(False)]
    listed = listed.sort_values(["neighbourhood", "rank"])
    table = listed.rename(columns={"gp_practice_code": "practice"}).reset_index(drop=True)
    table["flags"] = table.apply(flag_text, axis=1) if len(table) else pd.Series(dtype="string")
    for key in LIST_FLAGS:
        table[key] = table[key].fillna(False).astype(bool) if key in table else False
    table["rank"] = table["rank"].astype(int)
    table["probability"] = table["probability"].round(4)
    table["previous_probability"] = table["previous_probability"].astype(float).round(4)
    latest = _latest_reviews(reviews)
    where = table["person_id"].astype(str)
    table["latest_review"] = where.map(latest["outcome"]) if len(latest) else None
    table["latest_review_month"] = where.map(latest["month"]) if len(latest) else None
    for column in ("neighbourhood", "person_id", "practice", "band", "reasons", "reasons_json",
                   "latest_review", "latest_review_month"):  # fmt: skip
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table[[*LIST_COLUMNS, "reasons_json"]]


def _latest_reviews(reviews: pd.DataFrame | None) -> pd.DataFrame:
    """person_id -> outcome and month of their latest review."""
    if reviews is None or not len(reviews):
        return pd.DataFrame(columns=["outcome", "month"])
    ordered = reviews.sort_values("id")
    return ordered.groupby(ordered["person_id"].astype(str))[["outcome", "month"]].last()


def file_table(table: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """`table` (from `list_table`) in `FILE_COLUMNS`: with the month and the run on every row,
    every text cell `neutralise`d (the one table CSV and XLSX files are written from)."""
    out = table[LIST_COLUMNS].copy()
    out.insert(0, "month", str(meta["month"]))
    out["run_id"] = meta["run_id"]
    out["current_run"] = bool(meta.get("current"))
    out["model_version"] = str(meta["model"]["version"])
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise).astype(out[column].dtype)
    return out[FILE_COLUMNS]


def export_filename(month: str, neighbourhood: str | None, fmt: str) -> str:
    """The file name a month's lists (or one neighbourhood's) are saved under by default."""
    suffix = f"-{neighbourhood}" if neighbourhood else ""
    return f"casefinder-lists-{month}{suffix}.{fmt}".replace(" ", "_").replace("/", "-")


def _sheet_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "-", name).strip("'") or "blank"
    base = base[:31]
    candidate, n = base, 2
    while candidate.lower() in used:
        suffix = f" ({n})"
        candidate, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(candidate.lower())
    return candidate


def _xlsx(table: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    """One sheet per neighbourhood in `FILE_COLUMNS`, with autofilter, frozen header row and set
    column widths; the run in the file's properties too."""
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
    rows = file_table(table, meta)
    hoods = sorted(rows["neighbourhood"].dropna().unique()) or ["(none listed)"]
    probability = get_column_letter(FILE_COLUMNS.index("probability") + 1)
    used: set[str] = set()
    for hood in hoods:
        sheet = book.create_sheet(_sheet_name(str(hood), used))
        chosen = rows[rows["neighbourhood"] == hood]
        sheet.append(FILE_COLUMNS)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for record in chosen.itertuples(index=False):
            sheet.append([None if pd.isna(v) else v for v in record])
        last = get_column_letter(len(FILE_COLUMNS))
        sheet.auto_filter.ref = f"A1:{last}{len(chosen) + 1}"
        sheet.freeze_panes = "A2"
        for i, column in enumerate(FILE_COLUMNS, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = _WIDTHS.get(
                column, max(len(column) + 2, 10)
            )
        for cell in sheet[probability][1:]:
            cell.number_format = "0.000"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _json(table: pd.DataFrame, meta: dict[str, Any]) -> bytes:
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
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def export_bytes(table: pd.DataFrame, fmt: str, meta: dict[str, Any]) -> bytes:
    """`table` (from `list_table`) as a csv, xlsx or json file's bytes; `meta` is the run's."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "xlsx":
        return _xlsx(table, meta)
    if fmt == "csv":
        return file_table(table, meta).to_csv(index=False).encode("utf-8")
    return _json(table, meta)


def write_export(table: pd.DataFrame, fmt: str, path: Path, meta: dict[str, Any]) -> Path:
    """Write `table` (from `list_table`) as csv, xlsx or json to `path`."""
    data = export_bytes(table, fmt, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
