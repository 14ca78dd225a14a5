"""The training panel over many index dates, and the features/panel/describe commands."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from test_features_common import load, random_tables, write
from typer.testing import CliRunner

from casefinder.cli import app
from features import (
    FEATURES,
    FeatureError,
    build_features,
    build_outcome,
    build_panel,
    feature_table,
    index_dates,
)


@pytest.fixture(scope="module")
def tables() -> dict:
    return random_tables(n_people=150, seed=21)


@pytest.fixture(scope="module")
def extract(tables: dict, tmp_path_factory: pytest.TempPathFactory):
    return load(tmp_path_factory.mktemp("panel"), tables)


@pytest.fixture(scope="module")
def folder(tables: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("cli"), tables)


def test_panel_stacks_features_and_outcome_per_date(extract) -> None:
    dates = index_dates(date(2023, 1, 1), date(2025, 7, 1), "6M")
    assert dates[-1] == date(2025, 7, 1)
    panel = build_panel(extract, dates)
    assert list(panel.columns[: 4 + len(FEATURES)]) == [
        "person_id", "index_date", "neighbourhood", "gp_practice_code",
    ] + [f.name for f in FEATURES]  # fmt: skip
    assert list(panel.columns[4 + len(FEATURES) :]) == [
        "outcome", "outcome_acute_hospital", "outcome_community_health",
        "outcome_adult_social_care", "outcome_mental_health",
    ]  # fmt: skip
    assert (panel["data_opt_out"] == 0).all()
    # Dates are built two at a time on their own connections (PANEL_DATES_AT_ONCE), stacked in
    # date order, each date's rows the same as built alone.
    assert panel["index_date"].is_monotonic_increasing
    for day in (dates[0], dates[-1]):
        features = build_features(extract, day)
        features = features[features["data_opt_out"] == 0].reset_index(drop=True)
        outcome = build_outcome(extract, day).set_index("person_id")
        part = panel[panel["index_date"] == day].reset_index(drop=True)
        pd.testing.assert_frame_equal(part[features.columns], features)
        assert list(part["outcome"]) == list(outcome.loc[part["person_id"], "outcome"])
    assert panel["outcome"].between(0, 1).all() and panel["outcome"].sum() > 0
    everyone = build_panel(extract, dates[:1], include_opted_out=True)
    assert everyone["data_opt_out"].sum() > 0


def test_feature_table_types_any_input_the_same_way(extract) -> None:
    """Typed features come back as they are; the same features as floats and ids as objects
    (a frame from elsewhere) come back typed the same way, columns in the same order."""
    typed = build_features(extract, date(2025, 7, 1))
    ints = [f.name for f in FEATURES if typed[f.name].dtype == "int32"]
    assert ints and len(ints) < len(FEATURES)  # both kinds are exercised
    pd.testing.assert_frame_equal(feature_table(typed.copy()), typed)
    loose = typed.astype({f.name: "float64" for f in FEATURES} | {"person_id": object})
    pd.testing.assert_frame_equal(feature_table(loose), typed)
    one_missing = typed.astype({ints[0]: "float64"})
    one_missing.loc[0, ints[0]] = None
    assert feature_table(one_missing)[ints[0]].dtype == "float64"


def test_panel_refuses_dates_whose_outcome_is_not_observed(extract) -> None:
    with pytest.raises(FeatureError, match=r"not yet observed for index date\(s\) 2025-12-01"):
        build_panel(extract, [date(2024, 1, 1), date(2025, 12, 1)])
    with pytest.raises(FeatureError, match="no index dates"):
        build_panel(extract, [])
    with pytest.raises(FeatureError, match="not after the start of the extract's history"):
        build_panel(extract, [date(1990, 1, 1)])


def test_features_command_default_index_date_is_the_day_after_the_extract(
    folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "features.parquet"
    result = CliRunner().invoke(app, ["features", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert set(frame["index_date"].astype(str)) == {"2026-11-01"}
    assert list(frame.columns[4:]) == [f.name for f in FEATURES]
    assert len(frame) > 50


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--index-date", "2026-12-01"], "after the day after the extract date"),
        (["--index-date", "1980-01-01"], "not after the start of the extract's history"),
        (["--index-date", "2025-01-15"], "not the first day of a month"),
    ],
)
def test_features_command_bad_index_dates_exit_2(
    folder: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "f.parquet"
    result = CliRunner().invoke(app, ["features", str(folder), "--out", str(out), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_commands_refuse_bad_options(folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["features", str(folder), "--out", str(tmp_path / "f.csv")])
    assert result.exit_code == 2 and "give a .parquet name" in " ".join(result.output.split())
    args = ["panel", str(folder), "--to", "2025-01-01", "--out", str(tmp_path / "p.parquet")]
    result = runner.invoke(app, [*args, "--from", "2024-13-01"])
    assert result.exit_code == 2 and "not a date" in result.output
    result = runner.invoke(app, [*args, "--from", "2026-01-01"])
    assert result.exit_code == 2 and "before it starts" in " ".join(result.output.split())


def test_an_out_that_cannot_be_written_as_asked_is_refused_before_loading(
    folder: Path, tmp_path: Path
) -> None:
    """DuckDB writes one file (a folder at --out, e.g. a Spark output, is not replaced; a Hadoop
    URI needs Spark); Spark replaces a Parquet dataset's folder, never one holding other files.
    All refused before the extract is loaded (no Spark session is started here)."""
    runner = CliRunner()
    spark_output = tmp_path / "spark.parquet"
    spark_output.mkdir()
    (spark_output / "part-00000-x.snappy.parquet").write_bytes(b"")
    notes = tmp_path / "notes.parquet"
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    cases = [
        ("duckdb", str(spark_output), "a folder (written by --engine spark?)"),
        ("duckdb", "s3a://bucket/f.parquet", "a Hadoop URI needs --engine spark"),
        ("spark", str(notes), "a folder holding more than a Parquet dataset; not replaced"),
    ]
    for engine, out, message in cases:
        args = ["features", str(folder), "--out", out, "--engine", engine]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())
    assert (notes / "keep.txt").read_text() == "mine"
    assert (spark_output / "part-00000-x.snappy.parquet").exists()


def test_commands_refuse_an_unusable_extract(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["features", str(tmp_path / "missing"), "--out", str(tmp_path / "f.parquet")]
    )
    assert result.exit_code == 2
    assert "not a folder" in " ".join(result.output.split())


def test_panel_command(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "panel.parquet"
    args = ["panel", str(folder), "--from", "2024-01-01", "--to", "2025-01-01", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--every", "6M"])
    assert result.exit_code == 0, result.output
    panel = pd.read_parquet(out)
    assert sorted(set(panel["index_date"].astype(str))) == ["2024-01-01", "2024-07-01",
                                                             "2025-01-01"]  # fmt: skip
    late = ["panel", str(folder), "--from", "2025-01-01", "--to", "2026-01-01", "--out", str(out)]
    result = CliRunner().invoke(app, late)
    assert result.exit_code == 2
    assert "outcome not yet observed" in " ".join(result.output.split())
    result = CliRunner().invoke(app, [*args, "--every", "fortnightly"])
    assert result.exit_code == 2 and "not a number of months" in result.output


def test_describe_command(folder: Path) -> None:
    result = CliRunner().invoke(app, ["describe", str(folder)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Index date 2025-11-01" in text  # latest with an observed outcome
    assert "Outcome rate" in text and "acute_hospital" in text
    for heading in ("demographics", "hospital use", "prescribing", "social care", "caseload"):
        assert heading in text
    result = CliRunner().invoke(app, ["describe", str(folder), "--index-date", "2026-11-01"])
    assert result.exit_code == 0, result.output
    assert "not yet observed" in result.output
