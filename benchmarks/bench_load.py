"""Time `records.load_extract` on an extract folder beside DuckDB's bare read of the same files.

    uv run python benchmarks/bench_load.py /tmp/ex200k [--threads N] [--memory-limit 4GB]
    uv run python benchmarks/bench_load.py --quick     # a small synthetic extract, made here

Make a big extract first, e.g. `uv run casefinder synth --people 200000 --out /tmp/ex200k`.
Per-table times come from the loader's progress callback (from the table's first report to its
last); the loader loads the tables after `people` two at a time, so they overlap, and the total is
the load's wall time. The bare read is what DuckDB itself takes to materialise each file, in the
same run, on the same files and settings: `CREATE TABLE t AS SELECT * FROM read_parquet(...)` (for
CSV, `read_csv` of every column as text, as the loader reads it); `x bare` is the loader's time over
it (target: within 3 times). The bare read goes one file at a time: two at a time it gained nothing
(1,000,000 people: 6.4 and 6.8 s against 6.3 and 6.5 s). Files are read once first so neither side
pays for a cold disk. Peak RSS is the process's high-water mark (Python, Arrow and DuckDB together).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from records import ExtractError, load_extract
from records.contract import TABLES

TARGET_RATIO = 3.0
QUICK_PEOPLE = 2_000


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _connect(threads: int | None, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    return con


def _table_files(folder: Path) -> dict[str, Path]:
    files = {}
    for name in TABLES:
        for suffix in (".parquet", ".csv"):
            if (folder / f"{name}{suffix}").is_file():
                files[name] = folder / f"{name}{suffix}"
    return files


def _warm(files: dict[str, Path]) -> None:
    """Read every file once, so the first timed reader does not pay for the disk alone."""
    for path in files.values():
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


def bare_reads(files: dict[str, Path], threads: int | None, memory_limit: str | None) -> dict:
    """Seconds DuckDB takes to materialise each file as a table, nothing else."""
    con = _connect(threads, memory_limit)
    seconds = {}
    for name, path in files.items():
        source = (
            f"read_parquet('{path}')"
            if path.suffix == ".parquet"
            else f"read_csv('{path}', header = true, all_varchar = true)"
        )
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM {source}")
        seconds[name] = time.perf_counter() - t
        con.execute("DROP TABLE t")
    con.close()
    return seconds


def _quick_extract() -> Path:
    from synthetic import SynthConfig, generate

    folder = Path(tempfile.mkdtemp(prefix="bench-load-")) / "extract"
    generate(SynthConfig(people=QUICK_PEOPLE, seed=1), folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extract", type=Path, nargs="?", help="extract folder (manifest + tables)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all)")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 4GB")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_PEOPLE:,} synthetic people; no target"
    )
    args = parser.parse_args(argv)
    if args.extract is None:
        if not args.quick:
            parser.error("give an extract folder, or --quick")
        args.extract = _quick_extract()

    con = _connect(args.threads, args.memory_limit)
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

    files = _table_files(Path(args.extract)) if Path(args.extract).is_dir() else {}
    _warm(files)
    t0 = time.perf_counter()
    try:
        extract = load_extract(args.extract, con=con, progress=progress)
    except ExtractError as exc:
        print(f"extract unusable: {exc}", file=sys.stderr)
        return 2
    total = time.perf_counter() - t0
    bare = bare_reads(files, args.threads, args.memory_limit)

    print(f"load_extract {args.extract}  (DuckDB threads {threads}, memory_limit {limit})")
    print(
        f"{'table':<26}{'format':>8}{'rows read':>14}{'rejected':>11}{'seconds':>10}"
        f"{'bare s':>9}{'x bare':>8}{'rows/s':>14}"
    )
    rows = 0
    for name, report in extract.reports.items():
        seconds = finished[name] - started[name]
        rows += report.read
        rate = report.read / seconds if seconds > 0 else float("inf")
        fmt = report.source.suffix.lstrip(".") if report.source else ""
        ratio = seconds / bare[name] if bare[name] > 0 else float("inf")
        print(
            f"{name:<26}{fmt:>8}{report.read:>14,}{report.rejected:>11,}{seconds:>10.2f}"
            f"{bare[name]:>9.2f}{ratio:>8.1f}{rate:>14,.0f}"
        )
    (diagnoses,) = con.execute("SELECT count(*) FROM hospital_diagnoses").fetchone()
    tables_end = max(finished.values())
    print(
        f"{'hospital_diagnoses':<26}{'':>8}{diagnoses:>14,}{'':>11}{t0 + total - tables_end:>10.2f}"
    )
    bare_total = sum(bare.values())
    print(
        f"{'total':<26}{'':>8}{rows:>14,}{extract.n_rejected:>11,}{total:>10.2f}"
        f"{bare_total:>9.2f}{total / bare_total:>8.1f}{rows / total:>14,.0f}"
    )
    target = "quick mode, not a target" if args.quick else f"target <= {TARGET_RATIO:g}x"
    print(
        f"loader / bare read {total / bare_total:.2f}x ({target}); cores {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"peak RSS {_peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
