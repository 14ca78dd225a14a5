"""The outcome (configured by `OutcomeSettings`) and the training panel over many index dates.

An outcome for index date D needs its whole window observed: D + window - 1 day must be on or
before the extract date and each outcome table's `complete_to`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from config.progress import ProgressFn, no_progress
from config.settings import OutcomeSettings
from features import codelists
from features.blocks import in_list
from features.build import Query, feature_columns, feature_table, features_parts
from features.cohort import PersonSample, cohort_sql
from features.dates import (
    FeatureError,
    add_months,
    check_extract_index_date,
    check_index_date,
    history_start,
    sql_date,
)
from records import Extract, Manifest
from records.contract import TABLES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

    from records.spark import SparkExtract


def window_end(index_date: date, definition: OutcomeSettings) -> date:
    """The last day of the outcome window for `index_date`."""
    return add_months(index_date, definition.window_months) - timedelta(days=1)


def observed_to(manifest: Manifest, definition: OutcomeSettings) -> date:
    """The last day for which every table the outcome reads is complete."""
    return min(manifest.complete_to_for(t) for t in definition.tables)


def last_observed_index_date(manifest: Manifest, definition: OutcomeSettings) -> date:
    """The latest first-of-month index date whose whole outcome window is observed."""
    day = add_months(observed_to(manifest, definition).replace(day=1), -definition.window_months)
    while window_end(add_months(day, 1), definition) <= observed_to(manifest, definition):
        day = add_months(day, 1)
    return day


def check_outcome_observed(
    manifest: Manifest, index_dates: list[date], definition: OutcomeSettings
) -> None:
    """Raise `FeatureError` naming every index date whose outcome window is not yet observed."""
    limit = observed_to(manifest, definition)
    late = [d for d in index_dates if window_end(d, definition) > limit]
    if late:
        shown = ", ".join(str(d) for d in late[:6]) + (" ..." if len(late) > 6 else "")
        tables = ", ".join(f"{t} to {manifest.complete_to_for(t)}" for t in definition.tables)
        raise FeatureError(
            f"outcome not yet observed for index date(s) {shown}: the {definition.window_months}"
            f"-month window must end by {limit} (records complete: {tables}); the latest index "
            f"date with an observed outcome is {last_observed_index_date(manifest, definition)}"
        )


def _rule_sql(rule: OutcomeSettings.Rule) -> str:
    cond = [f"t.{rule.column} IN {in_list(rule.values)}"]
    cond += [f"t.{column} IN {in_list(values)}" for column, values in rule.where.items()]
    return f"sum(CASE WHEN {' AND '.join(cond)} THEN 1 ELSE 0 END)"


@dataclass(frozen=True)
class _OutcomeParts:
    """The outcome for the people of a CTE named `cohort` (with `person_id`), to be joined onto
    a relation aliased `c` holding them: CTEs counting each rule's records per person in the
    window, the LEFT JOINs of those onto `c`, and the columns (name, expression) `outcome` and
    one 0/1 per agency, typed TINYINT."""

    ctes: tuple[str, ...]
    joins: str
    columns: tuple[tuple[str, str], ...]


def _outcome_parts(index_date: date, definition: OutcomeSettings) -> _OutcomeParts:
    start, end = sql_date(index_date), sql_date(add_months(index_date, definition.window_months))
    rules = [(name, r) for name, rs in definition.agencies.items() for r in rs]
    rules += [("__always", r) for r in definition.always_counts]
    ctes, joins = [], []
    met: dict[str, list[str]] = {}
    for table in definition.tables:
        mine = [(i, name, r) for i, (name, r) in enumerate(rules) if r.table == table]
        date_column = TABLES[table].date_column
        counts = ", ".join(f"{_rule_sql(r)} AS r{i}" for i, _, r in mine)
        ctes.append(
            f"o_{table} AS (SELECT t.person_id, {counts} FROM {table} AS t "
            f"WHERE t.{date_column} >= {start} AND t.{date_column} < {end} "
            "AND t.person_id IN (SELECT person_id FROM cohort) GROUP BY t.person_id)"
        )
        joins.append(f"LEFT JOIN o_{table} ON o_{table}.person_id = c.person_id")
        for i, name, r in mine:
            met.setdefault(name, []).append(f"coalesce(o_{table}.r{i}, 0) >= {r.min_count}")
    flags = {
        name: f"CASE WHEN {' OR '.join(met[name])} THEN 1 ELSE 0 END"
        for name in definition.agencies
    }
    always = " OR ".join(met.get("__always", [])) or "1 = 0"
    involved = " + ".join(f"({flag})" for flag in flags.values())
    outcome = f"CASE WHEN {involved} >= {definition.min_agencies} OR {always} THEN 1 ELSE 0 END"
    columns = [("outcome", outcome), *flags.items()]
    return _OutcomeParts(
        tuple(ctes),
        " ".join(joins),
        tuple((name, f"CAST({sql} AS TINYINT)") for name, sql in columns),
    )


def outcome_sql(
    index_date: date, definition: OutcomeSettings, sample: PersonSample | None = None
) -> str:
    """The query giving person_id, outcome and one 0/1 column per agency (standard SQL), for
    everyone eligible (or only the people in `sample`), by person_id."""
    parts = _outcome_parts(index_date, definition)
    eligible = cohort_sql(index_date, sample)
    cohort = f"cohort AS (SELECT p.person_id FROM people AS p WHERE {eligible})"
    columns = ", ".join(f"{sql} AS {name}" for name, sql in parts.columns)
    select = f"SELECT c.person_id, {columns} FROM cohort AS c {parts.joins}"
    return Query((cohort, *parts.ctes), select).sql("c.person_id")


def build_outcome(
    extract: Extract,
    index_date: date,
    definition: OutcomeSettings | None = None,
    sample: PersonSample | None = None,
) -> pd.DataFrame:
    """person_id, outcome (0/1) and one 0/1 column per agency, for everyone eligible at
    `index_date` (only those in `sample`, when given). Raises `FeatureError` if the outcome
    window is not fully observed."""
    definition = definition or OutcomeSettings()
    index_date = check_extract_index_date(extract, index_date)
    check_outcome_observed(extract.manifest, [index_date], definition)
    frame = extract.frame(outcome_sql(index_date, definition, sample))
    frame["person_id"] = frame["person_id"].astype(str)
    return frame


# The panel's row order: index date, then person (each date's query orders by person_id).
PANEL_ORDER = ("index_date", "person_id")


def panel_sql(
    manifest: Manifest,
    index_date: date,
    definition: OutcomeSettings,
    *,
    include_opted_out: bool = False,
    sample: PersonSample | None = None,
) -> str:
    """The panel's rows for one index date as one query (standard SQL, run as it is by DuckDB
    and compiled for Spark): the feature query's rows with the outcome computed for those same
    people (`outcome`, `outcome_<agency>`), opted-out people left out unless
    `include_opted_out`, by person_id.

    The outcome is joined onto the feature rows, counting records for the feature query's own
    `cohort`: the two cannot cover different people.
    """
    features = features_parts(manifest, index_date, sample=sample)
    outcome = _outcome_parts(index_date, definition)
    ctes = (*features.ctes, f"feature_rows AS ({features.select})", *outcome.ctes)
    names = {"outcome": "outcome", **{a: f"outcome_{a}" for a in definition.agencies}}
    columns = [f'c."{name}"' for name in feature_columns()]
    columns += [f"{sql} AS {names[name]}" for name, sql in outcome.columns]
    where = "" if include_opted_out else " WHERE c.data_opt_out = 0"
    select = f"SELECT {', '.join(columns)} FROM feature_rows AS c {outcome.joins}{where}"
    return Query(ctes, select).sql(", ".join(f"c.{column}" for column in PANEL_ORDER))


def panel_dates(
    extract: Extract, index_dates: list[date], definition: OutcomeSettings
) -> list[date]:
    """The panel's index dates, sorted and checked once; `FeatureError` before anything is built
    if there are none, or any is invalid or its outcome window is not fully observed."""
    if not index_dates:
        raise FeatureError("no index dates given for the panel")
    start = history_start(extract)
    if start is None:
        raise FeatureError(f"{extract.path.name}: the extract holds no dated records")
    dates = [check_index_date(extract.manifest, day, start) for day in sorted(set(index_dates))]
    check_outcome_observed(extract.manifest, dates, definition)
    return dates


def panel_query(
    extract: Extract,
    index_date: date,
    definition: OutcomeSettings,
    *,
    include_opted_out: bool = False,
    sample: PersonSample | None = None,
) -> str:
    """`panel_sql` for a checked `index_date` over `extract` (its code lists registered)."""
    codelists.register(extract)
    return panel_sql(
        extract.manifest, index_date, definition, include_opted_out=include_opted_out,
        sample=sample,
    )  # fmt: skip


def build_panel(
    extract: Extract,
    index_dates: list[date],
    definition: OutcomeSettings | None = None,
    progress: ProgressFn | None = None,
    *,
    include_opted_out: bool = False,
    sample: PersonSample | None = None,
) -> pd.DataFrame:
    """Features and outcome for every eligible person at each index date, stacked in date order,
    each date by person_id (`panel_sql`).

    Agency columns are named `outcome_<agency>`. People who opted out are left out (contract:
    not used for training) unless `include_opted_out`. With `sample`, only its people are read
    (in the query: on Spark the rest never reach the driver), with all their index dates.
    Raises `FeatureError` before building anything if any date is invalid or its outcome window
    is not fully observed.
    """
    definition = definition or OutcomeSettings()
    progress = progress or no_progress
    dates = panel_dates(extract, index_dates, definition)

    def sql(on: Extract, day: date) -> str:
        return panel_query(on, day, definition, include_opted_out=include_opted_out, sample=sample)

    progress("panel", 0.0)
    if extract.engine != "duckdb" or len(dates) == 1:
        parts = []
        for i, day in enumerate(dates):
            parts.append(feature_table(extract.frame(sql(extract, day))))
            progress("panel", (i + 1) / len(dates))
        return pd.concat(parts, ignore_index=True)
    # Stacked as Arrow and typed once. In `train`, beside its import thread, pandas' concat of
    # 8 typed frames of 117 one-column blocks took 0.47 s; this takes 0.2-0.3 s.
    stacked = pa.concat_tables(_dates_concurrently(extract, dates, sql, progress))
    return feature_table(stacked.to_pandas())


def build_panel_df(
    extract: SparkExtract,
    index_dates: list[date],
    definition: OutcomeSettings | None = None,
    *,
    include_opted_out: bool = False,
    sample: PersonSample | None = None,
) -> SparkDataFrame:
    """`build_panel` on a Spark extract as one Spark DataFrame, nothing collected: each date's
    `panel_sql` stacked and sorted by `PANEL_ORDER` (the columns as Spark types them; written to
    Parquet and read by pandas they give `build_panel`'s table)."""
    definition = definition or OutcomeSettings()
    dates = panel_dates(extract, index_dates, definition)

    def one(day: date) -> SparkDataFrame:
        sql = panel_query(
            extract, day, definition, include_opted_out=include_opted_out, sample=sample
        )
        return extract.df(sql)

    parts = [one(day) for day in dates]
    return reduce(lambda a, b: a.unionByName(b), parts).orderBy(*PANEL_ORDER)


# Index dates built at once on DuckDB: one query's single-threaded parts (its start, the transfer
# to pandas) overlap another's parallel ones. On 2 cores, 30,000 people, the 8-date panel (the
# same frame): 2.6 s against 3.3 s one at a time.
PANEL_DATES_AT_ONCE = 2


def _dates_concurrently(
    extract: Extract,
    dates: list[date],
    sql: Callable[[Extract, date], str],
    progress: ProgressFn,
) -> list[pa.Table]:
    """The result of `sql(extract, day)` for every date, `PANEL_DATES_AT_ONCE` at a time, each
    on its own connection to the extract's database; the results in date order."""
    codelists.register(extract)  # once, before the threads read them

    def on_cursor(day: date) -> pa.Table:
        with extract.cursor() as own:
            return own.arrow(sql(own, day))

    with ThreadPoolExecutor(PANEL_DATES_AT_ONCE, thread_name_prefix="panel") as pool:
        futures = [pool.submit(on_cursor, day) for day in dates]
        parts = []
        for i, future in enumerate(futures):
            parts.append(future.result())
            progress("panel", (i + 1) / len(dates))
    return parts
