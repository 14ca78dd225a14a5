"""`predict` / `casefinder predict`: score every eligible person at an index date, including the
day after the extract ends, with a registered model version."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_training_support import isolated_settings, real_run
from typer.testing import CliRunner

from casefinder.cli import app
from training import predict
from training.predict import OUTPUT_COLUMNS

pytestmark = pytest.mark.slow
DAY_AFTER_EXTRACT = date(2026, 11, 1)  # the generator's extract ends 2026-10-31


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return real_run(tmp_path_factory.mktemp("training-run"))


def test_predict_scores_every_eligible_person_the_day_after_the_extract(
    run: dict[str, Any],
) -> None:
    import features
    from records import load_extract

    result, settings = run["result"], run["settings"]
    scores = predict(run["extract"], DAY_AFTER_EXTRACT, settings, model_ref=result.version)
    assert list(scores.columns) == OUTPUT_COLUMNS
    eligible = features.build_features(load_extract(run["extract"]), DAY_AFTER_EXTRACT)
    assert sorted(scores["person_id"]) == sorted(eligible["person_id"].astype(str))
    assert scores["probability"].between(0, 1, inclusive="neither").all()
    assert set(scores["band"]) <= {name for name, _ in result.model.bands}
    assert (scores["model_version"] == result.version).all()
    assert (scores["index_date"] == DAY_AFTER_EXTRACT).all()
    by_id = eligible.set_index(eligible["person_id"].astype(str)).loc[scores["person_id"]]
    expected = result.model.predict_proba(by_id.reset_index(drop=True))
    assert scores["probability"].to_numpy() == pytest.approx(expected)


def _env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CASEFINDER_MLFLOW__REGISTERED_MODEL", raising=False)


def test_predict_command_writes_parquet(
    run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, settings = run["result"], run["settings"]
    _env(monkeypatch, settings.home)
    out = tmp_path / "scores" / "2026-11.parquet"
    args = ["predict", str(run["extract"]), "--index-date", "2026-11-01", "--out", str(out)]
    cli = CliRunner().invoke(app, [*args, "--model", result.version])
    assert cli.exit_code == 0, cli.output
    written = pd.read_parquet(out)
    assert list(written.columns) == OUTPUT_COLUMNS and len(written) > 0
    assert f"model version {result.version}" in cli.output

    cli = CliRunner().invoke(app, [*args[:3], "2026-11-15", *args[4:], "--model", result.version])
    assert cli.exit_code == 2
    assert "not the first day of a month" in " ".join(cli.output.split())
    cli = CliRunner().invoke(app, [*args[:3], "2027-01-01", *args[4:], "--model", result.version])
    assert cli.exit_code == 2
    assert "after the day after the extract date" in " ".join(cli.output.split())


def test_predict_without_a_champion_is_a_clear_error(
    run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "empty-home"
    isolated_settings(home)  # a fresh store with no models
    _env(monkeypatch, home)
    out = tmp_path / "x.parquet"
    cli = CliRunner().invoke(
        app, ["predict", str(run["extract"]), "--index-date", "2026-11-01", "--out", str(out)]
    )
    assert cli.exit_code == 2
    assert "has no champion yet" in " ".join(cli.output.split())
    assert not out.exists()
