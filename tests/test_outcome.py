"""The outcome: each agency rule, the threshold, "always counts", window edges, complete_to."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError
from test_features_common import load, person, row_of

from config.settings import OutcomeSettings, load_settings
from features import FeatureError, build_outcome

D = date(2024, 1, 1)  # window: 2024-01-01 .. 2024-12-31


def _c(pid: str, when: str, service: str) -> dict[str, str]:
    return {"person_id": pid, "contact_date": when, "service": service}


def _mh(pid: str, when: str, team: str) -> dict[str, str]:
    return {"person_id": pid, "contact_date": when, "team_type": team}


def _sc(pid: str, when: str, service: str, kind: str = "service") -> dict[str, str]:
    return {"person_id": pid, "event_type": kind, "start_date": when, "service_type": service}


def _spell(pid: str, when: str, method: str = "21") -> dict[str, str]:
    return {"person_id": pid, "admission_date": when, "discharge_date": when,
            "admission_method": method}  # fmt: skip


TABLES = {
    "people": [person(p) for p in ("O1", "O2", "O3", "O4", "O5", "O6", "O7", "O8")]
    + [person("Y1", birth_date="1970-01-01")],
    # The extract's history starts in 2020 (the outcome reads no GP events), so index dates
    # before the first outcome record are supported.
    "gp_events": [{"person_id": "O1", "event_date": "2020-01-01", "snomed_code": "38341003"}],
    "hospital_spells": [
        _spell("O1", "2024-01-01"),  # first day of the window
        _spell("O2", "2023-12-31"),  # the day before
        _spell("O2", "2025-01-01"),  # the day after the last day
        _spell("O4", "2024-05-01", method="11"),  # elective: not acute hospital
        _spell("Y1", "2024-02-01"),
    ],
    "mental_health_contacts": [
        _mh("O1", "2024-12-31", "crisis"),  # last day of the window
        _mh("O2", "2024-03-01", "crisis"),
        _mh("O7", "2024-03-01", "older_adult_cmht"),
        _mh("O7", "2024-03-01", "memory_service"),  # does not count
        _mh("Y1", "2024-03-01", "crisis"),
    ],
    "community_contacts": [
        *(_c("O3", f"2024-0{m}-01", "district_nursing") for m in range(1, 5)),
        *(_c("O3", f"2024-0{m}-01", "community_matron") for m in range(5, 7)),
        *(_c("O4", f"2024-0{m}-01", "district_nursing") for m in range(1, 6)),
        _c("O4", "2023-12-01", "district_nursing"),  # before the window: 5 in it
        _c("O5", "2024-06-01", "intermediate_care"),
    ],
    "social_care": [
        _sc("O3", "2024-07-01", "long_term_community"),
        _sc("O6", "2024-08-01", "long_term_residential"),
        _sc("O7", "2024-02-01", "", kind="assessment"),
        _sc("O7", "2024-02-01", "carer_support"),
        _sc("O8", "2023-11-01", "long_term_nursing"),  # started before the window
    ],
}


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory):
    return load(tmp_path_factory.mktemp("outcome"), TABLES)


def _agencies(frame, pid: str) -> tuple[int, ...]:
    row = row_of(frame, pid)
    return tuple(
        int(row[a])
        for a in (
            "outcome",
            "acute_hospital",
            "community_health",
            "adult_social_care",
            "mental_health",
        )
    )


def test_default_outcome_agency_rules_and_window_edges(extract) -> None:
    frame = build_outcome(extract, D)
    assert list(frame.columns) == ["person_id", "outcome", "acute_hospital", "community_health",
                                   "adult_social_care", "mental_health"]  # fmt: skip
    assert "Y1" not in set(frame["person_id"])  # under 65: not eligible
    assert _agencies(frame, "O1") == (1, 1, 0, 0, 1)  # both window edges count
    assert _agencies(frame, "O2") == (0, 0, 0, 0, 1)  # admissions just outside the window
    assert _agencies(frame, "O3") == (1, 0, 1, 1, 0)  # 4 DN + 2 matron = 6 contacts
    assert _agencies(frame, "O4") == (0, 0, 0, 0, 0)  # 5 DN contacts, elective admission
    assert _agencies(frame, "O5") == (0, 0, 1, 0, 0)  # intermediate care alone: one agency
    assert _agencies(frame, "O6") == (1, 0, 0, 1, 0)  # care home placement always counts
    assert _agencies(frame, "O7") == (0, 0, 0, 0, 1)  # assessment, carer support: no agency
    assert _agencies(frame, "O8") == (0, 0, 0, 0, 0)  # service started before the window


def test_threshold_and_window_are_configuration(extract) -> None:
    one = build_outcome(extract, D, OutcomeSettings(min_agencies=1))
    assert row_of(one, "O2")["outcome"] == 1 and row_of(one, "O5")["outcome"] == 1
    assert row_of(one, "O4")["outcome"] == 0
    three = build_outcome(extract, D, OutcomeSettings(min_agencies=3))
    assert row_of(three, "O1")["outcome"] == 0 and row_of(three, "O3")["outcome"] == 0
    assert row_of(three, "O6")["outcome"] == 1  # always counts, whatever the threshold
    six = build_outcome(extract, D, OutcomeSettings(window_months=6))
    assert _agencies(six, "O1") == (0, 1, 0, 0, 0)  # the December crisis contact is outside
    no_always = build_outcome(extract, D, OutcomeSettings(always_counts=[]))
    assert row_of(no_always, "O6")["outcome"] == 0


def test_a_site_defines_its_own_agencies(extract) -> None:
    definition = OutcomeSettings.model_validate(
        {
            "min_agencies": 1,
            "always_counts": [],
            "agencies": {
                "dn_heavy": [{"table": "community_contacts", "column": "service",
                              "values": ["district_nursing"], "min_count": 5}],
            },
        }
    )  # fmt: skip
    frame = build_outcome(extract, D, definition)
    assert list(frame.columns) == ["person_id", "outcome", "dn_heavy"]
    assert row_of(frame, "O4")["outcome"] == 1 and row_of(frame, "O3")["outcome"] == 0


def test_settings_come_from_config_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    config.write_text("[outcome]\nwindow_months = 6\n", encoding="utf-8")
    monkeypatch.setenv("CASEFINDER_CONFIG", str(config))
    monkeypatch.setenv("CASEFINDER_OUTCOME__MIN_AGENCIES", "3")
    settings = load_settings()
    assert (settings.outcome.window_months, settings.outcome.min_agencies) == (6, 3)
    assert list(settings.outcome.agencies) == ["acute_hospital", "community_health",
                                               "adult_social_care", "mental_health"]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"min_agencies": 5}, "min_agencies 5 is more than the 4 agencies"),
        ({"agencies": {"x": [{"table": "people", "column": "sex", "values": ["1"]}]}},
         "'people' is not a dated event table"),
        ({"agencies": {"x": [{"table": "social_care", "column": "team", "values": ["a"]}]}},
         "social_care has no column 'team'"),
        ({"agencies": {"x": [{"table": "social_care", "column": "service_type",
                              "values": []}]}}, "at least 1 item"),
        ({"agencies": {"x": []}}, "agency 'x' has no rules"),
        ({"window_months": 0}, "greater than or equal to 1"),
    ],
)  # fmt: skip
def test_bad_definitions_are_refused_clearly(data: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OutcomeSettings.model_validate(data)


def test_outcome_needs_its_whole_window_observed(tmp_path: Path) -> None:
    manifest = {"extract_date": "2025-01-01", "complete_to": {"social_care": "2024-10-15"}}
    extract = load(tmp_path, TABLES, manifest)
    with pytest.raises(FeatureError, match=r"2024-01-01.*must end by 2024-10-15.*social_care"):
        build_outcome(extract, D)
    # Without social care in the definition, the same window is observed.
    definition = OutcomeSettings(
        agencies={"acute_hospital": OutcomeSettings().agencies["acute_hospital"]},
        min_agencies=1,
        always_counts=[],
    )
    assert row_of(build_outcome(extract, D, definition), "O1")["outcome"] == 1
    earlier = build_outcome(extract, date(2023, 10, 1))  # window ends 2024-09-30
    assert _agencies(earlier, "O2") == (1, 1, 0, 0, 1)  # its December 2023 admission is in
    with pytest.raises(FeatureError, match="latest index date with an observed outcome is "
                                           "2023-10-01"):  # fmt: skip
        build_outcome(extract, date(2023, 11, 1))
