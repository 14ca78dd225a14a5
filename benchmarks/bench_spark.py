"""DuckDB against local Spark on the same generated extract: load, features at one date, a
12-date panel and a monthly `score`, wall time and peak memory (this process and Spark's JVM).

    uv run python benchmarks/bench_spark.py --people 100000
    uv run python benchmarks/bench_spark.py --quick      # 500 people, features at one date and
                                                         # the monthly score (the panel's parity
                                                         # is a test)

Both engines run the same compiled definitions (records.dialect); the tables are checked equal,
and so are the two monthly runs' stored people (scores, ranks, lists, segments, reasons). The
monthly score is `scoring.run.score_month` on the extract each engine has loaded (its load is the
"load" step): on Spark the month's features are scored on the executors
(models/spark_scoring.py). Its model is a champion trained once on a small extract (untimed).
Spark runs locally (`[engine] master`, default local[2]) bound to loopback. Extracts are
generated under /tmp (reused when present).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_score import ensure_champion  # this folder is on sys.path when run as a script

from config.settings import EngineSettings, MlflowSettings, OutcomeSettings, load_settings
from features import build_features, build_panel
from features.dates import add_months
from features.outcome import last_observed_index_date
from records import open_extract
from records.spark import load_spark_extract, spark_session

BENCH_DIR = Path("/tmp/casefinder-bench")
QUICK_PEOPLE = 500
TRAIN_PEOPLE = 4_000  # the champion the monthly score uses (its quality does not matter here)
MONTH = "2026-11"


def _jvm_peak_gb(spark: object) -> float:
    """Peak resident memory of Spark's JVM (Linux VmHWM of the gateway's process)."""
    try:
        pid = spark.sparkContext._gateway.proc.pid  # type: ignore[attr-defined]
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2
    except (AttributeError, OSError):
        pass
    return float("nan")


def _py_peak_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _status_gb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def _reset_peak() -> float:
    """Start this process's peak resident memory (VmHWM) afresh (Linux: `clear_refs` 5);
    returns the resident memory now (GB)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")
    return _status_gb("VmRSS")


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    for column in a.columns:
        x, y = a[column], b[column]
        if not (x.isna().to_numpy() == y.isna().to_numpy()).all():
            return False
        x, y = x[x.notna()], y[y.notna()]
        if pd.api.types.is_numeric_dtype(x):
            if not np.allclose(x.astype(float), y.astype(float), rtol=1e-9, atol=0):
                return False
        elif x.astype(str).tolist() != y.astype(str).tolist():
            return False
    return True


def _monthly_score(folder: Path, extract: Any, settings: Any) -> pd.DataFrame:
    """`score_month` on the loaded `extract` into an emptied score store (both engines' runs
    have the same id: the second must not reuse the first): the run's stored people."""
    from scoring.run import score_month
    from scoring.store import ScoreStore

    shutil.rmtree(settings.score_store, ignore_errors=True)
    result = score_month(folder, MONTH, settings, extract=extract)
    assert not result.reused
    people = ScoreStore(settings.score_store).people(result.run_id)
    return people.sort_values("person_id").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--dates", type=int, default=12, help="panel index dates (0: no panel)")
    parser.add_argument("--quick", action="store_true", help="500 people, no panel")
    args = parser.parse_args()
    people, n_dates = (QUICK_PEOPLE, 2) if args.quick else (args.people, args.dates)
    folder = BENCH_DIR / f"synth-{people}"
    if not (folder / "manifest.json").is_file():
        from synthetic import SynthConfig, generate

        generate(SynthConfig(people=people), folder)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    settings = load_settings(home=BENCH_DIR / "home", mlflow=MlflowSettings(tracking_uri=None))
    ensure_champion(settings, BENCH_DIR / f"synth-{TRAIN_PEOPLE}-train", TRAIN_PEOPLE, seed=2)
    day = date(2026, 11, 1)
    times: dict[tuple[str, str], float] = {}
    results: dict[str, dict[str, pd.DataFrame]] = {"duckdb": {}, "spark": {}}
    grown: dict[str, float] = {}  # how far this process's memory rose in the monthly score

    t = time.perf_counter()
    duck = open_extract(folder, settings)
    times[("duckdb", "load")] = time.perf_counter() - t
    t = time.perf_counter()
    spark = spark_session(EngineSettings(**{**settings.engine.model_dump(), "name": "spark"}))
    times[("spark", "start session")] = time.perf_counter() - t
    t = time.perf_counter()
    ours = load_spark_extract(folder, spark)
    times[("spark", "load")] = time.perf_counter() - t

    print(f"load: duckdb {times[('duckdb', 'load')]:.1f} s, spark {times[('spark', 'load')]:.1f} s "
          f"(session start {times[('spark', 'start session')]:.1f} s)", flush=True)  # fmt: skip
    last = last_observed_index_date(duck.manifest, OutcomeSettings())
    dates = [add_months(last, -k) for k in range(n_dates)][::-1]
    for name, extract in (("duckdb", duck), ("spark", ours)):
        t = time.perf_counter()
        results[name]["features"] = build_features(extract, day)
        times[(name, "features, 1 date")] = time.perf_counter() - t
        if not args.quick and n_dates:
            t = time.perf_counter()
            results[name]["panel"] = build_panel(extract, dates, settings.outcome)
            times[(name, f"panel, {n_dates} dates")] = time.perf_counter() - t
        before = _reset_peak()
        t = time.perf_counter()
        results[name]["score"] = _monthly_score(folder, extract, settings)
        times[(name, "monthly score")] = time.perf_counter() - t
        grown[name] = _status_gb("VmHWM") - before
        print(f"{name}: features {times[(name, 'features, 1 date')]:.1f} s, monthly score "
              f"{times[(name, 'monthly score')]:.1f} s", flush=True)  # fmt: skip

    panel_to = f", panel to {dates[-1]}" if dates else ""
    print(f"people: {people:,}  (extract {folder}, index date {day}{panel_to})")
    print(f"{'step':<22} {'duckdb s':>10} {'spark s':>10} {'spark/duckdb':>13}")
    panel = [] if args.quick or not n_dates else [f"panel, {n_dates} dates"]
    steps = ["load", "features, 1 date", *panel, "monthly score"]
    for step in steps:
        a, b = times[("duckdb", step)], times[("spark", step)]
        print(f"{step:<22} {a:>10.1f} {b:>10.1f} {b / a:>12.1f}x")
    print(f"spark session start    {times[('spark', 'start session')]:.1f} s")
    same = {k: _same(results["duckdb"][k], results["spark"][k]) for k in results["duckdb"]}
    differ = ", ".join(k for k, v in same.items() if not v)
    print(f"tables identical: {'NO (' + differ + ')' if differ else 'yes'}")
    print(f"peak memory: python {_py_peak_gb():.2f} GB, spark JVM {_jvm_peak_gb(spark):.2f} GB")
    print(f"python memory added by the monthly score: duckdb {grown['duckdb']:.2f} GB, "
          f"spark {grown['spark']:.2f} GB (the driver's share of a Spark run)")  # fmt: skip
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
