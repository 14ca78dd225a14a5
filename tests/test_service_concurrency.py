"""Two service processes (two `bentoml serve`, as two replicas would run) sharing one real
PostgreSQL database record MDT reviews at once over HTTP: every review is kept, and the audit log
is one valid keyed chain with one entry per review."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from config.db import Database
from serving.audit import AuditLog, load_key, verify
from serving.users import UserStore
from tests import serving_fixtures
from tests.postgres import new_database

built_home = serving_fixtures.built_home

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MONTH = "2026-09"
REVIEWS = 40


def test_two_services_on_one_postgresql_keep_every_review_and_one_chain(
    built_home, postgres, tmp_path_factory
):
    source, _ = built_home
    home = serving_fixtures.copy_home(source, tmp_path_factory.mktemp("shared") / "home")
    url = new_database(postgres)
    users = UserStore(Database(url))
    tokens = {name: users.add(name, role, "North")[1] for name, role in
              (("north_team", "team"), ("north_clinician", "clinician"))}  # fmt: skip
    env = {"CASEFINDER_DATABASE__URL": url}
    servers = [
        serving_fixtures.running_server(home, tokens, env=env, log_name=f"{name}.log")
        for name in ("a", "b")
    ]
    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(2) as starting:  # both start at once (each waits to be ready)
            a, b = starting.map(stack.enter_context, servers)
        listed = httpx.post(
            f"{a.url}/list", json={"neighbourhood": "North", "month": MONTH},
            headers=a.headers("north_team"), timeout=60,
        ).json()["people"]  # fmt: skip
        people = [p["person_id"] for p in listed]

        def record(i: int) -> httpx.Response:
            server, user = (a, "north_team") if i % 2 else (b, "north_clinician")
            body = {"person_id": people[i % len(people)], "month": MONTH, "outcome": "deferred",
                    "review_month": "2026-11", "note": f"review {i}"}  # fmt: skip
            return httpx.post(
                f"{server.url}/review", json=body, headers=server.headers(user), timeout=120
            )

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(record, range(REVIEWS)))
        assert [r.status_code for r in responses] == [200] * REVIEWS, responses[0].text
        ids = {r.json()["id"] for r in responses}
        stored = httpx.post(
            f"{b.url}/reviews", json={"neighbourhood": "North", "month": MONTH},
            headers=b.headers("north_team"), timeout=60,
        ).json()["reviews"]  # fmt: skip
    assert len(ids) == REVIEWS and {r["id"] for r in stored} == ids
    assert sorted(r["note"] for r in stored) == sorted(f"review {i}" for i in range(REVIEWS))
    log = AuditLog(Database(url), load_key(home / "audit.key"))
    result = verify(log)
    assert result.ok, result.problem
    assert len(log.entries(action="api.review")) == REVIEWS
    assert {e["user"] for e in log.entries(action="api.review")} == set(tokens)
