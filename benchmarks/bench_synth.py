"""Benchmark the synthetic generator: wall time, peak memory, rows per table, rows per second.

    uv run python benchmarks/bench_synth.py --people 1000000 --out /tmp/bench-synth
    uv run python benchmarks/bench_synth.py --quick     # 2,000 people: a smoke run

Writes the extract under --out (default: a temporary folder, removed afterwards).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from synthetic import SynthConfig, generate

QUICK_PEOPLE = 2_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", dest="file_format", default="parquet")
    parser.add_argument("--out", type=Path, default=None, help="Keep the extract here.")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PEOPLE:,} people")
    args = parser.parse_args(argv)
    if args.quick:
        args.people = QUICK_PEOPLE

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-synth-"))
    phases: dict[str, float] = {}
    began = time.perf_counter()

    def progress(task: str, fraction: float) -> None:
        phases[task] = time.perf_counter() - began

    config = SynthConfig(people=args.people, seed=args.seed, file_format=args.file_format)
    try:
        summary = generate(config, out, progress=progress)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    wall = time.perf_counter() - began
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    total = sum(summary.rows.values()) + summary.oracle_rows

    print(f"people:        {args.people:,}  ({config.months()} months, seed {args.seed})")
    print(f"wall time:     {wall:.1f} s")
    print(f"peak RSS:      {peak_kb / 1024**2:.2f} GB")
    print("phases (s from start when each finished):")
    for task, at in phases.items():
        print(f"  {task:<30}{at:>8.1f}")
    print("rows:")
    for name, n in summary.rows.items():
        print(f"  {name:<30}{n:>14,}")
    print(f"  {'oracle':<30}{summary.oracle_rows:>14,}")
    print(f"total rows:    {total:,}  ({total / wall:,.0f} rows/s)")
    print(
        f"outcome rate at {summary.index_date}: {summary.mean_probability:.1%} "
        f"of {summary.eligible:,} eligible"
    )


if __name__ == "__main__":
    sys.exit(main())
