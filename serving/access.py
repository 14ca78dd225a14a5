"""Access control, enforced on the server for every request: who may call which path.

`AccessMiddleware` wraps the whole service (API endpoints and pages). It reads a bearer token
from the `Authorization` header (or the HttpOnly `casefinder_token` cookie set by the login page),
maps it to a `User` through the users store, and checks the path's allowed roles:
no or unknown token -> 401, role not allowed -> 403. Endpoints that name a neighbourhood or a
person then call `check_neighbourhood` for the second half of the scope check.
Public paths (health, readiness, metrics, status, the OpenAPI schema, the login page) carry no
personal data.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from serving.users import Role, User, UserStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "casefinder_token"
USER_KEY = "casefinder.user"
PUBLIC = "public"

# Path -> roles allowed (exact paths first, then prefixes). Anything not listed needs a valid token
# of any role, so a new endpoint is never open by accident.
EXACT: dict[str, tuple[Role, ...] | str] = {
    "/healthz": PUBLIC,
    "/livez": PUBLIC,
    "/readyz": PUBLIC,
    "/metrics": PUBLIC,
    "/status": PUBLIC,
    "/docs.json": PUBLIC,
    "/schema.json": PUBLIC,
    "/": PUBLIC,
    "/ui/login": PUBLIC,
    "/ui/logout": PUBLIC,
    "/ui/style.css": PUBLIC,
    "/score": ("data_scientist",),
    "/score_model": ("data_scientist",),
    "/summary": ("data_scientist",),
    "/list": ("team", "clinician"),
    "/person": ("clinician",),
    "/what_if": ("clinician",),
    "/ui": ("team", "clinician"),
    "/ui/": ("team", "clinician"),
    "/ui/list": ("team", "clinician"),
    "/ui/list.csv": ("team", "clinician"),
    "/ui/list.xlsx": ("team", "clinician"),
}
PREFIXES: tuple[tuple[str, tuple[Role, ...] | str], ...] = (
    ("/ui/person/", ("clinician",)),
    ("/static_content/", PUBLIC),
)


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
        raise Denied(403, f"user {user.name} may not see neighbourhood {neighbourhood}")


def current_user(scope: Scope) -> User:
    """The user `AccessMiddleware` authenticated for this request."""
    user = scope.get(USER_KEY)
    if user is None:
        raise Denied(401, "not signed in")
    return user


def token_from(scope: Scope) -> str | None:
    """The bearer token in the Authorization header, else the login cookie."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    auth = headers.get("authorization", "")
    if auth:
        kind, _, value = auth.partition(" ")
        return value.strip() if kind.lower() == "bearer" and value.strip() else None
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def _wants_html(scope: Scope) -> bool:
    return scope["path"].startswith("/ui")


async def _deny(scope: Scope, send: Send, status: int, message: str, extra: list) -> None:
    if _wants_html(scope):
        link = '<p><a href="/ui/login">Sign in</a></p>' if status == 401 else ""
        title = "Sign in needed" if status == 401 else "Not allowed"
        body = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"</head><body><main><h1>{title}</h1><p>{message}</p>{link}</main></body></html>"
        ).encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": message}).encode()
        ctype = b"application/json"
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="casefinder"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AccessMiddleware:
    """ASGI middleware: authenticate, check the path's roles, add the model version header
    (and on /readyz whether the registry answers)."""

    def __init__(
        self,
        app: ASGIApp,
        store: UserStore | Callable[[], UserStore],
        model_version: Callable[[], str | None] = lambda: None,
        registry: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.app = app
        self._store = store
        self._model_version = model_version
        self._registry = registry

    @property
    def store(self) -> UserStore:
        if callable(self._store) and not isinstance(self._store, UserStore):
            self._store = self._store()
        return self._store  # type: ignore[return-value]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        version = self._model_version()
        extra = [(b"x-model-version", version.encode())] if version else []
        if scope["path"] == "/readyz":
            # Readiness stays 200 while the loaded model serves; this says if MLflow answers.
            state = self._registry()
            if state:
                extra.append((b"x-registry", state.encode()))

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        rule = allowed_roles(scope["path"])
        if rule == PUBLIC:
            await self.app(scope, receive, send_with_version)
            return
        token = token_from(scope)
        if not token:
            await _deny(scope, send, 401, "a bearer token is needed", extra)
            return
        user = self.store.authenticate(token)
        if user is None:
            await _deny(scope, send, 401, "the token is not valid or was revoked", extra)
            return
        if rule is not None and user.role not in rule:
            await _deny(scope, send, 403, f"role {user.role} may not use {scope['path']}", extra)
            return
        scope[USER_KEY] = user
        await self.app(scope, receive, send_with_version)
