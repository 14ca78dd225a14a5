"""Feature-building speed and memory on synthetic extracts.

    uv run python benchmarks/bench_features.py single --people 1000000   # one index date
    uv run python benchmarks/bench_features.py panel --people 200000 --dates 12
    uv run python benchmarks/bench_features.py single --quick   # 2,000 people (2 dates for panel)

`single` times the feature table at the usual monthly index date (the day after the extract date)
and compares three features against the obvious pandas implementation (groupby on DataFrames
already in memory), checking both give the same numbers. `panel` times a training panel of
monthly index dates ending at the latest one with an observed outcome. Extracts are generated
under /tmp (reused when present). Targets: single 1M < 60 s and < 8 GB; panel 12 x 200k < 3 min.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from config.settings import OutcomeSettings, load_settings
from features import build_features, build_panel, feature, features_sql
from features.build import placeholders
from features.dates import add_months
from features.outcome import last_observed_index_date
from records import Extract, open_extract
from records.contract import EMERGENCY_ADMISSION_METHODS


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def rss_gb() -> float:
    """Current resident memory of this process."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


class RssSampler:
    """Highest resident memory seen while the block runs (sampled every 50 ms)."""

    def __enter__(self) -> RssSampler:
        self.start = self.peak = rss_gb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_gb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_gb())


def cpu_seconds() -> float:
    """CPU time used by this process (all threads), to tell work from waiting on a busy machine."""
    return time.process_time()


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


BENCH_DIR = Path("/tmp/casefinder-bench")
QUICK_PEOPLE = 2_000


def extract_folder(people: int) -> Path:
    folder = BENCH_DIR / f"synth-{people}"
    if not (folder / "manifest.json").is_file():
        from synthetic import SynthConfig, generate

        t = time.perf_counter()
        generate(SynthConfig(people=people), folder)
        print(f"generated {people:,} people in {time.perf_counter() - t:.0f} s -> {folder}")
    return folder


def load(people: int) -> Extract:
    folder = extract_folder(people)
    t, c = time.perf_counter(), cpu_seconds()
    # As the commands read it: DuckDB held to [records] duckdb_memory_limit, spilling under home.
    settings = load_settings(home=Path("/tmp/casefinder-bench/home"))
    extract = open_extract(folder, settings)
    print(
        f"load extract (DuckDB limit {settings.records.duckdb_memory_limit}): "
        f"{time.perf_counter() - t:.1f} s (CPU {cpu_seconds() - c:.1f} s), "
        f"peak RSS {peak_rss_gb():.2f} GB"
    )
    return extract


PANDAS_FEATURES = ("emergency_admissions_12m", "days_since_emergency_admission",
                   "distinct_medicines_3m")  # fmt: skip


def pandas_features(
    people: pd.DataFrame, spells: pd.DataFrame, rx: pd.DataFrame, d: date, rx_cutoff: date
) -> pd.DataFrame:
    """The obvious pandas version of three features for the eligible `people` (index: person)."""
    d64, since12 = pd.Timestamp(d), pd.Timestamp(add_months(d, -12))
    emergency = spells[spells["admission_method"].isin(EMERGENCY_ADMISSION_METHODS)]
    emergency = emergency[emergency["admission_date"] < d64]
    out = pd.DataFrame(index=people["person_id"])
    in12 = emergency[emergency["admission_date"] >= since12]
    out["emergency_admissions_12m"] = in12.groupby("person_id").size()
    last = emergency.groupby("person_id")["admission_date"].max()
    out["days_since_emergency_admission"] = (d64 - last).dt.days
    cut, since3 = pd.Timestamp(rx_cutoff), pd.Timestamp(add_months(rx_cutoff, -3))
    recent = rx[(rx["issue_date"] < cut) & (rx["issue_date"] >= since3)]
    medicine = recent["bnf_code"].str.slice(0, 9)
    out["distinct_medicines_3m"] = medicine.groupby(recent["person_id"]).nunique()
    out[["emergency_admissions_12m", "distinct_medicines_3m"]] = out[
        ["emergency_admissions_12m", "distinct_medicines_3m"]
    ].fillna(0)
    return out


def single(people: int) -> None:
    extract = load(people)
    d = extract.manifest.extract_date + timedelta(days=1)
    t, c = time.perf_counter(), cpu_seconds()
    with RssSampler() as memory:
        table = build_features(extract, d)
    seconds = time.perf_counter() - t
    print(
        f"build_features: {len(table):,} eligible of {people:,} people x {table.shape[1] - 4} "
        f"features at {d}: {seconds:.1f} s (CPU {cpu_seconds() - c:.1f} s on "
        f"{os.cpu_count()} cores); RSS {memory.start:.2f} GB with the extract loaded, peak "
        f"{memory.peak:.2f} GB while building (+{memory.peak - memory.start:.2f} GB); "
        f"load average {load_average()}"
    )

    # Same three features: DuckDB (the registry's SQL, over whole tables) against pandas given
    # only the rows it needs (emergency spells before D; prescriptions in the 3-month window),
    # already in memory: a comparison that favours pandas.
    con = extract.con
    people_df = table[["person_id"]]
    del table
    rx_cutoff = date.fromisoformat(
        placeholders(extract.manifest, d, "prescriptions")["cutoff"][6:16]
    )
    spells = con.sql(
        "SELECT person_id, admission_date, admission_method FROM hospital_spells "
        f"WHERE admission_date < DATE '{d}'"
    ).df()
    rx = con.sql(
        "SELECT person_id, issue_date, bnf_code FROM prescriptions "
        f"WHERE issue_date >= DATE '{add_months(rx_cutoff, -3)}' "
        f"AND issue_date < DATE '{rx_cutoff}'"
    ).df()
    subset = tuple(feature(n) for n in PANDAS_FEATURES)
    t, c = time.perf_counter(), cpu_seconds()
    duck = con.sql(features_sql(extract.manifest, d, subset)).df().set_index("person_id")
    duck_s, duck_cpu = time.perf_counter() - t, cpu_seconds() - c
    t, c = time.perf_counter(), cpu_seconds()
    pand = pandas_features(people_df, spells, rx, d, rx_cutoff)
    pandas_s, pandas_cpu = time.perf_counter() - t, cpu_seconds() - c
    for name in PANDAS_FEATURES:
        a = duck[name].to_numpy(dtype=float)
        b = pand.loc[duck.index, name].to_numpy(dtype=float)
        if not np.allclose(a, b, equal_nan=True):
            raise SystemExit(f"pandas and DuckDB disagree on {name}")
    print(
        f"3 features ({', '.join(PANDAS_FEATURES)}): DuckDB SQL {duck_s:.2f} s "
        f"(CPU {duck_cpu:.2f} s), pandas groupby {pandas_s:.2f} s (CPU {pandas_cpu:.2f} s): "
        f"pandas/DuckDB wall {pandas_s / duck_s:.1f}x, CPU {pandas_cpu / duck_cpu:.1f}x "
        "(same values)"
    )
    print(f"peak RSS {peak_rss_gb():.2f} GB; load average {load_average()}")


def panel(people: int, n_dates: int) -> None:
    extract = load(people)
    last = last_observed_index_date(extract.manifest, OutcomeSettings())
    dates = [add_months(last, -i) for i in reversed(range(n_dates))]
    t, c = time.perf_counter(), cpu_seconds()
    with RssSampler() as memory:
        frame = build_panel(extract, dates)
    seconds = time.perf_counter() - t
    print(
        f"build_panel: {n_dates} monthly index dates {dates[0]}..{dates[-1]}, {len(frame):,} rows "
        f"x {frame.shape[1]} columns: {seconds:.1f} s ({seconds / n_dates:.1f} s a date; CPU "
        f"{cpu_seconds() - c:.1f} s), outcome rate {frame['outcome'].mean():.1%}, "
        f"RSS {memory.start:.2f} GB loaded, peak {memory.peak:.2f} GB while building; "
        f"load average {load_average()}"
    )


def main(argv: list[str] | None = None) -> None:
    global BENCH_DIR
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["single", "panel"])
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--dates", type=int, default=12)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_PEOPLE:,} people in a temporary folder"
    )
    args = parser.parse_args(argv)
    if args.quick:
        import tempfile

        args.people, args.dates = QUICK_PEOPLE, 2
        BENCH_DIR = Path(tempfile.mkdtemp(prefix="bench-features-"))
    if args.scenario == "single":
        single(args.people or 1_000_000)
    else:
        panel(args.people or 200_000, args.dates)


if __name__ == "__main__":
    main()
