"""The service's state: users, page sessions, the keyed audit chain, MDT reviews, imports.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("neighbourhood", sa.String(200)),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("revoked", sa.String(40)),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash"))
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])  # the chain's genesis
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("neighbourhood", sa.String(200)),
        sa.Column("month", sa.String(7)),
        sa.Column("person_ids", sa.Text, nullable=False),
        sa.Column("model_version", sa.String(40)),
        sa.Column("prev", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id_sha256", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("expires", sa.String(40), nullable=False),
        sa.Column("ended", sa.String(40)),
    )
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), nullable=False, index=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("neighbourhood", sa.String(200), nullable=False, index=True),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("care_coordinator", sa.String(200)),
        sa.Column("care_plan_started", sa.String(10)),
        sa.Column("reason", sa.String(40)),
        sa.Column("review_month", sa.String(7)),
        sa.Column("note", sa.String(500)),
        sa.Column("probability", sa.Float),
        sa.Column("listed_on", sa.String(10)),
        sa.Column("reviewed_on", sa.String(10), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
    )
    op.create_table(
        "imports",
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("done", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    for table in ("imports", "reviews", "sessions", "audit", "audit_head", "users"):
        op.drop_table(table)
