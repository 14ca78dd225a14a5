"""The score store's files: owner-only permissions, and staging left by a killed writer cleaned
at the next write (never a live writer's, never another host's)."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys

import pandas as pd

from scoring.store import ScoreStore, ScoringRun


def _run(run_id: str = "2026-10_test") -> ScoringRun:
    people = pd.DataFrame({"person_id": ["P1", "P2"], "probability": [0.1, 0.2]})
    features = pd.DataFrame({"person_id": ["P1", "P2"], "age": [70.0, 80.0]})
    meta = {"index_date": "2026-10-01", "model": {"name": "m", "version": "1"}}
    return ScoringRun(run_id, "2026-10", meta, people, features, "# summary\n")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_files_are_owner_only(tmp_path):
    store = ScoreStore(tmp_path / "scores")
    folder = store.write(_run())
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [
        "features.parquet",
        "people.parquet",
        "run.json",
        "summary.md",
    ]
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert _mode(folder) == 0o700 and _mode(store.root) == 0o700
    assert _mode(store.months_dir / "2026-10.json") == 0o600


def test_staging_of_a_killed_writer_is_cleaned_at_the_next_write(tmp_path):
    store = ScoreStore(tmp_path / "scores")
    store.staging_dir.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    left = {
        "killed": f"{host}-{int(dead.stdout)}-aaaa",
        "legacy": "0123456789abcdef",  # named before staging folders named their writer
        "live": f"{host}-{__import__('os').getpid()}-bbbb",
        "other host": f"elsewhere.example-{int(dead.stdout)}-cccc",
    }
    for name in left.values():
        (store.staging_dir / name).mkdir()
        (store.staging_dir / name / "people.parquet").write_bytes(b"partial")
    store.write(_run())
    kept = sorted(p.name for p in store.staging_dir.iterdir())
    assert kept == sorted([left["live"], left["other host"]])
    assert store.has_run("2026-10_test")
