"""How fast is a monthly scoring run? Target: 1,000,000 people (load, features, scores,
explanations for the listed, drift, store, exports) in under 60 s on 2 cores (issue 18), peak memory
under 8 GB.

Full run (default): generates a synthetic extract of `--people` (not timed; reused when already
under `--work`), trains and promotes a champion on a smaller extract (not timed), then times
`casefinder score` (`scoring.run.score_month`, each phase from its progress reports), the CSV,
XLSX and JSON exports of every list, and a rerun of the same month (reuses the stored run).

Parts only (`--parts-only`): the lists stage's own work on a 1,000,000-row feature frame shaped
like `features.build_features`'s, with a real LightGBM model: scoring, list rules, explanations,
drift, summary, store and exports (no extract, no registry).

    uv run python benchmarks/bench_score.py                       # 1,000,000 people
    uv run python benchmarks/bench_score.py --people 50000        # smaller
    uv run python benchmarks/bench_score.py --extract /tmp/casefinder-bench/synth-1000000
    uv run python benchmarks/bench_score.py --parts-only
    uv run python benchmarks/bench_score.py --quick     # 2,000 people (4,000 to train) in a
                                                        # temporary --work; targets not checked
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_SECONDS = 60  # issue 18: the whole monthly run for 1,000,000 people
TARGET_GB = 8.0
QUICK_PEOPLE = 2_000


def peak_gb() -> float:
    """Peak resident memory of this process (DuckDB, LightGBM and pandas all live in it)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


class PhaseTimer:
    """A `progress(task, fraction)` callback that records when each task starts and ends."""

    def __init__(self) -> None:
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}

    def __call__(self, task: str, fraction: float) -> None:
        now = time.perf_counter()
        self.start.setdefault(task, now)
        self.end[task] = now

    def report(self) -> None:
        for task, began in sorted(self.start.items(), key=lambda kv: kv[1]):
            print(f"  {task:<34} {self.end[task] - began:8.1f} s")


def exports(store, run_id: str, out: Path) -> dict[str, float]:
    from scoring.exports import list_table, write_export

    meta = store.meta(run_id)
    timings = {}
    began = time.perf_counter()
    table = list_table(store.people(run_id))
    timings["read run + list table"] = time.perf_counter() - began
    for fmt in ("csv", "xlsx", "json"):
        began = time.perf_counter()
        write_export(table, fmt, out / f"lists.{fmt}", meta)
        timings[f"export {fmt}"] = time.perf_counter() - began
    return timings


def ensure_champion(settings, extract: Path, people: int, seed: int) -> None:
    """A champion in `settings`' registry when there is none: trained (untimed) on the
    `people`-person extract at `extract`, generated with `seed` when absent, and promoted."""
    from models.registry import current_champion
    from synthetic import SynthConfig, generate
    from training import promote, train

    if current_champion(settings) is not None:
        return
    if not (extract / "manifest.json").is_file():
        generate(SynthConfig(people=people, seed=seed), extract)
    began = time.perf_counter()
    result = train(extract, settings)
    promote(settings, result.version, force=True, reason="benchmark model")
    print(f"trained champion v{result.version} in {time.perf_counter() - began:.0f} s (untimed)")


def full(args: argparse.Namespace) -> float:
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from config.settings import MlflowSettings, load_settings
    from scoring.run import score_month
    from scoring.store import ScoreStore
    from synthetic import SynthConfig, generate

    work = Path(args.work)
    extract = Path(args.extract) if args.extract else work / f"extract-{args.people}-{args.seed}"
    if not (extract / "manifest.json").is_file():
        began = time.perf_counter()
        generate(SynthConfig(people=args.people, seed=args.seed), extract)
        print(f"generated {args.people:,} people in {time.perf_counter() - began:.0f} s (untimed)")
    home = work / "home"
    settings = load_settings(home=home, mlflow=MlflowSettings(tracking_uri=None))
    small = work / f"extract-{args.train_people}-{args.seed + 1}"
    ensure_champion(settings, small, args.train_people, args.seed + 1)
    shutil.rmtree(settings.score_store, ignore_errors=True)

    timer = PhaseTimer()
    began = time.perf_counter()
    result = score_month(extract, args.month, settings, progress=timer)
    scored = time.perf_counter() - began
    out = work / "exports"
    out.mkdir(exist_ok=True)
    export_times = exports(ScoreStore(settings.score_store), result.run_id, out)
    total = time.perf_counter() - began
    began = time.perf_counter()
    again = score_month(extract, args.month, settings)
    rerun = time.perf_counter() - began

    counts = result.meta["counts"]
    print(f"\nscoring run {result.run_id}: {counts['in_extract']:,} people in the extract, "
          f"{counts['eligible']:,} eligible, {counts['listed']:,} listed")  # fmt: skip
    print("phases (from progress reports; the tables after people load two at a time, so overlap):")
    timer.report()
    print(f"  {'score_month total':<34} {scored:8.1f} s")
    for name, seconds in export_times.items():
        print(f"  {name:<34} {seconds:8.1f} s")
    size = sum(p.stat().st_size for p in (settings.score_store / "runs").rglob("*") if p.is_file())
    print(f"stored run: {size / 1e6:.1f} MB")
    print(f"rerun of the same month (reused: {again.reused}): {rerun:.1f} s")
    return total


def parts(args: argparse.Namespace) -> float:
    import lightgbm as lgb

    from config.settings import ListSettings
    from features.definition import Feature
    from models.risk_model import PlattCalibrator, RiskModel
    from scoring.run import ModelInfo, make_run
    from scoring.store import ScoreStore

    rng = np.random.default_rng(args.seed)
    n, n_features = args.people, 60
    names = [f"f{j:02d}" for j in range(n_features)]
    defs = [
        Feature(name, "hospital use", f"feature {j}", f"{{value}} event{{s}} of type {j}",
                f"no events of type {j}", "count", "synthetic")
        for j, name in enumerate(names)
    ]  # fmt: skip
    hoods = np.array([f"Neighbourhood {k:02d}" for k in range(40)])
    frame = pd.DataFrame({name: rng.poisson(0.5, n).astype(float) for name in names})
    frame.insert(0, "person_id", [f"P{i:07d}" for i in range(n)])
    frame.insert(1, "index_date", pd.Timestamp("2026-11-01"))
    frame.insert(2, "neighbourhood", hoods[rng.integers(0, len(hoods), n)])
    frame.insert(3, "gp_practice_code", "P88001")
    shares = {
        "data_opt_out": 0.03,
        "in_care_home": 0.04,
        "on_caseload_neighbourhood_mdt": 0.05,
        "on_caseload_end_of_life": 0.01,
        "on_caseload_community_matron": 0.02,
        "on_caseload_care_home_support": 0.02,
    }
    for column, share in shares.items():
        frame[column] = (rng.random(n) < share).astype(int)
    logit = -3 + frame[names[:8]].to_numpy().sum(axis=1) * 0.4
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    sample = rng.choice(n, min(n, 50_000), replace=False)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 31, "seed": 1},
        lgb.Dataset(frame.loc[sample, names], y[sample]),
        num_boost_round=300,
    )
    calibrator = PlattCalibrator().fit(
        booster.predict(frame.loc[sample, names], raw_score=True), y[sample]
    )
    model = RiskModel(booster=booster, calibrator=calibrator, feature_names=names)
    ineligible = pd.DataFrame({"person_id": ["X"], "neighbourhood": [hoods[0]], "reason": ["died"]})
    print(f"built a {n:,}-row frame with {n_features} features and a 300-tree model (untimed)")

    work = Path(args.work) / "parts"
    shutil.rmtree(work, ignore_errors=True)
    store = ScoreStore(work / "scores")
    timer = PhaseTimer()
    began = time.perf_counter()
    run = make_run(
        month=args.month, features=frame, ineligible=ineligible, model=model,
        model_info=ModelInfo("bench", "1"),
        extract={"path": "-", "fingerprint": "0" * 64, "extract_date": "2026-10-31"},
        rules=ListSettings(capacity=args.capacity), training_sample=frame.iloc[sample],
        feature_defs=defs, created=datetime.now(UTC), progress=timer,
    )  # fmt: skip
    made = time.perf_counter()
    store.write(run)
    stored = time.perf_counter()
    export_times = exports(store, run.run_id, work)
    total = time.perf_counter() - began
    print(f"\n{run.meta['counts']['listed']:,} listed of {n:,}")
    timer.report()
    print(f"  {'make_run total':<34} {made - began:8.1f} s")
    print(f"  {'store write':<34} {stored - made:8.1f} s")
    for name, seconds in export_times.items():
        print(f"  {name:<34} {seconds:8.1f} s")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--month", default="2026-11")
    parser.add_argument("--train-people", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--work", default="/tmp/casefinder-bench-score")
    parser.add_argument("--extract", help="Score this extract folder instead of generating one.")
    parser.add_argument("--parts-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (see above)")
    args = parser.parse_args(argv)
    if args.quick:
        import tempfile

        args.people, args.train_people = QUICK_PEOPLE, 2 * QUICK_PEOPLE
        args.work = tempfile.mkdtemp(prefix="bench-score-")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    total = parts(args) if args.parts_only else full(args)
    memory = peak_gb()
    cores = len(os.sched_getaffinity(0))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\ntotal {total:.1f} s (target < {TARGET_SECONDS} s), peak memory {memory:.2f} GB "
          f"(target < {TARGET_GB:g} GB), {cores} cores")  # fmt: skip
    cpu = usage.ru_utime + usage.ru_stime
    load = os.getloadavg()[0]
    print(f"CPU time of the whole script {cpu:.0f} s; load average {load:.1f} (other work on the "
          "machine slows wall time)")  # fmt: skip
    if args.quick:
        print("quick mode: targets not checked")
        return 0
    ok = total < TARGET_SECONDS and memory < TARGET_GB
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
