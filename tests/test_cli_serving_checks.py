"""CLI guidance around the service: `users add` checks the neighbourhood against the scored runs,
`promote` says what happens to months already scored and to a running service."""

from __future__ import annotations

from typer.testing import CliRunner

from casefinder.cli import app as cli
from tests import serving_fixtures

built_home = serving_fixtures.built_home


def test_users_add_refuses_a_neighbourhood_no_run_has(built_home, tmp_path, monkeypatch):
    source, _ = built_home
    home = serving_fixtures.copy_home(source, tmp_path / "home")
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    runner = CliRunner()
    bad = runner.invoke(cli, ["users", "add", "ann", "--role", "team", "--neighbourhood", "Nth"])
    assert bad.exit_code == 2
    assert "no scored run has neighbourhood 'Nth'" in bad.output
    assert "North, South" in bad.output
    ok = runner.invoke(cli, ["users", "add", "ann", "--role", "team", "--neighbourhood", "North"])
    assert ok.exit_code == 0, ok.output


def test_after_promotion_names_the_months_to_rescore(built_home, tmp_path, monkeypatch, capsys):
    from casefinder.commands.training import _after_promotion
    from config.settings import load_settings

    source, _ = built_home
    home = serving_fixtures.copy_home(source, tmp_path / "home")
    _after_promotion(load_settings(home=home), "2")
    out = capsys.readouterr().out
    first, last = serving_fixtures.MONTHS[0], serving_fixtures.MONTHS[-1]
    assert f"2 scored month(s) ({first} to {last}) keep their own model's scores" in out
    assert f"casefinder score EXTRACT --month {last}" in out
    assert "no restart needed" in out
