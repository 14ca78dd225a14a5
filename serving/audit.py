"""The audit log of access to person-level data: append-only JSON lines in a hash chain.

Each line is one access: `seq`, `time` (UTC), `user`, `role`, `action`, `neighbourhood`, `month`,
`person_ids`, `model_version`, `prev` (the previous line's `hash`) and `hash` = SHA-256 of the
line's canonical JSON without `hash`. Editing, deleting or reordering any line breaks the chain
from there on, which `verify` reports. Removing lines from the end is detectable only against a
head recorded elsewhere: `verify` returns the head (last seq and hash) so it can be kept.

Appends take an exclusive lock, so several workers can share one log.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
FIELDS = (
    "seq",
    "time",
    "user",
    "role",
    "action",
    "neighbourhood",
    "month",
    "person_ids",
    "model_version",
    "prev",
)


def _digest(entry: dict[str, Any]) -> str:
    body = {k: entry[k] for k in FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _last_line(fd: int) -> bytes | None:
    """The last complete line of the open file, read backwards from the end."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    chunk = 4096
    data = b""
    pos = size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        os.lseek(fd, pos, os.SEEK_SET)
        data = os.read(fd, step) + data
        lines = data.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or pos == 0:
            return lines[-1]
    return None


class AuditLog:
    """Append one entry per access to person-level data; nothing else is ever written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

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
    ) -> dict[str, Any]:
        """Write one entry, chained to the last one, and return it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_line(fd)
            if last is None:
                seq, prev = 1, GENESIS
            else:
                tail = json.loads(last)
                seq, prev = int(tail["seq"]) + 1, str(tail["hash"])
            entry: dict[str, Any] = {
                "seq": seq,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "user": user,
                "role": role,
                "action": action,
                "neighbourhood": neighbourhood,
                "month": month,
                "person_ids": [str(p) for p in person_ids],
                "model_version": model_version,
                "prev": prev,
            }
            entry["hash"] = _digest(entry)
            line = json.dumps(entry, separators=(",", ":"), ensure_ascii=True) + "\n"
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
            return entry
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, in order (no checking; use `verify` for that)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]


@dataclass(frozen=True)
class Verification:
    """What `verify` found: ok, number of entries, the head, and the first problem if any."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: str | None = None


def _problem(raw: str, seq: int, prev: str) -> str | None:
    """What is wrong with one line, given the seq and hash of the line before, or None."""
    if not raw.strip():
        return "blank line"
    try:
        entry = json.loads(raw)
    except json.JSONDecodeError:
        return "not JSON"
    if not isinstance(entry, dict):
        return "not a JSON object"
    keys = {*FIELDS, "hash"}
    if missing := sorted(keys - set(entry)):
        return f"missing {', '.join(missing)}"
    if extra := sorted(set(entry) - keys):
        return f"unexpected {', '.join(extra)}"
    if entry["seq"] != seq + 1:
        return f"seq {entry['seq']}, expected {seq + 1}"
    if entry["prev"] != prev:
        return "does not follow the line before"
    if _digest(entry) != entry["hash"]:
        return "content was changed"
    return None


def verify(path: Path) -> Verification:
    """Check every line's hash and its link to the line before; report the first break."""
    prev, seq = GENESIS, 0
    path = Path(path)
    if not path.exists():
        return Verification(True, 0, 0, GENESIS)
    with path.open(encoding="utf-8") as lines:
        for number, raw in enumerate(lines, start=1):
            problem = _problem(raw, seq, prev)
            if problem:
                return Verification(False, seq, seq, prev, f"line {number}: {problem}")
            entry = json.loads(raw)
            prev, seq = entry["hash"], entry["seq"]
    return Verification(True, seq, seq, prev)
