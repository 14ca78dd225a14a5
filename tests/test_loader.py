"""What the loader accepts and how it stores it: typed tables, accepted spellings, extra columns,
the rejects table, diagnoses, and the cascade from a rejected person to their records."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from extract_builder import add_row, valid_rows, write_extract

from records import load_extract
from records.contract import BOOL_FALSE, BOOL_TRUE, TABLES

FORMATS = {
    "csv": {"fmt": "csv"},
    "parquet-strings": {"fmt": "parquet"},
    "parquet-typed": {"fmt": "parquet", "typed": True},
}
DUCK_TYPES = {"string": "VARCHAR", "date": "DATE", "int": "INTEGER", "float": "DOUBLE",
              "bool": "BOOLEAN"}  # fmt: skip


@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_extract_loads_every_row_into_contract_typed_tables(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    assert loaded.n_rejected == 0
    for name, table in TABLES.items():
        report = loaded.reports[name]
        assert (report.read, report.loaded, report.rejected) == (len(rows[name]),) * 2 + (0,)
        assert report.source == tmp_path / f"{name}.{'csv' if fmt == 'csv' else 'parquet'}"
        schema = loaded.con.execute(f"DESCRIBE {name}").fetchall()
        assert [(r[0], r[1]) for r in schema] == [
            (c.name, DUCK_TYPES[c.type]) for c in table.columns
        ]
    people = loaded.con.execute(
        "SELECT person_id, birth_date, imd_decile, data_opt_out, date_of_death FROM people"
    ).fetchall()
    assert people == [
        ("P001", date(1940, 3, 1), 3, False, None),
        ("P002", date(1950, 6, 15), 7, False, date(2025, 1, 10)),
        ("P003", date(1935, 12, 1), 10, None, None),
    ]
    assert loaded.con.execute("SELECT value FROM gp_events").fetchall() == [(150.5,), (None,)]


@pytest.mark.parametrize("fmt", ["csv", "parquet-strings"])
def test_booleans_in_every_accepted_spelling(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    rows["ae_attendances"] = []
    spellings = [(s, True) for s in BOOL_TRUE] + [(s, False) for s in BOOL_FALSE]
    spellings = [(v, b) for s, b in spellings for v in (s, s.upper(), s.capitalize(), f" {s} ")]
    template = valid_rows()["ae_attendances"][0]
    for spelling, _ in spellings:
        rows["ae_attendances"].append({**template, "admitted": spelling})
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    assert loaded.reports["ae_attendances"].rejected == 0
    got = [r[0] for r in loaded.con.execute("SELECT admitted FROM ae_attendances").fetchall()]
    assert got == [b for _, b in spellings]


@pytest.mark.parametrize("fmt", FORMATS)
def test_icd10_with_or_without_dot_any_case_stored_dotless_upper(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    add_row(rows, "hospital_spells", spell_id="S3", diagnoses="i50.0 ; J18X;n183;Z99.11")
    add_row(rows, "hospital_spells", spell_id="S4", diagnoses="E119")
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    assert loaded.n_rejected == 0
    spells = loaded.con.execute("SELECT spell_id, diagnoses FROM hospital_spells").fetchall()
    assert spells == [("S1", "I500;J18"), ("S2", "N18"), ("S3", "I500;J18X;N183;Z9911"),
                      ("S4", "E119")]  # fmt: skip
    diagnoses = loaded.con.execute(
        "SELECT spell_id, person_id, admission_date, position, icd10 FROM hospital_diagnoses"
    ).fetchall()
    assert diagnoses == [
        ("S1", "P001", date(2024, 3, 1), 1, "I500"),
        ("S1", "P001", date(2024, 3, 1), 2, "J18"),
        ("S2", "P002", date(2024, 11, 1), 1, "N18"),
        ("S3", "P001", date(2024, 3, 1), 1, "I500"),
        ("S3", "P001", date(2024, 3, 1), 2, "J18X"),
        ("S3", "P001", date(2024, 3, 1), 3, "N183"),
        ("S3", "P001", date(2024, 3, 1), 4, "Z9911"),
        ("S4", "P001", date(2024, 3, 1), 1, "E119"),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_extra_columns_are_kept_after_contract_columns_and_ignored(
    tmp_path: Path, fmt: str
) -> None:
    rows = valid_rows()
    for row in rows["gp_events"]:
        row["source_system"] = "EMIS"
    rows["gp_events"][1]["source_system"] = "not a code at all !!"
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    assert loaded.n_rejected == 0
    columns = [r[0] for r in loaded.con.execute("DESCRIBE gp_events").fetchall()]
    assert columns == ["person_id", "event_date", "snomed_code", "value", "source_system"]
    got = loaded.con.execute("SELECT source_system FROM gp_events").fetchall()
    assert got == [("EMIS",), ("not a code at all !!",)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_absent_optional_columns_load_as_null(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    for row in rows["people"]:
        for optional in ("ethnic_category", "lsoa_code", "date_of_death", "data_opt_out"):
            del row[optional]
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    assert loaded.n_rejected == 0
    got = loaded.con.execute(
        "SELECT count(*), count(date_of_death), count(lsoa_code), count(data_opt_out) FROM people"
    ).fetchone()
    assert got == (3, 0, 0, 0)
    # P002's death date is gone with the column, so their event after it is no longer rejected.
    assert loaded.reports["prescriptions"].rejected == 0


def test_csv_with_byte_order_mark_and_crlf_line_ends_loads(tmp_path: Path) -> None:
    write_extract(tmp_path)
    for name in ("people", "gp_events"):
        path = tmp_path / f"{name}.csv"
        text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded = load_extract(tmp_path)
    assert loaded.n_rejected == 0
    assert loaded.reports["people"].loaded == 3
    assert loaded.con.execute("SELECT person_id FROM people").fetchall()[0] == ("P001",)


def test_header_names_match_in_any_case_and_with_spaces(tmp_path: Path) -> None:
    write_extract(tmp_path)
    path = tmp_path / "gp_events.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = "Person_ID , EVENT_DATE,snomed_code,Value\n"
    path.write_text("".join(lines), encoding="utf-8")
    loaded = load_extract(tmp_path)
    assert loaded.reports["gp_events"].loaded == 2
    assert loaded.con.execute("SELECT person_id, value FROM gp_events").fetchall() == [
        ("P001", 150.5),
        ("P002", None),
    ]


def test_values_are_trimmed_and_quoted_commas_kept(tmp_path: Path) -> None:
    rows = valid_rows()
    add_row(
        rows, "gp_events", person_id=" P003 ", event_date=" 2024-01-05 ", snomed_code="38341003"
    )
    rows["people"][0]["neighbourhood"] = "North, inner"
    loaded = load_extract(write_extract(tmp_path, rows))
    assert loaded.n_rejected == 0
    assert loaded.con.execute("SELECT person_id FROM gp_events").fetchall()[-1] == ("P003",)
    assert loaded.con.execute("SELECT neighbourhood FROM people").fetchall()[0] == ("North, inner",)


@pytest.mark.parametrize("fmt", FORMATS)
def test_boundary_dates_are_accepted(tmp_path: Path, fmt: str) -> None:
    """On the death date, on the birth date, on extract_date and on 1900-01-01 are all fine."""
    rows = valid_rows()
    add_row(rows, "gp_events", person_id="P002", event_date="2025-01-10")  # death day
    add_row(rows, "gp_events", person_id="P001", event_date="1940-03-01")  # birth day
    add_row(rows, "gp_events", person_id="P001", event_date="2026-10-31")  # extract_date
    add_row(rows, "hospital_spells", spell_id="S3", person_id="P002", admission_date="2025-01-09",
            discharge_date="2025-01-10", discharge_destination="79")  # fmt: skip
    add_row(rows, "hospital_spells", spell_id="S4", admission_date="2024-05-01",
            discharge_date="2024-05-01")  # fmt: skip
    add_row(rows, "people", person_id="P004", birth_date="1900-01-01", date_of_death="1900-01-01")
    add_row(rows, "caseloads", start_date="2024-08-01", end_date="2024-08-01")
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    assert loaded.n_rejected == 0, {t: r.reasons for t, r in loaded.reports.items()}


def test_timestamp_and_integer_parquet_columns_are_accepted(tmp_path: Path) -> None:
    """Parquet writers often store dates as timestamps and deciles as int32 or float."""
    write_extract(tmp_path, fmt="parquet", typed=True)
    people = pq.read_table(tmp_path / "people.parquet")
    birth = people.column("birth_date").cast(pa.timestamp("us"))
    people = people.set_column(people.schema.get_field_index("birth_date"), "birth_date", birth)
    imd = people.column("imd_decile").cast(pa.float64())
    people = people.set_column(people.schema.get_field_index("imd_decile"), "imd_decile", imd)
    pq.write_table(people, tmp_path / "people.parquet")
    loaded = load_extract(tmp_path)
    assert loaded.n_rejected == 0
    got = loaded.con.execute("SELECT birth_date, imd_decile FROM people").fetchall()
    assert got[0] == (date(1940, 3, 1), 3)


def test_float_imd_decile_with_fraction_is_malformed(tmp_path: Path) -> None:
    write_extract(tmp_path, fmt="parquet", typed=True)
    people = pq.read_table(tmp_path / "people.parquet")
    imd = pa.array([3.5, 7.0, 10.0])
    people = people.set_column(people.schema.get_field_index("imd_decile"), "imd_decile", imd)
    pq.write_table(people, tmp_path / "people.parquet")
    loaded = load_extract(tmp_path)
    assert loaded.reports["people"].reasons == {"malformed imd_decile": 1}


@pytest.mark.parametrize("fmt", FORMATS)
def test_rejects_table_keeps_the_raw_record(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    row_number = add_row(rows, "prescriptions", bnf_code="02", quantity="")
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    ((table, number, reason, record),) = loaded.con.execute("SELECT * FROM rejects").fetchall()
    assert (table, number, reason) == ("prescriptions", row_number, "malformed bnf_code")
    expected = {"person_id": "P001", "issue_date": "2024-02-01", "bnf_code": "02", "quantity": None}
    assert json.loads(record) == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_rejected_person_makes_their_records_unknown_person_id(tmp_path: Path, fmt: str) -> None:
    """The cascade: a person's row rejected leaves all their records without a person."""
    rows = valid_rows()
    rows["people"][0]["gp_practice_code"] = "P8800"  # P001's row is now malformed
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    assert loaded.reports["people"].reasons == {"malformed gp_practice_code": 1}
    for name in TABLES:
        if name == "people":
            continue
        p001 = sum(row["person_id"] == "P001" for row in rows[name])
        report = loaded.reports[name]
        assert report.reasons == ({"unknown person_id": p001} if p001 else {}), name
        assert report.loaded == len(rows[name]) - p001


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_id_rejects_every_later_occurrence_whatever_became_of_the_first(
    tmp_path: Path, fmt: str
) -> None:
    rows = valid_rows()
    rows["hospital_spells"][0]["admission_method"] = "99"  # first S1 rejected for its code
    second = add_row(rows, "hospital_spells", admission_method="21")
    third = add_row(rows, "hospital_spells", admission_method="22")
    loaded = load_extract(write_extract(tmp_path, rows, **FORMATS[fmt]))
    got = loaded.con.execute(
        "SELECT row_number, reason FROM rejects WHERE table_name = 'hospital_spells'"
    ).fetchall()
    assert got == [
        (1, "value not allowed in admission_method"),
        (second, "duplicate spell_id"),
        (third, "duplicate spell_id"),
    ]
    assert loaded.con.execute("SELECT spell_id FROM hospital_spells").fetchall() == [("S2",)]


def test_rows_keep_file_order_and_row_numbers_count_data_rows(tmp_path: Path) -> None:
    rows = valid_rows()
    rows["gp_events"] = [
        {"person_id": "P001", "event_date": f"2024-01-{d:02d}", "snomed_code": "38341003",
         "value": "" if d % 7 else "x"}
        for d in range(1, 29)
    ]  # fmt: skip
    loaded = load_extract(write_extract(tmp_path, rows))
    numbers = [r[0] for r in loaded.con.execute("SELECT row_number FROM rejects").fetchall()]
    assert numbers == [7, 14, 21, 28]
    days = [r[0].day for r in loaded.con.execute("SELECT event_date FROM gp_events").fetchall()]
    assert days == [d for d in range(1, 29) if d % 7]


def test_load_into_a_given_connection_and_report_progress(tmp_path: Path) -> None:
    import duckdb

    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    calls: list[tuple[str, float]] = []
    loaded = load_extract(
        write_extract(tmp_path / "x"), con=con, progress=lambda t, f: calls.append((t, f))
    )
    assert loaded.con is con
    assert {t for t, _ in calls} == set(TABLES)
    assert all(
        calls[i][1] <= calls[i + 1][1]
        for i in range(len(calls) - 1)
        if calls[i][0] == calls[i + 1][0]
    )
    assert (("people", 1.0) in calls) and (("caseloads", 1.0) in calls)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_rejects_are_held_in_contract_table_order_then_row_order(tmp_path: Path, fmt: str) -> None:
    # Tables after people load two at a time and append their rejects as they finish.
    rows = valid_rows()
    added = [
        ("caseloads", add_row(rows, "caseloads", person_id="P999")),
        ("gp_events", add_row(rows, "gp_events", person_id="P999")),
        ("prescriptions", add_row(rows, "prescriptions", person_id="P999")),
        ("gp_events", add_row(rows, "gp_events", person_id="P998")),
        ("people", add_row(rows, "people", person_id="P100", sex="X")),
    ]
    loaded = load_extract(write_extract(tmp_path, rows, fmt=fmt))
    held = loaded.con.execute("SELECT table_name, row_number FROM rejects").fetchall()
    order = list(TABLES)
    assert held == sorted(added, key=lambda r: (order.index(r[0]), r[1]))
    assert list(loaded.reports) == order
