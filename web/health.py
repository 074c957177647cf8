"""/healthz (the process answers) and /readyz (it can do its work: database and Redis reachable)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from core.db import ping
from core.queue import redis_alive
from core.runtime import get_redis, get_store
from web.context import request_id_of
from web.errors import ErrorResponse, error_response

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


def _check_database() -> str:
    try:
        ping(get_store().engine)
        return "ok"
    except Exception as exc:  # noqa: BLE001  (whatever the driver raises, the answer is "not ready")
        return f"unreachable: {type(exc).__name__}"


def _check_redis() -> str:
    return "ok" if redis_alive(get_redis()) else "unreachable"


@router.get(
    "/readyz",
    response_model=Health,
    summary="Database and Redis are reachable",
    responses={503: {"model": ErrorResponse, "description": "A dependency is unreachable"}},
)
async def readyz(request: Request) -> Health | JSONResponse:
    checks = {"database": await run_in_threadpool(_check_database), "redis": await run_in_threadpool(_check_redis)}
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        return error_response(503, "NOT_READY", f"not ready: {', '.join(failing)} unreachable", request_id_of(request), details=checks)
    return Health(status="ok", checks=checks)
