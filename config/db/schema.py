"""The tables of the service's state database (SQLAlchemy Core). Alembic migrations in
`config/db/migrations` create them; this module is what code reads and writes through."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("neighbourhood", String(200)),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created", String(40), nullable=False),
    Column("revoked", String(40)),
)

# One row (id 1): the audit chain's last seq and hash. Appends lock it (FOR UPDATE in
# PostgreSQL; SQLite transactions are BEGIN IMMEDIATE), so concurrent writers keep one chain.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time", String(40), nullable=False),
    Column("user", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("action", String(100), nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("neighbourhood", String(200)),
    Column("month", String(7)),
    Column("person_ids", Text, nullable=False),  # a JSON list
    Column("model_version", String(40)),
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("created", String(40), nullable=False),
    Column("expires", String(40), nullable=False),
    Column("ended", String(40)),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("month", String(7), nullable=False),
    Column("neighbourhood", String(200), nullable=False, index=True),
    Column("outcome", String(40), nullable=False),
    Column("care_coordinator", String(200)),
    Column("care_plan_started", String(10)),
    Column("reason", String(40)),
    Column("review_month", String(7)),
    Column("note", String(500)),
    # The person's calibrated probability in the month reviewed (None when not scored).
    Column("probability", Float),
    Column("listed_on", String(10)),  # the index date of the run the person was reviewed from
    Column("reviewed_on", String(10), nullable=False),
    Column("user", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    Column("created", String(40), nullable=False),
)

# Once-only imports (`casefinder db import-home`): what was imported, from where, when.
imports = Table(
    "imports",
    metadata,
    Column("kind", String(40), primary_key=True),
    Column("source", Text, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("done", String(40), nullable=False),
)
