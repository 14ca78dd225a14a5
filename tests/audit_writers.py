"""Audit writers for the concurrency tests, in a module light enough for spawned processes."""

from config.db import Database
from serving.audit import AuditLog


def append_many(url: str, key: bytes, worker: int, n: int = 25) -> None:
    log = AuditLog(Database(url), key)
    for i in range(n):
        log.append(user=f"w{worker}", role="team", action="api.list", person_ids=[str(i)])
