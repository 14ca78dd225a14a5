"""The calendar, written once: months, index dates, the extract's history start, and the date
arithmetic behind every window.

A month (`Month`, `YYYY-MM`) is parsed once at the edge (CLI, API, pages) and passed as that type;
its index date is its first day. An index date is checked against an extract once
(`check_extract_index_date`), giving an `IndexDate` that later steps take without checking again.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING

from records import Manifest
from records.contract import TABLES

if TYPE_CHECKING:
    from records import Extract

# A month as the monthly run names it; the API schema and the pages use the same pattern.
MONTH_PATTERN = r"[0-9]{4}-(0[1-9]|1[0-2])"


class FeatureError(ValueError):
    """A request the features stage cannot answer correctly; the message says what is wrong."""


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months, clamped to the end of a shorter month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


class Month(str):
    """A calendar month, `YYYY-MM` (a `str`, so it keys stores and JSON as it is); constructing
    one validates it, with `FeatureError` naming the value."""

    def __new__(cls, value: object) -> Month:
        if isinstance(value, Month):
            return value
        text = value.strip() if isinstance(value, str) else None
        if text is None or not re.fullmatch(MONTH_PATTERN, text):
            raise FeatureError(f"month {value!r} is not a month (YYYY-MM, e.g. 2026-11)")
        return super().__new__(cls, text)

    @classmethod
    def of(cls, day: date) -> Month:
        """The month `day` falls in."""
        return cls(f"{day.year:04d}-{day.month:02d}")

    @property
    def index_date(self) -> date:
        """The index date of the month's run: its first day."""
        return date(int(self[:4]), int(self[5:7]), 1)

    def previous(self) -> Month:
        """The month before."""
        return Month.of(add_months(self.index_date, -1))


class IndexDate(date):
    """An index date already checked against an extract by `check_index_date` (first of a month,
    after the extract's history start, no later than the day after its extract date)."""


def first_of_next_month(day: date) -> date:
    """The first day of the month after `day`'s month (or `day` if it already is a first)."""
    return day if day.day == 1 else add_months(day.replace(day=1), 1)


def parse_every(every: str) -> int:
    """Months between index dates for a step like "1M", "3M", "12M" or "1Y"."""
    match = re.fullmatch(r"\s*([1-9][0-9]*)\s*([MY])\s*", every.upper())
    if not match:
        raise FeatureError(f"step {every!r} is not a number of months or years (e.g. 3M, 1Y)")
    n = int(match.group(1))
    return n * 12 if match.group(2) == "Y" else n


def index_dates(start: date, end: date, every: str = "3M") -> list[date]:
    """First days of months from `start` (moved to the next first of a month) to `end`, every
    `every` months, both ends included."""
    step = parse_every(every)
    if end < start:
        raise FeatureError(f"index date range ends ({end}) before it starts ({start})")
    day, out = first_of_next_month(start), []
    while day <= end:
        out.append(day)
        day = add_months(day, step)
    if not out:
        raise FeatureError(f"no first day of a month between {start} and {end}")
    return out


def check_index_date(
    manifest: Manifest, index_date: date, history_start: date | None = None
) -> IndexDate:
    """`index_date` as an `IndexDate`; `FeatureError` unless it can be scored with this extract.

    An index date is the first day of a month, no later than the day after `extract_date` (the
    usual monthly run), and after the first day of the extract's history when that is given
    (nothing would precede it).
    """
    if not isinstance(index_date, date):
        raise FeatureError(f"index date {index_date!r} is not a date")
    if index_date.day != 1:
        raise FeatureError(f"index date {index_date} is not the first day of a month")
    latest = manifest.extract_date + timedelta(days=1)
    if index_date > latest:
        raise FeatureError(
            f"index date {index_date} is after the day after the extract date "
            f"({manifest.extract_date}); the latest index date this extract supports is {latest}"
        )
    if history_start is not None and index_date <= history_start:
        raise FeatureError(
            f"index date {index_date} is not after the start of the extract's history "
            f"({history_start}, its earliest record); no records precede it"
        )
    return IndexDate(index_date.year, index_date.month, index_date.day)


def history_start(extract: Extract) -> date | None:
    """The start of the extract's history: its earliest record date in any dated table (None if
    it holds none). Registration starts are facts about a person, not records the extract holds,
    so they do not count."""
    parts = [
        f"SELECT min({t.date_column}) AS d FROM {t.name}"
        for t in TABLES.values()
        if t.date_column is not None
    ]
    [(earliest,)] = extract.rows(f"SELECT min(d) FROM ({' UNION ALL '.join(parts)}) AS u")
    return earliest


def check_extract_index_date(extract: Extract, index_date: date) -> IndexDate:
    """`index_date` checked against this extract once: an `IndexDate` is returned as it is."""
    if isinstance(index_date, IndexDate):
        return index_date
    start = history_start(extract)
    if start is None:
        raise FeatureError(f"{extract.path.name}: the extract holds no dated records")
    return check_index_date(extract.manifest, index_date, start)


def sql_date(day: date) -> str:
    """A date as a standard SQL literal."""
    return f"DATE '{day.isoformat()}'"
