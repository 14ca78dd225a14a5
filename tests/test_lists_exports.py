"""List exports open with pandas and openpyxl, with the expected columns and sheets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from test_scoring_support import feature_frame, run_for, train_model

from config.settings import ListSettings
from scoring.exports import LIST_COLUMNS, list_table, write_export
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
    assert (table["flags"] == "new").all()  # first month: everyone listed is new
    assert table["reasons"].str.len().gt(0).all()
    assert len(list_table(store.people(run_id), "North")) == 4
    with pytest.raises(ValueError, match=r"no neighbourhood 'Nowhere'.*known: East"):
        list_table(store.people(run_id), "Nowhere")


def test_csv_export(stored: tuple[ScoreStore, str], tmp_path: Path) -> None:
    store, run_id = stored
    meta = store.meta(run_id)
    path = write_export(list_table(store.people(run_id)), "csv", tmp_path / "l.csv", meta)
    frame = pd.read_csv(path, dtype={"person_id": str})
    assert list(frame.columns) == ["month", *LIST_COLUMNS, "run_id", "current_run"]
    assert len(frame) == 12 and (frame["run_id"] == run_id).all() and frame["current_run"].all()


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
    for sheet in book.worksheets:
        assert [c.value for c in sheet[1]] == LIST_COLUMNS
        assert sheet.max_row == 5
        assert sheet.auto_filter.ref == f"A1:L{sheet.max_row}"
        assert sheet.freeze_panes == "A2"
        assert sheet.column_dimensions["L"].width >= 60  # reasons
    assert run_id in book.properties.subject
    sheets = pd.read_excel(path, sheet_name=None, dtype={"person_id": str})
    assert sorted(sheets) == ["East-Central- -A-", "North", "South"]
    assert all(list(s.columns) == LIST_COLUMNS for s in sheets.values())


def test_unknown_format_is_refused(stored: tuple[ScoreStore, str], tmp_path: Path) -> None:
    store, run_id = stored
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        write_export(list_table(store.people(run_id)), "pdf", tmp_path / "l.pdf", {})
