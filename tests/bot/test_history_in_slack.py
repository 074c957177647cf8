"""The incident history in Slack: `/investigate search`, "Resolved:" replies, and similar incidents in the report."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bot_harness import WebServer, fixture, wait_until
from standin_slack import SlackStandin

from agents import history
from bot.blocks import report_message
from core.alert import Alert
from core.models import Investigation, Status
from core.runtime import get_store

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _past_incident(**extra: Any) -> Investigation:
    store = get_store()
    row = store.create_investigation(
        Investigation(
            source="api",
            service="checkout",
            title="payments token expired",
            alert=Alert(title="payments token expired", service="checkout").model_dump(mode="json"),
            window_start=AT - timedelta(hours=2),
            window_end=AT,
            at=AT,
            created_at=AT,
            **extra,
        )
    )
    report = {
        "root_cause": {"category": "expired_credential", "summary": "The API token for payments-api expired", "component": "payments-api"},
        "signatures": [{"template": '401 {"error":"invalid_token","error_description":"The access token expired"}', "count": 40}],
        "suspect_commits": [],
    }
    return store.save_report(row.id, report, Status.done)


def test_investigate_search_answers_only_the_caller_with_past_incidents(web: WebServer, slack: SlackStandin) -> None:
    past = _past_incident()
    assert history.index_investigation(past)

    ack = web.command(fixture("slash_command.json") | {"text": "search access token expired 401"})

    assert ack.status_code == 200 and "Searching past incidents" in ack.text
    (answer,) = wait_until(lambda: slack.of("chat.postEphemeral"))
    assert answer.params["user"] == "U0ONCALL1"
    assert "payments token expired" in answer.params["text"] and f"/investigations/{past.id}" in answer.params["text"]
    assert "expired credential" in answer.params["text"]
    assert not slack.of("chat.postMessage") and len(get_store().list_investigations()[0]) == 1


def test_investigate_search_without_words_shows_how(web: WebServer, slack: SlackStandin) -> None:
    ack = web.command(fixture("slash_command.json") | {"text": "search"})
    assert "Usage: `/investigate search" in ack.text


def test_a_resolved_reply_records_the_resolution_instead_of_asking_a_question(web: WebServer, slack: SlackStandin) -> None:
    row = _past_incident(slack_channel="C0INCIDENT", slack_thread_ts="1748554782.001200")
    reply = fixture("thread_reply.json")

    web.event(reply | {"event": reply["event"] | {"text": "Resolved: rotated the payments token and restarted checkout"}})

    resolved = wait_until(lambda: get_store().require(row.id).resolution)
    assert resolved == "rotated the payments token and restarted checkout"
    assert get_store().require(row.id).resolved_by == "U0ONCALL1"
    (told,) = wait_until(lambda: slack.of("chat.postEphemeral"))
    assert "Recorded how this incident was resolved" in told.params["text"]
    time.sleep(0.3)
    assert get_store().follow_ups(row.id) == []


def test_the_report_message_lists_similar_incidents_with_their_resolution() -> None:
    report = {
        "root_cause": {"category": "expired_credential", "summary": "token expired", "confidence": 0.8},
        "similar_incidents": [
            {
                "id": "inv_past",
                "title": "payments token expired",
                "score": 0.91,
                "date": "2026-11-02T09:00:00+00:00",
                "category": "expired_credential",
                "resolution": "rotated the token",
                "url": "http://ir.test/investigations/inv_past",
            }
        ],
    }
    row = Investigation(id="inv_now", source="api", service="checkout", title="t", window_start=AT, window_end=AT, at=AT, report=report)
    _text, blocks = report_message(row, report, jira=None, public_url="http://ir.test")
    (similar,) = [b for b in blocks if b.get("text", {}).get("text", "").startswith("*Similar past incidents*")]
    text = similar["text"]["text"]
    assert "2026-11-02 <http://ir.test/investigations/inv_past|payments token expired> · expired credential · 0.91" in text
    assert "resolved: rotated the token" in text
