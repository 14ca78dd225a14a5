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

from features import FEATURES
from features.cohort import LIST_FLAGS
from features.dates import Month
from models.reasons import format_points
from scoring.exports import export_bytes, export_filename
from serving.access import (
    COOKIE,
    USER_KEY,
    Denied,
    check_neighbourhood,
    client_address,
    session_from,
)
from serving.backend import NotFound
from serving.html import render
from serving.responses import (
    WHAT_IF_CAVEAT,
    chart_svg,
    listed_person,
    person_response,
    public_message,
)
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
    below = _service().settings.serving.suppress_below
    context.setdefault("user", request.scope.get(USER_KEY))
    context.setdefault("points", format_points)
    context.setdefault("count", lambda n: shown_count(n, below))
    context.setdefault("suppress_below", below)
    return HTMLResponse(render(name, **context), status_code=status)


def shown_count(count: int | str, below: int) -> str:
    """A count as aggregate pages show it: suppressed below `below`, thousands separated."""
    from scoring.disclosure import suppressed

    shown = count if isinstance(count, str) else suppressed(count, below)
    return shown if isinstance(shown, str) else f"{shown:,}"


PROBLEM_TITLES = {400: "Not understood", 403: "Not allowed", 404: "Not found"}


def _problem(request: Request, status: int, message: str) -> HTMLResponse:
    """A styled refusal with a way back (the user's start page)."""
    title = PROBLEM_TITLES.get(status, "Problem")
    return _render("problem.html", request, status, title=title, message=message)


async def not_found(request: Request) -> HTMLResponse:
    """Any unknown address under /ui: the styled 404 (never a plain-text one)."""
    return _problem(request, 404, "There is no page at this address.")


def _months(backend: Any, month: str) -> list[str]:
    """The scored months for a month picker, newest first (the shown month always in it)."""
    return sorted({*backend.store.months(), str(month)}, reverse=True)


def _month(request: Request) -> Month | None:
    """The `month` asked for (FeatureError, a ValueError, unless `YYYY-MM`), None for the latest."""
    month = request.query_params.get("month") or None
    try:
        return None if month is None else Month(month)
    except ValueError:  # not repeated: the value is the client's
        raise ValueError("month must be YYYY-MM, e.g. 2026-11") from None


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


# --- sign in -----------------------------------------------------------------------------


async def login_form(request: Request) -> HTMLResponse:
    return _render("login.html", request)


async def login(request: Request) -> Response:
    """Exchange a bearer token for a server-side session (`serving.sessions`): the cookie holds
    only the opaque session id. (A cross-site Origin was refused by the access middleware.)
    Failed tokens count towards the client's throttle (`serving.throttle`)."""
    svc = _service()
    client = client_address(request.scope)
    wait = svc.throttle.retry_after(client)
    if wait is not None:
        response = _render(
            "login.html", request, 429, message=f"Too many failed sign-ins: try again in {wait} s."
        )
        response.headers["Retry-After"] = str(wait)
        return response
    form = await request.form()
    token = str(form.get("token", "")).strip()
    user = svc.users.authenticate(token)
    if user is None:
        if svc.throttle.failed(client):
            svc.record_throttled(client)
        return _render("login.html", request, 401, message="That token is not valid.")
    target = start_page(user)
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


def start_page(user: User) -> str:
    """Where a user lands: a data scientist's overview, else their neighbourhood's list."""
    if user.role == "data_scientist":
        return "/ui/overview"
    return "/ui/list?" + urlencode({"neighbourhood": user.neighbourhood or ""})


async def home(request: Request) -> Response:
    return RedirectResponse(start_page(_user(request)), status_code=303)


@_guard
async def overview_page(request: Request) -> Response:
    """A data scientist's start: registered models, stored runs and the latest summary."""
    from models.registry import list_versions

    svc = _service()
    backend = svc.backend
    try:
        versions = list_versions(svc.settings).to_dict("records")
    except Exception:  # the registry is down: the page still shows the runs
        versions = []
    runs = [
        {
            "month": m["month"], "run_id": m["run_id"], "model": m["model"]["version"],
            "created": m.get("created", "")[:16].replace("T", " "),
            "listed": f"{m['counts']['listed']:,}", "eligible": f"{m['counts']['eligible']:,}",
            "current": backend.store.current_run_id(m["month"]) == m["run_id"],
        }
        for m in reversed(backend.store.runs())
    ]  # fmt: skip
    summary, month, summary_run = [], None, None
    if runs:
        month, summary_run, _, table = backend.summary(_month(request))
        summary = [
            {"neighbourhood": str(hood), **{k: int(r[k]) for k in ("eligible", "scored", "listed")}}
            for hood, r in table.iterrows()
        ]
    return _render(
        "overview.html", request, versions=versions, runs=runs, summary=summary, month=month,
        champion=backend.version, replaced=backend.replaced, months=_months(backend, month or ""),
        suppress_below=svc.settings.serving.suppress_below, summary_run=summary_run,
    )  # fmt: skip


# --- list --------------------------------------------------------------------------------


def _asked_neighbourhood(request: Request) -> str:
    """The `neighbourhood` asked for (default the user's own) once the user may see it; raises
    ValueError when there is none, Denied outside the user's scope."""
    user = _user(request)
    neighbourhood = request.query_params.get("neighbourhood") or user.neighbourhood or ""
    if not neighbourhood:
        raise ValueError("choose a neighbourhood")
    check_neighbourhood(user, neighbourhood)
    return neighbourhood


def _list_query(request: Request) -> tuple[str, Month | None, str | None]:
    """(neighbourhood, month, flag) of a list request after the scope check; raises
    Denied/ValueError."""
    neighbourhood = _asked_neighbourhood(request)
    flag = request.query_params.get("flag") or None
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
        "model_version": str(meta["model"]["version"]),  # the run's model, as its rows are
        "champion_note": backend.champion_note(meta),
    }
    return view, people


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
        sort_links=sort_links, download=urlencode(base), can_open_person=user.role == "clinician",
        months=_months(svc.backend, view["month"]), **view,
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


# --- what-if (issue 12): root inputs only, POST, result beside the original ------------------


def _adjustable(model: Any, row: Any) -> list[dict[str, Any]]:
    """The what-if form's fields: the root inputs (`features.what_if.roots`) of the model (the
    run's), each marked when the outcome counts it (`features.what_if.outcome_warnings`)."""
    from features.what_if import outcome_warnings, roots

    outcome = _service().settings.outcome
    out = []
    for feat in roots():
        if feat.name not in model.feature_names:
            continue
        value = _shown(row[feat.name])
        out.append(
            {
                "name": feat.name,
                "kind": feat.kind,
                "description": feat.description,
                "labels": feat.labels,
                "value": value,
                "shown": "" if value is None else value,
                "outcome_warning": bool(outcome_warnings([feat.name], outcome)),
            }
        )
    return out


def _what_if_values(form: Any, adjustable: list[dict[str, Any]]) -> dict[str, Any]:
    """Changed what-if fields from the posted form (wi_<feature>); ValueError names bad input."""
    changes: dict[str, Any] = {}
    known = {f["name"]: f for f in adjustable}
    for key, raw in form.multi_items():
        if not key.startswith("wi_"):
            continue
        name = key[3:]
        if name not in known:  # not repeated: the key is the client's
            raise ValueError("the form asked to change something that cannot be changed here")
        value: float | None
        if str(raw).strip() == "":
            value = None
        else:
            try:
                value = float(str(raw))
            except ValueError:
                raise ValueError(f"{known[name]['description']}: not a number") from None
        if value != known[name]["value"]:
            changes[name] = value
    return changes


async def _what_if_on_page(
    request: Request, backend: Any, person_id: str, month: Any, adjustable: list[dict[str, Any]]
) -> tuple[Any, str | None]:
    """(the what-if result or None, an error message or None) for a posted form; the form's
    fields then show the values the clinician chose."""
    if request.method != "POST":
        return None, None
    try:
        changes = _what_if_values(await request.form(), adjustable)
        if not changes:
            return None, "Change at least one value to see how the estimate moves."
        outcome = backend.settings.outcome
        _, _, result = backend.what_if(person_id, month, changes, outcome=outcome)
    except ValueError as exc:
        return None, str(exc)
    for f in adjustable:
        if f["name"] in changes:
            f["value"] = _shown(changes[f["name"]])
            f["shown"] = "" if f["value"] is None else f["value"]
    return result, None


@_guard
async def person_page(request: Request) -> Response:
    person_id = _person_id(request)
    svc = _service()
    backend, user = svc.backend, _user(request)
    _, run = svc.person_access(user, person_id, _month(request), "page.person")
    view = backend.person(person_id, run)
    p = person_response(backend.version, view, None, svc.reviews.of_person(person_id))
    adjustable = _adjustable(backend.run_model(view.meta), view.features.iloc[0])
    what_if, what_if_error = await _what_if_on_page(request, backend, person_id, run, adjustable)
    action = "page.what_if" if request.method == "POST" else "page.person"
    svc.record(user, action, [person_id], neighbourhood=p.neighbourhood, month=p.month)
    return _render(
        "person.html", request, p=p, adjustable=adjustable, what_if=what_if,
        what_if_error=what_if_error, what_if_caveat=WHAT_IF_CAVEAT,
        feature_words={f.name: f.description.rstrip(".") for f in FEATURES},
        model_version=p.run_model_version, month=p.month,
        index_date=p.index_date, previous_month=view.previous_month,
        champion_note=p.champion_note, **review_words(),
    )  # fmt: skip


@_guard
async def person_chart(request: Request) -> Response:
    person_id = _person_id(request)
    svc = _service()
    backend, user = svc.backend, _user(request)
    neighbourhood, run = svc.person_access(user, person_id, _month(request), "page.chart")
    view = backend.person(person_id, run)
    svc.record(user, "page.chart", [person_id], neighbourhood=neighbourhood, month=view.month)
    return Response(chart_svg(view.explanation), media_type="image/svg+xml")


@_guard
async def segments_page(request: Request) -> Response:
    """A neighbourhood's population segments in pictures (aggregates only, not audited)."""
    from serving.segments_view import segments_view

    neighbourhood = _asked_neighbourhood(request)
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
    bands = [name for name, _ in backend.run_model(meta).bands]
    below = svc.settings.serving.suppress_below
    view = segments_view(people, runs, neighbourhood, bands, below)
    return _render(
        "segments.html", request, neighbourhood=neighbourhood, month=month,
        index_date=meta["index_date"], run_id=run_id, model_version=str(meta["model"]["version"]),
        champion_note=backend.champion_note(meta), months=_months(backend, month), **view,
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
    neighbourhood = _asked_neighbourhood(request)
    months = performance_view(_service(), neighbourhood)
    return _render("performance.html", request, neighbourhood=neighbourhood, months=months)


async def style(request: Request) -> Response:
    return FileResponse(HERE / "templates" / "style.css", media_type="text/css")


async def favicon(request: Request) -> Response:
    return FileResponse(HERE / "templates" / "favicon.svg", media_type="image/svg+xml")


pages_app = Starlette(
    routes=[
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout),
        Route("/style.css", style),
        Route("/favicon.svg", favicon),
        Route("/overview", overview_page),
        Route("/list", list_page),
        Route("/list.csv", list_csv),
        Route("/list.xlsx", list_xlsx),
        Route("/segments", segments_page),
        Route("/person/{person_id}", person_page, methods=["GET", "POST"]),
        Route("/person/{person_id}/chart.svg", person_chart),
        Route("/review", review_page, methods=["POST"]),
        Route("/performance", performance_page),
        Route("/{unknown:path}", not_found, methods=["GET", "POST"]),  # last: anything else
    ],
)
