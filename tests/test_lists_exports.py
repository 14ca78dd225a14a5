"""List exports open with pandas and openpyxl, with the expected columns and sheets; CSV and XLSX
carry the same table (the one the page downloads write too)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from test_scoring_support import INDEX_DATE, feature_frame, run_for, train_model

from config.settings import ListSettings
from features.cohort import LIST_FLAGS
from scoring.exports import (
    FILE_COLUMNS,
    FILE_HEADERS,
    LIST_COLUMNS,
    flag_text,
    list_table,
    write_export,
)
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
    """Headers in words, risk as the pages show it, the month, index date, model and run on every
    row, flags once (no Boolean columns) and no comment line."""
    store, run_id = stored
    meta = store.meta(run_id)
    table = list_table(store.people(run_id))
    path = write_export(table, "csv", tmp_path / "l.csv", meta)
    assert path.read_text().splitlines()[0] == ",".join(FILE_COLUMNS)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == FILE_COLUMNS
    assert FILE_COLUMNS[:3] == ["Month", "Index date", "Neighbourhood"]
    assert not set(LIST_FLAGS) & set(frame.columns) and "Flags" in frame.columns
    assert len(frame) == 12 and (frame["Run"] == run_id).all()
    assert (frame["Run status"] == "current").all() and (frame["Index date"] == INDEX_DATE).all()
    assert (frame["Model version"] == str(meta["model"]["version"])).all()
    assert frame["Risk"].tolist() == [f"{100 * p:.1f}%" for p in table["probability"]]
    assert frame["Risk"].str.fullmatch(r"\d{1,3}\.\d%").all()


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


def test_xlsx_has_an_about_sheet_and_one_printable_sheet_per_neighbourhood(
    stored: tuple[ScoreStore, str], tmp_path: Path
) -> None:
    store, run_id = stored
    meta = store.meta(run_id)
    table = list_table(store.people(run_id))
    path = write_export(table, "xlsx", tmp_path / "l.xlsx", meta)
    book = load_workbook(path)
    # Sheet names cannot hold []:*?/\ and are at most 31 characters.
    assert book.sheetnames == ["About", "East-Central- -A-", "North", "South"]
    last = get_column_letter(len(FILE_COLUMNS))
    column = {key: get_column_letter(i) for i, key in enumerate(FILE_HEADERS, start=1)}
    for sheet in book.worksheets[1:]:
        assert [c.value for c in sheet[1]] == FILE_COLUMNS
        assert sheet.max_row == 5
        assert sheet.auto_filter.ref == f"A1:{last}{sheet.max_row}"
        assert sheet.freeze_panes == "A2"
        assert sheet.column_dimensions[column["reasons"]].width >= 60
        # print setup: landscape, one page wide, header row on every page, reasons wrapped
        assert sheet.page_setup.orientation == "landscape"
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert sheet.page_setup.fitToWidth == 1 and sheet.page_setup.fitToHeight == 0
        assert sheet.print_title_rows == "$1:$1"
        assert run_id in sheet.oddHeader.center.text
        for row in range(2, sheet.max_row + 1):
            risk = sheet[f"{column['probability']}{row}"]
            assert isinstance(risk.value, float) and risk.number_format == "0.0%"
            day = sheet[f"{column['index_date']}{row}"]
            assert day.is_date and day.value.date().isoformat() == INDEX_DATE
            assert sheet[f"{column['reasons']}{row}"].alignment.wrap_text
            assert sheet[f"{column['month']}{row}"].value == meta["month"]
            assert sheet[f"{column['run_id']}{row}"].value == run_id
    about = {r[0].value: r[1].value for r in book["About"].iter_rows() if len(r) > 1}
    assert about["Month"] == meta["month"] and about["Run"] == run_id
    assert about["Index date"].date().isoformat() == INDEX_DATE
    assert about["Model"] == f"{meta['model']['name']} version {meta['model']['version']}"
    for key, word in LIST_FLAGS.items():
        assert about[word], key  # the legend explains every flag
    assert "10 percentage points" in about[LIST_FLAGS["risk_risen"]]
    assert about["low"] == 0.0 and about["high"] == 0.30  # band legend, from the run
    assert book["About"].page_setup.orientation == "landscape"
    assert run_id in book.properties.subject
    sheets = pd.read_excel(path, sheet_name=None, dtype={"Person ID": str})
    assert all(list(s.columns) == FILE_COLUMNS for k, s in sheets.items() if k != "About")


def test_csv_and_xlsx_hold_the_same_table(stored: tuple[ScoreStore, str], tmp_path: Path) -> None:
    """Cell for cell, the XLSX shown as its number formats say is the CSV."""
    store, run_id = stored
    meta = store.meta(run_id)
    table = list_table(store.people(run_id), "North")
    csv = pd.read_csv(write_export(table, "csv", tmp_path / "n.csv", meta), dtype=str,
                      keep_default_na=False)  # fmt: skip
    book = load_workbook(write_export(table, "xlsx", tmp_path / "n.xlsx", meta))
    shown = []
    for row in book["North"].iter_rows(min_row=2):
        cells = []
        for cell in row:
            if cell.value is None:
                cells.append("")
            elif cell.number_format == "0.0%":
                cells.append(f"{100 * cell.value:.1f}%")
            elif cell.is_date:
                cells.append(cell.value.date().isoformat())
            else:
                cells.append(str(cell.value))
        shown.append(cells)
    assert shown == csv.to_numpy().tolist()


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
        assert frame.loc[0, "Risk last month"] == "-25.0%"  # a number, as a percentage
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
        float(text.removesuffix("%"))
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
