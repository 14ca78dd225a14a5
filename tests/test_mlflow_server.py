"""Training, registration, loading and promotion against a real `mlflow server` process (SQLite
backend in a temporary folder), as when MLFLOW_TRACKING_URI points at a tracking server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from test_training_support import (
    HAND_FEATURES,
    _migrated_store,
    hand_oracle,
    hand_panel,
    isolated_settings,
)

from models.artifacts import MODEL_CARD
from models.registry import load_risk_model, training_sample
from training import promote, train_on_panel

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real `mlflow server` on a free loopback port; yields (url, artifact folder)."""
    db = tmp_path / "server" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(_migrated_store(), db)
    artifacts = tmp_path / "server" / "artifacts"
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    command = [sys.executable, "-m", "mlflow", "server", "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(artifacts)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one below
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(
                    "mlflow server did not start:\n" + (tmp_path / "server.log").read_text()
                )
            time.sleep(0.5)
        yield url, artifacts
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_train_register_load_and_promote_through_a_tracking_server(
    mlflow_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, artifacts = mlflow_server
    home = tmp_path / "home"
    settings = isolated_settings(home, tracking_uri=url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    assert settings.tracking_uri == url

    panel = hand_panel(3000)
    result = train_on_panel(
        panel, HAND_FEATURES, settings, {"path": "hand-made panel"}, oracle=hand_oracle(panel)
    )
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    run = client.get_run(result.run_id)
    assert run.data.metrics["test_auroc"] == pytest.approx(result.metrics["auroc"])
    assert "model_oracle_auroc_ratio" in run.data.metrics
    version = client.get_model_version(settings.mlflow.registered_model, result.version)
    assert version.run_id == result.run_id

    # Artifacts went to the server's store, not to local working state.
    assert any(artifacts.rglob(MODEL_CARD))
    assert any(artifacts.rglob("booster.txt"))
    assert not (home / "mlartifacts").exists()

    assert promote(settings, result.version).promoted
    model, loaded = load_risk_model(settings)
    assert loaded == result.version
    assert model.predict_proba(panel.head(50)) == pytest.approx(
        result.model.predict_proba(panel.head(50))
    )
    sample = training_sample(settings)
    assert set(HAND_FEATURES) <= set(sample.columns) and len(sample) > 0
