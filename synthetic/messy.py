"""Faults for a messy synthetic extract: a small share of rows breaking each loader rule.

`add_faults` adds rows; it never changes or drops a clean row. Each added row is a copy of a real
row with one thing wrong (a date typed day-first, a code in lower case, an orphan person_id, a
spell sent twice, an admission after death...), or for `people` a new person who has no other
records. So the loader rejects exactly the added rows, every clean row still loads, nothing
cascades (no clean person is rejected, so no clean record loses its person), and the counts
returned are exactly the loader's rejects per (table, reason).

Each fault breaks one rule and nothing the loader checks before it (see records/loader.py for
the order). Where a fault needs text in a typed column (a date written `31/02/2024`, an
imd_decile of `NA`), that whole column becomes text: ISO dates, `true`/`false`, plain numbers,
which the loader parses like the native values.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from records.contract import EVENT_TABLES, TABLES
from records.loader import MIN_DATE, ORDERED_DATES

DEFAULT_SHARE = 0.002  # per fault kind: this share of the table's rows, at least one row
Row = dict[str, object]
Counts = dict[tuple[str, str], int]

# Text a person might type for a code (lookalike digits for letters, as in O/0, I/1).
_LOOKALIKE = {"O": "0", "I": "1", "S": "5", "Z": "2", "B": "8", "G": "6"}
_ATTENDANCE_TYPOS = {"attended": "Attended", "did_not_attend": "DNA", "cancelled": "Cancelled"}
_NUMBER_TEXT = {"value": ">90", "quantity": "28 tablets", "hours_per_week": "10.5 hrs"}


@dataclass
class _Context:
    """What faults need to know about the clean extract, and the ids already used."""

    extract_date: date
    birth: dict[str, date]
    death: dict[str, date]
    dead: list[str]  # people who died before extract_date (room for a record after death)
    person_ids: set[str]
    spell_ids: set[str]

    def fresh_id(self, like: str, taken: set[str], rng: np.random.Generator) -> str:
        """A new id shaped like `like` (its digits redrawn), not in `taken`; then taken."""
        places = [i for i, ch in enumerate(like) if ch.isdigit()]
        for _ in range(50 if places else 0):
            chars = list(like)
            for i, digit in zip(places, rng.integers(0, 10, len(places)).tolist(), strict=True):
                chars[i] = str(digit)
            new = "".join(chars)
            if new not in taken and new != like:
                taken.add(new)
                return new
        n = len(taken)
        while f"{like}-{n}" in taken:
            n += 1
        taken.add(f"{like}-{n}")
        return f"{like}-{n}"


Mutation = Callable[[_Context, Row, np.random.Generator], Row | None]


@dataclass(frozen=True)
class _Kind:
    table: str
    reason: str
    mutate: Mutation
    duplicate: bool = False  # the row must come after the row it copies


# ---------------------------------------------------------------------------- small helpers


def _days(rng: np.random.Generator, most: int) -> int:
    """A whole number of days from 1 to `most` (most >= 1)."""
    return int(rng.integers(1, most + 1))


def _unparseable(day: date, rng: np.random.Generator) -> str:
    """A date as people mistype it: day first, or a day the month does not have."""
    forms = (
        f"{day.day:02d}/{day.month:02d}/{day.year}",
        f"{day.year}-02-30",
        f"31/02/{day.year}",
    )
    return forms[int(rng.integers(len(forms)))]


def _before_1900(day: date, years: int) -> date:
    """The same day `years` earlier (a slipped key: 1940 -> 1840, 2024 -> 1024), or 1000 years
    earlier if that is not before 1900; 28 Feb where the year has no 29th."""
    year = day.year - years if day.year - years < MIN_DATE.year else day.year - 1000
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def _text_typo(value: str) -> str:
    """A closed-code value as typed by hand: spaces for underscores, or capitalised."""
    return value.replace("_", " ") if "_" in value else value.capitalize()


# ---------------------------------------------------------------------------- people faults


def _new_person(ctx: _Context, row: Row, rng: np.random.Generator) -> Row:
    row["person_id"] = ctx.fresh_id(str(row["person_id"]), ctx.person_ids, rng)
    return row


def _person_fault(change: Callable[[_Context, Row, np.random.Generator], Row | None]) -> Mutation:
    def mutate(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
        return change(ctx, _new_person(ctx, row, rng), rng)

    return mutate


def _set(column: str, value: Callable[[object, np.random.Generator], object]) -> Mutation:
    """Set `column` to `value(old, rng)`; skip rows where the column is absent or the value
    function gives None for a present value (nothing sensible to mistype)."""

    def change(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
        if column not in row:
            return None
        new = value(row[column], rng)
        if new is None:
            return None
        row[column] = new
        return row

    return change


def _missing(column: str) -> Mutation:
    def change(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
        row[column] = None
        return row

    return change


def _death_before_birth(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
    birth = row["birth_date"]
    room = (birth - MIN_DATE).days
    if "date_of_death" not in row or room < 1:
        return None
    row["date_of_death"] = birth - timedelta(days=_days(rng, min(room, 3650)))
    return row


def _registration_end_before_start(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
    if "registration_start" not in row or "registration_end" not in row:
        return None
    start = row["registration_start"] or min(
        ctx.extract_date, row["birth_date"] + timedelta(days=365 * 30)
    )
    room = (start - MIN_DATE).days
    if room < 1:
        return None
    row["registration_start"] = start
    row["registration_end"] = start - timedelta(days=_days(rng, min(room, 365)))
    return row


def _after_extract(column: str, clear: tuple[str, ...] = ()) -> Mutation:
    """`column` after extract_date; later columns cleared so they are not out of order."""

    def change(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
        if column not in row:
            return None
        row[column] = ctx.extract_date + timedelta(days=_days(rng, 365))
        for other in clear:
            if other in row:
                row[other] = None
        return row

    return change


def _people_kinds() -> list[_Kind]:
    kinds = [
        _Kind("people", f"missing required value {column}", _person_fault(_missing(column)))
        for column in TABLES["people"].required
        if column != "person_id"
    ]
    kinds += [
        _Kind("people", "missing required value person_id", _missing("person_id")),
        _Kind("people", "duplicate person_id", lambda ctx, row, rng: row, duplicate=True),
        _Kind(
            "people",
            "malformed neighbourhood",
            _person_fault(_set("neighbourhood", lambda v, rng: "=" + str(v))),
        ),
        _Kind(
            "people",
            "unparseable date in birth_date",
            _person_fault(_set("birth_date", lambda d, rng: _unparseable(d, rng))),
        ),
        _Kind(
            "people",
            "date before 1900 in birth_date",
            _person_fault(_set("birth_date", lambda d, rng: _before_1900(d, 100))),
        ),
        _Kind(
            "people",
            "date after extract_date in birth_date",
            _person_fault(_after_extract("birth_date")),
        ),
        _Kind(
            "people",
            "date after extract_date in registration_start",
            _person_fault(_after_extract("registration_start", clear=("registration_end",))),
        ),
        _Kind(
            "people",
            "date after extract_date in registration_end",
            _person_fault(_after_extract("registration_end")),
        ),
        _Kind(
            "people",
            "date after extract_date in date_of_death",
            _person_fault(_after_extract("date_of_death")),
        ),
        _Kind("people", "date_of_death before birth_date", _person_fault(_death_before_birth)),
        _Kind(
            "people",
            "registration_end before registration_start",
            _person_fault(_registration_end_before_start),
        ),
        _Kind(
            "people",
            "value not allowed in sex",
            _person_fault(_set("sex", lambda v, rng: {"1": "M", "2": "F"}.get(str(v), "U"))),
        ),
        _Kind(
            "people",
            "value not allowed in ethnic_category",
            _person_fault(
                _set("ethnic_category", lambda v, rng: "9" if v in (None, "99") else str(v).lower())
            ),
        ),
        _Kind(
            "people",
            "malformed lsoa_code",
            _person_fault(_set("lsoa_code", lambda v, rng: None if v is None else v[:3] + v[4:])),
        ),
        _Kind(
            "people",
            "malformed gp_practice_code",
            _person_fault(_set("gp_practice_code", lambda v, rng: str(v).lower())),
        ),
        _Kind(
            "people",
            "value not allowed in imd_decile",
            _person_fault(_set("imd_decile", lambda v, rng: int(rng.choice([0, 11])))),
        ),
        _Kind(
            "people", "malformed imd_decile", _person_fault(_set("imd_decile", lambda v, rng: "NA"))
        ),
        _Kind(
            "people",
            "malformed data_opt_out",
            _person_fault(_set("data_opt_out", lambda v, rng: "U")),
        ),
    ]
    return kinds


# ---------------------------------------------------------------------------- event faults


def _later_columns(table: str) -> tuple[str, ...]:
    """Date columns that must not come before the record date (discharge, end)."""
    return tuple(later for later, _ in ORDERED_DATES.get(table, ()))


def _orphan(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
    row["person_id"] = ctx.fresh_id(str(row["person_id"]), ctx.person_ids, rng)
    return row


def _before_birth(table: str) -> Mutation:
    column = TABLES[table].date_column

    def change(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
        birth = ctx.birth[row["person_id"]]
        room = (birth - MIN_DATE).days
        if room < 1:
            return None
        old = row[column]
        row[column] = birth - timedelta(days=_days(rng, min(room, 3650)))
        for later in _later_columns(table):
            if row.get(later) is not None:  # keep it in order and before birth
                gap = min((row[later] - old).days, (birth - row[column]).days - 1)
                row[later] = row[column] + timedelta(days=max(gap, 0))
        return row

    return change


def _after_death(table: str) -> Mutation:
    column = TABLES[table].date_column

    def change(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
        if not ctx.dead:
            return None
        person = ctx.dead[int(rng.integers(len(ctx.dead)))]
        death = ctx.death[person]
        row["person_id"] = person
        row[column] = death + timedelta(days=_days(rng, min(365, (ctx.extract_date - death).days)))
        for later in _later_columns(table):
            if later in row:
                row[later] = None
        return row

    return change


def _discharged_after_death(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
    """Admitted on or before the death date, discharged after it."""
    if not ctx.dead:
        return None
    person = ctx.dead[int(rng.integers(len(ctx.dead)))]
    death = ctx.death[person]
    row["person_id"] = person
    row["admission_date"] = death - timedelta(
        days=int(rng.integers(min(14, (death - ctx.birth[person]).days) + 1))
    )
    row["discharge_date"] = death + timedelta(
        days=_days(rng, min(30, (ctx.extract_date - death).days))
    )
    return row


def _before_earlier(later: str, earlier: str) -> Mutation:
    def change(ctx: _Context, row: Row, rng: np.random.Generator) -> Row | None:
        if later not in row or row[earlier] is None:
            return None
        room = (row[earlier] - MIN_DATE).days
        if room < 1:
            return None
        row[later] = row[earlier] - timedelta(days=_days(rng, min(room, 30)))
        return row

    return change


def _code_typo(column: str) -> Callable[[object, np.random.Generator], object]:
    """A mistyped value for a code column that the loader checks."""

    def typo(value: object, rng: np.random.Generator) -> object:
        if value is None:
            return None
        v = str(value)
        if column == "snomed_code":
            return v.replace("0", "O", 1) if "0" in v else v[:5]
        if column == "bnf_code":
            return v.lower() if any(ch.isalpha() for ch in v) else v[:3]
        if column == "diagnoses":
            if ";" in v:
                return v.replace(";", ",", 1)
            return _LOOKALIKE.get(v[0].upper(), "0") + v[1:]
        if column == "admission_method":
            return v.lower() if any(ch.isalpha() for ch in v) else v[0]
        if column == "attendance":
            return _ATTENDANCE_TYPOS.get(v, v.upper())
        return _text_typo(v)

    return typo


def _event_kinds(table: str) -> list[_Kind]:
    contract = TABLES[table]
    column = contract.date_column
    kinds = [
        _Kind(table, f"missing required value {name}", _missing(name)) for name in contract.required
    ]
    kinds += [
        _Kind(table, "unknown person_id", _orphan),
        _Kind(
            table,
            f"unparseable date in {column}",
            _set(column, lambda d, rng: _unparseable(d, rng)),
        ),
        _Kind(
            table,
            f"date before 1900 in {column}",
            _set(column, lambda d, rng: _before_1900(d, 1000)),
        ),
        _Kind(
            table,
            f"date after extract_date in {column}",
            _after_extract(column, clear=_later_columns(table)),
        ),
        _Kind(table, "dated before birth", _before_birth(table)),
        _Kind(table, "dated after death", _after_death(table)),
    ]
    for later, earlier in ORDERED_DATES.get(table, ()):
        kinds.append(_Kind(table, f"date after extract_date in {later}", _after_extract(later)))
        kinds.append(_Kind(table, f"{later} before {earlier}", _before_earlier(later, earlier)))
    for col in contract.columns:
        if col.name == "person_id":
            continue
        if col.pattern is not None:
            kinds.append(
                _Kind(table, f"malformed {col.name}", _set(col.name, _code_typo(col.name)))
            )
        if col.allowed is not None:
            reason = f"value not allowed in {col.name}"
            kinds.append(_Kind(table, reason, _set(col.name, _code_typo(col.name))))
        if col.type == "float":
            text = _NUMBER_TEXT.get(col.name, "unknown")
            kinds.append(
                _Kind(table, f"malformed {col.name}", _set(col.name, lambda v, r, t=text: t))
            )
        if col.type == "bool":
            kinds.append(_Kind(table, f"malformed {col.name}", _set(col.name, lambda v, rng: "U")))
    if table == "hospital_spells":
        kinds.append(_Kind(table, "dated after death", _discharged_after_death))
        kinds.append(_Kind(table, "duplicate spell_id", lambda ctx, row, rng: row, duplicate=True))
    return kinds


def fault_kinds() -> list[tuple[str, str]]:
    """Every (table, loader reason) `add_faults` injects, in the order it injects them."""
    return [(k.table, k.reason) for k in _kinds()]


def _kinds() -> list[_Kind]:
    kinds = _people_kinds()
    for table in EVENT_TABLES:
        kinds += _event_kinds(table)
    return kinds


# ---------------------------------------------------------------------------- assembly


def _plain(table: pa.Table, name: str) -> pa.Table:
    """Timestamp columns of contract dates cast to dates (dictionary columns are kept)."""
    contract = TABLES.get(name)
    for i, field in enumerate(table.schema):
        if not pa.types.is_timestamp(field.type) or contract is None:
            continue
        try:
            is_date = contract.column(field.name).type == "date"
        except KeyError:
            is_date = False
        if is_date:
            table = table.set_column(i, field.name, table.column(i).cast(pa.date32()))
    return table


def _is_text(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _chunk(values: list[object], type_: pa.DataType) -> pa.Array:
    """The faulty rows' values as one Arrow chunk of `type_` (dictionary types encoded)."""
    if pa.types.is_dictionary(type_):
        return pa.array(values, type=type_.value_type).dictionary_encode().cast(type_)
    return pa.array(values, type=type_)


def _context(people: pa.Table, spells: pa.Table | None, extract_date: date) -> _Context:
    ids = people.column("person_id").to_pylist()
    births = people.column("birth_date").to_pylist()
    deaths = (
        people.column("date_of_death").to_pylist()
        if "date_of_death" in people.column_names
        else [None] * len(ids)
    )
    death = {p: d for p, d in zip(ids, deaths, strict=True) if d is not None}
    return _Context(
        extract_date=extract_date,
        birth=dict(zip(ids, births, strict=True)),
        death=death,
        dead=sorted(p for p, d in death.items() if d < extract_date),
        person_ids=set(ids),
        spell_ids=set(spells.column("spell_id").to_pylist()) if spells is not None else set(),
    )


def _rng(seed: int, kind: _Kind) -> np.random.Generator:
    """One stream per fault kind, so adding a kind does not change the others."""
    key = zlib.crc32(f"{kind.table}|{kind.reason}|{kind.mutate.__qualname__}".encode())
    return np.random.default_rng([seed, key])


def _make_rows(
    ctx: _Context, table: pa.Table, kind: _Kind, n: int, rng: np.random.Generator
) -> list[tuple[int, Row]]:
    """Up to `n` faulty rows, each with the index of the clean row it was copied from."""
    size = table.num_rows
    tries = min(size, 4 * n + 20)  # some rows do not fit a fault (e.g. no service_type)
    picks = rng.choice(size, size=tries, replace=False) if tries < size else rng.permutation(size)
    out: list[tuple[int, Row]] = []
    batch = n + n // 8 + 8
    for start in range(0, len(picks), batch):  # read rows a batch at a time: most fit
        chunk = picks[start : start + batch]
        for index, row in zip(chunk.tolist(), table.take(chunk).to_pylist(), strict=True):
            new = kind.mutate(ctx, row, rng)
            if new is None:
                continue
            if kind.table == "hospital_spells" and not kind.duplicate and new["spell_id"]:
                new["spell_id"] = ctx.fresh_id(str(new["spell_id"]), ctx.spell_ids, rng)
            out.append((index, new))
            if len(out) == n:
                return out
    return out


def _text(value: object) -> object:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _append(
    table: pa.Table, rows: list[tuple[int, Row, bool]], rng: np.random.Generator
) -> pa.Table:
    """The clean rows in order with the faulty rows scattered among them (a copy marked as a
    duplicate always after its original); typed columns become text where a fault needs it."""
    columns = []
    for i, field in enumerate(table.schema):
        values = [row[field.name] for _, row, _ in rows]
        clean = table.column(i)
        if not _is_text(field.type) and any(isinstance(v, str) for v in values):
            clean = pc.cast(clean, pa.string())
            values = [_text(v) for v in values]
        columns.append(pa.chunked_array([*clean.chunks, _chunk(values, clean.type)]))
    joined = pa.table(columns, names=table.column_names)
    n = table.num_rows
    low = np.array([index if dup else -0.5 for index, _, dup in rows], dtype=np.float64)
    keys = np.concatenate([np.arange(n, dtype=np.float64), rng.uniform(low, n)])
    return joined.take(np.argsort(keys, kind="stable"))


def add_faults(
    tables: dict[str, pa.Table],
    seed: int,
    extract_date: date,
    share: float = DEFAULT_SHARE,
) -> tuple[dict[str, pa.Table], Counts]:
    """Add rows breaking each loader rule to clean contract `tables` (parquet-native types).

    For each fault kind (see `fault_kinds`), about `share` of the table's rows (at least one,
    where the table has rows to copy and the fault applies) are added. Returns the new tables
    and the number of added rows per (table, loader reason): loading the result rejects exactly
    these, and loads every clean row. Same input and seed, same output.
    """
    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1 (got {share})")
    missing = [name for name in TABLES if name not in tables]
    if missing:
        raise ValueError(f"add_faults needs every contract table; missing {', '.join(missing)}")
    # One chunk per table: taking a few rows from a chunked table copies every chunk each time.
    plain = {name: _plain(table, name).combine_chunks() for name, table in tables.items()}
    ctx = _context(plain["people"], plain.get("hospital_spells"), extract_date)
    added: dict[str, list[tuple[int, Row, bool]]] = {name: [] for name in plain}
    counts: Counts = {}
    for kind in _kinds():
        table = plain[kind.table]
        if table.num_rows == 0:
            continue
        n = max(1, round(share * table.num_rows))
        rows = _make_rows(ctx, table, kind, n, _rng(seed, kind))
        if rows:
            added[kind.table] += [(index, row, kind.duplicate) for index, row in rows]
            key = (kind.table, kind.reason)
            counts[key] = counts.get(key, 0) + len(rows)
    out = dict(plain)
    for name, rows in added.items():
        if rows:
            out[name] = _append(
                plain[name], rows, np.random.default_rng([seed, zlib.crc32(name.encode())])
            )
    return out, counts
