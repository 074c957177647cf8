"""Schemathesis against the published OpenAPI spec: whatever it sends, the server never answers 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from web_harness import Keys, Server

from core.store import Store

EXAMPLES_PER_OPERATION = 12


def test_no_generated_request_makes_the_api_fail_with_a_server_error(server: Server, keys: Keys, web_store: Store) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {keys.admin}"}
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/events"):
            continue  # the event stream stays open while an investigation runs; it has its own tests

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )  # no shrinking: the failing request is printed as curl
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=headers, checks=[not_a_server_error])

        no_server_error()
        tried.append(f"{operation.method.upper()} {operation.path}")
    assert "POST /api/v1/investigations" in tried and "GET /readyz" in tried
    assert "GET /api/v1/search" in tried and "PATCH /api/v1/investigations/{investigation_id}" in tried


def test_openapi_spec_is_published_with_bearer_auth_and_error_schema(server: Server) -> None:
    spec = server.client().get("/api/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "ErrorResponse" in spec["components"]["schemas"]
    assert "/api/v1/investigations/{investigation_id}/jira" in spec["paths"]
