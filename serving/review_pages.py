"""The review parts of the pages (kept apart from `serving.pages`): the form a team posts an
MDT decision with (`POST /ui/review`, from the person page's form or a list row's quick action),
and what the list and person pages show of the decisions. Storing, checking and auditing are
`Service.record_review`'s, the same as `POST /review`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from features.cohort import NOT_APPROPRIATE_REASONS, REVIEW_OUTCOMES
from features.dates import Month, add_months
from serving.schemas import ReviewRequest

FIELDS = ("person_id", "month", "outcome", "care_coordinator", "care_plan_started", "reason",
          "review_month", "note")  # fmt: skip
# A list row's quick actions: accept, or defer to next month's MDT.
QUICK = {"accepted": "Accept", "deferred": "Defer a month"}


def review_form(form: Any) -> tuple[ReviewRequest, str]:
    """The review a page form asks for (blank fields are absent) and where to go back to
    ("person" or "list"); ValueError naming the first bad field."""
    values = {k: str(form.get(k)).strip() for k in FIELDS if str(form.get(k) or "").strip()}
    quick = str(form.get("quick") or "")
    if quick:
        if quick not in QUICK:
            raise ValueError("outcome: not a quick action")
        values["outcome"] = quick
        if quick == "deferred" and "month" in values:
            try:
                values["review_month"] = Month.of(add_months(Month(values["month"]).index_date, 1))
            except ValueError:
                raise ValueError("month: must be YYYY-MM") from None
    try:
        request = ReviewRequest(**values)
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "form"
        raise ValueError(f"{field}: {exc.errors()[0]['msg']}") from None
    return request, "person" if form.get("back") == "person" else "list"


async def review_submit(request: Request, service: Any, user: Any) -> Response:
    """Store the form's review (audited as page.review) and go back where it came from."""
    review, back = review_form(await request.form())
    stored = service.record_review(user, review, "page.review")
    if back == "person":
        target = f"/ui/person/{stored.person_id}?" + urlencode({"month": stored.month})
    else:
        target = "/ui/list?" + urlencode({"neighbourhood": stored.neighbourhood,
                                           "month": stored.month})  # fmt: skip
    return RedirectResponse(target, status_code=303)


def review_words() -> dict[str, Any]:
    """What the templates show of the review vocabulary."""
    return {"review_outcomes": REVIEW_OUTCOMES, "review_reasons": NOT_APPROPRIATE_REASONS,
            "quick_actions": QUICK}  # fmt: skip


def performance_view(service: Any, neighbourhood: str) -> list[dict[str, Any]]:
    """How the neighbourhood's list did in each scored month, newest first (aggregates only)."""
    backend, months = service.backend, []
    for month in reversed(backend.store.months()):
        run_id = backend.store.current_run_id(month)
        if run_id is None:
            continue
        table = backend.performance(month, run_id, neighbourhood)
        if neighbourhood in table.index:
            months.append({"month": month, **table.loc[neighbourhood].to_dict()})
    return months
