"""`casefinder score / lists / runs / summary` through the real CLI: clear failures for a month
outside the extract and for a registry without a champion; exports of a stored run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from extract_builder import write_extract
from openpyxl import load_workbook
from test_scoring_support import MODEL, feature_frame, run_for, train_model
from typer.testing import CliRunner

from casefinder.cli import app
from config.settings import ListSettings
from scoring.exports import FILE_COLUMNS
from scoring.run import ModelInfo
from scoring.store import ScoreStore

runner = CliRunner()


@pytest.fixture
def stored(cli_home: Path) -> tuple[str, str]:
    """Two runs of 2026-11 (model versions 1 and 2) in the home's score store."""
    store = ScoreStore(cli_home / "scores")
    model = train_model()
    features = feature_frame(240)
    old = run_for(model, features, rules=ListSettings(capacity=3))
    new = run_for(
        model, features, rules=ListSettings(capacity=3), model_info=ModelInfo(MODEL.name, "2")
    )
    store.write(old)
    store.write(new)
    return old.run_id, new.run_id


def test_month_outside_the_extract_fails_clearly(cli_home: Path, tmp_path: Path) -> None:
    extract = write_extract(tmp_path / "extract")  # extract_date 2026-10-31
    result = runner.invoke(app, ["score", str(extract), "--month", "2027-01"])
    assert result.exit_code == 2
    assert "2027-01-01" in result.output and "extract date" in result.output
    assert not (cli_home / "scores").exists()


def test_malformed_month_is_refused(cli_home: Path, tmp_path: Path) -> None:
    extract = write_extract(tmp_path / "extract")
    result = runner.invoke(app, ["score", str(extract), "--month", "November"])
    assert result.exit_code == 2 and "YYYY-MM" in result.output


def test_no_champion_model_fails_clearly(cli_home: Path, tmp_path: Path) -> None:
    extract = write_extract(tmp_path / "extract")
    result = runner.invoke(app, ["score", str(extract), "--month", "2026-11"])
    assert result.exit_code == 2, result.output
    assert "no champion" in result.output
    assert not (cli_home / "scores").exists()


def test_lists_exports_the_current_run(stored: tuple[str, str], tmp_path: Path) -> None:
    old, new = stored
    out = tmp_path / "lists.xlsx"
    result = runner.invoke(
        app, ["lists", "--month", "2026-11", "--format", "xlsx", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert new in result.output and "(current)" in result.output
    book = load_workbook(out)
    assert book.sheetnames == ["About", "East", "North", "South"]
    assert [c.value for c in book["North"][1]] == FILE_COLUMNS

    csv_out = tmp_path / "north.csv"
    result = runner.invoke(
        app,
        ["lists", "--month", "2026-11", "--neighbourhood", "North", "--format", "csv",
         "--out", str(csv_out), "--run", old],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "NOT the current run" in result.output
    frame = pd.read_csv(csv_out)
    assert len(frame) == 3 and set(frame["Neighbourhood"]) == {"North"}
    assert (frame["Run"] == old).all() and (frame["Run status"] == "superseded").all()

    json_out = tmp_path / "lists.json"
    result = runner.invoke(
        app, ["lists", "--month", "2026-11", "--format", "json", "--out", str(json_out)]
    )
    assert result.exit_code == 0
    assert len(json.loads(json_out.read_text())["people"]) == 9


def test_lists_errors(stored: tuple[str, str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["lists", "--month", "2026-10", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "2026-10 has not been scored" in result.output
    result = runner.invoke(app, ["lists", "--month", "2026-11", "--neighbourhood", "Nowhere"])
    assert result.exit_code == 2 and "no neighbourhood 'Nowhere'" in result.output
    result = runner.invoke(app, ["lists", "--month", "2026-11", "--format", "pdf"])
    assert result.exit_code == 2 and "csv, xlsx, json" in result.output


def test_runs_and_summary(stored: tuple[str, str]) -> None:
    old, new = stored
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines() if "2026-11_" in line]
    assert len(lines) == 2 and all(line.startswith("2026-11") for line in lines)
    assert any(new in line and line.endswith("current") for line in lines)
    assert any(old in line and line.endswith("superseded") for line in lines)
    result = runner.invoke(app, ["summary", "--month", "2026-11"], terminal_width=200)
    assert result.exit_code == 0
    assert "Scoring run 2026-11" in result.output and new in result.output
    result = runner.invoke(app, ["summary", "--month", "2026-11", "--run", old])
    assert result.exit_code == 0 and "not the current run" in result.output
