"""Access control, enforced on the server for every request: who may call which path.

`AccessMiddleware` wraps the whole service (API endpoints and pages). It reads a bearer token
from the `Authorization` header and maps it to a `User` through the users store, or else the
opaque session id of the HttpOnly `casefinder_session` cookie the sign-in page sets
(`serving.sessions`), and checks the path's allowed roles: no or unknown token or session -> 401,
role not allowed -> 403. A request authenticated by the cookie that changes anything (any method
but GET/HEAD/OPTIONS) must come from our own origin: its `Origin` header must name the host it
was sent to, else 403 (so another site cannot post with a signed-in browser's cookie); so must a
sign-in that carries an Origin. Endpoints that name a neighbourhood or a person then call
`check_neighbourhood` for the second half of the scope check. A role refused on a person-level
path is audited with the person it named (`refused`).
Public paths (health, readiness, status, the OpenAPI schema, the login page) carry no
personal data; `/metrics` needs a data scientist's token.

Before any of that, on every request: a URL longer than `MAX_URL` gets 414 and a body larger than
its path's limit 413, before the body is read (`Content-Length`; a chunked body is read only up
to the limit). After it, on every response: one set of security headers (`security_headers`: a
strict Content-Security-Policy, no framing, no sniffing, no referrer, and `Cache-Control:
no-store` on everything but the stylesheet and BentoML's static files). Refusals are rendered by
`serving.html` (escaped) and never repeat the path. BentoML's Prometheus metrics are labelled by
route template (`/ui/person/{person_id}`), every unknown path under one label, `UNKNOWN_ROUTE`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from serving.html import render
from serving.sessions import SessionStore
from serving.throttle import FailedTokens
from serving.users import Role, User, UserStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "casefinder_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
USER_KEY = "casefinder.user"
PUBLIC = "public"

# Path -> roles allowed (exact paths first, then prefixes). Anything not listed needs a valid token
# of any role, so a new endpoint is never open by accident.
EXACT: dict[str, tuple[Role, ...] | str | None] = {
    "/healthz": PUBLIC,
    "/livez": PUBLIC,
    "/readyz": PUBLIC,
    "/metrics": ("data_scientist",),
    "/status": PUBLIC,
    "/docs.json": PUBLIC,
    "/schema.json": PUBLIC,
    "/": PUBLIC,
    "/docs": ("data_scientist",),
    "/favicon.ico": PUBLIC,
    "/ui/login": PUBLIC,
    "/ui/logout": PUBLIC,
    "/ui/style.css": PUBLIC,
    "/ui/favicon.svg": PUBLIC,
    "/ui": None,
    "/ui/": None,
    "/ui/overview": ("data_scientist",),
    "/score": ("data_scientist",),
    "/score_model": ("data_scientist",),
    "/summary": ("data_scientist",),
    "/list": ("team", "clinician"),
    "/person": ("clinician",),
    "/what_if": ("clinician",),
    "/review": ("team", "clinician"),
    "/reviews": ("team", "clinician"),
    "/ui/review": ("team", "clinician"),
    "/ui/performance": ("team", "clinician"),
    "/ui/list": ("team", "clinician"),
    "/ui/list.csv": ("team", "clinician"),
    "/ui/list.xlsx": ("team", "clinician"),
}
PREFIXES: tuple[tuple[str, tuple[Role, ...] | str], ...] = (
    ("/ui/person/", ("clinician",)),
    ("/static_content/", PUBLIC),
)


# Request size limits: the whole URL (path and query), and the body per path (bytes).
MAX_URL = 4096
BODY_LIMIT = 64 * 1024
# The API documentation page (BentoML's Swagger UI files, served at /docs by `_docs_page`
# without the Google Tag Manager snippet of BentoML's own index page).
DOCS_UI = ("/docs", "/static_content/")
STATIC = ("/ui/style.css", "/ui/favicon.svg", "/static_content/")
UNKNOWN_ROUTE = "/{unknown}"
REAL_PATH = "casefinder.real_path"

# Pages: only our own stylesheet and images, forms posting back to us, no scripts at all.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The waterfall chart (matplotlib SVG styles itself inline; SVG as an image runs no script).
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
# BentoML's Swagger page at / (its own scripts and styles from /static_content/).
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_OURS = {
    b"content-security-policy",
    b"x-frame-options",
    b"x-content-type-options",
    b"referrer-policy",
    b"cache-control",
}


def security_headers(path: str, content_type: str) -> list[tuple[bytes, bytes]]:
    """The security headers of every response: CSP (by what the response is), no framing, no
    sniffing, no referrer, and no caching of anything but static files."""
    if path == "/docs" or path.startswith("/static_content/"):
        csp = DOCS_CSP
    elif content_type.startswith("image/svg+xml"):
        csp = SVG_CSP
    else:
        csp = PAGE_CSP
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if not path.startswith(STATIC):
        headers.append((b"cache-control", b"no-store"))
    return headers


def _with_security_headers(path: str, headers: Iterable[tuple[bytes, bytes]]) -> list:
    kept = [(k, v) for k, v in headers if k.lower() not in _OURS]
    ctype = next((v.decode("latin-1") for k, v in kept if k.lower() == b"content-type"), "")
    return [*kept, *security_headers(path, ctype)]


class RouteLabels:
    """A request path -> the route template it matched ("/ui/person/{person_id}"), or
    `UNKNOWN_ROUTE`: the metrics label, so metrics name no person and cannot grow per path."""

    def __init__(self, templates: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for template in templates:
            if "{" not in template:
                self.exact.add(template)
                continue
            parts = re.split(r"(\{[^}]+\})", template)
            regex = "".join(
                (".+" if p.endswith(":path}") else "[^/]+") if p.startswith("{") else re.escape(p)
                for p in parts
            )
            self.patterns.append((re.compile(regex), template))

    def __call__(self, path: str) -> str:
        if path in self.exact:
            return path
        for pattern, template in self.patterns:
            if pattern.fullmatch(path):
                return template
        return UNKNOWN_ROUTE


def _known_templates(extra: Iterable[str]) -> list[str]:
    prefixes = [f"{prefix}{{rest:path}}" for prefix, _ in PREFIXES]
    return [*EXACT, *extra, *prefixes]  # specific templates before the catch-all prefixes


class _RestorePath:
    """Inside BentoML's metrics middleware: give the app back the real path that
    `AccessMiddleware` swapped for its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        real = scope.pop(REAL_PATH, None)
        if real is not None:
            scope["path"] = real
        await self.app(scope, receive, send)


def label_metrics_by_route(templates: Callable[[], Iterable[str]]) -> bool:
    """Make BentoML's request metrics label each request by its route template (`RouteLabels`)
    instead of its path. BentoML 1.4 puts its metrics middleware outside the service's own
    middlewares, so this swaps in a subclass of it (call before the service's app is built, i.e.
    when the service module is imported): it hands the metrics the template and the app inside
    it the real path. False, and paths stay as they are, if BentoML has no such class."""
    try:
        from bentoml._internal.server.http import instruments
    except ImportError:  # pragma: no cover - another BentoML layout
        return False
    base = getattr(instruments, "RunnerTrafficMetricsMiddleware", None)
    if base is None:  # pragma: no cover
        return False
    if getattr(base, "labels_routes", False):
        return True

    class RouteLabelledMetrics(base):  # type: ignore[misc, valid-type]
        labels_routes = True

        def __init__(self, app: ASGIApp, **options: Any) -> None:
            super().__init__(_RestorePath(app), **options)
            self._labels: RouteLabels | None = None

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] != "/metrics":
                if self._labels is None:
                    self._labels = RouteLabels(_known_templates(templates()))
                scope[REAL_PATH] = scope["path"]
                scope["path"] = self._labels(scope["path"])
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = RouteLabelledMetrics
    return True


def allowed_roles(path: str) -> tuple[Role, ...] | str | None:
    """The roles allowed on `path`, PUBLIC, or None for "any signed-in user"."""
    if path in EXACT:
        return EXACT[path]
    for prefix, rule in PREFIXES:
        if path.startswith(prefix):
            return rule
    return None


@dataclass(frozen=True)
class Denied(Exception):
    """A scope check failed: HTTP status (401 or 403) and a message without personal data."""

    status: int
    message: str


def check_neighbourhood(user: User, neighbourhood: str) -> None:
    """Raise `Denied(403)` unless `user` may see data for `neighbourhood`."""
    if user.neighbourhood is not None and user.neighbourhood != neighbourhood:
        raise Denied(403, f"user {user.name} may not see that neighbourhood")


def current_user(scope: Scope) -> User:
    """The user `AccessMiddleware` authenticated for this request."""
    user = scope.get(USER_KEY)
    if user is None:
        raise Denied(401, "not signed in")
    return user


def token_from(scope: Scope) -> str | None:
    """The bearer token in the Authorization header (None without one, or a malformed one)."""
    auth = (_header(scope, b"authorization") or b"").decode("latin-1")
    kind, _, value = auth.partition(" ")
    return value.strip() if kind.lower() == "bearer" and value.strip() else None


def session_from(scope: Scope) -> str | None:
    """The page session id in the session cookie, or None."""
    for part in (_header(scope, b"cookie") or b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def client_address(scope: Scope) -> str:
    """The client's address as the server saw it (the throttle's key)."""
    return str((scope.get("client") or ("unknown",))[0])


def same_origin(scope: Scope) -> bool:
    """Whether the request comes from our own pages: its `Origin` header names the host it was
    sent to, or, when the browser sends `Origin: null` (our `Referrer-Policy: no-referrer` makes
    it do so on a form POST) or none, its `Sec-Fetch-Site` (set by the browser, never by a page's
    script) says same-origin. False with neither."""
    from urllib.parse import urlsplit

    origin = (_header(scope, b"origin") or b"").decode("latin-1")
    host = (_header(scope, b"host") or b"").decode("latin-1").lower()
    if origin and origin != "null":
        return bool(host) and urlsplit(origin).netloc.lower() == host
    return _header(scope, b"sec-fetch-site") == b"same-origin"


def cross_site(scope: Scope) -> bool:
    """Whether the request carries an `Origin` header naming another host (login form check)."""
    return _header(scope, b"origin") is not None and not same_origin(scope)


def _wants_html(scope: Scope) -> bool:
    return scope["path"].startswith("/ui") or scope["path"] == "/docs"


TITLES = {
    401: "Sign in needed",
    403: "Not allowed",
    413: "Too large",
    414: "Too long",
    429: "Too many attempts",
}


async def _deny(
    scope: Scope, send: Send, status: int, message: str, extra: list, user: User | None = None
) -> None:
    """A refusal: a page (rendered and escaped by `serving.html`) under /ui, else JSON. `message`
    is ours, never anything taken from the request."""
    if _wants_html(scope):
        body = render(
            "problem.html", title=TITLES.get(status, "Problem"), message=message,
            sign_in=status == 401, user=user,
        ).encode()  # fmt: skip
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": message}).encode()
        ctype = b"application/json"
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="casefinder"'))
    headers = _with_security_headers(scope["path"], headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(scope: Scope, send: Send, location: str) -> None:
    """303 to one of our own paths (never one taken from the request)."""
    headers = _with_security_headers(
        scope["path"], [(b"location", location.encode()), (b"content-length", b"0")]
    )
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


# The OpenAPI description. BentoML's default embeds badge images from outside hosts
# (shields.io and others), which no casefinder page may load, so /docs.json carries this instead.
API_DOC = (
    "Risk of complex multi-agency need within 12 months for people aged 65+: scores, "
    "neighbourhood MDT lists, explanations and population segments. Every endpoint but the "
    "health checks needs a bearer token (`casefinder users add`); docs/service.md gives the "
    "roles, the audit log and the security model."
)


def _our_description(send: Send) -> Send:
    """Wrap `send` so the OpenAPI document goes out with `API_DOC` as its description."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def rewrite(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        if start.get("status") == 200:
            spec = json.loads(body)
            spec.setdefault("info", {})["description"] = API_DOC
            body = json.dumps(spec).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return rewrite


async def _docs_page(scope: Scope, send: Send, extra: list) -> None:
    """The Swagger UI for the API, from BentoML's bundled files, with no outside requests."""
    body = render("docs.html").encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    headers = _with_security_headers(scope["path"], headers)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


async def _bounded_body(receive: Receive, limit: int) -> list[Message] | None:
    """Read a body without a Content-Length, keeping at most `limit` bytes: its messages to
    replay, or None once it passes the limit."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


# API paths that read or write one person's record: a role refused there is audited with its target.
PERSON_PATHS = ("/person", "/what_if", "/review", "/ui/review")


async def _target(scope: Scope, receive: Receive, limit: int) -> tuple[list[str], Receive]:
    """The person a refused request named (its path under /ui/person/, or the `person_id` of its
    JSON body, read up to `limit` bytes), and a `receive` that replays what was read."""
    from serving.schemas import PERSON_ID_PATTERN

    path = scope["path"]
    if path.startswith("/ui/person/"):
        candidate = path.removeprefix("/ui/person/").split("/")[0]
        return ([candidate] if re.fullmatch(PERSON_ID_PATTERN, candidate) else []), receive
    messages = await _bounded_body(receive, limit) or []
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
    try:
        candidate = json.loads(body).get("person_id")
    except (ValueError, AttributeError):
        candidate = None
    replay, upstream = list(messages), receive

    async def again() -> Message:
        return replay.pop(0) if replay else await upstream()

    ok = isinstance(candidate, str) and re.fullmatch(PERSON_ID_PATTERN, candidate)
    return ([candidate] if ok else []), again


class AccessMiddleware:
    """ASGI middleware: authenticate, check the path's roles, add the model version header
    (and on /readyz whether the registry answers)."""

    def __init__(
        self,
        app: ASGIApp,
        store: UserStore | Callable[[], UserStore],
        sessions: Callable[[UserStore], SessionStore] = lambda store: SessionStore(store.db),
        model_version: Callable[[], str | None] = lambda: None,
        registry: Callable[[], str | None] = lambda: None,
        body_limits: dict[str, int] | None = None,
        throttle: FailedTokens | None = None,
        audit_refusal: Callable[[str, str], None] = lambda action, client: None,
        refused: Callable[[User, str, list[str]], None] | None = None,
    ) -> None:
        self.app = app
        self._refused = refused
        self._store = store
        self._sessions_of = sessions
        self._sessions: SessionStore | None = None
        self._model_version = model_version
        self._registry = registry
        self.body_limits = body_limits or {}
        self.throttle = throttle or FailedTokens(allowed=10, window_seconds=60)
        self.audit_refusal = audit_refusal

    @property
    def store(self) -> UserStore:
        if callable(self._store) and not isinstance(self._store, UserStore):
            self._store = self._store()
        return self._store  # type: ignore[return-value]

    @property
    def sessions(self) -> SessionStore:
        if self._sessions is None:
            self._sessions = self._sessions_of(self.store)
        return self._sessions

    def body_limit(self, path: str) -> int:
        return self.body_limits.get(path, BODY_LIMIT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        version = self._model_version()
        extra = [(b"x-model-version", version.encode())] if version else []
        if path == "/readyz":
            # Readiness stays 200 while the loaded model serves; this says if MLflow answers.
            state = self._registry()
            if state:
                extra.append((b"x-registry", state.encode()))

        if len(scope.get("raw_path") or path.encode()) + len(scope.get("query_string", b"")) > (
            MAX_URL
        ):
            await _deny(scope, send, 414, f"the address is longer than {MAX_URL} bytes", extra)
            return
        limit = self.body_limit(path)
        declared = _header(scope, b"content-length")
        too_large = f"the request body is larger than {limit} bytes"
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = limit + 1
            if size > limit:
                await _deny(scope, send, 413, too_large, extra)
                return
        elif _header(scope, b"transfer-encoding") is not None:
            messages = await _bounded_body(receive, limit)
            if messages is None:
                await _deny(scope, send, 413, too_large, extra)
                return
            replay, upstream = list(messages), receive

            async def receive() -> Message:  # the body read, then the client's later messages
                return replay.pop(0) if replay else await upstream()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *extra]
                message["headers"] = _with_security_headers(path, headers)
            await send(message)

        rule = allowed_roles(path)
        if path == "/":  # people arrive here first: the pages, not BentoML's Swagger page
            await _redirect(scope, send, "/ui/")
            return
        if path == "/favicon.ico":
            await _redirect(scope, send, "/ui/favicon.svg")
            return
        if path == "/docs.json":
            await self.app(scope, receive, _our_description(send_with_headers))
            return
        if path == "/ui/login" and scope.get("method") == "POST" and cross_site(scope):
            await _deny(scope, send, 403, "sign in from this service's own page", extra)
            return
        if rule == PUBLIC:
            await self.app(scope, receive, send_with_headers)
            return
        client = client_address(scope)
        wait = self.throttle.retry_after(client)
        if wait is not None:
            retry = [*extra, (b"retry-after", str(wait).encode())]
            await _deny(scope, send, 429, f"too many failed sign-ins: try again in {wait} s", retry)
            return
        token = token_from(scope)
        session = None if token or _header(scope, b"authorization") else session_from(scope)
        if not token and not session:
            if _wants_html(scope) and scope.get("method") == "GET":
                await _redirect(scope, send, "/ui/login")  # a page: to the sign-in form
                return
            await _deny(scope, send, 401, "a bearer token is needed", extra)
            return
        user = self.store.authenticate(token) if token else self.sessions.user(session or "")
        if user is None:
            if self.throttle.failed(client):
                self.audit_refusal("auth.throttled", client)
            what = "token" if token else "session"
            await _deny(
                scope, send, 401, f"the {what} is not valid, has ended or was revoked", extra
            )
            return
        if session and scope.get("method", "GET") not in SAFE_METHODS and not same_origin(scope):
            await _deny(scope, send, 403, "this form was not sent from this service's pages", extra)
            return
        if rule is not None and user.role not in rule:
            if self._refused is not None and (
                path in PERSON_PATHS or path.startswith("/ui/person/")
            ):
                target, receive = await _target(scope, receive, self.body_limit(path))
                self._refused(user, path, target)
            message = f"role {user.role} may not use this address"
            await _deny(scope, send, 403, message, extra, user)
            return
        scope[USER_KEY] = user
        if path == "/docs":
            await _docs_page(scope, send, extra)
            return
        await self.app(scope, receive, send_with_headers)
