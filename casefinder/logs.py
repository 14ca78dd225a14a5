"""Libraries' own log lines and warnings (MLflow, Alembic, SQLAlchemy, Optuna, uv detection,
Python warnings) go to the command's log file, `<home>/logs/casefinder.log`, not the terminal;
`casefinder --verbose` shows them on stderr too. The user's terminal shows casefinder's own
output only."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from config.progress import ProgressFn

# Loggers of the libraries casefinder drives; their records go to the log file.
LIBRARY_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "optuna", "py.warnings", "urllib3", "huey")
# casefinder's own diagnostic lines (e.g. `log run` step timings) go to the same file.
OWN_LOGGERS = ("casefinder",)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_state: dict[str, Path | bool] = {}


class _LazyFileHandler(logging.FileHandler):
    """A file handler that creates its folder only when the first record is written."""

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def route_library_logs(home: Path, verbose: bool = False) -> Path:
    """Send the libraries' log records and Python warnings to `<home>/logs/casefinder.log` (and
    to stderr when `verbose`); return the log file. Call before MLflow is imported: MLflow is
    told not to install its own stderr handler (`MLFLOW_CONFIGURE_LOGGING`)."""
    path = Path(home) / "logs" / "casefinder.log"
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    handler = _LazyFileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handlers: list[logging.Handler] = [handler]
    if verbose:
        shown = logging.StreamHandler(sys.stderr)
        shown.setFormatter(logging.Formatter(LOG_FORMAT))
        handlers.append(shown)
    for name in LIBRARY_LOGGERS + OWN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = list(handlers)
        quieter = name in ("sqlalchemy", "alembic")  # per-migration lines say nothing useful
        logger.setLevel(logging.WARNING if quieter else logging.INFO)
        logger.propagate = False
    logging.captureWarnings(True)
    _state.update(path=path, verbose=verbose)
    return path


def mlflow_prints_to_log() -> None:
    """MLflow's own prints ("Successfully registered model ...", "Created version ...") go to
    the `mlflow` logger, so to the log file, once `route_library_logs` has run. Cheap to call
    often: nothing happens until MLflow's logging module is loaded (this never imports it) or
    once its print stream is routed."""
    if "path" not in _state or _state.get("verbose"):
        return
    stream = getattr(sys.modules.get("mlflow.utils.logging_utils"), "MLFLOW_LOGGING_STREAM", None)
    if stream is None or getattr(stream, "_casefinder_routed", False):
        return
    logger = logging.getLogger("mlflow")

    def write(text: str) -> None:
        if text.strip():
            logger.info(text.strip())

    stream.write = write  # type: ignore[method-assign]
    stream.flush = lambda: None  # type: ignore[method-assign]
    stream._casefinder_routed = True


def routing_mlflow_prints(progress: ProgressFn) -> ProgressFn:
    """`progress`, routing MLflow's prints to the log file as soon as MLflow is loaded (training
    imports it on a thread while the panel builds, so it appears during the command)."""

    def report(task: str, fraction: float) -> None:
        mlflow_prints_to_log()
        progress(task, fraction)

    return report
