"""The one way the service writes HTML: jinja2 templates under `serving/templates`, every value
autoescaped. The pages (`serving.pages`) and the access middleware's 401/403 pages
(`serving.access`) both render through `render`, so no HTML response is built by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATES = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"], default_for_string=True, default=True),
)


def render(name: str, **context: Any) -> str:
    """Template `name` rendered with `context`, every value escaped."""
    return TEMPLATES.get_template(name).render(**context)
