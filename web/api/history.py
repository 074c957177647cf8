"""/api/v1/search and PATCH /api/v1/investigations/{id}: the incident history, searched by meaning, and how incidents ended."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from agents import history
from agents.report import Category, SimilarIncident
from core.store import NotFound
from integrations.history.qdrant_index import IndexUnavailable
from web import service
from web.api.schemas import NO_NUL, InvestigationDetail
from web.auth import Principal, require
from web.errors import ERROR_RESPONSES, ApiError

search_router = APIRouter(prefix="/api/v1/search", tags=["history"], responses=ERROR_RESPONSES)
resolution_router = APIRouter(prefix="/api/v1/investigations", tags=["investigations"], responses=ERROR_RESPONSES)

Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]


class SearchPage(BaseModel):
    items: list[SimilarIncident]
    next_offset: int | None = Field(description="Pass as `offset` for the next page; null on the last page.")


class RecordResolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: str = Field(min_length=1, max_length=4000, pattern=NO_NUL, description="What fixed it, in words.")


@search_router.get("", response_model=SearchPage, summary="Past incidents closest in meaning to the words given")
def search(
    _: Reader,
    q: Annotated[str, Query(min_length=1, max_length=1000, pattern=NO_NUL, description="What happened, in words or a log line.")],
    service_name: Annotated[str | None, Query(alias="service", max_length=200, pattern=NO_NUL)] = None,
    category: Category | None = None,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> SearchPage:
    try:
        # One more than asked tells whether a next page exists without counting every match.
        found = history.search(q, service=service_name, category=category, since=since, limit=limit + 1, offset=offset)
    except IndexUnavailable as exc:
        raise ApiError("INDEX_UNAVAILABLE", str(exc)) from None
    return SearchPage(items=found[:limit], next_offset=offset + limit if len(found) > limit else None)


@resolution_router.patch("/{investigation_id}", response_model=InvestigationDetail, summary="Record how the incident was resolved")
def record_resolution(
    investigation_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")], body: RecordResolution, principal: Writer
) -> InvestigationDetail:
    service.require_investigation(investigation_id)
    try:
        row = history.record_resolution(investigation_id, body.resolution, by=f"api:{principal.name}")
    except NotFound:
        raise ApiError("INVESTIGATION_NOT_FOUND", f"no investigation {investigation_id}") from None
    return service.detail(row)
