"""Who may use the service: named users with a role, a neighbourhood and a hashed bearer token.

Users are rows of the state database (`config.db`), shared by every worker and replica. Tokens
are long random strings shown once, at `casefinder users add`; only their SHA-256 is stored (a
fast hash is enough because tokens carry 256 bits of randomness, unlike passwords). Revoking a
user ends their token and their page sessions at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from sqlalchemy import insert, select, update

from config.db import Database
from config.db.schema import sessions, users

if TYPE_CHECKING:
    from config.settings import Settings

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
    id: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


def hash_token(token: str) -> str:
    """The stored form of a token (and of a session id)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh bearer token (URL-safe, 43 random characters after the prefix)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _user(row: Any) -> User:
    return User(**dict(row._mapping))


class UserStore:
    """The users table: read, add, revoke, look a token up."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def of(cls, settings: Settings) -> UserStore:
        return cls(Database.of(settings))

    def users(self) -> list[User]:
        """Every user, revoked ones included, in the order they were added."""
        with self.db.read() as con:
            return [_user(r) for r in con.execute(select(users).order_by(users.c.id))]

    def add(
        self, name: str, role: str, neighbourhood: str | None = None, *,
        token_sha256: str | None = None, created: str | None = None, revoked: str | None = None,
    ) -> tuple[User, str]:  # fmt: skip
        """Create a user; return it and its token (the only time the token is seen; empty when
        an existing token's hash is imported)."""
        name = name.strip()
        if not name:
            raise UserError("user name is empty")
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if role in NEIGHBOURHOOD_ROLES and not neighbourhood:
            raise UserError(f"role {role} needs a neighbourhood (--neighbourhood)")
        if role not in NEIGHBOURHOOD_ROLES and neighbourhood:
            raise UserError(f"role {role} sees every neighbourhood; drop --neighbourhood")
        token = "" if token_sha256 else new_token()
        row = {
            "name": name,
            "role": role,
            "neighbourhood": neighbourhood or None,
            "token_sha256": token_sha256 or hash_token(token),
            "created": created or _now(),
            "revoked": revoked,
        }
        with self.db.write() as con:
            taken = con.execute(
                select(users.c.id).where(users.c.name == name, users.c.revoked.is_(None))
            ).first()
            if taken is not None and revoked is None:
                raise UserError(f"user {name!r} already exists; revoke it first to replace it")
            new_id = con.execute(insert(users).values(**row)).inserted_primary_key[0]
        return User(**row, id=int(new_id)), token  # type: ignore[arg-type]

    def revoke(self, name: str) -> User:
        """Revoke the active user called `name`; its token and sessions stop working at once."""
        with self.db.write() as con:
            row = con.execute(
                select(users).where(users.c.name == name, users.c.revoked.is_(None))
            ).first()
            if row is None:
                raise UserError(f"no active user called {name!r}")
            now = _now()
            con.execute(update(users).where(users.c.id == row.id).values(revoked=now))
            con.execute(
                update(sessions)
                .where(sessions.c.user_id == row.id, sessions.c.ended.is_(None))
                .values(ended=now)
            )
        return User(**{**dict(row._mapping), "revoked": now})

    def authenticate(self, token: str) -> User | None:
        """The active user holding `token`, or None."""
        # Lookup by digest: an attacker cannot steer the digest, so timing reveals nothing useful.
        with self.db.read() as con:
            row = con.execute(
                select(users).where(
                    users.c.token_sha256 == hash_token(token), users.c.revoked.is_(None)
                )
            ).first()
        return None if row is None else _user(row)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
