"""Page sessions, server-side: the sign-in form exchanges a bearer token for an opaque session id
(the cookie), stored only as its SHA-256 in the state database. A session ends at sign-out, when
its user is revoked (`UserStore.revoke`) or after `[serving] session_hours`; the token itself never
travels in a cookie."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from config.db import Database
from config.db.schema import sessions, users
from serving.users import User, _user, hash_token

SESSION_PREFIX = "cs_"


def _now() -> datetime:
    return datetime.now(UTC)


class SessionStore:
    """Start, look up and end page sessions."""

    def __init__(self, db: Database, hours: float = 12.0) -> None:
        self.db = db
        self.hours = hours

    def start(self, user: User) -> str:
        """A new session for `user`; returns its id (the cookie value, shown nowhere else)."""
        if user.id is None:
            raise ValueError("a session needs a stored user")
        session_id = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = _now()
        with self.db.write() as con:
            con.execute(
                insert(sessions).values(
                    id_sha256=hash_token(session_id), user_id=user.id,
                    created=now.isoformat(timespec="seconds"),
                    expires=(now + timedelta(hours=self.hours)).isoformat(timespec="seconds"),
                )
            )  # fmt: skip
        return session_id

    def user(self, session_id: str) -> User | None:
        """The active user of a live session, or None (ended, expired, revoked or unknown)."""
        now = _now().isoformat(timespec="seconds")
        query = (
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(
                sessions.c.id_sha256 == hash_token(session_id),
                sessions.c.ended.is_(None),
                sessions.c.expires > now,
                users.c.revoked.is_(None),
            )
        )
        with self.db.read() as con:
            row = con.execute(query).first()
        return None if row is None else _user(row)

    def end(self, session_id: str) -> bool:
        """End a session (sign-out); False when there was no live one."""
        with self.db.write() as con:
            result = con.execute(
                update(sessions)
                .where(sessions.c.id_sha256 == hash_token(session_id), sessions.c.ended.is_(None))
                .values(ended=_now().isoformat(timespec="seconds"))
            )
        return bool(result.rowcount)
