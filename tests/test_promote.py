"""The promotion gate, both ways, on real models in a real SQLite MLflow registry; forced
promotion with a recorded reason; rollback; and the gate's fairness check."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pytest
from mlflow.tracking import MlflowClient
from test_training_support import (
    HAND_FEATURES,
    REAL_TRAINING,
    hand_panel,
    isolated_settings,
    real_panel,
)
from typer.testing import CliRunner

from casefinder.cli import app
from config.settings import MlflowSettings, Settings, TrainingSettings
from models.registry import RegistryError, load_risk_model
from models.risk_model import PlattCalibrator, RiskModel
from training import promote, rollback, train_on_panel
from training.registry import compare_models

# A 5,000-person test set estimates the calibration slope only roughly, so these tests allow
# 0.5-2.0; the default gate (0.8-1.2) is for real populations.
SMALL_POPULATION_GATE = {"gate_slope_min": 0.5, "gate_slope_max": 2.0}


def _settings(home: Path, **training: Any) -> Settings:
    settings = isolated_settings(home, **{**REAL_TRAINING, **SMALL_POPULATION_GATE, **training})
    return settings.model_copy(
        update={"mlflow": MlflowSettings(registered_model="gate-test", experiment="gate-test")}
    )


def _train(built: Any, settings: Settings, features: list[str]) -> str:
    result = train_on_panel(
        built.panel, features, settings, built.extract_info, oracle=built.oracle
    )
    return result.version


@pytest.mark.slow
def test_gate_promotes_a_good_model_refuses_a_worse_one_and_records_overrides(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = real_panel(tmp_path_factory.mktemp("panel"))
    home = tmp_path_factory.mktemp("gate")
    settings = _settings(home)
    name = settings.mlflow.registered_model
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)

    good = _train(built, settings, built.feature_names)
    first = promote(settings, good)
    assert first.promoted and first.previous is None
    assert {g.name for g in first.gates} == {
        "calibration slope",
        "AUROC vs champion",
        "fairness flags",
    }
    assert load_risk_model(settings)[1] == good
    assert client.get_model_version(name, good).tags["promotion"] == "gate passed"

    # A deliberately worse model: age and sex only.
    worse = _train(built, settings, ["age", "sex"])
    refused = promote(settings, worse)
    assert not refused.promoted
    failed = {g.name: g for g in refused.failed}
    assert "AUROC vs champion" in failed and "calibration slope" not in failed
    assert f"champion v{good}" in failed["AUROC vs champion"].detail
    assert load_risk_model(settings)[1] == good

    # The CLI says which gate failed and exits 1.
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    monkeypatch.setenv("CASEFINDER_MLFLOW__REGISTERED_MODEL", name)
    monkeypatch.setenv("CASEFINDER_TRAINING__GATE_SLOPE_MIN", "0.5")
    monkeypatch.setenv("CASEFINDER_TRAINING__GATE_SLOPE_MAX", "2.0")
    monkeypatch.setenv("CASEFINDER_TRAINING__VALIDATION_FRACTION", "0.3")
    monkeypatch.setenv("CASEFINDER_TRAINING__TEST_FRACTION", "0.3")
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    cli = CliRunner().invoke(app, ["promote", "--version", worse])
    assert cli.exit_code == 1, cli.output
    assert "FAIL AUROC vs champion" in cli.output
    assert "failed gate(s) AUROC vs champion" in " ".join(cli.output.split())

    with pytest.raises(RegistryError, match="--force needs --reason"):
        promote(settings, worse, force=True)
    forced = promote(settings, worse, force=True, reason="clinical safety review 2026-11")
    assert forced.promoted and forced.forced and forced.previous == good
    tags = client.get_model_version(name, worse).tags
    assert tags["force_reason"] == "clinical safety review 2026-11"
    assert tags["promotion"] == "forced" and tags["previous_champion"] == good
    assert load_risk_model(settings)[1] == worse

    # Earlier champions stay registered: rolling back is one call (and one command).
    back = rollback(settings)
    assert back.promoted and back.version == good and back.previous == worse
    assert client.get_model_version(name, good).tags["force_reason"] == "rollback"
    assert load_risk_model(settings)[1] == good
    cli = CliRunner().invoke(
        app, ["promote", "--version", worse, "--force", "--reason", "rollback drill"]
    )
    assert cli.exit_code == 0, cli.output
    assert load_risk_model(settings)[1] == worse
    cli = CliRunner().invoke(app, ["rollback", "--version", good])
    assert cli.exit_code == 0, cli.output
    assert load_risk_model(settings)[1] == good
    listing = CliRunner().invoke(app, ["models"])
    assert listing.exit_code == 0 and "champion" in listing.output


@pytest.mark.slow
def test_gate_fails_on_calibration_slope_out_of_bounds(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    built = real_panel(tmp_path_factory.mktemp("panel"))
    settings = _settings(tmp_path_factory.mktemp("slope"), gate_slope_min=3.0, gate_slope_max=4.0)
    version = _train(built, settings, built.feature_names)
    result = promote(settings, version)
    assert not result.promoted
    assert [g.name for g in result.failed] == ["calibration slope"]
    assert "allowed 3.0-4.0" in result.failed[0].detail
    with pytest.raises(RegistryError, match="has no champion yet"):
        load_risk_model(settings)


def _booster(panel: Any, features: list[str]) -> lgb.Booster:
    return lgb.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 15, "seed": 1},
        lgb.Dataset(panel[features].astype(float), label=panel["outcome"]),
        num_boost_round=60,
    )


def test_gate_refuses_a_candidate_that_adds_a_fairness_flag() -> None:
    panel = hand_panel(30_000, dates=[date(2024, 1, 1)], seed=5)
    # Make women's risk much higher than men's at the same features, so a model without sex
    # under-predicts for women and over-predicts for men.
    women = panel["sex"] == 2
    panel.loc[women, "outcome"] = (
        panel.loc[women, "outcome"] | (panel.loc[women, "noise"] > 0.8)
    ).astype(int)
    train, test = panel.iloc[:15_000], panel.iloc[15_000:]
    with_sex = ["age", "sex", "emergency_admissions_12m", "efi_score", "hfrs_score", "noise"]
    without_sex = [c for c in with_sex if c != "sex"]
    champion = RiskModel(_booster(train, with_sex), PlattCalibrator(), with_sex)
    candidate = RiskModel(_booster(train, without_sex), PlattCalibrator(), without_sex)
    settings = Settings(training=TrainingSettings(gate_auroc_tolerance=1.0))
    share = {"North": 0.05, "South": 0.05, "East": 0.05}
    gates = {g.name: g for g in compare_models(candidate, champion, test, share, settings, "1")}
    assert gates["AUROC vs champion"].passed
    assert not gates["fairness flags"].passed
    assert "sex=" in gates["fairness flags"].detail
    same = {g.name: g for g in compare_models(champion, champion, test, share, settings, "1")}
    assert same["fairness flags"].passed


def test_models_listing_shows_the_champion_alias(tmp_path: Path) -> None:
    from models.registry import list_versions

    settings = isolated_settings(tmp_path / "home")
    panel = hand_panel(2500)
    version = train_on_panel(panel, HAND_FEATURES, settings, {"path": "hand"}).version
    assert list_versions(settings).set_index("version").loc[int(version), "aliases"] == ""
    promote(settings, version, force=True, reason="first model")
    listed = list_versions(settings).set_index("version")
    assert listed.loc[int(version), "aliases"] == "champion"
    assert listed.loc[int(version), "force_reason"] == "first model"
