"""The loader checks a text column with few distinct values once per value (`_few_values`): the
same tables, rejects and reasons as checking every row. Small files take the per-row path, so
these tests lower the thresholds to send every text column through the per-value one."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from extract_builder import add_row, arrow_tables, scaled_rows, valid_rows, write_arrow_extract
from extract_builder import write_extract as write_rows_extract
from test_loader_rules import CASES

from records import load_extract, loader
from records.contract import TABLES
from synthetic.messy import add_faults

EXTRACT_DATE = date(2026, 10, 31)
TABLES_HELD = [*TABLES, loader.REJECTS_TABLE, loader.DIAGNOSES_TABLE]


@pytest.fixture
def by_value(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, loader._FewValues]]:
    """Every text column checked per value; returns what `_few_values` found, table by table."""
    monkeypatch.setattr(loader, "FEW_MIN_ROWS", 0)
    monkeypatch.setattr(loader, "FEW_SAMPLE_SHARE", 1.0)
    found: list[dict[str, loader._FewValues]] = []
    real = loader._few_values

    def spy(*args: object) -> dict[str, loader._FewValues]:
        found.append(real(*args))  # type: ignore[arg-type]
        return found[-1]

    monkeypatch.setattr(loader, "_few_values", spy)
    return found


def _padded(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Valid codes with whitespace at their ends (loaded trimmed) in every other row."""
    out = dict(tables)
    codes = tables["prescriptions"]["bnf_code"]
    odd = pa.array([i % 2 == 1 for i in range(len(codes))])
    padded = pc.if_else(odd, pc.binary_join_element_wise(" ", codes, "\t", ""), codes)
    out["prescriptions"] = tables["prescriptions"].set_column(
        tables["prescriptions"].schema.get_field_index("bnf_code"), "bnf_code", padded
    )
    return out


def _held(folder: Path) -> tuple[dict[str, list[tuple]], dict[str, loader.TableReport]]:
    loaded = load_extract(folder)
    held = {t: loaded.con.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES_HELD}
    return held, loaded.reports


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_checking_distinct_values_loads_what_checking_rows_loads(
    tmp_path: Path, fmt: str, by_value: list[dict[str, loader._FewValues]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    clean = _padded(arrow_tables(scaled_rows(100)))
    faulted, injected = add_faults(clean, seed=3, extract_date=EXTRACT_DATE, share=0.02)
    folder = write_arrow_extract(tmp_path, faulted, fmt=fmt)
    held, reports = _held(folder)
    assert by_value and all(few for few in by_value)
    found = {name: few for table in by_value for name, few in table.items()}
    assert found["bnf_code"].needs_cleaning and found["bnf_code"].malformed
    assert found["sex"].not_allowed
    assert {r for rep in reports.values() for r in rep.reasons} == {r for _, r in injected}

    monkeypatch.setattr(loader, "FEW_MIN_ROWS", 10**12)  # every row checked
    assert _held(folder) == (held, reports)
    monkeypatch.setattr(loader, "FEW_MIN_ROWS", 0)
    monkeypatch.setattr(loader, "FEW_MAX_FAILING", 0)  # columns with failing values: per row
    assert _held(folder) == (held, reports)
    monkeypatch.setattr(loader, "FEW_MAX_VALUES", 1)  # columns with 2+ values: per row
    by_value.clear()
    assert _held(folder) == (held, reports)
    assert not any(by_value)


# The cases about a text value (the checks the per-value path makes).
TEXT_CASES = [
    c for c in CASES if c.reason.startswith(("malformed", "value not allowed", "missing required"))
]


@pytest.mark.parametrize("case", TEXT_CASES, ids=[c.id for c in TEXT_CASES])
def test_each_rule_case_is_rejected_alike_when_checked_per_value(
    tmp_path: Path, case: object, by_value: list[dict[str, loader._FewValues]]
) -> None:
    rows = valid_rows()
    row_number = add_row(rows, case.table, **case.changes)  # type: ignore[attr-defined]
    loaded = load_extract(write_rows_extract(tmp_path / "extract", rows, fmt="csv"))
    assert any(by_value)
    rejects = loaded.con.execute("SELECT table_name, row_number, reason FROM rejects").fetchall()
    assert rejects == [(case.table, row_number, case.reason)]  # type: ignore[attr-defined]
