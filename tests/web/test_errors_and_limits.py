"""One error format everywhere, request ids, payload limits, rate limits shared across processes, health."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
from web_harness import Keys, Server, free_port, make_investigation

from core.store import Store


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in response.text
    assert error["request_id"] == response.headers["X-Request-ID"]


def test_unknown_route_and_wrong_method_use_the_error_format(server: Server) -> None:
    with server.client() as client:
        _assert_error(client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
        _assert_error(client.delete("/healthz"), 405, "METHOD_NOT_ALLOWED")


def test_validation_errors_use_the_error_format_with_details(server: Server, keys: Keys) -> None:
    response = server.client(keys.write).post("/api/v1/investigations", json={"service": ""})
    _assert_error(response, 422, "VALIDATION_ERROR")
    fields = {tuple(d["loc"]) for d in response.json()["error"]["details"]}
    assert ("body", "service") in fields and ("body", "alert_text") in fields


def test_malformed_json_is_a_validation_error(server: Server, keys: Keys) -> None:
    response = server.client(keys.write).post("/api/v1/investigations", content=b"{not json", headers={"Content-Type": "application/json"})
    _assert_error(response, 422, "VALIDATION_ERROR")


def test_every_response_carries_a_request_id_and_a_safe_caller_id_is_kept(server: Server) -> None:
    with server.client() as client:
        assert len(client.get("/healthz").headers["X-Request-ID"]) == 32
        assert client.get("/healthz", headers={"X-Request-ID": "lb-1234"}).headers["X-Request-ID"] == "lb-1234"
        assert client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"}).headers["X-Request-ID"] != "bad id\twith junk"


def test_unexpected_server_errors_are_500_internal_error_without_a_traceback(server: Server, keys: Keys, web_store: Store) -> None:
    row = make_investigation(web_store)
    # A stored report that breaks the contract: reading it fails deep inside, which must not leak.
    web_store.update(row.id, report={"root_cause": {"category": "no-such-category"}})
    response = server.client(keys.read).get(f"/api/v1/investigations/{row.id}")
    _assert_error(response, 500, "INTERNAL_ERROR")
    assert "no-such-category" not in response.text


def test_declared_oversized_body_is_413_before_it_is_read(server: Server, keys: Keys) -> None:
    body = b"x" * 1_100_000
    response = server.client(keys.write).post("/api/v1/investigations", content=body, headers={"Content-Type": "application/json"})
    _assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_streamed_oversized_body_is_413(server: Server, keys: Keys) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"service": "'
        for _ in range(40):
            yield b"a" * 32_768
        yield b'", "alert_text": "x"}'

    response = server.client(keys.write).post("/api/v1/investigations", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_per_key_limit_is_shared_by_two_web_processes_and_answers_429_with_retry_after(spawn: Callable[..., Server], keys: Keys) -> None:
    queue = f"test-rl-{uuid.uuid4().hex[:8]}"
    first = spawn(QUEUE_NAME=queue, API_RATE_LIMIT_PER_KEY="5/minute")
    second = spawn(QUEUE_NAME=queue, API_RATE_LIMIT_PER_KEY="5/minute")
    statuses = [(first if i % 2 else second).client(keys.read).get("/api/v1/investigations").status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = first.client(keys.read).get("/api/v1/investigations")
    _assert_error(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another key has its own budget.
    assert first.client(keys.admin).get("/api/v1/investigations").status_code == 200


def test_per_ip_limit_applies_to_anonymous_requests_but_not_to_health(spawn: Callable[..., Server]) -> None:
    limited = spawn(API_RATE_LIMIT_PER_IP="3/minute")
    with limited.client() as client:
        statuses = [client.get("/api/v1/investigations").status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        _assert_error(client.get("/login"), 429, "RATE_LIMITED")
        assert all(client.get("/healthz").status_code == 200 for _ in range(5))


def test_readyz_is_ok_when_database_and_redis_answer(server: Server) -> None:
    body = server.client().get("/readyz").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(spawn: Callable[..., Server]) -> None:
    dead = spawn(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    response = dead.client().get("/readyz")
    _assert_error(response, 503, "NOT_READY")
    assert response.json()["error"]["details"]["database"].startswith("unreachable")
    assert response.json()["error"]["details"]["redis"] == "ok"
    assert dead.client().get("/healthz").status_code == 200


def test_rate_limits_fail_open_and_readyz_names_redis_when_it_is_down(spawn: Callable[..., Server], keys: Keys) -> None:
    no_redis = spawn(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", API_RATE_LIMIT_PER_KEY="1/minute")
    with no_redis.client(keys.read) as client:
        assert [client.get("/api/v1/investigations").status_code for _ in range(3)] == [200, 200, 200]
        response = client.get("/readyz")
    _assert_error(response, 503, "NOT_READY")
    assert response.json()["error"]["details"] == {"database": "ok", "redis": "unreachable"}
    assert "rate_limit_storage_down_failing_open" in no_redis.log.read_text()


def test_nul_characters_are_a_validation_error_not_a_database_error(server: Server, keys: Keys) -> None:
    # Found by schemathesis: PostgreSQL text cannot hold NUL, which used to surface as a 500.
    response = server.client(keys.write).post("/api/v1/investigations", json={"service": "\u0000", "alert_text": "x"})
    _assert_error(response, 422, "VALIDATION_ERROR")
    _assert_error(server.client(keys.read).get("/api/v1/investigations", params={"q": "a\u0000b"}), 422, "VALIDATION_ERROR")
