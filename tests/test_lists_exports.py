"""List exports open with pandas and openpyxl, with the expected columns and sheets; CSV and XLSX
carry the same table (the one the page downloads write too)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from test_scoring_support import feature_frame, run_for, train_model

from config.settings import ListSettings
from features.cohort import LIST_FLAGS
from scoring.exports import FILE_COLUMNS, LIST_COLUMNS, flag_text, list_table, write_export
from scoring.store import ScoreStore


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScoreStore, str]:
    store = ScoreStore(tmp_path_factory.mktemp("lists") / "scores")
    model = train_model()
    features = feature_frame(300, hoods=("North", "South", "East/Central: [A]"))
    run = run_for(model, features, rules=ListSettings(capacity=4))
    store.write(run)
    return store, run.run_id


def test_list_table_has_the_listed_people_in_rank_order(stored: tuple[ScoreStore, str]) -> None:
    store, run_id = stored
    table = list_table(store.people(run_id))
    assert list(table.columns[: len(LIST_COLUMNS)]) == LIST_COLUMNS
    assert len(table) == 12
    for _, group in table.groupby("neighbourhood"):
        assert group["rank"].tolist() == [1, 2, 3, 4]
        assert group["probability"].is_monotonic_decreasing
    # first month: everyone listed is new, in LIST_FLAGS' words
    assert (table["flags"] == LIST_FLAGS["new_this_month"]).all()
    assert table["reasons"].str.len().gt(0).all()
    assert len(list_table(store.people(run_id), "North")) == 4
    with pytest.raises(ValueError, match=r"no neighbourhood 'Nowhere'.*known: East"):
        list_table(store.people(run_id), "Nowhere")


def test_list_table_filters_by_flag_and_refuses_an_unknown_one(
    stored: tuple[ScoreStore, str],
) -> None:
    store, run_id = stored
    people = store.people(run_id)
    assert len(list_table(people, "North", "new_this_month")) == 4
    assert list_table(people, "North", "risk_risen").empty  # nothing to compare with yet
    with pytest.raises(ValueError, match="unknown flag 'bogus'"):
        list_table(people, flag="bogus")


def test_a_person_who_moved_segment_carries_the_flag_on_the_list(
    stored: tuple[ScoreStore, str],
) -> None:
    store, run_id = stored
    people = store.people(run_id)
    north = people[people["listed"] & (people["neighbourhood"] == "North")]
    moved = north.sort_values("rank")["person_id"].iloc[0]
    people.loc[people["person_id"] == moved, "moved_segment"] = True
    table = list_table(people, "North").set_index("person_id")
    assert table.loc[moved, "moved_segment"]
    assert LIST_FLAGS["moved_segment"] in table.loc[moved, "flags"]
    assert list(list_table(people, "North", "moved_segment")["person_id"]) == [moved]
    # A run stored before segments existed has no such column: nobody carries the flag.
    old = people.drop(columns=["moved_segment"])
    assert not list_table(old, "North")["moved_segment"].any()
    assert list_table(old, "North", "moved_segment").empty


def test_flag_words_are_the_cohorts_in_its_order() -> None:
    row = {"new_this_month": True, "on_last_month_list": None, "risk_risen": True}
    assert flag_text(row) == f"{LIST_FLAGS['new_this_month']}; {LIST_FLAGS['risk_risen']}"
    assert flag_text(dict.fromkeys(LIST_FLAGS, False)) == ""
    assert flag_text(dict.fromkeys(LIST_FLAGS, True)) == "; ".join(LIST_FLAGS.values())


def test_csv_export(stored: tuple[ScoreStore, str], tmp_path: Path) -> None:
    store, run_id = stored
    meta = store.meta(run_id)
    path = write_export(list_table(store.people(run_id)), "csv", tmp_path / "l.csv", meta)
    frame = pd.read_csv(path, dtype={"person_id": str, "model_version": str})
    assert list(frame.columns) == FILE_COLUMNS == ["month", *LIST_COLUMNS, *FILE_COLUMNS[-3:]]
    assert len(frame) == 12 and (frame["run_id"] == run_id).all() and frame["current_run"].all()
    assert (frame["model_version"] == str(meta["model"]["version"])).all()


def test_json_export_carries_structured_reasons(
    stored: tuple[ScoreStore, str], tmp_path: Path
) -> None:
    store, run_id = stored
    meta = store.meta(run_id)
    path = write_export(list_table(store.people(run_id)), "json", tmp_path / "l.json", meta)
    document = json.loads(path.read_text())
    assert document["run_id"] == run_id and document["current_run"] is True
    person = document["people"][0]
    assert set(LIST_COLUMNS) <= set(person)
    assert person["reasons"] and {"feature", "sentence", "probability_change"} <= set(
        person["reasons"][0]
    )


def test_xlsx_has_one_filterable_sheet_per_neighbourhood(
    stored: tuple[ScoreStore, str], tmp_path: Path
) -> None:
    store, run_id = stored
    meta = store.meta(run_id)
    path = write_export(list_table(store.people(run_id)), "xlsx", tmp_path / "l.xlsx", meta)
    book = load_workbook(path)
    # Sheet names cannot hold []:*?/\ and are at most 31 characters.
    assert book.sheetnames == ["East-Central- -A-", "North", "South"]
    last = get_column_letter(len(FILE_COLUMNS))
    reasons = get_column_letter(FILE_COLUMNS.index("reasons") + 1)
    for sheet in book.worksheets:
        assert [c.value for c in sheet[1]] == FILE_COLUMNS
        assert sheet.max_row == 5
        assert sheet.auto_filter.ref == f"A1:{last}{sheet.max_row}"
        assert sheet.freeze_panes == "A2"
        assert sheet.column_dimensions[reasons].width >= 60
    assert run_id in book.properties.subject
    sheets = pd.read_excel(path, sheet_name=None, dtype={"person_id": str})
    assert sorted(sheets) == ["East-Central- -A-", "North", "South"]
    assert all(list(s.columns) == FILE_COLUMNS for s in sheets.values())


def test_csv_and_xlsx_hold_the_same_table(stored: tuple[ScoreStore, str], tmp_path: Path) -> None:
    store, run_id = stored
    meta = store.meta(run_id)
    table = list_table(store.people(run_id), "North")
    kinds = {"person_id": str, "model_version": str, "practice": str}
    csv = pd.read_csv(write_export(table, "csv", tmp_path / "n.csv", meta), dtype=kinds)
    xlsx = pd.read_excel(write_export(table, "xlsx", tmp_path / "n.xlsx", meta), dtype=kinds)
    pd.testing.assert_frame_equal(csv, xlsx, check_dtype=False, atol=5e-4)


def test_unknown_format_is_refused(stored: tuple[ScoreStore, str], tmp_path: Path) -> None:
    store, run_id = stored
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        write_export(list_table(store.people(run_id)), "pdf", tmp_path / "l.pdf", {})


HOSTILE = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_cells_a_spreadsheet_would_run_are_written_as_text(
    stored: tuple[ScoreStore, str], tmp_path: Path, fmt: str
) -> None:
    """Formula injection: a person id, practice or neighbourhood starting with = + - @ tab or CR
    arrives quoted (OWASP); numbers, negative ones too, stay numbers."""
    store, run_id = stored
    meta = store.meta(run_id)
    people = store.people(run_id)
    north = people[people["listed"] & (people["neighbourhood"] == "North")].sort_values("rank")
    ids = north["person_id"].tolist()[: len(HOSTILE) - 2]
    for person, text in zip(ids, HOSTILE, strict=False):
        people.loc[people["person_id"] == person, "person_id"] = text
    people.loc[people["person_id"] == HOSTILE[0], "gp_practice_code"] = "@practice"
    people.loc[people["neighbourhood"] == "South", "neighbourhood"] = "=cmd|' /C calc'!A0"
    table = list_table(people)
    table.loc[0, "previous_probability"] = -0.25  # a number: left alone
    path = write_export(table, fmt, tmp_path / f"l.{fmt}", meta)
    if fmt == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        cells = frame.to_numpy().ravel().tolist()
        assert float(frame.loc[0, "previous_probability"]) == -0.25
    else:
        book = load_workbook(path)
        cells = [c.value for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
        assert all(c.data_type != "f" for s in book.worksheets for r in s.iter_rows() for c in r)
        assert -0.25 in cells
    texts = [c for c in cells if isinstance(c, str) and not _number(c)]
    assert not [c for c in texts if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    for text in [*HOSTILE[: len(ids)], "@practice", "=cmd|' /C calc'!A0"]:
        assert "'" + text in texts, text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_neutralise_quotes_only_text_that_starts_a_formula() -> None:
    from scoring.exports import neutralise

    assert [neutralise(v) for v in ("=1", "+1", "-1", "@a", "\t1", "\r1")] == [
        "'=1", "'+1", "'-1", "'@a", "'\t1", "'\r1",
    ]  # fmt: skip
    assert neutralise("North") == "North" and neutralise("a=b") == "a=b"
    assert neutralise(-3) == -3 and neutralise(-0.5) == -0.5 and neutralise(None) is None
