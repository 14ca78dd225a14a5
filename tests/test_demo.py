"""The README's main job, `casefinder demo`, runs end to end on a small synthetic population."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from casefinder.cli import app
from config.settings import load_settings


@pytest.mark.slow
def test_demo_runs_from_synthetic_records_to_exported_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["demo", "--people", "3000", "--no-serve"])

    assert result.exit_code == 0, result.output
    assert "No rows rejected" in result.output
    assert "is now the champion" in result.output

    from models.registry import current_champion

    assert current_champion(load_settings()) is not None
    workbook = openpyxl.load_workbook(home / "demo" / "lists" / "lists-2026-11.xlsx")
    listed = 0
    for sheet in workbook.worksheets:
        header = [cell.value for cell in sheet[1]]
        if "Person ID" in header:
            assert {"Rank", "Risk", "Risk band", "Flags", "Main reasons"} <= set(header)
            listed += sheet.max_row - 1
    assert listed > 0
    assert (home / "demo" / "lists" / "lists-2026-11.csv").stat().st_size > 0
    # The demo MDT's decisions are stored and audited, and a second run does not repeat them.
    from config.db.reviews import read_reviews
    from serving.audit import AuditLog, verify

    settings = load_settings()
    assert sorted(read_reviews(settings)["outcome"]) == ["accepted", "declined", "deferred"]
    assert len(AuditLog.of(settings).entries(action="demo.review")) == 3
    assert verify(AuditLog.of(settings)).ok and "1 accepted" in result.output
