"""Which investigation a tool's alert started, kept in the delivery ledger (inbound_deliveries).

An alert fires, resolves, and may fire again days later. Each firing is a generation:
`alert-post:<key>#<n>` is claimed once per generation (the unique key makes duplicate
posts, edits and concurrent deliveries start nothing), `alert-resolved:<key>#<n>` once
when that firing resolves, after which the next firing starts generation n+1.
PagerDuty incidents do not need this: their id is unique on the investigation itself.
"""

from __future__ import annotations

from sqlmodel import col, func, select

from bot.alerts.base import AlertPost
from core.models import InboundDelivery
from core.runtime import get_store

STARTED = "alert_post"
RESOLVED = "alert_resolved"


def _generation(post: AlertPost) -> int:
    with get_store().session() as s:
        stmt = select(func.count()).select_from(InboundDelivery).where(col(InboundDelivery.key).startswith(f"alert-resolved:{post.key}#"))
        return int(s.exec(stmt).one())


def claim_start(post: AlertPost) -> str | None:
    """The ledger key for this firing if this delivery is the first to claim it, else None."""
    key = f"alert-post:{post.key}#{_generation(post)}"
    return key if get_store().claim_delivery(key, STARTED) else None


def link(key: str, investigation_id: str) -> None:
    store = get_store()
    with store.session() as s:
        row = s.get(InboundDelivery, key)
        if row is not None:
            row.investigation_id = investigation_id
            s.add(row)
            s.commit()


def current_investigation(post: AlertPost) -> tuple[str, str | None] | None:
    """(ledger key, investigation id) of the current firing, or None when it started nothing yet."""
    key = f"alert-post:{post.key}#{_generation(post)}"
    with get_store().session() as s:
        row = s.get(InboundDelivery, key)
        return (key, row.investigation_id) if row is not None else None


def claim_resolved(started_key: str) -> bool:
    """True once per firing: the first resolved post (or edit) of it."""
    return get_store().claim_delivery(started_key.replace("alert-post:", "alert-resolved:", 1), RESOLVED)
