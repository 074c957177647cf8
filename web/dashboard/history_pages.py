"""Dashboard pages of the incident history: search past incidents by meaning, record how one was resolved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from agents import history
from agents.report import CATEGORIES, SimilarIncident
from integrations.history.qdrant_index import IndexUnavailable
from web import service
from web.auth import Principal
from web.dashboard.pages import AGES, _action_guard, _back, _page, _to_login, _viewer

router = APIRouter(include_in_schema=False)


@router.get("/history")
def history_page(
    request: Request,
    q: Annotated[str | None, Query(max_length=1000, pattern=r"^[^\x00]*$")] = None,
    service_name: Annotated[str | None, Query(alias="service", max_length=200, pattern=r"^[^\x00]*$")] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    age: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    viewer = _viewer(request)
    if viewer is None:
        return _to_login(request)
    chosen = {"q": q or "", "service": service_name or "", "category": category or "", "age": age or ""}
    found: list[SimilarIncident] = []
    problem = None
    if q:
        since = datetime.now(UTC) - AGES[age] if age in AGES else None
        try:
            found = history.search(q, service=service_name or None, category=category or None, since=since, limit=20)
        except IndexUnavailable as exc:
            problem = f"The incident history is not answering: {exc}"
    return _page(request, "history.html", viewer, chosen=chosen, found=found, problem=problem, categories=CATEGORIES, ages=list(AGES))


@router.post("/investigations/{investigation_id}/resolve")
def resolve_action(
    request: Request,
    investigation_id: str,
    csrf: Annotated[str, Form(max_length=64)],
    resolution: Annotated[str, Form(min_length=1, max_length=4000, pattern=r"^[^\x00]*$")],
) -> Response:
    viewer = _action_guard(request, csrf)
    if not isinstance(viewer, Principal):
        return viewer
    row = service.require_investigation(investigation_id)
    history.record_resolution(row.id, resolution, by=f"dashboard:{viewer.name}")
    return _back(row.id, "Resolution recorded; similar incidents will show it.")
