"""Users store, token checks and the access middleware's path rules (real ASGI app over HTTP)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from casefinder.cli import app as cli
from config.db import Database
from config.settings import load_settings
from serving.access import (
    COOKIE,
    USER_KEY,
    AccessMiddleware,
    Denied,
    allowed_roles,
    check_neighbourhood,
)
from serving.sessions import SessionStore
from serving.users import UserError, UserStore, hash_token


def _store(tmp_path) -> UserStore:
    return UserStore(Database(f"sqlite:///{tmp_path / 'state.db'}"))


def test_add_stores_only_the_hash(tmp_path):
    store = _store(tmp_path)
    user, token = store.add("ann", "team", "N01")
    text = (tmp_path / "state.db").read_bytes() + (tmp_path / "state.db-wal").read_bytes()
    assert token.encode() not in text
    assert hash_token(token).encode() in text
    assert store.authenticate(token) == user
    assert store.authenticate(token + "x") is None
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("name", "role", "hood", "message"),
    [
        ("x", "admin", None, "unknown role"),
        ("x", "team", None, "needs a neighbourhood"),
        ("x", "clinician", "", "needs a neighbourhood"),
        ("x", "data_scientist", "N01", "sees every neighbourhood"),
        (" ", "team", "N01", "empty"),
    ],
)
def test_add_rejects_bad_users(tmp_path, name, role, hood, message):
    with pytest.raises(UserError, match=message):
        _store(tmp_path).add(name, role, hood)


def test_duplicate_and_revoke(tmp_path):
    store = _store(tmp_path)
    _, token = store.add("ann", "clinician", "N02")
    with pytest.raises(UserError, match="already exists"):
        store.add("ann", "team", "N02")
    store.revoke("ann")
    assert store.authenticate(token) is None
    with pytest.raises(UserError, match="no active user"):
        store.revoke("ann")
    _, again = store.add("ann", "team", "N02")  # a revoked name can be reused
    assert store.authenticate(again).role == "team"
    assert [u.active for u in store.users()] == [False, True]


def test_a_revocation_reaches_every_store_of_the_database_and_ends_sessions(database_url):
    reader, writer = UserStore(Database(database_url)), UserStore(Database(database_url))
    _, token = writer.add("ann", "team", "N01")
    sessions = SessionStore(reader.db)
    session = sessions.start(reader.authenticate(token))
    assert reader.authenticate(token) is not None and sessions.user(session).name == "ann"
    writer.revoke("ann")
    assert reader.authenticate(token) is None
    assert sessions.user(session) is None


def test_a_session_ends_at_sign_out_and_expires(database_url):
    store = UserStore(Database(database_url))
    user, _ = store.add("ann", "team", "N01")
    sessions = SessionStore(store.db)
    first, second = sessions.start(user), sessions.start(user)
    assert first != second and first.startswith("cs_")
    assert sessions.end(first) and not sessions.end(first)
    assert sessions.user(first) is None and sessions.user(second).name == "ann"
    expired = SessionStore(store.db, hours=-1)
    assert expired.user(expired.start(user)) is None
    assert sessions.user("cs_made-up") is None


def test_neighbourhood_scope():
    store_user = {"name": "t", "token_sha256": "0", "created": "now"}
    from serving.users import User

    team = User(role="team", neighbourhood="N01", **store_user)
    scientist = User(role="data_scientist", neighbourhood=None, **store_user)
    check_neighbourhood(team, "N01")
    check_neighbourhood(scientist, "N07")
    with pytest.raises(Denied) as denied:
        check_neighbourhood(team, "N02")
    assert denied.value.status == 403


def test_every_api_path_has_a_rule():
    assert allowed_roles("/healthz") == "public"
    assert allowed_roles("/score") == ("data_scientist",)
    assert allowed_roles("/person") == ("clinician",)
    assert allowed_roles("/ui/person/P1") == ("clinician",)
    assert allowed_roles("/something-new") is None  # any signed-in user, never public


async def _whoami(request: Request) -> JSONResponse:
    user = request.scope[USER_KEY]
    return JSONResponse({"name": user.name, "role": user.role})


async def _open(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@pytest.fixture
def client(tmp_path):
    store = _store(tmp_path)
    tokens = {
        role: store.add(role, role, None if role == "data_scientist" else "N01")[1]
        for role in ("data_scientist", "team", "clinician")
    }
    inner = Starlette(
        routes=[
            Route("/score", _whoami, methods=["POST"]),
            Route("/list", _whoami, methods=["POST"]),
            Route("/healthz", _open),
            Route("/ui/list", _whoami),
        ]
    )
    app = AccessMiddleware(inner, lambda: store, model_version=lambda: "7")
    return TestClient(app), tokens, store


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_middleware_status_codes(client):
    http, tokens, store = client
    with http:
        assert http.get("/healthz").status_code == 200
        missing = http.post("/score")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.headers["x-model-version"] == "7"
        bad = http.post("/score", headers={"Authorization": "Bearer cf_nope"})
        assert bad.status_code == 401
        assert "not valid" in bad.json()["error"]
        basic = http.post("/score", headers={"Authorization": "Basic abc"})
        assert basic.status_code == 401
        ok = http.post("/score", headers=_bearer(tokens["data_scientist"]))
        assert ok.status_code == 200
        assert ok.json()["role"] == "data_scientist"
        assert ok.headers["x-model-version"] == "7"
        wrong = http.post("/score", headers=_bearer(tokens["team"]))
        assert wrong.status_code == 403
        assert "team" in wrong.json()["error"]
        # A session cookie works like the header (pages); the raw token in the cookie does not;
        # HTML paths get an HTML sign-in page.
        session = SessionStore(store.db).start(store.authenticate(tokens["team"]))
        http.cookies.set(COOKIE, session)
        page = http.get("/ui/list")
        posted = http.post("/list")  # a cookie POST without our Origin
        cross = http.post("/list", headers={"Origin": "https://evil.example"})
        own = http.post("/list", headers={"Origin": "http://testserver"})
        # A browser under Referrer-Policy no-referrer sends Origin: null; Sec-Fetch-Site decides.
        null_own = http.post("/list", headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
        null_cross = http.post("/list", headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
        http.cookies.set(COOKIE, tokens["team"])
        raw = http.get("/ui/list")
        http.cookies.clear()
        assert page.status_code == 200
        assert posted.status_code == cross.status_code == null_cross.status_code == 403
        assert own.status_code == null_own.status_code == 200
        assert raw.status_code == 401
        anon_page = http.get("/ui/list", follow_redirects=False)
        assert anon_page.status_code == 303  # a page without a session: to the sign-in form
        assert anon_page.headers["location"] == "/ui/login"
        http.cookies.set(COOKIE, "expired-session")
        stale = http.get("/ui/list", follow_redirects=False)
        http.cookies.clear()
        assert stale.status_code == 401  # a session that has ended: say so, link to sign in
        assert "text/html" in stale.headers["content-type"]
        assert 'href="/ui/login"' in stale.text
        store.revoke("team")
        gone = http.post("/list", headers=_bearer(tokens["team"]))
        assert gone.status_code == 401


def test_users_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path))
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "ann", "--role", "team", "--neighbourhood", "N01"])
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    assert token.startswith("cf_")
    store = UserStore.of(load_settings())
    assert store.users()[0].token_sha256 == hash_token(token)
    listed = runner.invoke(cli, ["users", "list"])
    assert "ann" in listed.output and token not in listed.output
    bad = runner.invoke(cli, ["users", "add", "bo", "--role", "boss"])
    assert bad.exit_code == 2 and "unknown role" in bad.output
    assert runner.invoke(cli, ["users", "revoke", "ann"]).exit_code == 0
    assert store.authenticate(token) is None
    assert runner.invoke(cli, ["users", "revoke", "ann"]).exit_code == 2
