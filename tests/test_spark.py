"""The Spark engine gives exactly DuckDB's results: the loader's rejects, the panel (generative
tests in the style of ehrQL's: hypothesis builds small extracts with edge cases on purpose, both
engines build the panel, the tables must be identical), the SQL traps, and the CLI.

Known divergences between the engines (none hidden by a tolerance):
- none in the panel. Floats are compared to 1e-9 relative (the engines may sum in a different
  order); integers and nulls exactly.
- the raw `record` JSON of a rejected row: Spark writes a Parquet file's typed values in its own
  spelling (e.g. dates); CSV records are the same text. Reasons, row numbers and counts match.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from extract_builder import add_row, valid_rows, write_extract
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from spark_extracts import (
    BATCH,
    INDEX_DATES,
    MANIFEST,
    assert_same_output,
    extracts,
    merged,
    to_catalog,
)
from typer.testing import CliRunner

from casefinder.cli import app
from config.settings import OutcomeSettings
from features import build_panel
from features.dates import add_months
from records import ExtractError, load_extract
from records.contract import TABLES
from records.spark import SparkExtract, load_spark_extract

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"  # as the `spark` fixture's (conftest.py)


def _write(folder: Path, rows: dict[str, list[dict[str, str]]], manifest: dict) -> Path:
    """CSV files with every contract column as header (also for tables with no rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    for name, table in TABLES.items():
        columns = [c.name for c in table.columns]
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([[r.get(c, "") for c in columns] for r in rows.get(name, [])])
    return folder


def assert_same_table(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    """Same columns, rows and nulls; integers equal, floats to 1e-9."""
    assert list(duck.columns) == list(spark.columns)
    assert len(duck) == len(spark)
    duck, spark = duck.reset_index(drop=True), spark.reset_index(drop=True)
    for column in duck.columns:
        a, b = duck[column], spark[column]
        assert (a.isna().to_numpy() == b.isna().to_numpy()).all(), f"nulls differ in {column}"
        a, b = a[a.notna()], b[b.notna()]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            assert np.allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=0), column
        elif pd.api.types.is_integer_dtype(a):
            assert (a.astype("int64").to_numpy() == b.astype("int64").to_numpy()).all(), column
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column


def _on_spark(duck: Any, spark: Any) -> SparkExtract:
    """DuckDB's loaded tables as the views of a Spark extract."""
    views = {}
    for i, name in enumerate([*TABLES, "hospital_diagnoses", "rejects"]):
        view = f"__cf_gen{i}_{name}"
        spark.createDataFrame(duck.con.sql(f"SELECT * FROM {name}").to_arrow_table()).cache()\
            .createOrReplaceTempView(view)  # fmt: skip
        views[name] = view
    return SparkExtract(duck.path, spark, duck.manifest, duck.reports, views)


def _reports(extract: Any) -> dict[str, tuple[int, int, int, dict[str, int]]]:
    return {n: (r.read, r.loaded, r.rejected, r.reasons) for n, r in extract.reports.items()}


def _rejects(extract: Any) -> list[tuple[Any, ...]]:
    return extract.rows(
        "SELECT table_name, row_number, reason, record FROM rejects ORDER BY table_name, row_number"
    )


def test_sql_traps_agree(spark: Any) -> None:
    """Month ends and 29 February, day differences, division, null ordering and arg_max ties:
    the same DuckDB SQL gives the same answers on both engines."""
    import duckdb

    from records.dialect import to_spark

    days = [date(2024, 1, 31), date(2024, 2, 29), date(2023, 2, 28), date(2024, 3, 31)]
    # Window starts are computed in Python; Spark's add_months clamps the same way.
    cases = [(day, months) for day in days for months in (-12, -1, 1, 12, -780)]
    query = ", ".join(f"add_months(DATE '{d}', {m})" for d, m in cases)
    [theirs] = spark.sql(f"SELECT {query}").collect()
    assert [add_months(d, m) for d, m in cases] == list(theirs)
    sql = (
        "SELECT k, date_diff('day', DATE '2024-02-28', d) AS days, 7 / 2 AS half, "
        "-7 // 2 AS floor_div, n / 36.0 AS ratio, "
        "arg_max(v, CASE WHEN v IS NOT NULL THEN {'at': d, 'v': v} END) AS latest "
        "FROM (VALUES (1, DATE '2024-03-01', 3.0, 1), (1, DATE '2024-03-01', 5.0, 1), "
        "(1, DATE '2024-02-29', 9.0, 1), (2, DATE '2025-03-01', NULL, 2), "
        "(NULL, DATE '2024-02-28', 1.0, 3)) AS t(k, d, v, n) GROUP BY k, d, n ORDER BY k, days"
    )
    duck = duckdb.sql(sql).fetchall()
    theirs = [tuple(r) for r in spark.sql(to_spark(sql)).collect()]
    assert [tuple(float(x) if isinstance(x, float) else x for x in r) for r in duck] == theirs
    assert duck[0][:2] == (1, 1) and duck[1][-1] == 5.0  # the tie on 1 March: the larger value
    assert duck[-1][0] is None  # NULL keys sort last on both


def test_loader_rules_give_the_same_rejects_and_errors(spark: Any, tmp_path: Path) -> None:
    rows = valid_rows()
    add_row(rows, "people", person_id="P004", birth_date="2030-01-01")  # after extract_date
    add_row(rows, "people", person_id="P001")  # duplicate
    add_row(rows, "people", person_id="P005", sex="7", imd_decile="11")
    add_row(rows, "people", person_id="P006", date_of_death="1930-01-01")
    add_row(rows, "gp_events", person_id="NOBODY")
    add_row(rows, "gp_events", event_date="2024-13-01")
    add_row(rows, "gp_events", event_date=" 2024-01-05 ", value="abc")
    add_row(rows, "gp_events", snomed_code="38341003 ", value="2.5\t")  # trailing space only
    add_row(rows, "hospital_spells", spell_id="S1")  # duplicate spell
    add_row(rows, "hospital_spells", spell_id="S9", discharge_date="2024-01-01")
    add_row(rows, "hospital_spells", spell_id="S8", person_id="P002", admission_date="2025-02-01")
    add_row(rows, "social_care", hours_per_week="inf")
    add_row(rows, "caseloads", caseload="unknown")
    folder = write_extract(tmp_path / "messy", rows)
    duck, ours = load_extract(folder), load_spark_extract(folder, spark)
    assert _reports(duck) == _reports(ours)
    assert ours.n_rejected >= 10
    assert _rejects(duck) == _rejects(ours)  # reasons, row numbers and the records as read
    diagnoses = "SELECT spell_id, position, icd10 FROM hospital_diagnoses ORDER BY 1, 2"
    assert duck.rows(diagnoses) == ours.rows(diagnoses)

    # The same extract as tables of a Spark catalog database (`--engine spark` on
    # `catalog:DATABASE`): the same counts, rejects and reasons.
    source = to_catalog(spark, folder, "cf_messy", tmp_path / "warehouse")
    in_catalog = load_spark_extract(source, spark)
    assert _reports(in_catalog) == _reports(duck)
    assert _rejects(in_catalog) == _rejects(duck)
    spark.sql("DROP TABLE cf_messy.caseloads")
    with pytest.raises(ExtractError, match=r"cf_messy\.caseloads: missing table"):
        load_spark_extract(source, spark)

    (folder / "caseloads.csv").write_text("person_id,start_date\nP001,2024-01-01\n")
    with pytest.raises(ExtractError) as duck_error:
        load_extract(folder)
    with pytest.raises(ExtractError) as spark_error:
        load_spark_extract(folder, spark)
    assert str(spark_error.value) == str(duck_error.value)
    assert "caseloads.csv: missing required column" in str(spark_error.value)


@pytest.mark.parametrize(
    "row",
    [
        b"P009,1940-03-01,2,A,E01000001,3,P88001,North,,,,N,extra\n",
        b'P009,"1940-03-01,2\n',
        b"P009,1940-03-01,2,A,E01000001,3,P88001,North\xe9,,,,N\n",
    ],
    ids=["too-many-fields", "unterminated-quote", "not-utf-8"],
)
def test_a_malformed_csv_row_is_named_by_its_line_as_on_duckdb(
    spark: Any, tmp_path: Path, row: bytes
) -> None:
    folder = write_extract(tmp_path / "ragged", valid_rows())
    with (folder / "people.csv").open("ab") as f:  # people load first: the error comes at once
        f.write(row)
    with pytest.raises(ExtractError) as duck_error:
        load_extract(folder)
    with pytest.raises(ExtractError) as spark_error:
        load_spark_extract(folder, spark)
    assert str(spark_error.value) == str(duck_error.value)
    assert str(spark_error.value).startswith("people.csv: unreadable file (line 5: ")


@settings(
    max_examples=3,  # each example is BATCH extracts: 24 random extracts in all
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows its extract as drawn
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(extracts(), min_size=BATCH, max_size=BATCH))
def test_panel_is_identical_on_both_engines(spark: Any, tmp_path_factory: Any, batch: Any) -> None:
    # The loader's parity is the test above; here Spark reads DuckDB's loaded tables (a Spark
    # load costs a minute of query planning per extract on one core). The batch's extracts are
    # merged into one with their ids kept apart (`merged`): one panel build per engine.
    folder = _write(tmp_path_factory.mktemp("gen"), merged(batch), MANIFEST)
    duck = load_extract(folder)
    ours = _on_spark(duck, spark)
    try:
        definition = OutcomeSettings()
        expected = build_panel(duck, list(INDEX_DATES), definition, include_opted_out=True)
        actual = build_panel(ours, list(INDEX_DATES), definition, include_opted_out=True)
        drawn = {f"x{k}" for k in range(BATCH)}
        assert set(expected["person_id"].str.split("_").str[0]) <= drawn
        assert_same_table(expected, actual)
    finally:
        ours.close()


def _cli_rows() -> dict[str, list[dict[str, str]]]:
    """The hand-built extract of the command tests, with edge cases at the index date."""
    rows = valid_rows()
    add_row(rows, "people", person_id="P010", birth_date="1961-11-01")  # 65 on the index date
    add_row(rows, "hospital_spells", spell_id="S3", admission_date="2025-09-30",
            discharge_date="2025-10-01", discharge_destination="54")  # fmt: skip
    add_row(rows, "hospital_spells", spell_id="S4", admission_date="2025-09-30",
            discharge_date="2025-10-01", discharge_destination="19")  # fmt: skip
    # Frailty scores of exactly 5 and 15, the band edges: summed as doubles in this order they
    # come out 4.999999999999999 and 15.000000000000002 (Spark once banded such people apart
    # from DuckDB at 100,000 people); points are summed in integer tenths.
    add_row(rows, "people", person_id="P011", birth_date="1950-01-01")
    add_row(rows, "hospital_spells", spell_id="S5", person_id="P003", admission_date="2025-01-10",
            discharge_date="2025-01-12", diagnoses="E53;E86;I63")  # fmt: skip
    add_row(rows, "hospital_spells", spell_id="S6", person_id="P011", admission_date="2025-01-10",
            discharge_date="2025-01-12", diagnoses="F00;R41;E86;B96")  # fmt: skip
    return rows


def assert_frailty_edges(panel: pd.DataFrame) -> None:
    """`_cli_rows`' people at the frailty score's band edges: exactly 5 and 15, intermediate."""
    edges = panel.set_index("person_id").loc[["P003", "P011"], ["hfrs_score", "hfrs_band"]]
    assert edges["hfrs_score"].tolist() == [5.0, 15.0]
    assert edges["hfrs_band"].tolist() == [1, 1]


PANEL_ARGS = ["--from", "2025-10-01", "--to", "2025-10-01", "--every", "1M", "--include-opted-out"]


def test_panel_command_on_a_spark_catalog_writes_duckdbs_panel(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CASEFINDER_ENGINE__NAME", raising=False)
    monkeypatch.setenv("CASEFINDER_ENGINE__MASTER", "local[1]")
    folder = write_extract(tmp_path / "x", _cli_rows())
    # Spark reads the extract as tables of a catalog database (a folder on Spark is read by
    # benchmarks/bench_spark.py --quick, which the suite runs and which compares the tables).
    sources = {"duckdb": str(folder), "spark": to_catalog(spark, folder, "cf_cli", tmp_path / "w")}
    outs = {}
    for engine, source in sources.items():
        outs[engine] = tmp_path / f"{engine}.parquet"
        result = CliRunner().invoke(
            app,
            ["panel", source, *PANEL_ARGS, "--out", str(outs[engine]), "--engine", engine],
        )
        assert result.exit_code == 0, result.output
    monkeypatch.delenv("CASEFINDER_ENGINE__NAME", raising=False)
    assert outs["spark"].is_dir()  # Spark writes a folder of part files, read as one table
    duck = assert_same_output(outs["duckdb"], outs["spark"])  # dtypes and row order included
    assert len(duck) > 0
    assert_frailty_edges(pd.read_parquet(outs["spark"]))


# Its own JVM in a subprocess, so its own group: it runs beside the session's Spark tests.
@pytest.mark.xdist_group("spark-connect")
def test_panel_command_over_spark_connect_writes_duckdbs_panel(tmp_path: Path) -> None:
    """The Spark Connect path (`[engine] remote`, as for a cluster or Databricks) run for real:
    a local Spark Connect server (`remote = "local[1]"`) in a fresh process, since this
    process already holds a classic session."""
    folder = write_extract(tmp_path / "x", _cli_rows())
    out = tmp_path / "connect.parquet"
    env = {
        **os.environ,
        "CASEFINDER_HOME": str(tmp_path / "home"),
        "CASEFINDER_ENGINE__REMOTE": "local[1]",
        "CASEFINDER_ENGINE__CONF": json.dumps(
            {"spark.sql.shuffle.partitions": "1", "spark.driver.extraJavaOptions": TEST_JVM}
        ),
    }
    env.pop("CASEFINDER_ENGINE__NAME", None)
    command = [sys.executable, "-m", "casefinder.cli", "panel", str(folder), *PANEL_ARGS,
               "--out", str(out), "--engine", "spark"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    duck = load_extract(folder)
    expected = build_panel(duck, [date(2025, 10, 1)], OutcomeSettings(), include_opted_out=True)
    assert len(expected) > 0
    ours = pd.read_parquet(out)  # the folder Spark wrote over Connect, read as one table
    pd.testing.assert_frame_equal(ours, expected, check_exact=False, rtol=1e-9, atol=0)
    assert_frailty_edges(ours)


def test_training_sample_is_seeded_and_by_person_on_both_engines(
    spark: Any, tmp_path: Path
) -> None:
    from config.settings import EngineSettings, load_settings
    from features.cohort import PersonSample
    from tests.serving_fixtures import write_small_extract

    duck = load_extract(write_small_extract(tmp_path / "x"))  # 240 people
    dates, definition = [date(2025, 7, 1), date(2025, 10, 1)], OutcomeSettings()
    half = PersonSample(0.5, seed=3)
    full = build_panel(duck, dates, definition)
    sampled = build_panel(duck, dates, definition, sample=half)
    people = set(sampled["person_id"])
    assert 0.3 < len(people) / full["person_id"].nunique() < 0.7
    # By person: a sampled person keeps every index date (and the same features and outcome).
    kept = full[full["person_id"].isin(people)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, sampled.reset_index(drop=True))
    # Seeded: the same people again; another seed, other people.
    assert set(build_panel(duck, dates[:1], definition, sample=half)["person_id"]) <= people
    other = build_panel(duck, dates[:1], definition, sample=PersonSample(0.5, seed=4))
    assert set(other["person_id"]) - people
    # Spark draws the same people (the same MD5 on both engines).
    query = f"SELECT person_id FROM people AS p WHERE {half.condition()} ORDER BY person_id"
    ours = _on_spark(duck, spark)
    try:
        assert ours.rows(query) == duck.rows(query)
    finally:
        ours.close()
    assert {r[0] for r in duck.rows(query)} >= people
    settings = load_settings(engine=EngineSettings(training_sample_fraction=0.5))
    assert PersonSample.for_training(settings) == PersonSample(0.5, 17)
    assert PersonSample.for_training(load_settings()) is None
    with pytest.raises(ValueError, match="sample fraction must be in"):
        PersonSample(0.0, 1)
