"""One error format for every 4xx and 5xx the web process sends.

    {"error": {"code": "STABLE_CODE", "message": "...", "request_id": "..."}}

Clients branch on `code` (stable), people read `message` (may change), support
finds the log lines by `request_id` (also in the X-Request-ID header). `details`
is added where there is more to say (which fields failed validation, which
dependency is down). A traceback never reaches the client.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.redaction import redact, redact_text
from web.context import request_id_of

log = structlog.get_logger(__name__)

# code -> (HTTP status, when it happens). The README's table is generated from this.
CODES: dict[str, tuple[int, str]] = {
    "BAD_REQUEST": (400, "The request is malformed in a way validation does not describe."),
    "INVALID_CURSOR": (400, "The pagination cursor is not one this API returned."),
    "UNAUTHENTICATED": (401, "No API key (Authorization: Bearer <key>) or dashboard session."),
    "INVALID_API_KEY": (401, "The API key is unknown."),
    "API_KEY_REVOKED": (401, "The API key was revoked."),
    "INVALID_SIGNATURE": (401, "A Slack or PagerDuty delivery whose signature is missing, stale or does not match the secret."),
    "INSUFFICIENT_SCOPE": (403, "The key lacks the scope this route needs (read < write < admin)."),
    "CSRF_FAILED": (403, "A dashboard form was posted without its session token."),
    "NOT_FOUND": (404, "No such route."),
    "INVESTIGATION_NOT_FOUND": (404, "No investigation with that id."),
    "METHOD_NOT_ALLOWED": (405, "The route exists but not for this HTTP method."),
    "REPORT_NOT_READY": (409, "The investigation has no report yet."),
    "INVESTIGATION_RUNNING": (409, "The investigation is still running; wait for it to finish."),
    "IDEMPOTENCY_KEY_REUSED": (409, "The Idempotency-Key was sent before with a different request (route, investigation or body)."),
    "PAYLOAD_TOO_LARGE": (413, "The request body is larger than MAX_REQUEST_BYTES."),
    "UNSUPPORTED_MEDIA_TYPE": (415, "The body is not in a media type this route reads."),
    "VALIDATION_ERROR": (422, "The body, query or path failed validation; `details` lists each problem."),
    "UNKNOWN_SERVICE": (422, "The service is not in the service catalog."),
    "RATE_LIMITED": (429, "Too many requests for this key or address; retry after the Retry-After header."),
    "INTERNAL_ERROR": (500, "An unexpected error; the request id finds it in the logs."),
    "QUEUE_UNAVAILABLE": (503, "The job queue (Redis) is not answering; retry shortly (questions, Jira)."),
    "INDEX_UNAVAILABLE": (503, "The incident history index is not answering; reports still come, without similar incidents."),
    "DATABASE_UNAVAILABLE": (503, "The database is not answering; retry after the Retry-After header."),
    "NOT_READY": (503, "/readyz: a dependency (database, Redis) is unreachable; `details` names it."),
}

_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "INSUFFICIENT_SCOPE",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "REPORT_NOT_READY",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    503: "QUEUE_UNAVAILABLE",
}


class ApiError(StarletteHTTPException):
    """Raise anywhere in a request to answer with this code.

    A subclass of Starlette's HTTPException so that FastAPI passes it through
    unchanged even when it is raised while the body is being read.
    """

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None, details: Any = None) -> None:
        super().__init__(CODES[code][0], message, headers=headers)
        self.code = code
        self.message = message
        self.details = details


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    details: Any | None = None


class ErrorResponse(BaseModel):
    """The shape of every error response (documented in the OpenAPI spec)."""

    error: ErrorBody


def error_response(
    status: int, code: str, message: str, request_id: str, *, headers: dict[str, str] | None = None, details: Any = None
) -> JSONResponse:
    # Messages quote what the caller sent (an unknown service name); a pasted secret is not echoed into proxies and logs.
    body: dict[str, Any] = {"code": code, "message": redact_text(message), "request_id": request_id}
    if details is not None:
        body["details"] = redact(jsonable_encoder(details))
    all_headers = {"X-Request-ID": request_id, **(headers or {})}
    return JSONResponse({"error": body}, status_code=status, headers=all_headers)


def error_markdown_table() -> str:
    rows = ["| code | HTTP | when |", "| --- | --- | --- |"]
    rows += [f"| `{code}` | {status} | {when} |" for code, (status, when) in CODES.items()]
    return "\n".join(rows)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, ApiError):
        code, message, details = exc.code, exc.message, exc.details
    else:
        code = _BY_STATUS.get(exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else CODES[code][1]
        details = None
        if exc.status_code == 404:
            message = f"no route {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, code, message, request_id_of(request), headers=dict(exc.headers or {}), details=details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    first = problems[0] if problems else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return error_response(422, "VALIDATION_ERROR", message, request_id_of(request), details=problems)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The driver's message names hosts, ports and users: it goes to the log, the client gets the code.
    log.warning("database_unavailable", error=type(exc).__name__)
    return error_response(
        503,
        "DATABASE_UNAVAILABLE",
        "the database is not answering; try again shortly",
        request_id_of(request),
        headers={"Retry-After": "30"},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(PoolTimeout, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in ((401, "No or bad API key"), (403, "Missing scope"), (422, "Validation error"), (429, "Rate limited"))
}
