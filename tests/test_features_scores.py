"""eFI, Hospital Frailty Risk Score and Charlson index against hand-worked examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_features_common import D, load, person, row_of

from features import build_features
from features.codelists import charlson_weights, efi_deficits, hfrs_points


def _gp(pid: str, code: str, when: str) -> dict[str, str]:
    return {"person_id": pid, "event_date": when, "snomed_code": code}


def _rx(pid: str, bnf: str, when: str = "2024-11-15") -> dict[str, str]:
    return {"person_id": pid, "issue_date": when, "bnf_code": bnf}


FIVE_MEDICINES = ["0212000B0AAABAB", "0202010B0AAABAB", "0407010H0AAAMAM", "0601022B0AAABAB",
                  "0205051R0AAAJAJ"]  # fmt: skip


def test_efi_counts_deficits_over_36_with_bands_and_change(tmp_path: Path) -> None:
    deficits = efi_deficits()
    first_codes = {d: codes[0] for d, codes in deficits.items()}
    names = sorted(first_codes)
    gp = [
        # E1: falls, heart failure, hypertension (twice), dementia (memory deficit) + polypharmacy
        # = 5 deficits -> 5/36 = 0.139, mild. Falls and heart failure were coded 2 years ago,
        # the rest this year, so 12 months ago the score was 2/36 (no polypharmacy then).
        _gp("E1", "161898004", "2022-06-01"),
        _gp("E1", "84114007", "2022-06-01"),
        _gp("E1", "38341003", "2024-03-01"),
        _gp("E1", "59621000", "2024-04-01"),
        _gp("E1", "52448006", "2024-05-01"),
        _gp("E1", "69896004", "2025-01-01"),  # on the index date: not read
        # E2: 4 deficits -> 0.111, fit.  E3: 12 -> 0.333, moderate.  E4: 13 -> 0.361, severe.
        *(_gp("E2", first_codes[d], "2020-01-01") for d in names[:4]),
        *(_gp("E3", first_codes[d], "2020-01-01") for d in names[:12]),
        *(_gp("E4", first_codes[d], "2020-01-01") for d in names[:13]),
    ]
    rx = [_rx("E1", code) for code in FIVE_MEDICINES] + [_rx("E1", "0101010C0AAAAAA", "2024-06-01")]
    extract = load(
        tmp_path,
        {"people": [person(p) for p in ("E1", "E2", "E3", "E4")], "gp_events": gp,
         "prescriptions": rx},
    )  # fmt: skip
    table = build_features(extract, D)
    e1 = row_of(table, "E1")
    assert len(deficits) == 35  # + polypharmacy from prescribing = 36
    assert e1["polypharmacy_5"] == 1  # the eFI's polypharmacy deficit
    assert e1["efi_falls"] == 1 and e1["efi_arthritis"] == 0
    assert e1["efi_memory_cognitive_problems"] == 1 and e1["efi_hypertension"] == 1
    assert e1["efi_score"] == pytest.approx(5 / 36)
    assert e1["efi_band"] == 1
    assert e1["efi_change_12m"] == pytest.approx(3 / 36)
    expected = {"E2": (4 / 36, 0), "E3": (12 / 36, 2), "E4": (13 / 36, 3)}
    for pid, (score, band) in expected.items():
        row = row_of(table, pid)
        assert row["efi_score"] == pytest.approx(score), pid
        assert row["efi_band"] == band, pid
        assert row["efi_change_12m"] == 0.0, pid


def _spell(pid: str, when: str, diagnoses: str, method: str = "21") -> dict[str, str]:
    return {"person_id": pid, "admission_date": when, "discharge_date": when,
            "diagnoses": diagnoses, "admission_method": method}  # fmt: skip


def test_hfrs_sums_points_of_distinct_codes_over_two_years(tmp_path: Path) -> None:
    spells = [
        # H1: F03 2.1 + W19 3.2 + R29 3.6 + N18 1.4 = 10.3 (F03 twice counts once), intermediate.
        _spell("H1", "2024-02-01", "F03.9;W19;R29.6"),
        _spell("H1", "2023-06-01", "N18.4;F03.0", method="11"),  # elective admissions count too
        _spell("H1", "2022-12-31", "R69"),  # over 2 years before D: not counted
        _spell("H1", "2025-01-01", "R69"),  # on D: not counted
        # H2: R69 1.3 only, low.  H3: over 15, high (below).  H4: no admissions, 0.
        _spell("H2", "2024-06-01", "R69"),
    ]
    points = hfrs_points()
    # H3 gets the seven highest-scoring codes, worked out here by hand from the file.
    top = sorted(points.items(), key=lambda kv: -kv[1])[:7]
    spells.append(_spell("H3", "2024-06-01", ";".join(code for code, _ in top)))
    extract = load(tmp_path, {"people": [person(p) for p in ("H1", "H2", "H3", "H4")],
                              "hospital_spells": spells})  # fmt: skip
    table = build_features(extract, D)
    assert (points["F03"], points["W19"], points["R29"], points["N18"]) == (2.1, 3.2, 3.6, 1.4)
    assert row_of(table, "H1")["hfrs_score"] == pytest.approx(10.3)
    assert row_of(table, "H1")["hfrs_band"] == 1
    assert row_of(table, "H2")["hfrs_score"] == pytest.approx(1.3)
    assert row_of(table, "H2")["hfrs_band"] == 0
    h3 = sum(p for _, p in top)
    assert h3 > 15
    assert row_of(table, "H3")["hfrs_score"] == pytest.approx(h3)
    assert row_of(table, "H3")["hfrs_band"] == 2
    assert row_of(table, "H4")["hfrs_score"] == 0.0 and row_of(table, "H4")["hfrs_band"] == 0


def test_hfrs_band_edges(tmp_path: Path) -> None:
    # Exactly 5: R29 3.6 + N18 1.4.
    spells = [_spell("B5", "2024-06-01", "R29;N18")]
    extract = load(tmp_path, {"people": [person("B5")], "hospital_spells": spells})
    row = row_of(build_features(extract, D), "B5")
    assert row["hfrs_score"] == pytest.approx(5.0)
    assert row["hfrs_band"] == 1  # 5-15 is intermediate


def test_hfrs_edges_are_exact_whatever_the_order_of_the_sum(tmp_path: Path) -> None:
    # 1.9 + 2.3 + 0.8 is 4.999999999999999 in doubles, 7.1 + 2.7 + 2.3 + 2.9 is
    # 15.000000000000002: points are summed in integer tenths, so both are exactly the edge.
    spells = [
        _spell("E5", "2024-06-01", "E53;E86;I63"),
        _spell("E15", "2024-06-01", "F00;R41;E86;B96"),
    ]
    people = [person("E5"), person("E15")]
    extract = load(tmp_path, {"people": people, "hospital_spells": spells})
    table = build_features(extract, D)
    assert (row_of(table, "E5")["hfrs_score"], row_of(table, "E15")["hfrs_score"]) == (5.0, 15.0)
    assert row_of(table, "E5")["hfrs_band"] == row_of(table, "E15")["hfrs_band"] == 1


def test_charlson_weights_with_hierarchy(tmp_path: Path) -> None:
    spells = [
        # C1: MI 1 + CHF 1 + diabetes with complication 2 (without: 0) + metastatic 6
        # (any malignancy: 0) + moderate/severe liver 3 (mild: 0) = 13.
        _spell("C1", "2023-01-10", "I21.9;I50.0;E11.9"),
        _spell("C1", "2024-05-10", "E11.2;C50.9;C78.0"),
        _spell("C1", "2024-07-10", "K70.3;K70.4"),
        _spell("C1", "2019-12-01", "J44.1"),  # over 5 years before D: not counted
        _spell("C1", "2025-02-01", "N18.5"),  # after D: not counted
        # C2: diabetes without complication 1 + mild liver 1 + malignancy 2 = 4.
        _spell("C2", "2024-01-01", "E11.9;K70.3;C50.1"),
    ]
    extract = load(tmp_path, {"people": [person(p) for p in ("C1", "C2", "C3")],
                              "hospital_spells": spells})  # fmt: skip
    table = build_features(extract, D)
    w = charlson_weights()
    assert (w["myocardial_infarction"], w["metastatic_solid_tumour"]) == (1, 6)
    assert row_of(table, "C1")["charlson_index"] == 13
    assert row_of(table, "C2")["charlson_index"] == 4
    assert row_of(table, "C3")["charlson_index"] == 0
