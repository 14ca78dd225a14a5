"""Months as the monthly run knows them: `YYYY-MM`, scored at the first day of the month."""

from __future__ import annotations

import re
from datetime import date

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def parse_month(month: str) -> str:
    """Check `month` is `YYYY-MM` and return it; raise ValueError naming the problem."""
    match = _MONTH.fullmatch(month.strip()) if isinstance(month, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"month {month!r} is not a month (YYYY-MM, e.g. 2026-11)")
    return f"{match.group(1)}-{match.group(2)}"


def index_date(month: str) -> date:
    """The index date of a monthly run: the first day of `month`."""
    year, mon = parse_month(month).split("-")
    return date(int(year), int(mon), 1)


def previous_month(month: str) -> str:
    """The month before `month`, as `YYYY-MM`."""
    day = index_date(month)
    year, mon = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return f"{year:04d}-{mon:02d}"
