"""`casefinder train` on extracts that cannot train a model stops with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from extract_builder import EXTRACT_DATE, add_row, valid_rows, write_extract
from typer.testing import CliRunner

from casefinder.cli import app


def _train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extract: Path) -> tuple[int, str]:
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, ["train", str(extract)])
    return result.exit_code, " ".join(result.output.split())


def test_no_complete_outcome_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Records start in 2024; social care is complete only to 2025-03-31, so the latest index
    # date with a whole 12-month outcome window (2024-04-01) has under 12 months of history.
    manifest = {"extract_date": EXTRACT_DATE, "complete_to": {"social_care": "2025-03-31"}}
    extract = write_extract(tmp_path / "lagging", manifest=manifest)
    code, output = _train(tmp_path, monkeypatch, extract)
    assert code == 2, output
    assert "no complete outcome window to train on" in output
    assert "usable dates are none" in output
    assert not (tmp_path / "home" / "mlartifacts").exists()  # nothing logged


def test_too_few_outcomes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = valid_rows()
    for i in range(40):  # eligible at every index date, with (almost) no outcomes
        add_row(rows, "people", person_id=f"Q{i:03d}")
    extract = write_extract(tmp_path / "few-outcomes", rows)
    code, output = _train(tmp_path, monkeypatch, extract)
    assert code == 2, output
    assert "too few outcomes to train" in output and "at least 50 outcomes" in output
