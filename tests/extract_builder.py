"""Write small, valid linked-records extracts for tests; tests then add the rows they need."""

from __future__ import annotations

import copy
import csv
import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from records.contract import BOOL_TRUE, TABLES

EXTRACT_DATE = "2026-10-31"
MANIFEST = {"extract_date": EXTRACT_DATE, "complete_to": {"prescriptions": "2026-09-30"}}

Rows = dict[str, list[dict[str, str]]]

_VALID: Rows = {
    "people": [
        {"person_id": "P001", "birth_date": "1940-03-01", "sex": "2", "ethnic_category": "A",
         "lsoa_code": "E01000001", "imd_decile": "3", "gp_practice_code": "P88001",
         "neighbourhood": "North", "registration_start": "1990-01-01", "registration_end": "",
         "date_of_death": "", "data_opt_out": "N"},
        {"person_id": "P002", "birth_date": "1950-06-15", "sex": "1", "ethnic_category": "99",
         "lsoa_code": "E01000002", "imd_decile": "7", "gp_practice_code": "P88002",
         "neighbourhood": "South", "registration_start": "2000-05-01", "registration_end": "",
         "date_of_death": "2025-01-10", "data_opt_out": "false"},
        {"person_id": "P003", "birth_date": "1935-12-01", "sex": "9", "ethnic_category": "Z",
         "lsoa_code": "", "imd_decile": "10", "gp_practice_code": "P88001",
         "neighbourhood": "North", "registration_start": "", "registration_end": "",
         "date_of_death": "", "data_opt_out": ""},
    ],
    "gp_events": [
        {"person_id": "P001", "event_date": "2024-01-05", "snomed_code": "38341003",
         "value": "150.5"},
        {"person_id": "P002", "event_date": "2024-12-01", "snomed_code": "1240581000000104",
         "value": ""},
    ],
    "prescriptions": [
        {"person_id": "P001", "issue_date": "2024-02-01", "bnf_code": "0212000B0AAABAB",
         "quantity": "28"},
        {"person_id": "P003", "issue_date": "2025-03-01", "bnf_code": "0407", "quantity": ""},
    ],
    "hospital_spells": [
        {"spell_id": "S1", "person_id": "P001", "admission_date": "2024-03-01",
         "discharge_date": "2024-03-08", "admission_method": "21", "diagnoses": "I50.0;j18",
         "discharge_destination": "19"},
        {"spell_id": "S2", "person_id": "P002", "admission_date": "2024-11-01",
         "discharge_date": "", "admission_method": "11", "diagnoses": "N18",
         "discharge_destination": ""},
    ],
    "ae_attendances": [
        {"person_id": "P001", "arrival_date": "2024-02-28", "arrival_mode": "ambulance",
         "admitted": "Y"},
        {"person_id": "P003", "arrival_date": EXTRACT_DATE, "arrival_mode": "other",
         "admitted": ""},
    ],
    "outpatient_appointments": [
        {"person_id": "P001", "appointment_date": "2024-04-01", "attendance": "attended",
         "specialty_code": "430"},
        {"person_id": "P002", "appointment_date": "2024-05-01", "attendance": "did_not_attend",
         "specialty_code": ""},
    ],
    "community_contacts": [
        {"person_id": "P001", "contact_date": "2024-05-01", "service": "district_nursing"},
        {"person_id": "P003", "contact_date": "2024-06-01", "service": "falls"},
    ],
    "social_care": [
        {"person_id": "P001", "event_type": "service", "start_date": "2024-06-01",
         "end_date": "2024-09-01", "service_type": "long_term_community",
         "hours_per_week": "10.5"},
        {"person_id": "P003", "event_type": "request", "start_date": "2024-07-01",
         "end_date": "", "service_type": "", "hours_per_week": ""},
    ],
    "mental_health_contacts": [
        {"person_id": "P001", "contact_date": "2024-07-01", "team_type": "memory_service"},
        {"person_id": "P002", "contact_date": "2024-08-01", "team_type": "crisis"},
    ],
    "caseloads": [
        {"person_id": "P001", "caseload": "neighbourhood_mdt", "start_date": "2024-08-01",
         "end_date": ""},
        {"person_id": "P003", "caseload": "end_of_life", "start_date": "2025-01-01",
         "end_date": "2025-06-01"},
    ],
}  # fmt: skip


def valid_rows() -> Rows:
    """A fresh copy of the minimal valid extract: three people, two rows per other table."""
    return copy.deepcopy(_VALID)


def add_row(rows: Rows, table: str, **values: str) -> int:
    """Append a copy of `table`'s first row with `values` changed; return its 1-based row number.

    A value of None drops that key from the new row (written as empty).
    """
    row = dict(rows[table][0])
    for key, value in values.items():
        if value is None:
            row.pop(key, None)
        else:
            row[key] = value
    rows[table].append(row)
    return len(rows[table])


def _columns(table_rows: list[dict[str, str]]) -> list[str]:
    columns: list[str] = []
    for row in table_rows:
        columns += [k for k in row if k not in columns]
    return columns


def _typed_array(table: str, column: str, values: list[str]) -> pa.Array:
    """Contract-typed Arrow array (for parquet files with native types); empty -> null."""
    contract = TABLES[table]
    try:
        kind = contract.column(column).type
    except KeyError:
        kind = "string"
    cells = [v if v != "" else None for v in values]
    if kind == "date":
        return pa.array([date.fromisoformat(v) if v else None for v in cells], pa.date32())
    if kind == "bool":
        return pa.array([v.lower() in BOOL_TRUE if v else None for v in cells], pa.bool_())
    if kind == "int":
        return pa.array([int(v) if v else None for v in cells], pa.int64())
    if kind == "float":
        return pa.array([float(v) if v else None for v in cells], pa.float64())
    return pa.array(cells, pa.string())


def write_table(folder: Path, table: str, table_rows: list[dict[str, str]], fmt: str = "csv",
                typed: bool = False) -> Path:  # fmt: skip
    """Write one table file; `typed` parquet stores contract types natively, else strings."""
    columns = _columns(table_rows)
    if fmt == "csv":
        path = folder / f"{table}.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([[row.get(c, "") for c in columns] for row in table_rows])
        return path
    path = folder / f"{table}.parquet"
    arrays = {}
    for c in columns:
        values = [row.get(c, "") for row in table_rows]
        if typed:
            arrays[c] = _typed_array(table, c, values)
        else:
            arrays[c] = pa.array([v if v != "" else None for v in values], pa.string())
    pq.write_table(pa.table(arrays), path)
    return path


def write_extract(folder: Path, rows: Rows | None = None, fmt: str = "csv",
                  manifest: dict | None = None, typed: bool = False) -> Path:  # fmt: skip
    """Write manifest.json and every table (default: the minimal valid extract); return folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = valid_rows() if rows is None else rows
    (folder / "manifest.json").write_text(json.dumps(manifest or MANIFEST), encoding="utf-8")
    for table, table_rows in rows.items():
        write_table(folder, table, table_rows, fmt=fmt, typed=typed)
    return folder


def scaled_rows(copies: int) -> Rows:
    """The valid extract repeated `copies` times with distinct ids (P001 -> P0000001, ...)."""
    rows: Rows = {table: [] for table in _VALID}
    for k in range(copies):
        for table, table_rows in _VALID.items():
            for row in table_rows:
                new = dict(row)
                new["person_id"] = f"P{k:04d}{row['person_id'][1:]}"
                if "spell_id" in row:
                    new["spell_id"] = f"S{k:04d}{row['spell_id'][1:]}"
                rows[table].append(new)
    return rows


def arrow_tables(rows: Rows | None = None) -> dict[str, pa.Table]:
    """The rows as Arrow tables with contract types (dates, ints, floats, booleans)."""
    rows = valid_rows() if rows is None else rows
    tables = {}
    for table, table_rows in rows.items():
        columns = _columns(table_rows)
        tables[table] = pa.table(
            {c: _typed_array(table, c, [row.get(c, "") for row in table_rows]) for c in columns}
        )
    return tables


def write_arrow_extract(folder: Path, tables: dict[str, pa.Table], fmt: str = "parquet",
                        manifest: dict | None = None) -> Path:  # fmt: skip
    """Write manifest.json and Arrow tables as parquet or CSV (Arrow's writer); return folder."""
    import pyarrow.csv as pa_csv

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest or MANIFEST), encoding="utf-8")
    for name, table in tables.items():
        if fmt == "csv":
            pa_csv.write_csv(table, folder / f"{name}.csv")
        else:
            pq.write_table(table, folder / f"{name}.parquet")
    return folder
