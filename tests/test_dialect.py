"""The SQL subset both engines agree on (records.dialect): every query casefinder writes is in
it, and anything outside it is refused with an error naming the construct."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from config.settings import OutcomeSettings
from features.build import features_sql
from features.cohort import ineligibility_sql
from features.outcome import outcome_sql, panel_sql
from records.contract import TABLES
from records.dialect import DialectError, to_spark
from records.loader import _late_sql, _load_sql, _Source
from records.manifest import Manifest

MANIFEST = Manifest(date(2026, 10, 31), {"prescriptions": date(2026, 9, 30)})


def test_every_query_casefinder_writes_compiles_to_spark() -> None:
    for day in (date(2024, 3, 1), date(2026, 11, 1)):
        spark = to_spark(features_sql(MANIFEST, day))
        assert "MAX_BY(" in spark and "ARG_MAX" not in spark.upper()
        assert "CAST(36.0 AS DOUBLE)" in spark  # the eFI's divisor is not a DECIMAL on Spark
        to_spark(outcome_sql(day, OutcomeSettings()))
        to_spark(panel_sql(MANIFEST, day, OutcomeSettings()))
        to_spark(f"SELECT {ineligibility_sql(day)} AS reason FROM people AS p")
    for table in TABLES.values():
        source = _Source(
            table, Path("x.csv"), "csv", tuple((c.name, "VARCHAR") for c in table.columns)
        )
        spark = to_spark(_load_sql(source, "raw", MANIFEST.extract_date).split(" AS ", 1)[1])
        assert "REGEXP_FULL_MATCH" not in spark.upper()
        if (late := _late_sql(table)) is not None:
            to_spark(late.split(" AS ", 1)[1])


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT d + INTERVAL 1 MONTH FROM t", "Interval"),
        ("SELECT date_diff('month', a, b) FROM t", "function datediff()"),
        (
            "SELECT sum(x) OVER (ORDER BY d RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
            "RANGE",
        ),
        ("SELECT arg_max(v, d) FROM t", "function arg_max()"),
        ("SELECT arg_max(v, {'at': d, 'w': w}) FROM t", "function arg_max()"),
        ("SELECT list_distinct(x) FROM t", "function array_distinct()"),
        ("SELECT strftime(d, '%Y') FROM t", "not in the agreed list"),
        ("SELECT x[1] FROM t", "x[-n]"),
    ],
)
def test_constructs_outside_the_subset_are_refused_by_name(sql: str, named: str) -> None:
    with pytest.raises(DialectError) as error:
        to_spark(sql)
    assert named in str(error.value)
    assert "outside the SQL DuckDB and Spark agree on" in str(error.value)


def test_compiled_spellings_of_the_same_meaning() -> None:
    spark = to_spark(
        "SELECT regexp_full_match(a, '[0-9]+'), isfinite(b), a[-1], 7 // 2, "
        "json_object('a', a) FROM t ORDER BY a"
    )
    assert "RLIKE '^(?:[0-9]+)$'" in spark
    assert "ABS(b) < CAST('Infinity' AS DOUBLE)" in spark
    assert "SUBSTRING(a, -1, 1)" in spark
    assert "7 DIV 2" in spark
    assert "TO_JSON(NAMED_STRUCT('a', a), MAP('ignoreNullFields', 'false'))" in spark
    assert "ORDER BY a NULLS LAST" in spark  # DuckDB's default null order, written out
    assert to_spark("SELECT p.x FROM people AS p", {"people": "db.people"}) == (
        "SELECT p.x FROM db.people AS p"
    )
