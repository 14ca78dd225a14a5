"""A generated population against published figures (docs/synthetic.md gives the sources)."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest

from records import load_extract
from synthetic import ORACLE_FILE, SynthConfig, generate
from synthetic.process import DEATH_ANNUAL
from synthetic.realism import measure, outcome_sql

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    out = tmp_path_factory.mktemp("realism") / "extract"
    generate(SynthConfig(people=25_000, seed=21), out)
    loaded = load_extract(out)
    assert loaded.n_rejected == 0
    loaded.con.register("oracle", pq.read_table(out / ORACLE_FILE))
    return loaded


def test_population_matches_published_figures(extract):
    r = measure(extract.con, date(2025, 1, 1))
    assert r.eligible > 15_000
    # Emergency admissions: about 0.2-0.3 per person-year at 65+, rising steeply with age,
    # about 1.4 times higher in the most deprived quintile than the least.
    assert 0.2 <= r.admissions_per_person_year <= 0.3
    bands = list(r.admissions_by_band.values())
    assert all(b > a for a, b in itertools.pairwise(bands))
    assert bands[-1] > 3 * bands[0]
    assert 1.2 <= r.admissions_most_vs_least_deprived <= 1.7
    # eFI categories (Clegg 2016: about 50 / 35 / 12 / 3 per cent)
    efi = r.efi_categories
    assert 0.42 <= efi["fit"] <= 0.6
    assert 0.22 <= efi["mild"] <= 0.42
    assert 0.07 <= efi["moderate"] <= 0.18
    assert 0.01 <= efi["severe"] <= 0.07
    # Long-term social care: about 5-6 per cent of people 65+
    assert 0.035 <= r.long_term_social_care <= 0.075
    # Mortality within a third of the life table (both sexes averaged) in each band to 85-89
    table = DEATH_ANNUAL.mean(axis=0)
    for i, band in enumerate(("65-69", "70-74", "75-79", "80-84", "85-89"), start=1):
        assert abs(r.mortality_by_band[band] / table[i] - 1) < 0.35, (band, r.mortality_by_band)
    assert 0.08 <= r.outcome_rate <= 0.20


def test_realised_outcome_rate_matches_mean_oracle_probability(extract):
    for d in (date(2022, 4, 1), date(2024, 1, 1), date(2025, 10, 1)):
        n, realised, expected, var = extract.con.execute(
            f"""SELECT count(*), sum(outcome), sum(probability),
                       sum(probability * (1 - probability))
                FROM ({outcome_sql(d)}) o JOIN oracle p
                  ON p.person_id = o.person_id AND p.index_date = DATE '{d}'"""
        ).fetchone()
        assert n > 15_000
        assert abs(realised - expected) < 4 * np.sqrt(var), (d, realised, expected)
