"""manifest.json: extract_date, per-table complete_to, and a clear error for each way it breaks."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from records import ExtractError, read_manifest


def _write(folder: Path, content: str | bytes) -> Path:
    path = folder / "manifest.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return folder


def test_reads_extract_date_and_complete_to(tmp_path: Path) -> None:
    text = json.dumps(
        {"extract_date": "2026-10-31", "complete_to": {"prescriptions": "2026-09-30"}}
    )
    manifest = read_manifest(_write(tmp_path, text))
    assert manifest.extract_date == date(2026, 10, 31)
    assert manifest.complete_to == {"prescriptions": date(2026, 9, 30)}


def test_tables_not_in_complete_to_are_complete_to_extract_date(tmp_path: Path) -> None:
    text = json.dumps({"extract_date": "2026-10-31", "complete_to": {"social_care": "2026-10-15"}})
    manifest = read_manifest(_write(tmp_path, text))
    assert manifest.complete_to_for("social_care") == date(2026, 10, 15)
    assert manifest.complete_to_for("gp_events") == date(2026, 10, 31)
    with pytest.raises(KeyError, match="not a contract table"):
        manifest.complete_to_for("no_such_table")


def test_complete_to_may_be_absent_or_null(tmp_path: Path) -> None:
    assert read_manifest(_write(tmp_path, '{"extract_date": "2026-10-31"}')).complete_to == {}
    text = '{"extract_date": "2026-10-31", "complete_to": null}'
    assert read_manifest(_write(tmp_path, text)).complete_to == {}


def test_complete_to_on_extract_date_is_allowed(tmp_path: Path) -> None:
    text = json.dumps({"extract_date": "2026-10-31", "complete_to": {"caseloads": "2026-10-31"}})
    assert read_manifest(_write(tmp_path, text)).complete_to_for("caseloads") == date(2026, 10, 31)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "{not json", r"manifest\.json: not valid JSON \(line 1, column 2\)", id="bad-json"
        ),
        pytest.param(b"\xff\xfe{}", r"manifest\.json: not UTF-8 text", id="not-utf8"),
        pytest.param("[]", r"manifest\.json: expected a JSON object", id="not-object"),
        pytest.param("{}", r"manifest\.json: missing 'extract_date'", id="no-extract-date"),
        pytest.param(
            '{"extract_date": "31/10/2026"}',
            r"manifest\.json: extract_date is not a date \(YYYY-MM-DD\)",
            id="extract-date-format",
        ),
        pytest.param(
            '{"extract_date": 20261031}',
            r"manifest\.json: extract_date is not a date \(YYYY-MM-DD\)",
            id="extract-date-number",
        ),
        pytest.param(
            '{"extract_date": "2026-02-30"}',
            r"manifest\.json: extract_date is not a valid date",
            id="extract-date-impossible",
        ),
        pytest.param(
            '{"extract_date": "2026-10-31", "complete_to": ["prescriptions"]}',
            r"manifest\.json: 'complete_to' must be an object of table: date",
            id="complete-to-not-object",
        ),
        pytest.param(
            '{"extract_date": "2026-10-31", "complete_to": {"gp_event": "2026-10-01"}}',
            r"manifest\.json: complete_to names unknown table 'gp_event'",
            id="unknown-table",
        ),
        pytest.param(
            '{"extract_date": "2026-10-31", "complete_to": {"gp_events": "2026/10/01"}}',
            r"manifest\.json: complete_to\['gp_events'\] is not a date \(YYYY-MM-DD\)",
            id="complete-to-bad-date",
        ),
        pytest.param(
            '{"extract_date": "2026-10-31", "complete_to": {"gp_events": "2026-11-01"}}',
            r"manifest\.json: complete_to\['gp_events'\] 2026-11-01 is after extract_date "
            r"2026-10-31",
            id="complete-to-after-extract-date",
        ),
    ],
)
def test_bad_manifest_is_an_extract_error_naming_the_problem(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    with pytest.raises(ExtractError, match=f"^{message}$"):
        read_manifest(_write(tmp_path, content))


def test_missing_manifest_is_an_extract_error(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match=r"^manifest\.json: missing from "):
        read_manifest(tmp_path)
