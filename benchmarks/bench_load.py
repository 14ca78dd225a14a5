"""Time `records.load_extract` on an extract folder: rows/s per table, total, peak memory.

    uv run python benchmarks/bench_load.py /tmp/ex200k [--threads N] [--memory-limit 4GB]

Make a big extract first, e.g. `uv run casefinder synth --people 200000 --out /tmp/ex200k`.
Per-table times come from the loader's progress callback (from the table's first report to its
last); peak RSS is the process's high-water mark (Python, Arrow and DuckDB together).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import duckdb

from records import ExtractError, load_extract


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extract", type=Path, help="extract folder (manifest.json + tables)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 4GB")
    args = parser.parse_args(argv)

    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute("SET memory_limit = ?", [args.memory_limit])
    threads, limit = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()

    started: dict[str, float] = {}
    finished: dict[str, float] = {}

    def progress(task: str, fraction: float) -> None:
        now = time.perf_counter()
        started.setdefault(task, now)
        if fraction >= 1.0:
            finished[task] = now

    t0 = time.perf_counter()
    try:
        extract = load_extract(args.extract, con=con, progress=progress)
    except ExtractError as exc:
        print(f"extract unusable: {exc}", file=sys.stderr)
        return 2
    total = time.perf_counter() - t0

    print(f"load_extract {args.extract}  (DuckDB threads {threads}, memory_limit {limit})")
    print(
        f"{'table':<26}{'format':>8}{'rows read':>14}{'rejected':>11}{'seconds':>10}{'rows/s':>14}"
    )
    rows = 0
    for name, report in extract.reports.items():
        seconds = finished[name] - started[name]
        rows += report.read
        rate = report.read / seconds if seconds > 0 else float("inf")
        fmt = report.source.suffix.lstrip(".") if report.source else ""
        print(
            f"{name:<26}{fmt:>8}{report.read:>14,}{report.rejected:>11,}{seconds:>10.2f}"
            f"{rate:>14,.0f}"
        )
    (diagnoses,) = con.execute("SELECT count(*) FROM hospital_diagnoses").fetchone()
    tables_end = max(finished.values())
    print(
        f"{'hospital_diagnoses':<26}{'':>8}{diagnoses:>14,}{'':>11}{t0 + total - tables_end:>10.2f}"
    )
    print(
        f"{'total':<26}{'':>8}{rows:>14,}{extract.n_rejected:>11,}{total:>10.2f}"
        f"{rows / total:>14,.0f}"
    )
    print(f"peak RSS {_peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
