"""`casefinder features` and `casefinder panel` on Spark write their tables from Spark itself: a
folder of Parquet part files at `--out`, which pandas reads as exactly DuckDB's file (same
columns in the same order, same dtypes, the same rows in the same order, floats to 1e-9, nulls
in the same places), and no person's row reaches the driver on the way: every result a Spark
DataFrame hands to the driver during the commands is recorded, and none is person-level.

Known divergences: none. The file/folder difference is by design (docs/spark.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from extract_builder import write_extract
from spark_extracts import assert_same_output
from test_spark import PANEL_ARGS, _cli_rows, assert_frailty_edges
from typer.testing import CliRunner

from casefinder.cli import app
from features import feature_table

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]


@dataclass(frozen=True)
class Collected:
    """One result handed to the driver: by which method, how many rows, which columns."""

    method: str
    rows: int
    columns: tuple[str, ...]


@contextmanager
def driver_collects() -> Iterator[list[Collected]]:
    """Record every result a (classic) Spark DataFrame hands to the driver while active:
    `collect` (and `take`, `head`, `first`, which call it), `tail`, `toLocalIterator` (rows
    counted as they are read), `toPandas` and `toArrow`."""
    from pyspark.sql.classic.dataframe import DataFrame

    seen: list[Collected] = []
    patch = pytest.MonkeyPatch()

    def wrap(name: str, count: Callable[[Any], int]) -> None:
        original = getattr(DataFrame, name)

        def recording(self: DataFrame, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            seen.append(Collected(name, count(result), tuple(self.columns)))
            return result

        patch.setattr(DataFrame, name, recording)

    wrap("collect", len)
    wrap("tail", len)
    wrap("toPandas", len)
    wrap("toArrow", lambda table: table.num_rows)
    iterate = DataFrame.toLocalIterator

    def local_iterator(self: DataFrame, *args: Any, **kwargs: Any) -> Iterator[Any]:
        rows = iterate(self, *args, **kwargs)
        index = len(seen)
        seen.append(Collected("toLocalIterator", 0, tuple(self.columns)))
        for n, row in enumerate(rows, start=1):
            seen[index] = Collected("toLocalIterator", n, seen[index].columns)
            yield row

    patch.setattr(DataFrame, "toLocalIterator", local_iterator)
    try:
        yield seen
    finally:
        patch.undo()


def person_level(seen: list[Collected], people: int) -> list[Collected]:
    """The results that carry people: a person_id column, or as many rows as there are people."""
    return [c for c in seen if "person_id" in c.columns or c.rows >= people]


@contextmanager
def several_part_files(spark: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The commands' Spark session sorts into 3 partitions, not coalesced (the row order must
    hold across part files); the shared session's settings are put back afterwards."""
    keys = {
        "spark.sql.shuffle.partitions": "3",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }
    before = {key: spark.conf.get(key, None) for key in keys}
    monkeypatch.setenv("CASEFINDER_ENGINE__SHUFFLE_PARTITIONS", "3")
    monkeypatch.setenv(
        "CASEFINDER_ENGINE__CONF", '{"spark.sql.adaptive.coalescePartitions.enabled": "false"}'
    )
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _hand_built(folder: Path) -> tuple[Path, list[str]]:
    return write_extract(folder, _cli_rows()), PANEL_ARGS


def _generated(folder: Path) -> tuple[Path, list[str]]:
    from synthetic import SynthConfig, generate

    generate(SynthConfig(people=300, seed=23), folder)  # Parquet files
    return folder, ["--from", "2025-04-01", "--to", "2025-10-01", "--every", "3M"]


@pytest.mark.parametrize("make", [_hand_built, _generated], ids=["hand-built", "generated"])
def test_features_and_panel_on_spark_write_duckdbs_tables_without_collecting_people(
    spark: Any,
    cli_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[[Path], tuple[Path, list[str]]],
) -> None:
    from records import load_extract

    folder, panel_args = make(tmp_path / "extract")
    people = load_extract(folder).reports["people"].loaded
    commands = {"features": ["features", str(folder)], "panel": ["panel", str(folder), *panel_args]}
    runner = CliRunner()
    for name, args in commands.items():
        out = tmp_path / f"duckdb-{name}.parquet"
        result = runner.invoke(app, [*args, "--out", str(out), "--engine", "duckdb"])
        assert result.exit_code == 0, result.output
    # A file already at Spark's --out: replaced, as DuckDB replaces its own file.
    (tmp_path / "spark-features.parquet").write_bytes(b"an old file")
    with several_part_files(spark, monkeypatch), driver_collects() as seen:
        for name, args in commands.items():
            out = tmp_path / f"spark-{name}.parquet"
            result = runner.invoke(app, [*args, "--out", str(out), "--engine", "spark"])
            assert result.exit_code == 0, result.output
            assert "-> " in result.output
        during_commands = len(seen)
        # The probe sees a person-level collect when there is one: the written table, read back.
        read_back = spark.read.parquet(str(tmp_path / "spark-features.parquet")).toPandas()
    assert during_commands > 0, "the probe recorded nothing: the loader's counts should show"
    assert person_level(seen[:during_commands], people) == []
    caught = person_level(seen[during_commands:], people)
    assert Collected("toPandas", len(read_back), tuple(read_back.columns)) in caught

    for name in commands:
        duck_out = tmp_path / f"duckdb-{name}.parquet"
        spark_out = tmp_path / f"spark-{name}.parquet"
        assert duck_out.is_file() and spark_out.is_dir()
        parts = sorted(spark_out.glob("part-*.parquet"))
        assert parts, f"{name}: no part files"
        duck = assert_same_output(duck_out, spark_out)
        assert len(duck) > 0
        order = ["person_id"] if name == "features" else ["index_date", "person_id"]
        assert duck[order].equals(duck[order].sort_values(order, ignore_index=True))
        if make is _generated:
            assert len(parts) > 1, f"{name}: the order was not checked across part files"
    if make is _hand_built:
        assert_frailty_edges(pd.read_parquet(tmp_path / "spark-panel.parquet"))
    else:
        panel = pd.read_parquet(tmp_path / "spark-panel.parquet")
        assert panel["index_date"].nunique() == 3 and (panel["data_opt_out"] == 0).all()


def test_an_integer_column_reads_as_feature_table_types_it_over_all_part_files(
    spark: Any, tmp_path: Path
) -> None:
    """`feature_table` makes an integer feature int32 when it has no missing value, float64
    otherwise (so a DuckDB panel stacked from dates is float64 if any date misses a value);
    pandas reads a nullable INTEGER column of Spark's part files the same way, over the whole
    folder: one NULL in one part file makes the column float64."""
    from records.spark import write_parquet

    values = [("P1", 1), ("P2", 2), ("P3", None), ("P4", 4)]
    rows = spark.createDataFrame(values, "person_id string, age int")
    df = rows.repartitionByRange(2, "person_id").sortWithinPartitions("person_id")
    with_null = tmp_path / "with-null.parquet"
    write_parquet(df, str(with_null))
    write_parquet(df.where("age IS NOT NULL"), str(tmp_path / "complete.parquet"))
    assert len(list(with_null.glob("part-*.parquet"))) == 2
    ids = {"neighbourhood": "North", "gp_practice_code": "P88001"}
    parts = [
        pd.DataFrame({"person_id": ["P1", "P2"], **ids, "age": [1, 2]}),
        pd.DataFrame({"person_id": ["P3", "P4"], **ids, "age": [None, 4]}),
    ]
    stacked = pd.concat([feature_table(p, some_columns=True) for p in parts], ignore_index=True)
    read = pd.read_parquet(with_null)
    assert read["age"].dtype == stacked["age"].dtype == "float64"
    assert read["age"].isna().tolist() == [False, False, True, False]
    assert pd.read_parquet(tmp_path / "complete.parquet")["age"].dtype == "int32"
