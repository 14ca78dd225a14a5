"""The MDT reviews table as data, for the stages that follow the decisions (scoring's list rules,
training's population) without importing the service that records them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import select

from config.db import Database
from config.db.schema import reviews

if TYPE_CHECKING:
    from config.settings import Settings

COLUMNS = [c.name for c in reviews.columns]


def read_reviews(settings: Settings, neighbourhood: str | None = None) -> pd.DataFrame:
    """Every review (or one neighbourhood's), oldest first, in the table's columns; none when
    the home has no state database yet (reading never creates one)."""
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return pd.DataFrame(columns=COLUMNS)
    query = select(reviews).order_by(reviews.c.id)
    if neighbourhood is not None:
        query = query.where(reviews.c.neighbourhood == neighbourhood)
    with Database.of(settings).read() as con:
        rows = [dict(r._mapping) for r in con.execute(query)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"probability": float}) if len(frame) else frame
