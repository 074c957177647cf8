"""Data access: every read and write of our tables goes through `Store`.

Idempotency lives here, in unique keys the database enforces, so that duplicate
deliveries and concurrent clicks cannot race past it in application code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db import get_engine, migrate, session_scope
from core.models import (
    ApiKey,
    FollowUp,
    IdempotencyKey,
    InboundDelivery,
    Investigation,
    JiraLink,
    Notification,
    ProgressEvent,
    Status,
    TicketAction,
    utcnow,
)


class NotFound(LookupError):
    pass


class IdempotencyKeyReused(ValueError):
    """The client sent this Idempotency-Key before with a different request."""


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An API client's `Idempotency-Key` and the hash of the request it came with."""

    owner: str
    key: str
    request_hash: str

    def row(self, investigation_id: str) -> IdempotencyKey:
        return IdempotencyKey(owner=self.owner, key=self.key, request_hash=self.request_hash, investigation_id=investigation_id)


@dataclass(frozen=True, slots=True)
class InvestigationFilter:
    service: str | None = None
    status: str | None = None
    category: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


def encode_cursor(created_at: datetime, investigation_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), investigation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        created, inv_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), str(inv_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, *, migrate_schema: bool = True) -> Store:
        if migrate_schema:
            migrate(url)
        return cls(get_engine(url))

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # investigations ---------------------------------------------------------

    def create_investigation(self, investigation: Investigation, *, idempotency: IdempotencyClaim | None = None) -> Investigation:
        """Insert; when a PagerDuty incident id or the idempotency key is already taken, return that investigation instead.

        The key is written in the same transaction as the row, so a retry finds either both or neither, never a key
        whose request is still half done. Raises IdempotencyKeyReused when the key came with another request.
        """
        try:
            with session_scope(self.engine) as s:
                s.add(investigation)
                if idempotency is not None:
                    s.flush()
                    s.add(idempotency.row(investigation.id))
            return investigation
        except IntegrityError:
            if idempotency is not None:
                earlier = self._same_request(idempotency)
                if earlier is not None:
                    return self.require(earlier.investigation_id)
            if investigation.pagerduty_incident_id:
                existing = self.find_by_pagerduty(investigation.pagerduty_incident_id)
                if existing is not None:
                    return existing
            raise

    def get(self, investigation_id: str) -> Investigation | None:
        with self.session() as s:
            return s.get(Investigation, investigation_id)

    def require(self, investigation_id: str) -> Investigation:
        found = self.get(investigation_id)
        if found is None:
            raise NotFound(f"no investigation {investigation_id}")
        return found

    def find_by_pagerduty(self, incident_id: str) -> Investigation | None:
        with self.session() as s:
            return s.exec(select(Investigation).where(Investigation.pagerduty_incident_id == incident_id)).first()

    def find_by_thread(self, channel: str, thread_ts: str) -> Investigation | None:
        """The investigation whose Slack thread this is (newest first: a re-run shares the thread)."""
        with self.session() as s:
            stmt = (
                select(Investigation)
                .where(Investigation.slack_channel == channel, Investigation.slack_thread_ts == thread_ts)
                .order_by(col(Investigation.created_at).desc())
            )
            return s.exec(stmt).first()

    def find_recent_for_service(self, service: str, since: datetime) -> Investigation | None:
        """An unfinished or fresh investigation of the same service (for coalescing alert storms)."""
        with self.session() as s:
            stmt = (
                select(Investigation)
                .where(Investigation.service == service, Investigation.created_at >= since, col(Investigation.parent_id).is_(None))
                .order_by(col(Investigation.created_at).asc())
            )
            return s.exec(stmt).first()

    def children(self, parent_id: str) -> list[Investigation]:
        """Investigations linked to `parent_id` (its re-runs and the alerts coalesced into it), oldest first."""
        with self.session() as s:
            stmt = select(Investigation).where(Investigation.parent_id == parent_id).order_by(col(Investigation.created_at))
            return list(s.exec(stmt).all())

    def update(self, investigation_id: str, **changes: Any) -> Investigation:
        with session_scope(self.engine) as s:
            row = s.get(Investigation, investigation_id)
            if row is None:
                raise NotFound(f"no investigation {investigation_id}")
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            s.add(row)
        return row

    def set_status(self, investigation_id: str, status: Status, *, error: str | None = None) -> Investigation:
        changes: dict[str, Any] = {"status": status.value}
        now = utcnow()
        if status is Status.gathering:
            changes["started_at"] = now
        if status.finished:
            changes["finished_at"] = now
        if error is not None:
            changes["error"] = error
        return self.update(investigation_id, **changes)

    def save_report(self, investigation_id: str, report: dict[str, Any], status: Status) -> Investigation:
        root = report.get("root_cause") or {}
        return self.update(
            investigation_id,
            report=report,
            status=status.value,
            category=root.get("category"),
            confidence=root.get("confidence"),
            finished_at=utcnow(),
        )

    def list_investigations(
        self, flt: InvestigationFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Investigation], str | None]:
        """Newest first, keyset-paginated on (created_at, id); returns the next cursor or None."""
        flt = flt or InvestigationFilter()
        stmt = select(Investigation)
        if flt.service:
            stmt = stmt.where(Investigation.service == flt.service)
        if flt.status:
            stmt = stmt.where(Investigation.status == flt.status)
        if flt.category:
            stmt = stmt.where(Investigation.category == flt.category)
        if flt.source:
            stmt = stmt.where(Investigation.source == flt.source)
        if flt.since:
            stmt = stmt.where(Investigation.created_at >= flt.since)
        if flt.until:
            stmt = stmt.where(Investigation.created_at < flt.until)
        if flt.text:
            like = f"%{flt.text.lower()}%"
            stmt = stmt.where(
                or_(
                    func.lower(Investigation.title).like(like),
                    func.lower(Investigation.service).like(like),
                    col(Investigation.id) == flt.text,
                )
            )
        if cursor:
            created, inv_id = decode_cursor(cursor)
            stmt = stmt.where(
                or_(col(Investigation.created_at) < created, (col(Investigation.created_at) == created) & (col(Investigation.id) < inv_id))
            )
        stmt = stmt.order_by(col(Investigation.created_at).desc(), col(Investigation.id).desc()).limit(limit + 1)
        with self.session() as s:
            rows = list(s.exec(stmt).all())
        next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
        return rows[:limit], next_cursor

    def investigation_counts(self) -> list[tuple[str, str | None, str, int]]:
        """(status, category, source, count) over every investigation, for the /metrics gauge."""
        stmt = select(Investigation.status, Investigation.category, Investigation.source, func.count()).group_by(
            col(Investigation.status), col(Investigation.category), col(Investigation.source)
        )
        with self.session() as s:
            return [(status, category, source, int(n)) for status, category, source, n in s.exec(stmt).all()]

    def finished_investigations(self) -> list[Investigation]:
        """Every investigation with a report, oldest first (what the incident history indexes)."""
        with self.session() as s:
            rows = s.exec(select(Investigation).where(col(Investigation.report).is_not(None)).order_by(col(Investigation.created_at)))
            return list(rows)

    def unfinished(self, *, older_than: datetime) -> list[Investigation]:
        """Investigations not finished whose last update is older than `older_than` (for the reaper)."""
        active = [s.value for s in Status if not s.finished]
        with self.session() as s:
            stmt = select(Investigation).where(col(Investigation.status).in_(active), Investigation.updated_at < older_than)
            return list(s.exec(stmt).all())

    # idempotency keys -------------------------------------------------------

    def claim_idempotency_key(self, claim: IdempotencyClaim, *, investigation_id: str) -> IdempotencyKey:
        """Record the key with its request; the earlier record when the same request comes again.

        Raises IdempotencyKeyReused when the key came with another request.
        """
        row = claim.row(investigation_id)
        try:
            with session_scope(self.engine) as s:
                s.add(row)
            return row
        except IntegrityError:
            earlier = self._same_request(claim)
            if earlier is None:
                raise
            return earlier

    def _same_request(self, claim: IdempotencyClaim) -> IdempotencyKey | None:
        with self.session() as s:
            earlier = s.get(IdempotencyKey, (claim.owner, claim.key))
        if earlier is not None and earlier.request_hash != claim.request_hash:
            raise IdempotencyKeyReused(claim.key)
        return earlier

    def forget_claims(self, before: datetime) -> int:
        """Delete delivery and idempotency claims made before `before`; how many went.

        Both exist to stop retries, and every sender's retries end within hours; kept for ever they only grow.
        """
        with session_scope(self.engine) as s:
            gone = 0
            for table in (InboundDelivery, IdempotencyKey):
                result = cast(CursorResult[Any], s.execute(delete(table).where(col(table.created_at) < before)))
                gone += result.rowcount
        return gone

    # progress ---------------------------------------------------------------

    def add_progress(
        self, investigation_id: str, stage: str, message: str, *, milestone: bool = False, data: dict[str, Any] | None = None
    ) -> ProgressEvent:
        event = ProgressEvent(investigation_id=investigation_id, stage=stage, message=message, milestone=milestone, data=data or {})
        with session_scope(self.engine) as s:
            s.add(event)
        return event

    def progress(self, investigation_id: str, *, after_id: int = 0) -> list[ProgressEvent]:
        with self.session() as s:
            stmt = (
                select(ProgressEvent)
                .where(ProgressEvent.investigation_id == investigation_id, col(ProgressEvent.id) > after_id)
                .order_by(col(ProgressEvent.id))
            )
            return list(s.exec(stmt).all())

    # deliveries -------------------------------------------------------------

    def claim_delivery(self, key: str, kind: str, investigation_id: str | None = None) -> bool:
        """True the first time a delivery key is seen, False for every duplicate."""
        try:
            with session_scope(self.engine) as s:
                s.add(InboundDelivery(key=key[:200], kind=kind, investigation_id=investigation_id))
            return True
        except IntegrityError:
            return False

    # follow-ups -------------------------------------------------------------

    def add_follow_up(self, investigation_id: str, *, dedupe_key: str, question: str, asked_by: str | None) -> FollowUp | None:
        """Record a question; None when the same message was already recorded."""
        row = FollowUp(investigation_id=investigation_id, dedupe_key=dedupe_key, question=question, asked_by=asked_by)
        try:
            with session_scope(self.engine) as s:
                s.add(row)
            return row
        except IntegrityError:
            return None

    def delete_follow_up(self, follow_up_id: int) -> None:
        with session_scope(self.engine) as s:
            row = s.get(FollowUp, follow_up_id)
            if row is not None:
                s.delete(row)

    def get_follow_up(self, follow_up_id: int) -> FollowUp | None:
        with self.session() as s:
            return s.get(FollowUp, follow_up_id)

    def answer_follow_up(self, follow_up_id: int, *, answer: str, answered_by: str) -> FollowUp:
        with session_scope(self.engine) as s:
            row = s.get(FollowUp, follow_up_id)
            if row is None:
                raise NotFound(f"no follow-up {follow_up_id}")
            row.answer, row.answered_by, row.status, row.answered_at = answer, answered_by, "answered", utcnow()
            s.add(row)
        return row

    def follow_ups(self, investigation_id: str) -> list[FollowUp]:
        with self.session() as s:
            stmt = select(FollowUp).where(FollowUp.investigation_id == investigation_id).order_by(col(FollowUp.id))
            return list(s.exec(stmt).all())

    # jira -------------------------------------------------------------------

    def claim_jira(self, investigation_id: str, *, requested_by: str | None) -> tuple[JiraLink, bool]:
        """(link, True) for the one caller that may create the ticket; (existing link, False) for everyone else."""
        try:
            with session_scope(self.engine) as s:
                link = JiraLink(investigation_id=investigation_id, requested_by=requested_by)
                s.add(link)
            return link, True
        except IntegrityError:
            existing = self.get_jira(investigation_id)
            assert existing is not None
            return existing, False

    # notifications ----------------------------------------------------------

    def claim_notification(self, investigation_id: str, target: str, *, label: str) -> Notification:
        """The row for (investigation, target), created pending on the first call; the same row on every later one."""
        try:
            with session_scope(self.engine) as s:
                row = Notification(investigation_id=investigation_id, target=target, label=label[:200])
                s.add(row)
            return row
        except IntegrityError:
            found = self.get_notification(investigation_id, target)
            assert found is not None
            return found

    def get_notification(self, investigation_id: str, target: str) -> Notification | None:
        with self.session() as s:
            return s.get(Notification, (investigation_id, target))

    def notifications(self, investigation_id: str) -> list[Notification]:
        with self.session() as s:
            rows = s.exec(select(Notification).where(Notification.investigation_id == investigation_id).order_by(col(Notification.label)))
            return list(rows)

    def set_notification(self, investigation_id: str, target: str, **changes: Any) -> Notification:
        with session_scope(self.engine) as s:
            row = s.get(Notification, (investigation_id, target))
            if row is None:
                raise NotFound(f"no notification {target} for {investigation_id}")
            for key, value in changes.items():
                setattr(row, key, value)
            s.add(row)
        return row

    def get_jira(self, investigation_id: str) -> JiraLink | None:
        with self.session() as s:
            return s.get(JiraLink, investigation_id)

    def set_jira(self, investigation_id: str, **changes: Any) -> JiraLink:
        with session_scope(self.engine) as s:
            link = s.get(JiraLink, investigation_id)
            if link is None:
                raise NotFound(f"no jira link for {investigation_id}")
            for key, value in changes.items():
                setattr(link, key, value)
            link.updated_at = utcnow()
            s.add(link)
        return link

    def release_jira(self, investigation_id: str) -> None:
        """Forget a failed claim so that a later click can try again."""
        with session_scope(self.engine) as s:
            link = s.get(JiraLink, investigation_id)
            if link is not None and link.key is None:
                s.delete(link)

    # incident tools ---------------------------------------------------------

    def claim_ticket_action(
        self, investigation_id: str, tool: str, action: str, *, target: str | None = None, requested_by: str | None = None
    ) -> tuple[TicketAction, bool]:
        """(row, True) for the one caller that may write to the tool; (existing row, False) for everyone else."""
        try:
            with session_scope(self.engine) as s:
                row = TicketAction(investigation_id=investigation_id, tool=tool, action=action, target=target, requested_by=requested_by)
                s.add(row)
            return row, True
        except IntegrityError:
            existing = self.get_ticket_action(investigation_id, tool, action)
            assert existing is not None
            return existing, False

    def get_ticket_action(self, investigation_id: str, tool: str, action: str) -> TicketAction | None:
        with self.session() as s:
            return s.get(TicketAction, (investigation_id, tool, action))

    def ticket_actions(self, investigation_id: str) -> list[TicketAction]:
        with self.session() as s:
            stmt = select(TicketAction).where(TicketAction.investigation_id == investigation_id).order_by(col(TicketAction.tool))
            return list(s.exec(stmt).all())

    def set_ticket_action(self, investigation_id: str, tool: str, action: str, **changes: Any) -> TicketAction:
        with session_scope(self.engine) as s:
            row = s.get(TicketAction, (investigation_id, tool, action))
            if row is None:
                raise NotFound(f"no {tool} {action} for {investigation_id}")
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            s.add(row)
        return row

    def release_ticket_action(self, investigation_id: str, tool: str, action: str) -> None:
        """Forget a claim that wrote nothing, so that a later request can try again."""
        with session_scope(self.engine) as s:
            row = s.get(TicketAction, (investigation_id, tool, action))
            if row is not None and row.status != "done":
                s.delete(row)

    # api keys ---------------------------------------------------------------

    def add_api_key(self, key: ApiKey) -> ApiKey:
        with session_scope(self.engine) as s:
            s.add(key)
        return key

    def api_keys_by_prefix(self, prefix: str) -> Sequence[ApiKey]:
        with self.session() as s:
            return list(s.exec(select(ApiKey).where(ApiKey.prefix == prefix)).all())

    def get_api_key(self, key_id: int) -> ApiKey | None:
        with self.session() as s:
            return s.get(ApiKey, key_id)

    def touch_api_key(self, key_id: int, at: datetime) -> None:
        """Record when a key was last used (callers throttle this; it is a write per call)."""
        with session_scope(self.engine) as s:
            key = s.get(ApiKey, key_id)
            if key is not None:
                key.last_used_at = at
                s.add(key)

    def list_api_keys(self) -> list[ApiKey]:
        with self.session() as s:
            return list(s.exec(select(ApiKey).order_by(col(ApiKey.id))).all())

    def revoke_api_key(self, key_id: int) -> ApiKey:
        with session_scope(self.engine) as s:
            key = s.get(ApiKey, key_id)
            if key is None:
                raise NotFound(f"no api key {key_id}")
            key.revoked_at = utcnow()
            s.add(key)
        return key
