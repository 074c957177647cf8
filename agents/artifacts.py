"""Finished reports kept as files (JSON, Markdown, HTML) in the artifact store, and their links.

Written once the report is stored; a store that is down costs the files, never the
report (it is in the database) or the notifications. Pruned by the worker's sweeper,
at most once an hour, past `ARTIFACTS_RETENTION_DAYS`.
"""

from __future__ import annotations

import json
from functools import lru_cache

import structlog

from agents.render import render
from core.metrics import inc
from core.models import Investigation
from core.settings import Settings, get_settings
from integrations.artifacts.stores import ArtifactStore, cutoff, open_store
from integrations.errors import SourceError

log = structlog.get_logger(__name__)

FORMATS = {"json": "application/json", "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}
PRUNE_EVERY_S = 3600


@lru_cache(maxsize=4)
def _store(url: str, root: str, endpoint_url: str | None, link_ttl_s: int) -> ArtifactStore:
    from pathlib import Path

    return open_store(url, default_root=Path(root), endpoint_url=endpoint_url, link_ttl_s=link_ttl_s)


def store_for(settings: Settings | None = None) -> ArtifactStore:
    settings = settings or get_settings()
    return _store(
        settings.artifacts_url, str(settings.data_dir / "reports"), settings.artifacts_endpoint_url, settings.artifacts_link_ttl_s
    )


def key(investigation_id: str, extension: str) -> str:
    return f"{investigation_id}/report.{extension}"


def keep_report(row: Investigation) -> bool:
    """Write the report's three files; False (logged and counted) when the store refuses."""
    if row.report is None:
        return False
    settings = get_settings()
    url = f"{settings.public_url.rstrip('/')}/investigations/{row.id}"
    bodies = {
        "json": json.dumps(row.report, indent=2, default=str),
        "md": render(row.report, "markdown", override_dir=settings.templates_dir),
        "html": render(row.report, "html", override_dir=settings.templates_dir, standalone=True, report_url=url, thread_url=None),
    }
    try:
        store = store_for(settings)
        for extension, body in bodies.items():
            store.put(key(row.id, extension), body.encode(), FORMATS[extension])
    except SourceError as exc:
        log.warning("report_artifacts_not_kept", reason=str(exc))
        inc("integration_errors_total", source="artifacts")
        return False
    return True


def report_link(row: Investigation) -> str:
    """The link people get: the dashboard page, or the stored HTML report when REPORT_LINKS=artifact."""
    settings = get_settings()
    dashboard = f"{settings.public_url.rstrip('/')}/investigations/{row.id}"
    if settings.report_links != "artifact":
        return dashboard
    try:
        return store_for(settings).link(key(row.id, "html"))
    except (SourceError, OSError) as exc:
        log.warning("report_artifact_link_failed", reason=str(exc))
        return dashboard


def prune() -> int:
    """Reports past the retention out of the store; at most once an hour across workers (a Redis key gates it)."""
    settings = get_settings()
    if settings.artifacts_retention_days <= 0:
        return 0
    from core.runtime import get_redis

    if not get_redis().set("ir:artifacts-pruned", "1", nx=True, ex=PRUNE_EVERY_S):
        return 0
    return store_for(settings).prune(cutoff(settings.artifacts_retention_days))
