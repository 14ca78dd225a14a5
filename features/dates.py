"""Index dates: which dates features can be built for, and the date arithmetic behind windows."""

from __future__ import annotations

import re
from datetime import date, timedelta

from records import Manifest


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
) -> None:
    """Raise `FeatureError` unless `index_date` can be scored with this extract.

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
            f"({history_start}, its earliest record or registration); no records precede it"
        )


def sql_date(day: date) -> str:
    """A date as a standard SQL literal."""
    return f"DATE '{day.isoformat()}'"
