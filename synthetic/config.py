"""What to generate: population size, seed, history, output format and oracle index dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

FORMATS = ("parquet", "csv")
MAX_PEOPLE = 20_000_000


def add_months(day: date, months: int) -> date:
    """The same day-of-month `months` later (only used with the 1st of a month)."""
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, day.day)


def window_end(index_date: date) -> date:
    """Last day of the outcome window starting at `index_date` (D + 12 months - 1 day)."""
    return add_months(index_date, 12) - timedelta(days=1)


def social_care_complete_to(end: date) -> date:
    """Social care records arrive about two weeks late (manifest `complete_to`)."""
    return end - timedelta(days=16)


def prescriptions_complete_to(end: date) -> date:
    """Prescribing data are complete to the end of the month before the extract month."""
    return end.replace(day=1) - timedelta(days=1)


@dataclass
class SynthConfig:
    """Settings for one synthetic extract. `end` is the manifest's extract_date."""

    people: int = 10_000
    seed: int = 1
    start: date = date(2021, 11, 1)
    end: date = date(2026, 10, 31)
    messy: bool = False
    file_format: str = "parquet"
    # Index dates for oracle.parquet; None means the first day of each quarter whose whole
    # 12-month window lies inside the history (and before the outcome tables' complete_to).
    oracle_dates: tuple[date, ...] | None = None

    def months(self) -> int:
        """Months simulated: from `start`'s month to `end`'s month inclusive."""
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    def last_window_end(self) -> date:
        """The latest day an oracle window may reach (outcome tables complete to it)."""
        return min(self.end, social_care_complete_to(self.end))

    def index_dates(self) -> tuple[date, ...]:
        """The oracle index dates (the default rule when `oracle_dates` is None)."""
        if self.oracle_dates is not None:
            return tuple(sorted(self.oracle_dates))
        out = []
        day = date(self.start.year, self.start.month, 1)
        while window_end(day) <= self.last_window_end():
            if day >= self.start and day.month in (1, 4, 7, 10):
                out.append(day)
            day = add_months(day, 1)
        return tuple(out)

    def validate(self) -> None:
        """Raise ValueError naming the first setting that cannot be used."""
        if not isinstance(self.people, int) or not 1 <= self.people <= MAX_PEOPLE:
            raise ValueError(f"people must be a whole number from 1 to {MAX_PEOPLE:,}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError("seed must be a whole number >= 0")
        if self.start.day != 1:
            raise ValueError(f"start must be the first day of a month (got {self.start})")
        if self.start.year < 1990:
            raise ValueError(f"start must be in 1990 or later (got {self.start})")
        if self.end < add_months(self.start, 1):
            raise ValueError(
                f"end ({self.end}) must be at least one month after start ({self.start})"
            )
        if self.file_format not in FORMATS:
            raise ValueError(
                f"file_format must be one of {', '.join(FORMATS)} (got {self.file_format!r})"
            )
        for day in self.index_dates():
            if day.day != 1:
                raise ValueError(f"oracle date {day} is not the first day of a month")
            if day < self.start or window_end(day) > self.last_window_end():
                raise ValueError(
                    f"oracle date {day}: its 12-month window must lie inside the history "
                    f"({self.start} to {self.last_window_end()}, where outcome tables are "
                    "complete)"
                )
