"""`casefinder db import-home`: a home's `users.json` and `audit.log`, from before the state
database, imported once. Users keep their token hashes (their tokens go on working); the audit
log's old SHA-256 chain is checked first, then each entry is re-chained under the audit key, in
order and with its original time, followed by one `db.import_home` entry naming the old head."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import insert, select

from config.db.schema import imports
from config.settings import Settings
from serving.audit import AuditLog, read_file_log
from serving.users import User, UserError, UserStore

KIND = "home"


class HomeImportError(RuntimeError):
    """The home cannot be imported (already imported, a broken file)."""


def import_home(settings: Settings) -> list[str]:
    """Import the home's files once; return what was done, line by line."""
    log = AuditLog.of(settings)
    users_path, audit_path = settings.serving.users_path(settings.home), settings.audit_log
    with log.db.read() as con:
        done = con.execute(select(imports).where(imports.c.kind == KIND)).first()
    if done is not None:
        raise HomeImportError(
            f"this home was already imported into the database on {done.done} ({done.rows} rows); "
            "importing again would duplicate users and audit entries"
        )
    if not users_path.exists() and not audit_path.exists():
        raise HomeImportError("the home has no users.json or audit.log to import")
    try:
        old_users = (
            [User(**u) for u in json.loads(users_path.read_text())["users"]]
            if users_path.exists()
            else []
        )
        entries = read_file_log(audit_path) if audit_path.exists() else []
    except (ValueError, KeyError, TypeError) as exc:
        raise HomeImportError(f"not imported: {exc}") from None
    store = UserStore(log.db)
    known = {u.token_sha256 for u in store.users()}
    added = 0
    for user in old_users:
        if user.token_sha256 in known:
            continue
        try:
            store.add(
                user.name, user.role, user.neighbourhood, token_sha256=user.token_sha256,
                created=user.created, revoked=user.revoked,
            )  # fmt: skip
        except UserError as exc:
            raise HomeImportError(f"user {user.name!r} not imported: {exc}") from None
        added += 1
    for entry in entries:
        log.append(
            user=entry["user"], role=entry["role"], action=entry["action"],
            person_ids=entry["person_ids"], neighbourhood=entry["neighbourhood"],
            month=entry["month"], model_version=entry["model_version"], time=entry["time"],
        )  # fmt: skip
    old_head = entries[-1]["hash"] if entries else "none"
    log.append(
        user="casefinder", role="data_scientist", action="db.import_home", person_ids=[],
        model_version=None, month=None, neighbourhood=None,
    )  # fmt: skip
    with log.db.write() as con:
        con.execute(
            insert(imports).values(
                kind=KIND, source=f"users.json, audit.log (old head {old_head})",
                rows=added + len(entries), done=datetime.now(UTC).isoformat(timespec="seconds"),
            )
        )  # fmt: skip
    return [
        f"Imported {added} user(s) from {users_path.name} and {len(entries)} audit entries from "
        f"{audit_path.name} (its chain checked; old head {old_head}).",
        "The old files are no longer read; keep them with the old head, or remove them.",
    ]
