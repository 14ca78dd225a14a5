"""A small working home for the serving tests: extract, trained champion model, two monthly runs,
users with tokens, and a real `bentoml serve` process on a free loopback port.

Everything is real: the extract goes through the loader and the features stage, the model is a
LightGBM booster with a Platt calibrator logged to a SQLite MLflow registry as champion, and the
runs are made by `scoring.run.score_month`. The model's outcome label is drawn from a known
logistic function of a few features (the test does not need the synthetic generator's realism).
Once the runs are stored the extract folder is renamed (`moved_extract`), as extracts are
transient: the service must work from the score store alone. The home is built once per test
session per xdist worker group (a file lock guards it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from casefinder.commands.serving import bentoml_serve_command
from tests.extract_builder import valid_rows, write_extract

MONTHS = ("2026-09", "2026-10")
NEIGHBOURHOODS = ("North", "South")
PEOPLE = 240
OPTED_OUT = "P0006"  # a North person who opted out of data use beyond direct care
ROLES = {
    "scientist": ("data_scientist", None),
    "north_team": ("team", "North"),
    "south_team": ("team", "South"),
    "north_clinician": ("clinician", "North"),
    "south_clinician": ("clinician", "South"),
}
ROOT = Path(__file__).resolve().parents[1]


def _day(rng: np.random.Generator, start: date, end: date) -> str:
    return (start + timedelta(days=int(rng.integers(0, (end - start).days)))).isoformat()


def extract_rows(seed: int = 5) -> dict[str, list[dict[str, str]]]:
    """A valid extract of `PEOPLE` people aged 66-95 with hospital, A&E, community and social care
    activity spread over 2024-2026; about a third have much more activity than the rest."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict[str, str]]] = {
        t: []
        for t in (
            "people",
            "gp_events",
            "prescriptions",
            "hospital_spells",
            "ae_attendances",
            "outpatient_appointments",
            "community_contacts",
            "social_care",
            "mental_health_contacts",
            "caseloads",
        )
    }
    start, end = date(2024, 6, 1), date(2026, 10, 30)
    spell = 0
    for i in range(PEOPLE):
        pid = f"P{i:04d}"
        heavy = rng.random() < 0.35
        rows["people"].append(
            {
                "person_id": pid,
                "birth_date": f"{1930 + int(rng.integers(0, 29))}-0{1 + i % 9}-15",
                "sex": str(1 + i % 2),
                "ethnic_category": "A",
                "lsoa_code": f"E0100000{i % 9}",
                "imd_decile": str(1 + i % 10),
                "gp_practice_code": "P88001" if i % 2 else "P88002",
                "neighbourhood": NEIGHBOURHOODS[i % 2],
                "registration_start": "1995-01-01",
                "registration_end": "",
                "date_of_death": "",
                "data_opt_out": "Y" if pid == OPTED_OUT else "N",
            }
        )
        for _ in range(int(rng.poisson(3.0 if heavy else 0.4))):
            spell += 1
            admitted = _day(rng, start, end)
            rows["hospital_spells"].append(
                {
                    "spell_id": f"S{spell}",
                    "person_id": pid,
                    "admission_date": admitted,
                    "discharge_date": (
                        date.fromisoformat(admitted) + timedelta(days=3)
                    ).isoformat(),
                    "admission_method": "21",
                    "diagnoses": "I500;J18",
                    "discharge_destination": "19",
                }
            )
        for _ in range(int(rng.poisson(2.0 if heavy else 0.3))):
            rows["ae_attendances"].append(
                {
                    "person_id": pid,
                    "arrival_date": _day(rng, start, end),
                    "arrival_mode": "ambulance",
                    "admitted": "N",
                }
            )
        for _ in range(int(rng.poisson(4.0 if heavy else 0.5))):
            rows["community_contacts"].append(
                {
                    "person_id": pid,
                    "contact_date": _day(rng, start, end),
                    "service": "district_nursing",
                }
            )
        if heavy and rng.random() < 0.5:
            rows["social_care"].append(
                {
                    "person_id": pid,
                    "event_type": "request",
                    "start_date": _day(rng, start, end),
                    "end_date": "",
                    "service_type": "",
                    "hours_per_week": "",
                }
            )
    for table, table_rows in rows.items():  # every table needs a row (the loader reads headers)
        if not table_rows:
            table_rows.extend({**r, "person_id": "P0001"} for r in valid_rows()[table])
    return rows


def write_small_extract(folder: Path) -> Path:
    manifest = {
        "extract_date": "2026-10-31",
        "complete_to": {"prescriptions": "2026-10-31"},
    }
    return write_extract(folder, extract_rows(), manifest=manifest)


def _label(features: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Outcome drawn from a known logistic function of hospital and community activity."""
    cols = [c for c in features.columns if c.startswith("emergency_admissions_12m")]
    admissions = features[cols[0]].fillna(0).to_numpy(float) if cols else 0.0
    age = features["age"].fillna(75).to_numpy(float)
    logit = -3.0 + 0.9 * admissions + 0.05 * (age - 75)
    return (rng.random(len(features)) < 1 / (1 + np.exp(-logit))).astype(int)


def train_champion(extract_dir: Path, settings, seed: int = 11, rounds: int = 40) -> str:
    """Train a small real model on the extract's features and register it as champion (another
    `seed` or `rounds` gives another model)."""
    import lightgbm as lgb
    import mlflow
    from mlflow import MlflowClient

    import features
    from models.flavour import log_risk_model
    from models.risk_model import PlattCalibrator, RiskModel
    from records import load_extract
    from training.tracking import use_experiment

    extract = load_extract(extract_dir)
    frames = [features.build_features(extract, date(2026, m, 1)) for m in (3, 5, 7, 9)]
    extract.con.close()
    names = list(features.model_feature_names())
    panel = pd.concat(frames, ignore_index=True)
    rng = np.random.default_rng(seed)
    y = _label(panel, rng)
    x = panel[names].astype(float)
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "min_data_in_leaf": 10,
        "verbose": -1,
        "seed": 3,
        "num_threads": 1,
        "deterministic": True,
    }
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=rounds)
    calibrator = PlattCalibrator().fit(booster.predict(x, raw_score=True), y)
    model = RiskModel(booster=booster, calibrator=calibrator, feature_names=names)
    use_experiment(settings)  # artifacts under home, not the working directory
    with mlflow.start_run():
        info = log_risk_model(
            model,
            panel,
            settings.home / "work",
            registered_model_name=settings.mlflow.registered_model,
        )
    version = str(info.registered_model_version)
    MlflowClient(settings.tracking_uri).set_registered_model_alias(
        settings.mlflow.registered_model, "champion", version
    )
    return version


def moved_extract(extract_dir: Path) -> Path:
    """Where `build_home` moves the extract the runs were scored from."""
    return extract_dir.with_name(f"{extract_dir.name}-moved")


def build_home(home: Path, extract_dir: Path) -> dict[str, str]:
    """Fill `home` (champion, runs for `MONTHS` scored from an extract written to
    `extract_dir` and then moved to `moved_extract(extract_dir)`, users); return user name ->
    token."""
    from config.settings import load_settings
    from scoring.run import score_month
    from serving.users import UserStore

    os.environ["CASEFINDER_HOME"] = str(home)
    settings = load_settings(home=home)
    settings.ensure_home()
    write_small_extract(extract_dir)
    train_champion(extract_dir, settings)
    for month in MONTHS:
        score_month(extract_dir, month, settings)
    extract_dir.rename(moved_extract(extract_dir))  # the runs' recorded extract path is gone
    store = UserStore.of(settings)
    tokens = {name: store.add(name, role, hood)[1] for name, (role, hood) in ROLES.items()}
    (home / "tokens.json").write_text(json.dumps(tokens))
    return tokens


def shared_home(base: Path) -> tuple[Path, dict[str, str]]:
    """The test home under `base` (built once; other workers wait on the lock and reuse it)."""
    base.mkdir(parents=True, exist_ok=True)
    home, done = base / "home", base / "home" / "tokens.json"
    with open(base / "home.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(base / "extract", ignore_errors=True)
            shutil.rmtree(moved_extract(base / "extract"), ignore_errors=True)
            build_home(home, base / "extract")
    return home, json.loads(done.read_text())


def copy_home(source: Path, target: Path) -> Path:
    """A private copy of a built home (each server gets its own audit log and users)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("work"))
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `bentoml serve` process."""

    url: str
    home: Path
    tokens: dict[str, str]
    process: subprocess.Popen
    log: Path
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    def headers(self, user: str | None) -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}

    def settings(self):
        """The server's settings (its home and, when set, its database)."""
        from config.settings import load_settings

        url = self.env.get("CASEFINDER_DATABASE__URL")
        return load_settings(home=self.home, **({"database": {"url": url}} if url else {}))

    def audit(self):
        """The server's audit log (serving.audit.AuditLog)."""
        from serving.audit import AuditLog

        return AuditLog.of(self.settings())

    def audit_entries(self) -> list[dict]:
        """Every entry of the server's audit log, oldest first."""
        return self.audit().entries()

    def post(self, path: str, body: dict, user: str | None = None, **kw: Any) -> httpx.Response:
        """POST `body` as JSON to `path`, signed in as `user` (no token when None)."""
        return httpx.post(
            f"{self.url}{path}", json=body, headers=self.headers(user), timeout=60, **kw
        )


@contextlib.contextmanager
def running_server(
    home: Path, tokens: dict[str, str], timeout: float = 120, env: dict[str, str] | None = None,
    log_name: str = "server.log",
) -> Iterator[Server]:  # fmt: skip
    """Start `bentoml serve serving.service:CaseFinder` on a free loopback port (plain HTTP, so
    cookies are not Secure; `env` adds settings; failed-token throttling is off unless it sets
    it, as every test client shares 127.0.0.1); stop it after."""
    import httpx

    port = free_port()
    extra = {
        "CASEFINDER_SERVING__INSECURE_COOKIES": "true",
        "CASEFINDER_SERVING__FAILED_TOKENS_ALLOWED": "100000",
        **(env or {}),
    }
    env = {
        **os.environ,
        "CASEFINDER_HOME": str(home),
        "BENTOML_HOME": str(home / "bentoml"),
        **extra,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log = home / log_name
    with open(log, "wb") as out:
        process = subprocess.Popen(
            bentoml_serve_command("127.0.0.1", port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in {timeout}s:\n{log.read_text()[-4000:]}")
            time.sleep(0.3)
        yield Server(url, home, tokens, process, log, extra)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """Stop a server started in its own session: SIGTERM, then SIGKILL what is left (a busy
    worker may outlive its arbiter; the process group holds every one of them)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --- pytest fixtures (import them into a test module) ------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The shared home, built once per test run (xdist workers share it through a lock)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    base = tmp_path_factory.getbasetemp()
    base = base.parent / f"serving-{run}" if run else base / "serving"
    return shared_home(base)


@pytest.fixture(scope="module")
def server(built_home, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real `bentoml serve` process per test module, on a private copy of the home."""
    source, tokens = built_home
    home = copy_home(source, tmp_path_factory.mktemp("home") / "home")
    with running_server(home, tokens) as running:
        yield running
