"""Issue 14, hardening: each finding of the attack on the service, the exports and the loader, as
the behaviour that now holds. Service findings run over HTTP against a real `bentoml serve`
(tests/serving_fixtures.py); contract findings load a crafted extract, as in test_loader_rules.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from records import load_extract
from records.contract import NEIGHBOURHOOD, PERSON_ID
from tests import serving_fixtures
from tests.extract_builder import add_row, valid_rows, write_extract

built_home = serving_fixtures.built_home  # pytest fixtures shared by the serving tests
server = serving_fixtures.server

MONTH = "2026-10"
XSS = "<img src=x onerror=alert(1)>"
SECURITY = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def get(server, path, user=None, **kw):
    return httpx.get(server.url + path, headers=server.headers(user), timeout=30, **kw)


def post(server, path, body, user=None, **kw):
    return httpx.post(server.url + path, json=body, headers=server.headers(user), timeout=30, **kw)


def audit(server) -> list[dict]:
    return server.audit().entries()


@pytest.fixture(scope="module")
def north(server) -> str:
    body = post(server, "/list", {"neighbourhood": "North", "month": MONTH}, "north_team").json()
    return body["people"][0]["person_id"]


# --- contract: person_id and neighbourhood patterns (no server) ------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("person_id", '=HYPERLINK("http://x","y")'),
        ("person_id", "-P100"),
        ("person_id", "P 100"),
        ("person_id", "P" * 65),
        ("neighbourhood", "=cmd|' /C calc'!A0"),
        ("neighbourhood", "@North"),
        ("neighbourhood", "+North"),
        ("neighbourhood", "-North"),
        ("neighbourhood", "North\tside"),
        ("neighbourhood", "N" * 65),
    ],
)
def test_a_formula_or_odd_text_as_person_id_or_neighbourhood_is_rejected_with_its_reason(
    tmp_path: Path, column: str, value: str
) -> None:
    rows = valid_rows()
    changes = {"person_id": "P100", column: value}
    row_number = add_row(rows, "people", **changes)
    loaded = load_extract(write_extract(tmp_path / "extract", rows, fmt="csv"))
    report = loaded.reports["people"]
    assert report.rejected == 1 and report.reasons == {f"malformed {column}": 1}
    rejects = loaded.con.execute("SELECT table_name, row_number, reason FROM rejects").fetchall()
    assert rejects == [("people", row_number, f"malformed {column}")]


@pytest.mark.parametrize("value", ["St Mary's & Priory", "East/Central (B), no. 2", "North_1"])
def test_ordinary_neighbourhood_names_load(tmp_path: Path, value: str) -> None:
    rows = valid_rows()
    add_row(rows, "people", person_id="P100", neighbourhood=value)
    loaded = load_extract(write_extract(tmp_path / "extract", rows, fmt="csv"))
    assert loaded.reports["people"].rejected == 0


def test_the_synthetic_generators_ids_and_neighbourhoods_fit_the_contract() -> None:
    from synthetic.places import NEIGHBOURHOODS

    for name, *_ in NEIGHBOURHOODS:
        assert re.fullmatch(NEIGHBOURHOOD, name), name
    for person in (f"{x:016x}"[-12:] for x in (0, 1, 2**63, 2**64 - 1)):  # generate.py's ids
        assert re.fullmatch(PERSON_ID, person), person
    for person in ("P0001", "P001"):  # the test extracts'
        assert re.fullmatch(PERSON_ID, person)


# --- the service (a real bentoml serve) ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_403_page_is_escaped_and_names_no_path(server):
    """Reflected XSS: the middleware's refusal page came back with the raw path."""
    response = get(server, "/ui/person/" + XSS, "north_team")  # team may not open people
    assert response.status_code == 403
    assert XSS not in response.text and "onerror" not in response.text
    assert "<img" not in response.text
    api = post(server, "/person", {"person_id": "x"}, "north_team")
    assert api.status_code == 403 and "/person" not in api.json()["error"]
    signed_out = get(server, "/ui/list?neighbourhood=" + XSS)
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/ui/login"
    assert XSS not in signed_out.text
    page = get(server, "/ui/list?neighbourhood=North&flag=" + XSS, "north_team")
    assert page.status_code == 400 and XSS not in page.text and "onerror" not in page.text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_response_carries_the_security_headers_and_person_data_is_never_cached(server, north):
    csv = f"/ui/list.csv?neighbourhood=North&month={MONTH}"
    responses = {
        "page": get(server, f"/ui/person/{north}?month={MONTH}", "north_clinician"),
        "list page": get(server, "/ui/list?neighbourhood=North", "north_team"),
        "chart": get(server, f"/ui/person/{north}/chart.svg?month={MONTH}", "north_clinician"),
        "download": get(server, csv, "north_team"),
        "person": post(server, "/person", {"person_id": north}, "north_clinician"),
        "list": post(server, "/list", {"neighbourhood": "North"}, "north_team"),
        "what_if": post(
            server,
            "/what_if",
            {"person_id": north, "changes": {"falls_12m": 2}},
            "north_clinician",
        ),
        "401": get(server, "/ui/list"),
        "403": get(server, "/ui/person/x", "north_team"),
        "status": post(server, "/status", {}),
        "login": get(server, "/ui/login"),
    }
    for name, response in responses.items():
        assert response.status_code < 500, name
        for header, value in SECURITY.items():
            assert response.headers.get(header) == value, (name, header)
        assert response.headers.get("cache-control") == "no-store", name
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, name
    page_csp = responses["page"].headers["content-security-policy"]
    assert "script-src" not in page_csp and "unsafe" not in page_csp
    assert "style-src 'self'" in page_csp and "img-src 'self'" in page_csp


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_out_of_scope_and_unknown_people_get_one_answer_and_are_audited(server, north):
    """The neighbourhood oracle: 403 "may not see neighbourhood North" against 404 told a
    clinician whether an id exists and where its person lives."""
    asks = {
        "/person": lambda p: {"person_id": p, "month": MONTH},
        "/what_if": lambda p: {"person_id": p, "month": MONTH, "changes": {"falls_12m": 2}},
    }
    for path, body in asks.items():
        before = len(audit(server))
        elsewhere = post(server, path, body(north), "south_clinician")
        unknown = post(server, path, body("P9999"), "south_clinician")
        assert elsewhere.status_code == unknown.status_code == 404
        assert elsewhere.json()["error"].replace(north, "ID") == unknown.json()["error"].replace(
            "P9999", "ID"
        )
        assert "North" not in elsewhere.text
        entries = audit(server)[before:]
        assert [e["action"] for e in entries] == [f"api.{path[1:]}.refused"] * 2
        assert [e["person_ids"] for e in entries] == [[north], ["P9999"]]
        assert all(e["user"] == "south_clinician" for e in entries)
    page = get(server, f"/ui/person/{north}?month={MONTH}", "south_clinician")
    none = get(server, f"/ui/person/P9999?month={MONTH}", "south_clinician")
    assert page.status_code == none.status_code == 404
    assert page.text.replace(north, "ID") == none.text.replace("P9999", "ID")
    assert audit(server)[-1]["action"] == "page.person.refused"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_large_bodies_are_refused_before_reading_and_what_if_keys_are_bounded(server, north):
    big = b'{"x": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    head = {"Content-Type": "application/json"}
    response = httpx.post(server.url + "/status", content=big, headers=head, timeout=60)
    assert response.status_code == 413
    chunked = httpx.post(
        server.url + "/status", content=iter([big[:70_000], big[70_000:140_000]]),
        headers=head, timeout=60,
    )  # fmt: skip
    assert chunked.status_code == 413
    assert httpx.post(server.url + "/status", json={}, timeout=30).status_code == 200
    long_url = get(server, "/ui/list?neighbourhood=North&x=" + "a" * 5000, "north_team")
    assert long_url.status_code == 414
    key = "k" * 20_000  # a key too long to be a feature name: refused, not echoed
    body = {"person_id": north, "changes": {key: 1}}
    refused = post(server, "/what_if", body, "north_clinician")
    assert refused.status_code == 400 and key not in refused.text and len(refused.text) < 2000
    unknown = post(server, "/what_if", {"person_id": north, "changes": {"nosuch_x": 1}},
                   "north_clinician")  # fmt: skip
    assert unknown.status_code == 422 and "nosuch_x" not in unknown.text
    form = get(server, f"/ui/person/{north}?month={MONTH}&wi_nosuch_x=1", "north_clinician")
    assert form.status_code == 200 and "nosuch_x" not in form.text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_metrics_need_a_data_scientist_and_are_labelled_by_route(server, north):
    assert get(server, "/metrics").status_code == 401
    assert get(server, "/metrics", "north_clinician").status_code == 403
    get(server, f"/ui/person/{north}?month={MONTH}", "north_clinician")
    for i in range(30):
        get(server, f"/no/such/path/{i}", "scientist")
    metrics = get(server, "/metrics", "scientist")
    assert metrics.status_code == 200
    assert north not in metrics.text and "/no/such/path" not in metrics.text
    assert 'endpoint="/ui/person/{person_id}"' in metrics.text
    assert 'endpoint="/{unknown}"' in metrics.text
    size = len(metrics.text)
    for i in range(100):
        get(server, f"/more/{i}", "scientist")
    assert len(get(server, "/metrics", "scientist").text) < size + 5000  # no series per path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_score_validation_errors_keep_values_out_of_the_log(server):
    import features

    names = features.model_feature_names()
    row = dict.fromkeys(names, 0)
    row[names[0]] = "SECRET-VALUE-31337"
    for path, body in {
        "/score": {"rows": [row]},
        "/score_model": {"model": "champion", "rows": [row]},
    }.items():
        response = post(server, path, body, "scientist")
        assert response.status_code == 400, response.text
        assert names[0] in response.text and "SECRET-VALUE" not in response.text
    assert "SECRET-VALUE" not in server.log.read_text()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_errors_name_no_server_path(server):
    home = str(server.home)
    never = post(server, "/list", {"neighbourhood": "North", "month": "2031-01"}, "north_team")
    assert never.status_code == 404 and "2031-01" in never.text
    assert home not in never.text and str(server.home.resolve()) not in never.text
    page = get(server, "/ui/list?neighbourhood=North&month=2031-01", "north_team")
    assert page.status_code == 404 and home not in page.text
    status = post(server, "/status", {})
    assert home not in status.text
