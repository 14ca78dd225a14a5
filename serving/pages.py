"""Server-rendered pages, mounted on the service under /ui: sign in, a neighbourhood's list
(sortable, filter by flag, CSV and Excel download) and a person page for clinicians (score,
reasons, chart, change since last month, what-if). No JavaScript and no build step.

Access is checked by `serving.access.AccessMiddleware` before any page runs (the token comes from
the Authorization header or the HttpOnly cookie the sign-in form sets); the neighbourhood half of
the check and the audit entries are here. The downloads are `scoring.exports`' list table, the
file `casefinder lists` writes; flag words are `features.cohort.LIST_FLAGS`, months
`features.dates.Month`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from features.cohort import LIST_FLAGS
from features.dates import Month
from models.reasons import format_points
from scoring.exports import export_bytes, export_filename
from serving.access import COOKIE, USER_KEY, Denied, check_neighbourhood, session_from
from serving.backend import NotFound
from serving.html import render
from serving.responses import chart_svg, listed_person, person_response, public_message
from serving.review_pages import performance_view, review_submit, review_words
from serving.reviews import ReviewError
from serving.schemas import PERSON_ID_PATTERN
from serving.users import User

HERE = Path(__file__).parent
COLUMNS = {"rank": "Rank", "person_id": "Person", "probability": "Risk", "band": "Band"}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _service() -> Any:
    import bentoml

    return bentoml.get_current_service()


def _user(request: Request) -> User:
    return request.scope[USER_KEY]


def _render(name: str, request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", request.scope.get(USER_KEY))
    context.setdefault("points", format_points)
    return HTMLResponse(render(name, **context), status_code=status)


def _problem(request: Request, status: int, message: str) -> HTMLResponse:
    title = {400: "Not understood", 403: "Not allowed", 404: "Not found"}.get(status, "Problem")
    return _render("problem.html", request, status, title=title, message=message)


def _month(request: Request) -> Month | None:
    """The `month` asked for (FeatureError, a ValueError, unless `YYYY-MM`), None for the latest."""
    month = request.query_params.get("month") or None
    try:
        return None if month is None else Month(month)
    except ValueError:  # not repeated: the value is the client's
        raise ValueError("month must be YYYY-MM, e.g. 2026-11") from None


# --- sign in -----------------------------------------------------------------------------


async def login_form(request: Request) -> HTMLResponse:
    return _render("login.html", request)


async def login(request: Request) -> Response:
    """Exchange a bearer token for a server-side session (`serving.sessions`): the cookie holds
    only the opaque session id. (A cross-site Origin was refused by the access middleware.)"""
    form = await request.form()
    token = str(form.get("token", "")).strip()
    svc = _service()
    user = svc.users.authenticate(token)
    if user is None:
        return _render("login.html", request, 401, message="That token is not valid.")
    target = "/ui/list" if user.role != "data_scientist" else "/ui/login"
    if user.neighbourhood:
        target += "?" + urlencode({"neighbourhood": user.neighbourhood})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, svc.sessions.start(user), httponly=True, samesite="strict",
        secure=not svc.settings.serving.insecure_cookies, path="/",
        max_age=int(svc.settings.serving.session_hours * 3600),
    )  # fmt: skip
    return response


async def logout(request: Request) -> Response:
    """End the session on the server (the cookie stops working everywhere) and clear it."""
    session = session_from(request.scope)
    if session:
        _service().sessions.end(session)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def home(request: Request) -> Response:
    user = _user(request)
    return RedirectResponse("/ui/list?" + urlencode({"neighbourhood": user.neighbourhood or ""}))


# --- list --------------------------------------------------------------------------------


def _list_query(request: Request) -> tuple[str, Month | None, str | None]:
    """(neighbourhood, month, flag) of a list request after the scope check; raises
    Denied/ValueError."""
    user = _user(request)
    q = request.query_params
    neighbourhood = q.get("neighbourhood") or user.neighbourhood or ""
    if not neighbourhood:
        raise ValueError("choose a neighbourhood")
    check_neighbourhood(user, neighbourhood)
    flag = q.get("flag") or None
    if flag is not None and flag not in LIST_FLAGS:
        raise ValueError(f"unknown flag; flags are {', '.join(LIST_FLAGS)}")
    return neighbourhood, _month(request), flag


def _list_rows(request: Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The page's list after the scope check, filter and sort; raises Denied/NotFound/ValueError."""
    neighbourhood, month, flag = _list_query(request)
    q = request.query_params
    sort = q.get("sort") or "rank"
    if sort not in COLUMNS:
        raise ValueError(f"cannot sort by that; sort by {', '.join(COLUMNS)}")
    order = q.get("order") or ("desc" if sort == "probability" else "asc")
    if order not in ("asc", "desc"):
        raise ValueError("order must be asc or desc")
    backend = _service().backend
    month, run_id, meta, rows = backend.neighbourhood_list(neighbourhood, month, flag)
    people = [listed_person(r).model_dump() for r in rows]
    people.sort(key=lambda p: p[sort], reverse=order == "desc")
    view = {
        "neighbourhood": neighbourhood,
        "month": month,
        "index_date": meta["index_date"],
        "flag": flag,
        "sort": sort,
        "order": order,
        "run_id": run_id,
    }
    return view, people


def _guard(handler: Any) -> Any:
    """Turn scope, lookup and input errors into 403/404/400 pages (never a 500)."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Denied as exc:
            return _problem(request, exc.status, exc.message)
        except NotFound as exc:
            return _problem(request, 404, public_message(str(exc), _service().settings))
        except ValueError as exc:
            return _problem(request, 400, public_message(str(exc), _service().settings))

    return wrapped


@_guard
async def list_page(request: Request) -> Response:
    view, people = _list_rows(request)
    svc = _service()
    user = _user(request)
    svc.record(
        user, "page.list", [p["person_id"] for p in people], neighbourhood=view["neighbourhood"],
        month=view["month"],
    )  # fmt: skip
    base = {k: view[k] for k in ("neighbourhood", "month")}
    if view["flag"]:
        base["flag"] = view["flag"]
    sort_links = {}
    for key in COLUMNS:
        flip = "asc" if view["sort"] == key and view["order"] == "desc" else "desc"
        order = flip if view["sort"] == key else ("desc" if key == "probability" else "asc")
        sort_links[key] = urlencode({**base, "sort": key, "order": order})
    return _render(
        "list.html", request, people=people, columns=COLUMNS, flag_labels=LIST_FLAGS,
        sort_links=sort_links, download=urlencode(base), model_version=svc.backend.version,
        can_open_person=user.role == "clinician", **view,
        # MDT reviews (serving.review_pages)
        latest_reviews=svc.reviews.latest(view["neighbourhood"]), **review_words(),
    )  # fmt: skip


async def _download(request: Request, fmt: str) -> Response:
    """The neighbourhood's list (only those with `flag` when given) as the file `casefinder lists
    --neighbourhood` writes, in rank order; audited as download.<fmt>."""
    neighbourhood, month, flag = _list_query(request)
    svc = _service()
    month, _, meta, table = svc.backend.list_table(neighbourhood, month, flag)
    svc.record(
        _user(request), f"download.{fmt}", table["person_id"].astype(str).tolist(),
        neighbourhood=neighbourhood, month=month,
    )  # fmt: skip
    filename = export_filename(month, neighbourhood, fmt)
    return Response(
        export_bytes(table, fmt, meta),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@_guard
async def list_csv(request: Request) -> Response:
    return await _download(request, "csv")


@_guard
async def list_xlsx(request: Request) -> Response:
    return await _download(request, "xlsx")


# --- person ------------------------------------------------------------------------------


def _person_id(request: Request) -> str:
    person_id = request.path_params["person_id"]
    if not re.fullmatch(PERSON_ID_PATTERN, person_id):
        raise ValueError("not a person id")
    return person_id


def _shown(value: float | None) -> float | int | None:
    """A number as a form shows it: whole numbers without ".0"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value) if float(value).is_integer() else float(value)


def _adjustable(backend: Any, row: Any) -> list[dict[str, Any]]:
    from models.reasons import feature_map

    defs = feature_map(None, backend.model.feature_names)
    out = []
    for name, feat in defs.items():
        if not feat.adjustable:
            continue
        value = _shown(row[name])
        out.append(
            {
                "name": name,
                "kind": feat.kind,
                "description": feat.description,
                "labels": feat.labels,
                "value": value,
                "shown": "" if value is None else value,
            }
        )
    return out


def _what_if_values(request: Request, adjustable: list[dict[str, Any]]) -> dict[str, Any]:
    """Changed what-if fields from the query (wi_<feature>); ValueError names bad input."""
    changes: dict[str, Any] = {}
    known = {f["name"]: f for f in adjustable}
    for key, raw in request.query_params.items():
        if not key.startswith("wi_"):
            continue
        name = key[3:]
        if name not in known:  # not repeated: the key is the client's
            raise ValueError("the form asked to change something that cannot be changed here")
        value: float | None
        if raw.strip() == "":
            value = None
        else:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{known[name]['description']}: not a number") from None
        if value != known[name]["value"]:
            changes[name] = value
    return changes


@_guard
async def person_page(request: Request) -> Response:
    person_id = _person_id(request)
    svc = _service()
    backend, user = svc.backend, _user(request)
    svc.check_person_access(user, person_id, _month(request), "page.person")
    view = backend.person(person_id, _month(request))
    p = person_response(backend.version, view, None, svc.reviews.of_person(person_id))
    adjustable = _adjustable(backend, view.features.iloc[0])
    what_if, what_if_error, action = None, None, "page.person"
    try:
        changes = _what_if_values(request, adjustable)
        if changes:
            _, _, what_if = backend.what_if(person_id, view.month, changes)
            action = "page.what_if"
            for f in adjustable:  # show the values the clinician chose
                if f["name"] in changes:
                    f["value"] = _shown(changes[f["name"]])
                    f["shown"] = "" if f["value"] is None else f["value"]
    except ValueError as exc:
        what_if_error = str(exc)
    svc.record(user, action, [person_id], neighbourhood=p.neighbourhood, month=p.month)
    return _render(
        "person.html", request, p=p, adjustable=adjustable, what_if=what_if,
        what_if_error=what_if_error, model_version=backend.version, month=p.month,
        index_date=p.index_date, previous_month=view.previous_month, **review_words(),
    )  # fmt: skip


@_guard
async def person_chart(request: Request) -> Response:
    person_id = _person_id(request)
    svc = _service()
    backend, user = svc.backend, _user(request)
    neighbourhood = svc.check_person_access(user, person_id, _month(request), "page.chart")
    view = backend.person(person_id, _month(request))
    svc.record(user, "page.chart", [person_id], neighbourhood=neighbourhood, month=view.month)
    return Response(chart_svg(view.explanation), media_type="image/svg+xml")


@_guard
async def segments_page(request: Request) -> Response:
    """A neighbourhood's population segments in pictures (aggregates only, not audited)."""
    from serving.segments_view import segments_view

    user = _user(request)
    neighbourhood = request.query_params.get("neighbourhood") or user.neighbourhood or ""
    if not neighbourhood:
        raise ValueError("choose a neighbourhood")
    check_neighbourhood(user, neighbourhood)
    svc = _service()
    backend = svc.backend
    month, run_id, meta, people = backend.segments(_month(request))
    if neighbourhood not in set(people["neighbourhood"].astype(str)):
        raise NotFound(f"neighbourhood {neighbourhood} is not in the {month} run")
    runs = []
    for earlier in backend.store.months():
        if earlier <= month:
            earlier_id = backend.store.current_run_id(earlier)
            if earlier_id:
                runs.append((earlier, backend.people(earlier_id)))
    bands = [name for name, _ in backend.model.bands]
    view = segments_view(people, runs, neighbourhood, bands)
    return _render(
        "segments.html", request, neighbourhood=neighbourhood, month=month,
        index_date=meta["index_date"], run_id=run_id, model_version=backend.version, **view,
    )  # fmt: skip


# --- MDT reviews (serving.review_pages) ----------------------------------------------------


@_guard
async def review_page(request: Request) -> Response:
    try:
        return await review_submit(request, _service(), _user(request))
    except ReviewError as exc:
        return _problem(request, 422, str(exc))


@_guard
async def performance_page(request: Request) -> Response:
    """How a neighbourhood's list is doing, month by month (aggregates only, not audited)."""
    user = _user(request)
    neighbourhood = request.query_params.get("neighbourhood") or user.neighbourhood or ""
    if not neighbourhood:
        raise ValueError("choose a neighbourhood")
    check_neighbourhood(user, neighbourhood)
    months = performance_view(_service(), neighbourhood)
    return _render("performance.html", request, neighbourhood=neighbourhood, months=months)


async def style(request: Request) -> Response:
    return FileResponse(HERE / "templates" / "style.css", media_type="text/css")


pages_app = Starlette(
    routes=[
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout),
        Route("/style.css", style),
        Route("/list", list_page),
        Route("/list.csv", list_csv),
        Route("/list.xlsx", list_xlsx),
        Route("/segments", segments_page),
        Route("/person/{person_id}", person_page),
        Route("/person/{person_id}/chart.svg", person_chart),
        Route("/review", review_page, methods=["POST"]),
        Route("/performance", performance_page),
    ]
)
