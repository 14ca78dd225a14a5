"""Reading a local MLflow store without MLflow (`models.local_store`): every answer equals MLflow
client's on a real SQLite registry, anything unknown falls back to the client, and a `score`'s
registry reads import no MLflow once the version is cached."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from test_training_support import HAND_FEATURES, hand_panel, isolated_settings

from models import local_store
from models.registry import (
    load_risk_model,
    model_cache_dir,
    resolve_version,
    run_id_of,
    training_sample,
)
from training import promote, train_on_panel

ROOT = Path(__file__).resolve().parents[1]


def test_local_reads_agree_with_mlflow_and_need_no_mlflow(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "home")
    panel = hand_panel(2500)
    first = train_on_panel(panel, HAND_FEATURES, settings, {"path": "hand"}).version
    promote(settings, first, force=True, reason="first model")
    uri, name = settings.tracking_uri, settings.mlflow.registered_model
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    assert local_store.alias_version(uri, name, "champion") == first
    for version in (first,):
        mlflow_run = client.get_model_version(name, version).run_id
        assert local_store.version_run_id(uri, name, version) == mlflow_run
        assert run_id_of(settings, version) == mlflow_run
        artifacts = client.get_run(mlflow_run).info.artifact_uri
        assert local_store.run_artifact_dir(uri, mlflow_run) == Path(
            artifacts.removeprefix("file://")
        )
    assert resolve_version(settings, "champion") == first
    assert resolve_version(settings, f"0{first}") == first

    # Nothing to find, or nothing this module knows: None, and the registry asks MLflow.
    assert local_store.alias_version(uri, name, "challenger") is None
    assert local_store.version_run_id(uri, name, "99") is None
    assert local_store.version_run_id(uri, "other-model", first) is None
    assert local_store.alias_version("http://127.0.0.1:5000", name, "champion") is None
    assert local_store.alias_version(f"sqlite:///{tmp_path / 'none.db'}", name, "champion") is None
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE runs (x)").connection.commit()
    assert local_store.run_artifact_dir(f"sqlite:///{other}", "r") is None

    # In a fresh process: the first load downloads the champion through MLflow; the next, with
    # the champion cached, gets the model and the drift sample without importing MLflow, and
    # they are the ones MLflow's client gives.
    model, version = load_risk_model(settings)
    expected = training_sample(settings, version)
    shutil.rmtree(model_cache_dir(settings, version))
    script = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
from config.settings import load_settings
from models.registry import load_risk_model, training_sample
settings = load_settings()
model, version = load_risk_model(settings)
sample = training_sample(settings, version)
print(json.dumps({{"version": version, "rows": len(sample), "mlflow": "mlflow" in sys.modules,
                  "trees": model.booster.num_trees()}}))
"""
    env = {"CASEFINDER_HOME": str(settings.home), "PATH": "/usr/bin:/bin"}
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    downloaded, out = runs
    assert downloaded == {**out, "mlflow": True}
    assert out == {
        "version": first, "rows": len(expected), "mlflow": False,
        "trees": model.booster.num_trees(),
    }  # fmt: skip
    with_mlflow = client.download_artifacts(
        client.get_model_version(name, first).run_id, "data", str(tmp_path / "dl")
    )
    sample = pd.read_parquet(Path(with_mlflow) / "training_sample.parquet")
    pd.testing.assert_frame_equal(sample, expected)
