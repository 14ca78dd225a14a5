"""benchmarks/bench_load.py runs on an extract and prints its figures (the script, not timings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from extract_builder import add_row, valid_rows, write_extract

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_load.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_load_prints_rows_per_second_per_table_and_peak_rss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = valid_rows()
    add_row(rows, "gp_events", person_id="P999")
    assert _bench().main([str(write_extract(tmp_path, rows)), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.strip()}
    assert lines["gp_events"][1:4] == ["csv", "3", "1"]
    assert float(lines["gp_events"][-1].replace(",", "")) > 0
    assert lines["total"][1:3] == ["22", "1"]
    assert lines["hospital_diagnoses"][1] == "3"
    assert "DuckDB threads 1" in out
    assert out.rstrip().splitlines()[-1].startswith("peak RSS ")


def test_bench_load_exits_2_on_an_unusable_extract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_extract(tmp_path)
    (tmp_path / "people.csv").unlink()
    assert _bench().main([str(tmp_path)]) == 2
    assert "missing file for table 'people'" in capsys.readouterr().err
