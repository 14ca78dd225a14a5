"""Every benchmark still runs: each script's quick mode (small sizes) runs as a subprocess, exits 0
and prints its figures. The figures are not asserted (machines are noisy); a benchmark that no
longer runs fails here instead of rotting unseen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import serving_fixtures

built_home = serving_fixtures.built_home  # the serving tests' home, built once per test run

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"[0-9][0-9,]*(\.[0-9]+)?"


def _run(script: str, args: list[str], home: Path, timeout: float = 300) -> str:
    # Quick modes write under a temporary folder: keep it inside the test's own.
    env = {**os.environ, "CASEFINDER_HOME": str(home), "TMPDIR": str(home.parent)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def _figures(out: str, *patterns: str) -> None:
    for pattern in patterns:
        assert re.search(pattern, out, re.MULTILINE), f"no line matching {pattern!r} in:\n{out}"


# (script, arguments, lines its figures must show)
QUICK = {
    "synth": ("bench_synth.py", ["--quick"],
              [rf"^wall time: +{NUMBER} s", rf"^total rows: +{NUMBER} +\({NUMBER} rows/s\)"]),
    "load": ("bench_load.py", ["--quick"],
             [rf"^prescriptions +parquet +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}",
              rf"^loader / bare read {NUMBER}x"]),
    "features single": ("bench_features.py", ["single", "--quick"],
                        [rf"^build_features: .* {NUMBER} s", r"^3 features .*pandas/DuckDB wall"]),
    "features panel": ("bench_features.py", ["panel", "--quick"],
                       [rf"^build_panel: 2 monthly index dates .* {NUMBER} s"]),
    "explain": ("bench_explain.py", ["--quick"],
                [rf"^lightgbm pred_contrib, 2 threads +{NUMBER}",
                 rf"^explain +wall p50 +{NUMBER} ms"]),
    "train": ("bench_train.py", ["--quick"],
              [rf"^TOTAL train +{NUMBER} s", rf"^model +{NUMBER} +{NUMBER}"]),
    "spark": ("bench_spark.py", ["--quick"],
              [rf"^features, 1 date +{NUMBER} +{NUMBER} +{NUMBER}x", r"^tables identical: yes"]),
    "score": ("bench_score.py", ["--quick"],
              [rf"^  score_month total +{NUMBER} s", rf"^total {NUMBER} s \(target",
               r"^quick mode: targets not checked"]),
    "reference": ("bench_reference.py", ["--quick"],
                  [rf"^reference pipeline +{NUMBER} s +\(AUROC {NUMBER}\)",
                   rf"^train \+ score / reference +{NUMBER}x"]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(QUICK))
def test_benchmark_quick_mode_runs_and_prints_its_figures(name: str, tmp_path: Path) -> None:
    script, args, patterns = QUICK[name]
    # Spark plans each query for seconds whatever the size: its quick mode needs longer.
    timeout = 900 if name == "spark" else 300
    _figures(_run(script, args, tmp_path / "home", timeout), *patterns)


def test_service_benchmark_runs_on_a_home_whose_extract_was_moved(built_home, tmp_path) -> None:
    # The serving home's runs were scored from an extract that is gone: the benchmark reads the
    # runs' stored model inputs, as the service does.
    source, _ = built_home
    home = serving_fixtures.copy_home(source, tmp_path / "home")
    out = _run("bench_serve.py", ["--home", str(home), "--quick"], home)
    for scenario in ("score 1 row, 100 req/s", "score 100 rows, 4 clients",
                     "explanation, 50 req/s", "score 1 row, 8 clients \\(max\\)"):  # fmt: skip
        _figures(out, rf"^{scenario} +{NUMBER} +0 +{NUMBER} +{NUMBER} +{NUMBER}$")
