"""Whole-file errors stop the load with an `ExtractError` naming the file and the problem, and
never quoting row contents (health data stays out of messages)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from extract_builder import valid_rows, write_extract

from records import ExtractError, load_extract

# Values in the builder's rows that must never appear in a whole-file error message.
PERSONAL = ("P001", "P002", "1940-03-01", "1950-06-15", "E01000001", "38341003", "North")


def _load_error(folder: Path) -> str:
    with pytest.raises(ExtractError) as info:
        load_extract(folder)
    message = str(info.value)
    for value in PERSONAL:
        assert value not in message, f"{value!r} leaked into: {message}"
    return message


def _append_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes() + data)


def test_folder_that_does_not_exist(tmp_path: Path) -> None:
    assert _load_error(tmp_path / "nope") == f"{tmp_path / 'nope'}: not a folder"


def test_missing_manifest(tmp_path: Path) -> None:
    write_extract(tmp_path)
    (tmp_path / "manifest.json").unlink()
    assert _load_error(tmp_path).startswith("manifest.json: missing from")


def test_bad_manifest_json(tmp_path: Path) -> None:
    write_extract(tmp_path)
    (tmp_path / "manifest.json").write_text('{"extract_date": "2026-10-31",}')
    assert _load_error(tmp_path) == "manifest.json: not valid JSON (line 1, column 31)"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_table_file(tmp_path: Path, fmt: str) -> None:
    write_extract(tmp_path, fmt=fmt)
    (tmp_path / f"caseloads.{fmt}").unlink()
    assert _load_error(tmp_path) == (
        "caseloads.parquet / caseloads.csv: missing file for table 'caseloads'"
    )


def test_both_csv_and_parquet_for_one_table(tmp_path: Path) -> None:
    write_extract(tmp_path)
    write_extract(tmp_path / "pq", fmt="parquet")
    (tmp_path / "pq" / "social_care.parquet").rename(tmp_path / "social_care.parquet")
    assert _load_error(tmp_path) == (
        "social_care.parquet, social_care.csv: both present; keep one file per table"
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_required_column_names_file_and_column(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    for row in rows["hospital_spells"]:
        del row["admission_method"]
    write_extract(tmp_path, rows, fmt=fmt)
    assert _load_error(tmp_path) == (
        f"hospital_spells.{fmt}: missing required column 'admission_method'"
    )


def test_several_missing_required_columns_are_all_named(tmp_path: Path) -> None:
    rows = valid_rows()
    for row in rows["people"]:
        del row["sex"], row["neighbourhood"]
    write_extract(tmp_path, rows)
    assert _load_error(tmp_path) == "people.csv: missing required columns 'sex', 'neighbourhood'"


def test_missing_column_is_found_before_any_table_loads(tmp_path: Path) -> None:
    """The headers of every file are checked first: a late table's problem wastes no load."""
    rows = valid_rows()
    for row in rows["caseloads"]:
        del row["caseload"]
    write_extract(tmp_path, rows)
    _append_bytes(tmp_path / "gp_events.csv", b"P001,2024-01-01\n")  # ragged, but read later
    assert _load_error(tmp_path) == "caseloads.csv: missing required column 'caseload'"


def test_duplicate_column_name(tmp_path: Path) -> None:
    write_extract(tmp_path)
    path = tmp_path / "gp_events.csv"
    path.write_text(path.read_text().replace("value", "SNOMED_code", 1))
    assert _load_error(tmp_path) == "gp_events.csv: column 'SNOMED_code' appears more than once"


def test_empty_csv_file(tmp_path: Path) -> None:
    write_extract(tmp_path)
    (tmp_path / "prescriptions.csv").write_bytes(b"")
    assert _load_error(tmp_path) == "prescriptions.csv: empty file (no header row)"


def test_header_only_csv_is_an_empty_table_not_an_error(tmp_path: Path) -> None:
    write_extract(tmp_path)
    path = tmp_path / "mental_health_contacts.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    report = load_extract(tmp_path).reports["mental_health_contacts"]
    assert (report.read, report.loaded, report.rejected) == (0, 0, 0)


def test_header_row_without_an_end_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    """A "header" with no newline in the first 64 KiB is not a header (read with a bound)."""
    write_extract(tmp_path)
    (tmp_path / "gp_events.csv").write_bytes(b"person_id," + b"x" * 200_000)
    assert _load_error(tmp_path) == (
        "gp_events.csv: the header row is longer than 65,536 bytes "
        "(is this a CSV file with a header row?)"
    )


def test_header_not_utf8(tmp_path: Path) -> None:
    write_extract(tmp_path)
    path = tmp_path / "gp_events.csv"
    path.write_bytes(
        b"person_id,event_date,snomed_code,v\xe9lue\n" + b"P001,2024-01-01,38341003,\n"
    )
    assert _load_error(tmp_path) == "gp_events.csv: unreadable file (header row is not UTF-8)"


@pytest.mark.parametrize("table", ["people", "gp_events"])
def test_data_row_not_utf8_names_its_line(tmp_path: Path, table: str) -> None:
    """Regression: a bad byte in a data row of a small file was blamed on the header row."""
    rows = valid_rows()
    write_extract(tmp_path, rows)
    line = len(rows[table]) + 2  # header is line 1
    row = b"P001,1940-03-01,2,A,E01000001,3,P88001,North\xe9,,,,N\n"
    if table == "gp_events":
        row = b"P001,2024-01-01,38341003,1\xff\n"
    _append_bytes(tmp_path / f"{table}.csv", row)
    assert _load_error(tmp_path) == f"{table}.csv: unreadable file (line {line}: not UTF-8)"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (b"P001,2024-01-01,38341003,1,extra\n", "expected 4 columns, found 5"),
        (b"P001,2024-01-01\n", "expected 4 columns, found 2"),
        (b'P001,"2024-01-01,38341003,1\n', "unterminated quote"),
    ],
    ids=["too-many-fields", "too-few-fields", "unterminated-quote"],
)
def test_ragged_csv_names_its_line(tmp_path: Path, row: bytes, problem: str) -> None:
    write_extract(tmp_path)
    _append_bytes(tmp_path / "gp_events.csv", row)
    assert _load_error(tmp_path) == f"gp_events.csv: unreadable file (line 4: {problem})"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "too small to be a Parquet file"),
        (b"PAR1" + b"\x00" * 64 + b"PAR1", "Footer"),
        (b"person_id,event_date\nP001,2024-01-01\n", "too small|magic|not a parquet|Parquet"),
    ],
    ids=["empty", "bad-footer", "csv-named-parquet"],
)
def test_unreadable_parquet(tmp_path: Path, content: bytes, problem: str) -> None:
    write_extract(tmp_path, fmt="parquet")
    (tmp_path / "gp_events.parquet").write_bytes(content)
    message = _load_error(tmp_path)
    assert message.startswith("gp_events.parquet: unreadable file (")
    assert re.search(problem, message, flags=re.IGNORECASE), message
    assert str(tmp_path) not in message


def test_damaged_parquet_pages(tmp_path: Path) -> None:
    """A file with a good footer but scrambled data pages fails as a whole-file error."""
    write_extract(tmp_path, fmt="parquet")
    rows = valid_rows()["people"] * 50
    table = pa.table({k: [r[k] or None for r in rows] for k in rows[0]})
    path = tmp_path / "people.parquet"
    pq.write_table(table, path, compression="snappy")
    data = bytearray(path.read_bytes())
    for i in range(8, len(data) // 2):
        data[i] = (data[i] * 31 + 7) % 256
    path.write_bytes(bytes(data))
    message = _load_error(tmp_path)
    assert message.startswith("people.parquet: unreadable file ("), message


def test_blank_lines_in_csv_are_not_rows(tmp_path: Path) -> None:
    write_extract(tmp_path)
    path = tmp_path / "gp_events.csv"
    path.write_text(path.read_text().replace("\n", "\n\n", 2) + "\n\n")
    loaded = load_extract(tmp_path)
    assert (loaded.reports["gp_events"].read, loaded.n_rejected) == (2, 0)


def test_semicolon_separated_csv_is_missing_its_columns(tmp_path: Path) -> None:
    write_extract(tmp_path)
    path = tmp_path / "gp_events.csv"
    path.write_text(path.read_text().replace(",", ";"))
    assert _load_error(tmp_path) == (
        "gp_events.csv: missing required columns 'person_id', 'event_date', 'snomed_code'"
    )


def test_csv_problem_names_the_line_a_strict_read_refuses_and_passes_a_real_u_fffd(
    tmp_path: Path,
) -> None:
    """What another engine asks when it finds a file malformed (records.spark): the loader's own
    words, and no problem for a UTF-8 file that holds U+FFFD itself."""
    from records.contract import TABLES
    from records.loader import _Source, csv_problem

    write_extract(tmp_path)
    path = tmp_path / "gp_events.csv"
    header = path.read_text().splitlines()[0].split(",")
    source = _Source(TABLES["gp_events"], path, "csv", tuple((n, "VARCHAR") for n in header))
    assert csv_problem(source) is None
    _append_bytes(path, "P001,2024-01-01,38341003,\ufffd\n".encode())
    assert csv_problem(source) is None  # valid UTF-8: the column rules judge the value
    _append_bytes(path, b"P001,2024-01-01,38341003,1\xff\n")
    assert csv_problem(source) == "line 5: not UTF-8"


def test_of_several_unreadable_tables_the_first_in_contract_order_is_named(tmp_path: Path) -> None:
    # Tables after people load two at a time, the largest file first; the error is still the
    # one a table-by-table load would meet first.
    write_extract(tmp_path)
    _append_bytes(tmp_path / "caseloads.csv", b"P001\n")
    _append_bytes(tmp_path / "gp_events.csv", b"P001,2024-01-01\n")
    _append_bytes(tmp_path / "caseloads.csv", b"x" * 100_000 + b"\n")  # the larger file
    assert _load_error(tmp_path).startswith("gp_events.csv: unreadable file (line 4")
