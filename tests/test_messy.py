"""synthetic.messy.add_faults: loading the faulted extract rejects exactly the injected counts,
every loader rule is broken at least once, and every clean row still loads, in order."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from extract_builder import arrow_tables, scaled_rows, write_arrow_extract

from records import load_extract
from records.contract import TABLES
from synthetic.messy import add_faults, fault_kinds

EXTRACT_DATE = date(2026, 10, 31)
COPIES = 200  # 600 people, 400 rows in each other table


@pytest.fixture(scope="module")
def clean() -> dict[str, pa.Table]:
    return arrow_tables(scaled_rows(COPIES))


@pytest.fixture(scope="module")
def clean_loaded(clean: dict[str, pa.Table], tmp_path_factory) -> duckdb.DuckDBPyConnection:
    folder = write_arrow_extract(tmp_path_factory.mktemp("clean"), clean)
    loaded = load_extract(folder)
    assert loaded.n_rejected == 0
    return loaded.con


def _reasons(folder: Path) -> tuple[dict[tuple[str, str], int], duckdb.DuckDBPyConnection]:
    loaded = load_extract(folder)
    for report in loaded.reports.values():
        assert report.read == report.loaded + report.rejected
    counts = {(t, r): n for t, rep in loaded.reports.items() for r, n in rep.reasons.items()}
    return counts, loaded.con


def _expected_rules() -> set[tuple[str, str]]:
    """Every (table, reason) the loader can give, read from the contract."""
    rules = set()
    for name, table in TABLES.items():
        dates = [c.name for c in table.columns if c.type == "date"]
        record_date = table.date_column or "birth_date"
        rules |= {(name, f"missing required value {c}") for c in table.required}
        rules |= {(name, f"date after extract_date in {c}") for c in dates}
        rules |= {
            (name, f"unparseable date in {record_date}"),
            (name, f"date before 1900 in {record_date}"),
        }
        for col in table.columns:
            if (col.pattern and col.name != "person_id") or col.type in ("float", "bool", "int"):
                rules.add((name, f"malformed {col.name}"))
            if col.allowed or col.type == "int":
                rules.add((name, f"value not allowed in {col.name}"))
        if name != "people":
            rules |= {(name, "unknown person_id"), (name, "dated before birth"),
                      (name, "dated after death")}  # fmt: skip
    rules |= {
        ("people", "duplicate person_id"),
        ("people", "date_of_death before birth_date"),
        ("people", "registration_end before registration_start"),
        ("hospital_spells", "duplicate spell_id"),
        ("hospital_spells", "discharge_date before admission_date"),
        ("social_care", "end_date before start_date"),
        ("caseloads", "end_date before start_date"),
    }
    return rules


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("share", [0.002, 0.02])
def test_loader_rejects_exactly_the_injected_faults(
    clean: dict[str, pa.Table], tmp_path: Path, fmt: str, share: float
) -> None:
    faulted, injected = add_faults(clean, seed=7, extract_date=EXTRACT_DATE, share=share)
    got, _ = _reasons(write_arrow_extract(tmp_path, faulted, fmt=fmt))
    assert got == injected


def test_every_loader_rule_is_broken_at_least_once(clean: dict[str, pa.Table]) -> None:
    _, injected = add_faults(clean, seed=1, extract_date=EXTRACT_DATE)
    assert _expected_rules() <= set(injected), _expected_rules() - set(injected)
    assert set(injected) == set(fault_kinds())
    assert all(n >= 1 for n in injected.values())


def test_every_clean_row_still_loads_in_file_order(
    clean: dict[str, pa.Table], clean_loaded: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    faulted, injected = add_faults(clean, seed=11, extract_date=EXTRACT_DATE, share=0.01)
    _, con = _reasons(write_arrow_extract(tmp_path, faulted, fmt="csv"))
    for name in TABLES:
        added = sum(n for (table, _), n in injected.items() if table == name)
        assert faulted[name].num_rows == clean[name].num_rows + added
        query = f"SELECT * FROM {name}"
        assert con.execute(query).fetchall() == clean_loaded.execute(query).fetchall(), name


def test_share_sets_the_rows_per_fault_kind(clean: dict[str, pa.Table]) -> None:
    _, injected = add_faults(clean, seed=2, extract_date=EXTRACT_DATE, share=0.01)
    assert injected[("people", "value not allowed in sex")] == 6  # 1% of 600
    assert injected[("gp_events", "unknown person_id")] == 4  # 1% of 400
    # Two kinds give hospital_spells 'dated after death': admitted, or discharged, after it.
    assert injected[("hospital_spells", "dated after death")] == 8
    assert sum(injected.values()) < 0.01 * 40 * sum(t.num_rows for t in clean.values())


def test_same_seed_same_faults_other_seed_other_faults(clean: dict[str, pa.Table]) -> None:
    first, counts = add_faults(clean, seed=5, extract_date=EXTRACT_DATE)
    again, counts_again = add_faults(clean, seed=5, extract_date=EXTRACT_DATE)
    other, _ = add_faults(clean, seed=6, extract_date=EXTRACT_DATE)
    assert counts == counts_again
    assert all(first[name].equals(again[name]) for name in TABLES)
    assert not all(first[name].equals(other[name]) for name in TABLES)


def test_columns_become_text_only_where_a_fault_needs_it(clean: dict[str, pa.Table]) -> None:
    faulted, _ = add_faults(clean, seed=3, extract_date=EXTRACT_DATE)
    people = faulted["people"].schema
    assert people.field("birth_date").type == pa.string()  # '01/03/1940'
    assert people.field("imd_decile").type == pa.string()  # 'NA'
    assert people.field("registration_end").type == pa.date32()  # only real dates needed
    assert faulted["gp_events"].schema.field("value").type == pa.string()  # '>90'
    assert faulted["hospital_spells"].schema.field("discharge_date").type == pa.date32()


def test_without_deaths_there_are_no_after_death_faults_and_counts_stay_exact(
    clean: dict[str, pa.Table], tmp_path: Path
) -> None:
    people = clean["people"]
    index = people.schema.get_field_index("date_of_death")
    alive = people.set_column(index, "date_of_death", pa.nulls(people.num_rows, pa.date32()))
    tables = {**clean, "people": alive}
    faulted, injected = add_faults(tables, seed=4, extract_date=EXTRACT_DATE)
    assert not any(reason == "dated after death" for _, reason in injected)
    got, _ = _reasons(write_arrow_extract(tmp_path, faulted))
    assert got == injected


def test_dictionary_strings_and_timestamp_dates_are_accepted(
    clean: dict[str, pa.Table], tmp_path: Path
) -> None:
    """Arrow tables as writers often make them: categorical codes, dates as timestamps."""
    tables = dict(clean)
    gp = tables["gp_events"]
    gp = gp.set_column(2, "snomed_code", gp.column("snomed_code").dictionary_encode())
    gp = gp.set_column(1, "event_date", gp.column("event_date").cast(pa.timestamp("ms")))
    tables["gp_events"] = gp
    faulted, injected = add_faults(tables, seed=8, extract_date=EXTRACT_DATE, share=0.01)
    assert pa.types.is_dictionary(faulted["gp_events"].schema.field("snomed_code").type)
    assert faulted["gp_events"].schema.field("event_date").type == pa.string()  # '31/02/2024'
    got, _ = _reasons(write_arrow_extract(tmp_path, faulted))
    assert got == injected


def test_bad_arguments_are_refused(clean: dict[str, pa.Table]) -> None:
    with pytest.raises(ValueError, match="share must be between 0 and 1"):
        add_faults(clean, seed=1, extract_date=EXTRACT_DATE, share=0)
    tables = {k: v for k, v in clean.items() if k != "caseloads"}
    with pytest.raises(ValueError, match="missing caseloads"):
        add_faults(tables, seed=1, extract_date=EXTRACT_DATE)


def test_young_people_still_get_a_birth_date_before_1900(tmp_path: Path) -> None:
    """A birth year typo of 100 years is not enough for someone born in 2001."""
    rows = scaled_rows(20)
    for row in rows["people"]:
        row["birth_date"] = "2001-02-28" if row["person_id"].endswith("001") else row["birth_date"]
    for table in TABLES:
        if table != "people":
            rows[table] = [r for r in rows[table] if not r["person_id"].endswith("001")]
    tables = arrow_tables(rows)
    faulted, injected = add_faults(tables, seed=1, extract_date=EXTRACT_DATE, share=0.3)
    assert injected[("people", "date before 1900 in birth_date")] == 18
    got, _ = _reasons(write_arrow_extract(tmp_path, faulted))
    assert got == injected


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_generator_messy_extract_loads_with_exactly_the_injected_rejects(
    tmp_path: Path, fmt: str
) -> None:
    """`casefinder synth --messy` end to end: generator tables, faults, files, loader."""
    from synthetic import SynthConfig, generate

    config = SynthConfig(people=400, seed=3, messy=True, file_format=fmt)
    summary = generate(config, tmp_path)
    got, _ = _reasons(tmp_path)
    assert summary.injected
    assert got == summary.injected
