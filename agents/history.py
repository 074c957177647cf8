"""The incident history: every finished investigation indexed by meaning, so a new one can say "we have seen this before".

An investigation is indexed as the text a responder would compare: its root cause,
key signatures (templates, never raw lines), component and category, the culprit
commit's title, the follow-up questions and answers and, once someone records it,
how it was resolved. Everything indexed is redacted first. The index is optional
in every path: when it is down or corrupt the report still comes, without the
similar incidents and with a degraded entry; `python app.py index rebuild` repairs it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from agents.report import Degraded, Report, SimilarIncident
from core.models import FollowUp, Investigation, Status
from core.redaction import redact_text
from core.settings import Settings, get_settings
from integrations.history.embeddings import Embedder, EmbeddingError, choose_embedder
from integrations.history.qdrant_index import Entry, Hit, IncidentIndex, IndexUnavailable

log = structlog.get_logger(__name__)

MAX_SIGNATURES = 3
MAX_QUESTIONS = 3
_INDEXES: dict[tuple[Any, ...], IncidentIndex] = {}


def get_index(settings: Settings | None = None) -> IncidentIndex:
    """This process's index for the configured store and embedder (one client per configuration)."""
    settings = settings or get_settings()
    key = (settings.qdrant_url, str(settings.data_dir), settings.embeddings, settings.embeddings_model, settings.embeddings_dim)
    index = _INDEXES.get(key)
    if index is None:
        index = _INDEXES[key] = IncidentIndex(
            _embedder(settings),
            path=settings.data_dir / "qdrant",
            url=settings.qdrant_url,
            api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        )
    return index


def warm_embedder(settings: Settings) -> None:
    """Load a local embedding model now, if that is the configured one; a failure is left for the first search to report."""
    embedder = get_index(settings).embedder
    warm = getattr(embedder, "warm", None)
    if warm is None:
        return
    try:
        warm()
    except EmbeddingError as exc:
        # The first search reports it as a degraded entry; the worker runs on.
        log.warning("embedding_model_not_loaded", reason=str(exc)[:200])


def _embedder(settings: Settings) -> Embedder:
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    return choose_embedder(
        settings.embeddings,
        base_url=settings.openai_base_url,
        model=settings.embeddings_model,
        api_key=api_key,
        dim=settings.embeddings_dim,
        timeout_s=settings.llm_timeout_s,
    )


def report_text(
    report: dict[str, Any], *, title: str, service: str, questions: Sequence[FollowUp] = (), resolution: str | None = None
) -> str:
    """The text compared between incidents, redacted: what broke and how, in the words a responder would search."""
    root = report.get("root_cause") or {}
    category = str(root.get("category", "unknown")).replace("_", " ")
    lines = [
        title,
        f"service {service}; category {category}; component {root.get('component') or 'unknown'}",
        f"root cause: {root.get('summary', '')}",
        *(f"signature: {s.get('template', '')[:300]}" for s in (report.get("signatures") or [])[:MAX_SIGNATURES]),
    ]
    if culprit := culprit_of(report):
        lines.append(f"culprit: {culprit}")
    for follow_up in list(questions)[:MAX_QUESTIONS]:
        lines.append(f"asked: {follow_up.question[:300]} answered: {(follow_up.answer or '')[:300]}")
    if resolution:
        lines.append(f"resolved: {resolution[:500]}")
    return redact_text("\n".join(line for line in lines if line.strip()))


def culprit_of(report: dict[str, Any]) -> str | None:
    """The blamed commit in a few words (`abc1234 Apply discounts`), when a suspect scores as blamed."""
    suspects = [s for s in report.get("suspect_commits") or [] if float(s.get("score", 0)) >= 0.5]
    if not suspects:
        return None
    top = suspects[0]
    title = str(top.get("message") or "").splitlines()[0] if top.get("message") else ""
    return f"{str(top.get('sha', ''))[:7]} {title}".strip()


def entry_for(row: Investigation, questions: Sequence[FollowUp] = ()) -> Entry | None:
    """The index entry of a finished investigation (None while it has no report)."""
    if row.report is None or not Status(row.status).finished:
        return None
    text = report_text(row.report, title=row.title, service=row.service, questions=questions, resolution=row.resolution)
    root = row.report.get("root_cause") or {}
    payload = {
        "service": row.service,
        "category": root.get("category", "unknown"),
        "component": root.get("component"),
        "title": redact_text(row.title)[:300],
        "summary": redact_text(str(root.get("summary", "")))[:600],
        "culprit": culprit_of(row.report),
        "resolution": redact_text(row.resolution)[:600] if row.resolution else None,
        "created_at": row.created_at.isoformat(),
        "created_ts": row.created_at.timestamp(),
        "doc_hash": hashlib.sha256(text.encode()).hexdigest()[:16],
    }
    return Entry(row.id, text, payload)


def index_investigation(row: Investigation, questions: Sequence[FollowUp] = ()) -> bool:
    """Index (or re-index) one investigation; False when the index is unavailable (logged, never raised)."""
    entry = entry_for(row, questions)
    if entry is None:
        return False
    try:
        get_index().upsert([entry])
    except IndexUnavailable as exc:
        log.warning("incident_index_unavailable", reason=str(exc))
        return False
    return True


@dataclass(frozen=True, slots=True)
class Similar:
    found: list[SimilarIncident]
    degraded: Degraded | None = None


def similar_to(report: Report, *, title: str, service: str, investigation_id: str | None, settings: Settings | None = None) -> Similar:
    """Up to `similar_incidents_max` past incidents above the embedder's threshold, best first."""
    settings = settings or get_settings()
    if settings.similar_incidents_max <= 0:
        return Similar([])
    text = report_text(report.to_json_dict(), title=title, service=service)
    index = get_index(settings)
    try:
        hits = index.search(text, limit=settings.similar_incidents_max, exclude=investigation_id, threshold=index.embedder.threshold)
    except IndexUnavailable as exc:
        return Similar([], Degraded(component="similar_incidents", reason=str(exc)))
    return Similar([_shown(hit, settings, index.embedder.name) for hit in hits])


def _shown(hit: Hit, settings: Settings, embedder: str) -> SimilarIncident:
    payload = hit.payload
    return SimilarIncident(
        id=hit.investigation_id,
        title=str(payload.get("title", "")),
        score=round(hit.score, 3),
        root_cause=str(payload.get("summary", "")),
        date=payload.get("created_at"),
        service=payload.get("service"),
        category=payload.get("category"),
        culprit=payload.get("culprit"),
        resolution=payload.get("resolution"),
        url=f"{settings.public_url.rstrip('/')}/investigations/{hit.investigation_id}",
        embedder=embedder,
    )


def search(
    text: str, *, service: str | None = None, category: str | None = None, since: datetime | None = None, limit: int = 20, offset: int = 0
) -> list[SimilarIncident]:
    """Past incidents closest to `text`, with filters; raises IndexUnavailable for the caller to report."""
    settings = get_settings()
    index = get_index(settings)
    hits = index.search(redact_text(text), limit=limit, offset=offset, service=service, category=category, since=since)
    return [_shown(hit, settings, index.embedder.name) for hit in hits]


@dataclass
class RebuildCounts:
    indexed: int = 0
    unchanged: int = 0
    skipped: int = 0


def rebuild(
    rows: Sequence[Investigation],
    questions_of: Callable[[str], Sequence[FollowUp]],
    *,
    repair: bool = False,
    advance: Callable[[int], None] | None = None,
    batch: int = 32,
) -> RebuildCounts:
    """Index every finished investigation whose text changed since it was indexed (all of them after `repair`).

    Idempotent and resumable: what is indexed with the same text is skipped, so a rebuild
    cut short continues where it stopped. A new model has its own collection, filled here
    while searches keep using what exists.
    """
    index = get_index()
    if repair:
        try:
            index.drop()
        except IndexUnavailable:
            _remove_local_folder(index)
    counts = RebuildCounts()
    with index.held():
        known = {} if repair else index.indexed()
        pending: list[Entry] = []
        for row in rows:
            entry = entry_for(row, questions_of(row.id))
            if entry is None:
                counts.skipped += 1
            elif known.get(row.id) == entry.payload["doc_hash"]:
                counts.unchanged += 1
            else:
                pending.append(entry)
            if len(pending) >= batch:
                index.upsert(pending)
                counts.indexed += len(pending)
                pending = []
            if advance is not None:
                advance(1)
        index.upsert(pending)
        counts.indexed += len(pending)
    return counts


def _remove_local_folder(index: IncidentIndex) -> None:
    """A local index that cannot even be opened is rebuilt from scratch: the reports in the database are the truth."""
    import shutil

    if index.url is None and index.path.exists():
        shutil.rmtree(index.path)


def record_resolution(investigation_id: str, resolution: str, *, by: str | None, inline: bool = True) -> Investigation:
    """Store how the incident ended and re-index it through the worker.

    When the queue is down it is indexed here if `inline` (the web and the CLI can wait for
    it; Slack's listener must not); otherwise the next `index rebuild` picks it up.
    """
    from core.models import utcnow
    from core.queue import INDEX_INVESTIGATION, QueueUnavailable, enqueue
    from core.runtime import get_redis, get_store

    store = get_store()
    row = store.update(investigation_id, resolution=resolution.strip()[:4000], resolved_at=utcnow(), resolved_by=(by or "")[:64] or None)
    try:
        enqueue(get_redis(), INDEX_INVESTIGATION, investigation_id, retries=2, timeout=300, description=f"index {investigation_id}")
    except QueueUnavailable:
        if inline:
            index_investigation(row, store.follow_ups(investigation_id))
        else:
            log.warning("resolution_not_indexed_queue_down", investigation_id=investigation_id)
    return row
