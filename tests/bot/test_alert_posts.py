"""Alert posts from Datadog, Grafana, Alertmanager, Opsgenie and CloudWatch (AWS Chatbot), signed, through the real Bolt app."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from bot_harness import WebServer, fixture, wait_until
from standin_slack import SlackStandin

from core.models import Investigation
from core.runtime import get_store

CHANNEL = "C0INCIDENT"
TOOLS = [
    ("alertmanager_firing.json", "alertmanager_resolved.json", "checkout", "Alertmanager"),
    ("grafana_firing.json", "grafana_resolved.json", "checkout", "Grafana"),
    ("datadog_triggered.json", "datadog_recovered.json", "notifications-worker", "Datadog"),
    ("opsgenie_created.json", "opsgenie_closed_edit.json", "checkout", "Opsgenie"),
    ("cloudwatch_alarm.json", "cloudwatch_ok.json", "notifications-worker", "CloudWatch"),
]


def _rows() -> list[Investigation]:
    rows, _ = get_store().list_investigations()
    return sorted(rows, key=lambda r: r.created_at)


def _again(envelope: dict[str, Any], event_id: str) -> dict[str, Any]:
    return copy.deepcopy(envelope) | {"event_id": event_id}


def _root_ts(envelope: dict[str, Any]) -> str:
    event = envelope["event"]
    return str((event.get("message") or event)["ts"])


def _replies(slack: SlackStandin, needle: str) -> list[Any]:
    return [c for c in slack.of("chat.postMessage") if needle in c.params.get("text", "")]


@pytest.mark.parametrize(("firing", "resolved", "service", "tool"), TOOLS)
def test_tool_alert_post_starts_one_investigation_and_its_resolution_is_noted_once(
    web: WebServer, slack: SlackStandin, firing: str, resolved: str, service: str, tool: str
) -> None:
    fired, ended = fixture(firing), fixture(resolved)

    assert web.event(fired).status_code == 200
    row = wait_until(_rows)[0]
    assert web.event(_again(fired, "Ev0REPOST1")).status_code == 200
    assert web.event(fired, retry_num=1).status_code == 200
    assert web.event(ended).status_code == 200
    assert web.event(_again(ended, "Ev0REPOST2")).status_code == 200

    notes = wait_until(lambda: _replies(slack, f"{tool} reports this alert resolved"))
    time.sleep(0.5)
    assert len(_replies(slack, "reports this alert resolved")) == 1
    assert notes[0].params["thread_ts"] == _root_ts(fired) and notes[0].params["channel"] == CHANNEL
    assert [r.id for r in _rows()] == [row.id]
    assert (row.source, row.service, row.slack_channel, row.slack_thread_ts) == ("alert_post", service, CHANNEL, _root_ts(fired))
    assert row.alert["details"]["tool"] == tool.lower() and row.alert["status"] == "triggered"


def test_alert_firing_again_after_resolution_joins_the_running_investigation_with_one_pointer(web: WebServer, slack: SlackStandin) -> None:
    fired = fixture("alertmanager_firing.json")
    web.event(fired)
    lead = wait_until(_rows)[0]
    web.event(fixture("alertmanager_resolved.json"))
    wait_until(lambda: _replies(slack, "reports this alert resolved"))
    refired = _again(fired, "Ev0AMREFIRE")
    refired["event"]["ts"] = "1748557800.000900"

    web.event(refired)
    web.event(_again(refired, "Ev0AMREFIRE2"))

    pointer = wait_until(lambda: _replies(slack, "Part of an alert storm"))
    time.sleep(0.5)
    rows = _rows()
    assert len(rows) == 2 and rows[1].parent_id == lead.id
    assert len(_replies(slack, "Part of an alert storm")) == 1
    assert pointer[0].params["thread_ts"] == "1748557800.000900"
    assert lead.id in pointer[0].params["text"] and f"/archives/{CHANNEL}/p" in pointer[0].params["text"]


def test_storm_alerts_from_other_tools_each_get_one_reply_pointing_to_the_investigation_covering_them(
    web: WebServer, slack: SlackStandin
) -> None:
    web.event(fixture("pagerduty_post_triggered.json"))
    lead = wait_until(_rows)[0]
    web.event(fixture("datadog_triggered.json"))
    web.event(fixture("cloudwatch_alarm.json"))
    web.event(_again(fixture("cloudwatch_alarm.json"), "Ev0CWDUP"))

    pointers = wait_until(lambda: len(_replies(slack, "Part of an alert storm")) >= 2 and _replies(slack, "Part of an alert storm"))
    time.sleep(0.5)
    rows = _rows()
    assert len(rows) == 3 and {r.parent_id for r in rows[1:]} == {lead.id}
    assert sorted(p.params["thread_ts"] for p in _replies(slack, "Part of an alert storm")) == sorted(
        [_root_ts(fixture("datadog_triggered.json")), _root_ts(fixture("cloudwatch_alarm.json"))]
    )
    assert all(f"`{lead.id}`" in p.params["text"] and "notifications-worker" in p.params["text"] for p in pointers)
    assert not [r for r in rows if r.parent_id is None and r.id != lead.id]


def test_unmapped_alert_gets_one_reply_saying_how_to_map_it_and_starts_nothing(web: WebServer, slack: SlackStandin) -> None:
    envelope = fixture("alertmanager_firing.json")
    attachment = envelope["event"]["attachments"][0]
    attachment.update(title="[FIRING:1] DiskFull (ledger)", text=" *Details:*\n  • *service:* `ledger`\n  • *instance:* `db-7:9100`\n")

    web.event(envelope)
    web.event(_again(envelope, "Ev0UNMAPPED2"))

    reply = wait_until(lambda: _replies(slack, "I don't know which service this alertmanager alert"))
    time.sleep(0.5)
    assert len(_replies(slack, "I don't know which service")) == 1
    assert "`service=ledger`" in reply[0].params["text"] and reply[0].params["thread_ts"] == _root_ts(envelope)
    assert _rows() == []


def test_alert_post_outside_watched_channels_is_ignored(web: WebServer, slack: SlackStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.setattr(get_settings(), "slack_watched_channels", ["C0ELSEWHERE"])

    assert web.event(fixture("grafana_firing.json")).status_code == 200
    time.sleep(0.5)
    assert _rows() == [] and not slack.of("chat.postMessage")


def test_our_own_posts_quoting_an_alert_are_not_taken_for_alerts(web: WebServer, slack: SlackStandin) -> None:
    envelope = fixture("datadog_triggered.json")
    envelope["event"] |= {"bot_id": "B0BOT0001", "app_id": "A0IRAPP01", "bot_profile": {"id": "B0BOT0001", "app_id": "A0IRAPP01"}}

    assert web.event(envelope).status_code == 200
    time.sleep(0.5)
    assert _rows() == [] and not slack.of("chat.postMessage")
