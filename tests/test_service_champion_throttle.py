"""Over HTTP against a real `bentoml serve`: the service follows a new champion without a restart
while a month's list and its person pages keep showing the run's own model; failed tokens are
throttled per client (429 + Retry-After, audited once); aggregate counts are suppressed below 5."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from config.settings import load_settings
from scoring.disclosure import suppressed, suppressed_group
from serving.audit import AuditLog
from serving.backend import Backend
from serving.throttle import FailedTokens
from tests.serving_fixtures import (
    MONTHS,
    built_home,  # noqa: F401  (fixture)
    copy_home,
    moved_extract,
    running_server,
    train_champion,
)

MONTH = MONTHS[-1]


@pytest.fixture(scope="module")
def live(built_home, tmp_path_factory):  # noqa: F811
    source, tokens = built_home
    home = copy_home(source, tmp_path_factory.mktemp("champion") / "home")
    env = {
        "CASEFINDER_SERVING__REGISTRY_CHECK_SECONDS": "0",
        "CASEFINDER_SERVING__FAILED_TOKENS_ALLOWED": "3",
        "CASEFINDER_SERVING__FAILED_TOKENS_WINDOW_SECONDS": "4",
    }
    with running_server(home, tokens, env=env) as server:
        server.extract = moved_extract(source.parent / "extract")  # to train a second model
        yield server


def _list(server, user="north_team"):
    r = httpx.post(
        f"{server.url}/list",
        json={"neighbourhood": "North", "month": MONTH},
        headers=server.headers(user),
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_a_new_champion_is_followed_and_views_keep_the_runs_model(live):
    before = _list(live)
    assert before["run_model_version"] == before["model_version"] == "1"
    assert before["champion_note"] is None
    person = before["people"][0]

    settings = load_settings(home=live.home)
    version = train_champion(live.extract, settings, seed=29, rounds=15)  # as `promote` would
    assert version == "2"

    status = httpx.post(f"{live.url}/status").json()
    assert status["model_version"] == "2"  # loaded without a restart
    assert status["replaced"] and status["replaced"][0].startswith("version 1 until ")

    after = _list(live)
    assert after["model_version"] == "2" and after["run_model_version"] == "1"
    assert "scored with model version 1" in after["champion_note"]
    assert "champion is now version 2" in after["champion_note"]
    assert [p["probability"] for p in after["people"]] == [
        p["probability"] for p in before["people"]
    ]

    r = httpx.post(
        f"{live.url}/person",
        json={"person_id": person["person_id"], "month": MONTH},
        headers=live.headers("north_clinician"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run_model_version"] == "1"
    assert body["probability"] == pytest.approx(person["probability"], abs=1e-12)
    assert body["champion_note"] == after["champion_note"]

    page = httpx.get(
        f"{live.url}/ui/person/{person['person_id']}?month={MONTH}",
        headers=live.headers("north_clinician"),
    )
    assert page.status_code == 200
    assert f"{100 * person['probability']:.1f}%" in page.text
    assert "champion is now version 2" in page.text
    assert re.search(r'id="model-version">1<', page.text)  # the footer names the run's model


def _bound(address: str) -> httpx.Client:
    """A client whose requests come from another loopback address (its own throttle bucket)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_failed_tokens_are_throttled_per_client_and_audited_once(live):
    good = live.headers("scientist")
    with _bound("127.0.0.2") as client, _bound("127.0.0.3") as other:
        for _ in range(3):
            r = client.post(f"{live.url}/summary", json={}, headers={"Authorization": "Bearer x"})
            assert r.status_code == 401
        r = client.post(f"{live.url}/summary", json={}, headers=good)
        assert r.status_code == 429  # locked out, even with a good token
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 4
        assert "try again" in r.json()["error"]
        page = client.post(f"{live.url}/ui/login", data={"token": "nope"})
        assert page.status_code == 429 and "Retry-After" in page.headers
        assert other.post(f"{live.url}/summary", json={}, headers=good).status_code == 200
        time.sleep(wait + 0.2)
        assert client.post(f"{live.url}/summary", json={}, headers=good).status_code == 200
    entries = AuditLog.of(load_settings(home=live.home)).entries()
    throttled = [e for e in entries if e["action"] == "auth.throttled"]
    assert len(throttled) == 1 and throttled[0]["user"] == "client 127.0.0.2"


def test_summary_suppresses_small_counts(live):
    r = httpx.post(f"{live.url}/summary", json={"month": MONTH}, headers=live.headers("scientist"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["suppress_below"] == 5
    settings = load_settings(home=live.home)
    backend = Backend(settings, model=None, version="1")  # type: ignore[arg-type]
    _, _, _, table = backend.summary(MONTH)
    for hood in body["neighbourhoods"]:
        row = table.loc[hood["neighbourhood"]]
        for key in ("eligible", "scored", "listed"):
            assert hood[key] == suppressed(int(row[key]), 5)
        assert hood["bands"] == suppressed_group(
            {b: int(row[b]) if b in row else 0 for b in hood["bands"]}, 5
        )
    shown = json.dumps(body["neighbourhoods"])
    assert not re.search(r'": [1-4][,}]', shown)  # no count from 1 to 4 leaves the service


def test_suppression_rules():
    assert [suppressed(n, 5) for n in (0, 1, 4, 5, 12)] == [0, "<5", "<5", 5, 12]
    assert suppressed(3, 0) == 3
    # one small cell of a group with a shown total: the next smallest goes with it
    assert suppressed_group({"high": 3, "medium": 9, "low": 40}, 5) == {
        "high": "<5",
        "medium": "suppressed",
        "low": 40,
    }
    assert suppressed_group({"high": 3, "medium": 2, "low": 40}, 5) == {
        "high": "<5",
        "medium": "<5",
        "low": 40,
    }
    assert suppressed_group({"high": 0, "medium": 9, "low": 40}, 5) == {
        "high": 0,
        "medium": 9,
        "low": 40,
    }


def test_throttle_window_slides():
    now = [0.0]
    t = FailedTokens(allowed=2, window_seconds=10, clock=lambda: now[0])
    assert t.failed("a") is False and t.retry_after("a") is None
    now[0] = 4
    assert t.failed("a") is True  # the second failure in 10 s locks out
    assert t.retry_after("a") == 6 and t.retry_after("b") is None
    now[0] = 10.5  # the first failure has aged out
    assert t.retry_after("a") is None
