"""A tidy CLI (issue 13, item 5): tables fit 80 columns without cutting a word, numbers carry
thousands separators, `lists` writes to stdout without `--out`, progress bars finish, and
`train` shows none of MLflow's own log lines (they go to the log file)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from test_scoring_support import feature_frame, run_for, train_model
from test_training_support import REAL_TRAINING, _migrated_store, real_extract, real_run
from typer.testing import CliRunner

from casefinder.cli import app
from casefinder.tables import print_table
from config.settings import ListSettings
from scoring.exports import FILE_COLUMNS
from scoring.store import ScoreStore

runner = CliRunner()
WIDTH = 80
# Lines MLflow (and the libraries under it) print of their own accord.
LIBRARY_LINE = re.compile(
    r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARNING)|Successfully registered model|"
    r"Created version|CloudPickle|pip version|uv_utils|alembic|Warning: .*mlflow",
    re.MULTILINE,
)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[\w'%().,+-]+", text))


def assert_fits(output: str, *names: str) -> None:
    """No line wider than the terminal, no ellipsis, and every name whole on one line."""
    lines = output.splitlines()
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    assert "…" not in output and "..." not in output
    words = _words(output)
    for name in names:
        for word in name.split():
            assert word in words, (word, output)


def test_a_wide_table_is_split_and_wrapped_between_words_never_cut() -> None:
    console = Console(file=io.StringIO(), width=WIDTH, color_system=None)
    headers = ["Neighbourhood", "Capacity", "Not eligible", "Eligible", "Excluded",
               "Candidates", "Listed", "New this month", "On last month's list", "Risk risen",
               "Expected PPV", "Already on the neighbourhood MDT caseload"]  # fmt: skip
    rows = [["Castleton-under-Lyme", 20, 898, 123456, 415, 2658, 20, 20, 0, 0, 0.695, 1385]]
    print_table(console, headers, rows, title="Per neighbourhood")
    output = console.file.getvalue()
    assert_fits(output, *headers, "Castleton-under-Lyme", "123,456", "1,385")
    assert "(continued)" in output  # split, the name column repeated
    assert output.count("Castleton-under-Lyme") >= 2


@pytest.fixture
def home(cli_home: Path) -> Path:
    store = ScoreStore(cli_home / "scores")
    store.write(run_for(train_model(), feature_frame(240), rules=ListSettings(capacity=3)))
    return cli_home


def test_summary_and_runs_fit_80_columns(home: Path) -> None:
    env = {"COLUMNS": str(WIDTH)}
    result = runner.invoke(app, ["summary", "--month", "2026-11"], env=env)
    assert result.exit_code == 0, result.output
    assert_fits(
        result.output, "neighbourhood", "not eligible", "on last month's list", "expected PPV",
        "already on the neighbourhood MDT caseload", "living in a care home",
    )  # fmt: skip
    result = runner.invoke(app, ["runs"], env=env)
    assert result.exit_code == 0
    run_id = ScoreStore(home / "scores").current_run_id("2026-11")
    assert_fits(result.output, run_id, "Scored (UTC)", "current")


def test_lists_without_out_writes_the_file_to_stdout(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written into the current folder
    result = runner.invoke(app, ["lists", "--month", "2026-11"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame.columns) == FILE_COLUMNS and len(frame) == 9
    assert "9 people from run" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    result = runner.invoke(app, ["lists", "--month", "2026-11", "--format", "xlsx"])
    assert result.exit_code == 2 and "needs --out" in result.output


def test_every_training_progress_bar_finishes(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.getbasetemp() / "training-real"
    root.mkdir(exist_ok=True)
    seen = real_run(root)["progress"]
    assert {"fit booster", "evaluate", "log run"} <= set(seen)
    assert {task: values[-1] for task, values in seen.items()} == dict.fromkeys(seen, 1.0)


def test_tuning_progress_bars_finish() -> None:
    from config.settings import TrainingSettings
    from training.fit import fit_booster

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    y = (rng.random(400) < 1 / (1 + np.exp(-2 * x["a"]))).astype(int).to_numpy()
    seen: dict[str, float] = {}
    fit_booster(x[:300], y[:300], x[300:], y[300:], TrainingSettings(), tune_trials=2,
                progress=lambda task, f: seen.__setitem__(task, f))  # fmt: skip
    assert seen == {"tune booster": 1.0, "fit booster": 1.0}


def test_train_shows_no_mlflow_log_lines_and_fits_80_columns(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The real command in a fresh interpreter (so MLflow is imported as a user's would be)."""
    root = tmp_path_factory.getbasetemp() / "training-real"
    root.mkdir(exist_ok=True)
    extract = real_extract(root)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(_migrated_store(), home / "mlflow.db")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "COLUMNS": str(WIDTH),
        "CASEFINDER_HOME": str(home),
        **{f"CASEFINDER_TRAINING__{k.upper()}": str(v) for k, v in REAL_TRAINING.items()},
    }
    done = subprocess.run(
        [sys.executable, "-m", "casefinder.cli", "train", str(extract)],
        capture_output=True, text=True, env=env, timeout=600, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert not LIBRARY_LINE.search(output), LIBRARY_LINE.search(output)
    assert_fits(
        output, "logistic regression", "prior emergency admissions", "AUROC gain",
        "Gain 95% CI", "Sensitivity at list size", "PPV at list size",
    )  # fmt: skip
    assert re.search(r"^  casefinder promote --version \d+$", done.stdout, re.MULTILINE)
    log = (home / "logs" / "casefinder.log").read_text()
    assert "Successfully registered model" in log and "mlflow" in log


def test_mlflow_ui_opens_this_homes_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`casefinder mlflow-ui` (the README's command) runs `mlflow ui` on CASEFINDER_HOME's
    store, wherever that is."""
    from casefinder.commands.training import mlflow_ui_command
    from config.settings import load_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CASEFINDER_HOME", str(tmp_path / "elsewhere"))
    uri = load_settings().tracking_uri
    assert uri == f"sqlite:///{(tmp_path / 'elsewhere' / 'mlflow.db').resolve()}"
    args = mlflow_ui_command(uri, "127.0.0.1", 5001)
    assert args[1:4] == ["-m", "mlflow", "ui"]
    assert args[args.index("--backend-store-uri") + 1] == uri and args[-1] == "5001"


def test_the_mlflow_store_schema_is_made_once_and_copied_into_new_homes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18: a new home gets MLflow's store by copying an empty, migrated one made once per
    machine and MLflow version, not by running every migration again."""
    from config.settings import MlflowSettings, Settings
    from models.registry import empty_store_template, use_tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = Settings(home=tmp_path / "a", mlflow=MlflowSettings())
    use_tracking(first).search_experiments()
    template = empty_store_template()
    assert template.parent == tmp_path / "cache" / "casefinder"
    made = template.stat().st_mtime_ns
    second = Settings(home=tmp_path / "b", mlflow=MlflowSettings())
    client = use_tracking(second)
    assert template.stat().st_mtime_ns == made  # not made again
    assert (tmp_path / "b" / "mlflow.db").read_bytes() == template.read_bytes()
    client.create_experiment("x")  # a working store
    assert [e.name for e in client.search_experiments()].count("x") == 1
    assert "x" not in [e.name for e in use_tracking(first).search_experiments()]


def test_help_keeps_every_bracketed_settings_section() -> None:
    """Option help that names a settings section ("[engine] settings") shows it: Rich reads an
    unescaped `[engine]` as markup and drops it."""
    import typer

    checked = 0
    commands = [([], typer.main.get_command(app))]
    while commands:
        path, command = commands.pop()
        commands += [([*path, n], c) for n, c in getattr(command, "commands", {}).items()]
        sections = {m for p in command.params for m in re.findall(r"\[[a-z_]+\]", p.help or "")}
        if not sections:
            continue
        shown = runner.invoke(app, [*path, "--help"], terminal_width=200).output
        for section in sections:
            assert section in shown, (path, section)
            checked += 1
    assert checked >= 5  # --engine's "[engine]" on features, panel, train, predict and score


FAST_EXIT_SCRIPT = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from casefinder import cli

out = Path(sys.argv[1])
POOL = ThreadPoolExecutor(1)  # kept, as MLflow keeps one: its idle worker must not hold the exit
def late_thread():
    time.sleep(0.3)
    (out / "thread").write_text("joined")
def command():
    atexit.register(lambda: (out / "atexit").write_text("ran"))
    POOL.submit(time.sleep, 0.1)
    threading.Thread(target=late_thread).start()
    print("printed, not yet flushed", end="")
    raise SystemExit(sys.argv[2] if not sys.argv[2].isdigit() else int(sys.argv[2]))
cli.app = command
cli.run()
"""


@pytest.mark.parametrize(("exit_with", "status"), [("0", 0), ("3", 3), ("no model", 1)])
def test_the_command_ends_its_process_as_python_would_but_without_teardown(
    tmp_path: Path, exit_with: str, status: int
) -> None:
    """`casefinder.cli.run` skips the interpreter's teardown, so it must do what that would:
    stop an idle thread pool, wait for a non-daemon thread, run exit handlers, flush output,
    keep the exit status."""
    done = subprocess.run(
        [sys.executable, "-c", FAST_EXIT_SCRIPT, str(tmp_path), exit_with],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert done.returncode == status, done.stderr
    assert done.stdout == "printed, not yet flushed"
    assert (tmp_path / "thread").read_text() == "joined"
    assert (tmp_path / "atexit").read_text() == "ran"
    if status == 1:
        assert done.stderr.strip() == "no model"


TELEMETRY_SCRIPT = """
import sys
if sys.argv[1] == "casefinder":
    import config  # noqa: F401
import mlflow  # noqa: F401
from mlflow.telemetry import get_telemetry_client
print(get_telemetry_client() is not None)
"""


def test_mlflow_sends_no_telemetry_from_a_process_that_imports_casefinder() -> None:
    """MLflow starts its usage telemetry when imported outside CI; casefinder turns it off."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}

    def telemetry_on(first: str) -> bool:
        done = subprocess.run(
            [sys.executable, "-c", TELEMETRY_SCRIPT, first], capture_output=True, text=True,
            env=env, timeout=120, cwd=Path(__file__).parents[1], check=True,
        )  # fmt: skip
        return done.stdout.strip() == "True"

    assert telemetry_on("mlflow")  # MLflow's default, in an environment that is not CI
    assert not telemetry_on("casefinder")
