"""Build the feature table for one index date: the registry's definitions compiled to one SQL query.

The query is DuckDB SQL within the subset both engines agree on (`records.dialect`): an extract
loaded on Spark compiles it to Spark SQL. It reads only rows dated before each table's cutoff,
min(index date, complete_to + 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from config.progress import ProgressFn, no_progress
from features import codelists
from features.blocks import BLOCKS, DERIVED, PEOPLE
from features.cohort import PersonSample, cohort_sql
from features.dates import add_months, check_extract_index_date, sql_date
from features.definition import Feature
from features.registry import FEATURES
from records import Extract, Manifest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

    from records.spark import SparkExtract

ID_COLUMNS = ("person_id", "index_date", "neighbourhood", "gp_practice_code")
_TEXT_IDS = tuple(c for c in ID_COLUMNS if c != "index_date")
_INT_KINDS = ("count", "flag", "code")
# `feature_table` sets up to this many retyped columns in place (the text ids and a few more);
# past it, rebuilding the frame in one block per type is cheaper than 110+ single-column blocks.
_FEW_RETYPED = 8


class _Dates(dict):
    """Placeholder values for one block: {index}, {cutoff}, {since_N} (cutoff minus N months)."""

    def __init__(self, index_date: date, cutoff: date) -> None:
        super().__init__(
            index=sql_date(index_date),
            cutoff=sql_date(cutoff),
            index_month=str(index_date.month),
            index_day=str(index_date.day),
        )
        self._cutoff = cutoff

    def __missing__(self, key: str) -> str:
        if key.startswith("since_") and key[6:].isdigit():
            return sql_date(add_months(self._cutoff, -int(key[6:])))
        raise KeyError(f"unknown SQL placeholder {{{key}}}")


def table_cutoff(manifest: Manifest, table: str, index_date: date) -> date:
    """The first day not read from `table` for `index_date`: min(D, complete_to + 1 day)."""
    return min(index_date, manifest.complete_to_for(table) + timedelta(days=1))


def placeholders(manifest: Manifest, index_date: date, table: str | None) -> Mapping[str, str]:
    """The SQL placeholder values for a block reading `table` (None: the people table)."""
    cutoff = index_date if table is None else table_cutoff(manifest, table, index_date)
    return _Dates(index_date, cutoff)


def _q(name: str) -> str:
    return f'"{name}"'


def _literal(value: float) -> str:
    """A fill value as SQL: whole numbers as integers (so bit masks stay integers)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _by_block(features: tuple[Feature, ...]) -> dict[str, list[Feature]]:
    out: dict[str, list[Feature]] = {}
    for f in features:
        if f.block != PEOPLE and f.block not in BLOCKS and f.block not in DERIVED:
            raise RuntimeError(f"feature {f.name} names unknown block {f.block!r}")
        out.setdefault(f.block, []).append(f)
    return out


@dataclass(frozen=True)
class Query:
    """A query in parts, to be composed into a larger one (the panel joins the outcome onto the
    feature rows): its CTEs, then its SELECT, in no order."""

    ctes: tuple[str, ...]
    select: str

    def sql(self, order_by: str) -> str:
        """The whole query, its rows ordered by `order_by`."""
        return f"WITH {', '.join(self.ctes)} {self.select} ORDER BY {order_by}"


def feature_columns(features: tuple[Feature, ...] = FEATURES) -> list[str]:
    """The feature query's columns in order: the ids, then `features`."""
    return [*ID_COLUMNS, *(f.name for f in features)]


def features_parts(
    manifest: Manifest,
    index_date: date,
    features: tuple[Feature, ...] = FEATURES,
    sample: PersonSample | None = None,
) -> Query:
    """The feature query for `index_date` in parts (standard SQL): its CTEs, among them `cohort`
    (the people eligible, or only those in `sample`, with `person_id`), and the SELECT giving
    one row per person of `cohort`: ids, then `features` (default: all) typed as the stage
    types them (INTEGER for counts, flags and codes, DOUBLE otherwise).

    A subset must include the inputs of any derived feature in it.
    """
    grouped = _by_block(features)
    people = placeholders(manifest, index_date, None)
    people_cols = ", ".join(
        f"{f.sql.format_map(people)} AS {_q(f.name)}" for f in grouped.get(PEOPLE, [])
    )
    ctes = [
        "nbh AS (SELECT n.neighbourhood, row_number() OVER (ORDER BY n.neighbourhood) - 1 "
        "AS neighbourhood_code FROM (SELECT DISTINCT neighbourhood FROM people) AS n)",
        f"cohort AS (SELECT p.person_id, {sql_date(index_date)} AS index_date, p.neighbourhood, "
        f"p.gp_practice_code, {people_cols} FROM people AS p "
        f"JOIN nbh ON nbh.neighbourhood = p.neighbourhood WHERE {cohort_sql(index_date, sample)})",
    ]
    joined_cols, joins = ["c.*"], []
    for name, block in BLOCKS.items():
        columns = [(f.name, f.sql, f.fill) for f in grouped.get(name, [])]
        if not columns:
            continue
        columns += [(h.name, h.sql, h.fill) for h in block.helpers]
        values = placeholders(manifest, index_date, block.table)
        aggs = ", ".join(f"{sql.format_map(values)} AS {_q(col)}" for col, sql, _ in columns)
        ctes.append(
            f"b_{name} AS (SELECT r.person_id, {aggs} FROM ({block.relation.format_map(values)}) "
            "AS r WHERE r.person_id IN (SELECT person_id FROM cohort) GROUP BY r.person_id)"
        )
        joins.append(f"LEFT JOIN b_{name} ON b_{name}.person_id = c.person_id")
        for col, _, fill in columns:
            ref = f"b_{name}.{_q(col)}"
            joined_cols.append(
                f"{ref} AS {_q(col)}"
                if fill is None
                else f"coalesce({ref}, {_literal(fill)}) AS {_q(col)}"
            )
    ctes.append(f"joined AS (SELECT {', '.join(joined_cols)} FROM cohort AS c {' '.join(joins)})")
    previous = "joined"
    for name in DERIVED:
        exprs = [f"{f.sql.format_map(people)} AS {_q(f.name)}" for f in grouped.get(name, [])]
        ctes.append(
            f"{name} AS (SELECT x.*{''.join(', ' + e for e in exprs)} FROM {previous} AS x)"
        )
        previous = name
    out_cols = [*ID_COLUMNS] + [
        f"CAST({_q(f.name)} AS {'INTEGER' if f.kind in _INT_KINDS else 'DOUBLE'}) AS {_q(f.name)}"
        for f in features
    ]
    return Query(tuple(ctes), f"SELECT {', '.join(out_cols)} FROM {previous}")


def features_sql(
    manifest: Manifest,
    index_date: date,
    features: tuple[Feature, ...] = FEATURES,
    sample: PersonSample | None = None,
) -> str:
    """The one query computing `features` (default: all) for `index_date` (standard SQL), for
    everyone eligible (or only the people in `sample`), by person_id (`features_parts`)."""
    return features_parts(manifest, index_date, features, sample).sql("person_id")


def feature_table(frame: pd.DataFrame, *, some_columns: bool = False) -> pd.DataFrame:
    """The feature query's result as the features stage gives it: integers where a column is
    complete, floats with NaN where values are missing, ids as text. These are the types pandas
    reads from a Parquet file of the query's columns (an INTEGER column with a NULL anywhere in
    the file reads as float64), so a table Spark writes reads as this one. `some_columns`:
    `frame` holds the ids and only some of the features (the others are not looked for).

    Columns already of their type are left as they are (an Arrow result converted by pandas
    mostly is); when more than a few must change, the frame is rebuilt with one block per type,
    so later filters and stacks do not walk 110+ one-column blocks."""
    retyped: dict[str, pd.Series] = {}
    for f in FEATURES:
        if some_columns and f.name not in frame.columns:
            continue
        column = frame[f.name]
        kind = "int32" if f.kind in _INT_KINDS and not column.isna().any() else "float64"
        if column.dtype != kind:
            retyped[f.name] = column.astype(kind)
    for name in _TEXT_IDS:
        retyped[name] = frame[name].astype(str)
    if len(retyped) > _FEW_RETYPED:
        return pd.DataFrame({c: retyped.get(c, frame[c]) for c in frame.columns}, index=frame.index)
    for name, column in retyped.items():
        frame[name] = column
    return frame


def feature_query(extract: Extract, index_date: date, sample: PersonSample | None = None) -> str:
    """The feature query for `index_date` over `extract` (its code lists registered). Raises
    `FeatureError` for an index date this extract cannot support."""
    index_date = check_extract_index_date(extract, index_date)
    codelists.register(extract)
    return features_sql(extract.manifest, index_date, sample=sample)


def build_features(
    extract: Extract,
    index_date: date,
    progress: ProgressFn | None = None,
    sample: PersonSample | None = None,
) -> pd.DataFrame:
    """One row per eligible person at `index_date` (only those in `sample`, when given): ids,
    then every feature in registry order.

    Opted-out people are included (flag `data_opt_out`). Raises `FeatureError` for an index date
    this extract cannot support (an `IndexDate` is already checked).
    """
    progress = progress or no_progress
    sql = feature_query(extract, index_date, sample)
    progress("features", 0.0)
    progress("features", 0.1)
    frame = extract.frame(sql)
    progress("features", 0.9)
    frame = feature_table(frame)
    progress("features", 1.0)
    return frame


def build_features_df(extract: SparkExtract, index_date: date) -> SparkDataFrame:
    """`build_features`' query on a Spark extract as a Spark DataFrame, nothing collected, by
    person_id (the columns as Spark types them: written as Parquet and read by pandas they give
    `build_features`' table; `feature_table` gives a collected part the stage's types)."""
    return extract.df(feature_query(extract, index_date))


def neighbourhood_labels(extract: Extract) -> dict[int, str]:
    """Neighbourhood code -> name, as `neighbourhood_code` numbers them (sorted names)."""
    rows = extract.rows(
        "SELECT neighbourhood FROM (SELECT DISTINCT neighbourhood FROM people) AS n "
        "ORDER BY neighbourhood"
    )
    return {i: r[0] for i, r in enumerate(rows)}
