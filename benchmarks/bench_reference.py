"""casefinder's train + score beside the obvious pipeline doing the same job, in one run on the
same extract, each as a fresh process (start-up included), and the ratio.

    uv run python benchmarks/bench_reference.py --people 30000
    uv run python benchmarks/bench_reference.py --quick     # 3,000 people in a temporary folder

The reference (`reference_pipeline.py`) is pandas features at four index dates, LightGBM, predict
for the month after the extract and SHAP for the top 5%. casefinder is `casefinder train` (into
a fresh home: MLflow store, evaluation against baselines, fairness, model card, registry) then
`casefinder promote` and `casefinder score --month` (validated load, 110+ features, lists,
reasons for everyone listed, drift, stored run). Issue 18's target: train + score at or under
1.2 times the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK_PEOPLE = 3_000
QUICK_ROUNDS = 50


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=HERE.parent)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/casefinder-bench-reference"))
    parser.add_argument("--rounds", type=int, default=300, help="the reference's boosting rounds")
    parser.add_argument(
        "--quick", action="store_true",
        help=f"{QUICK_PEOPLE:,} people, {QUICK_ROUNDS} rounds, temporary --work",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.rounds = QUICK_PEOPLE, QUICK_ROUNDS
        args.work = Path(tempfile.mkdtemp(prefix="bench-reference-"))

    from features.dates import first_of_next_month
    from synthetic import SynthConfig, generate

    extract = args.work / f"extract-{args.people}-{args.seed}"
    if not (extract / "manifest.json").exists():
        generate(SynthConfig(people=args.people, seed=args.seed), extract)
    manifest = json.loads((extract / "manifest.json").read_text())
    month = first_of_next_month(date.fromisoformat(manifest["extract_date"])).strftime("%Y-%m")

    home = args.work / "home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "CASEFINDER_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    casefinder = [sys.executable, "-m", "casefinder.cli"]

    reference, out = _timed(
        [sys.executable, str(HERE / "reference_pipeline.py"), str(extract), str(args.rounds)], env
    )
    ref = json.loads(out.strip().splitlines()[-1])
    train, _ = _timed([*casefinder, "train", str(extract)], env)
    promote, _ = _timed([*casefinder, "promote", "--force", "--reason", "benchmark"], env)
    score, _ = _timed([*casefinder, "score", str(extract), "--month", month], env)

    print(f"extract: {args.people:,} people, month scored {month}, reference {args.rounds} rounds")
    print(f"reference pipeline            {reference:8.1f} s  (AUROC {ref['auroc']:.3f})")
    for step in ("imports", "read", "features and labels (4 dates)", "train and test",
                 "predict and SHAP (top 5%)"):  # fmt: skip
        print(f"  {step:<28}{ref[step]:8.1f} s")
    print(f"casefinder train              {train:8.1f} s")
    print(f"casefinder promote            {promote:8.1f} s  (not counted)")
    print(f"casefinder score              {score:8.1f} s")
    print(f"train + score / reference     {(train + score) / reference:8.2f}x  (target 1.20x)")


if __name__ == "__main__":
    main()
