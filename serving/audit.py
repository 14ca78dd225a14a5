"""The audit log of access to person-level data: rows of the state database in a keyed chain.

Each entry is one access or refused attempt: `seq`, `time` (UTC), `user`, `role`, `action`,
`outcome` ("allowed" or "refused"), `neighbourhood`, `month` (always the resolved month, never
"latest"), `person_ids` (the target), `model_version`, `prev` (the previous entry's `hash`) and
`hash` = HMAC-SHA256, under a key kept apart from the log, of the entry's canonical JSON without
`hash`. Editing, deleting or reordering any entry breaks the chain from there on, and without the
key nobody can re-chain the rest: `verify` reports the first break. Removing entries from the end
is detected against the head row and against a head recorded elsewhere (`--expect-head`).

Appends lock the head row (`SELECT ... FOR UPDATE` in PostgreSQL, `BEGIN IMMEDIATE` in SQLite)
and write the entry and the new head in one transaction, so concurrent workers on any number of
hosts keep one chain, and a crash leaves either the whole entry or none (no torn tail).
The key is a file (`[audit] key_path`, default `<home>/audit.key`, created 0600 on first use).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from config.db import Database
from config.db.schema import audit, audit_head

if TYPE_CHECKING:
    from config.settings import Settings

GENESIS = "0" * 64
FIELDS = (
    "seq",
    "time",
    "user",
    "role",
    "action",
    "outcome",
    "neighbourhood",
    "month",
    "person_ids",
    "model_version",
    "prev",
)
OUTCOMES = ("allowed", "refused")


def load_key(path: Path) -> bytes:
    """The audit key in `path`, made (32 random bytes, hex, mode 0600) when there is none."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it first
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
                out.flush()
                os.fsync(out.fileno())
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError("the audit key file is empty or too short (32+ hex characters)")
    return key.encode()


def digest(entry: dict[str, Any], key: bytes) -> str:
    """The keyed hash of one entry (every field but `hash`)."""
    body = {k: entry[k] for k in FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def _entry(row: Any) -> dict[str, Any]:
    entry = dict(row._mapping)
    entry["person_ids"] = json.loads(entry["person_ids"])
    return entry


class AuditLog:
    """Append one entry per access to person-level data (or refused attempt); read them back."""

    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self.key = key

    @classmethod
    def of(cls, settings: Settings) -> AuditLog:
        return cls(Database.of(settings), load_key(settings.audit_key_path))

    def append(
        self,
        *,
        user: str,
        role: str,
        action: str,
        person_ids: Sequence[str],
        neighbourhood: str | None = None,
        month: str | None = None,
        model_version: str | None = None,
        outcome: str = "allowed",
        time: str | None = None,
    ) -> dict[str, Any]:
        """Write one entry, chained to the last one, and return it."""
        with self.db.write() as con:
            return self.append_in(
                con, user=user, role=role, action=action, person_ids=person_ids,
                neighbourhood=neighbourhood, month=month, model_version=model_version,
                outcome=outcome, time=time,
            )  # fmt: skip

    def append_in(self, con: Any, **fields: Any) -> dict[str, Any]:
        """`append` inside the caller's transaction (a review and its entry commit together)."""
        fields = {"neighbourhood": None, "month": None, "model_version": None,
                  "outcome": "allowed", "time": None, **fields}  # fmt: skip
        if fields["outcome"] not in OUTCOMES:
            raise ValueError(f"audit outcome must be one of {', '.join(OUTCOMES)}")
        head = con.execute(select(audit_head).where(audit_head.c.id == 1).with_for_update()).one()
        seq, prev = int(head.seq), str(head.hash)
        entry: dict[str, Any] = {
            "seq": seq + 1,
            "time": fields.pop("time") or datetime.now(UTC).isoformat(timespec="milliseconds"),
            **fields,
            "month": None if fields["month"] is None else str(fields["month"]),
            "person_ids": [str(p) for p in fields["person_ids"]],
            "prev": prev,
        }
        entry["hash"] = digest(entry, self.key)
        con.execute(
            insert(audit).values(**{**entry, "person_ids": json.dumps(entry["person_ids"])})
        )
        con.execute(
            update(audit_head)
            .where(audit_head.c.id == 1)
            .values(seq=entry["seq"], hash=entry["hash"])
        )
        return entry

    def entries(
        self,
        *,
        person: str | None = None,
        user: str | None = None,
        since: str | None = None,
        action: str | None = None,
    ) -> list[dict[str, Any]]:
        """Entries in order, optionally only those naming `person`, by `user`, at or after
        `since` (an ISO date or time, UTC) or whose action is or starts with `action`."""
        query = select(audit).order_by(audit.c.seq)
        if user is not None:
            query = query.where(audit.c.user == user)
        if since is not None:
            query = query.where(audit.c.time >= since)
        if action is not None:
            query = query.where((audit.c.action == action) | audit.c.action.like(f"{action}.%"))
        if person is not None:  # a JSON list of strings: match the quoted id, then check exactly
            query = query.where(audit.c.person_ids.contains(json.dumps(person)))
        with self.db.read() as con:
            rows = [_entry(r) for r in con.execute(query)]
        return [e for e in rows if person is None or person in e["person_ids"]]

    def head(self) -> tuple[int, str]:
        with self.db.read() as con:
            row = con.execute(select(audit_head).where(audit_head.c.id == 1)).first()
        return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))


@dataclass(frozen=True)
class Verification:
    """What `verify` found: ok, number of entries, the head, and the first problem if any."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: str | None = None


def _problem(entry: dict[str, Any], seq: int, prev: str, key: bytes) -> str | None:
    if entry["seq"] != seq + 1:
        return f"seq {entry['seq']}, expected {seq + 1}"
    if entry["prev"] != prev:
        return "does not follow the entry before"
    if not hmac.compare_digest(digest(entry, key), entry["hash"]):
        return "content was changed (or written without the key)"
    return None


def verify(log: AuditLog) -> Verification:
    """Check every entry's keyed hash, its link to the one before and the head row; report the
    first break."""
    prev, seq = GENESIS, 0
    for entry in log.entries():
        problem = _problem(entry, seq, prev, log.key)
        if problem:
            return Verification(False, seq, seq, prev, f"entry {entry['seq']}: {problem}")
        prev, seq = entry["hash"], entry["seq"]
    head_seq, head_hash = log.head()
    if (head_seq, head_hash) != (seq, prev):
        return Verification(
            False, seq, seq, prev,
            f"the head row names entry {head_seq}, the chain ends at {seq}: entries were removed",
        )  # fmt: skip
    return Verification(True, seq, seq, prev)


# --- the audit.log file of homes made before the database ------------------------------------

FILE_FIELDS = tuple(f for f in FIELDS if f != "outcome")


def read_file_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a pre-database `audit.log` (JSON lines, unkeyed SHA-256 chain) once its
    chain checks; ValueError naming the first bad line (a torn last line is reported too)."""
    prev, out = GENESIS, []
    with Path(path).open(encoding="utf-8") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                entry = json.loads(raw)
                body = {k: entry[k] for k in FILE_FIELDS}
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"{Path(path).name} line {number}: not an audit entry") from None
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
            if entry.get("prev") != prev or hashlib.sha256(canonical.encode()).hexdigest() != (
                entry.get("hash")
            ):
                raise ValueError(f"{Path(path).name} line {number}: the chain is broken")
            prev = entry["hash"]
            out.append(entry)
    return out
