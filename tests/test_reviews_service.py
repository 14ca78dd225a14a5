"""MDT reviews and page sessions over HTTP against a real `bentoml serve` (issue 15, issue 14):
recording and listing decisions with every refusal audited, the person's history and exclusion on
/person, server-side sessions (sign-out and revocation end them, Origin checks), and the next
month's list following the decisions after a real re-score."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from serving.audit import verify
from tests import serving_fixtures

built_home = serving_fixtures.built_home
server = serving_fixtures.server

# One server for the module (decisions recorded once by `decisions`, which the tests that read
# them request), on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.xdist_group("reviews")]

MONTH, LAST_MONTH = "2026-10", "2026-09"


@pytest.fixture(scope="module")
def north(server) -> list[str]:
    """North people on the 2026-09 list (reviewed from it; the 2026-10 run then follows)."""
    body = server.post("/list", {"neighbourhood": "North", "month": LAST_MONTH}, "north_team")
    return [p["person_id"] for p in body.json()["people"]]


@pytest.fixture(scope="module")
def decisions(server, north) -> dict:
    """The MDT's decisions on the 2026-09 North list that later tests read, recorded once
    whatever order the tests run in: accepted (north[0]), deferred (north[3]), declined
    (north[4]). Returns the accepted review's response."""
    accepted = {"person_id": north[0], "month": LAST_MONTH, "outcome": "accepted",
                "care_coordinator": "district nurse team", "care_plan_started": "2026-09-20",
                "note": "Single care plan agreed with the GP."}  # fmt: skip
    response = server.post("/review", accepted, "north_team")
    deferred = {"person_id": north[3], "month": LAST_MONTH, "outcome": "deferred",
                "review_month": "2026-11"}  # fmt: skip
    declined = {"person_id": north[4], "month": LAST_MONTH, "outcome": "declined"}
    for body in (deferred, declined):
        assert server.post("/review", body, "north_team").status_code == 200
    return {"response": response}


def test_a_team_records_a_decision_and_it_is_stored_and_audited(server, north, decisions):
    person = north[0]
    response = decisions["response"]
    assert response.status_code == 200, response.text
    review = response.json()
    assert review["id"] >= 1 and review["outcome"] == "accepted" and review["user"] == "north_team"
    assert review["neighbourhood"] == "North" and review["care_plan_started"] == "2026-09-20"
    assert review["probability"] is not None
    entries = [e for e in server.audit_entries() if e["action"] == "api.review"]
    entry = next(e for e in entries if e["person_ids"] == [person])
    assert (entry["month"], entry["outcome"]) == (LAST_MONTH, "allowed")
    listed = server.post("/reviews", {"neighbourhood": "North"}, "north_clinician").json()
    assert review["id"] in {r["id"] for r in listed["reviews"]}
    assert server.audit_entries()[-1]["action"] == "api.reviews"


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"outcome": "maybe"}, 400, "outcome"),
        ({"outcome": "not_appropriate"}, 422, "reason"),
        ({"outcome": "deferred"}, 422, "review_month"),
        ({"outcome": "already_known"}, 422, "care_coordinator"),
        ({"outcome": "declined", "reason": "moved_away"}, 422, "reason"),
        ({"outcome": "deferred", "review_month": "2026-08"}, 422, "review_month"),
        ({"outcome": "declined", "note": "x" * 501}, 400, "note"),
        ({"outcome": "not_appropriate", "reason": "bored"}, 400, "reason"),
        ({"outcome": "declined", "month": None}, 400, "month"),
    ],
)
def test_bad_reviews_are_refused_naming_the_field(server, north, change, status, field):
    body = {"person_id": north[1], "month": LAST_MONTH, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = server.post("/review", body, "north_team")
    assert response.status_code == status, response.text
    assert field in response.text
    if status == 422:
        assert server.audit_entries()[-1]["action"] == "api.review.refused"


def test_who_may_record_and_one_answer_outside_the_neighbourhood(server, north):
    body = {"person_id": north[2], "month": LAST_MONTH, "outcome": "declined"}
    assert server.post("/review", body).status_code == 401
    scientist = server.post("/review", body, "scientist")
    assert scientist.status_code == 403
    entry = server.audit_entries()[-1]
    assert entry["action"] == "api.review.refused" and entry["person_ids"] == [north[2]]
    elsewhere = server.post("/review", body, "south_team")
    unknown = server.post("/review", {**body, "person_id": "P9999"}, "south_team")
    assert elsewhere.status_code == unknown.status_code == 404
    assert elsewhere.json()["error"].replace(north[2], "X") == unknown.json()["error"].replace(
        "P9999", "X"
    )
    assert [e["outcome"] for e in server.audit_entries()[-2:]] == ["refused", "refused"]
    never = server.post("/review", {**body, "month": "2025-01"}, "north_team")
    assert never.status_code == 404 and server.audit_entries()[-1]["month"] == "2025-01"
    out = server.post("/review", {**body, "person_id": serving_fixtures.OPTED_OUT}, "north_team")
    assert out.status_code == 404 and "opted out" in out.json()["error"]
    assert server.audit_entries()[-1]["action"] == "api.review.refused_opted_out"
    assert server.post("/reviews", {"neighbourhood": "North"}, "south_team").status_code == 403
    assert server.post("/reviews", {"neighbourhood": "North"}, "scientist").status_code == 403


def _signed_in(server, user: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=True)
    response = client.post("/ui/login", data={"token": server.tokens[user]})
    assert response.status_code == 200, response.text  # redirected to the list
    return client


def test_page_sessions_are_server_side_and_end_at_sign_out(server):
    client = _signed_in(server, "north_team")
    cookie = client.cookies["casefinder_session"]
    assert cookie.startswith("cs_") and cookie not in server.tokens.values()
    assert client.get("/ui/list?neighbourhood=North").status_code == 200
    client.get("/ui/logout")
    replay = httpx.get(
        f"{server.url}/ui/list?neighbourhood=North", cookies={"casefinder_session": cookie},
        timeout=60,
    )  # fmt: skip
    assert replay.status_code == 401


def test_origin_is_checked_on_sign_in_and_on_cookie_posts(server, north):
    evil = {"Origin": "https://evil.example"}
    login = httpx.post(
        f"{server.url}/ui/login", data={"token": server.tokens["north_team"]}, headers=evil,
        timeout=60,
    )  # fmt: skip
    assert login.status_code == 403 and "set-cookie" not in login.headers
    client = _signed_in(server, "north_clinician")
    form = {"person_id": north[3], "month": LAST_MONTH, "outcome": "deferred",
            "review_month": MONTH, "back": "list"}  # fmt: skip
    assert client.post("/ui/review", data=form, headers=evil).status_code == 403
    assert client.post("/ui/review", data=form).status_code == 403  # no Origin at all
    ok = client.post("/ui/review", data=form, headers={"Origin": server.url})
    assert ok.status_code == 200, ok.text  # stored, back on the list page
    assert [e["action"] for e in server.audit_entries()[-2:]] == ["page.review", "page.list"]
    assert client.post("/list", json={"neighbourhood": "North"}, headers=evil).status_code == 403


def test_revoking_a_user_ends_their_sessions(server):
    from serving.users import UserStore

    store = UserStore.of(server.settings())
    _, token = store.add("temp_team", "team", "North")
    client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=True)
    assert client.post("/ui/login", data={"token": token}).status_code == 200
    assert client.get("/ui/list?neighbourhood=North").status_code == 200
    store.revoke("temp_team")
    assert client.get("/ui/list?neighbourhood=North").status_code == 401


def test_the_pages_show_the_decision_and_the_downloads_carry_it(server, north, decisions):
    client = _signed_in(server, "north_clinician")
    page = client.get(f"/ui/person/{north[0]}?month={LAST_MONTH}")
    assert page.status_code == 200
    assert "district nurse team" in page.text and 'action="/ui/review"' in page.text
    listing = client.get(f"/ui/list?neighbourhood=North&month={LAST_MONTH}")
    assert "accepted (2026-09)" in listing.text and 'name="quick"' in listing.text
    csv = client.get(f"/ui/list.csv?neighbourhood=North&month={LAST_MONTH}").text
    header, *rows = csv.splitlines()
    assert "MDT decision" in header.split(",")
    assert any(r.startswith(f"{LAST_MONTH},2026-09-01,North,") and north[0] in r
               and "accepted: care co-ordinator assigned" in r for r in rows)  # fmt: skip


def test_the_next_month_follows_the_decisions(server, north, decisions):
    """Re-score 2026-10 (a real run from the extract): the accepted person is excluded as
    mdt_accepted, a declined one as mdt_reviewed; /person says why, with the history."""
    from scoring.run import score_month

    accepted, declined = north[0], north[4]
    run = score_month(_extract_of(server), MONTH, server.settings())
    assert not run.reused and run.meta["exclusions"]["mdt_accepted"]["first"] >= 1
    assert run.meta["exclusions"]["mdt_reviewed"]["first"] >= 1
    person = server.post("/person", {"person_id": accepted, "month": MONTH}, "north_clinician")
    assert person.status_code == 200, person.text
    why = person.json()["excluded_because"]
    assert why == {"key": "mdt_accepted",
                   "sentence": "accepted onto the MDT caseload on 2026-09-20"}  # fmt: skip
    assert [r["outcome"] for r in person.json()["reviews"]] == ["accepted"]
    listed = server.post("/list", {"neighbourhood": "North", "month": MONTH}, "north_team")
    ids = {p["person_id"] for p in listed.json()["people"]}
    assert accepted not in ids and declined not in ids
    assert verify(server.audit()).ok


def _extract_of(server) -> Path:
    """The extract the runs were scored from, where `build_home` moved it."""
    from scoring.store import ScoreStore

    store = ScoreStore(server.settings().score_store)
    moved = serving_fixtures.moved_extract(
        Path(store.meta(store.resolve(month=MONTH))["extract"]["path"])
    )
    assert moved.is_dir()
    return moved


def test_how_the_list_is_doing_in_the_summary_the_page_and_the_cli(server, north, decisions):
    """After the reviews above (an accepted and a declined person of the 2026-09 North list, and
    a deferred one), the month's figures count them."""
    from typer.testing import CliRunner

    from casefinder.cli import app as cli

    body = server.post("/summary", {"month": LAST_MONTH}, "scientist").json()
    north_row = next(p for p in body["performance"] if p["neighbourhood"] == "North")
    reviewed = len({r["person_id"] for r in server.post(
        "/reviews", {"neighbourhood": "North", "month": LAST_MONTH}, "north_team"
    ).json()["reviews"]} & set(north))  # fmt: skip
    assert reviewed >= 3
    # /summary is an aggregate output: counts under 5 are suppressed, and the share with them
    assert north_row["reviewed"] == ("<5" if reviewed < 5 else reviewed)
    assert north_row["accepted"] == "<5"  # one person
    assert north_row["share_accepted"] is None
    assert north_row["median_days_to_review"] > 0
    page = _signed_in(server, "north_team").get("/ui/performance?neighbourhood=North")
    assert page.status_code == 200 and f">{LAST_MONTH}</a>" in page.text
    env = {"CASEFINDER_HOME": str(server.home)}
    printed = CliRunner().invoke(cli, ["summary", "--month", LAST_MONTH], env=env)
    assert printed.exit_code == 0, printed.output
    assert f"How the {LAST_MONTH} list is doing" in printed.output
    assert "Outcomes: not known yet" in printed.output
