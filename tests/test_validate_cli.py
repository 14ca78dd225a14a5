"""`casefinder validate`: exit 0 when every row loads, 1 when rows are rejected, 2 when the
extract is unusable (message on stderr); per-table counts, top reasons and `--rejects`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from extract_builder import add_row, valid_rows, write_extract
from typer.testing import CliRunner

from casefinder.cli import app
from records.contract import TABLES

CASEFINDER = Path(sys.executable).parent / "casefinder"
PERSONAL = ("P001", "P002", "1940-03-01", "1950-06-15", "E01000001", "38341003", "North")


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["validate", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _flat(text: str) -> str:
    """Output with line wrapping undone (rich wraps to the terminal width)."""
    return " ".join(text.split())


def _counts(stdout: str) -> dict[str, tuple[int, int, int]]:
    """Per-table (read, loaded, rejected) from the printed 'Rows per table'."""
    counts = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 5 and (cells[0] in TABLES or cells[0] == "total"):
            counts[cells[0]] = tuple(int(c.replace(",", "")) for c in cells[1:4])
    return counts


def _reasons(stdout: str) -> list[tuple[str, str, int]]:
    """(table, reason, rows) lines from the printed 'Top reject reasons'."""
    out = []
    for line in stdout.split("Top reject reasons", 1)[-1].splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 3 and cells[0] in TABLES:
            out.append((cells[0], cells[1], int(cells[2].replace(",", ""))))
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_clean_extract_exits_0_and_prints_counts_per_table(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    code, stdout, stderr = _run(str(write_extract(tmp_path, rows, fmt=fmt)))
    assert code == 0, stderr
    counts = _counts(stdout)
    assert counts == {
        **{name: (len(rows[name]), len(rows[name]), 0) for name in TABLES},
        "total": (21, 21, 0),
    }
    assert "No rows rejected." in stdout
    assert f"{fmt} files" in _flat(stdout)
    assert stderr == ""


def test_rejected_rows_exit_1_with_counts_and_top_reasons(tmp_path: Path) -> None:
    rows = valid_rows()
    for day in range(1, 4):
        add_row(
            rows, "outpatient_appointments", attendance="DNA", appointment_date=f"2024-04-0{day}"
        )
    add_row(rows, "hospital_spells", spell_id="S9", discharge_date="2024-01-01")
    add_row(rows, "gp_events", person_id="P999")
    add_row(rows, "gp_events", person_id="P998")
    code, stdout, _ = _run(str(write_extract(tmp_path, rows)))
    assert code == 1
    counts = _counts(stdout)
    assert counts["outpatient_appointments"] == (5, 2, 3)
    assert counts["hospital_spells"] == (3, 2, 1)
    assert counts["gp_events"] == (4, 2, 2)
    assert counts["people"] == (3, 3, 0)
    assert counts["total"] == (27, 21, 6)
    assert _reasons(stdout) == [
        ("outpatient_appointments", "value not allowed in attendance", 3),
        ("gp_events", "unknown person_id", 2),
        ("hospital_spells", "discharge_date before admission_date", 1),
    ]
    assert "Top reject reasons (3 distinct)" in stdout


def test_only_the_ten_commonest_reasons_are_printed(tmp_path: Path) -> None:
    rows = valid_rows()
    bad = {"sex": "F", "ethnic_category": "a", "lsoa_code": "x", "imd_decile": "0",
           "gp_practice_code": "x", "neighbourhood": "", "birth_date": "x",
           "registration_start": "x", "registration_end": "x", "date_of_death": "x",
           "data_opt_out": "x"}  # fmt: skip
    for i, (column, value) in enumerate(bad.items()):
        for j in range(i + 1):
            add_row(rows, "people", person_id=f"Q{i}-{j}", **{column: value})
    code, stdout, _ = _run(str(write_extract(tmp_path, rows)))
    assert code == 1
    reasons = _reasons(stdout)
    assert "Top reject reasons (11 distinct)" in stdout
    assert [n for *_, n in reasons] == list(range(11, 1, -1))
    assert ("people", "value not allowed in sex", 1) not in reasons


def test_rejects_option_writes_every_rejected_row(tmp_path: Path) -> None:
    rows = valid_rows()
    spell = add_row(rows, "hospital_spells", spell_id="S9", admission_method="2a")
    person = add_row(rows, "people", person_id="P100", imd_decile="12")
    event = add_row(rows, "gp_events", event_date="2027-01-01")
    out = tmp_path / "out" / "nested"
    code, stdout, _ = _run(str(write_extract(tmp_path / "x", rows)), "--rejects", str(out))
    assert code == 1
    assert f"Rejectedrowswrittento{out / 'rejects.csv'}" in "".join(stdout.split())
    with (out / "rejects.csv").open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [(r["table"], int(r["row_number"]), r["reason"]) for r in written] == [
        ("people", person, "value not allowed in imd_decile"),
        ("gp_events", event, "date after extract_date in event_date"),
        ("hospital_spells", spell, "value not allowed in admission_method"),
    ]
    assert list(written[0]) == ["table", "row_number", "reason", "record"]
    assert json.loads(written[2]["record"])["admission_method"] == "2a"
    assert json.loads(written[0]["record"])["person_id"] == "P100"


def test_rejects_option_on_a_clean_extract_writes_a_header_only_file(tmp_path: Path) -> None:
    code, _, _ = _run(str(write_extract(tmp_path / "x")), "--rejects", str(tmp_path / "r"))
    assert code == 0
    assert (tmp_path / "r" / "rejects.csv").read_text().splitlines() == [
        "table,row_number,reason,record"
    ]


def _drop_file(folder: Path) -> None:
    (folder / "gp_events.csv").unlink()


def _drop_column(folder: Path) -> None:
    path = folder / "people.csv"
    path.write_text(path.read_text().replace("birth_date", "dob", 1))


def _ragged(folder: Path) -> None:
    path = folder / "prescriptions.csv"
    path.write_text(path.read_text() + "P001,2024-02-01,0212000B0AAABAB,28,1940-03-01\n")


def _bad_utf8(folder: Path) -> None:
    path = folder / "people.csv"
    path.write_bytes(path.read_bytes() + b"P009,1940-03-01,1,A,E01000001,3,P88001,N\xe9,,,,N\n")


def _empty(folder: Path) -> None:
    (folder / "caseloads.csv").write_text("")


def _corrupt_parquet(folder: Path) -> None:
    (folder / "caseloads.csv").unlink()
    (folder / "caseloads.parquet").write_bytes(b"PAR1 not really parquet PAR1")


def _manifest(text: str):
    def write(folder: Path) -> None:
        (folder / "manifest.json").write_text(text)

    return write


def _no_manifest(folder: Path) -> None:
    (folder / "manifest.json").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_drop_file, "gp_events.parquet / gp_events.csv: missing file for table 'gp_events'"),
        (_drop_column, "people.csv: missing required column 'birth_date'"),
        (_ragged, "prescriptions.csv: unreadable file (line 4: expected 4 columns, found 5)"),
        (_bad_utf8, "people.csv: unreadable file (line 5: not UTF-8)"),
        (_empty, "caseloads.csv: empty file (no header row)"),
        (_corrupt_parquet, "caseloads.parquet: unreadable file ("),
        (_no_manifest, "manifest.json: missing from"),
        (_manifest("{"), "manifest.json: not valid JSON (line 1, column 2)"),
        (_manifest('{"extract_date": "2026-13-01"}'), "manifest.json: extract_date is not a valid"),
        (
            _manifest('{"extract_date": "2026-10-31", "complete_to": {"gp_events": "2026-11-30"}}'),
            "manifest.json: complete_to['gp_events'] 2026-11-30 is after extract_date 2026-10-31",
        ),
        (
            _manifest('{"extract_date": "2026-10-31", "complete_to": {"gp": "2026-10-30"}}'),
            "manifest.json: complete_to names unknown table 'gp'",
        ),
    ],
    ids=[
        "missing-file",
        "missing-column",
        "ragged-csv",
        "bad-utf8",
        "empty-file",
        "corrupt-parquet",
        "no-manifest",
        "bad-json",
        "bad-date",
        "complete-to-late",
        "unknown-table",
    ],
)
def test_unusable_extract_exits_2_with_the_problem_on_stderr(
    tmp_path: Path, damage, message: str
) -> None:
    folder = write_extract(tmp_path / "x")
    damage(folder)
    code, stdout, stderr = _run(str(folder))
    assert code == 2
    flat = _flat(stderr)
    assert flat.startswith("Extract unusable: ")
    assert message in flat
    assert "Rows per table" not in stdout
    for value in PERSONAL:
        assert value not in stderr
        assert value not in stdout


def test_not_a_folder_exits_2(tmp_path: Path) -> None:
    code, _, stderr = _run(str(tmp_path / "missing"))
    assert code == 2
    assert _flat(stderr).endswith("not a folder")


def test_real_process_exit_codes_and_streams(tmp_path: Path) -> None:
    """The installed console script, as a user runs it."""
    rows = valid_rows()
    clean = write_extract(tmp_path / "clean", rows, fmt="parquet", typed=True)
    add_row(rows, "caseloads", caseload="MDT")
    dirty = write_extract(tmp_path / "dirty", rows, fmt="parquet", typed=True)
    broken = write_extract(tmp_path / "broken")
    (broken / "people.csv").write_text("person_id,sex\nP001,1\n")
    env = {"COLUMNS": "120", "PATH": str(CASEFINDER.parent), "HOME": str(tmp_path)}

    def run(folder: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CASEFINDER), "validate", str(folder)],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip

    ok, rejected, unusable = run(clean), run(dirty), run(broken)
    assert (ok.returncode, rejected.returncode, unusable.returncode) == (0, 1, 2)
    assert _counts(ok.stdout)["total"] == (21, 21, 0)
    assert _counts(rejected.stdout)["caseloads"] == (3, 2, 1)
    assert _reasons(rejected.stdout) == [("caseloads", "value not allowed in caseload", 1)]
    assert _flat(unusable.stderr) == (
        "Extract unusable: people.csv: missing required columns 'birth_date', 'imd_decile', "
        "'gp_practice_code', 'neighbourhood'"
    )
    assert unusable.stdout.strip() == "" or "Rows per table" not in unusable.stdout
