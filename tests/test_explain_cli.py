"""`casefinder explain` end to end: a real extract through the loader and the features stage, a real
LightGBM champion in a SQLite MLflow registry, reasons and charts written to disk."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casefinder.cli import app
from tests.serving_fixtures import train_champion, write_small_extract

runner = CliRunner()
DAY, EARLIER = "2026-10-01", "2026-09-01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An extract and a home with a champion model; the env points at the home."""
    from config.settings import load_settings

    base = tmp_path_factory.mktemp("explain_cli")
    home, extract = base / "home", base / "extract"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CASEFINDER_CONFIG", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("CASEFINDER_HOME", str(home))
        settings = load_settings(home=home)
        settings.ensure_home()
        write_small_extract(extract)
        train_champion(extract, settings)
    return home, extract


@pytest.fixture
def env(world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    home, extract = world
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    return extract


@pytest.mark.slow
def test_explain_writes_reasons_and_charts_matching_the_served_score(env, tmp_path):
    import features
    from config.settings import load_settings
    from models.registry import load_risk_model
    from records import load_extract

    out = tmp_path / "out"
    args = ["explain", str(env), "--index-date", DAY, "--person", "P0003", "--person", "P0010"]
    args += ["--out", str(out), "--since", EARLIER, "--what-if", "falls_12m=0", "--importance"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Person P0003" in result.output and "What if falls_12m=0" in result.output

    model, version = load_risk_model(load_settings())
    rows = features.build_features(load_extract(env), date.fromisoformat(DAY))
    served = dict(zip(rows.person_id, model.predict_proba(rows), strict=True))
    from models.explain import scored_rows

    mean = model.predict_proba(scored_rows(rows, load_settings().lists)).mean()
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "the average for people aged 65+ scored for 2026-10-01" in said
    for pid in ("P0003", "P0010"):
        data = json.loads((out / f"{pid}.json").read_text())
        assert data["person_id"] == pid and data["model_version"] == version
        assert data["probability"] == pytest.approx(served[pid], abs=1e-12)
        parts = [r["probability_change"] for r in data["raising"] + data["lowering"]]
        assert data["reference_probability"] == pytest.approx(mean, abs=1e-12)
        total = data["reference_probability"] + sum(parts) + data["other_probability_change"]
        assert total == pytest.approx(served[pid], abs=1e-12)
        assert data["since"]["status"] == "both"
        assert data["what_if"]["changed"]["falls_12m"]["after"] == 0.0
        for suffix in (".png", ".svg"):
            assert (out / f"{pid}-waterfall{suffix}").stat().st_size > 2000
    assert (out / f"importance-v{version}.png").stat().st_size > 2000


@pytest.mark.slow
def test_explain_names_unknown_people_and_refused_what_ifs(env):
    base = ["explain", str(env), "--index-date", DAY]
    result = runner.invoke(app, [*base, "--person", "NOBODY"])
    assert result.exit_code == 2 and "NOBODY" in result.output
    result = runner.invoke(app, [*base, "--person", "P0003", "--what-if", "age=70"])
    assert result.exit_code == 2 and "'age' cannot be changed" in result.output
    result = runner.invoke(app, [*base, "--person", "P0003", "--what-if", "falls_12m"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output
