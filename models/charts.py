"""Charts of explanations (matplotlib, no pyplot state, so safe in services and threads).

`waterfall`: one person's score built up from the base probability, factor by factor.
`global_importance`: which features move scores most across a population, for a model version.
The file format follows the path's suffix: .png or .svg.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from models.explain import Explanation, contributions, explanation_steps
from models.reasons import FeatureDefs, feature_map
from models.risk_model import RiskModel

FORMATS = {".png": "png", ".svg": "svg"}
RAISES, LOWERS, OTHER, TOTAL = "#c0392b", "#2471a3", "#95a5a6", "#2c3e50"
DOMAIN_COLOURS = {
    "demographics": "#7f8c8d",
    "place": "#16a085",
    "hospital use": "#c0392b",
    "primary care and frailty": "#d35400",
    "prescribing": "#8e44ad",
    "community health": "#27ae60",
    "social care": "#2471a3",
    "mental health": "#b7950b",
    "caseload": "#34495e",
}


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"chart path must end in .png or .svg, got {path.name!r}")
    return fmt


def _save(fig: Figure, path: Path, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if fmt == "svg" else None  # same chart, same bytes
    fig.savefig(path, format=fmt, dpi=110, bbox_inches="tight", metadata=metadata)
    return path


def _wrap(text: str, width: int = 48) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def waterfall(explanation: Explanation, path: str | Path) -> Path:
    """Draw one person's waterfall: the reference probability, each shown reason's probability
    points, the rest as "all other factors", ending at the served probability. Return the path
    written."""
    path = Path(path)
    fmt = _format(path)
    e = explanation
    steps = explanation_steps(e)
    colours_of = [RAISES] * len(e.raising) + [LOWERS] * len(e.lowering) + [OTHER]
    labels = [steps[0][0]]
    lefts, widths, colours = [0.0], [e.reference_probability], [TOTAL]
    levels = [e.reference_probability]  # running total after each bar
    for (text, change), colour in zip(steps[1:], colours_of, strict=True):
        labels.append(_wrap(text))
        lefts.append(min(levels[-1], levels[-1] + change))
        widths.append(abs(change))
        colours.append(colour)
        levels.append(levels[-1] + change)
    labels.append(f"this person: {100 * e.probability:.1f}% ({e.band})")
    lefts.append(0.0)
    widths.append(e.probability)
    colours.append(TOTAL)

    height = 1.2 + 0.42 * len(labels)
    fig = Figure(figsize=(10, height))
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    ax.barh(y, widths, left=lefts, color=colours, height=0.6)
    for k, level in enumerate(levels):  # connectors: each bar's end to the next bar
        ax.plot([level, level], [y[k] - 0.3, y[k + 1] + 0.3], color="#555555", lw=0.7)
    ax.set_yticks(y, labels, fontsize=8.5)
    ax.set_xlabel("chance of complex multi-agency need within 12 months")
    top = max(lefts[k] + widths[k] for k in range(len(labels)))
    ax.set_xlim(0, min(1.0, top * 1.1 + 0.02))
    ax.xaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}%")
    who = f"Person {e.person_id}" if e.person_id is not None else "This person"
    ax.set_title(f"{who}: {100 * e.probability:.1f}% ({e.band}) — why", loc="left", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path, fmt)


def importance(model: RiskModel, rows: pd.DataFrame, features: FeatureDefs = None) -> pd.DataFrame:
    """Mean absolute TreeSHAP contribution (log-odds) per feature over `rows`, largest first."""
    defs = feature_map(features, model.feature_names)
    _, contrib = contributions(model, rows)
    if len(contrib) == 0:
        raise ValueError("global importance needs at least one row")
    table = pd.DataFrame(
        {
            "feature": model.feature_names,
            "domain": [defs[n].domain for n in model.feature_names],
            "description": [defs[n].description for n in model.feature_names],
            "mean_abs_log_odds": np.abs(contrib).mean(axis=0),
        }
    )
    return table.sort_values("mean_abs_log_odds", ascending=False, ignore_index=True)


def global_importance(
    model: RiskModel,
    rows: pd.DataFrame,
    path: str | Path,
    top: int = 20,
    features: FeatureDefs = None,
) -> Path:
    """Draw the `top` features by mean absolute contribution over `rows`, coloured by domain,
    titled with the model version from `model.metadata` when known. Return the path written."""
    path = Path(path)
    fmt = _format(path)
    table = importance(model, rows, features).head(top)
    fig = Figure(figsize=(10, 1.2 + 0.38 * len(table)))
    ax = fig.add_subplot()
    y = np.arange(len(table))[::-1]
    colours = [DOMAIN_COLOURS.get(d, OTHER) for d in table["domain"]]
    ax.barh(y, table["mean_abs_log_odds"], color=colours, height=0.65)
    labels = [_wrap(t.strip().rstrip("."), 60) for t in table["description"]]
    ax.set_yticks(y, labels, fontsize=8.5)
    ax.set_xlabel("mean |contribution| to the score (log-odds), over the people shown")
    version = model.metadata.get("version")
    name = model.metadata.get("name", "risk model")
    title = f"What moves the score most: {name}" + (f" v{version}" if version else "")
    ax.set_title(f"{title} ({len(rows):,} people)", loc="left", fontsize=11)
    handles = [
        Patch(color=DOMAIN_COLOURS.get(domain, OTHER), label=domain)
        for domain in dict.fromkeys(table["domain"])
    ]
    ax.legend(handles=handles, title="domain", fontsize=8, title_fontsize=8, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path, fmt)
