"""The audit log in the state database: a keyed hash chain (HMAC-SHA256, key apart from the log);
edits, deletions, re-chained rewrites and truncation are detected; concurrent writers keep one
chain. Every test runs against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from casefinder.cli import app as cli
from config.db import Database
from config.db.schema import audit, audit_head
from serving.audit import FIELDS, GENESIS, AuditLog, digest, load_key, verify
from tests.audit_writers import append_many

KEY = b"k" * 64


def _fill(log: AuditLog, n: int = 5) -> AuditLog:
    for i in range(n):
        log.append(
            user="ann", role="clinician", action="api.person", person_ids=[f"P{i:04d}"],
            neighbourhood="N01", month="2026-10", model_version="3",
        )  # fmt: skip
    return log


@pytest.fixture
def log(database_url) -> AuditLog:
    return AuditLog(Database(database_url), KEY)


def test_entries_chain_under_the_key(log):
    entries = _fill(log).entries()
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert entries[2]["person_ids"] == ["P0002"] and entries[2]["outcome"] == "allowed"
    assert entries[0]["hash"] == digest(entries[0], KEY) != digest(entries[0], b"x" * 64)
    result = verify(log)
    assert result.ok and result.entries == 5 and result.head_hash == entries[-1]["hash"]


def test_an_edit_is_detected(log):
    _fill(log)
    with log.db.write() as con:
        con.execute(update(audit).where(audit.c.seq == 3).values(person_ids='["P9999"]'))
    result = verify(log)
    assert not result.ok and result.problem.startswith("entry 3: content was changed")


def _rechain(log: AuditLog, sign) -> None:
    """What an attacker with database access but not the key does: delete an entry and
    re-chain everything after it with `sign` (any hash they can compute)."""
    with log.db.write() as con:
        con.execute(delete(audit).where(audit.c.seq == 2))
        rows = [dict(r._mapping) for r in con.execute(select(audit).order_by(audit.c.seq))]
        con.execute(delete(audit))
        prev = GENESIS
        for seq, row in enumerate(rows, start=1):
            row.update(seq=seq, prev=prev)
            row["hash"] = sign({**row, "person_ids": json.loads(row["person_ids"])})
            con.execute(audit.insert().values(**row))
            prev = row["hash"]
        con.execute(update(audit_head).values(seq=len(rows), hash=prev))


def _sha256(entry):
    body = json.dumps({k: entry[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@pytest.mark.parametrize("sign", [_sha256, lambda e: digest(e, b"guessed-key" * 4)])
def test_a_deleted_and_rechained_log_is_detected_without_the_key(log, sign):
    _fill(log)
    _rechain(log, sign)
    result = verify(log)
    assert not result.ok and result.problem.startswith("entry 1: content was changed")


def test_removing_the_last_entries_is_detected_by_the_head(log):
    _fill(log)
    with log.db.write() as con:
        con.execute(delete(audit).where(audit.c.seq >= 4))
    result = verify(log)
    assert not result.ok and "entries were removed" in result.problem


def test_a_refusal_is_recorded_with_its_outcome_and_bad_outcomes_are_refused(log):
    log.append(
        user="bob", role="clinician", action="api.person.refused", person_ids=["P7"],
        month="2026-10", outcome="refused",
    )  # fmt: skip
    assert log.entries(person="P7")[0]["outcome"] == "refused"
    with pytest.raises(ValueError, match="outcome"):
        log.append(user="b", role="team", action="x", person_ids=[], outcome="maybe")


def test_concurrent_appends_keep_one_chain(log):
    log.append(user="first", role="team", action="api.list", person_ids=[])
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=append_many, args=(log.db.url, KEY, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    result = verify(log)
    assert result.ok and result.entries == 76


def test_filters_select_entries(log):
    _fill(log, 3)
    log.append(user="bob", role="team", action="page.list", person_ids=["P0001", "P0100"])
    assert [e["seq"] for e in log.entries(person="P0001")] == [2, 4]
    assert [e["seq"] for e in log.entries(person="P000")] == []  # whole ids only
    assert [e["user"] for e in log.entries(user="bob")] == ["bob"]
    assert len(log.entries(action="api")) == 3 and len(log.entries(action="page.list")) == 1
    assert len(log.entries(since="2000-01-01")) == 4 and log.entries(since="2999-01-01") == []


def test_the_key_file_is_private_and_made_once(tmp_path):
    key = load_key(tmp_path / "audit.key")
    assert (tmp_path / "audit.key").stat().st_mode & 0o777 == 0o600
    assert load_key(tmp_path / "audit.key") == key and len(key) == 64


def test_verify_and_show_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path))
    from config.settings import load_settings

    log = _fill(AuditLog.of(load_settings()), 3)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 entries" in ok.output
    head = verify(log).head_hash
    assert f"Head: seq 3 hash {head}\n" in ok.output  # one line, unwrapped
    assert runner.invoke(cli, ["audit", "verify", "--expect-head", head]).exit_code == 0
    shown = runner.invoke(cli, ["audit", "show", "--person", "P0001"])
    lines = [json.loads(x) for x in shown.output.splitlines()]
    assert [e["seq"] for e in lines] == [2] and lines[0]["user"] == "ann"
    assert runner.invoke(cli, ["audit", "show", "--since", "yesterday"]).exit_code == 2
    with log.db.write() as con:
        con.execute(update(audit).where(audit.c.seq == 1).values(user="bob"))
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1 and "entry 1" in broken.output


def _file_log(path, n=3):
    """A pre-database audit.log: JSON lines in an unkeyed SHA-256 chain."""
    prev, lines = GENESIS, []
    for i in range(n):
        entry = {
            "seq": i + 1, "time": f"2026-10-0{i + 1}T09:00:00.000+00:00", "user": "ann",
            "role": "clinician", "action": "api.person", "neighbourhood": "N01",
            "month": "2026-10", "person_ids": [f"P{i}"], "model_version": "1", "prev": prev,
        }  # fmt: skip
        body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        entry["hash"] = prev = hashlib.sha256(body.encode()).hexdigest()
        lines.append(json.dumps(entry) + "\n")
    path.write_text("".join(lines))


def test_import_home_once(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path))
    from config.settings import load_settings
    from serving.users import UserStore, hash_token

    _file_log(tmp_path / "audit.log")
    user = {"name": "ann", "role": "clinician", "neighbourhood": "N01",
            "token_sha256": hash_token("cf_old"), "created": "2026-09-01T00:00:00"}  # fmt: skip
    (tmp_path / "users.json").write_text(json.dumps({"users": [user]}))
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "import-home"])
    assert first.exit_code == 0, first.output
    assert "1 user(s)" in first.output and "3 audit entries" in first.output
    settings = load_settings()
    assert UserStore.of(settings).authenticate("cf_old").name == "ann"  # old tokens still work
    log = AuditLog.of(settings)
    entries = log.entries()
    assert [e["person_ids"] for e in entries[:3]] == [["P0"], ["P1"], ["P2"]]
    assert entries[0]["time"] == "2026-10-01T09:00:00.000+00:00"
    assert entries[-1]["action"] == "db.import_home" and verify(log).ok
    again = runner.invoke(cli, ["db", "import-home"])
    assert again.exit_code == 2 and "already imported" in again.output
    assert len(log.entries()) == 4


def test_import_home_refuses_a_broken_file_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path))
    _file_log(tmp_path / "audit.log")
    text = (tmp_path / "audit.log").read_text().replace('"P1"', '"P9"')
    (tmp_path / "audit.log").write_text(text)
    result = CliRunner().invoke(cli, ["db", "import-home"])
    assert result.exit_code == 2 and "line 2" in result.output
