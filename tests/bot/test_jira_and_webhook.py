"""The Jira job against the Jira stand-in, and the PagerDuty v3 webhook endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from bot_harness import PD_WEBHOOK_SECRET, WebServer
from standin_jira import JiraStandin
from standin_slack import SlackStandin

from agents.flows import window_for
from agents.jira_ticket import create_ticket
from core.alert import Alert
from core.models import Investigation
from core.progress import subscribe, unsubscribe
from core.runtime import get_store
from integrations.catalog import get_catalog


def _investigation() -> Investigation:
    window = window_for(get_catalog())
    return get_store().create_investigation(
        Investigation(
            source="pagerduty_post",
            service="notifications-worker",
            title="job failure ratio high",
            alert=Alert(title="job failure ratio high", service="notifications-worker", urgency="low").model_dump(mode="json"),
            window_start=window.start,
            window_end=window.end,
            at=window.at,
            pagerduty_incident_id="PXYZ123",
            report={"root_cause": {"category": "config_change", "summary": "timeout set to 25ms", "confidence": 0.7}},
        )
    )


def test_retried_job_finds_the_ticket_its_first_attempt_filed(bot_env: Any, jira: JiraStandin) -> None:
    row = _investigation()
    get_store().claim_jira(row.id, requested_by="U1")

    first = create_ticket(row.id)
    get_store().set_jira(row.id, key=None, url=None)
    second = create_ticket(row.id)

    assert first == second == "NOTIF-1"
    assert len(jira.created()) == 1
    fields = jira.created()[0]["fields"]
    assert {"incident", "notifications-worker", "pd-PXYZ123", f"ir-{row.id}"} == set(fields["labels"])
    assert fields["priority"] == {"name": "Low"}


def test_permanent_jira_failure_releases_the_claim_and_tells_the_thread(bot_env: Any, jira: JiraStandin) -> None:
    row = _investigation()
    get_store().claim_jira(row.id, requested_by="U1")
    jira.fail_creates(400, message="Field 'components' is required")
    events: list[Any] = []

    def listener(_investigation_id: str, event: Any) -> None:
        events.append(event)

    subscribe(listener)
    try:
        assert create_ticket(row.id) is None
    finally:
        unsubscribe(listener)

    assert get_store().get_jira(row.id) is None
    assert [e.stage for e in events] == ["jira"] and "components" in events[0].data["error"]
    assert "Press Create Jira to try again" in events[0].message


def test_priority_rejected_by_the_project_is_dropped_not_fatal(bot_env: Any, jira: JiraStandin) -> None:
    row = _investigation()
    jira.fail_creates(400, message="priority: Field 'priority' cannot be set. It is not on the appropriate screen")

    assert create_ticket(row.id) == "NOTIF-1"
    assert "priority" not in jira.created()[0]["fields"]


def _pd_event(event_type: str, *, event_id: str, incident_id: str = "Q1WEBHOOK1", service_id: str = "PNW0RK1") -> bytes:
    return json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": "2025-05-29T21:39:50.000Z",
                "agent": None,
                "client": None,
                "data": {
                    "id": incident_id,
                    "type": "incident",
                    "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                    "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
                    "number": 4901,
                    "status": event_type.split(".")[-1],
                    "incident_key": "abc",
                    "created_at": "2025-05-29T21:39:42Z",
                    "title": "notifications-worker job failure ratio high",
                    "service": {"id": service_id, "summary": "Notifications Worker", "type": "service_reference"},
                    "urgency": "high",
                    "priority": None,
                },
            }
        }
    ).encode()


def _signed(body: bytes, *secrets: str) -> dict[str, str]:
    signatures = ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)
    return {"Content-Type": "application/json", "X-PagerDuty-Signature": signatures}


def test_pagerduty_webhook_starts_one_investigation_and_notes_the_resolve(web: WebServer, slack: SlackStandin) -> None:
    triggered = _pd_event("incident.triggered", event_id="01PDEVT1")

    first = web.http.post("/webhooks/pagerduty", content=triggered, headers=_signed(triggered, "rotated-away", PD_WEBHOOK_SECRET))
    duplicate = web.http.post("/webhooks/pagerduty", content=triggered, headers=_signed(triggered, PD_WEBHOOK_SECRET))
    again = _pd_event("incident.reopened", event_id="01PDEVT2")
    reopened = web.http.post("/webhooks/pagerduty", content=again, headers=_signed(again, PD_WEBHOOK_SECRET))
    resolved_body = _pd_event("incident.resolved", event_id="01PDEVT3")
    resolved = web.http.post("/webhooks/pagerduty", content=resolved_body, headers=_signed(resolved_body, PD_WEBHOOK_SECRET))

    assert first.status_code == 201 and first.json()["status"] == "started"
    assert duplicate.json() == {"status": "duplicate"}
    assert reopened.status_code == 200 and reopened.json()["investigation_id"] == first.json()["investigation_id"]
    assert resolved.json() == {"status": "noted", "investigation_id": first.json()["investigation_id"]}
    row = get_store().require(first.json()["investigation_id"])
    assert (row.source, row.service, row.pagerduty_incident_id) == ("pagerduty_webhook", "notifications-worker", "Q1WEBHOOK1")


def test_pagerduty_webhook_with_a_bad_signature_is_refused(web: WebServer) -> None:
    body = _pd_event("incident.triggered", event_id="01PDBAD")

    wrong = web.http.post("/webhooks/pagerduty", content=body, headers=_signed(body, "not-our-secret"))
    missing = web.http.post("/webhooks/pagerduty", content=body, headers={"Content-Type": "application/json"})

    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert get_store().list_investigations()[0] == []


def test_pagerduty_webhook_for_an_unmapped_service_starts_nothing(web: WebServer) -> None:
    body = _pd_event("incident.triggered", event_id="01PDUNMAP", service_id="PNOPE00")
    body = body.replace(b"Notifications Worker", b"Billing Cron")

    response = web.http.post("/webhooks/pagerduty", content=body, headers=_signed(body, PD_WEBHOOK_SECRET))

    assert response.status_code == 202 and "not mapped" in response.json()["reason"]
    assert get_store().list_investigations()[0] == []
