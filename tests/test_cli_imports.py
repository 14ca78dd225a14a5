"""Commands import only what they use: `casefinder --help`, `validate` and `features` never load
mlflow, shap, matplotlib or scikit-learn (several seconds of start-up together).
Each command must succeed, so a command that stops early cannot pass by importing nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from extract_builder import write_extract

HEAVY = ("mlflow", "shap", "matplotlib", "sklearn")
# Run the CLI in a fresh interpreter, then list which heavy packages it imported.
PROBE = """
import json, sys
sys.argv = ["casefinder", *sys.argv[1:]]
code = 0
try:
    from casefinder.cli import app
    app()
except SystemExit as exc:
    code = exc.code or 0
finally:
    heavy = {heavy!r}
    print("\\nIMPORTED " + json.dumps([code, sorted(m for m in heavy if m in sys.modules)]))
"""


def _imported(*args: str, home: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"CASEFINDER_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("IMPORTED ")]
    assert line, done.stderr[-2000:]
    code, imported = json.loads(line[-1].removeprefix("IMPORTED "))
    assert code == 0, done.stderr[-2000:]
    return imported


def test_help_does_not_import_mlflow_or_other_heavy_packages(tmp_path: Path) -> None:
    assert _imported("--help", home=tmp_path) == []


@pytest.mark.parametrize("command", ["validate", "features"])
def test_validate_and_features_do_not_import_heavy_packages(tmp_path: Path, command: str) -> None:
    extract = write_extract(tmp_path / "extract")
    args = [command, str(extract)]
    if command == "features":
        args += ["--index-date", "2026-11-01", "--out", str(tmp_path / "features.parquet")]
    assert _imported(*args, home=tmp_path / "home") == []


def test_reading_runs_does_not_import_heavy_packages(tmp_path: Path) -> None:
    """`runs` (and the score store it reads, with its month-on-month flags) needs no ML library."""
    assert _imported("runs", home=tmp_path / "home") == []


LIGHTGBM_PROBE = """
import json, sys
import casefinder.imports
casefinder.imports.lightgbm_without_sklearn()
import scoring.run, training  # what `score`, `predict` and `train` load before they run
loaded = "sklearn" in sys.modules
import lightgbm, numpy as np
x = np.random.default_rng(0).normal(size=(200, 3))
booster = lightgbm.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                         lightgbm.Dataset(x, (x[:, 0] > 0).astype(int)), num_boost_round=5)
from sklearn.linear_model import LogisticRegression  # imports normally afterwards
LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
print("PROBE " + json.dumps([loaded, float(booster.predict(x[:1])[0])]))
"""


def test_scoring_commands_load_lightgbm_without_scikit_learn() -> None:
    """The CLI loads LightGBM with scikit-learn hidden (casefinder.imports): the stages `score`,
    `predict` and `train` import load no scikit-learn, LightGBM trains and predicts, and
    scikit-learn imports and fits normally afterwards."""
    done = subprocess.run(
        [sys.executable, "-c", LIGHTGBM_PROBE], capture_output=True, text=True, timeout=120
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("PROBE ")]
    assert line, done.stderr[-2000:]
    loaded, probability = json.loads(line[-1].removeprefix("PROBE "))
    assert loaded is False and 0 < probability < 1
