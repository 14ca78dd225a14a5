"""Settings come from defaults, then the config file, then the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("CASEFINDER_CONFIG", "MLFLOW_TRACKING_URI", "CASEFINDER_MLFLOW__EXPERIMENT"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    return home


def test_defaults_put_all_working_state_under_home(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.home == clean_env
    assert settings.tracking_uri == f"sqlite:///{(clean_env / 'mlflow.db').resolve()}"
    assert settings.score_store.parent == clean_env
    assert settings.audit_log.parent == clean_env


def test_config_file_in_home_overrides_defaults(clean_env: Path) -> None:
    clean_env.mkdir()
    (clean_env / "casefinder.toml").write_text('[mlflow]\nexperiment = "from-file"\n')
    assert load_settings().mlflow.experiment == "from-file"


def test_environment_overrides_config_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[mlflow]\nexperiment = "from-file"\nregistered_model = "site-model"\n')
    monkeypatch.setenv("CASEFINDER_CONFIG", str(config))
    monkeypatch.setenv("CASEFINDER_MLFLOW__EXPERIMENT", "from-env")
    settings = load_settings()
    assert settings.mlflow.experiment == "from-env"
    assert settings.mlflow.registered_model == "site-model"


def test_mlflow_tracking_uri_environment_points_at_a_server(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert load_settings().tracking_uri == "http://127.0.0.1:5000"


def test_unknown_config_key_is_an_error(clean_env: Path) -> None:
    clean_env.mkdir()
    (clean_env / "casefinder.toml").write_text("not_a_setting = 1\n")
    with pytest.raises(ValueError, match="not_a_setting"):
        load_settings()


def test_two_homes_keep_runs_apart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path / "a"))
    first = load_settings().tracking_uri
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path / "b"))
    assert load_settings().tracking_uri != first


def test_commands_read_extracts_into_a_duckdb_held_to_the_records_memory_limit(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from extract_builder import valid_rows, write_extract

    from records import open_extract

    monkeypatch.setenv("CASEFINDER_RECORDS__DUCKDB_MEMORY_LIMIT", "300MB")
    settings = load_settings()
    extract = open_extract(write_extract(tmp_path / "extract", valid_rows()), settings)
    try:
        limit, spill = extract.con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
        assert limit == "286.1 MiB"  # DuckDB shows 300 MB in binary units
        assert Path(spill) == clean_env / "tmp" / "duckdb"
        assert extract.reports["people"].loaded > 0
    finally:
        extract.con.close()


def test_a_memory_limit_that_is_not_a_size_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from extract_builder import valid_rows, write_extract

    from records import open_extract

    monkeypatch.setenv("CASEFINDER_RECORDS__DUCKDB_MEMORY_LIMIT", "lots")
    folder = write_extract(tmp_path / "extract", valid_rows())
    with pytest.raises(ValueError, match="DuckDB memory limit 'lots' is not a size"):
        open_extract(folder, load_settings())
