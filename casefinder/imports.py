"""Faster start for commands that score: LightGBM without scikit-learn.

LightGBM's package imports scikit-learn, about a second on this 2-core machine, for its
scikit-learn estimators (`lightgbm.LGBMClassifier` ...), which casefinder never uses: it trains
with `lightgbm.train` and scores with `Booster`. A command that scores (`score`, `predict`) needs
no scikit-learn at all, and `train` imports it beside the panel build
(`training.train._prepare_logging`). So the CLI, before a stage loads LightGBM, imports it with
scikit-learn hidden: LightGBM takes its own fallback for a missing scikit-learn, and scikit-learn
imports normally afterwards. Only the CLI does this (no stage imports this module), so a notebook
or the service keeps LightGBM's estimators.
"""

from __future__ import annotations

import sys
import threading


def lightgbm_without_sklearn() -> None:
    """Import LightGBM with scikit-learn hidden, unless either is loaded already or another
    thread runs (it could be importing scikit-learn that moment)."""
    if "lightgbm" in sys.modules or "sklearn" in sys.modules or threading.active_count() > 1:
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` fails
    try:
        import lightgbm  # noqa: F401
    finally:
        del sys.modules["sklearn"]
