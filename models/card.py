"""The model card: Markdown rendered from `models/model_card.md.j2`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

TEMPLATE = Path(__file__).with_name("model_card.md.j2")


def render_model_card(context: dict[str, Any]) -> str:
    """Fill the model card template; a missing field is an error, not a blank."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(TEMPLATE.name).render(**context)
