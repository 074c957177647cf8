"""The store against both databases we support: a SQLite file and the real PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from core.models import IdempotencyKey, InboundDelivery, Investigation, Source, Status
from core.store import IdempotencyClaim, IdempotencyKeyReused, InvestigationFilter, Store

T0 = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)


def make(service: str = "checkout", *, pd: str | None = None, created: datetime | None = None) -> Investigation:
    row = Investigation(
        source=Source.api.value,
        service=service,
        title=f"{service} errors",
        window_start=T0 - timedelta(hours=6),
        window_end=T0,
        at=T0,
        pagerduty_incident_id=pd,
    )
    if created is not None:
        row.created_at = created
    return row


def test_investigation_round_trips_with_aware_times(store: Store) -> None:
    row = store.create_investigation(make())
    got = store.require(row.id)
    assert got.service == "checkout" and got.status == Status.queued.value
    assert got.window_end == T0


def test_same_pagerduty_incident_returns_the_existing_investigation(store: Store) -> None:
    first = store.create_investigation(make(pd="PABC"))
    second = store.create_investigation(make(pd="PABC"))
    assert second.id == first.id
    assert store.find_by_pagerduty("PABC").id == first.id  # type: ignore[union-attr]


def test_an_idempotency_key_makes_one_investigation_and_refuses_another_request(store: Store) -> None:
    service, key = f"idem-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    claim = IdempotencyClaim(owner="ci-bot", key=key, request_hash="a" * 64)
    first = store.create_investigation(make(service), idempotency=claim)
    again = store.create_investigation(make(service), idempotency=claim)
    theirs = store.create_investigation(make(service), idempotency=IdempotencyClaim(owner="pager", key=key, request_hash="a" * 64))
    assert again.id == first.id != theirs.id
    with pytest.raises(IdempotencyKeyReused):
        store.create_investigation(make(service), idempotency=IdempotencyClaim(owner="ci-bot", key=key, request_hash="b" * 64))
    rows, _ = store.list_investigations(InvestigationFilter(service=service))
    assert len(rows) == 2, "a refused or repeated request leaves no row behind"
    assert store.claim_idempotency_key(claim, investigation_id=first.id).investigation_id == first.id


def test_concurrent_claims_of_one_jira_ticket_let_exactly_one_through(store: Store) -> None:
    row = store.create_investigation(make())
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda i: store.claim_jira(row.id, requested_by=f"U{i}")[1], range(5)))
    assert results.count(True) == 1


def test_released_jira_claim_can_be_claimed_again(store: Store) -> None:
    row = store.create_investigation(make())
    assert store.claim_jira(row.id, requested_by="U1")[1]
    store.release_jira(row.id)
    assert store.claim_jira(row.id, requested_by="U2")[1]


def test_duplicate_delivery_is_refused(store: Store) -> None:
    assert store.claim_delivery("slack:Ev123", "event")
    assert not store.claim_delivery("slack:Ev123", "event")


def test_claims_past_their_week_are_forgotten_and_can_be_made_again(store: Store) -> None:
    row = store.create_investigation(make())
    old, key = f"slack:Ev{uuid.uuid4().hex}", uuid.uuid4().hex
    with store.session() as s:
        s.add(InboundDelivery(key=old, kind="event", created_at=T0 - timedelta(days=30)))
        s.add(IdempotencyKey(owner="ci-bot", key=key, request_hash="a" * 64, investigation_id=row.id, created_at=T0 - timedelta(days=30)))
        s.commit()
    fresh = f"slack:Ev{uuid.uuid4().hex}"
    assert store.claim_delivery(fresh, "event")

    assert store.forget_claims(T0 - timedelta(days=31)) == 0
    assert store.forget_claims(T0 - timedelta(days=7)) == 2

    assert store.claim_delivery(old, "event"), "a forgotten delivery is new again"
    assert not store.claim_delivery(fresh, "event"), "a recent claim is kept"
    claim = IdempotencyClaim(owner="ci-bot", key=key, request_hash="b" * 64)
    assert store.claim_idempotency_key(claim, investigation_id=row.id).request_hash == "b" * 64


def test_duplicate_follow_up_is_recorded_once(store: Store) -> None:
    row = store.create_investigation(make())
    assert store.add_follow_up(row.id, dedupe_key="1700000000.0001", question="which commit?", asked_by="U1") is not None
    assert store.add_follow_up(row.id, dedupe_key="1700000000.0001", question="which commit?", asked_by="U1") is None
    assert len(store.follow_ups(row.id)) == 1


def test_status_changes_stamp_start_and_finish(store: Store) -> None:
    row = store.create_investigation(make())
    store.set_status(row.id, Status.gathering)
    store.save_report(row.id, {"root_cause": {"category": "bad_deploy", "confidence": 0.8}}, Status.done)
    got = store.require(row.id)
    assert got.started_at is not None and got.finished_at is not None
    assert (got.category, got.confidence) == ("bad_deploy", 0.8)


def test_progress_events_come_back_in_order_after_an_id(store: Store) -> None:
    row = store.create_investigation(make())
    first = store.add_progress(row.id, "gathering", "one")
    store.add_progress(row.id, "analysing", "two", milestone=True, data={"n": 2})
    later = store.progress(row.id, after_id=first.id or 0)
    assert [(e.message, e.milestone, e.data) for e in later] == [("two", True, {"n": 2})]


def test_cursor_pagination_visits_every_row_once(store: Store) -> None:
    service = f"paged-{uuid.uuid4().hex[:6]}"  # the PostgreSQL database is shared by the whole session
    made = {store.create_investigation(make(service, created=T0 + timedelta(seconds=i // 2))).id for i in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = store.list_investigations(InvestigationFilter(service=service), limit=3, cursor=cursor)
        seen += [r.id for r in page]
        if cursor is None:
            break
    assert set(seen) == made and len(seen) == len(made)


def test_filters_by_status_and_text(store: Store) -> None:
    tag = uuid.uuid4().hex[:6]
    a = store.create_investigation(make(f"checkout-{tag}"))
    store.create_investigation(make(f"payments-{tag}"))
    store.set_status(a.id, Status.failed, error="boom")
    rows, _ = store.list_investigations(InvestigationFilter(status="failed", service=f"checkout-{tag}"))
    assert [r.id for r in rows] == [a.id]
    rows, _ = store.list_investigations(InvestigationFilter(text=f"PAYMENTS-{tag.upper()}"))
    assert [r.service for r in rows] == [f"payments-{tag}"]


def test_bad_cursor_is_a_value_error(store: Store) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        store.list_investigations(cursor="not-a-cursor")


def test_unfinished_lists_stale_rows_only(store: Store) -> None:
    row = store.create_investigation(make())
    store.set_status(row.id, Status.gathering)
    assert row.id in [r.id for r in store.unfinished(older_than=datetime.now(UTC) + timedelta(seconds=1))]
    assert row.id not in [r.id for r in store.unfinished(older_than=datetime.now(UTC) - timedelta(hours=1))]
