"""Load benchmark of the service on loopback: p50/p99 latency and throughput.

    uv run python benchmarks/bench_serve.py [--home DIR] [--seconds 10]
    uv run python benchmarks/bench_serve.py --quick      # 1 s per scenario (the test suite's run)

Starts a real `bentoml serve` (one worker) on a free 127.0.0.1 port and drives it with an asyncio
httpx client, every loop bounded in requests and time. Without --home it builds the small test home
(tests/serving_fixtures.py: 240 people, a LightGBM champion, two monthly runs) under /tmp.

Scenarios:
  score 1 row    open loop at 100 requests/s (latency from the scheduled send time, so queueing
                 counts; connections opened first, untimed), target p99 < 50 ms
  score 100 rows closed loop, 4 concurrent clients
  explanation    one person's explanation (/person, no chart) open loop at 50 requests/s,
                 target p99 < 100 ms
  score 1 row    closed loop, 8 concurrent clients (saturation throughput)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving_fixtures import build_home, running_server  # noqa: E402

# Connections an open-loop scenario opens before its clock starts (more than it keeps in flight).
WARM_CONNECTIONS = 16


async def _send(client: httpx.AsyncClient, path: str, body: dict, headers: dict) -> int:
    response = await client.post(path, json=body, headers=headers)
    return response.status_code


async def _open_connections(client, path, body, headers, n: int) -> None:
    """Open `n` connections with concurrent requests, not timed: a scenario measures the service
    in steady state, not the client's first connections (a fresh client's first burst ran
    ~100 ms late on this machine, in the client)."""
    await asyncio.gather(*(_send(client, path, body, headers) for _ in range(n)))


async def open_loop(url, path, body, headers, rate: float, seconds: float) -> dict:
    """Send at a fixed rate; latency counts from when each request was due."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        await _open_connections(client, path, body, headers, WARM_CONNECTIONS)
        start = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal errors
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                status = await _send(client, path, body, headers)
            except httpx.HTTPError:
                status = 0
            if status != 200:
                errors += 1
            latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, elapsed)


async def closed_loop(url, path, body, headers, clients: int, seconds: float, cap: int) -> dict:
    """`clients` loops each sending the next request when the last one answers."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await _open_connections(client, path, body, headers, clients)
        start = time.perf_counter()

        async def loop() -> None:
            nonlocal errors
            while time.perf_counter() < stop and len(latencies) < cap:
                sent = time.perf_counter()
                try:
                    status = await _send(client, path, body, headers)
                except httpx.HTTPError:
                    status = 0
                errors += status != 200
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, elapsed)


def _summary(latencies: list[float], errors: int, elapsed: float) -> dict:
    ms = np.array(latencies) * 1000
    return {
        "requests": len(ms),
        "errors": int(errors),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "throughput_rps": len(ms) / elapsed,
    }


def feature_rows(home: Path, n: int) -> list[dict]:
    """`n` rows of model inputs the service accepts, from the latest month's stored run
    (`ScoreStore.features`, as the service reads them: the extract may have been moved away).
    Rows the /score schema refuses (a model input missing) are skipped."""
    from pydantic import ValidationError

    from config.settings import load_settings
    from scoring.store import ScoreStore
    from serving.schemas import FeatureRow

    store = ScoreStore(load_settings(home=home).score_store)
    frame = store.features(store.resolve(store.months()[-1]))
    rows = []
    for row in json.loads(frame.drop(columns="person_id").to_json(orient="records")):
        try:
            FeatureRow.model_validate(row)
        except ValidationError:
            continue
        rows.append(row)
    if not rows:
        raise SystemExit("no stored row of model inputs passes the /score schema")
    return (rows * (n // len(rows) + 1))[:n]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="A CASEFINDER_HOME with a champion and runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each scenario")
    parser.add_argument(
        "--quick", action="store_true", help="1 s per scenario: a smoke run, figures not targets"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 1.0

    if args.home is None:
        base = Path(tempfile.mkdtemp(prefix="bench-serve-"))
        print(f"building the test home under {base} ...", flush=True)
        tokens = build_home(base / "home", base / "extract")
        home = base / "home"
    else:
        home = args.home
        tokens = json.loads((home / "tokens.json").read_text())
    os.environ["CASEFINDER_HOME"] = str(home)
    one, hundred = {"rows": feature_rows(home, 1)}, {"rows": feature_rows(home, 100)}

    with running_server(home, tokens) as server:
        scientist = server.headers("scientist")
        clinician = server.headers("north_clinician")
        listed = httpx.post(
            f"{server.url}/list", json={"neighbourhood": "North"}, headers=clinician, timeout=30
        ).json()
        person = {"person_id": listed["people"][0]["person_id"]}
        # Warm up: first calls load the month's feature rows and compile nothing else. A
        # scenario whose request is refused measures nothing: stop with the service's answer.
        for _ in range(5):
            for path, body, headers in (
                ("/person", person, clinician),
                ("/score", hundred, scientist),
                ("/score", one, scientist),
            ):
                answer = httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)
                if answer.status_code != 200:
                    raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        s = args.seconds
        scenarios = [
            ("score 1 row, 100 req/s", open_loop(server.url, "/score", one, scientist, 100, s)),
            ("score 100 rows, 4 clients",
             closed_loop(server.url, "/score", hundred, scientist, 4, s, 2000)),
            ("explanation, 50 req/s",
             open_loop(server.url, "/person", person, clinician, 50, s)),
            ("score 1 row, 8 clients (max)",
             closed_loop(server.url, "/score", one, scientist, 8, s, 20000)),
        ]  # fmt: skip
        from config.settings import load_settings

        workers = load_settings().serving.workers
        print(f"\nbentoml serve, {workers} worker(s), {os.cpu_count()} cores, {s:g} s per scenario")
        header = ("scenario", "requests", "errors", "p50 ms", "p99 ms", "req/s")
        print(f"{header[0]:32}" + "".join(f" {h:>8}" for h in header[1:]))
        for name, scenario in scenarios:
            r = asyncio.run(scenario)
            print(
                f"{name:32} {r['requests']:8d} {r['errors']:6d} {r['p50_ms']:8.1f} "
                f"{r['p99_ms']:8.1f} {r['throughput_rps']:8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
