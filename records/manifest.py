"""The extract's `manifest.json`: extract date and per-table completeness dates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from records.contract import TABLES

MANIFEST_NAME = "manifest.json"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class ExtractError(Exception):
    """A whole-file problem that makes the extract unusable; the message names the file."""


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` says: the last day covered, and per table the last complete day."""

    extract_date: date
    complete_to: dict[str, date] = field(default_factory=dict)

    def complete_to_for(self, table: str) -> date:
        """The last day whose records of `table` are complete (extract_date unless stated)."""
        if table not in TABLES:
            raise KeyError(f"{table!r} is not a contract table")
        return self.complete_to.get(table, self.extract_date)


def _parse_date(value: object, what: str) -> date:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ExtractError(f"{MANIFEST_NAME}: {what} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ExtractError(f"{MANIFEST_NAME}: {what} is not a valid date") from None


def read_manifest(folder: Path) -> Manifest:
    """Read and check `folder/manifest.json`; raise `ExtractError` naming the problem."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ExtractError(f"{MANIFEST_NAME}: missing from {folder}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ExtractError(f"{MANIFEST_NAME}: not UTF-8 text") from None
    return parse_manifest(text)


def parse_manifest(text: str) -> Manifest:
    """The manifest in `text` (the JSON of `manifest.json`), checked; `ExtractError` naming the
    problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExtractError(
            f"{MANIFEST_NAME}: not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise ExtractError(f"{MANIFEST_NAME}: expected a JSON object")
    if "extract_date" not in data:
        raise ExtractError(f"{MANIFEST_NAME}: missing 'extract_date'")
    extract_date = _parse_date(data["extract_date"], "extract_date")

    raw = data.get("complete_to") or {}
    if not isinstance(raw, dict):
        raise ExtractError(f"{MANIFEST_NAME}: 'complete_to' must be an object of table: date")
    complete_to: dict[str, date] = {}
    for table, value in raw.items():
        if table not in TABLES:
            raise ExtractError(f"{MANIFEST_NAME}: complete_to names unknown table {table!r}")
        day = _parse_date(value, f"complete_to[{table!r}]")
        if day > extract_date:
            raise ExtractError(
                f"{MANIFEST_NAME}: complete_to[{table!r}] {day} "
                f"is after extract_date {extract_date}"
            )
        complete_to[table] = day
    return Manifest(extract_date=extract_date, complete_to=complete_to)
