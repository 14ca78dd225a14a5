"""Load a linked-records extract into DuckDB, enforcing the contract's loader rules in SQL.

After `load_extract`, the connection holds one clean typed table per contract table (named as in
the contract, contract columns in contract order, then any extra columns from the file), a
`rejects` table (table_name, row_number, reason, record) and `hospital_diagnoses`, one row per
diagnosis of each loaded spell.

Every rule is checked set-based inside DuckDB, never through pandas. Each file is read once: one
statement parses every column, checks rules 1-4 below and writes every row to the table with its
reason (NULL when clean) and, for a rejected row, its raw record. In a big file, a text column with
few distinct values (codes) has its value checks made on those values first (reading that column
alone), so the pass only names the failing values, if any (`_few_values`). Rules 5-7 look at other
rows: one statement over the written key and date columns (a window for duplicates, one join with
the loaded people) finds the rows that break them; only when there are any does the loader read
those rows' raw records again. Rejected rows then move to `rejects` and the loader's own columns
(`__cf_...`, a prefix refused in files) are dropped. The pass keeps file order (one table in FROM,
no join, no window, code sets as comparisons rather than IN lists, which DuckDB plans as joins); a
check on the row number makes sure and sorts only if it did not. `people` loads first (the other
tables link to it), then the others two at a time, each on its own connection.

A rejected row gets one reason: the first of these that applies (columns in contract order):

1. `missing required value COL`
2. `unparseable date in COL`, `malformed COL` (pattern, boolean, number, non-integer),
   `value not allowed in COL` (closed code sets; imd_decile outside 1..10)
3. `date before 1900 in COL`, `date after extract_date in COL` (every date column)
4. `discharge_date before admission_date`, `end_date before start_date`,
   `date_of_death before birth_date`, `registration_end before registration_start`
5. `duplicate person_id` (people), `duplicate spell_id` (hospital_spells): every occurrence after
   the first in file order, whatever became of the first; an id seen twice is ambiguous, so the
   loader never guesses which row is right
6. `unknown person_id`: not among the *loaded* people
7. `dated before birth` (the table's record date), `dated after death` (the record date and, for
   hospital spells, discharge_date; a record on the death date is fine)
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from config.progress import ProgressFn, no_progress

if TYPE_CHECKING:  # settings import the contract from this package
    import pandas as pd
    import pyarrow as pa

    from config.settings import Settings
from records.contract import BOOL_FALSE, BOOL_TRUE, TABLES, Column, Table
from records.manifest import ExtractError, Manifest, read_manifest

MIN_DATE = date(1900, 1, 1)
REJECTS_TABLE = "rejects"
DIAGNOSES_TABLE = "hospital_diagnoses"

# Rules the contract states in prose that contract.py does not carry as data.
INT_RANGES: dict[tuple[str, str], tuple[int, int]] = {("people", "imd_decile"): (1, 10)}
ORDERED_DATES: dict[str, tuple[tuple[str, str], ...]] = {  # (later, earlier): later >= earlier
    "people": (("date_of_death", "birth_date"), ("registration_end", "registration_start")),
    "hospital_spells": (("discharge_date", "admission_date"),),
    "social_care": (("end_date", "start_date"),),
    "caseloads": (("end_date", "start_date"),),
}
AFTER_DEATH_EXTRA: dict[str, tuple[str, ...]] = {"hospital_spells": ("discharge_date",)}
DIAGNOSES = ("hospital_spells", "diagnoses")  # normalised: uppercase, no dots, no spaces

# Internal names all start with this prefix; a file column that does too is refused, so no
# source column can shadow one (or switch a rule off by matching its name).
_PREFIX = "__cf_"
_ROW = "__cf_row"
_REASON = "__cf_reason"
_RECORD = "__cf_record"
_DUP = "__cf_dup"
_RAW = "__cf_raw"
_PEOPLE = "__cf_people"
_LATE = "__cf_late"
_ISO_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_INTEGER = "[+-]?[0-9]+"
_INT_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}  # fmt: skip


@dataclass
class TableReport:
    """Row counts for one table: read == loaded + rejected, with rejected rows by reason."""

    table: str
    source: Path | None
    read: int
    loaded: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class Extract:
    """A loaded extract: clean tables, `rejects` and `hospital_diagnoses` live in `con`."""

    path: Path
    con: duckdb.DuckDBPyConnection
    manifest: Manifest
    reports: dict[str, TableReport]
    made: set[str] = field(default_factory=set)  # tables made by `create_table`

    engine = "duckdb"

    @property
    def n_rejected(self) -> int:
        return sum(r.rejected for r in self.reports.values())

    def frame(self, sql: str) -> pd.DataFrame:
        """The result of `sql` (the subset of `records.dialect`) as a pandas frame."""
        return self.arrow(sql).to_pandas()

    def arrow(self, sql: str) -> pa.Table:
        """The result of `sql` (the subset of `records.dialect`) as an Arrow table."""
        return self.con.sql(sql).to_arrow_table()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of `sql` (a small result: counts, names)."""
        return self.con.execute(sql).fetchall()

    def create_table(self, name: str, sql: str) -> None:
        """A table `name` holding the result of `sql` (code lists), in the extract's database
        (not a connection's temporary one), so every `cursor` reads it."""
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")
        self.made.add(name)

    @contextlib.contextmanager
    def cursor(self) -> Iterator[Extract]:
        """The same loaded extract over a new connection to its database, for one thread (a
        DuckDB connection is not shared between threads); closed on leaving."""
        con = self.con.cursor()
        try:
            yield replace(self, con=con)
        finally:
            con.close()

    def close(self) -> None:
        self.con.close()


@dataclass(frozen=True)
class _Source:
    table: Table
    path: Path
    kind: str  # "csv" or "parquet"
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) in file order

    def by_contract_name(self) -> dict[str, tuple[str, str]]:
        wanted = {c.name for c in self.table.columns}
        return {n.lower(): (n, t) for n, t in self.columns if n.lower() in wanted}

    def extras(self) -> list[tuple[str, str]]:
        wanted = {c.name for c in self.table.columns}
        return [(n, t) for n, t in self.columns if n.lower() not in wanted]


# ---------------------------------------------------------------------------- SQL helpers


def _q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    """Quote a string literal."""
    return "'" + value.replace("'", "''") + "'"


def _in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _is_in(x: str, values: tuple[str, ...]) -> str:
    """`x` is one of `values` (NULL when `x` is NULL). Not `x IN (...)` nor `list_contains`:
    DuckDB plans a long list of constants as a join, which loses file order (and costs more)."""
    return "(" + " OR ".join(f"{x} = {_lit(v)}" for v in values) + ")"


def _kind(duck_type: str) -> str:
    t = duck_type.upper()
    if t == "VARCHAR":
        return "str"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t == "BOOLEAN":
        return "bool"
    if t in _INT_TYPES:
        return "int"
    if t in ("FLOAT", "DOUBLE") or t.startswith("DECIMAL"):
        return "float"
    return "other"


def _clean_text(x: str, kind: str) -> str:
    """Text with surrounding whitespace removed; NULL when empty."""
    text = x if kind == "str" else f"CAST({x} AS VARCHAR)"
    # trim() with a character set is slow, and few values need it: look at the ends first
    # (`x[-1]`, the last character, costs half of `right(x, 1)`).
    return (
        f"CASE WHEN ascii({text}) <= 32 OR ascii({text}[-1]) <= 32 "
        f"THEN nullif(trim({text}, ' \t\r\n'), '') ELSE {text} END"
    )


def _parse(table: str, col: Column, x: str, kind: str) -> tuple[str, str]:
    """SQL for one contract column: (source value, NULL when missing; typed value from `s`).

    The typed expression refers to the source value as `{s}`; it is NULL when the source value
    is missing or cannot be parsed.
    """
    if col.type == "date":
        if kind == "date":
            return x, "{s}"
        if kind == "timestamp":
            return x, "CAST({s} AS DATE)"
        typed = (
            f"CASE WHEN regexp_full_match({{s}}, '{_ISO_DATE}') THEN try_cast({{s}} AS DATE) END"
        )
        return _clean_text(x, kind), typed
    if col.type == "int":
        if kind == "int":
            return x, "try_cast({s} AS INTEGER)"
        if kind == "float":
            typed = "CASE WHEN isfinite({s}) AND {s} = trunc({s}) THEN try_cast({s} AS INTEGER) END"
            return f"CAST({x} AS DOUBLE)", typed
        typed = (
            f"CASE WHEN regexp_full_match({{s}}, '{_INTEGER}') THEN try_cast({{s}} AS INTEGER) END"
        )
        return _clean_text(x, kind), typed
    if col.type == "float":
        if kind in ("int", "float"):
            return f"CAST({x} AS DOUBLE)", "CASE WHEN isfinite({s}) THEN {s} END"
        typed = "CASE WHEN isfinite(try_cast({s} AS DOUBLE)) THEN try_cast({s} AS DOUBLE) END"
        return _clean_text(x, kind), typed
    if col.type == "bool":
        if kind == "bool":
            return x, "{s}"
        typed = (
            f"CASE WHEN {_is_in('lower({s})', BOOL_TRUE)} THEN true "
            f"WHEN {_is_in('lower({s})', BOOL_FALSE)} THEN false END"
        )
        return _clean_text(x, kind), typed
    if (table, col.name) == DIAGNOSES:
        # Checked against the pattern uppercased with tidy separators; stored without dots.
        text = _clean_text(x, kind)
        # regexp_replace is slow and most lists have no whitespace left inside them.
        spaced = " OR ".join(
            f"contains({text}, {c})" for c in ("' '", "chr(9)", "chr(10)", "chr(12)", "chr(13)")
        )
        tidy = (
            f"CASE WHEN {spaced} THEN regexp_replace({text}, '\\s*;\\s*', ';', 'g') ELSE {text} END"
        )
        source = f"upper({tidy})"
        return source, "replace({s}, '.', '')"
    return _clean_text(x, kind), "{s}"


def _format_checks(
    table: str, col: Column, s: str, v: str, few: _FewValues | None = None
) -> list[tuple[str, str]]:
    """(condition, reason) pairs for one column's value format. With `few`, the column's pattern
    and code set were checked on its distinct values: the rows holding a failing value are named
    by that value (no check at all when none fails)."""
    name = col.name
    checks: list[tuple[str, str]] = []
    if col.type == "date":
        checks.append((f"{s} IS NOT NULL AND {v} IS NULL", f"unparseable date in {name}"))
    elif col.type in ("int", "float", "bool"):
        checks.append((f"{s} IS NOT NULL AND {v} IS NULL", f"malformed {name}"))
    if (table, name) in INT_RANGES:
        lo, hi = INT_RANGES[(table, name)]
        checks.append((f"{v} NOT BETWEEN {lo} AND {hi}", f"value not allowed in {name}"))
    if col.pattern is not None:
        if few is None:
            checks.append((f"NOT regexp_full_match({s}, {_lit(col.pattern)})", f"malformed {name}"))
        elif few.malformed:
            checks.append((_is_in(s, few.malformed), f"malformed {name}"))
    if col.allowed is not None:
        if few is None:
            checks.append((f"NOT {_is_in(s, col.allowed)}", f"value not allowed in {name}"))
        elif few.not_allowed:
            checks.append((_is_in(s, few.not_allowed), f"value not allowed in {name}"))
    return checks


def _load_sql(
    source: _Source, raw: str, extract_date: date, few: Mapping[str, _FewValues] | None = None
) -> str:
    """One statement, one pass over the file: parse every column, give each row its reject reason
    (or NULL) and, for rejected rows only, the raw record as JSON; write it all to the table.
    `few`: what `_few_values` found for contract columns with few distinct values."""
    few = few or {}
    table = source.table
    present = source.by_contract_name()
    s_cols = [f"{_ROW}"]
    v_cols = ["*"]
    checks: list[tuple[str, str]] = []
    out_cols = [f"t.{_ROW}"]

    for col in table.columns:
        s = _q(_PREFIX + "s_" + col.name)
        v = f"t.{_q(col.name)}"
        if col.name in present:
            src_name, src_type = present[col.name]
            s_expr, v_expr = _parse(table.name, col, _q(src_name), _kind(src_type))
            if col.name in few and not few[col.name].needs_cleaning:
                s_expr = _q(src_name)  # every value is clean already
        else:
            s_expr, v_expr = _parse(table.name, col, "CAST(NULL AS VARCHAR)", "str")
        s_cols.append(f"{s_expr} AS {s}")
        v_cols.append(f"{v_expr.replace('{s}', s)} AS {_q(col.name)}")
        out_cols.append(v)

    for name, duck_type in source.extras():
        expr = _clean_text(_q(name), "str") if _kind(duck_type) == "str" else _q(name)
        s_cols.append(f"{expr} AS {_q(name)}")
        out_cols.append(f"t.{_q(name)}")
    # The file's values as read, for the record of a rejected row.
    raw_of = {name: _q(f"{_PREFIX}r{i}") for i, (name, _) in enumerate(source.columns)}
    s_cols += [f"{_q(name)} AS {alias}" for name, alias in raw_of.items()]

    def s_of(name: str) -> str:
        return f"t.{_q(_PREFIX + 's_' + name)}"

    def v_of(name: str) -> str:
        return f"t.{_q(name)}"

    # 1. missing required values
    checks += [
        (f"{s_of(c.name)} IS NULL", f"missing required value {c.name}")
        for c in table.columns
        if c.required
    ]
    # 2. formats and code sets
    for col in table.columns:
        checks += _format_checks(table.name, col, s_of(col.name), v_of(col.name), few.get(col.name))
    # 3. dates out of range
    for col in table.columns:
        if col.type == "date":
            checks.append(
                (f"{v_of(col.name)} < DATE '{MIN_DATE}'", f"date before 1900 in {col.name}")
            )
            checks.append(
                (
                    f"{v_of(col.name)} > DATE '{extract_date}'",
                    f"date after extract_date in {col.name}",
                )
            )
    # 4. dates out of order
    for later, earlier in ORDERED_DATES.get(table.name, ()):
        checks.append((f"{v_of(later)} < {v_of(earlier)}", f"{later} before {earlier}"))
    # 5-7 (duplicate ids, linkage to people) need other rows: see _late_sql.
    reason = "CASE " + " ".join(f"WHEN {c} THEN {_lit(r)}" for c, r in checks) + " END"
    record = ", ".join(f"{_lit(name)}, u.{alias}" for name, alias in raw_of.items())
    kept = [c.split(".", 1)[1] for c in out_cols]
    # One table in FROM, no join and no window: the table keeps file order.
    return (
        f"CREATE OR REPLACE TABLE {_q(table.name)} AS "
        f"WITH s AS (SELECT {', '.join(s_cols)} FROM {raw}), "
        f"t AS (SELECT {', '.join(v_cols)} FROM s), "
        f"u AS (SELECT t.*, {reason} AS {_REASON} FROM t) "
        f"SELECT {', '.join('u.' + c for c in kept)}, u.{_REASON}, "
        f"CASE WHEN u.{_REASON} IS NOT NULL THEN CAST(json_object({record}) AS VARCHAR) END "
        f"AS {_RECORD} FROM u"
    )


# A text column with few distinct values (codes, service names) has its value checks (clean,
# pattern, code set) made once per distinct value rather than once per row: at 1,000,000 people
# the BNF pattern alone cost 2 s of the 61.5 million prescription rows, the distinct values
# (39) 0.2 s. The tables loaded are the same either way (`tests/test_loader_few_values.py`).
FEW_MIN_ROWS = 2_000_000  # in smaller files the per-value queries cost about what they save
FEW_SAMPLE_ROWS = 100_000  # the first rows, whose distinct values decide which columns qualify
FEW_SAMPLE_SHARE = 0.01  # qualify: distinct values in the sample at most this share of it
FEW_MAX_VALUES = 10_000  # and at most this many in the whole file
FEW_MAX_FAILING = 64  # failing values named in the pass; more and it checks every row


@dataclass(frozen=True)
class _FewValues:
    """What a text column's distinct values showed: whether any needs cleaning (whitespace at
    an end, or empty), and the cleaned values failing its pattern and its code set."""

    needs_cleaning: bool
    malformed: tuple[str, ...]
    not_allowed: tuple[str, ...]


def _few_value_columns(source: _Source) -> dict[str, tuple[Column, str]]:
    """Contract text columns read as text whose checks work value by value: {name: (column,
    name in the file)}."""
    present = source.by_contract_name()
    out = {}
    for col in source.table.columns:
        if (
            col.type != "string"
            or col.name not in present
            or (source.table.name, col.name) == DIAGNOSES
        ):
            continue
        src_name, src_type = present[col.name]
        if _kind(src_type) == "str":
            out[col.name] = (col, src_name)
    return out


def _few_values(
    con: duckdb.DuckDBPyConnection, source: _Source, raw: str, read: int
) -> dict[str, _FewValues]:
    """`_FewValues` for the text columns of a big file with few distinct values (see
    `FEW_MIN_ROWS`); a column whose failing values are too many to name is left out."""
    columns = _few_value_columns(source)
    if read < FEW_MIN_ROWS or not columns:
        return {}
    counts = ", ".join(f"count(DISTINCT {_q(src)})" for _, src in columns.values())
    names = ", ".join(_q(src) for _, src in columns.values())
    sampled = con.execute(
        f"SELECT {counts} FROM (SELECT {names} FROM {raw} LIMIT {FEW_SAMPLE_ROWS})"
    ).fetchone()
    limit = FEW_SAMPLE_ROWS * FEW_SAMPLE_SHARE
    chosen = {n: cs for (n, cs), k in zip(columns.items(), sampled, strict=True) if k <= limit}
    if not chosen:
        return {}
    out = {}
    cleaned = _clean_text("v", "str")
    for name, (col, src) in chosen.items():
        pattern = f"NOT regexp_full_match(c, {_lit(col.pattern)})" if col.pattern else "false"
        allowed = f"NOT {_is_in('c', col.allowed)}" if col.allowed else "false"
        # The distinct values stay in DuckDB; past FEW_MAX_VALUES the column is left out.
        values, needs, malformed, not_allowed = con.execute(
            f"SELECT count(*), coalesce(bool_or(c IS DISTINCT FROM v), false), "
            f"coalesce(list(DISTINCT c ORDER BY c) FILTER (WHERE {pattern}), []), "
            f"coalesce(list(DISTINCT c ORDER BY c) FILTER (WHERE {allowed}), []) "
            f"FROM (SELECT v, {cleaned} AS c FROM "
            f"(SELECT DISTINCT {_q(src)} AS v FROM {raw} LIMIT {FEW_MAX_VALUES + 1}))"
        ).fetchone()
        if values <= FEW_MAX_VALUES and len(malformed) + len(not_allowed) <= FEW_MAX_FAILING:
            out[name] = _FewValues(bool(needs), tuple(malformed), tuple(not_allowed))
    return out


def _late_sql(table: Table) -> str | None:
    """Rules 5-7, which look at other rows, for the rows of `table` (as first written) that broke
    no earlier rule: one statement (a window over the key for duplicates, one join with the
    loaded people for linkage) whose result holds only the rows that fail: (row, reason)."""
    t, p = _q(table.name), _PEOPLE
    checks: list[tuple[str, str]] = []
    columns = [f"{t}.*"]
    if table.unique_key:  # every occurrence after the first, whatever became of the first
        key = f"{t}.{_q(table.unique_key)}"
        columns.append(
            f"CASE WHEN {key} IS NOT NULL THEN row_number() OVER "
            f"(PARTITION BY {key} ORDER BY {t}.{_ROW}) END AS {_DUP}"
        )
        checks.append((f"{t}.{_DUP} > 1", f"duplicate {table.unique_key}"))
    join = ""
    if table.name != "people":
        join = f'LEFT JOIN people AS {p} ON {t}."person_id" = {p}."person_id"'
        checks.append((f'{p}."person_id" IS NULL', "unknown person_id"))
        if table.date_column:
            checks.append((f'{t}.{_q(table.date_column)} < {p}."birth_date"', "dated before birth"))
            for name in (table.date_column, *AFTER_DEATH_EXTRA.get(table.name, ())):
                checks.append((f'{t}.{_q(name)} > {p}."date_of_death"', "dated after death"))
    if not checks:
        return None
    reason = "CASE " + " ".join(f"WHEN {c} THEN {_lit(r)}" for c, r in checks) + " END"
    # The window sees every row (a duplicate of a rejected row is still a duplicate).
    rows = f"(SELECT {', '.join(columns)} FROM {t}) AS {t}"
    return (
        f"CREATE OR REPLACE TEMP TABLE {_LATE} AS SELECT * FROM (SELECT {t}.{_ROW}, "
        f"{reason} AS {_REASON} FROM {rows} {join} WHERE {t}.{_REASON} IS NULL) "
        f"WHERE {_REASON} IS NOT NULL"
    )


# ---------------------------------------------------------------------------- files


def _find_file(folder: Path, table: Table) -> Path:
    csv_path, pq_path = folder / f"{table.name}.csv", folder / f"{table.name}.parquet"
    if csv_path.is_file() and pq_path.is_file():
        raise ExtractError(
            f"{pq_path.name}, {csv_path.name}: both present; keep one file per table"
        )
    if pq_path.is_file():
        return pq_path
    if csv_path.is_file():
        return csv_path
    raise ExtractError(f"{pq_path.name} / {csv_path.name}: missing file for table {table.name!r}")


# The longest header row read: the contract's widest table has a few hundred bytes of column
# names, so anything near this is not a header (a file without newlines, or not a CSV at all).
MAX_HEADER_BYTES = 64 * 1024


def _csv_header(path: Path) -> list[str]:
    """The header row, read with Python's csv module (the loader reads the rows with DuckDB)."""
    try:
        with path.open("rb") as f:  # the first line only: later rows are DuckDB's to check
            first = f.readline(MAX_HEADER_BYTES + 1)
        if len(first) > MAX_HEADER_BYTES and not first.endswith(b"\n"):
            raise ExtractError(
                f"{path.name}: the header row is longer than {MAX_HEADER_BYTES:,} bytes "
                "(is this a CSV file with a header row?)"
            )
        header = next(csv.reader([first.decode("utf-8-sig")]), None)
    except UnicodeDecodeError:
        raise ExtractError(f"{path.name}: unreadable file (header row is not UTF-8)") from None
    except (OSError, csv.Error) as exc:
        raise ExtractError(f"{path.name}: unreadable file ({type(exc).__name__})") from None
    if not header:
        raise ExtractError(f"{path.name}: empty file (no header row)")
    return [h.strip() for h in header]


def _inspect(con: duckdb.DuckDBPyConnection, folder: Path, table: Table) -> _Source:
    path = _find_file(folder, table)
    if path.suffix == ".csv":
        source = _Source(table, path, "csv", tuple((n, "VARCHAR") for n in _csv_header(path)))
    else:
        try:
            rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(str(path))})").fetchall()
        except duckdb.Error as exc:
            raise ExtractError(
                f"{path.name}: unreadable file ({_duckdb_reason(exc, path)})"
            ) from None
        source = _Source(table, path, "parquet", tuple((r[0], r[1]) for r in rows))
    check_columns(path.name, table, [name for name, _ in source.columns])
    return source


def check_columns(file: str, table: Table, names: list[str]) -> None:
    """`ExtractError` naming `file` for an empty, repeated or reserved column name, or a missing
    required column."""
    path = Path(file)
    seen: set[str] = set()
    for name in names:
        if not name:
            raise ExtractError(f"{path.name}: a column has an empty name")
        if name.lower() in seen:
            raise ExtractError(f"{path.name}: column {name!r} appears more than once")
        if name.lower().startswith(_PREFIX):
            raise ExtractError(
                f"{path.name}: column {name!r} clashes with the loader's own columns (names "
                f"starting with {_PREFIX!r} are reserved); rename or drop it"
            )
        seen.add(name.lower())
    missing = [c for c in table.required if c not in seen]
    if missing:
        shown = ", ".join(repr(c) for c in missing)
        plural = "s" if len(missing) > 1 else ""
        raise ExtractError(f"{path.name}: missing required column{plural} {shown}")


def _duckdb_reason(exc: duckdb.Error, path: Path) -> str:
    """A short reason from a DuckDB read error, without any row contents it may quote."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    parts = [f"line {int(line.group(1))}"] if line else []
    if m := re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text):
        parts.append(f"expected {m.group(1)} columns, found {m.group(2)}")
    elif "unterminated quote" in text:
        parts.append("unterminated quote")
    elif "Invalid unicode" in text:
        parts.append("not UTF-8")
    elif line:
        parts.append("malformed CSV row")
    elif path.suffix == ".parquet":
        first = text.splitlines()[0] if text else type(exc).__name__
        first = first.split("Error: ", 1)[-1].replace(str(path), path.name)
        parts.append(first[:200])
    else:
        parts.append(type(exc).__name__)
    return ": ".join(parts)


def _raw_relation(con: duckdb.DuckDBPyConnection, source: _Source) -> tuple[str, int]:
    """Make the source readable as SQL with a 1-based file row number; return it and its rows."""
    path = _lit(str(source.path))
    if source.kind == "parquet":
        (read,) = con.execute(f"SELECT count(*) FROM read_parquet({path})").fetchone()
        relation = (
            f"(SELECT file_row_number + 1 AS {_ROW}, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({path}, file_row_number = true))"
        )
        return relation, read
    # A materialised table keeps file order in its rowid (CSV scans have no row number).
    (read,) = con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_RAW} AS SELECT * FROM {_read_csv(source)}"
    ).fetchone()
    return f"(SELECT rowid + 1 AS {_ROW}, * FROM {_RAW})", read


def _read_csv(source: _Source) -> str:
    """The loader's strict CSV read of `source` (every column text)."""
    columns = "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n, _ in source.columns) + "}"
    return (
        f"read_csv({_lit(str(source.path))}, auto_detect = false, header = true, delim = ',', "
        f"quote = '\"', escape = '\"', comment = '', encoding = 'utf-8', strict_mode = true, "
        f"columns = {columns})"
    )


def csv_problem(source: _Source) -> str | None:
    """Why the loader's CSV read refuses `source`'s file, as in its `ExtractError` ("line 4:
    expected 4 columns, found 5"); None when the file reads. Streams the file (no rows kept):
    another engine that found the file malformed names the line with it."""
    every = ", ".join(f"max(length({_q(n)}))" for n, _ in source.columns)  # reads every value
    con = duckdb.connect()
    try:
        con.execute(f"SELECT {every} FROM {_read_csv(source)}").fetchone()
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        return _duckdb_reason(exc, source.path)
    finally:
        con.close()
    return None


def _load_table(
    con: duckdb.DuckDBPyConnection, source: _Source, extract_date: date, progress: ProgressFn
) -> TableReport:
    """Load one table: clean rows to the table named as in the contract, the rest to rejects.

    One pass over the file writes every row to the table with its reject reason (NULL for a
    clean row) and, for rejected rows, the raw record; rejected rows then move to `rejects`
    (a scan of one mostly-NULL column) and the loader's own columns are dropped.
    """
    table = source.table
    name, target = table.name, _q(table.name)
    progress(name, 0.0)
    try:
        raw, read = _raw_relation(con, source)
        few = _few_values(con, source, raw, read)
        progress(name, 0.3)
        (typed,) = con.execute(_load_sql(source, raw, extract_date, few)).fetchone()
        progress(name, 0.7)
        if (late := _late_sql(table)) is not None:
            con.execute(late)
            (failed,) = con.execute(f"SELECT count(*) FROM {_LATE}").fetchone()
            if failed:  # their reasons, and their records from the rows as read
                record = ", ".join(f"{_lit(n)}, r.{_q(n)}" for n, _ in source.columns)
                con.execute(
                    f"UPDATE {target} SET {_REASON} = x.reason, {_RECORD} = x.record FROM "
                    f"(SELECT l.{_ROW} AS row, l.{_REASON} AS reason, "
                    f"CAST(json_object({record}) AS VARCHAR) AS record FROM {_LATE} AS l "
                    f"JOIN {raw} AS r ON r.{_ROW} = l.{_ROW}) AS x WHERE {target}.{_ROW} = x.row"
                )
            con.execute(f"DROP TABLE {_LATE}")
        progress(name, 0.9)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        raise ExtractError(
            f"{source.path.name}: unreadable file ({_duckdb_reason(exc, source.path)})"
        ) from None
    # The pass keeps file order (see _load_sql); a cheap check on one column makes sure.
    (out_of_order,) = con.execute(
        f"SELECT count(*) FROM {target} WHERE {_ROW} <> rowid + 1"
    ).fetchone()
    if out_of_order:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS FROM {target} ORDER BY {_ROW}")
    reasons = dict(
        con.execute(
            f"SELECT {_REASON}, count(*) FROM {target} WHERE {_REASON} IS NOT NULL "
            "GROUP BY ALL ORDER BY 2 DESC, 1"
        ).fetchall()
    )
    rejected = 0
    if reasons:
        (rejected,) = con.execute(
            f"INSERT INTO {REJECTS_TABLE} SELECT {_lit(name)}, {_ROW}, {_REASON}, {_RECORD} "
            f"FROM {target} WHERE {_REASON} IS NOT NULL ORDER BY {_ROW}"
        ).fetchone()
        con.execute(f"DELETE FROM {target} WHERE {_REASON} IS NOT NULL")
    for column in (_ROW, _REASON, _RECORD):
        con.execute(f"ALTER TABLE {target} DROP COLUMN {column}")
    (loaded,) = con.execute(f"SELECT count(*) FROM {target}").fetchone()
    con.execute(f"DROP TABLE IF EXISTS {_RAW}")
    if not (typed == read == loaded + rejected and rejected == sum(reasons.values())):
        raise RuntimeError(
            f"loader bug: {name} read {read}, typed {typed}, loaded {loaded}, "
            f"rejected {rejected}, by reason {sum(reasons.values())}"
        )
    progress(name, 1.0)
    return TableReport(name, source.path, read, loaded, rejected, reasons)


# Tables loaded at once after `people`, each on its own connection to the database, the largest
# file first: one table's single-threaded steps (planning, its small statements) overlap
# another's parallel scans. At 1,000,000 people 16.9 s against 20.2 s one at a time, peak memory
# 6.2 against 5.6 GB; at 30,000 people 0.64 against 0.85 s.
TABLES_AT_ONCE = 2
# Rejects in contract table order, then file order.
_REJECTS_ORDER = (
    "CASE table_name "
    + " ".join(f"WHEN {_lit(name)} THEN {i}" for i, name in enumerate(TABLES))
    + " END, row_number"
)


def _load_tables(
    con: duckdb.DuckDBPyConnection, sources: list[_Source], extract_date: date,
    progress: ProgressFn,
) -> dict[str, TableReport]:  # fmt: skip
    """Load `people` first (the other tables link to the loaded people), then the others
    `TABLES_AT_ONCE` at a time. Reports come in contract order, as do the rejects (then by row);
    a failing table raises its error, the first in contract order when several fail."""
    people, rest = sources[0], sources[1:]
    assert people.table.name == "people", "the contract lists people first"
    reports = {people.table.name: _load_table(con, people, extract_date, progress)}

    def on_cursor(source: _Source) -> TableReport:
        own = con.cursor()
        try:
            return _load_table(own, source, extract_date, progress)
        finally:
            own.close()

    biggest_first = sorted(rest, key=lambda s: -s.path.stat().st_size)
    with ThreadPoolExecutor(TABLES_AT_ONCE, thread_name_prefix="load") as pool:
        futures = {s.table.name: pool.submit(on_cursor, s) for s in biggest_first}
        try:
            for source in rest:
                reports[source.table.name] = futures[source.table.name].result()
        except BaseException:
            for future in futures.values():
                future.cancel()
            raise
    if any(r.rejected for r in reports.values()):  # appended as each table finished
        con.execute(
            f"CREATE OR REPLACE TABLE {REJECTS_TABLE} AS FROM {REJECTS_TABLE} "
            f"ORDER BY {_REJECTS_ORDER}"
        )
    return reports


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------- public API


def connect(
    memory_limit: str | None = None, temp_directory: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB using every core this process may use. With `memory_limit` (a
    DuckDB size string such as "4GB") it holds that much at most and spills to `temp_directory`
    beyond it."""
    con = duckdb.connect()
    con.execute(f"SET threads = {_cpu_count()}")
    if memory_limit:
        try:
            con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        except duckdb.Error as exc:
            con.close()
            raise ValueError(f"DuckDB memory limit {memory_limit!r} is not a size: {exc}") from exc
    if temp_directory is not None:
        Path(temp_directory).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {_lit(str(temp_directory))}")
    return con


def open_duckdb_extract(
    path: Path, settings: Settings, progress: ProgressFn | None = None
) -> Extract:
    """`load_extract` into a DuckDB held to `settings.records.duckdb_memory_limit`, spilling
    under home (`records.open_extract` chooses the engine)."""
    con = connect(settings.records.duckdb_memory_limit, settings.duckdb_spill_dir)
    try:
        return load_extract(path, con=con, progress=progress)
    except BaseException:
        con.close()
        raise


def load_extract(
    path: Path,
    con: duckdb.DuckDBPyConnection | None = None,
    progress: ProgressFn | None = None,
) -> Extract:
    """Load and check the extract in folder `path` into `con` (a new in-memory DuckDB if None).

    Raises `ExtractError` for whole-file problems (bad manifest, missing or unreadable file,
    missing required column), before any table is loaded where the file's header shows it.
    Row-level problems go to the `rejects` table and the per-table reports.
    """
    path = Path(path)
    progress = progress or no_progress
    if not path.is_dir():
        raise ExtractError(f"{path}: not a folder")
    manifest = read_manifest(path)
    if con is None:
        con = connect()
    # File order must survive CREATE TABLE AS (CSV row numbers come from rowid).
    con.execute("SET preserve_insertion_order = true")
    # In a Jupyter kernel without ipywidgets DuckDB refuses this; it draws no bar there anyway.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")

    sources = [_inspect(con, path, table) for table in TABLES.values()]
    con.execute(
        f"CREATE OR REPLACE TABLE {REJECTS_TABLE} (table_name VARCHAR, row_number BIGINT, "
        "reason VARCHAR, record VARCHAR)"
    )
    reports = _load_tables(con, sources, manifest.extract_date, progress)
    con.execute(
        # unnest in the select list: a fifth of the time of a lateral join WITH ORDINALITY
        f"CREATE OR REPLACE TABLE {DIAGNOSES_TABLE} AS SELECT spell_id, person_id, "
        "admission_date, position, icd10 FROM (SELECT __cf_spell, spell_id, person_id, "
        "admission_date, CAST(unnest(generate_series(1, len(__cf_codes))) AS INTEGER) AS position, "
        "unnest(__cf_codes) AS icd10 FROM (SELECT rowid AS __cf_spell, *, "
        "string_split(diagnoses, ';') AS __cf_codes FROM hospital_spells)) "
        "ORDER BY __cf_spell, position"
    )
    return Extract(path=path, con=con, manifest=manifest, reports=reports)


def write_rejects(extract: Extract, out_dir: Path) -> Path:
    """Write every rejected row to `out_dir/rejects.csv` (table, row_number, reason, record)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "rejects.csv"
    extract.con.execute(
        f'COPY (SELECT table_name AS "table", row_number, reason, record FROM {REJECTS_TABLE} '
        f"ORDER BY {_REJECTS_ORDER}) TO {_lit(str(out))} (FORMAT csv, HEADER true)"
    )
    return out
