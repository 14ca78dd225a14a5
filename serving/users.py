"""Who may use the service: named users with a role, a neighbourhood and a hashed bearer token.

The store is one small JSON file under the home folder (`settings.serving.users_path`). Tokens are
long random strings shown once, at `casefinder users add`; only their SHA-256 is stored (a fast
hash is enough because tokens carry 256 bits of randomness, unlike passwords).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

Role = Literal["data_scientist", "team", "clinician"]
ROLES: tuple[Role, ...] = get_args(Role)
# Roles whose access is limited to one neighbourhood.
NEIGHBOURHOOD_ROLES: tuple[Role, ...] = ("team", "clinician")
TOKEN_PREFIX = "cf_"


class UserError(ValueError):
    """A users-store request that cannot be carried out (bad role, duplicate name, ...)."""


@dataclass(frozen=True)
class User:
    """One account. `neighbourhood` is None only for data scientists."""

    name: str
    role: Role
    neighbourhood: str | None
    token_sha256: str
    created: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh bearer token (URL-safe, 43 random characters after the prefix)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class UserStore:
    """The users file: read, add, revoke, look a token up. Writes replace the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cache: tuple[float, dict[str, User]] | None = None

    def users(self) -> list[User]:
        """Every user, revoked ones included, in the order they were added."""
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [User(**row) for row in data["users"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"users file {self.path} is not valid: {exc}") from None

    def _write(self, users: list[User]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"users": [asdict(u) for u in users]}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._cache = None

    def add(self, name: str, role: str, neighbourhood: str | None = None) -> tuple[User, str]:
        """Create a user; return it and its token (the only time the token is seen)."""
        name = name.strip()
        if not name:
            raise UserError("user name is empty")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if role in NEIGHBOURHOOD_ROLES and not neighbourhood:
            raise UserError(f"role {role} needs a neighbourhood (--neighbourhood)")
        if role not in NEIGHBOURHOOD_ROLES and neighbourhood:
            raise UserError(f"role {role} sees every neighbourhood; drop --neighbourhood")
        users = self.users()
        if any(u.name == name and u.active for u in users):
            raise UserError(f"user {name!r} already exists; revoke it first to replace it")
        token = new_token()
        user = User(
            name=name,
            role=role,  # type: ignore[arg-type]
            neighbourhood=neighbourhood or None,
            token_sha256=hash_token(token),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self._write([*users, user])
        return user, token

    def revoke(self, name: str) -> User:
        """Revoke the active user called `name`; its token stops working at once."""
        users = self.users()
        for i, user in enumerate(users):
            if user.name == name and user.active:
                revoked = User(**{**asdict(user), "revoked": _now()})
                users[i] = revoked
                self._write(users)
                return revoked
        raise UserError(f"no active user called {name!r}")

    def _active_by_hash(self) -> dict[str, User]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cache is None or self._cache[0] != mtime:
            self._cache = (mtime, {u.token_sha256: u for u in self.users() if u.active})
        return self._cache[1]

    def authenticate(self, token: str) -> User | None:
        """The active user holding `token`, or None. Re-reads the file when it changes."""
        # Lookup by digest: an attacker cannot steer the digest, so timing reveals nothing useful.
        return self._active_by_hash().get(hash_token(token))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
