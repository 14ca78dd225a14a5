"""Libraries' own log lines and warnings (MLflow, Alembic, SQLAlchemy, Optuna, uv detection,
Python warnings) go to the command's log file, `<home>/logs/casefinder.log`, not the terminal;
`casefinder --verbose` shows them on stderr too. The user's terminal shows casefinder's own
output only."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

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
    the `mlflow` logger, so to the log file, once `route_library_logs` has run. Call after
    MLflow is imported (it patches MLflow's print stream)."""
    if "path" not in _state or _state.get("verbose") or "mlflow" not in sys.modules:
        return
    from mlflow.utils import logging_utils

    stream = logging_utils.MLFLOW_LOGGING_STREAM
    logger = logging.getLogger("mlflow")

    def write(text: str) -> None:
        if text.strip():
            logger.info(text.strip())

    stream.write = write  # type: ignore[method-assign]
    stream.flush = lambda: None  # type: ignore[method-assign]
