"""POST /segments and /ui/segments over HTTP against a real `bentoml serve`: counts per
neighbourhood for every role, person-level rows only for team and clinician users of that
neighbourhood (audited), and the segments page (aggregates only) scoped like the list page."""

from __future__ import annotations

import httpx
import pytest

from features.segments import SEGMENTS
from scoring.disclosure import suppressed, suppressed_group
from scoring.segments import segment_counts, segment_flows
from tests import serving_fixtures

built_home = serving_fixtures.built_home  # pytest fixtures shared by the serving tests
server = serving_fixtures.server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MONTH = "2026-10"


def post(server, body, user=None):
    return httpx.post(f"{server.url}/segments", json=body, headers=server.headers(user), timeout=30)


def audit(server) -> list[dict]:
    return server.audit().entries()


def test_counts_for_every_role_add_up_to_the_scored_population(server):
    from config.settings import load_settings
    from scoring.store import ScoreStore

    store = ScoreStore(load_settings(home=server.home).score_store)
    people = store.people(store.resolve(month=MONTH))
    assert post(server, {"month": MONTH}).status_code == 401
    for user in serving_fixtures.ROLES:
        before = len(audit(server))
        response = post(server, {"month": MONTH}, user)
        assert response.status_code == 200, (user, response.text)
        body = response.json()
        assert body["people"] is None and len(audit(server)) == before  # counts: not audited
        assert body["suppress_below"] == 5
        segmented = people[people["segment"].notna()]
        assert len(segmented) == int(people["probability"].notna().sum())
        counts = segment_counts(segmented)
        for hood in body["neighbourhoods"]:  # the exact counts, small ones suppressed
            rows = counts[counts["neighbourhood"] == hood["neighbourhood"]]
            assert set(hood["segments"]) == set(SEGMENTS)
            assert hood["people"] == suppressed(rows["people"].sum(), 5)
            exact = {str(r.segment): int(r.people) for r in rows.itertuples()}
            assert hood["segments"] == suppressed_group(exact, 5)
        flows = segment_flows(segmented)
        assert [f["people"] for f in body["flows"]] == [suppressed(n, 5) for n in flows["people"]]
        assert flows["people"].sum() == len(segmented)
        assert all(f["sentence"] for f in body["flows"])


def test_person_rows_only_for_the_users_own_neighbourhood_and_audited(server):
    for user, status in (("scientist", 403), ("south_team", 403), ("south_clinician", 403)):
        response = post(server, {"month": MONTH, "neighbourhood": "North"}, user)
        assert response.status_code == status, user
    for user in ("north_team", "north_clinician"):
        before = len(audit(server))
        body = post(server, {"month": MONTH, "neighbourhood": "North"}, user).json()
        rows = body["people"]
        north = next(h for h in body["neighbourhoods"] if h["neighbourhood"] == "North")
        assert len(rows) == north["people"] > 0
        assert {r["neighbourhood"] for r in rows} == {"North"}
        assert all(r["segment"] in SEGMENTS and r["segment_reason"] for r in rows)
        assert serving_fixtures.OPTED_OUT not in {r["person_id"] for r in rows}
        entries = audit(server)
        assert len(entries) == before + 1
        entry = entries[-1]
        assert entry["action"] == "api.segments" and entry["user"] == user
        assert entry["person_ids"] == [r["person_id"] for r in rows]
        assert entry["neighbourhood"] == "North" and entry["month"] == MONTH
    only = post(
        server, {"month": MONTH, "neighbourhood": "North", "segment": "fit_and_well"}, "north_team"
    ).json()["people"]
    assert {r["segment"] for r in only} <= {"fit_and_well"}
    bad = post(server, {"month": MONTH, "segment": "nowhere"}, "north_team")
    assert bad.status_code == 400
    later = post(server, {"month": "2027-01"}, "north_team")
    assert later.status_code == 404


def test_segments_page_is_scoped_and_shows_counts(server):
    url = f"{server.url}/ui/segments?neighbourhood=North&month={MONTH}"
    assert httpx.get(url, timeout=30).status_code == 303  # to the sign-in form
    for user in serving_fixtures.ROLES:
        response = httpx.get(url, headers=server.headers(user), timeout=30)
        expected = 403 if user.startswith("south") else 200
        assert response.status_code == expected, (user, response.text[:300])
    page = httpx.get(url, headers=server.headers("north_team"), timeout=30).text
    for words in SEGMENTS.values():
        assert words in page
    assert "<svg" in page and "beside the whole place" in page
