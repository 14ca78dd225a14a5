"""The list table of a run, built once, and its files for neighbourhood teams: CSV, XLSX (one
sheet per neighbourhood) and JSON.

`list_table` is the one builder: `casefinder lists` and the page downloads (`/ui/list.csv`,
`/ui/list.xlsx`) both write it with `export_bytes`, so a team gets the same columns, wording and
order whichever way and in whichever format it downloads a month's list. CSV and XLSX carry the
same columns with headers in words (`FILE_HEADERS`: month, index date, the list, the model and
run it comes from on every row), flags once, in `features.cohort.LIST_FLAGS`' words, and risk as
the pages show it ("83.0%"). The XLSX adds an About sheet (month, model, run, legend of flags and
bands), date and percentage cells and print setup for an MDT. Every text cell of a CSV or XLSX
file that a spreadsheet would read as a formula is written as text (`neutralise`).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from features.cohort import LIST_FLAGS, REVIEW_OUTCOMES

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
# The columns of a CSV or XLSX file, in order, and their headers: the month and index date, the
# list (flags once, in words) and the model and run it comes from, on every row.
FILE_HEADERS: dict[str, str] = {
    "month": "Month",
    "index_date": "Index date",
    "neighbourhood": "Neighbourhood",
    "rank": "Rank",
    "person_id": "Person ID",
    "practice": "GP practice",
    "probability": "Risk",
    "band": "Risk band",
    "flags": "Flags",
    "previous_probability": "Risk last month",
    "reasons": "Main reasons",
    "latest_review": "MDT decision",
    "latest_review_month": "MDT decision month",
    "model_version": "Model version",
    "run_id": "Run",
    "run_status": "Run status",
}
FILE_COLUMNS = list(FILE_HEADERS.values())
PERCENT_COLUMNS = ("probability", "previous_probability")
_WIDTHS = {"reasons": 80, "flags": 28, "person_id": 14, "neighbourhood": 16, "run_id": 34}
ABOUT_SHEET = "About"


def percent(value: Any) -> str:
    """A probability as the pages show it: 0.8301 -> "83.0%" (blank when missing)."""
    return "" if value is None or pd.isna(value) else f"{100 * float(value):.1f}%"


def run_status(meta: dict[str, Any]) -> str:
    """ "current" or "superseded": whether the run is its month's current run."""
    return "current" if meta.get("current") else "superseded"


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
    """`table` (from `list_table`) with the `FILE_HEADERS` keys as columns: the month, index date
    (a date), model version and run on every row, probabilities as numbers, every text cell
    `neutralise`d (the one table CSV and XLSX files are written from)."""
    out = table[[c for c in LIST_COLUMNS if c not in LIST_FLAGS]].copy()
    out.insert(0, "month", str(meta["month"]))
    out.insert(1, "index_date", pd.Timestamp(meta["index_date"]).date())
    out["model_version"] = str(meta["model"]["version"])
    out["run_id"] = meta["run_id"]
    out["run_status"] = run_status(meta)
    out["latest_review"] = out["latest_review"].map(REVIEW_OUTCOMES.get).astype(object)
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise).astype(out[column].dtype)
    return out[list(FILE_HEADERS)]


def _csv(table: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    """The file table with word headers, percentages as the pages show them, ISO dates; no
    comment lines (a spreadsheet would show them as data)."""
    rows = file_table(table, meta)
    for column in PERCENT_COLUMNS:
        rows[column] = rows[column].map(percent)
    rows["index_date"] = rows["index_date"].map(str)
    return rows.rename(columns=FILE_HEADERS).to_csv(index=False).encode("utf-8")


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


def _about_rows(meta: dict[str, Any]) -> list[list[Any]]:
    """The About sheet: what the list is, which month, model and run it comes from, and the
    legend of flags and risk bands."""
    from features.cohort import LIST_FLAG_MEANINGS
    from models.risk_model import DEFAULT_BANDS

    model = meta["model"]
    risen_by = (meta.get("list_settings") or {}).get("risen_by")
    risen = f"{100 * risen_by:g} percentage points" if risen_by else "the set amount"
    relist_by = (meta.get("review_settings") or {}).get("relist_if_risen")
    relist = f"{100 * relist_by:g} percentage points" if relist_by else "the set amount"
    rows: list[list[Any]] = [
        ["casefinder MDT lists"],
        [],
        ["Month", str(meta["month"])],
        ["Index date", pd.Timestamp(meta["index_date"]).date()],
        ["Model", f"{model['name']} version {model['version']}"],
        ["Run", meta["run_id"]],
        ["Run status", run_status(meta)],
        ["Scored", str(meta.get("created", ""))[:19].replace("T", " ")],
        ["List rule", meta.get("rule") or ""],
        [],
        ["Risk", "chance of complex multi-agency need within 12 months (calibrated model)"],
        ["Main reasons", "what raises this person's risk most, largest first"],
        [],
        ["Flag", "Meaning"],
    ]
    rows += [
        [word, LIST_FLAG_MEANINGS[key].format(risen_by=risen, relist_if_risen=relist)]
        for key, word in LIST_FLAGS.items()
    ]
    bands = meta.get("bands") or [list(b) for b in DEFAULT_BANDS]
    rows += [[], ["Risk band", "Risk from"]]
    rows += [[name, float(low)] for name, low in bands]
    return rows


def _about_sheet(book: Any, meta: dict[str, Any]) -> None:
    from openpyxl.styles import Alignment, Font

    sheet = book.create_sheet(ABOUT_SHEET)
    for row in _about_rows(meta):
        sheet.append([neutralise(v) for v in row])
    sheet["A1"].font = Font(bold=True, size=14)
    for row in sheet.iter_rows():
        first = row[0]
        if first.value in ("Flag", "Risk band"):
            for cell in row:
                cell.font = Font(bold=True)
        elif first.value is not None and first.row > 1:
            first.font = Font(bold=True)
        for cell in row[1:]:
            cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal="left")
            if hasattr(cell.value, "year"):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(cell.value, float):
                cell.number_format = "0%"
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 80
    _print_setup(sheet, header_row=False)


def _print_setup(sheet: Any, header_row: bool = True) -> None:
    """Landscape A4, fitted to the page width, the header row repeated on every page."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    if header_row:
        sheet.print_title_rows = "1:1"


def _xlsx(table: pd.DataFrame, meta: dict[str, Any]) -> bytes:
    """An About sheet, then one sheet per neighbourhood in `FILE_HEADERS`: autofilter, frozen
    header row, set column widths, risk as a percentage, the index date as a date cell, wrapped
    flags and reasons, and print setup; the run in the file's properties and page header too."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    book.properties.title = f"casefinder MDT lists {meta['month']}"
    book.properties.subject = (
        f"run {meta['run_id']} ({run_status(meta)}), "
        f"model {meta['model']['name']} v{meta['model']['version']}"
    )
    _about_sheet(book, meta)
    rows = file_table(table, meta)
    keys = list(FILE_HEADERS)
    hoods = sorted(rows["neighbourhood"].dropna().unique()) or ["(none listed)"]
    used: set[str] = {ABOUT_SHEET.lower()}
    wrap = Alignment(wrap_text=True, vertical="top")
    top = Alignment(vertical="top")
    for hood in hoods:
        sheet = book.create_sheet(_sheet_name(str(hood), used))
        chosen = rows[rows["neighbourhood"] == hood]
        sheet.append(FILE_COLUMNS)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
            cell.alignment = wrap
        for record in chosen.itertuples(index=False):
            sheet.append([None if pd.isna(v) else v for v in record])
        last = get_column_letter(len(keys))
        sheet.auto_filter.ref = f"A1:{last}{len(chosen) + 1}"
        sheet.freeze_panes = "A2"
        for i, key in enumerate(keys, start=1):
            letter = get_column_letter(i)
            sheet.column_dimensions[letter].width = _WIDTHS.get(
                key, max(len(FILE_HEADERS[key]) + 2, 10)
            )
            formats = {"index_date": "yyyy-mm-dd"} | dict.fromkeys(PERCENT_COLUMNS, "0.0%")
            for cell in sheet[letter][1:]:
                cell.alignment = wrap if key in ("reasons", "flags") else top
                if key in formats:
                    cell.number_format = formats[key]
        _print_setup(sheet)
        sheet.oddHeader.center.text = (
            f"{hood}: MDT list {meta['month']} (model v{meta['model']['version']}, "
            f"run {meta['run_id']}, {run_status(meta)})"
        ).replace("&", "&&")
        sheet.oddFooter.right.text = "Page &P of &N"
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
        return _csv(table, meta)
    return _json(table, meta)


def write_export(table: pd.DataFrame, fmt: str, path: Path, meta: dict[str, Any]) -> Path:
    """Write `table` (from `list_table`) as csv, xlsx or json to `path`."""
    data = export_bytes(table, fmt, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
