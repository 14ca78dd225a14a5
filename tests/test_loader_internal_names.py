"""A file column named like one of the loader's own columns (`__cf_...`) is refused with an error
naming the file and the column, before any table is loaded: such a column could otherwise shadow
the loader's reject reason and switch every rule off. And the one-pass loader keeps file order."""

from __future__ import annotations

from pathlib import Path

import pytest
from extract_builder import add_row, valid_rows, write_extract

from records import ExtractError, load_extract


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("column", ["__cf_reason", "__CF_ROW", "__cf_s_person_id"])
def test_a_column_named_like_the_loaders_own_is_refused_by_name(
    tmp_path: Path, fmt: str, column: str
) -> None:
    rows = valid_rows()
    for row in rows["gp_events"]:
        row[column] = "x"
    add_row(rows, "gp_events", person_id="P999", **{column: "x"})  # would be rejected
    write_extract(tmp_path, rows, fmt=fmt)
    with pytest.raises(ExtractError) as info:
        load_extract(tmp_path)
    message = str(info.value)
    assert message.startswith(f"gp_events.{fmt}: column {column!r} clashes with the loader's")
    assert "P999" not in message


def test_an_extra_column_not_named_like_the_loaders_is_kept(tmp_path: Path) -> None:
    rows = valid_rows()
    for row in rows["gp_events"]:
        row["cf_reason"] = "note"
    loaded = load_extract(write_extract(tmp_path, rows))
    assert loaded.con.execute("SELECT cf_reason FROM gp_events").fetchall() == [("note",)] * 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_loaded_tables_and_rejects_keep_file_order(tmp_path: Path, fmt: str) -> None:
    rows = valid_rows()
    for i in range(3000):  # enough rows for several DuckDB vectors, with rejects among them
        add_row(
            rows,
            "community_contacts",
            person_id="P999" if i % 7 == 0 else "P001",
            contact_date=f"2024-{1 + i % 12:02d}-01",
            service="falls" if i % 11 else "nonsense",
        )
        add_row(
            rows,
            "hospital_spells",
            spell_id=f"X{i % 2500}",  # the last 500 repeat an earlier id
            person_id="P001",
            admission_date="2024-03-01",
            admission_method="21",
            diagnoses="I50",
        )
    loaded = load_extract(write_extract(tmp_path, rows, fmt=fmt))
    con = loaded.con
    months = [
        m for (m,) in con.sql("SELECT month(contact_date) FROM community_contacts").fetchall()
    ]
    kept = [i for i in range(3000) if i % 7 and i % 11]
    assert months[2:] == [1 + i % 12 for i in kept]
    spells = [s for (s,) in con.sql("SELECT spell_id FROM hospital_spells").fetchall()]
    assert spells[2:] == [f"X{i}" for i in range(2500)]
    rejected = con.execute(
        "SELECT row_number FROM rejects WHERE table_name = 'hospital_spells'"
    ).fetchall()
    assert [r for (r,) in rejected] == [2 + 2500 + i + 1 for i in range(500)]
