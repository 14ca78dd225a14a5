"""The audit log: hash-chained JSON lines; any edit, deletion or reordering is detected."""

from __future__ import annotations

import itertools
import json
import multiprocessing

from typer.testing import CliRunner

from casefinder.cli import app as cli
from serving.audit import GENESIS, AuditLog, verify


def _fill(path, n=5):
    log = AuditLog(path)
    for i in range(n):
        log.append(
            user="ann",
            role="clinician",
            action="person",
            person_ids=[f"P{i:04d}"],
            neighbourhood="N01",
            month="2026-10",
            model_version="3",
        )
    return log


def test_entries_chain(tmp_path):
    log = _fill(tmp_path / "audit.log")
    entries = log.entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert entries[2]["person_ids"] == ["P0002"]
    result = verify(tmp_path / "audit.log")
    assert result.ok and result.entries == 5 and result.head_hash == entries[-1]["hash"]


def _rewrite(path, change):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(change(lines)))


def test_edit_is_detected(tmp_path):
    path = tmp_path / "audit.log"
    _fill(path)

    def edit(lines):
        entry = json.loads(lines[2])
        entry["person_ids"] = ["P9999"]
        lines[2] = json.dumps(entry, separators=(",", ":")) + "\n"
        return lines

    _rewrite(path, edit)
    result = verify(path)
    assert not result.ok and result.problem == "line 3: content was changed"


def test_deletion_and_reorder_are_detected(tmp_path):
    path = tmp_path / "audit.log"
    _fill(path)
    _rewrite(path, lambda lines: lines[:1] + lines[2:])
    assert verify(path).problem.startswith("line 2: seq 3")
    path.unlink()
    _fill(path)
    _rewrite(path, lambda lines: [lines[1], lines[0], *lines[2:]])
    assert not verify(path).ok


def test_rehashing_one_line_still_breaks_the_next(tmp_path):
    """Recomputing an edited line's own hash does not help: the next line points at the old one."""
    from serving.audit import _digest

    path = tmp_path / "audit.log"
    _fill(path)

    def forge(lines):
        entry = json.loads(lines[1])
        entry["user"] = "someone else"
        entry["hash"] = _digest(entry)
        lines[1] = json.dumps(entry, separators=(",", ":")) + "\n"
        return lines

    _rewrite(path, forge)
    assert verify(path).problem == "line 3: does not follow the line before"


def _append_many(path, worker):
    log = AuditLog(path)
    for i in range(25):
        log.append(user=f"w{worker}", role="team", action="list", person_ids=[str(i)])


def test_concurrent_appends_keep_the_chain(tmp_path):
    path = tmp_path / "audit.log"
    procs = [multiprocessing.Process(target=_append_many, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    result = verify(path)
    assert result.ok and result.entries == 100


def test_verify_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path))
    runner = CliRunner()
    _fill(tmp_path / "audit.log", 3)
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 entries" in ok.output
    head = verify(tmp_path / "audit.log").head_hash
    assert runner.invoke(cli, ["audit", "verify", "--expect-head", head]).exit_code == 0
    _rewrite(tmp_path / "audit.log", lambda lines: lines[:-1])
    truncated = runner.invoke(cli, ["audit", "verify", "--expect-head", head])
    assert truncated.exit_code == 1 and "removed" in truncated.output
    _rewrite(tmp_path / "audit.log", lambda lines: [lines[0].replace("ann", "bob"), *lines[1:]])
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1 and "line 1" in broken.output
