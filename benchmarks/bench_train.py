"""Time a full training run on a synthetic population and print the figures.

    uv run python benchmarks/bench_train.py --people 200000
    uv run python benchmarks/bench_train.py --quick     # 4,000 people in a temporary folder

Generates the extract under --work (reused when it already exists), then runs `casefinder
train`'s steps into a fresh SQLite MLflow store under --work and prints the time of each step,
the model's and baselines' test AUROC, the oracle's AUROC on the same rows and the calibration.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

QUICK_PEOPLE = 4_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/casefinder-bench-train"))
    parser.add_argument("--tune", type=int, default=0, help="Optuna trials (0: none)")
    parser.add_argument("--threads", type=int, default=0, help="LightGBM threads (0: all)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_PEOPLE:,} people, temporary --work"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.tune = QUICK_PEOPLE, 0
        args.work = Path(tempfile.mkdtemp(prefix="bench-train-"))

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from config.settings import load_settings
    from synthetic import SynthConfig, generate
    from training.train import build_training_panel, train_on_panel

    extract = args.work / f"extract-{args.people}-{args.seed}"
    if not (extract / "manifest.json").exists():
        started = time.perf_counter()
        generate(SynthConfig(people=args.people, seed=args.seed), extract)
        print(f"generate extract ({args.people:,} people)   {time.perf_counter() - started:8.1f} s")
    home = args.work / "home"
    shutil.rmtree(home, ignore_errors=True)
    settings = load_settings(home=home)
    settings = settings.model_copy(
        update={"training": settings.training.model_copy(update={"threads": args.threads})}
    )

    steps: dict[str, float] = {}
    last: list = [None, time.perf_counter()]

    def progress(task: str, fraction: float) -> None:
        if task != last[0]:
            now = time.perf_counter()
            if last[0] is not None:
                steps[last[0]] = steps.get(last[0], 0.0) + now - last[1]
            last[:] = [task, now]

    total, cpu = time.perf_counter(), time.process_time()
    built = build_training_panel(extract, settings, progress)
    panel_done = time.perf_counter()
    result = train_on_panel(
        built.panel,
        built.feature_names,
        settings,
        built.extract_info,
        oracle=built.oracle,
        tune=args.tune,
        progress=progress,
    )
    end = time.perf_counter()
    if last[0] is not None:
        steps[last[0]] = steps.get(last[0], 0.0) + end - last[1]

    dates = built.extract_info["index_dates"]
    print(f"index dates                          {len(dates)} ({dates[0]} .. {dates[-1]})")
    print(f"panel rows                           {len(built.panel):,}")
    for key in ("train", "validation", "test"):
        rows, outcomes = result.counts[f"{key}_rows"], result.counts[f"{key}_outcomes"]
        print(f"{key + ' rows (outcomes)':<37}{rows:,} ({outcomes:,})")
    print(f"load extract + build panel           {panel_done - total:8.1f} s")
    print(f"split, fit, calibrate, evaluate, log {end - panel_done:8.1f} s")
    for task, seconds in steps.items():
        print(f"  {task:<35}{seconds:8.1f} s")
    print(f"TOTAL train                          {end - total:8.1f} s")
    print(f"CPU time of this process             {time.process_time() - cpu:8.1f} s")
    print(f"load average (1, 5, 15 min)          {os.getloadavg()}")
    print(f"best iteration                       {result.params['best_iteration']}")
    print()
    columns = ["auroc", "auprc", "brier", "calibration_slope", "calibration_intercept", "ppv_list"]
    header = "".join(f"{c[:12]:>13}" for c in columns)
    print(f"{'':<28}{header}   model's AUROC gain (95% CI)")
    for row in result.comparison.to_dict("records"):
        gain = ""
        if row["name"] != "model":
            low, high = row["auroc_gain_ci_low"], row["auroc_gain_ci_high"]
            gain = f"   {row['auroc_gain']:+.4f} ({low:+.4f} to {high:+.4f})"
        print(f"{row['name']:<28}" + "".join(f"{row[c]:>13.4f}" for c in columns) + gain)
    if result.oracle:
        o = result.oracle
        print(
            f"\noracle AUROC (same {int(o['rows']):,} rows) {o['auroc']:.4f}; model/oracle "
            f"{o['ratio']:.4f}; headroom {o['headroom']:.4f} "
            f"({o['headroom_ci_low']:.4f} to {o['headroom_ci_high']:.4f})"
        )
    flags = result.fairness[result.fairness["flag"] != ""]
    print(f"fairness flags: {len(flags)}")
    for row in flags.itertuples():
        print(f"  {row.attribute} = {row.group}: {row.flag}")


if __name__ == "__main__":
    main()
