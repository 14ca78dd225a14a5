"""The service over HTTP: a real `bentoml serve` process on a small trained model and two runs.

Covers every endpoint, 401/403 for each role on each endpoint and page, the audit entries,
bad input (400/422, never 500), a registry that goes away while the service runs, and people
explained from the runs' stored model inputs after the extract has gone.
"""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pandas as pd
import pytest

from serving.audit import verify
from tests import serving_fixtures

built_home = serving_fixtures.built_home  # pytest fixtures shared by the serving tests
server = serving_fixtures.server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MONTH, LAST_MONTH = "2026-10", "2026-09"


@pytest.fixture(scope="module")
def north(server):
    """Someone on the North list this month, and the list itself."""
    body = server.post("/list", {"neighbourhood": "North", "month": MONTH}, "north_team").json()
    return body["people"][0]["person_id"], body


@pytest.fixture(scope="module")
def rows(server):
    """Real feature rows for the month: the model inputs its run stored (built by the features
    stage when the month was scored)."""
    from config.settings import load_settings
    from scoring.store import ScoreStore

    store = ScoreStore(load_settings(home=server.home).score_store)
    frame = store.features(store.resolve(month=MONTH))
    return frame[frame["person_id"] != serving_fixtures.OPTED_OUT]  # blank: no score is held


def feature_body(frame: pd.DataFrame, n: int) -> dict:
    import features

    names = features.model_feature_names()
    out = []
    for rec in frame[names].head(n).to_dict("records"):
        out.append({k: (None if pd.isna(v) else v) for k, v in rec.items()})
    return {"rows": json.loads(json.dumps(out, default=float))}


# --- public endpoints -----------------------------------------------------------------------


def test_health_readiness_status_are_open_and_metrics_need_a_data_scientist(server):
    for path in ("/healthz", "/livez", "/readyz"):
        response = httpx.get(server.url + path, timeout=10)
        assert response.status_code == 200, path
        assert response.headers["x-model-version"] == "1"
    assert httpx.get(server.url + "/metrics", timeout=10).status_code == 401
    metrics = httpx.get(server.url + "/metrics", headers=server.headers("scientist"), timeout=10)
    assert metrics.status_code == 200
    ready = httpx.get(server.url + "/readyz", timeout=10)
    assert ready.headers["x-registry"] == "reachable"
    status = server.post("/status", {})
    assert status.status_code == 200
    body = status.json()
    assert body["model_version"] == "1" and body["registry"] == "reachable"
    assert body["months"] == [LAST_MONTH, MONTH]
    schema = httpx.get(server.url + "/docs.json", timeout=10).json()
    paths = {"/score", "/score_model", "/list", "/person", "/what_if", "/summary", "/status"}
    assert paths <= set(schema["paths"])


# --- access matrix --------------------------------------------------------------------------

ENDPOINTS = ("/score", "/score_model", "/summary", "/list", "/person", "/what_if")
ALLOWED = {
    "/score": {"scientist"},
    "/score_model": {"scientist"},
    "/summary": {"scientist"},
    "/list": {"north_team", "north_clinician"},
    "/person": {"north_clinician"},
    "/what_if": {"north_clinician"},
}
USERS = ("scientist", "north_team", "south_team", "north_clinician", "south_clinician")


def _body(path, person, rows):
    return {
        "/score": feature_body(rows, 1),
        "/score_model": {"model": "champion", **feature_body(rows, 1)},
        "/summary": {"month": MONTH},
        "/list": {"neighbourhood": "North", "month": MONTH},
        "/person": {"person_id": person, "month": MONTH},
        "/what_if": {"person_id": person, "month": MONTH, "changes": {"falls_12m": 2}},
    }[path]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_token_is_401_and_bad_token_is_401(server, north, rows, path):
    person, _ = north
    body = _body(path, person, rows)
    assert server.post(path, body).status_code == 401
    bad = httpx.post(
        server.url + path, json=body, headers={"Authorization": "Bearer cf_wrong"}, timeout=10
    )
    assert bad.status_code == 401


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("user", USERS)
def test_each_role_on_each_endpoint(server, north, rows, path, user):
    """North data: allowed roles in North get 200; everyone else 403 (role or neighbourhood),
    except a clinician elsewhere asking for a person: 404, as for someone not in the run."""
    person, _ = north
    before = len(server.audit_entries())
    response = server.post(path, _body(path, person, rows), user)
    elsewhere = user == "south_clinician" and path in ("/person", "/what_if")
    expected = 200 if user in ALLOWED[path] else 404 if elsewhere else 403
    if path == "/what_if" and response.status_code == 422:
        pytest.fail(f"what-if rejected its change: {response.text}")
    assert response.status_code == expected, response.text
    assert response.headers["x-model-version"] == "1"
    if expected == 403:
        assert "error" in response.json()
    if expected == 403 and path not in ("/person", "/what_if"):
        assert len(server.audit_entries()) == before  # nothing was read, nothing logged
    if elsewhere or (expected == 403 and path in ("/person", "/what_if")):
        # a refused person-level attempt: user, target and outcome
        entry = server.audit_entries()[-1]
        assert entry["action"] == f"api.{path[1:]}.refused" and entry["outcome"] == "refused"
        assert entry["user"] == user and entry["person_ids"] == [person]


# --- endpoints ------------------------------------------------------------------------------


def test_score_matches_the_registered_model(server, rows):
    from config.settings import load_settings
    from models.registry import load_risk_model

    for n in (1, 100):
        response = server.post("/score", feature_body(rows, n), "scientist")
        assert response.status_code == 200, response.text
        scored = response.json()
        assert len(scored) == n
        model, version = load_risk_model(load_settings(home=server.home))
        expected = model.predict_proba(rows.head(n))
        np.testing.assert_allclose([s["probability"] for s in scored], expected, rtol=1e-9)
        assert all(s["model_version"] == version == "1" for s in scored)
        assert [s["band"] for s in scored] == list(model.band(expected))
        top = scored[0]["raising"] + scored[0]["lowering"]
        assert top and all(r["sentence"] for r in top)


def test_score_with_a_chosen_model(server, rows):
    one = server.post("/score", feature_body(rows, 3), "scientist").json()
    for ref in ("champion", "1"):
        chosen = server.post("/score_model", {"model": ref, **feature_body(rows, 3)}, "scientist")
        assert chosen.status_code == 200, chosen.text
        body = chosen.json()
        assert body["scored_with"] == "1" and body["model_version"] == "1"
        assert [r["probability"] for r in body["results"]] == [r["probability"] for r in one]
    missing = server.post("/score_model", {"model": "42", **feature_body(rows, 1)}, "scientist")
    assert missing.status_code == 404 and "42" in missing.json()["error"]
    bad = server.post("/score_model", {"model": "../x", **feature_body(rows, 1)}, "scientist")
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"emergency_admissions_12m": -1}, "emergency_admissions_12m"),
        ({"emergency_admissions_12m": "many"}, "emergency_admissions_12m"),
        ({"not_a_feature": 1}, "not_a_feature"),
    ],
)
def test_bad_score_rows_are_400_naming_the_field(server, rows, change, named):
    body = feature_body(rows, 1)
    body["rows"][0].update(change)
    response = server.post("/score", body, "scientist")
    assert response.status_code == 400, response.text
    assert named in response.text
    assert "many" not in response.text  # input values stay out of errors


def test_malformed_requests_are_client_errors(server, rows):
    head = {**server.headers("scientist"), "Content-Type": "application/json"}
    cases = [
        ("/score", b"{not json"),
        ("/score", b'{"rows": []}'),
        ("/score", json.dumps({"rows": feature_body(rows, 1)["rows"] * 501}).encode()),
        ("/score", b'{"rows": 5}'),
        ("/summary", b'{"month": "2026-13"}'),
    ]
    for path, raw in cases:
        response = httpx.post(server.url + path, content=raw, headers=head, timeout=30)
        assert 400 <= response.status_code < 500, (path, raw[:40], response.text)
    clinician = {**server.headers("north_clinician"), "Content-Type": "application/json"}
    response = httpx.post(
        server.url + "/person", content=b'{"person_id": "../etc"}', headers=clinician, timeout=10
    )
    assert response.status_code == 400


def test_list_is_ranked_scoped_and_audited(server, north):
    _, body = north
    assert body["model_version"] == "1" and body["month"] == MONTH
    assert body["index_date"] == "2026-10-01"
    ranks = [p["rank"] for p in body["people"]]
    assert ranks == sorted(ranks) and len(ranks) > 0
    probabilities = [p["probability"] for p in body["people"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(p["reasons"] for p in body["people"])
    before = len(server.audit_entries())
    flagged = server.post(
        "/list", {"neighbourhood": "North", "month": MONTH, "flag": "new_this_month"},
        "north_clinician",
    ).json()  # fmt: skip
    assert all("new_this_month" in p["flags"] for p in flagged["people"])
    expected = [p["person_id"] for p in body["people"] if "new_this_month" in p["flags"]]
    assert [p["person_id"] for p in flagged["people"]] == expected
    entry = server.audit_entries()[-1]
    assert len(server.audit_entries()) == before + 1
    assert entry["user"] == "north_clinician" and entry["role"] == "clinician"
    assert entry["action"] == "api.list" and entry["neighbourhood"] == "North"
    assert entry["person_ids"] == expected and entry["month"] == MONTH
    missing = server.post("/list", {"neighbourhood": "Nowhere"}, "scientist")
    assert missing.status_code == 403  # role first: scientists never see lists
    nowhere = server.post("/list", {"neighbourhood": "Nowhere"}, "north_team")
    assert nowhere.status_code == 403  # another neighbourhood, even one that does not exist
    later = server.post("/list", {"neighbourhood": "North", "month": "2027-01"}, "north_team")
    assert later.status_code == 404 and "2027-01" in later.json()["error"]


def test_person_explanation_with_change_and_chart(server, north):
    person, listed = north
    response = server.post(
        "/person", {"person_id": person, "month": MONTH, "include_chart": True},
        "north_clinician",
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["person_id"] == person and body["neighbourhood"] == "North"
    assert body["probability"] == pytest.approx(listed["people"][0]["probability"])
    assert body["raising"] and body["raising"][0]["sentence"]
    parts = sum(r["probability_change"] for r in body["raising"] + body["lowering"])
    total = body["reference_probability"] + parts + body["other_probability_change"]
    assert total == pytest.approx(body["probability"], abs=1e-9)
    change = body["change"]
    assert change["previous_month"] == LAST_MONTH and change["status"] == "both"
    moved = change["previous_probability"] + change["probability_change"]
    assert moved == pytest.approx(body["probability"], abs=1e-9)
    assert body["chart_svg"].lstrip().startswith("<?xml") and "<svg" in body["chart_svg"]
    entry = server.audit_entries()[-1]
    assert entry["action"] == "api.person" and entry["person_ids"] == [person]
    unknown = server.post("/person", {"person_id": "P9999"}, "north_clinician")
    assert unknown.status_code == 404


def test_people_are_explained_from_stored_inputs_once_the_extract_has_gone(server, north):
    """The fixture moved the extract away after scoring, before the server started."""
    from pathlib import Path

    from config.settings import load_settings
    from scoring.store import ScoreStore

    person, listed = north
    store = ScoreStore(load_settings(home=server.home).score_store)
    for month in (MONTH, LAST_MONTH):
        assert not Path(store.meta(store.resolve(month=month))["extract"]["path"]).exists()
    head = server.headers("north_clinician")
    explained = server.post("/person", {"person_id": person, "month": MONTH}, "north_clinician")
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["probability"] == pytest.approx(listed["people"][0]["probability"], abs=1e-12)
    assert body["raising"] and body["change"]["status"] == "both"
    changed = {"person_id": person, "month": MONTH, "changes": {"falls_12m": 3}}
    assert server.post("/what_if", changed, "north_clinician").status_code == 200
    page = httpx.get(f"{server.url}/ui/person/{person}?month={MONTH}", headers=head, timeout=30)
    assert page.status_code == 200 and "Since last month" in page.text


def test_a_run_without_stored_inputs_says_to_rescore_and_rescoring_adds_them(built_home, tmp_path):
    """A run written before runs kept their inputs: a clear NotFound naming the run and the
    command, for its own month and for the next month's change; `score_month` on the same
    extract adds the inputs (the same ones) to the stored run and people are explained again."""
    from config.settings import load_settings
    from scoring.run import score_month
    from scoring.store import FEATURES_FILE, ScoreStore
    from serving.backend import Backend, NotFound

    source, _ = built_home
    home = serving_fixtures.copy_home(source, tmp_path / "home")
    settings = load_settings(home=home)
    store = ScoreStore(settings.score_store)
    now, before = store.resolve(month=MONTH), store.resolve(month=LAST_MONTH)
    kept = store.features(before)
    (store.runs_dir / before / FEATURES_FILE).unlink()
    people = store.people(now)
    person = str(
        people.loc[people["listed"] & (people["neighbourhood"] == "North"), "person_id"].iloc[0]
    )

    backend = Backend.start(settings)
    with pytest.raises(NotFound) as caught:  # last month's run: no silent "new" change
        backend.person(person, MONTH)
    message = str(caught.value)
    assert before in message
    assert f"casefinder score <extract folder> --month {LAST_MONTH} --model 1" in message
    with pytest.raises(NotFound, match="Re-score its month"):
        backend.person(person, LAST_MONTH)

    extract = serving_fixtures.moved_extract(source.parent / "extract")
    result = score_month(extract, LAST_MONTH, settings)
    assert result.reused and result.run_id == before
    pd.testing.assert_frame_equal(store.features(before), kept)
    view = Backend.start(settings).person(person, MONTH)
    assert view.change is not None and view.change.status == "both"
    assert view.explanation.probability == pytest.approx(
        float(people.set_index("person_id").loc[person, "probability"]), abs=1e-12
    )
    # A run whose stored inputs lack one the served model needs (as for a newer champion).
    inputs = store.features(now)
    (store.runs_dir / now / FEATURES_FILE).unlink()
    store.add_features(now, inputs.drop(columns=["falls_12m"]))
    with pytest.raises(NotFound, match=r"falls_12m.*--month 2026-10 --model 1"):
        Backend.start(settings).person(person, MONTH)


def test_someone_opted_out_last_month_is_new_this_month_not_compared_with_blanks(
    built_home, tmp_path
):
    from config.settings import load_settings
    from scoring.store import FEATURES_FILE, ScoreStore
    from serving.backend import Backend

    source, _ = built_home
    settings = load_settings(home=serving_fixtures.copy_home(source, tmp_path / "home"))
    store = ScoreStore(settings.score_store)
    before = store.resolve(month=LAST_MONTH)
    people = store.people(store.resolve(month=MONTH))
    person = str(people.loc[people["listed"], "person_id"].iloc[0])
    inputs = store.features(before)
    inputs.loc[inputs["person_id"] == person, inputs.columns[1:]] = np.nan  # as if opted out
    (store.runs_dir / before / FEATURES_FILE).unlink()
    store.add_features(before, inputs)
    view = Backend.start(settings).person(person, MONTH)
    assert view.change is not None and view.change.status == "new"
    assert view.change.previous_probability is None


def test_an_opted_out_person_is_refused_and_the_refusal_audited(server):
    person = serving_fixtures.OPTED_OUT
    asks = {
        "/person": {"person_id": person, "month": MONTH},
        "/what_if": {"person_id": person, "month": MONTH, "changes": {"falls_12m": 3}},
    }
    for path, body in asks.items():
        other = server.post(path, body, "south_clinician")  # scope first: no hint of opt-out
        assert other.status_code == 404 and "opted out" not in other.text
        refused = server.post(path, body, "north_clinician")
        assert refused.status_code == 404
        assert refused.json()["error"] == (
            f"person {person} opted out of data use beyond direct care, so no score is held "
            "for them"
        )
        entry = server.audit_entries()[-1]
        assert entry["action"] == f"api.{path[1:]}.refused_opted_out"
        assert entry["person_ids"] == [person] and entry["neighbourhood"] == "North"
    page = httpx.get(
        f"{server.url}/ui/person/{person}?month={MONTH}",
        headers=server.headers("north_clinician"), timeout=30,
    )  # fmt: skip
    assert page.status_code == 404 and "opted out of data use beyond direct care" in page.text
    assert server.audit_entries()[-1]["action"] == "page.person.refused_opted_out"


def test_what_if(server, north):
    person, _ = north
    body = {"person_id": person, "month": MONTH, "changes": {"falls_12m": 3}}
    response = server.post("/what_if", body, "north_clinician")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["changed"]["falls_12m"]["after"] == 3
    delta = result["after"]["probability"] - result["before"]["probability"]
    assert result["probability_change"] == pytest.approx(delta)
    assert server.audit_entries()[-1]["action"] == "api.what_if"
    fixed = server.post(
        "/what_if", {"person_id": person, "changes": {"age": 60}}, "north_clinician"
    )
    assert fixed.status_code == 422 and "age" in fixed.json()["error"]
    empty = server.post("/what_if", {"person_id": person, "changes": {}}, "north_clinician")
    assert empty.status_code == 400


def test_summary_is_aggregate_only(server, north):
    person, _ = north
    response = server.post("/summary", {"month": MONTH}, "scientist")
    assert response.status_code == 200
    body = response.json()
    hoods = {h["neighbourhood"]: h for h in body["neighbourhoods"]}
    assert set(hoods) == {"North", "South"}
    for h in hoods.values():
        assert h["scored"] <= h["eligible"]
        hidden = [n for n in h["bands"].values() if isinstance(n, str)]
        shown = sum(n for n in h["bands"].values() if isinstance(n, int))
        assert len(hidden) != 1  # one suppressed cell could be worked out from the total
        assert shown == h["scored"] if not hidden else shown < h["scored"]
    assert person not in response.text


# --- pages: scope ---------------------------------------------------------------------------

PAGES = {
    "/ui/list?neighbourhood=North": {"north_team", "north_clinician"},
    "/ui/list.csv?neighbourhood=North": {"north_team", "north_clinician"},
    "/ui/list.xlsx?neighbourhood=North": {"north_team", "north_clinician"},
    "/ui/person/{person}": {"north_clinician"},
    "/ui/person/{person}/chart.svg": {"north_clinician"},
}


@pytest.mark.parametrize("page", PAGES)
def test_pages_scope(server, north, page):
    person, _ = north
    url = server.url + page.format(person=person)
    signed_out = httpx.get(url, timeout=30)  # no token: to the sign-in form
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/ui/login"
    assert httpx.get(url, headers={"Authorization": "Bearer cf_x"}, timeout=30).status_code == 401
    for user in USERS:
        response = httpx.get(url, headers=server.headers(user), timeout=30)
        elsewhere = user == "south_clinician" and "/person/" in page  # as if not in the run
        expected = 200 if user in PAGES[page] else 404 if elsewhere else 403
        assert response.status_code == expected, (user, page)


def test_login_sets_httponly_cookie(server):
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=True) as browser:
        bad = browser.post("/ui/login", data={"token": "cf_nope"})
        assert bad.status_code == 401
        ok = browser.post("/ui/login", data={"token": server.tokens["north_team"]})
        assert ok.status_code == 200 and "MDT list: North" in ok.text
        cookie = ok.history[0].headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        browser.get("/ui/logout")
        after = browser.get("/ui/list?neighbourhood=North")
        assert after.url.path == "/ui/login" and after.history[0].status_code == 303


def test_downloads_are_the_file_casefinder_lists_writes(server):
    """The page downloads are `scoring.exports`' list table, byte for byte the file
    `casefinder lists --neighbourhood North` writes (was: its own 6 columns)."""
    import io

    from openpyxl import load_workbook

    from config.settings import load_settings
    from scoring.exports import FILE_COLUMNS, export_bytes, export_filename, list_table
    from scoring.store import ScoreStore

    store = ScoreStore(load_settings(home=server.home).score_store)
    run_id = store.resolve(month=MONTH)
    table = list_table(store.people(run_id), "North")
    head = server.headers("north_team")
    query = f"?neighbourhood=North&month={MONTH}"
    csv = httpx.get(server.url + "/ui/list.csv" + query, headers=head, timeout=30)
    assert csv.headers["content-type"].startswith("text/csv")
    assert export_filename(MONTH, "North", "csv") in csv.headers["content-disposition"]
    assert csv.content == export_bytes(table, "csv", store.meta(run_id))
    frame = pd.read_csv(io.BytesIO(csv.content), dtype={"Model version": str})
    assert list(frame.columns) == FILE_COLUMNS and len(frame) == len(table) > 0
    assert (frame["Model version"] == "1").all() and (frame["Month"] == MONTH).all()
    xlsx = httpx.get(server.url + "/ui/list.xlsx" + query, headers=head, timeout=30)
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["About", "North"]
    assert [c.value for c in book["North"][1]] == FILE_COLUMNS
    assert book["North"].max_row == len(frame) + 1
    assert server.audit_entries()[-1]["action"] == "download.xlsx"
    flagged = httpx.get(
        server.url + "/ui/list.csv" + query + "&flag=risk_risen", headers=head, timeout=30
    )
    assert flagged.content == export_bytes(
        list_table(store.people(run_id), "North", "risk_risen"), "csv", store.meta(run_id)
    )


def test_bad_page_input_is_400(server):
    head = server.headers("north_team")
    for query in ("flag=bogus", "sort=secret", "month=2026-99", "order=up"):
        response = httpx.get(
            f"{server.url}/ui/list?neighbourhood=North&{query}", headers=head, timeout=30
        )
        assert response.status_code == 400, query


# --- audit and robustness (keep last: they change the server's home) -------------------------


def test_audit_log_is_intact_and_complete(server, north):
    """Each kind of person-level read leaves its entry (tests may run on other workers, so this
    one makes its own reads)."""
    person, _ = north
    before = len(server.audit_entries())
    server.post("/person", {"person_id": person}, "north_clinician")
    changes = {"person_id": person, "changes": {"falls_12m": 2}}
    server.post("/what_if", changes, "north_clinician")
    for page in ("/ui/list?neighbourhood=North", "/ui/list.csv?neighbourhood=North"):
        httpx.get(server.url + page, headers=server.headers("north_team"), timeout=30)
    actions = [e["action"] for e in server.audit_entries()[before:]]
    assert actions == ["api.person", "api.what_if", "page.list", "download.csv"]
    result = verify(server.audit())
    assert result.ok, result.problem
    log = server.log.read_text()
    assert not any(token in log for token in server.tokens.values())


def test_registry_unreachable_keeps_serving(server, rows):
    db = server.home / "mlflow.db"
    moved = db.with_suffix(".away")
    shutil.move(db, moved)
    try:
        import time

        time.sleep(5.5)  # past the registry check's cache
        status = server.post("/status", {}).json()
        assert status["registry"] == "unreachable"
        ready = httpx.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200 and ready.headers["x-registry"] == "unreachable"
        scored = server.post("/score", feature_body(rows, 2), "scientist")
        assert scored.status_code == 200 and scored.json()[0]["model_version"] == "1"
        assert not db.exists()  # the check did not create an empty store
    finally:
        shutil.move(moved, db)


def test_casefinder_serve_starts_the_same_service(server):
    """`casefinder serve` runs the service with the home's settings (host and port options)."""
    import os
    import subprocess
    import sys
    import time

    from tests.serving_fixtures import free_port, stop

    port = free_port()
    env = {**os.environ, "CASEFINDER_HOME": str(server.home)}
    command = [sys.executable, "-m", "casefinder.cli", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                status = httpx.post(f"http://127.0.0.1:{port}/status", json={}, timeout=5)
                break
            except httpx.HTTPError:
                assert process.poll() is None, "casefinder serve exited"
                time.sleep(0.5)
        assert status.status_code == 200 and status.json()["model_version"] == "1"
    finally:
        stop(process)


# --- issue 12: what a clinician reads must be true -------------------------------------------


def _run_people(server):
    from config.settings import load_settings
    from scoring.store import ScoreStore

    store = ScoreStore(load_settings(home=server.home).score_store)
    run_id = store.resolve(month=MONTH)
    return store.meta(run_id), store.people(run_id)


def test_reference_is_the_runs_mean_served_probability_everywhere(server, north, rows):
    meta, people = _run_people(server)
    mean = people["probability"].dropna().mean()
    assert meta["reference_probability"] == pytest.approx(mean, abs=1e-12)
    person, listed = north
    body = server.post("/person", {"person_id": person, "month": MONTH}, "north_clinician").json()
    assert body["reference_probability"] == pytest.approx(mean, abs=1e-12)
    assert body["reference"] == "people aged 65+ scored for 2026-10"
    parts = sum(r["probability_change"] for r in body["raising"] + body["lowering"])
    assert body["reference_probability"] + parts + body["other_probability_change"] == (
        pytest.approx(body["probability"], abs=1e-12)
    )
    assert body["chart_alt"].startswith("Waterfall chart: average for people aged 65+")
    for p in listed["people"]:  # the list adds up too, and its reasons carry values
        assert p["reference_probability"] == pytest.approx(mean, abs=1e-12)
        shown = sum(r["probability_change"] for r in p["reasons"])
        assert p["reference_probability"] + shown + p["other_probability_change"] == (
            pytest.approx(p["probability"], abs=1e-12)
        )
        assert all(r["concept"] and r["sentence"] for r in p["reasons"])
    values = [r["value"] for p in listed["people"] for r in p["reasons"]]
    assert values and any(v is not None for v in values)
    listed_reasons = listed["people"][0]["reasons"]
    assert [r["sentence"] for r in listed_reasons] == [r["sentence"] for r in body["raising"]]
    scored = server.post("/score", feature_body(rows, 3), "scientist").json()
    for r in scored:  # ad hoc rows: against the latest scored month's population
        assert r["reference_probability"] == pytest.approx(mean, abs=1e-12)
        parts = sum(x["probability_change"] for x in r["raising"] + r["lowering"])
        total = r["reference_probability"] + parts + r["other_probability_change"]
        assert total == pytest.approx(r["probability"], abs=1e-12)


def test_person_not_on_the_list_says_why_in_words(server):
    from features.cohort import EXCLUSIONS

    meta, people = _run_people(server)
    north = people[(people["neighbourhood"] == "North") & people["probability"].notna()]
    unlisted = north[~north["listed"].astype(bool)]
    assert len(unlisted)
    for _, row in unlisted.head(3).iterrows():
        body = server.post(
            "/person", {"person_id": row["person_id"], "month": MONTH}, "north_clinician"
        ).json()
        assert body["listed"] is False and body["not_listed"].startswith("not on the list: ")
        if pd.notna(row["excluded"]):
            assert EXCLUSIONS[row["excluded"]] in body["not_listed"]
        else:
            assert f"ranked {int(row['rank'])} in North" in body["not_listed"]
            assert meta["rule"] in body["not_listed"]
    listed = server.post(
        "/person", {"person_id": north[north["listed"]]["person_id"].iloc[0],
                            "month": MONTH}, "north_clinician",
    ).json()  # fmt: skip
    assert listed["not_listed"] is None


def test_what_if_re_derives_dependents_refuses_impossible_and_warns(server, north):
    person, _ = north
    body = {"person_id": person, "month": MONTH, "changes": {"falls_12m": 3}}
    result = server.post("/what_if", body, "north_clinician").json()
    assert "not what an intervention would do" in result["caveat"]
    before = result["changed"].get("efi_falls", {"before": 1.0})["before"]
    if before == 0:  # a fall is a coded eFI deficit: the deficit and the score follow
        assert result["changed"]["efi_falls"]["after"] == 1
        assert {"efi_falls", "efi_score"} <= set(result["derived"])
    assert result["warnings"] == []  # falls are not part of the outcome
    hours = {"person_id": person, "month": MONTH, "changes": {"care_hours_per_week": 12}}
    warned = server.post("/what_if", hours, "north_clinician").json()
    assert any("adult social care involvement" in w for w in warned["warnings"])
    derived = {"person_id": person, "month": MONTH, "changes": {"polypharmacy_10": 1}}
    refused = server.post("/what_if", derived, "north_clinician")
    assert refused.status_code == 422 and "polypharmacy_10" in refused.json()["error"]
    impossible = {
        "person_id": person, "month": MONTH,
        "changes": {"distinct_medicines_3m": 0, "bnf_sections_3m": 0, "rx_opioids_3m": 1},
    }  # fmt: skip
    refused = server.post("/what_if", impossible, "north_clinician")
    assert refused.status_code == 422
    assert "impossible combination" in refused.json()["error"]
