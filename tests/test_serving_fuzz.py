"""Fuzz the service's OpenAPI schema with schemathesis (bounded examples): no input, valid or
not, may get a 5xx. Each operation is called with a token of a role allowed on it, so the fuzzing
reaches the handlers, not only the access check.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests import serving_fixtures

built_home = serving_fixtures.built_home  # pytest fixtures shared by the serving tests
server = serving_fixtures.server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
USER_FOR = {
    "/score": "scientist",
    "/score_model": "scientist",
    "/summary": "scientist",
    "/list": "north_team",
    "/person": "north_clinician",
    "/what_if": "north_clinician",
    "/status": None,
}


MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def operations(server):
    raw = httpx.get(f"{server.url}/docs.json", timeout=30).json()
    # Only our endpoints: BentoML's own probes take no body and are covered elsewhere.
    raw["paths"] = {p: v for p, v in raw["paths"].items() if p in USER_FOR}
    schema = schemathesis.openapi.from_dict(raw)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_no_server_errors(server, mode):
    """Valid (positive) and invalid (negative) bodies for every operation, 25 each."""
    ops = operations(server)
    assert {op.path for op in ops} == set(USER_FOR)
    seen: dict[int, int] = {}
    for op in ops:
        check_operation(server, op, mode, seen)
    if mode == GenerationMode.POSITIVE:
        assert seen.get(200, 0) > 0  # valid data reached the handlers
    else:
        assert seen.get(400, 0) > 0


def check_operation(server, op, mode, seen: dict[int, int]) -> None:
    """Call one operation with 25 generated bodies; any 5xx or unexpected status fails."""
    headers = server.headers(USER_FOR[op.path])

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case):
        response = case.call(base_url=server.url, headers=headers, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code in (200, 400, 403, 404, 422), (
            case.path, response.status_code, response.text[:300],
        )  # fmt: skip
        seen[response.status_code] = seen.get(response.status_code, 0) + 1

    call()
