"""PagerDuty and ServiceNow around an investigation, end to end: the real Bolt app and webhook router on loopback,
a real RQ worker, the real `pagerduty` client over https and httpx, pointed at stand-ins."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bot_harness import PD_WEBHOOK_SECRET, WebServer, Worker, fixture
from smtp_inbox import Inbox, start_smtp
from standin_pagerduty import PagerDutyStandin
from standin_receiver import Receiver
from standin_servicenow import ServiceNowStandin
from standin_slack import SlackStandin
from tls import loopback_cert

from agents import jobs, notify, ticketing
from core.alert import Alert
from core.models import Investigation
from core.runtime import get_store

FROM = "oncall@example.com"
OPENED = "2025-05-29T21:39:42Z"


@pytest.fixture
def pd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyStandin]:
    cert = loopback_cert(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_file))
    standin = PagerDutyStandin(cert=cert, users=(FROM,)).start()
    standin.add_incident(
        "Q1WEBHOOK1",
        number=4901,
        title="notifications-worker job failure ratio high",
        service=("PNW0RK1", "Notifications Worker"),
        assignees=("Ada Lovelace",),
        created_at=OPENED,
    )
    standin.add_alert(
        "Q1WEBHOOK1",
        details={
            "firing": "job_failure_ratio > 0.2",
            "query": 'sum(rate(jobs_failed_total{service="notifications-worker"}[5m]))',
            "labels": {"alertname": "JobFailureRatioHigh", "pod": "notifications-worker-5d8c7b9f6-x2x7q", "namespace": "prod"},
        },
    )
    standin.add_log_entry("Q1WEBHOOK1", "trigger", "Triggered through the API", OPENED)
    standin.add_log_entry("Q1WEBHOOK1", "acknowledge", "Acknowledged by Ada Lovelace", "2025-05-29T21:42:10Z")
    standin.add_log_entry("Q1WEBHOOK1", "escalate", "Escalated to Grace Hopper", "2025-05-29T21:55:00Z")
    yield standin
    standin.stop()


@pytest.fixture
def sn() -> Iterator[ServiceNowStandin]:
    standin = ServiceNowStandin().start()
    standin.add_incident(
        "INC0012345",
        short_description="Notification e-mails not sent",
        ci="notifications-worker",
        group="Messaging SRE",
        opened_at="2025-05-29 21:39:42",
    )
    yield standin
    standin.stop()


@pytest.fixture
def app_env(app_env: dict[str, str], pd: PagerDutyStandin, sn: ServiceNowStandin, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The bot's environment plus both incident tools (set before the bot's settings are read)."""
    extra = {
        "PAGERDUTY_API_TOKEN": pd.token,
        "PAGERDUTY_FROM_EMAIL": FROM,
        "PAGERDUTY_API_URL": pd.url,
        "INCIDENT_READ_DEADLINE_S": "10",
        "SERVICENOW_URL": sn.url,
        "SERVICENOW_USER": sn.user,
        "SERVICENOW_PASSWORD": sn.password,
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return {**app_env, **extra}


def _webhook(event_type: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "event": {
                "id": event_id,
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": OPENED,
                "data": {
                    "id": "Q1WEBHOOK1",
                    "type": "incident",
                    "html_url": "https://acme.pagerduty.com/incidents/Q1WEBHOOK1",
                    "number": 4901,
                    "status": "triggered",
                    "created_at": OPENED,
                    "title": "notifications-worker job failure ratio high",
                    "service": {"id": "PNW0RK1", "summary": "Notifications Worker", "type": "service_reference"},
                    "urgency": "high",
                },
            }
        }
    ).encode()
    signature = "v1=" + hmac.new(PD_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}


def _finished(investigation_id: str) -> Investigation | None:
    row = get_store().get(investigation_id)
    return row if row is not None and row.report is not None else None


def _report_posts(slack: SlackStandin) -> list[Any]:
    return [c for c in slack.of("chat.postMessage") if any(b.get("type") == "header" for b in c.params.get("blocks") or [])]


def test_webhook_investigation_uses_the_incidents_details_and_notes_pagerduty_once(
    web: WebServer, worker: Worker, pd: PagerDutyStandin
) -> None:
    body, headers = _webhook("incident.triggered", "01PDTOOLS1")
    started = web.http.post("/webhooks/pagerduty", content=body, headers=headers)
    assert started.status_code == 201
    investigation_id = started.json()["investigation_id"]

    row = worker.until(lambda: _finished(investigation_id), timeout=60)
    notes = worker.until(lambda: pd.added_notes("Q1WEBHOOK1"), timeout=30)

    details = row.alert["details"]
    # The alert's custom details became the investigation's: words for the evidence, the labels of the failing pod.
    assert details["labels.pod"] == "notifications-worker-5d8c7b9f6-x2x7q"
    assert details["query"].startswith("sum(rate(jobs_failed_total")
    # The rule's query is what a Prometheus source of the service reads besides its own queries.
    assert Alert.model_validate(row.alert).expressions == [details["query"]]
    assert details["incident_tools"]["pagerduty"]["assignees"] == ["Ada Lovelace"]
    assert details["incident_tools"]["pagerduty"]["priority"] == "P1"
    timeline = [t["event"] for t in row.report["timeline"]]
    assert "PagerDuty: Acknowledged by Ada Lovelace" in timeline and "PagerDuty: Escalated to Grace Hopper" in timeline
    assert len(notes) == 1
    assert f"http://ir.test/investigations/{investigation_id}" in notes[0]["content"]
    assert f"incident-responder:{investigation_id}" in notes[0]["content"]
    assert pd.calls("POST", "/notes")[0].headers["from"] == FROM
    action = get_store().get_ticket_action(investigation_id, "pagerduty", "note")
    assert action is not None and (action.status, action.target) == ("done", "Q1WEBHOOK1")

    # The investigation job runs again (a redelivery): no second note.
    jobs.investigate(investigation_id)
    worker.drain()
    # A note job killed after PagerDuty took the note but before it was marked: the retry finds the note.
    get_store().set_ticket_action(investigation_id, "pagerduty", "note", status="pending")
    assert ticketing.add_note(investigation_id, "pagerduty") == "found"
    assert len(pd.added_notes("Q1WEBHOOK1")) == 1
    assert len(pd.calls("POST", "/notes")) == 1


def test_rate_limited_pagerduty_still_gets_its_note_within_the_retries(web: WebServer, worker: Worker, pd: PagerDutyStandin) -> None:
    # The alerts and the notes answer 429 twice each before PagerDuty lets them through.
    pd.rate_limit(2, retry_after=0.1, reset_s=None, path_suffix="/alerts")
    pd.rate_limit(2, retry_after=0.1, reset_s=None, path_suffix="/notes")
    body, headers = _webhook("incident.triggered", "01PDTOOLS2")
    investigation_id = web.http.post("/webhooks/pagerduty", content=body, headers=headers).json()["investigation_id"]

    row = worker.until(lambda: _finished(investigation_id), timeout=60)
    notes = worker.until(lambda: pd.added_notes("Q1WEBHOOK1"), timeout=30)

    assert row.alert["details"]["labels.pod"] == "notifications-worker-5d8c7b9f6-x2x7q"
    assert len(notes) == 1
    assert len(pd.calls("GET", "/alerts")) == 3
    # Two 429s, then the marker check and the note itself.
    assert len(pd.calls("GET", "/notes")) + len(pd.calls("POST", "/notes")) == 4


def test_investigate_a_pagerduty_link_resolves_its_service_and_time(
    web: WebServer, slack: SlackStandin, worker: Worker, pd: PagerDutyStandin
) -> None:
    command = fixture("slash_command.json") | {"text": "https://acme.pagerduty.com/incidents/Q1WEBHOOK1 --since 3h"}

    response = web.command(command)

    assert response.status_code == 200 and "Reading incident" in response.text
    worker.until(lambda: _report_posts(slack), timeout=60)
    rows, _ = get_store().list_investigations()
    assert len(rows) == 1
    row = rows[0]
    assert (row.service, row.source, row.title) == ("notifications-worker", "slack_command", "notifications-worker job failure ratio high")
    assert row.at.isoformat().startswith("2025-05-29T21:39:42")
    assert row.alert["details"]["labels.alertname"] == "JobFailureRatioHigh"
    # Read once, after the ack: the job did not read the incident again.
    assert len(pd.calls("GET", "/incidents/Q1WEBHOOK1/alerts")) == 1
    notes = worker.until(lambda: pd.added_notes("Q1WEBHOOK1"), timeout=30)
    assert len(notes) == 1


def test_investigate_an_unknown_pagerduty_number_says_so(web: WebServer, slack: SlackStandin, pd: PagerDutyStandin) -> None:
    response = web.command(fixture("slash_command.json") | {"text": "#9999"})

    assert response.status_code == 200
    told = slack.wait_for(lambda: slack.of("chat.postEphemeral"))
    assert "could not read the incident #9999" in told[0].params["text"] and "404" in told[0].params["text"]
    assert get_store().list_investigations()[0] == []


def test_servicenow_incident_is_read_noted_once_and_filed_once_on_request(
    web: WebServer, slack: SlackStandin, worker: Worker, sn: ServiceNowStandin
) -> None:
    response = web.command(fixture("slash_command.json") | {"text": "INC0012345 --since 3h"})
    assert response.status_code == 200
    reports = worker.until(lambda: _report_posts(slack), timeout=60)
    row = get_store().list_investigations()[0][0]
    assert row.service == "notifications-worker"
    assert row.alert["details"]["assignment_group"] == "Messaging SRE"
    incident = sn.tables["incident"][0]
    notes = worker.until(lambda: sn.work_notes(incident["sys_id"]), timeout=30)
    assert len(notes) == 1 and f"http://ir.test/investigations/{row.id}" in notes[0]

    buttons = [e["action_id"] for b in reports[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "ir_create_ticket_servicenow" in buttons
    for n in range(2):
        click = fixture("block_actions_create_jira.json")
        click["actions"][0] |= {
            "action_id": "ir_create_ticket_servicenow",
            "value": json.dumps({"investigation_id": row.id}),
            "action_ts": f"1748555070.00000{n}",
        }
        assert web.action(click).status_code == 200
        slack.wait_for(lambda n=n: len(slack.of("chat.postEphemeral")) > n)
    created = worker.until(lambda: [r for r in sn.tables["incident"] if r.get("correlation_id") == f"incident-responder:{row.id}"])
    worker.drain()

    assert len(created) == 1 and len(sn.calls("POST")) == 1
    told = [c.params["text"] for c in slack.of("chat.postEphemeral")]
    assert "Creating the ServiceNow incident" in told[0]
    assert "already" in told[1]
    reply = slack.wait_for(lambda: [c for c in slack.of("chat.postMessage") if "ServiceNow incident" in c.params["text"]])
    assert created[0]["number"] in reply[0].params["text"]
    action = get_store().get_ticket_action(row.id, "servicenow", "create")
    assert action is not None and action.key == created[0]["number"]


def test_a_note_pagerduty_refuses_is_marked_failed_and_the_report_stands(
    web: WebServer, worker: Worker, pd: PagerDutyStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import reset_settings

    monkeypatch.setenv("PAGERDUTY_FROM_EMAIL", "stranger@example.com")
    reset_settings()
    body, headers = _webhook("incident.triggered", "01PDTOOLS3")
    investigation_id = web.http.post("/webhooks/pagerduty", content=body, headers=headers).json()["investigation_id"]

    row = worker.until(lambda: _finished(investigation_id), timeout=60)
    action = worker.until(
        lambda: (a := get_store().get_ticket_action(investigation_id, "pagerduty", "note")) is not None and a.status == "failed" and a,
        timeout=30,
    )

    assert row.status in ("done", "degraded")
    assert "Requester User Not Found" in (action.error or "") and action.attempts == 1
    assert pd.added_notes("Q1WEBHOOK1") == []


@pytest.fixture
def told(catalog_file: Path) -> Iterator[tuple[Receiver, Inbox]]:
    """The service's notify targets added to the bot's catalog: a Slack channel, a webhook receiver and a real SMTP server."""
    receiver = Receiver().start()
    smtp, inbox = start_smtp()
    text = catalog_file.read_text(encoding="utf-8")
    targets = (
        f"    notify:\n"
        f"      - {{kind: slack, channel: C0NOTIFY}}\n"
        f'      - {{kind: webhook, url: "{receiver.url}/ir"}}\n'
        f"      - {{kind: email, to: [oncall@example.com], sender: ir@example.com, host: 127.0.0.1, port: {smtp.port}, security: none}}\n"
    )
    catalog_file.write_text(text.replace("  checkout:\n", targets + "  checkout:\n"), encoding="utf-8")
    yield receiver, inbox
    smtp.stop()
    receiver.stop()


def test_a_pagerduty_webhook_reaches_slack_mail_a_webhook_and_a_pagerduty_note_each_once(
    told: tuple[Receiver, Inbox], web: WebServer, slack: SlackStandin, worker: Worker, pd: PagerDutyStandin
) -> None:
    receiver, inbox = told
    body, headers = _webhook("incident.triggered", "01PDTOLD01")
    investigation_id = web.http.post("/webhooks/pagerduty", content=body, headers=headers).json()["investigation_id"]

    row = worker.until(lambda: _finished(investigation_id), timeout=60)
    worker.until(lambda: pd.added_notes("Q1WEBHOOK1") and receiver.received and inbox.messages, timeout=30)
    # The incident's custom details were fetched and used before the evidence was read.
    assert row.alert["details"]["labels.pod"] == "notifications-worker-5d8c7b9f6-x2x7q"

    # Everything runs again: the investigation job redelivered, a notify job retried after its worker died
    # between the send and the mark (its row still pending), and the queue drained once more.
    jobs.investigate(investigation_id)
    for delivery in get_store().notifications(investigation_id):
        if delivery.label.startswith("notify:webhook"):
            get_store().set_notification(investigation_id, delivery.target, status="pending")
            assert notify.deliver(investigation_id, delivery.target) == "delivered"
    worker.drain()

    # A webhook starts no thread: Slack hears of the report through the service's notify channel, once.
    told_slack = [c for c in slack.of("chat.postMessage") if c.params.get("channel") == "C0NOTIFY"]
    assert len(told_slack) == 1 and f"/investigations/{investigation_id}" in told_slack[0].params["text"]
    assert len(pd.added_notes("Q1WEBHOOK1")) == 1
    assert len(inbox.messages) == 1
    # The webhook got a second copy with the same webhook-id: what a receiver drops (Standard Webhooks' rule).
    assert len({got.headers["webhook-id"] for got in receiver.received}) == 1
    assert {n.status for n in get_store().notifications(investigation_id)} == {"delivered"}
