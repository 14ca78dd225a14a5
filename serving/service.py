"""The casefinder BentoML service: `bentoml serve serving.service:CaseFinder` or `casefinder serve`.

At start-up it loads the registry's champion model once; every response carries that model's
version (in the body and the `X-Model-Version` header). Access control wraps every path
(`serving.access`); person-level reads are appended to the audit log (`serving.audit`). The
neighbourhood pages are mounted under /ui (`serving.pages`). BentoML adds /healthz, /livez,
/readyz and /metrics; /status says which model is loaded and whether the registry answers.
"""

import gc
import os

# One OpenMP thread per LightGBM call: requests are small and run in parallel threads, and
# OpenMP's thread team costs ~30 ms per 1-row prediction on a busy 2-core machine (measured by
# benchmarks/bench_serve.py) against ~0.02 ms single-threaded. Must be set before LightGBM loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from typing import Annotated, Any

import bentoml
import numpy as np
import pandas as pd
from pydantic import Field
from starlette.responses import JSONResponse

from config.settings import load_settings
from scoring.disclosure import suppressed, suppressed_group
from serving.access import (
    USER_KEY,
    AccessMiddleware,
    Denied,
    check_neighbourhood,
    label_metrics_by_route,
)
from serving.audit import AuditLog
from serving.backend import Backend, NotFound, OptedOut, ResolvedRun
from serving.pages import pages_app
from serving.responses import (
    chart_svg,
    listed_person,
    person_response,
    public_message,
    scored_row,
    what_if_response,
)
from serving.reviews import ReviewError, ReviewStore, check_fields, store_review
from serving.schemas import (
    FeatureRow,
    ListPerformance,
    ListRequest,
    ListResponse,
    ModelRef,
    ModelScoreResponse,
    NeighbourhoodSummary,
    PersonRequest,
    PersonResponse,
    Review,
    ReviewRequest,
    ReviewsRequest,
    ReviewsResponse,
    ScoredRow,
    SegmentCounts,
    SegmentFlow,
    SegmentPerson,
    SegmentsRequest,
    SegmentsResponse,
    Status,
    SummaryRequest,
    SummaryResponse,
    WhatIfRequest,
    WhatIfResponse,
    score_requests,
)
from serving.sessions import SessionStore
from serving.throttle import FailedTokens
from serving.users import User, UserStore

SETTINGS = load_settings()
MAX_ROWS = SETTINGS.serving.max_batch_rows
ScoreRequest, ScoreModelRequest = score_requests(MAX_ROWS)
# Body limits (bytes) above the default (serving.access.BODY_LIMIT): feature rows to score,
# 8 KiB per row allowed (a row of every input is about 3.5 KiB as JSON).
BODY_LIMITS = {"/score": MAX_ROWS * 8192, "/score_model": MAX_ROWS * 8192}
# One per worker process, shared by the access middleware and the sign-in page.
THROTTLE = FailedTokens(
    SETTINGS.serving.failed_tokens_allowed, SETTINGS.serving.failed_tokens_window_seconds
)
# "Not in your neighbourhood" and "not found" are one answer (status, body), so that a user learns
# nothing about people outside their scope, not even whether they exist.
NO_SUCH_PERSON = "no person {person_id} in your neighbourhood in the {month} run"


def error(status: int, message: str, ctx: bentoml.Context | None = None) -> JSONResponse:
    """An error body like BentoML's own: {"error": message}. BentoML copies the context's status
    onto the response of endpoints that take a context, so set it there too."""
    if ctx is not None:
        ctx.response.status_code = status
    return JSONResponse({"error": public_message(message, SETTINGS)}, status_code=status)


def _plain_value(value: Any) -> Any:
    """A table value as JSON: missing -> None, numpy scalars -> Python."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


ROW_FIELDS = tuple(FeatureRow.model_fields)
ROW_COLUMNS = pd.Index(ROW_FIELDS)


def _row_frame(rows: list[Any]) -> pd.DataFrame:
    """Validated feature rows as a float frame (a missing value NaN). Built through one array:
    pandas' frame-from-dicts took a quarter of a one-row /score."""
    values = np.array([[getattr(r, n) for n in ROW_FIELDS] for r in rows], dtype=float)
    return pd.DataFrame(values, columns=ROW_COLUMNS)


def _model_version() -> str | None:
    try:
        return bentoml.get_current_service().backend.version
    except Exception:
        return None


def _users() -> UserStore:
    return UserStore.of(SETTINGS)


def _sessions(users: UserStore) -> SessionStore:
    return SessionStore(users.db, SETTINGS.serving.session_hours)


@bentoml.service(
    name="casefinder",
    workers=SETTINGS.serving.workers,
    threads=SETTINGS.serving.threads,
    traffic={"timeout": 120},
)
class CaseFinder:
    """Risk scores, neighbourhood lists and person explanations for the champion model."""

    def __init__(self) -> None:
        self.settings = load_settings()
        self.backend = Backend.start(self.settings)
        self.audit = AuditLog.of(self.settings)
        self.users = UserStore(self.audit.db)
        self.sessions = _sessions(self.users)
        self.reviews = ReviewStore(self.audit.db)
        self.throttle = THROTTLE
        # Everything loaded so far lives as long as the worker: keep it out of the cyclic
        # collector, whose full passes over it paused requests for up to ~180 ms
        # (benchmarks/bench_serve.py, one-row /score p99).
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.backend is not None

    # --- helpers -------------------------------------------------------------------------

    def user(self, ctx: bentoml.Context) -> User:
        user = ctx.request.scope.get(USER_KEY)
        if user is None:  # the middleware always sets it on these paths
            raise Denied(401, "not signed in")
        return user

    def run_fields(self, month: str, run_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        """The fields every run-based response starts with: the loaded champion, the run's own
        model, what to know when they differ, the run, its month and index date."""
        return {
            "model_version": self.backend.version,
            "run_model_version": str(meta["model"]["version"]),
            "champion_note": self.backend.champion_note(meta),
            "run_id": run_id,
            "month": month,
            "index_date": meta["index_date"],
        }

    def record(self, user: User, action: str, person_ids: list[str], **where: Any) -> None:
        self.audit.append(
            user=user.name,
            role=user.role,
            action=action,
            person_ids=person_ids,
            model_version=self.backend.version,
            **where,
        )

    def record_throttled(self, client: str) -> None:
        """Audit a client locked out for failed tokens (no user: the tokens matched nobody)."""
        self.audit.append(
            user=f"client {client}", role="none", action="auth.throttled", person_ids=[]
        )

    def person_access(
        self, user: User, person_id: str, month: str | None, action: str
    ) -> tuple[str, ResolvedRun]:
        """(neighbourhood, the month's run resolved once for the request) by
        `Backend.check_person_access`, with one answer (`NO_SUCH_PERSON`, 404) for a person
        outside the user's neighbourhood and one not in the run, audited as `<action>.refused`;
        an in-scope person who opted out is refused as `<action>.refused_opted_out`; a month never
        scored as `<action>.refused` too. Each refusal names the user, the target and the month
        resolved (never "latest"), with outcome "refused"."""
        try:
            run = self.backend.run(month)  # the request's run, resolved once
        except NotFound:
            self.record(
                user, f"{action}.refused", [person_id], neighbourhood=user.neighbourhood,
                month=month, outcome="refused",
            )  # fmt: skip
            raise
        resolved = run.month
        try:
            return self.backend.check_person_access(user, person_id, run), run
        except OptedOut as exc:
            self.record(
                user, f"{action}.refused_opted_out", [person_id],
                neighbourhood=exc.neighbourhood, month=resolved, outcome="refused",
            )  # fmt: skip
            raise
        except (Denied, NotFound):
            self.record(
                user, f"{action}.refused", [person_id], neighbourhood=user.neighbourhood,
                month=resolved, outcome="refused",
            )  # fmt: skip
            raise NotFound(NO_SUCH_PERSON.format(person_id=person_id, month=resolved)) from None

    # --- endpoints -----------------------------------------------------------------------

    @bentoml.api(
        route="/score",
        input_spec=ScoreRequest,  # errors name the field, never the value (nor in the log)
        batchable=True,
        batch_dim=0,
        max_batch_size=SETTINGS.serving.batch_max_rows,
        max_latency_ms=SETTINGS.serving.batch_max_latency_ms,
    )
    def score(
        self, rows: Annotated[list[FeatureRow], Field(min_length=1, max_length=MAX_ROWS)]
    ) -> list[ScoredRow]:
        """Score feature rows: probability, band and top reasons for each (data scientists)."""
        frame = _row_frame(rows)
        return [scored_row(e, self.backend.version) for e in self.backend.score(frame)]

    @bentoml.api(route="/score_model", input_spec=ScoreModelRequest)
    def score_model(
        self,
        model: ModelRef,
        rows: Annotated[list[FeatureRow], Field(min_length=1, max_length=MAX_ROWS)],
        ctx: bentoml.Context,
    ) -> ModelScoreResponse:
        """Score feature rows with any registered model version or alias (data scientists)."""
        from models.explain import explain
        from models.registry import RegistryError

        try:
            chosen, version = self.backend.model_for(model)
        except RegistryError as exc:
            return error(404, str(exc), ctx)
        except Exception as exc:  # the registry is down: the loaded champion still serves /score
            return error(503, f"the model registry did not answer ({type(exc).__name__})", ctx)
        frame = _row_frame(rows)
        results = [
            scored_row(e, version)
            for e in explain(chosen, frame, top_n=self.backend.top_n)  # against the rows' mean
        ]
        return ModelScoreResponse(
            model_version=self.backend.version, scored_with=version, results=results
        )

    @bentoml.api(route="/list", input_spec=ListRequest)
    def neighbourhood_list(
        self, neighbourhood: str, month: str | None, flag: str | None, ctx: bentoml.Context
    ) -> ListResponse:
        """The current MDT list of a neighbourhood for a month (team and clinicians there)."""
        user = self.user(ctx)
        try:
            check_neighbourhood(user, neighbourhood)
            month, run_id, meta, rows = self.backend.neighbourhood_list(neighbourhood, month, flag)
        except Denied as exc:
            return error(exc.status, exc.message, ctx)
        except NotFound as exc:
            return error(404, str(exc), ctx)
        self.record(
            user, "api.list", [r["person_id"] for r in rows], neighbourhood=neighbourhood,
            month=month,
        )  # fmt: skip
        return ListResponse(
            **self.run_fields(month, run_id, meta),
            neighbourhood=neighbourhood,
            people=[listed_person(r, meta.get("reference_probability")) for r in rows],
        )

    @bentoml.api(route="/person", input_spec=PersonRequest)
    def person(
        self, person_id: str, month: str | None, include_chart: bool, ctx: bentoml.Context
    ) -> PersonResponse:
        """One person's explanation for a month and the change since last month (clinicians)."""
        user = self.user(ctx)
        try:
            neighbourhood, run = self.person_access(user, person_id, month, "api.person")
            view = self.backend.person(person_id, run)
        except Denied as exc:
            return error(exc.status, exc.message, ctx)
        except NotFound as exc:
            return error(404, str(exc), ctx)
        self.record(user, "api.person", [person_id], neighbourhood=neighbourhood, month=view.month)
        svg = chart_svg(view.explanation) if include_chart else None
        return person_response(self.backend.version, view, svg, self.reviews.of_person(person_id))

    @bentoml.api(route="/what_if", input_spec=WhatIfRequest)
    def what_if(
        self,
        person_id: str,
        month: str | None,
        changes: dict[str, float | None],
        ctx: bentoml.Context,
    ) -> WhatIfResponse:
        """One person's score with some adjustable features changed (clinicians)."""
        user = self.user(ctx)
        try:
            _, run = self.person_access(user, person_id, month, "api.what_if")
            names = self.backend.run_model(run.meta).feature_names
            unknown = [name for name in changes if name not in names]
            if unknown:  # not repeated: the keys are the client's
                return error(422, f"{len(unknown)} change(s) name no input of this model", ctx)
            month, row, result = self.backend.what_if(person_id, run, changes)
        except Denied as exc:
            return error(exc.status, exc.message, ctx)
        except NotFound as exc:
            return error(404, str(exc), ctx)
        except ValueError as exc:
            return error(422, str(exc), ctx)
        self.record(
            user, "api.what_if", [person_id], neighbourhood=row["neighbourhood"], month=month
        )
        return what_if_response(self.backend.version, month, person_id, result)

    def record_review(self, user: User, request: ReviewRequest, action: str) -> Review:
        """Store the MDT's decision for a person and month, with its audit entry in the same
        transaction. Refusals are audited as `<action>.refused`: out of scope, unknown person
        or month (`NotFound`, one answer), opted out (`OptedOut`), and fields that do not fit
        the outcome (`ReviewError`, naming the field)."""
        try:
            check_fields(request)
        except ReviewError:
            self.record(
                user, f"{action}.refused", [request.person_id], neighbourhood=user.neighbourhood,
                month=request.month, outcome="refused",
            )  # fmt: skip
            raise
        neighbourhood, run = self.person_access(user, request.person_id, request.month, action)
        _, _, meta, row = self.backend.person_row(request.person_id, run)
        return store_review(
            self.reviews, self.audit, request, neighbourhood=neighbourhood,
            probability=row.get("probability"), listed_on=str(meta["index_date"]),
            user=user.name, role=user.role, action=action, model_version=self.backend.version,
        )  # fmt: skip

    @bentoml.api(route="/review", input_spec=ReviewRequest)
    def review(
        self,
        person_id: str,
        month: str,
        outcome: str,
        care_coordinator: str | None,
        care_plan_started: Any,
        reason: str | None,
        review_month: str | None,
        note: str | None,
        ctx: bentoml.Context,
    ) -> Review:
        """Record the MDT's decision for a person listed in a month (team and clinicians of the
        person's neighbourhood); returns the stored review with its id."""
        user = self.user(ctx)
        request = ReviewRequest(
            person_id=person_id, month=month, outcome=outcome, care_coordinator=care_coordinator,
            care_plan_started=care_plan_started, reason=reason, review_month=review_month,
            note=note,
        )  # fmt: skip
        try:
            return self.record_review(user, request, "api.review")
        except ReviewError as exc:
            return error(422, str(exc), ctx)
        except NotFound as exc:
            return error(404, str(exc), ctx)

    @bentoml.api(route="/reviews", input_spec=ReviewsRequest)
    def list_reviews(
        self, neighbourhood: str, month: str | None, ctx: bentoml.Context
    ) -> ReviewsResponse:
        """A neighbourhood's MDT reviews, newest first (team and clinicians there); audited."""
        user = self.user(ctx)
        try:
            check_neighbourhood(user, neighbourhood)
        except Denied as exc:
            return error(exc.status, exc.message, ctx)
        found = self.reviews.of_neighbourhood(neighbourhood, month)
        self.record(
            user, "api.reviews", sorted({r.person_id for r in found}), neighbourhood=neighbourhood,
            month=month,
        )  # fmt: skip
        return ReviewsResponse(neighbourhood=neighbourhood, month=month, reviews=found)

    @bentoml.api(route="/summary", input_spec=SummaryRequest)
    def summary(self, month: str | None) -> SummaryResponse:
        """Counts per neighbourhood and band for a month; no person-level data (data scientists)."""
        try:
            month, run_id, meta, table = self.backend.summary(month)
        except NotFound as exc:
            return error(404, str(exc))
        below = self.settings.serving.suppress_below
        band_names = [name for name, _ in self.backend.run_model(meta).bands]
        hoods = []
        for hood, r in table.iterrows():
            bands = suppressed_group({b: int(r[b]) if b in r else 0 for b in band_names}, below)
            hoods.append(
                NeighbourhoodSummary(
                    neighbourhood=str(hood),
                    eligible=suppressed(r["eligible"], below),
                    scored=suppressed(r["scored"], below),
                    listed=suppressed(r["listed"], below),
                    bands=bands,
                )
            )
        performance = []
        for hood, r in self.backend.performance(month, run_id).iterrows():
            counts = {k: suppressed(int(r[k]), below) for k in ("listed", "reviewed", "accepted")}
            small = any(isinstance(counts[k], str) for k in ("reviewed", "accepted"))
            performance.append(
                ListPerformance(
                    neighbourhood=str(hood), **counts,
                    share_accepted=None if small else _plain_value(r["share_accepted"]),
                    median_days_to_review=_plain_value(r["median_days_to_review"]),
                )
            )  # fmt: skip
        return SummaryResponse(
            **self.run_fields(month, run_id, meta),
            suppress_below=below,
            neighbourhoods=hoods,
            performance=performance,
        )

    @bentoml.api(route="/segments", input_spec=SegmentsRequest)
    def segments(
        self,
        month: str | None,
        neighbourhood: str | None,
        segment: str | None,
        rising_risk: bool,
        ctx: bentoml.Context,
    ) -> SegmentsResponse:
        """Population segments of a month: counts and flows per neighbourhood (every role);
        with `neighbourhood`, its people's segments and reasons (team and clinicians there)."""
        from features.segments import RISING_RISK, SEGMENTS
        from scoring.segments import flow_sentence, segment_counts, segment_flows, segment_table

        user = self.user(ctx)
        try:
            if neighbourhood is not None:
                if user.role not in ("team", "clinician"):
                    raise Denied(403, f"role {user.role} may not see person-level segments")
                check_neighbourhood(user, neighbourhood)
            month, run_id, meta, people = self.backend.segments(month)
            if neighbourhood is not None and neighbourhood not in set(
                people["neighbourhood"].astype(str)
            ):
                raise NotFound(f"neighbourhood {neighbourhood} is not in the {month} run")
        except Denied as exc:
            return error(exc.status, exc.message, ctx)
        except NotFound as exc:
            return error(404, str(exc), ctx)
        below = self.settings.serving.suppress_below
        counts = segment_counts(people)
        hoods = [
            SegmentCounts(
                neighbourhood=str(hood),
                people=suppressed(rows["people"].sum(), below),
                segments=suppressed_group(
                    {str(r.segment): int(r.people) for r in rows.itertuples()}, below
                ),
                rising_risk=suppressed(rows["rising_risk"].sum(), below),
                moved=suppressed(rows["moved"].sum(), below),
            )
            for hood, rows in counts.groupby("neighbourhood", sort=True)
        ]
        flows = []
        for r in segment_flows(people).itertuples():
            shown = suppressed(r.people, below)
            flows.append(
                SegmentFlow(
                    neighbourhood=str(r.neighbourhood), from_segment=str(r.from_segment),
                    to_segment=str(r.to_segment), people=shown,
                    sentence=flow_sentence(str(r.from_segment), str(r.to_segment), shown),
                )
            )  # fmt: skip
        rows = None
        if neighbourhood is not None:
            table = segment_table(people[people["neighbourhood"] == neighbourhood], run_id)
            if segment is not None:
                table = table[table["segment"] == segment]
            if rising_risk:
                table = table[table["rising_risk"].astype(bool)]
            rows = [
                SegmentPerson(**{k: _plain_value(v) for k, v in r.items()})
                for r in table.to_dict("records")
            ]
            self.record(
                user, "api.segments", [r.person_id for r in rows], neighbourhood=neighbourhood,
                month=month,
            )  # fmt: skip
        return SegmentsResponse(
            **self.run_fields(month, run_id, meta),
            suppress_below=below,
            segment_words={**SEGMENTS, "rising_risk": RISING_RISK},
            neighbourhoods=hoods,
            flows=flows,
            people=rows,
        )

    @bentoml.api(route="/status", input_spec=None)
    def status(self) -> Status:
        """Which model is loaded and whether the registry answers (no personal data)."""
        self.backend.follow_champion()
        ok, detail = self.backend.registry()
        return Status(
            model_name=self.settings.mlflow.registered_model,
            model_version=self.backend.version,
            model_loaded_at=self.backend.loaded_at,
            registry="reachable" if ok else "unreachable",
            registry_detail=public_message(detail, self.settings),
            months=self.backend.store.months(),
            replaced=[f"version {version} until {when}" for version, when in self.backend.replaced],
        )


def _refused(user: User, path: str, target: list[str]) -> None:
    """Audit a person-level request the user's role may not make (403 by the middleware)."""
    if path.startswith("/ui/person/"):
        action = "page.chart" if path.endswith("/chart.svg") else "page.person"
    elif path.startswith("/ui/"):
        action = "page." + path.removeprefix("/ui/")
    else:
        action = "api." + path.strip("/")
    bentoml.get_current_service().record(
        user, f"{action}.refused", target, neighbourhood=user.neighbourhood, outcome="refused"
    )


def _registry_state() -> str | None:
    try:
        ok, _ = bentoml.get_current_service().backend.registry()
    except Exception:
        return None
    return "reachable" if ok else "unreachable"


def _audit_throttled(action: str, client: str) -> None:
    """The access middleware's lock-out audit, through the service (`record_throttled`)."""
    bentoml.get_current_service().record_throttled(client)


def _route_templates() -> list[str]:
    """Every route the service answers, as templates (the metrics' labels)."""
    apis = [api.route for api in CaseFinder.apis.values()]
    pages = ["/ui" + route.path for route in pages_app.routes]
    builtin = ["/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/schema.json", "/"]
    return [*apis, *pages, *builtin]


def _fix_media_types() -> None:
    """Set each endpoint's response media type once. BentoML derives a root model's (a list
    output's) media type from its JSON schema on every response, a sixth of a one-row /score
    (py-spy); the type never changes, so it is derived here, the same way, at import."""
    for api in CaseFinder.apis.values():
        spec = api.output_spec
        if spec.media_type is None:
            spec.media_type = spec.mime_type()


_fix_media_types()
label_metrics_by_route(_route_templates)  # /metrics names routes, never paths (people)
CaseFinder.add_asgi_middleware(
    AccessMiddleware, store=_users, sessions=_sessions, model_version=_model_version,
    registry=_registry_state, body_limits=BODY_LIMITS, refused=_refused, throttle=THROTTLE,
    audit_refusal=_audit_throttled,
)  # fmt: skip
CaseFinder.mount_asgi_app(pages_app, path="/ui")
