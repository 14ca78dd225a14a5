"""MDT reviews: the decision a neighbourhood's team records for a listed person and month
(`POST /review`, the person and list pages), stored in the state database's `reviews` table with
its audit entry in the same transaction. The outcomes, the fields each needs and what the next
month's list does with them are `features.cohort`'s (REVIEW_OUTCOMES, REVIEW_REQUIRES,
review_status)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from config.db import Database
from config.db.schema import reviews
from features.cohort import REVIEW_OUTCOMES, REVIEW_REQUIRES
from serving.audit import AuditLog
from serving.schemas import Review, ReviewRequest

# Optional fields and the outcomes they belong to (any other outcome refuses them).
APPLIES_TO = {
    "care_coordinator": ("accepted", "already_known"),
    "care_plan_started": ("accepted",),
    "reason": ("not_appropriate",),
    "review_month": ("deferred",),
}


class ReviewError(ValueError):
    """A review that cannot be stored as asked; `field` names the field at fault (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def check_fields(request: ReviewRequest, today: date | None = None) -> None:
    """The fields the outcome needs are there and no others; raise `ReviewError` naming one."""
    for field in REVIEW_REQUIRES.get(request.outcome, ()):
        if getattr(request, field) is None:
            raise ReviewError(field, f"is required when the outcome is {request.outcome}")
    for field, outcomes in APPLIES_TO.items():
        if getattr(request, field) is not None and request.outcome not in outcomes:
            raise ReviewError(field, f"applies only to {' and '.join(outcomes)}")
    if request.review_month is not None and request.review_month <= request.month:
        raise ReviewError("review_month", "must be after the month reviewed")
    if request.care_plan_started is not None and request.care_plan_started > (
        today or datetime.now(UTC).date()
    ):
        raise ReviewError("care_plan_started", "is in the future")


def as_review(row: Any) -> Review:
    data = dict(row._mapping)
    data.pop("listed_on", None)
    data.pop("role", None)
    return Review(**data, outcome_words=REVIEW_OUTCOMES[data["outcome"]])


def store_review(
    reviews: ReviewStore, audit: AuditLog, request: ReviewRequest, *, neighbourhood: str,
    probability: float | None, listed_on: str, user: str, role: str, action: str,
    model_version: str | None,
) -> Review:  # fmt: skip
    """Store a checked review and its audit entry in one transaction (after the access check)."""
    with reviews.db.write() as con:
        review = reviews.add(
            con, request, neighbourhood=neighbourhood, probability=probability,
            listed_on=listed_on, user=user, role=role,
        )  # fmt: skip
        audit.append_in(
            con, user=user, role=role, action=action, person_ids=[request.person_id],
            neighbourhood=neighbourhood, month=request.month, model_version=model_version,
        )  # fmt: skip
    return review


class ReviewStore:
    """Add and read reviews."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, con: Connection, request: ReviewRequest, *, neighbourhood: str,
        probability: float | None, listed_on: str, user: str, role: str,
    ) -> Review:  # fmt: skip
        """Insert one review inside the caller's transaction (with its audit entry)."""
        now = datetime.now(UTC)
        row = {
            **request.model_dump(),
            "care_plan_started": None
            if request.care_plan_started is None
            else request.care_plan_started.isoformat(),
            "neighbourhood": neighbourhood,
            "probability": probability,
            "listed_on": listed_on,
            "reviewed_on": now.date().isoformat(),
            "user": user,
            "role": role,
            "created": now.isoformat(timespec="milliseconds"),
        }
        new_id = con.execute(insert(reviews).values(**row)).inserted_primary_key[0]
        return as_review(con.execute(select(reviews).where(reviews.c.id == new_id)).one())

    def of_neighbourhood(self, neighbourhood: str, month: str | None = None) -> list[Review]:
        """A neighbourhood's reviews (of one month's list when given), newest first."""
        query = select(reviews).where(reviews.c.neighbourhood == neighbourhood)
        if month is not None:
            query = query.where(reviews.c.month == month)
        with self.db.read() as con:
            return [as_review(r) for r in con.execute(query.order_by(reviews.c.id.desc()))]

    def of_person(self, person_id: str) -> list[Review]:
        """A person's reviews, newest first."""
        query = select(reviews).where(reviews.c.person_id == person_id)
        with self.db.read() as con:
            return [as_review(r) for r in con.execute(query.order_by(reviews.c.id.desc()))]

    def latest(self, neighbourhood: str) -> dict[str, Review]:
        """Each reviewed person of a neighbourhood -> their latest review."""
        out: dict[str, Review] = {}
        for review in self.of_neighbourhood(neighbourhood):  # newest first
            out.setdefault(review.person_id, review)
        return out
